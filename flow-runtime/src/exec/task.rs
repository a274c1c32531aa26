//! The loops that drive one subtask's fused chain, from a source reader or an input gate.
//!
//! Each loop is written once, here, against a stage's chain seen one batch or event at a time
//! (`dyn` [`SourceStage`], [`GateStage`], [`TwoGateStage`]): what a job compiles for each of
//! its stages is only the per-row part (the reader's poll into the chain, a batch's rows into
//! the chain), not the loop, its checkpoint steps and its channels. One virtual call per batch
//! of up to 1024 rows costs nothing measurable; the loops instantiated per stage were a
//! quarter of a small job's generated code.

use crate::chain::{Collector, Control, Snapshot};
use crate::channel::{Gate, GateEvent, InputGate, Rows, BATCH_SIZE};
use crate::context::RuntimeContext;
use crate::exec::checkpoint::AfterFinish;
use crate::exec::live::Publisher;
use crate::exec::worker;
use crate::exec::{CheckpointId, FINAL_CHECKPOINT};
use crate::instances::{Handover, StageSplits};
use crate::operator::source::{PartitionLag, Poll, SourceOutput, SourceReader};
use crate::operator::Either;
use crate::operator::{restore_with, snapshot_with};
use crate::snapshot::{materialize_all, states_of, FinishedTask, Released, TaskState};
use crate::time::{
    SourceWatermarks, Timestamp, TimestampAssigner, Watermarks, MAX_WATERMARK, MIN_WATERMARK,
    NO_TIMESTAMP,
};
use crate::{Error, Result};
use std::marker::PhantomData;
use std::time::Duration;

/// How long an input gate waits before it lets the chain flush (time-based rolling, partial
/// batches) and checks for cancellation.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// Rows each operator of a subtask emitted, by plan node id; summed over subtasks into the
/// [`JobResult`](super::JobResult).
#[derive(Clone, Debug, Default)]
pub struct TaskMetrics {
    pub(crate) out: Vec<(u32, u64)>,
    pub(crate) late: Vec<(u32, u64)>,
    pub(crate) skipped: Vec<(u32, u64)>,
    pub(crate) dead_lettered: Vec<(u32, u64)>,
    /// Time the task waited for input (Flink's idle time).
    pub(crate) idle: Duration,
    /// Time the task's output waited for room downstream (Flink's backpressured time).
    pub(crate) backpressured: Duration,
    /// Rows the task's input gates delivered (its first operator's rows in).
    pub(crate) received: u64,
    /// The lowest of the watermarks its exchanges last sent downstream (`None`: it has no
    /// exchange, or none sent one yet).
    pub(crate) output_watermark: Option<Timestamp>,
}

impl TaskMetrics {
    /// Adds time the task's output waited for room in a full channel downstream.
    pub fn add_backpressured(&mut self, waited: Duration) {
        self.backpressured += waited;
    }

    /// An exchange of the task last sent `watermark` downstream.
    pub fn add_output_watermark(&mut self, watermark: Timestamp) {
        self.output_watermark = Some(
            self.output_watermark
                .map_or(watermark, |w| w.min(watermark)),
        );
    }

    /// Adds `rows` to node `node`'s output count.
    pub fn add_out(&mut self, node: u32, rows: u64) {
        self.out.push((node, rows));
    }

    /// Adds `records` to source node `node`'s count of bad records it skipped.
    pub fn add_skipped(&mut self, node: u32, records: u64) {
        if records > 0 {
            self.skipped.push((node, records));
        }
    }

    /// Adds `records` to source node `node`'s count of bad records it sent to a dead-letter
    /// sink.
    pub fn add_dead_lettered(&mut self, node: u32, records: u64) {
        if records > 0 {
            self.dead_lettered.push((node, records));
        }
    }

    /// Adds `rows` to node `node`'s count of late rows it dropped.
    pub fn add_late(&mut self, node: u32, rows: u64) {
        if rows > 0 {
            self.late.push((node, rows));
        }
    }
}

/// What a task runs: builds its chain in the worker thread (so `open` runs there) and drives it.
pub type TaskFn = Box<dyn FnOnce(&RuntimeContext) -> Result<TaskMetrics> + Send>;

/// One subtask of one stage.
pub struct Task {
    /// The stage index in the plan.
    pub stage: usize,
    /// The 0-based subtask.
    pub subtask: usize,
    /// The stage's parallelism.
    pub parallelism: usize,
    /// The work.
    pub run: TaskFn,
    /// Whether it needs a thread of its own (it blocks outside the [`worker`] calls).
    pub dedicated: bool,
}

/// What a source reader pushes into: assigns each row its timestamp, counts it, feeds the chain
/// and, with a zero watermark interval, emits the watermark after every row.
///
/// `EVENT_TIME` is a constant so that a job without event time has no watermark check in its
/// row loop: read per row, the flag was a load and a branch the compiler could not hoist past
/// the sink (measured: W3 at p1 +9 %, W1 +5 %, for a second instance of each source's poll).
struct Emitter<'a, C, A, const EVENT_TIME: bool> {
    chain: &'a mut C,
    assigner: &'a mut A,
    generator: &'a mut SourceWatermarks,
    /// Whether `generator` sees every row's timestamp (the watermark follows every row);
    /// else the batch's newest timestamp is kept in `max_ts` and handed to it after the poll.
    /// (Through `generator`, a row's timestamp was a load and a store per row: the chain's
    /// own stores may alias it.)
    per_row: bool,
    max_ts: Timestamp,
    rows: u64,
    error: Option<Error>,
}

