//! The exchange into a keyed `reduce`, in batch mode: reduces rows per key before they are
//! sent (a combiner, as Flink's DataSet API and its SQL planner's local-global aggregation).
//!
//! In batch mode a `reduce` emits each key's final value only, so the rows of one key that an
//! upstream subtask sends may as well be reduced there first: the exchange then carries about
//! one row per key and per upstream subtask instead of every row, and the work of the reduce
//! is spread over the upstream subtasks. W1 (sum by key over 50M rows, 1024 keys) sends 2 x
//! 1024 rows across threads at parallelism 2 instead of 50M. The reduce function must be
//! associative (as Flink's `ReduceFunction` is assumed to be): the downstream `reduce` then
//! combines partial results. In streaming mode every update is emitted, and rows pass through
//! untouched.
//!
//! The combiner holds at most [`MAX_KEYS`] keys: at that many it sends what it holds and
//! starts again, and if that first round reduced the rows by less than a tenth (nearly every
//! key distinct), it stops combining.

use crate::chain::{Collector, Control, Snapshot};
use crate::context::RuntimeContext;
use crate::env::RuntimeMode;
use crate::exec::{CheckpointId, TaskMetrics};
use crate::function::{KeySelector, ReduceFunction};
use crate::hash::FlowHashMap;
use crate::operator::reduce::reduce_in_place;
use crate::snapshot::TaskState;
use crate::time::{Timestamp, NO_TIMESTAMP};
use crate::Result;

/// Keys a combiner holds before it sends them on.
pub const MAX_KEYS: usize = 1 << 16;

/// An exchange `E` into a `reduce` by `f` over keys of `key`, which reduces rows per key
/// before `E` sends them, in batch mode (see the module).
pub struct Combine<KS: KeySelector<T>, F, T, E> {
    key: KS,
    f: F,
    /// The reduce's name, for the job's error if `f` panics here.
    name: &'static str,
    exchange: E,
    /// Batch mode, and combining still pays.
    on: bool,
    /// Each key's reduced row.
    held: FlowHashMap<KS::Key, T>,
    /// Rows reduced into `held` since the last time it was sent.
    rows: u64,
    /// Whether `held` was sent on because it was full.
    full_before: bool,
}

impl<KS: KeySelector<T>, F, T, E> Combine<KS, F, T, E> {
    /// Combines rows by `key` with `f`, the function of the reduce named `name`, before
    /// `exchange` sends them.
    pub fn new(key: KS, f: F, name: &'static str, exchange: E) -> Self {
        Combine {
            key,
            f,
            name,
            exchange,
            on: false,
            held: FlowHashMap::default(),
            rows: 0,
            full_before: false,
        }
    }
}

impl<KS, F, T, E> Combine<KS, F, T, E>
where
    KS: KeySelector<T>,
    E: Collector<T>,
{
    /// Sends every key's reduced row on.
    fn send_held(&mut self) {
        for (_, row) in self.held.drain() {
            self.exchange.collect(row, NO_TIMESTAMP);
        }
        self.rows = 0;
    }

    /// A row past the combiner (streaming mode, or combining stopped).
    #[inline(never)]
    fn pass(&mut self, row: T, ts: Timestamp) {
        self.exchange.collect(row, ts);
    }

    /// `held` reached [`MAX_KEYS`]: sends it, and stops combining if it hardly reduced.
    #[cold]
    #[inline(never)]
    fn send_full(&mut self) {
        if !self.full_before && self.rows < (MAX_KEYS as u64) * 11 / 10 {
            self.on = false;
        }
        self.full_before = true;
        self.send_held();
    }
}

impl<KS, F, T, E> Combine<KS, F, T, E>
where
    KS: KeySelector<T>,
    F: ReduceFunction<T>,
    T: Send + 'static,
    E: Collector<T>,
{
    /// The first row of a key since `held` was last sent.
    #[inline(never)]
    fn hold(&mut self, key: KS::Key, row: T) {
        if self.held.len() >= MAX_KEYS {
            self.send_full();
            if !self.on {
                return self.exchange.collect(row, NO_TIMESTAMP);
            }
        }
        self.held.insert(key, row);
    }
}

impl<KS, F, T, E> Collector<T> for Combine<KS, F, T, E>
where
    KS: KeySelector<T>,
    F: ReduceFunction<T>,
    T: Send + 'static,
    E: Collector<T>,
{
    /// In batch mode the row's timestamp is dropped: the reduce emits its final rows without
    /// one (`NO_TIMESTAMP`), whatever its input's.
    #[inline(always)]
    fn collect(&mut self, row: T, ts: Timestamp) {
        if !self.on {
            return self.pass(row, ts);
        }
        let key = self.key.key(&row);
        self.rows += 1;
        let held: *mut FlowHashMap<KS::Key, T> = &mut self.held;
        // SAFETY: `held` is `self.held`, borrowed by nothing else during this call.
        match unsafe { (*held).get_mut(&key) } {
            Some(slot) => {
                let (f, name) = (&mut self.f, &self.name);
                // SAFETY: `slot` is a row of `held`, which `f` cannot reach.
                unsafe {
                    reduce_in_place(held, slot, |prev| {
                        crate::operator::guarded(name, || f.reduce(prev, row))
                    })
                };
            }
            None => self.hold(key, row),
        }
    }
}

