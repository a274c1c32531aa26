//! `reduce` on a keyed stream: a rolling aggregate per key (also `sum`, `min`, `max`,
//! `min_by`, `max_by`, whose functions the macro writes).
//!
//! Streaming mode emits the new aggregate after every row (Flink's rolling reduce); batch mode
//! emits only each key's final aggregate at the end of input, as Flink's BATCH runtime mode,
//! keys in ascending order (see [`sort_key`](crate::sort_key)).

use super::{Operator, Output};
use crate::chain::Snapshot;
use crate::context::RuntimeContext;
use crate::env::RuntimeMode;
use crate::exec::{CheckpointId, TaskMetrics};
use crate::function::{Key, KeySelector, ReduceFunction};
use crate::port::{Checked, Stream};
use crate::snapshot::{StateData, StateReader, StateWriter};
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

/// Replaces the accumulator at `slot`, a slot of the map `map`, with `reduce(accumulator)`,
/// in place: the accumulator is stored as `T`, not `Option<T>` (an `Option` costs two tag
/// writes and a wider slot per row: ~18 % of W1). If `reduce` unwinds, the whole map is
/// forgotten (it leaks, on a path where the job is failing anyway), so that the slot moved out
/// of is never read or dropped again. Shared by `reduce` and the batch-mode combiner before
/// its exchange.
///
/// # Safety
/// `map` is valid and borrowed by nothing else for the call; `slot` is an initialised value
/// inside it, which `reduce` does not reach.
#[inline(always)]
pub(crate) unsafe fn reduce_in_place<M: Default, T>(
    map: *mut M,
    slot: *mut T,
    reduce: impl FnOnce(T) -> T,
) {
    struct LeakOnUnwind<M: Default>(*mut M);
    impl<M: Default> Drop for LeakOnUnwind<M> {
        fn drop(&mut self) {
            // SAFETY: the caller's map, alive for the whole call.
            std::mem::forget(unsafe { std::mem::take(&mut *self.0) });
        }
    }
    let guard = LeakOnUnwind(map);
    // SAFETY: `slot` is initialised (the caller's contract); it is written back below before
    // anything can read it, and if `reduce` unwinds instead, the guard makes sure it never is.
    let prev = unsafe { std::ptr::read(slot) };
    let new = reduce(prev);
    unsafe { std::ptr::write(slot, new) };
    std::mem::forget(guard);
}

impl<T, Old, KS, F> super::migrate_state::MigrateFrom<T, Old> for Reduce<KS, KS::Key, F, T>
where
    T: Clone + Send + Sync + StateData,
    Old: StateData,
    KS: KeySelector<T>,
    KS::Key: Sync,
    F: ReduceFunction<T>,
{
    type Value = T;
    const MIGRATED_SCHEMA: u64 = super::migrate_state::per_key_schema(
        "reduce",
        <KS::Key as crate::snapshot::StateSchema>::FINGERPRINT,
        Old::FINGERPRINT,
    );
}