impl<T, C: Collector<T>, A: TimestampAssigner<T>, const EVENT_TIME: bool> SourceOutput<T>
    for Emitter<'_, C, A, EVENT_TIME>
{
    #[inline(always)]
    fn collect(&mut self, row: T) {
        self.collect_with_timestamp(row, NO_TIMESTAMP);
    }
    #[inline(always)]
    fn collect_with_timestamp(&mut self, row: T, timestamp: Timestamp) {
        self.rows += 1;
        let ts = self.assigner.timestamp(&row, timestamp);
        self.chain.collect(row, ts);
        if EVENT_TIME {
            if !self.per_row {
                self.max_ts = self.max_ts.max(ts);
            } else if let Some(wm) = self.generator.on_row(ts) {
                if let Err(e) = self.chain.watermark(wm) {
                    self.error.get_or_insert(e);
                }
            }
        }
    }
    #[inline(always)]
    fn collect_in_split(&mut self, split: usize, row: T, timestamp: Timestamp) {
        self.rows += 1;
        let ts = self.assigner.timestamp(&row, timestamp);
        self.chain.collect(row, ts);
        if EVENT_TIME {
            if let Some(wm) = self.generator.on_split_row(split, ts) {
                if let Err(e) = self.chain.watermark(wm) {
                    self.error.get_or_insert(e);
                }
            }
        }
    }
    fn split_started(&mut self, split: usize) {
        self.generator.start_split(split);
    }
    fn split_finished(&mut self, split: usize) {
        self.generator.finish_split(split);
    }
    fn split_released(&mut self, split: usize) {
        self.generator.release_split(split);
    }
    fn split_reacquired(&mut self, split: usize) {
        self.generator.restart_split(split);
    }
    fn split_identified(&mut self, split: usize, id: u64) {
        self.generator.name_split(split, id);
    }
}

/// A source stage as its loop drives it: the reader and the chain it feeds, one batch at a
/// time.
trait SourceStage {
    /// Opens the chain, then the reader (source node `node`), restoring its position.
    fn open(&mut self, ctx: &RuntimeContext, node: u32) -> Result<()>;
    /// One poll of the reader into the chain; the poll's outcome and the rows it emitted.
    fn poll_batch(
        &mut self,
        generator: &mut SourceWatermarks,
        event_time: bool,
    ) -> Result<(Poll, u64)>;
    /// The reader's position for checkpoint `id` (source node `node`), then the barrier down
    /// the chain.
    fn checkpoint(
        &mut self,
        id: CheckpointId,
        node: u32,
        state: &mut TaskState,
    ) -> Result<Snapshot>;
    /// Checkpoint `id` completed: the reader may commit.
    fn checkpoint_complete(&mut self, id: CheckpointId) -> Result<()>;
    /// The final position (after the chain finished).
    fn snapshot_end(&mut self, node: u32, state: &mut TaskState) -> Result<()>;
    /// The chain, for watermarks, idleness, flushes and the end of input.
    fn control(&mut self) -> &mut dyn Control;
    /// Whether the reader wants a commit point ([`SourceReader::wants_commit_point`]).
    fn wants_commit_point(&self) -> bool;
    /// Flushes every exchange of the chain, then tells the reader: its commit point.
    fn commit_point(&mut self) -> Result<()>;
    /// The job drains: whether the reader ends by itself ([`SourceReader::drain`]).
    fn drain(&mut self) -> bool;
    /// The reader's counters under the source's node `node`, then the chain's.
    fn report(&self, metrics: &mut TaskMetrics, node: u32);
    /// How far the reader is (see [`SourceReader::progress`]).
    fn progress(&self) -> Option<(u64, u64)>;
    /// How far behind its partitions' ends the reader is (see
    /// [`SourceReader::partition_lag`]).
    fn partition_lag(&self) -> Vec<PartitionLag>;
}

/// A reader `R` feeding chain `C`, its rows timestamped by `A`.
struct SourceTask<R, C, A> {
    reader: R,
    /// Taken out for each batch (see [`poll_batch`]).
    chain: Option<C>,
    assigner: A,
}

impl<R, C, A> SourceTask<R, C, A> {
    fn chain(&mut self) -> &mut C {
        self.chain
            .as_mut()
            .expect("the chain is back after every batch")
    }
}

