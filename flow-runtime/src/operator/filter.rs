//! `filter`: keeps the rows a predicate accepts; with keyed state on a keyed stream.

use super::{KeyStates, Keyed, NoKey, Operator, Output};
use crate::chain::Snapshot;
use crate::context::RuntimeContext;
use crate::exec::CheckpointId;
use crate::function::KeyedFilterFunction;
use crate::time::Timestamp;
use crate::Result;

/// A filter of `f`, with the per-key state `K` ([`Keyed`]) or none ([`NoKey`]).
pub struct Filter<F, K> {
    f: F,
    keys: K,
}

impl<F> Filter<F, NoKey> {
    /// A filter on a stream that is not keyed.
    pub fn new(f: F) -> Self {
        Filter {
            f,
            keys: NoKey::default(),
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

impl<In, F: KeyedFilterFunction<In>, K: KeyStates<In, F::State>> Operator<In> for Filter<F, K> {
    type Out = In;
    #[inline(always)]
    fn process(&mut self, row: In, ts: Timestamp, out: &mut impl Output<In>) {
        let state = self.keys.state_of(&row);
        if self.f.filter(&row, state) {
            out.emit(row, ts);
        }
    }
    fn open(&mut self, ctx: &RuntimeContext) -> Result<()> {
        self.f.open(ctx);
        Ok(())
    }
    fn snapshot(&mut self, _: CheckpointId) -> Result<Snapshot> {
        Ok(self.keys.snapshot())
    }
    fn close(&mut self) -> Result<()> {
        self.f.close();
        Ok(())
    }
}
