//! `timestamps(|row| ms)`: each row's event timestamp, assigned in the source's own loop
//! (where the source's watermarks are generated), so it has no operator of its own: the
//! assigner is a [`TimestampAssigner`].

use crate::port::Stream;
use crate::time::{Timestamp, TimestampAssigner};

impl<T: Send + 'static, K> Stream<T, K> {
    /// `timestamps` with a function.
    pub fn timestamps<A: TimestampAssigner<T>>(&self, a: A) -> (A, Stream<T>) {
        (a, Stream::new())
    }
    /// `timestamps` with a closure.
    pub fn timestamps_closure<F: FnMut(&T) -> Timestamp + Clone + Send + 'static>(
        &self,
        f: F,
    ) -> (F, Stream<T>) {
        (f, Stream::new())
    }
}