impl<R, C, A> SourceStage for SourceTask<R, C, A>
where
    R: SourceReader,
    C: Collector<R::Row>,
    A: TimestampAssigner<R::Row>,
{
    fn open(&mut self, ctx: &RuntimeContext, node: u32) -> Result<()> {
        self.chain().open(ctx)?;
        self.reader.open(ctx)?;
        let reader = &mut self.reader;
        restore_with(ctx, "source", node, &mut |state| reader.restore(state))
    }
    fn poll_batch(
        &mut self,
        generator: &mut SourceWatermarks,
        event_time: bool,
    ) -> Result<(Poll, u64)> {
        let chain = self
            .chain
            .take()
            .expect("the chain is back after every batch");
        let (chain, outcome) = poll_batch(
            &mut self.reader,
            chain,
            &mut self.assigner,
            generator,
            event_time,
        );
        self.chain = Some(chain);
        outcome
    }
    fn checkpoint(
        &mut self,
        id: CheckpointId,
        node: u32,
        state: &mut TaskState,
    ) -> Result<Snapshot> {
        let reader = &mut self.reader;
        let position = snapshot_with("source", node, state, &mut |w| {
            w.restore_only();
            reader.snapshot(id, w)
        })?;
        Ok(position.and(self.chain().barrier(id, state)?))
    }
    fn checkpoint_complete(&mut self, id: CheckpointId) -> Result<()> {
        self.reader.checkpoint_complete(id)
    }
    fn snapshot_end(&mut self, node: u32, state: &mut TaskState) -> Result<()> {
        let reader = &mut self.reader;
        let _ = snapshot_with("source", node, state, &mut |w| {
            w.restore_only();
            reader.snapshot(FINAL_CHECKPOINT, w)
        })?;
        Ok(())
    }
    fn control(&mut self) -> &mut dyn Control {
        self.chain()
    }
    fn wants_commit_point(&self) -> bool {
        self.reader.wants_commit_point()
    }
    #[cold]
    fn commit_point(&mut self) -> Result<()> {
        output_durable(self.chain())?;
        self.reader.commit_point()
    }
    fn drain(&mut self) -> bool {
        self.reader.drain()
    }
    fn report(&self, metrics: &mut TaskMetrics, node: u32) {
        self.reader.report(metrics, node);
        if let Some(chain) = &self.chain {
            chain.report(metrics);
        }
    }
    fn progress(&self) -> Option<(u64, u64)> {
        self.reader.progress()
    }
    fn partition_lag(&self) -> Vec<PartitionLag> {
        let mut lag = Vec::new();
        self.reader.partition_lag(&mut lag);
        lag
    }
}

/// Drives `chain` from a source reader until the reader finishes, then ends the stream.
///
/// Timestamps come from `assigner` (or the source); watermarks follow `watermarks`, emitted
/// every `ctx.watermark_interval()` of processing time (after every row when it is zero),
/// with [`MAX_WATERMARK`] at the end of a bounded split.
///
/// # Errors
/// The reader's or the chain's first error, or [`Error::Cancelled`] when another task failed.
pub fn run_source<R, C, A>(
    ctx: &RuntimeContext,
    reader: R,
    chain: C,
    source_node: u32,
    watermarks: &Watermarks,
    assigner: A,
) -> Result<TaskMetrics>
where
    R: SourceReader,
    C: Collector<R::Row>,
    A: TimestampAssigner<R::Row>,
{
    let mut task = SourceTask {
        reader,
        chain: Some(chain),
        assigner,
    };
    drive_source(ctx, &mut task, source_node, watermarks)
}

/// The source loop.
fn drive_source(
    ctx: &RuntimeContext,
    task: &mut dyn SourceStage,
    source_node: u32,
    watermarks: &Watermarks,
) -> Result<TaskMetrics> {
    let has_event_time = watermarks.has_event_time();
    // Batch mode has no intermediate watermarks (as Flink's BATCH runtime mode): every window
    // and timer fires at the end of input, and no row is late.
    let event_time = has_event_time && ctx.mode() != crate::env::RuntimeMode::Batch;
    // In an instance group each split's own watermark goes to the repartition topics the
    // chain writes (registered before the chain's writers open, which look for it).
    let splits = (event_time && ctx.instance_group)
        .then(|| crate::instances::register_source_splits(ctx.subtask_key()));
    task.open(ctx, source_node)?;
    // Its clocks (idleness, the interval) start once the task opened.
    let mut generator = SourceWatermarks::new(watermarks, ctx.watermark_interval());
    if let Some(registered) = &splits {
        generator.publish_splits(registered.splits.clone(), ctx.stage);
    }
    // A checkpoint triggered while the task was opening (its writers connecting to a
    // broker, say) is taken at the first step: none completes without this source's barrier.
    let mut progress = SourceCheckpoints {
        taken: ctx.checkpoints.completed(),
        committed: ctx.checkpoints.completed(),
    };
    let mut rows = 0u64;
    let mut publisher = Publisher::new(&ctx.live);
    let mut watermark = MIN_WATERMARK;
    let mut idle = Duration::ZERO;
    let mut draining = false;
    loop {
        if ctx.is_cancelled() {
            return Err(Error::Cancelled(ctx.task_name()));
        }
        if publisher.due() {
            publish_source(ctx, task, source_node, rows, watermark, idle);
        }
        if progress.pending(ctx) {
            progress.step(ctx, task, source_node)?;
        }
        if !draining && super::signal::drain_requested() {
            // The end of input, here (SIGUSR1): the reader ends now, or by itself.
            draining = true;
            super::signal::announce_drain();
            tracing::debug!(task = %ctx.task_name(), "draining: the source ends here");
            if !task.drain() {
                break;
            }
        }
        let stop = ctx.checkpoints.stop_at();
        if stop != 0 && progress.taken >= stop {
            // The savepoint's barrier is out: no more rows. Once it completed, commit and end
            // here, without the end of input (windows stay open in the savepoint).
            while ctx.checkpoints.completed() < stop {
                if ctx.is_cancelled() {
                    return Err(Error::Cancelled(ctx.task_name()));
                }
                worker::sleep(Duration::from_millis(1));
            }
            progress.step(ctx, task, source_node)?;
            return Ok(source_metrics(task, source_node, rows));
        }
        let (poll, polled) = task.poll_batch(&mut generator, event_time)?;
        rows += polled;
        // A holding source's watermark stays, and it does not become idle.
        if event_time && poll != Poll::Hold {
            let (wm, status) = generator.on_poll(polled > 0);
            if let Some(idle) = status {
                task.control().idle(idle)?;
            }
            if let Some(wm) = wm {
                watermark = wm;
                task.control().watermark(wm)?;
            }
        }
        task.control().flush()?;
        if task.wants_commit_point() {
            task.commit_point()?;
        }
        match poll {
            Poll::Ready => worker::tick(),
            Poll::Idle | Poll::Hold => {
                let start = std::time::Instant::now();
                worker::sleep(Duration::from_millis(1));
                idle += start.elapsed();
            }
            Poll::Finished => break,
        }
    }
    // The final position, taken before the end of input goes down the chain: a fused
    // subtask's keyed stages take part in checkpoints, with this position, until every other
    // subtask ended too (`FusedExchange`). It is committed once the whole job ended well:
    // until then the rows before it may still be on their way to a sink in another task.
    let mut last = ctx.task_state(FINAL_CHECKPOINT);
    last.last = true;
    task.snapshot_end(source_node, &mut last)?;
    let position = materialize_all(std::mem::take(&mut last.operators))?;
    last.operators = states_of(&position);
    ctx.checkpoints.source_ended(ctx.task, position);
    if has_event_time {
        task.control().watermark(MAX_WATERMARK)?;
    }
    task.control().finish()?;
    let stop = ctx.checkpoints.stop_at();
    if stop != 0 && ctx.checkpoints.completed() >= stop {
        // The job stopped with a savepoint while a fused subtask's keyed stages waited for
        // the others' rows: they end without their end of input, as a gate task does, and the
        // reader commits as at the savepoint in the loop above.
        task.checkpoint_complete(stop)?;
        return Ok(source_metrics(task, source_node, rows));
    }
    if end_task(ctx, task.control(), last)? {
        task.checkpoint_complete(FINAL_CHECKPOINT)?;
    }
    Ok(source_metrics(task, source_node, rows))
}