impl<KS, F, T, E> Control for Combine<KS, F, T, E>
where
    KS: KeySelector<T>,
    F: ReduceFunction<T>,
    T: Send + 'static,
    E: Collector<T>,
{
    fn open(&mut self, ctx: &RuntimeContext) -> Result<()> {
        self.on = ctx.mode() == RuntimeMode::Batch;
        self.f.open(ctx);
        self.exchange.open(ctx)
    }
    /// Holds its rows: a time-based flush must not send every key's partial row.
    fn flush(&mut self) -> Result<()> {
        self.exchange.flush()
    }
    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.send_held();
        self.exchange.watermark(watermark)
    }
    fn idle(&mut self, idle: bool) -> Result<()> {
        self.send_held();
        self.exchange.idle(idle)
    }
    fn barrier(&mut self, id: CheckpointId, state: &mut TaskState) -> Result<Snapshot> {
        if !state.last {
            self.send_held();
        }
        self.exchange.barrier(id, state)
    }
    /// The rows derived from the partitions given up go out before their positions commit.
    fn release(&mut self, state: &mut TaskState, clear: bool) -> Result<()> {
        self.send_held();
        self.exchange.release(state, clear)
    }
    fn adopt(&mut self, ctx: &RuntimeContext, state: &crate::snapshot::Adopted) -> Result<()> {
        self.exchange.adopt(ctx, state)
    }
    /// The rows it holds go too: the exchange sends what it buffered before it makes its
    /// output durable.
    fn commit_output(&mut self) -> Result<()> {
        self.send_held();
        self.exchange.commit_output()
    }
    fn checkpoint_complete(&mut self, id: CheckpointId) -> Result<()> {
        self.exchange.checkpoint_complete(id)
    }
    fn finish(&mut self) -> Result<()> {
        self.send_held();
        self.f.close();
        self.exchange.finish()
    }
    fn report(&self, metrics: &mut TaskMetrics) {
        self.exchange.report(metrics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps what the combiner sends on.
    #[derive(Default)]
    struct Sent(Vec<(u64, u64)>);

    impl Collector<(u64, u64)> for Sent {
        fn collect(&mut self, row: (u64, u64), _: Timestamp) {
            self.0.push(row);
        }
    }

    crate::chain::control_of_end!(Sent);

    type Key = fn(&(u64, u64)) -> u64;
    type Sum = fn((u64, u64), (u64, u64)) -> (u64, u64);

    fn combiner(mode: RuntimeMode) -> Combine<Key, Sum, (u64, u64), Sent> {
        let mut c: Combine<Key, Sum, (u64, u64), Sent> =
            Combine::new(|r| r.0, |a, b| (a.0, a.1 + b.1), "sum", Sent::default());
        let mut ctx = RuntimeContext::standalone("sum", 0, 1);
        ctx.mode = mode;
        c.open(&ctx).unwrap();
        c
    }

    /// Per key, the sum of what was sent.
    fn totals(sent: &[(u64, u64)]) -> std::collections::BTreeMap<u64, u64> {
        let mut totals = std::collections::BTreeMap::new();
        for &(k, v) in sent {
            *totals.entry(k).or_default() += v;
        }
        totals
    }

    #[test]
    fn batch_mode_sends_one_row_per_key_at_the_end() {
        let mut c = combiner(RuntimeMode::Batch);
        for i in 0..10_000u64 {
            c.collect((i % 7, 1), NO_TIMESTAMP);
        }
        c.flush().unwrap();
        assert!(c.exchange.0.is_empty(), "a timed flush sends nothing");
        c.finish().unwrap();
        assert_eq!(c.exchange.0.len(), 7);
        assert!(totals(&c.exchange.0)
            .values()
            .all(|&n| n == 10_000 / 7 || n == 10_000 / 7 + 1));
        assert_eq!(totals(&c.exchange.0).values().sum::<u64>(), 10_000);
    }

    #[test]
    fn streaming_mode_passes_every_row() {
        let mut c = combiner(RuntimeMode::Streaming);
        for i in 0..100u64 {
            c.collect((i % 7, 1), NO_TIMESTAMP);
        }
        assert_eq!(c.exchange.0.len(), 100);
        c.finish().unwrap();
        assert_eq!(c.exchange.0.len(), 100);
    }

    #[test]
    fn a_barrier_or_watermark_sends_what_it_holds_first() {
        let mut c = combiner(RuntimeMode::Batch);
        c.collect((1, 2), NO_TIMESTAMP);
        c.collect((1, 3), NO_TIMESTAMP);
        let mut state = TaskState::default();
        let _ = c.barrier(1, &mut state).unwrap();
        assert_eq!(c.exchange.0, vec![(1, 5)]);
        c.collect((1, 1), NO_TIMESTAMP);
        c.watermark(10).unwrap();
        assert_eq!(c.exchange.0, vec![(1, 5), (1, 1)]);
    }

    #[test]
    fn a_full_combiner_sends_and_goes_on() {
        let mut c = combiner(RuntimeMode::Batch);
        let keys = MAX_KEYS as u64 + 10;
        // Every key three times in a row: the map fills, is sent, and fills again.
        for k in 0..keys {
            for _ in 0..3 {
                c.collect((k, 1), NO_TIMESTAMP);
            }
        }
        c.finish().unwrap();
        let totals = totals(&c.exchange.0);
        assert_eq!(totals.len(), keys as usize);
        assert!(totals.values().all(|&n| n == 3));
        // Combining went on after the map was full: one row per key was sent.
        assert_eq!(c.exchange.0.len(), keys as usize);
    }

    #[test]
    fn combining_stops_when_keys_hardly_repeat() {
        let mut c = combiner(RuntimeMode::Batch);
        let rows = 3 * MAX_KEYS as u64;
        for k in 0..rows {
            c.collect((k, 1), NO_TIMESTAMP);
        }
        assert!(!c.on, "every key distinct: combining stopped");
        // Rows after it pass straight through.
        assert_eq!(c.exchange.0.len() as u64, rows);
        c.finish().unwrap();
        assert_eq!(totals(&c.exchange.0).len() as u64, rows);
    }
}
