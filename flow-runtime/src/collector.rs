//! The push interface every fused operator, exchange and sink writer implements.
//!
//! A stage is a chain of `Collector`s nested as generic types: `Map<F, Filter<G, Sink>>`.
//! `collect` is the per-row path and returns nothing, so it inlines into a tight loop;
//! everything that can fail (I/O, a closed channel) is reported at the next batch boundary
//! through [`Collector::flush`], [`Collector::watermark`] or [`Collector::finish`].

use crate::exec::{CheckpointId, TaskMetrics};
use crate::time::Timestamp;
use crate::Result;

/// What an operator did with a checkpoint barrier ([`Collector::barrier`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Snapshot {
    /// The operator took its part of the checkpoint (a sink made everything before the barrier
    /// durable) and passed the barrier on.
    Taken,
    /// The operator holds state it cannot snapshot, so the checkpoint cannot complete; names
    /// the operator (or type) for the log.
    Declined(&'static str),
}

impl Snapshot {
    /// Both parts taken, or the first decline.
    pub fn and(self, other: Snapshot) -> Snapshot {
        match self {
            Snapshot::Taken => other,
            declined => declined,
        }
    }
}

/// Receives the rows of one stream, one by one, inside a fused stage.
pub trait Collector<T> {
    /// Handles one row with its event timestamp ([`NO_TIMESTAMP`](crate::time::NO_TIMESTAMP)
    /// when the job has no event time). Operators pass the timestamp on with the rows they
    /// derive from it, as Flink's records keep theirs.
    fn collect(&mut self, row: T, ts: Timestamp);

    /// Called after every input batch: forward buffered output, report deferred errors.
    ///
    /// # Errors
    /// An error recorded since the last call (a failed write, a closed channel).
    #[inline]
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    /// The event-time clock advanced to `watermark`.
    ///
    /// # Errors
    /// As for [`Collector::flush`].
    fn watermark(&mut self, watermark: Timestamp) -> Result<()>;

    /// Whether the upstream is idle (emits no rows for a while): an idle input does not hold
    /// back the watermark of the operators after it.
    ///
    /// # Errors
    /// As for [`Collector::flush`].
    fn idle(&mut self, _idle: bool) -> Result<()> {
        Ok(())
    }

    /// A checkpoint barrier: every row before it has been collected. The operator takes its
    /// part of checkpoint `id` and passes the barrier on; a sink makes everything it was given
    /// durable first (the sources commit their positions once every task took its part).
    ///
    /// The default declines: a collector that does not know how to take part keeps the job's
    /// checkpoints from completing, which is safe (sources then commit only at a successful
    /// end).
    ///
    /// # Errors
    /// As for [`Collector::flush`] (a sink that cannot make its rows durable).
    fn barrier(&mut self, id: CheckpointId) -> Result<Snapshot> {
        let _ = id;
        Ok(Snapshot::Declined(std::any::type_name::<Self>()))
    }

    /// End of input: emit final results (batch mode), close user functions, commit files.
    ///
    /// # Errors
    /// The first error of this operator or the ones after it.
    fn finish(&mut self) -> Result<()>;

    /// Adds this operator's and its successors' counters to `metrics`.
    fn report(&self, metrics: &mut TaskMetrics);
}

/// Moves the rows a function emitted into `next`, all with timestamp `ts`; returns how many,
/// for the operator's output count. `rows` keeps its capacity for the next call.
#[inline]
pub(crate) fn drain_into<T, N: Collector<T>>(
    rows: &mut Vec<T>,
    next: &mut N,
    ts: Timestamp,
) -> u64 {
    let n = rows.len() as u64;
    for row in rows.drain(..) {
        next.collect(row, ts);
    }
    n
}

/// Sends each row to two collectors: a stream consumed twice. The row is cloned here, and only
/// here, once per extra consumer.
pub struct Tee<A, B> {
    first: A,
    second: B,
}

impl<A, B> Tee<A, B> {
    /// A fan-out to `first` and `second`.
    pub fn new(first: A, second: B) -> Self {
        Tee { first, second }
    }
}

impl<T: Clone, A: Collector<T>, B: Collector<T>> Collector<T> for Tee<A, B> {
    #[inline]
    fn collect(&mut self, row: T, ts: Timestamp) {
        self.first.collect(row.clone(), ts);
        self.second.collect(row, ts);
    }
    #[inline]
    fn flush(&mut self) -> Result<()> {
        let a = self.first.flush();
        let b = self.second.flush();
        a.and(b)
    }
    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        let a = self.first.watermark(watermark);
        let b = self.second.watermark(watermark);
        a.and(b)
    }
    fn idle(&mut self, idle: bool) -> Result<()> {
        let a = self.first.idle(idle);
        let b = self.second.idle(idle);
        a.and(b)
    }
    fn barrier(&mut self, id: CheckpointId) -> Result<Snapshot> {
        let a = self.first.barrier(id)?;
        let b = self.second.barrier(id)?;
        Ok(a.and(b))
    }
    fn finish(&mut self) -> Result<()> {
        let a = self.first.finish();
        let b = self.second.finish();
        a.and(b)
    }
    fn report(&self, metrics: &mut TaskMetrics) {
        self.first.report(metrics);
        self.second.report(metrics);
    }
}

/// Discards every row: the end of a chain that feeds nothing (benchmarks use it as a sink).
#[derive(Clone, Copy, Debug, Default)]
pub struct Discard;

impl<T> Collector<T> for Discard {
    #[inline(always)]
    fn collect(&mut self, row: T, _: Timestamp) {
        std::hint::black_box(row);
    }
    fn watermark(&mut self, _: Timestamp) -> Result<()> {
        Ok(())
    }
    fn barrier(&mut self, _: CheckpointId) -> Result<Snapshot> {
        Ok(Snapshot::Taken)
    }
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
    fn report(&self, _: &mut TaskMetrics) {}
}