/// A source task's counters when it ends: `rows` read by its reader, and its chain's.
fn source_metrics(task: &dyn SourceStage, node: u32, rows: u64) -> TaskMetrics {
    let mut metrics = TaskMetrics::default();
    metrics.add_out(node, rows);
    task.report(&mut metrics, node);
    metrics
}

/// Publishes a source task's counters for the metrics endpoint.
#[cold]
#[inline(never)]
fn publish_source(
    ctx: &RuntimeContext,
    task: &dyn SourceStage,
    node: u32,
    rows: u64,
    watermark: Timestamp,
    idle: Duration,
) {
    let mut metrics = TaskMetrics::default();
    metrics.add_out(node, rows);
    metrics.idle = idle;
    task.report(&mut metrics, node);
    ctx.live.publish_source(
        ctx.task,
        metrics,
        watermark,
        task.progress(),
        task.partition_lag(),
    );
}

/// Publishes an input-gate task's counters for the metrics endpoint; `watermark` is the one
/// its inputs passed to its chain.
#[cold]
#[inline(never)]
fn publish_chain(
    ctx: &RuntimeContext,
    chain: &mut dyn Control,
    watermark: Timestamp,
    idle: Duration,
    received: u64,
) {
    let mut metrics = report(chain, received);
    metrics.idle = idle;
    ctx.live.publish(ctx.task, metrics, watermark);
}

/// One batch from the reader into the chain; returns the poll's outcome and the rows it
/// emitted. The per-row loop lives here, in a function of its own with the emitter's fields
/// as locals, so that what the source loop around it keeps live does not take its registers
/// (measured: a grown `run_source` cost the stateless chain a third of its throughput). The
/// chain is moved in and back out (a copy per batch): owned here, its counters stay in
/// registers, where through a `&mut` each row would store them.
#[inline(never)]
fn poll_batch<R, C, A>(
    reader: &mut R,
    mut chain: C,
    assigner: &mut A,
    generator: &mut SourceWatermarks,
    event_time: bool,
) -> (C, Result<(Poll, u64)>)
where
    R: SourceReader,
    C: Collector<R::Row>,
    A: TimestampAssigner<R::Row>,
{
    let outcome = if event_time {
        poll_into::<_, _, _, true>(reader, &mut chain, assigner, generator)
    } else {
        poll_into::<_, _, _, false>(reader, &mut chain, assigner, generator)
    };
    (chain, outcome)
}

/// One poll of `reader` into `chain`, through an emitter with or without event time.
#[inline(always)]
fn poll_into<R, C, A, const EVENT_TIME: bool>(
    reader: &mut R,
    chain: &mut C,
    assigner: &mut A,
    generator: &mut SourceWatermarks,
) -> Result<(Poll, u64)>
where
    R: SourceReader,
    C: Collector<R::Row>,
    A: TimestampAssigner<R::Row>,
{
    let mut out = Emitter::<_, _, EVENT_TIME> {
        chain,
        assigner,
        per_row: generator.per_row(),
        generator,
        max_ts: MIN_WATERMARK,
        rows: 0,
        error: None,
    };
    let polled = reader.poll(&mut out, BATCH_SIZE);
    if EVENT_TIME {
        out.generator.saw(out.max_ts);
    }
    match (polled, out.error) {
        (Err(e), _) | (Ok(_), Some(e)) => Err(e),
        (Ok(poll), None) => Ok((poll, out.rows)),
    }
}

/// A source task's progress through the job's checkpoints.
struct SourceCheckpoints {
    /// The newest checkpoint whose barrier this source sent.
    taken: CheckpointId,
    /// The newest completed checkpoint the reader was told of.
    committed: CheckpointId,
}

impl SourceCheckpoints {
    /// Whether a checkpoint was triggered or completed since the last step.
    #[inline(always)]
    fn pending(&self, ctx: &RuntimeContext) -> bool {
        ctx.checkpoints.triggered() > self.taken || ctx.checkpoints.completed() > self.committed
    }