impl<T, KS, F> Operator<T> for Reduce<KS, KS::Key, F, T>
where
    T: Clone + Send + Sync + StateData,
    KS: KeySelector<T>,
    KS::Key: Sync,
    F: ReduceFunction<T>,
{
    type Out = T;
    const STATE_SCHEMA: u64 = super::migrate_state::per_key_schema(
        "reduce",
        <KS::Key as crate::snapshot::StateSchema>::FINGERPRINT,
        <T as crate::snapshot::StateSchema>::FINGERPRINT,
    );
    /// In streaming mode; in batch mode the operator reports its count itself.
    const ONE_TO_ONE: bool = true;

    #[inline(always)]
    fn process(&mut self, row: T, ts: Timestamp, out: &mut impl Output<T>) {
        let key = self.key.key(&row);
        let state: *mut KeyedState<KS::Key, T> = &mut self.state;
        // SAFETY: `state` is `self.state`, borrowed by nothing else during this call.
        if let Some(acc) = unsafe { (*state).get_mut(&key) } {
            let slot: *mut T = acc;
            let f = &mut self.f;
            // SAFETY: `slot` is an accumulator of `state`, which `f` cannot reach.
            unsafe { reduce_in_place(state, slot, |prev| f.reduce(prev, row)) };
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
        self.state.open(ctx)?;
        self.f.open(ctx);
        Ok(())
    }

    /// The disk state backend's error, if a row of the batch met one.
    fn on_tick(&mut self, _: &mut impl Output<T>) -> Result<()> {
        self.state.check()
    }

    /// Every key's aggregate: frozen now (copy-on-write), encoded off the row path.
    fn snapshot(&mut self, _: CheckpointId, state: &mut StateWriter) -> Result<Snapshot> {
        self.state.check()?;
        self.state.write("aggregates", state);
        Ok(Snapshot::Taken)
    }

    fn restore(&mut self, state: &StateReader) -> Result<()> {
        state.keyed("aggregates", |k, row| self.state.insert(k, row))
    }

    fn clear_state(&mut self) -> Result<bool> {
        self.state.clear()?;
        Ok(true)
    }

    /// Batch mode: each key's final aggregate, keys in [`sort_key`](crate::sort_key) order
    /// (as Flink's sort-based batch execution groups its input by key).
    fn end_of_input(&mut self, out: &mut impl Output<T>) -> Result<()> {
        self.state.check()?;
        if self.batch {
            let mut rows: Vec<(Vec<u8>, T)> = self
                .state
                .drain()
                .map(|(k, row)| (crate::sort_key::sort_key(&k), row))
                .collect();
            rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            for (_, row) in rows {
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

impl<T: Send + Clone + StateData, K: Key> Stream<T, K> {
    /// Rolling `reduce` with a function.
    pub fn reduce<F: ReduceFunction<T>>(&self, f: F) -> (Checked<F::Out, F>, Stream<T>) {
        (f, Stream::new())
    }
    /// Rolling `reduce` with a closure (also `sum`, `min`, ..., whose closure the macro
    /// writes).
    pub fn reduce_closure<F: FnMut(T, T) -> T + Clone + Send + 'static>(
        &self,
        f: F,
    ) -> (F, Stream<T>) {
        (f, Stream::new())
    }
}

/// The field operations of `sum`, `min`, `max`, `min_by` and `max_by`.
pub mod aggregate {
    /// A field `sum` can add up.
    #[diagnostic::on_unimplemented(
        message = "`sum` needs a numeric field, and this field is `{Self}`",
        label = "not a number"
    )]
    pub trait Summable {
        /// `self += other`.
        fn add(&mut self, other: Self);
    }

    macro_rules! summable {
        ($($t:ty)*) => {$(
            impl Summable for $t {
                #[inline(always)]
                fn add(&mut self, other: Self) {
                    *self += other;
                }
            }
        )*};
    }
    summable!(i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize f32 f64);

    /// A field `min`, `max`, `min_by` and `max_by` can compare.
    #[diagnostic::on_unimplemented(
        message = "`min`, `max`, `min_by` and `max_by` need a field that can be ordered, and this field is `{Self}`",
        label = "cannot be compared"
    )]
    pub trait Comparable: PartialOrd {}
    impl<T: PartialOrd> Comparable for T {}

    /// `sum`: adds `row`'s field to the accumulator's.
    #[inline(always)]
    pub fn sum<T: Summable>(acc: &mut T, row: T) {
        acc.add(row);
    }
    /// `min`: keeps the smaller field.
    #[inline(always)]
    pub fn min<T: Comparable>(acc: &mut T, row: T) {
        if row < *acc {
            *acc = row;
        }
    }
    /// `max`: keeps the larger field.
    #[inline(always)]
    pub fn max<T: Comparable>(acc: &mut T, row: T) {
        if row > *acc {
            *acc = row;
        }
    }
    /// `a < b` (for `min_by` and `max_by`: ties keep the first row).
    #[inline(always)]
    pub fn less<T: Comparable>(a: &T, b: &T) -> bool {
        a < b
    }
}
