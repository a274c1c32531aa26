//! The links of a fused stage: what every operator adapter, exchange, fan-out and side output
//! implements so that a stage is one nested generic type the compiler inlines into one loop.
//!
//! A stage's chain is `Chained<Map, Chained<Filter, Chained<SinkOp, Discard>>>`-like: rows go
//! down by [`Collector::collect`], which returns nothing so it inlines into a tight loop;
//! everything else ([`Control`]: watermarks, idleness, barriers, the end of input, metrics)
//! goes down the same links at batch boundaries, where a failure (I/O, a closed channel) is
//! reported. Operators never see these links: they implement
//! [`Operator`](crate::operator::Operator) and the adapter does the forwarding.

use crate::context::RuntimeContext;
use crate::exec::{CheckpointId, TaskMetrics};
use crate::snapshot::TaskState;
use crate::time::Timestamp;
use crate::Result;

/// What an operator did with a checkpoint barrier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Snapshot {
    /// The operator took its part of the checkpoint (a sink made everything before the barrier
    /// durable) and passed the barrier on.
    Taken,
    /// The operator holds state it cannot snapshot, so the checkpoint cannot complete; names
    /// the operator for the log (an operator may leave it empty: its chain link fills in the
    /// operator's name).
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

/// Everything but rows that travels down a chain. Every method is required: a link that
/// forwards must forward all of them, and the few links there are (the operator adapter,
/// exchanges, fan-out, side outputs, the end of a chain) each say what they do.
pub trait Control {
    /// Before the first row, in the task's thread: downstream links open before upstream ones,
    /// so an operator may emit from `open`.
    ///
    /// # Errors
    /// An operator or sink that cannot start (bad configuration, a file it cannot create).
    fn open(&mut self, ctx: &RuntimeContext) -> Result<()>;

    /// After every input batch, and at least every 50 ms while the input is quiet: forward
    /// buffered output, fire what is due by processing time, report deferred errors.
    ///
    /// # Errors
    /// An error recorded since the last call (a failed write, a closed channel).
    fn flush(&mut self) -> Result<()>;

    /// The event-time clock advanced to `watermark`.
    ///
    /// # Errors
    /// As for [`Control::flush`].
    fn watermark(&mut self, watermark: Timestamp) -> Result<()>;

    /// Whether the upstream is idle (emits no rows for a while): an idle input does not hold
    /// back the watermark of the operators after it.
    ///
    /// # Errors
    /// As for [`Control::flush`].
    fn idle(&mut self, idle: bool) -> Result<()>;

    /// A checkpoint barrier: every row before it has been collected. Each link takes its part
    /// of checkpoint `id` (its operator's state into `state`) and passes the barrier on; a
    /// sink makes everything it was given durable first (the sources commit their positions
    /// once every task took its part).
    ///
    /// # Errors
    /// As for [`Control::flush`] (a sink that cannot make its rows durable).
    fn barrier(&mut self, id: CheckpointId, state: &mut TaskState) -> Result<Snapshot>;

    /// In an instance group, the reader of the repartition partitions this stage reads
    /// commits its positions: each operator that keeps keyed state writes all of it into
    /// `state`, and with `clear` (the partitions were taken away in a rebalance) drops it
    /// ([`Operator::clear_state`](crate::operator::Operator::clear_state)), for the instances
    /// that get the partitions. Stops at the stage's end (an exchange).
    ///
    /// # Errors
    /// An operator whose state cannot move, or that cannot save it.
    fn release(&mut self, state: &mut TaskState, clear: bool) -> Result<()>;

    /// In an instance group, this stage's reader got partitions: each operator adds the state
    /// `state` holds for it (what the instance that had them saved).
    ///
    /// # Errors
    /// The state is of other types, or does not decode.
    fn adopt(&mut self, ctx: &RuntimeContext, state: &crate::snapshot::Adopted) -> Result<()>;

    /// In an instance group, the stage's Kafka source or repartition reader is about to
    /// commit its positions (a group's commits are its sinks' checkpoints): each sink of the
    /// stage makes what it was given durable and visible now
    /// ([`Operator::commit_output`](crate::operator::Operator::commit_output)), so that no
    /// row before the positions is lost if the instance dies after the commit. Called after
    /// a flush with every exchange sending its partial batches. At the stage's end, a
    /// repartition writer waits for its records' acknowledgements, and an in-process exchange
    /// has each subtask of the next stage do the same and waits for their answers.
    ///
    /// # Errors
    /// A sink that cannot make its rows durable.
    fn commit_output(&mut self) -> Result<()>;

    /// Checkpoint `id` completed (every task took its part, and with a checkpoint directory it
    /// is on disk): sinks commit what they prepared for it (two-phase commit).
    ///
    /// # Errors
    /// Committing failed.
    fn checkpoint_complete(&mut self, id: CheckpointId) -> Result<()>;

    /// End of input: emit final results (batch mode, timers, windows), close user functions,
    /// commit files.
    ///
    /// # Errors
    /// The first error of this link or the ones after it.
    fn finish(&mut self) -> Result<()>;

    /// Adds this link's and its successors' counters to `metrics`.
    fn report(&self, metrics: &mut TaskMetrics);
}

