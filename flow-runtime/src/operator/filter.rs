//! `filter`: keeps the rows a predicate accepts; with keyed state on a keyed stream.

use super::{function_hooks, KeyStates, Keyed, Operator, Output};
use crate::function::{FilterFunction, Key, KeyedFilterFunction, NotKeyed};
use crate::port::{Checked, Stream};
use crate::time::Timestamp;

/// A filter of `f`, with the per-key state `K` (`Keyed`) or none (`NotKeyed`).
pub struct Filter<F, K> {
    f: F,
    keys: K,
}

impl<F> Filter<F, NotKeyed> {
    /// A filter on a stream that is not keyed.
    pub fn new(f: F) -> Self {
        Filter {
            f,
            keys: NotKeyed::default(),
        }
    }
}

impl<F, KS, K, S> Filter<F, Keyed<KS, K, S>> {
    /// A filter on a stream keyed by `key`.
    pub fn keyed(key: KS, f: F) -> Self {
        Filter {
            f,
            keys: Keyed::new(key),
        }
    }
}

impl<In, Old, F, K> super::migrate_state::MigrateFrom<In, Old> for Filter<F, K>
where
    F: KeyedFilterFunction<In>,
    F::State: 'static,
    K: super::KeyStatesFrom<In, F::State, Old>,
{
    type Value = F::State;
    const MIGRATED_SCHEMA: u64 = K::MIGRATED;
}

impl<In, F: KeyedFilterFunction<In>, K: KeyStates<In, F::State>> Operator<In> for Filter<F, K> {
    type Out = In;
    const STATE_SCHEMA: u64 = <K as super::KeyStates<In, F::State>>::SCHEMA;
    #[inline(always)]
    fn process(&mut self, row: In, ts: Timestamp, out: &mut impl Output<In>) {
        let state = self.keys.state_of(&row);
        if self.f.filter(&row, state) {
            out.emit(row, ts);
        }
    }
    function_hooks!();
}

// A named function is checked against the trait of its stream, a closure against the
// stateless one (see `map.rs`).
impl<T: Send + 'static> Stream<T> {
    /// `filter` with a function.
    pub fn filter<F: FilterFunction<T>>(&self, f: F) -> (Checked<F::Out, F>, Stream<T>) {
        (f, Stream::new())
    }
}

impl<T: Send + 'static, K: Key> Stream<T, K> {
    /// `filter` with a function on a keyed stream.
    pub fn keyed_filter<F: KeyedFilterFunction<T>>(
        &self,
        f: F,
    ) -> (Checked<F::State, F>, Stream<T>) {
        (f, Stream::new())
    }
}

impl<T: Send + 'static, K> Stream<T, K> {
    /// `filter` with a closure.
    pub fn filter_closure<F: FnMut(&T) -> bool + Clone + Send + 'static>(
        &self,
        f: F,
    ) -> (F, Stream<T>) {
        (f, Stream::new())
    }
}
