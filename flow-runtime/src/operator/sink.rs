//! `sink_to(sink)`, `print()`, `collect()`: the end of a stream. A [`Sink`] creates one
//! [`SinkWriter`] per parallel subtask, the last operator of its stage's chain.

use super::{Operator, Output};
use crate::chain::Snapshot;
use crate::context::RuntimeContext;
use crate::exec::{CheckpointId, JobBuilder};
use crate::instances::InstanceConfig;
use crate::port::{Checked, Stream};
use crate::row::text::HasText;
use crate::row::RowText;
use crate::snapshot::{StateReader, StateWriter};
use crate::time::Timestamp;
use crate::Result;
use std::marker::PhantomData;
use std::sync::Arc;

/// Where a stream's rows end up (Flink's `Sink`): it creates one writer per subtask.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot write rows of type `{T}`",
    label = "this sink does not accept the stream's rows",
    note = "check the row type the sink was built for against the stream's row type"
)]
pub trait Sink<T>: Send + Sync + 'static {
    /// The per-subtask writer.
    type Writer: SinkWriter<T>;
    /// The parallelism the sink insists on (`None`: the stream's).
    fn parallelism(&self) -> Option<usize> {
        None
    }
    /// Checks, when the job is built (before it joins its instance group or starts a task),
    /// that the sink can run in it: `instances` configures the group when the job runs as one
    /// instance of a group (`--instance-group`). The default accepts.
    ///
    /// # Errors
    /// The sink cannot give its guarantee there (exactly-once in a group, say): the job fails
    /// with this error before it starts.
    fn check(&self, instances: Option<&InstanceConfig>) -> Result<()> {
        let _ = instances;
        Ok(())
    }
    /// Opens the writer of subtask `ctx.subtask_index()`, in the subtask's thread.
    ///
    /// # Errors
    /// The sink cannot be opened (directory not creatable, ...).
    fn create_writer(&self, ctx: &RuntimeContext) -> Result<Self::Writer>;
}

/// A sink that could not be built fails the job when its writers open, with the error it was
/// built with (the sinks of SQL tables, which `flow!` builds, report a configuration error so).
#[diagnostic::do_not_recommend]
impl<T, S: Sink<T>> Sink<T> for std::result::Result<S, crate::Error> {
    type Writer = S::Writer;
    fn parallelism(&self) -> Option<usize> {
        self.as_ref().ok().and_then(S::parallelism)
    }
    fn check(&self, instances: Option<&InstanceConfig>) -> Result<()> {
        match self {
            Ok(sink) => sink.check(instances),
            Err(e) => Err(crate::Error::Config(e.to_string())),
        }
    }
    fn create_writer(&self, ctx: &RuntimeContext) -> Result<S::Writer> {
        match self {
            Ok(sink) => sink.create_writer(ctx),
            Err(e) => Err(crate::Error::Config(e.to_string())),
        }
    }
}

/// One subtask's writer of a [`Sink`] (Flink's `SinkWriter`).
///
/// [`write`](SinkWriter::write) is on the row path and returns nothing: a writer records a
/// failure and reports it from the next [`flush`](SinkWriter::flush), which runs after every
/// input batch.
///
/// # Examples
/// A sink that counts its rows:
/// ```
/// use flow_runtime::snapshot::StateWriter;
/// use flow_runtime::{CheckpointId, Result, RuntimeContext, Sink, SinkWriter, Snapshot, Timestamp};
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// struct Count(Arc<AtomicU64>);
/// struct CountWriter(Arc<AtomicU64>, u64);
///
/// impl<T> Sink<T> for Count {
///     type Writer = CountWriter;
///     fn create_writer(&self, _: &RuntimeContext) -> Result<CountWriter> {
///         Ok(CountWriter(self.0.clone(), 0))
///     }
/// }
///
/// impl<T> SinkWriter<T> for CountWriter {
///     fn write(&mut self, _: T, _: Timestamp) {
///         self.1 += 1;
///     }
///     /// Everything written so far is counted: the checkpoint may complete.
///     fn checkpoint(&mut self, _: CheckpointId, _: &mut StateWriter) -> Result<Snapshot> {
///         SinkWriter::<T>::finish(self)?;
///         Ok(Snapshot::Taken)
///     }
///     fn finish(&mut self) -> Result<()> {
///         self.0.fetch_add(std::mem::take(&mut self.1), Ordering::Relaxed);
///         Ok(())
///     }
/// }
/// ```
pub trait SinkWriter<T> {
    /// Writes one row with its event timestamp.
    fn write(&mut self, row: T, ts: Timestamp);

