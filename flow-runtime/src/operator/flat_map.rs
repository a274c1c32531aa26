//! `flat_map`: one row in, any number out; with keyed state on a keyed stream. The function
//! pushes into a buffer reused for every row.

use super::{KeyStates, Keyed, NoKey, Operator, Output};
use crate::chain::Snapshot;
use crate::context::RuntimeContext;
use crate::exec::CheckpointId;
use crate::function::KeyedFlatMapFunction;
use crate::time::Timestamp;
use crate::Result;

/// A flat-map of `f` emitting rows `O`, with the per-key state `K` ([`Keyed`]) or none
/// ([`NoKey`]).
pub struct FlatMap<F, K, O> {
    f: F,
    keys: K,
    buf: Vec<O>,
}

impl<F, O> FlatMap<F, NoKey, O> {
    /// A flat-map on a stream that is not keyed.
    pub fn new(f: F) -> Self {
        FlatMap {
            f,
            keys: NoKey::default(),
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

impl<In, F, K> Operator<In> for FlatMap<F, K, F::Out>
where
    F: KeyedFlatMapFunction<In>,
    K: KeyStates<In, F::State>,
{
    type Out = F::Out;
    #[inline(always)]
    fn process(&mut self, row: In, ts: Timestamp, out: &mut impl Output<F::Out>) {
        let state = self.keys.state_of(&row);
        self.f.flat_map(row, state, &mut self.buf);
        out.emit_all(&mut self.buf, ts);
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
