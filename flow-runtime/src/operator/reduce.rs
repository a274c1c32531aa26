//! `reduce` on a keyed stream: a rolling aggregate per key (also `sum`, `min`, `max`,
//! `min_by`, `max_by`, whose functions the macro writes).
//!
//! Streaming mode emits the new aggregate after every row (Flink's rolling reduce); batch mode
//! emits only each key's final aggregate at the end of input, as Flink's BATCH runtime mode.

use super::{Operator, Output};
use crate::chain::Snapshot;
use crate::context::RuntimeContext;
use crate::env::RuntimeMode;
use crate::exec::{CheckpointId, TaskMetrics};
use crate::function::{KeySelector, ReduceFunction};
use crate::state::KeyedState;
use crate::time::{Timestamp, NO_TIMESTAMP};
use crate::Result;

/// A keyed rolling reduce of rows `T` with `f`, keyed by `key`.
pub struct Reduce<KS, K, F, T> {
    key: KS,
    f: F,
    state: KeyedState<K, T>,
    batch: bool,
    /// Rows emitted at the end of input in batch mode.
    emitted: u64,
}

impl<KS, K, F, T> Reduce<KS, K, F, T> {
    /// `f` per key of `key`.
    pub fn new(key: KS, f: F) -> Self {
        Reduce {
            key,
            f,
            state: KeyedState::default(),
            batch: false,
            emitted: 0,
        }
    }
}

/// Forgets the whole state map if a reduce function unwinds while an accumulator is moved out
/// of its slot, so that the slot is never dropped twice. The map leaks, on a path where the job
/// is failing anyway.
struct LeakOnUnwind<K, T>(*mut KeyedState<K, T>);

impl<K, T> Drop for LeakOnUnwind<K, T> {
    fn drop(&mut self) {
        // SAFETY: the pointer is the operator's state map, alive for the whole call.
        std::mem::forget(unsafe { std::mem::take(&mut *self.0) });
    }
}

impl<T, KS, F> Operator<T> for Reduce<KS, KS::Key, F, T>
where
    T: Clone,
    KS: KeySelector<T>,
    F: ReduceFunction<T>,
{
    type Out = T;
    /// In streaming mode; in batch mode the operator reports its count itself.
    const ONE_TO_ONE: bool = true;

    #[inline(always)]
    fn process(&mut self, row: T, ts: Timestamp, out: &mut impl Output<T>) {
        let key = self.key.key(&row);
        let state: *mut KeyedState<KS::Key, T> = &mut self.state;
        // The accumulator is stored as `T`, not `Option<T>`: read out, reduced, written back
        // in place. (An `Option` costs two tag writes and a wider slot per row: ~18% of W1.)
        // SAFETY: `state` is `self.state`, borrowed by nothing else during this call.
        if let Some(acc) = unsafe { (*state).get_mut(&key) } {
            let slot: *mut T = acc;
            let guard = LeakOnUnwind(state);
            // SAFETY: `slot` is a valid, initialised accumulator; it is written back below
            // before anything can read it, and if `reduce` unwinds instead, the guard makes
            // sure it is never read or dropped.
            let prev = unsafe { std::ptr::read(slot) };
            let new = self.f.reduce(prev, row);
            unsafe { std::ptr::write(slot, new) };
            std::mem::forget(guard);
            if !self.batch {
                // SAFETY: written just above.
                out.emit(unsafe { (*slot).clone() }, ts);
            }
        } else {
            if !self.batch {
                out.emit(row.clone(), ts);
            }
            self.state.insert(key, row);
        }
    }

    fn open(&mut self, ctx: &RuntimeContext) -> Result<()> {
        self.batch = ctx.mode() == RuntimeMode::Batch;
        self.f.open(ctx);
        Ok(())
    }

    /// Declines: the operator's state is not snapshot yet.
    fn snapshot(&mut self, _: CheckpointId) -> Result<Snapshot> {
        Ok(Snapshot::Declined(""))
    }

    fn end_of_input(&mut self, out: &mut impl Output<T>) -> Result<()> {
        if self.batch {
            for (_, row) in self.state.drain() {
                self.emitted += 1;
                out.emit(row, NO_TIMESTAMP);
            }
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        self.f.close();
        Ok(())
    }

    fn report(&self, node: u32, metrics: &mut TaskMetrics) {
        if self.batch {
            metrics.add_out(node, self.emitted);
        }
    }
}
