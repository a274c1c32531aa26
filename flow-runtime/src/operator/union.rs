//! `union`: merges streams of the same row type. It has no per-row work: the stage after it
//! reads every input's channels through one input gate, whose watermark is the minimum over
//! all of them.

use crate::port::{Checked, Stream};
use crate::row::SameRow;

/// Hands a checked `union` input's receivers to the union's input gate.
#[derive(Clone, Copy)]
pub struct UnionInput;

impl UnionInput {
    /// The receivers, now known to carry the union's row type.
    pub fn cast<R>(&self, receivers: R) -> R {
        receivers
    }
}

impl<T: Send + 'static, K> Stream<T, K> {
    /// Checks that a `union` input carries this stream's row type.
    pub fn union_input<U: SameRow<T>, KU>(
        &self,
        _other: &Stream<U, KU>,
    ) -> Checked<U::Row, UnionInput> {
        UnionInput
    }
    /// The `union`'s output: the rows, no longer keyed.
    pub fn union(&self) -> Stream<T> {
        Stream::new()
    }
}