    /// After every input batch, and at least every 50 ms while the input is quiet: hand
    /// buffered rows on, roll files by time, report a failed write.
    ///
    /// # Errors
    /// A write that failed since the last call.
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    /// The event-time clock advanced to `watermark` (Flink's `writeWatermark`): every row
    /// written after this has a later timestamp or is late.
    ///
    /// # Errors
    /// A write that failed since the last call.
    fn on_watermark(&mut self, watermark: Timestamp) -> Result<()> {
        let _ = watermark;
        Ok(())
    }

    /// A checkpoint barrier: make every row written so far durable (wait for a broker's
    /// acknowledgements, flush a file), so that the sources may commit the positions of the
    /// rows before it. A transactional writer *prepares* here (Flink's `preCommit`: an
    /// in-progress file becomes pending) and writes what it prepared to `state`, then commits
    /// it in [`checkpoint_complete`](SinkWriter::checkpoint_complete). The default declines:
    /// a writer that cannot promise durability keeps the job's checkpoints from completing,
    /// which is safe (sources then commit only at a successful end).
    ///
    /// # Errors
    /// The rows cannot be made durable.
    fn checkpoint(&mut self, id: CheckpointId, state: &mut StateWriter) -> Result<Snapshot> {
        let _ = (id, state);
        Ok(Snapshot::Declined(""))
    }

    /// Checkpoint `id` completed: commit what was prepared for it and for earlier ones (make
    /// pending files visible, commit a transaction).
    ///
    /// In an instance group (which takes no checkpoints) each commit of the group's positions
    /// calls [`checkpoint`](SinkWriter::checkpoint) with a state that is not kept, then this,
    /// with ids 1, 2, ... of its own.
    ///
    /// # Errors
    /// Committing failed.
    fn checkpoint_complete(&mut self, id: CheckpointId) -> Result<()> {
        let _ = id;
        Ok(())
    }

    /// The job restarts from a checkpoint in which this writer's subtask(s) wrote `state`:
    /// commit what they prepared for that checkpoint (it completed) and discard anything
    /// newer. Called after [`Sink::create_writer`], before the first row.
    ///
    /// # Errors
    /// The state does not decode, or committing failed.
    fn restore(&mut self, state: &StateReader) -> Result<()> {
        let _ = state;
        Ok(())
    }

