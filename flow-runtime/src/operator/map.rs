//! `map`: one row in, one row out; with keyed state on a keyed stream.

use super::{KeyStates, Keyed, NoKey, Operator, Output};
use crate::chain::Snapshot;
use crate::context::RuntimeContext;
use crate::exec::CheckpointId;
use crate::function::KeyedMapFunction;
use crate::time::Timestamp;
use crate::Result;

/// A map of `f`, with the per-key state `K` ([`Keyed`]) or none ([`NoKey`]).
pub struct Map<F, K> {
    f: F,
    keys: K,
}

impl<F> Map<F, NoKey> {
    /// A map on a stream that is not keyed.
    pub fn new(f: F) -> Self {
        Map {
            f,
            keys: NoKey::default(),
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

impl<In, F: KeyedMapFunction<In>, K: KeyStates<In, F::State>> Operator<In> for Map<F, K> {
    type Out = F::Out;
    const ONE_TO_ONE: bool = true;
    #[inline(always)]
    fn process(&mut self, row: In, ts: Timestamp, out: &mut impl Output<F::Out>) {
        let state = self.keys.state_of(&row);
        out.emit(self.f.map(row, state), ts);
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