    /// Takes the newest triggered checkpoint (the position first, then the barrier, so the
    /// rows before the barrier are exactly the rows polled) and tells the reader of the
    /// newest completed one.
    #[cold]
    #[inline(never)]
    fn step(&mut self, ctx: &RuntimeContext, task: &mut dyn SourceStage, node: u32) -> Result<()> {
        let triggered = ctx.checkpoints.triggered();
        if triggered > self.taken {
            self.taken = triggered;
            take_part(ctx, triggered, Duration::ZERO, |state| {
                task.checkpoint(triggered, node, state)
            })?;
        }
        let completed = ctx.checkpoints.completed();
        if completed > self.committed {
            self.committed = completed;
            task.checkpoint_complete(completed)?;
            task.control().checkpoint_complete(completed)?;
        }
        Ok(())
    }
}

/// Tells `chain` of the checkpoint completed since `committed`, if any (sinks commit); returns
/// whether the job stops with a savepoint it covers: the task then ends without its end of
/// input.
pub(crate) fn commit_completed(
    ctx: &RuntimeContext,
    chain: &mut dyn Control,
    committed: &mut CheckpointId,
) -> Result<bool> {
    let completed = ctx.checkpoints.completed();
    if completed > *committed {
        *committed = completed;
        chain.checkpoint_complete(completed)?;
    }
    let stop = ctx.checkpoints.stop_at();
    Ok(stop != 0 && *committed >= stop)
}

/// The counters of a chain whose input gates delivered `received` rows.
fn report(chain: &mut dyn Control, received: u64) -> TaskMetrics {
    let mut metrics = TaskMetrics {
        received,
        ..TaskMetrics::default()
    };
    chain.report(&mut metrics);
    metrics
}

/// Takes the task's part of checkpoint `id` with `barrier` (its chain's operators write their
/// state), timed, and hands it to the coordinator; `alignment` is how long the input gate
/// held inputs back for it.
fn take_part(
    ctx: &RuntimeContext,
    id: CheckpointId,
    alignment: Duration,
    barrier: impl FnOnce(&mut TaskState) -> Result<Snapshot>,
) -> Result<()> {
    let mut state = ctx.task_state(id);
    let start = std::time::Instant::now();
    let snapshot = barrier(&mut state)?;
    state.sync = start.elapsed();
    state.alignment = alignment;
    ctx.checkpoints
        .ack(ctx.task, id, snapshot, state, ctx.subtask, ctx.parallelism);
    Ok(())
}

/// A stage that reads one input gate, as its loop drives it: a batch of rows at a time, and
/// everything else through the chain's [`Control`].
trait GateStage {
    /// A batch of rows, then a flush; returns how many rows it held.
    fn rows(&mut self, rows: Rows) -> Result<u64>;
    /// The chain, for everything but rows.
    fn control(&mut self) -> &mut dyn Control;
}

/// A chain `C` of rows `T`.
struct Typed<T, C>(C, PhantomData<fn(T)>);

impl<T: 'static, C: Collector<T>> GateStage for Typed<T, C> {
    fn rows(&mut self, rows: Rows) -> Result<u64> {
        let n = rows.feed(|row: T, ts| self.0.collect(row, ts));
        self.0.flush()?;
        Ok(n)
    }
    fn control(&mut self) -> &mut dyn Control {
        &mut self.0
    }
}

/// Drives `chain` from an input gate until every input ended.
///
/// # Errors
/// The chain's first error, or [`Error::Cancelled`] when an input broke off or another task
/// failed. In both cases `finish` is not called: nothing is committed from a failed job.
pub fn run_gate<T: 'static, C: Collector<T>>(
    ctx: &RuntimeContext,
    gate: InputGate<T>,
    chain: C,
) -> Result<TaskMetrics> {
    drive_gate(ctx, gate.gate, &mut Typed(chain, PhantomData))
}

/// The input gate loop.
fn drive_gate(
    ctx: &RuntimeContext,
    mut gate: Gate,
    stage: &mut dyn GateStage,
) -> Result<TaskMetrics> {
    // Registered before the chain's writers open, which look for them.
    let mut splits = StageSplits::register(ctx);
    stage.control().open(ctx)?;
    gate.set_aligned(ctx.aligned);
    let mut committed = ctx.checkpoints.completed();
    let mut publisher = Publisher::new(&ctx.live);
    let mut watermark = MIN_WATERMARK;
    let mut idle = Duration::ZERO;
    let mut received = 0u64;
    loop {
        if commit_completed(ctx, stage.control(), &mut committed)? {
            return Ok(report(stage.control(), received));
        }
        if publisher.due() {
            publish_chain(ctx, stage.control(), watermark, idle, received);
        }
        let waiting = std::time::Instant::now();
        let event = gate.next(IDLE_POLL);
        idle += waiting.elapsed();
        match event {
            GateEvent::Rows(rows) => {
                received += stage.rows(rows)?;
                worker::tick();
            }
            GateEvent::Watermark(w) => {
                watermark = w;
                if let Some(splits) = &mut splits {
                    splits.watermark(w);
                }
                stage.control().watermark(w)?;
            }
            GateEvent::Barrier(id) => take_part(ctx, id, gate.alignment(), |state| {
                stage.control().barrier(id, state)
            })?,
            GateEvent::Status(idle) => stage.control().idle(idle)?,
            GateEvent::Idle => {
                if ctx.is_cancelled() {
                    return Err(Error::Cancelled(ctx.task_name()));
                }
                stage.control().flush()?;
            }
            GateEvent::End => break,
            // The upstream ended after the savepoint the job stops with, or failed.
            GateEvent::Broken if commit_completed(ctx, stage.control(), &mut committed)? => {
                return Ok(report(stage.control(), received))
            }
            GateEvent::Broken => return Err(Error::Cancelled(ctx.task_name())),
            GateEvent::Handover(h) => hand_over(ctx, stage.control(), h, &mut splits)?,
            GateEvent::SecondRows(_) => return Err(second_rows_astray(ctx)),
        }
    }
    stage.control().finish()?;
    let mut last = ctx.task_state(FINAL_CHECKPOINT);
    last.last = true;
    end_task(ctx, stage.control(), last)?;
    Ok(report(stage.control(), received))
}

