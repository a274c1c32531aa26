//! `a.connect(b)`: two streams for one two-input operator, which the word after it picks
//! (`co_map`, `co_flat_map`, a keyed `co_process`, a `broadcast_process`). It has no operator
//! of its own: its port pairs the two streams' row types (and their key type, when both are
//! keyed) for the operator's check.

use crate::function::{Key, NotKeyed};
use crate::port::Stream;
use std::marker::PhantomData;

/// The port of two connected streams of rows `A` and `B`; `K` is their key type when both are
/// keyed.
pub struct Connected<A, B, K = NotKeyed>(PhantomData<Rows<A, B, K>>);

/// What a [`Connected`] port carries at the type level.
type Rows<A, B, K> = fn() -> (A, B, K);

impl<A, B, K> Connected<A, B, K> {
    pub(crate) fn new() -> Self {
        Connected(PhantomData)
    }
}

impl<A: Send + 'static, K> Stream<A, K> {
    /// `connect(other)`: two streams that are not both keyed (or the second broadcast).
    pub fn connect<B, KB>(&self, _other: &Stream<B, KB>) -> Connected<A, B> {
        Connected::new()
    }
}

impl<A: Send + 'static, K: Key> Stream<A, K> {
    /// `connect(other)` of two keyed streams with the same key type.
    pub fn connect_keyed<B>(&self, _other: &Stream<B, K>) -> Connected<A, B, K> {
        Connected::new()
    }
}
