//! `map`: one row in, one row out; with keyed state on a keyed stream.

use super::{function_hooks, KeyStates, Keyed, Operator, Output};
use crate::function::{Key, KeyedMapFunction, MapFunction, NotKeyed};
use crate::port::{Checked, Stream};
use crate::time::Timestamp;

/// A map of `f`, with the per-key state `K` (`Keyed`) or none (`NotKeyed`).
pub struct Map<F, K> {
    f: F,
    keys: K,
}

impl<F> Map<F, NotKeyed> {
    /// A map on a stream that is not keyed.
    pub fn new(f: F) -> Self {
        Map {
            f,
            keys: NotKeyed::default(),
        }
    }
}

impl<F, KS, K, S> Map<F, Keyed<KS, K, S>> {
    /// A map on a stream keyed by `key`.
    pub fn keyed(key: KS, f: F) -> Self {
        Map {
            f,
            keys: Keyed::new(key),
        }
    }
}

impl<In, Old, F, K> super::migrate_state::MigrateFrom<In, Old> for Map<F, K>
where
    F: KeyedMapFunction<In>,
    F::State: 'static,
    K: super::KeyStatesFrom<In, F::State, Old>,
{
    type Value = F::State;
    const MIGRATED_SCHEMA: u64 = K::MIGRATED;
}

impl<In, F: KeyedMapFunction<In>, K: KeyStates<In, F::State>> Operator<In> for Map<F, K> {
    type Out = F::Out;
    const STATE_SCHEMA: u64 = <K as super::KeyStates<In, F::State>>::SCHEMA;
    const ONE_TO_ONE: bool = true;
    #[inline(always)]
    fn process(&mut self, row: In, ts: Timestamp, out: &mut impl Output<F::Out>) {
        let state = self.keys.state_of(&row);
        out.emit(self.f.map(row, state), ts);
    }
    function_hooks!();
}

// The port types spell out how each function is checked (see `Checked`). A named function
// is checked against the trait of its stream: `MapFunction` on a stream that is not keyed (so
// that one with `#[state]` is an error there, whose note says to add `key_by`),
// `KeyedMapFunction` on a keyed one. A closure keeps no keyed state: one method for both.
#[allow(clippy::type_complexity)]
impl<T: Send + 'static> Stream<T> {
    /// `map` with a function or impl-block function.
    pub fn map<F: MapFunction<T>>(
        &self,
        f: F,
    ) -> (
        Checked<F::Out, F>,
        Stream<<Checked<F::Out, F> as MapFunction<T>>::Out>,
    ) {
        (f, Stream::new())
    }
}

#[allow(clippy::type_complexity)]
impl<T: Send + 'static, K: Key> Stream<T, K> {
    /// `map` with a function or impl-block function on a keyed stream.
    pub fn keyed_map<F: KeyedMapFunction<T>>(
        &self,
        f: F,
    ) -> (
        Checked<F::Out, F>,
        Stream<<Checked<F::Out, F> as KeyedMapFunction<T>>::Out>,
    ) {
        (f, Stream::new())
    }
}

#[allow(clippy::type_complexity)]
impl<T: Send + 'static, K> Stream<T, K> {
    /// `map` with a closure (its parameter type is inferred from the stream).
    pub fn map_closure<O: Send + 'static, F: FnMut(T) -> O + Clone + Send + 'static>(
        &self,
        f: F,
    ) -> (
        Checked<O, F>,
        Stream<<Checked<O, F> as MapFunction<T>>::Out>,
    ) {
        (f, Stream::new())
    }
}