/// A batch of a second input's rows, or a handover, where the stage does not expect one: a
/// bug in how the job's channels were built.
fn second_rows_astray(ctx: &RuntimeContext) -> Error {
    Error::Config(format!(
        "{}: rows of a second input, or a handover of state, on a gate that takes none (a bug in flow)",
        ctx.task_name()
    ))
}

/// Before an instance group's commit of the positions of the rows `chain` was given: every
/// exchange sends what it buffered, then each sink (and repartition writer) makes its output
/// durable ([`Control::commit_output`]).
fn output_durable(chain: &mut dyn Control) -> Result<()> {
    crate::channel::flushing_all(|| chain.flush())?;
    chain.commit_output()
}

/// A repartition reader's request before it commits its positions: the stage's output of
/// the rows before the request made durable (flushed; into the reader's transaction,
/// exactly-once; each sink's output committed), and its keyed state saved and handed to the
/// reader (and dropped, when released); or the state of partitions it got adopted; or
/// where its partitions stand (`splits`: published when the stage registered them).
fn hand_over(
    ctx: &RuntimeContext,
    chain: &mut dyn Control,
    handover: Handover,
    splits: &mut Option<StageSplits>,
) -> Result<()> {
    let clear = matches!(handover, Handover::Release(..));
    match handover {
        Handover::Release(reply, hold) | Handover::Save(reply, hold) => {
            output_durable(chain)?;
            let mut state = ctx.released_state();
            chain.release(&mut state, clear)?;
            // A reader that went away (its job failing) needs no answer.
            let _ = reply.send(Released::new(state));
            if let Some(hold) = hold {
                if !hold.wait(|| ctx.is_cancelled()) {
                    return Err(Error::Cancelled(ctx.task_name()));
                }
            }
            Ok(())
        }
        Handover::Adopt(adopted) => {
            if let Some(splits) = splits {
                splits.adopted();
            }
            chain.adopt(ctx, &adopted)
        }
        Handover::Splits(partitions) => {
            if let Some(splits) = splits {
                splits.partitions(partitions);
            }
            Ok(())
        }
        Handover::Flush(reply, hold) => {
            output_durable(chain)?;
            let _ = reply.send(Released::new(ctx.released_state()));
            if let Some(hold) = hold {
                if !hold.wait(|| ctx.is_cancelled()) {
                    return Err(Error::Cancelled(ctx.task_name()));
                }
            }
            Ok(())
        }
    }
}

/// The end of a task whose chain finished: saves what its operators still hold (a sink's
/// parts or transaction waiting for their commit, with the source's final position already in
/// `last`) for every later checkpoint, and commits it with the first checkpoint that completes
/// after (it holds that state: as Flink commits a finished task's output), or when the whole
/// job ended well, whichever comes first. Waits for the job's end; returns whether it ended
/// well.
fn end_task(ctx: &RuntimeContext, chain: &mut dyn Control, mut last: TaskState) -> Result<bool> {
    let _ = chain.barrier(FINAL_CHECKPOINT, &mut last)?;
    let operators = materialize_all(last.operators)?;
    let after = ctx.checkpoints.finished(
        ctx.task,
        Some(FinishedTask {
            subtask: ctx.subtask as u32,
            parallelism: ctx.parallelism as u32,
            operators,
            after: 0,
        }),
    );
    let mut committed = false;
    loop {
        match ctx.checkpoints.wait_after_finish(after, committed) {
            AfterFinish::Checkpoint => {
                chain.checkpoint_complete(FINAL_CHECKPOINT)?;
                committed = true;
            }
            AfterFinish::JobEnded(well) => {
                if well && !committed {
                    chain.checkpoint_complete(FINAL_CHECKPOINT)?;
                }
                return Ok(well);
            }
        }
    }
}

/// A stage reading two input gates (a two-input operator): a [`GateStage`] for its second
/// input's batches too.
trait TwoGateStage: GateStage {
    /// A batch of the second input, then a flush; returns how many rows it held.
    fn rows_second(&mut self, rows: Rows) -> Result<u64>;
}

/// A chain of a two-input operator over rows `A` and `B`.
struct TwoTyped<A, B, C>(C, PhantomData<fn(A, B)>);

impl<A: 'static, B: 'static, C: Collector<Either<A, B>>> GateStage for TwoTyped<A, B, C> {
    fn rows(&mut self, rows: Rows) -> Result<u64> {
        let n = rows.feed(|row: A, ts| self.0.collect(Either::First(row), ts));
        self.0.flush()?;
        Ok(n)
    }
    fn control(&mut self) -> &mut dyn Control {
        &mut self.0
    }
}

