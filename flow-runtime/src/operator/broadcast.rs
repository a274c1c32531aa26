//! `broadcast()`: every row to every subtask of the next operator (Flink's `broadcast()`).
//! It has no per-row work of its own: the exchange before the next stage
//! ([`BroadcastExchange`](crate::channel::BroadcastExchange)) copies each row to every channel.

use crate::port::Stream;

impl<T: Send + Clone + 'static, K> Stream<T, K> {
    /// `broadcast()`: the rows, sent to every subtask of the next operator.
    pub fn broadcast(&self) -> Stream<T> {
        Stream::new()
    }
}