/// Receives the rows of one stream, one by one, inside a fused stage.
pub trait Collector<T>: Control {
    /// Handles one row with its event timestamp ([`NO_TIMESTAMP`](crate::time::NO_TIMESTAMP)
    /// when the job has no event time). Operators pass the timestamp on with the rows they
    /// derive from it, as Flink's records keep theirs.
    fn collect(&mut self, row: T, ts: Timestamp);
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
}

/// `impl Control` for a link that passes everything on to two links, `$first` and `$second`
/// (fields of `$ty`): both are called even if the first fails, and the first error is
/// returned. A barrier is taken only if both took it.
macro_rules! control_of_pair {
    (impl<$($p:ident),*> Control for $ty:ty { $first:ident, $second:ident } $(where $($w:tt)*)?) => {
        impl<$($p),*> $crate::chain::Control for $ty $(where $($w)*)? {
            fn open(&mut self, ctx: &$crate::context::RuntimeContext) -> $crate::Result<()> {
                let a = self.$first.open(ctx);
                a.and(self.$second.open(ctx))
            }
            #[inline]
            fn flush(&mut self) -> $crate::Result<()> {
                let a = self.$first.flush();
                a.and(self.$second.flush())
            }
            fn watermark(&mut self, watermark: $crate::time::Timestamp) -> $crate::Result<()> {
                let a = self.$first.watermark(watermark);
                a.and(self.$second.watermark(watermark))
            }
            fn idle(&mut self, idle: bool) -> $crate::Result<()> {
                let a = self.$first.idle(idle);
                a.and(self.$second.idle(idle))
            }
            fn barrier(
                &mut self,
                id: $crate::exec::CheckpointId,
                state: &mut $crate::snapshot::TaskState,
            ) -> $crate::Result<$crate::chain::Snapshot> {
                let a = self.$first.barrier(id, state)?;
                Ok(a.and(self.$second.barrier(id, state)?))
            }
            fn release(
                &mut self,
                state: &mut $crate::snapshot::TaskState,
                clear: bool,
            ) -> $crate::Result<()> {
                self.$first.release(state, clear)?;
                self.$second.release(state, clear)
            }
            fn adopt(
                &mut self,
                ctx: &$crate::context::RuntimeContext,
                state: &$crate::snapshot::Adopted,
            ) -> $crate::Result<()> {
                self.$first.adopt(ctx, state)?;
                self.$second.adopt(ctx, state)
            }
            fn commit_output(&mut self) -> $crate::Result<()> {
                let a = self.$first.commit_output();
                a.and(self.$second.commit_output())
            }
            fn checkpoint_complete(
                &mut self,
                id: $crate::exec::CheckpointId,
            ) -> $crate::Result<()> {
                let a = self.$first.checkpoint_complete(id);
                a.and(self.$second.checkpoint_complete(id))
            }
            fn finish(&mut self) -> $crate::Result<()> {
                let a = self.$first.finish();
                a.and(self.$second.finish())
            }
            fn report(&self, metrics: &mut $crate::exec::TaskMetrics) {
                self.$first.report(metrics);
                self.$second.report(metrics);
            }
        }
    };
}
pub(crate) use control_of_pair;

control_of_pair!(impl<A, B> Control for Tee<A, B> { first, second } where A: Control, B: Control);

/// The end of a chain that feeds nothing: after a sink, or an operator whose output nobody
/// reads. Rows reaching it are dropped.
#[derive(Clone, Copy, Debug, Default)]
pub struct Discard;

impl<T> Collector<T> for Discard {
    #[inline(always)]
    fn collect(&mut self, _: T, _: Timestamp) {}
}

/// `impl Control` for a link that ends a chain and does nothing but take rows: no state,
/// nothing to flush or commit.
macro_rules! control_of_end {
    ($ty:ty) => {
        impl $crate::chain::Control for $ty {
            fn open(&mut self, _: &$crate::context::RuntimeContext) -> $crate::Result<()> {
                Ok(())
            }
            #[inline(always)]
            fn flush(&mut self) -> $crate::Result<()> {
                Ok(())
            }
            fn watermark(&mut self, _: $crate::time::Timestamp) -> $crate::Result<()> {
                Ok(())
            }
            fn idle(&mut self, _: bool) -> $crate::Result<()> {
                Ok(())
            }
            fn barrier(
                &mut self,
                _: $crate::exec::CheckpointId,
                _: &mut $crate::snapshot::TaskState,
            ) -> $crate::Result<$crate::chain::Snapshot> {
                Ok($crate::chain::Snapshot::Taken)
            }
            fn release(
                &mut self,
                _: &mut $crate::snapshot::TaskState,
                _: bool,
            ) -> $crate::Result<()> {
                Ok(())
            }
            fn adopt(
                &mut self,
                _: &$crate::context::RuntimeContext,
                _: &$crate::snapshot::Adopted,
            ) -> $crate::Result<()> {
                Ok(())
            }
            fn commit_output(&mut self) -> $crate::Result<()> {
                Ok(())
            }
            fn checkpoint_complete(&mut self, _: $crate::exec::CheckpointId) -> $crate::Result<()> {
                Ok(())
            }
            fn finish(&mut self) -> $crate::Result<()> {
                Ok(())
            }
            fn report(&self, _: &mut $crate::exec::TaskMetrics) {}
        }
    };
}
#[cfg(test)]
pub(crate) use control_of_end;

control_of_end!(Discard);