impl<A: 'static, B: 'static, C: Collector<Either<A, B>>> TwoGateStage for TwoTyped<A, B, C> {
    fn rows_second(&mut self, rows: Rows) -> Result<u64> {
        let n = rows.feed(|row: B, ts| self.0.collect(Either::Second(row), ts));
        self.0.flush()?;
        Ok(n)
    }
}

/// Drives a two-input operator from two input gates (the stage after `connect`) until both
/// ended: each row goes in as `Either::First` or `Either::Second`. The watermark is the
/// minimum of the two gates'.
///
/// # Errors
/// As [`run_gate`].
pub fn run_two_gates<A: 'static, B: 'static, C: Collector<Either<A, B>>>(
    ctx: &RuntimeContext,
    first: InputGate<A>,
    second: InputGate<B>,
    chain: C,
) -> Result<TaskMetrics> {
    drive_two_gates(
        ctx,
        first.gate,
        second.gate,
        &mut TwoTyped(chain, PhantomData),
    )
}

/// The two-gate loop.
fn drive_two_gates(
    ctx: &RuntimeContext,
    mut first: Gate,
    mut second: Gate,
    chain: &mut dyn TwoGateStage,
) -> Result<TaskMetrics> {
    use crossbeam_channel::Select;
    let mut splits = StageSplits::register(ctx);
    chain.control().open(ctx)?;
    first.set_aligned(ctx.aligned);
    second.set_aligned(ctx.aligned);
    let mut committed = ctx.checkpoints.completed();
    let (mut wm_first, mut wm_second, mut current) = (MIN_WATERMARK, MIN_WATERMARK, MIN_WATERMARK);
    // Whether every input of each gate is idle, and whether the stage told its chain it is.
    let (mut idle_first, mut idle_second, mut idle_out) = (false, false, false);
    // The newest barrier of each side (an ended side holds none back), and the one passed on.
    let (mut b_first, mut b_second, mut barrier) = (0, 0, 0);
    // Which side an event came from.
    enum Side {
        First(GateEvent),
        Second(GateEvent),
    }
    let mut publisher = Publisher::new(&ctx.live);
    let mut idle = Duration::ZERO;
    let mut received = 0u64;
    // On a worker: which gate was looked at first last time, and since when neither had a
    // message.
    let mut prefer_second = false;
    let mut waiting_since: Option<std::time::Instant> = None;
    // Off a worker: when the select gives up if no event comes. A deadline, not a timeout
    // per message (as `Gate::next`): messages that make no event must not keep the idle
    // flush from coming.
    let mut deadline: Option<std::time::Instant> = None;
    loop {
        if commit_completed(ctx, chain.control(), &mut committed)? {
            return Ok(report(chain.control(), received));
        }
        if publisher.due() {
            publish_chain(ctx, chain.control(), current, idle, received);
        }
        let event = if let Some(e) = first.take_pending() {
            Side::First(e)
        } else if let Some(e) = second.take_pending() {
            Side::Second(e)
        } else if first.is_done() && second.is_done() {
            break;
        } else if worker::cooperative() {
            // On a worker: the gates in turn, the worker's other tasks while neither has a
            // message.
            prefer_second = !prefer_second;
            let got = if prefer_second {
                (second.try_recv().map(|m| (false, m)))
                    .or_else(|| first.try_recv().map(|m| (true, m)))
            } else {
                (first.try_recv().map(|m| (true, m)))
                    .or_else(|| second.try_recv().map(|m| (false, m)))
            };
            match got {
                Some((true, (i, msg))) => match first.handle(i, msg) {
                    Some(e) => Side::First(e),
                    None => continue,
                },
                Some((false, (i, msg))) => match second.handle(i, msg) {
                    Some(e) => Side::Second(e),
                    None => continue,
                },
                None => {
                    let now = std::time::Instant::now();
                    let since = *waiting_since.get_or_insert(now);
                    if now.duration_since(since) >= IDLE_POLL {
                        idle += now.duration_since(since);
                        waiting_since = None;
                        if ctx.is_cancelled() {
                            return Err(Error::Cancelled(ctx.task_name()));
                        }
                        chain.control().flush()?;
                    } else {
                        worker::wait();
                    }
                    continue;
                }
            }
        } else {
            // The receivers are cloned (a reference count each) so that the gates can be
            // updated while the select's borrows are alive.
            let firsts: Vec<_> = first.open_inputs().map(|(i, r)| (i, r.clone())).collect();
            let seconds: Vec<_> = second.open_inputs().map(|(i, r)| (i, r.clone())).collect();
            let mut sel = Select::new();
            for (_, r) in &firsts {
                sel.recv(r);
            }
            for (_, r) in &seconds {
                sel.recv(r);
            }
            let waiting = std::time::Instant::now();
            let selected =
                sel.select_deadline(*deadline.get_or_insert_with(|| waiting + IDLE_POLL));
            idle += waiting.elapsed();
            // Bound to a local so that the select's borrows end before the receivers drop.
            #[allow(clippy::let_and_return)]
            let side = match selected {
                Err(_) => {
                    deadline = None;
                    if ctx.is_cancelled() {
                        return Err(Error::Cancelled(ctx.task_name()));
                    }
                    chain.control().flush()?;
                    continue;
                }
                Ok(op) => {
                    let k = op.index();
                    if k < firsts.len() {
                        let (i, r) = &firsts[k];
                        match first.handle(*i, op.recv(r)) {
                            Some(e) => Side::First(e),
                            None => continue,
                        }
                    } else {
                        let (i, r) = &seconds[k - firsts.len()];
                        match second.handle(*i, op.recv(r)) {
                            Some(e) => Side::Second(e),
                            None => continue,
                        }
                    }
                }
            };
            side
        };
        if let Some(since) = waiting_since.take() {
            idle += since.elapsed();
        }
        deadline = None;
        match event {
            Side::First(GateEvent::Rows(rows)) => {
                received += chain.rows(rows)?;
                worker::tick();
            }
            Side::Second(GateEvent::Rows(rows)) | Side::First(GateEvent::SecondRows(rows)) => {
                received += chain.rows_second(rows)?;
                worker::tick();
            }
            Side::First(GateEvent::Watermark(w)) => wm_first = w,
            Side::Second(GateEvent::Watermark(w)) => wm_second = w,
            Side::First(GateEvent::Status(idle)) => idle_first = idle,
            Side::Second(GateEvent::Status(idle)) => idle_second = idle,
            Side::First(GateEvent::Barrier(id)) => b_first = id,
            Side::Second(GateEvent::Barrier(id)) => b_second = id,
            // An ended side sits at the maximum watermark, neither idle nor holding back.
            Side::First(GateEvent::End) => {
                (wm_first, idle_first) = (Timestamp::MAX, false);
                b_first = FINAL_CHECKPOINT;
            }
            Side::Second(GateEvent::End) => {
                (wm_second, idle_second) = (Timestamp::MAX, false);
                b_second = FINAL_CHECKPOINT;
            }
            // In an instance group one repartition reader feeds both inputs through the
            // first gate (`Message::SecondRows`): its handovers stay in order with the rows
            // of both.
            Side::First(GateEvent::Handover(h)) => hand_over(ctx, chain.control(), h, &mut splits)?,
            // An upstream stage of the instance asks before its commit (in-process
            // exchanges carry no state).
            Side::Second(GateEvent::Handover(h @ Handover::Flush(..))) => {
                hand_over(ctx, chain.control(), h, &mut splits)?
            }
            Side::Second(GateEvent::Handover(_)) | Side::Second(GateEvent::SecondRows(_)) => {
                return Err(second_rows_astray(ctx));
            }
            Side::First(GateEvent::Broken) | Side::Second(GateEvent::Broken) => {
                if commit_completed(ctx, chain.control(), &mut committed)? {
                    return Ok(report(chain.control(), received));
                }
                return Err(Error::Cancelled(ctx.task_name()));
            }
            _ => {}
        }
        // As Flink's combined watermark of a two-input operator: a side whose inputs are all
        // idle holds the other back no longer (each gate leaves its own idle inputs out);
        // both idle, the stage is idle downstream too.
        let min = match (idle_first, idle_second) {
            (false, false) => wm_first.min(wm_second),
            (true, false) => wm_second,
            (false, true) => wm_first,
            (true, true) => current,
        };
        if min > current {
            current = min;
            if let Some(splits) = &mut splits {
                splits.watermark(min);
            }
            chain.control().watermark(min)?;
        }
        if (idle_first && idle_second) != idle_out {
            idle_out = !idle_out;
            chain.control().idle(idle_out)?;
        }
        let b = b_first.min(b_second);
        if b > barrier && b != FINAL_CHECKPOINT {
            barrier = b;
            let alignment = first.alignment().max(second.alignment());
            take_part(ctx, b, alignment, |state| chain.control().barrier(b, state))?;
        }
        // Exactly-once: a gate that delivered a barrier the stage has not passed on (the other
        // gate has not delivered it yet) is held back. After a skipped checkpoint (a savepoint
        // triggered while a declined checkpoint was in flight) one gate can be a barrier
        // ahead even after the other's barrier passed.
        first.hold(b_first > barrier);
        second.hold(b_second > barrier);
    }
    chain.control().finish()?;
    let mut last = ctx.task_state(FINAL_CHECKPOINT);
    last.last = true;
    end_task(ctx, chain.control(), last)?;
    Ok(report(chain.control(), received))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Discard;
    use crate::time::Watermarks;

    /// Reads its timestamps, all in one poll.
    struct Timestamps(Vec<i64>);

    impl SourceReader for Timestamps {
        type Row = i64;
        fn poll<O: SourceOutput<i64>>(&mut self, out: &mut O, _: usize) -> Result<Poll> {
            for t in self.0.drain(..) {
                out.collect(t);
            }
            Ok(Poll::Finished)
        }
    }

    #[test]
    fn a_batch_s_newest_timestamp_reaches_the_watermarks_after_the_poll() {
        // An interval (the emitter keeps the batch's newest timestamp, out of order here, and
        // hands it over after the poll), and none (every row goes to the generator).
        for interval in [Duration::from_nanos(1), Duration::ZERO] {
            let strategy = Watermarks::bounded_out_of_orderness(Duration::from_millis(10));
            let mut generator = SourceWatermarks::new(&strategy, interval);
            let mut reader = Timestamps(vec![5, 30, 12]);
            let polled = poll_into::<_, _, _, true>(
                &mut reader,
                &mut Discard,
                &mut |t: &i64| *t,
                &mut generator,
            );
            assert_eq!(polled.unwrap(), (Poll::Finished, 3), "{interval:?}");
            // The watermark follows the largest timestamp, 30.
            std::thread::sleep(Duration::from_millis(1));
            let expected = match interval.is_zero() {
                // Emitted after the row of 30 already (none newer to emit now).
                true => None,
                false => Some(30 - 10 - 1),
            };
            assert_eq!(generator.on_poll(true).0, expected, "{interval:?}");
        }
    }
}
