//! Moving rows between workers: the message enum every channel carries, the exchange that
//! partitions a stage's output, and the input gate that merges a stage's inputs.
//!
//! Channels are bounded (a slow consumer blocks its producers: backpressure, bounded memory)
//! and move `Vec`s of rows, never serialized bytes.

mod exchange;
mod gate;

pub use exchange::{BroadcastExchange, Exchange, Partition};
pub use gate::{GateEvent, InputGate};

use crate::time::Timestamp;
use crossbeam_channel::{bounded, Receiver, Sender};

/// Rows per batch before an exchange sends it.
pub const BATCH_SIZE: usize = 1024;

/// Batches a channel holds before the sender blocks.
pub const CHANNEL_CAPACITY: usize = 16;

/// Rows in order, with their timestamps when the job has event time.
#[derive(Debug)]
pub struct Batch<T> {
    /// The rows.
    pub rows: Vec<T>,
    /// One timestamp per row, or empty when the job has no event time.
    pub timestamps: Vec<Timestamp>,
}

impl<T> Batch<T> {
    /// An empty batch with room for [`BATCH_SIZE`] rows.
    pub fn with_capacity(timestamps: bool) -> Self {
        Batch {
            rows: Vec::with_capacity(BATCH_SIZE),
            timestamps: if timestamps {
                Vec::with_capacity(BATCH_SIZE)
            } else {
                Vec::new()
            },
        }
    }
}

/// What travels on every channel between two workers.
#[derive(Debug)]
pub enum Message<T> {
    /// A batch of rows, in order.
    Rows(Batch<T>),
    /// The sender's event-time clock reached this watermark.
    Watermark(Timestamp),
    /// The sender turned idle (`true`) or active again (`false`).
    Idle(bool),
    /// A checkpoint barrier (aligned snapshots; carried, not yet produced).
    Barrier(u64),
    /// The sender finished; nothing follows.
    End,
}

/// The channels of one edge between two stages: `senders[up][down]`, `receivers[down][up]`.
pub struct EdgeChannels<T> {
    /// Per upstream subtask, one sender per downstream subtask.
    pub senders: Vec<Vec<Sender<Message<T>>>>,
    /// Per downstream subtask, one receiver per upstream subtask.
    pub receivers: Vec<Vec<Receiver<Message<T>>>>,
}

impl<T> EdgeChannels<T> {
    /// All-to-all channels between `up` and `down` subtasks; with `pointwise` and `up == down`,
    /// only subtask `i` to subtask `i` (a forward edge).
    pub fn new(up: usize, down: usize, pointwise: bool) -> Self {
        let mut senders: Vec<Vec<_>> = (0..up).map(|_| Vec::new()).collect();
        let mut receivers: Vec<Vec<_>> = (0..down).map(|_| Vec::new()).collect();
        for (u, sends) in senders.iter_mut().enumerate() {
            for (d, recvs) in receivers.iter_mut().enumerate() {
                if pointwise && up == down && u != d {
                    continue;
                }
                let (s, r) = bounded(CHANNEL_CAPACITY);
                sends.push(s);
                recvs.push(r);
            }
        }
        EdgeChannels { senders, receivers }
    }
}