    /// The end of input: make everything written durable and visible (commit files).
    ///
    /// # Errors
    /// Committing failed.
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A sink writer as the last operator of a chain: emits nothing; its output count in the
/// job's metrics is the rows it wrote, which is every row it received.
pub struct SinkOp<W> {
    writer: W,
    commits: GroupCommits,
}

impl<W> SinkOp<W> {
    /// The operator writing with `writer`.
    pub fn new(writer: W) -> Self {
        SinkOp {
            writer,
            commits: GroupCommits::default(),
        }
    }
}

/// A sink writer's commits in an instance group, which takes no checkpoints: each of the
/// group's commits is a checkpoint of the writer's own (ids 1, 2, ..), prepared and completed
/// at once, before the positions commit (at least once: the writer commits rows whose
/// positions the instance may die before committing). A writer with transactions of its own
/// in an exactly-once group (a `FileSink`, an exactly-once `JdbcSink`) only prepares them at
/// the checkpoint, for the group's Kafka transaction to commit.
#[derive(Debug, Default)]
pub struct GroupCommits(CheckpointId);

impl GroupCommits {
    /// Makes what `writer` was given durable and visible now. A writer that declines
    /// checkpoints cannot promise durability: its rows go as they go.
    ///
    /// # Errors
    /// The writer cannot make its rows durable, or commit them.
    pub fn commit<T, W: SinkWriter<T> + ?Sized>(&mut self, writer: &mut W) -> Result<()> {
        self.0 += 1;
        match writer.checkpoint(self.0, &mut StateWriter::detached())? {
            Snapshot::Taken => writer.checkpoint_complete(self.0),
            Snapshot::Declined(_) => Ok(()),
        }
    }
}

/// What a sink emits: nothing (a type without values).
#[derive(Clone, Copy, Debug)]
pub enum NoRows {}

impl<T, W: SinkWriter<T>> Operator<T> for SinkOp<W> {
    type Out = NoRows;
    const ONE_TO_ONE: bool = true;
    #[inline(always)]
    fn process(&mut self, row: T, ts: Timestamp, _: &mut impl Output<NoRows>) {
        self.writer.write(row, ts);
    }
    fn on_tick(&mut self, _: &mut impl Output<NoRows>) -> Result<()> {
        self.writer.flush()
    }
    fn on_watermark(&mut self, watermark: Timestamp, _: &mut impl Output<NoRows>) -> Result<()> {
        self.writer.on_watermark(watermark)
    }
    /// A sink's state (its pending output) is committed when the checkpoint completes, so a
    /// checkpoint without storage completes too.
    fn snapshot(&mut self, id: CheckpointId, state: &mut StateWriter) -> Result<Snapshot> {
        state.restore_only();
        self.writer.checkpoint(id, state)
    }
    fn checkpoint_complete(&mut self, id: CheckpointId) -> Result<()> {
        self.writer.checkpoint_complete(id)
    }
    /// An instance group has no checkpoints: see [`GroupCommits`].
    fn commit_output(&mut self) -> Result<()> {
        self.commits.commit(&mut self.writer)
    }
    fn restore(&mut self, state: &StateReader) -> Result<()> {
        self.writer.restore(state)
    }
    fn end_of_input(&mut self, _: &mut impl Output<NoRows>) -> Result<()> {
        self.writer.finish()
    }
}

/// A sink for rows of type `T`, shared by its subtasks: what the `sink_to` port returns.
pub struct SinkSpec<S, T>(Arc<S>, PhantomData<fn(T)>);

impl<S, T> Clone for SinkSpec<S, T> {
    fn clone(&self) -> Self {
        SinkSpec(self.0.clone(), PhantomData)
    }
}

impl<T, S: Sink<T>> SinkSpec<S, T> {
    /// The sink operator of the task's subtask, with its writer opened.
    ///
    /// # Errors
    /// The sink cannot be opened.
    pub fn writer(&self, ctx: &RuntimeContext) -> Result<SinkOp<S::Writer>> {
        Ok(SinkOp::new(self.0.create_writer(ctx)?))
    }
    /// Has the sink check the job `job` builds ([`Sink::check`]): a refusal fails the job
    /// before it starts.
    pub fn check_job(&self, job: &mut JobBuilder) {
        if let Err(e) = self.0.check(job.instances()) {
            job.fail(e);
        }
    }
}

impl<T: Send + 'static, K> Stream<T, K> {
    /// `sink_to`: the sink, shared by its subtasks' writers.
    pub fn sink_to<S: Sink<T>>(&self, sink: S) -> Checked<S::Writer, SinkSpec<S, T>> {
        SinkSpec(Arc::new(sink), PhantomData)
    }
    /// `print`: `sink_to` for a sink that writes the rows' text form. A row type without one
    /// is reported once, here.
    pub fn print<S: Sink<T>, M, P>(&self, sink: S) -> Checked<P, SinkSpec<S, T>>
    where
        T: RowText + HasText<M, Is = P>,
    {
        SinkSpec(Arc::new(sink), PhantomData)
    }
}
