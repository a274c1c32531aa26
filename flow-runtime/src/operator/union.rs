//! `union`: merges streams of the same row type. It has no per-row work: the stage after it
//! reads every input's channels through one input gate, whose watermark is the minimum over
//! all of them.

use crate::port::Stream;
use crate::row::SameRow;

impl<T: Send + 'static, K> Stream<T, K> {
    /// Checks that a `union` input carries this stream's row type (its channels carry rows of
    /// any type: this check is what makes them the union's).
    pub fn union_input<U: SameRow<T>, KU>(&self, _other: &Stream<U, KU>) {}
    /// The `union`'s output: the rows, no longer keyed.
    pub fn union(&self) -> Stream<T> {
        Stream::new()
    }
}
