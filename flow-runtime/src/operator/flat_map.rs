//! `flat_map`: one row in, any number out; with keyed state on a keyed stream. The function
//! pushes into a buffer reused for every row.

use super::{function_hooks, KeyStates, Keyed, Operator, Output};
use crate::function::{FlatMapFunction, IterFn, Key, KeyedFlatMapFunction, NotKeyed, PushFn};
use crate::port::{Checked, Stream};
use crate::time::Timestamp;

/// A flat-map of `f` emitting rows `O`, with the per-key state `K` (`Keyed`) or none
/// (`NotKeyed`).
pub struct FlatMap<F, K, O> {
    f: F,
    keys: K,
    buf: Vec<O>,
}

impl<F, O> FlatMap<F, NotKeyed, O> {
    /// A flat-map on a stream that is not keyed.
    pub fn new(f: F) -> Self {
        FlatMap {
            f,
            keys: NotKeyed::default(),
            buf: Vec::new(),
        }
    }
}

impl<F, KS, K, S, O> FlatMap<F, Keyed<KS, K, S>, O> {
    /// A flat-map on a stream keyed by `key`.
    pub fn keyed(key: KS, f: F) -> Self {
        FlatMap {
            f,
            keys: Keyed::new(key),
            buf: Vec::new(),
        }
    }
}

impl<In, Old, F, K> super::migrate_state::MigrateFrom<In, Old> for FlatMap<F, K, F::Out>
where
    F: KeyedFlatMapFunction<In>,
    F::State: 'static,
    K: super::KeyStatesFrom<In, F::State, Old>,
{
    type Value = F::State;
    const MIGRATED_SCHEMA: u64 = K::MIGRATED;
}

impl<In, F, K> Operator<In> for FlatMap<F, K, F::Out>
where
    F: KeyedFlatMapFunction<In>,
    K: KeyStates<In, F::State>,
{
    type Out = F::Out;
    const STATE_SCHEMA: u64 = <K as super::KeyStates<In, F::State>>::SCHEMA;
    #[inline(always)]
    fn process(&mut self, row: In, ts: Timestamp, out: &mut impl Output<F::Out>) {
        let state = self.keys.state_of(&row);
        self.f.flat_map(row, state, &mut self.buf);
        out.emit_all(&mut self.buf, ts);
    }
    function_hooks!();
}

// A named function is checked against the trait of its stream, a closure against the
// stateless one (see `map.rs`).
#[allow(clippy::type_complexity)]
impl<T: Send + 'static> Stream<T> {
    /// `flat_map` with a function.
    pub fn flat_map<F: FlatMapFunction<T>>(
        &self,
        f: F,
    ) -> (
        Checked<F::Out, F>,
        Stream<<Checked<F::Out, F> as FlatMapFunction<T>>::Out>,
    ) {
        (f, Stream::new())
    }
}

#[allow(clippy::type_complexity)]
impl<T: Send + 'static, K: Key> Stream<T, K> {
    /// `flat_map` with a function on a keyed stream.
    pub fn keyed_flat_map<F: KeyedFlatMapFunction<T>>(
        &self,
        f: F,
    ) -> (
        Checked<F::Out, F>,
        Stream<<Checked<F::Out, F> as KeyedFlatMapFunction<T>>::Out>,
    ) {
        (f, Stream::new())
    }
}

#[allow(clippy::type_complexity)]
impl<T: Send + 'static, K> Stream<T, K> {
    /// `flat_map` with a closure returning an iterator.
    pub fn flat_map_iter<I, F>(
        &self,
        f: F,
    ) -> (
        Checked<I::Item, IterFn<F>>,
        Stream<<Checked<I::Item, IterFn<F>> as FlatMapFunction<T>>::Out>,
    )
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: FnMut(T) -> I + Clone + Send + 'static,
    {
        (IterFn(f), Stream::new())
    }
    /// `flat_map` with a closure pushing into an output buffer.
    pub fn flat_map_push<O: Send + 'static, F>(
        &self,
        f: F,
    ) -> (
        Checked<O, PushFn<F, O>>,
        Stream<<Checked<O, PushFn<F, O>> as FlatMapFunction<T>>::Out>,
    )
    where
        F: FnMut(T, &mut Vec<O>) + Clone + Send + 'static,
    {
        (PushFn(f, std::marker::PhantomData), Stream::new())
    }
}
