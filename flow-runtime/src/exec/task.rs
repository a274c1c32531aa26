//! The loops that drive one subtask's fused chain, from a source reader or an input gate.

use crate::chain::Collector;
use crate::channel::{GateEvent, InputGate, BATCH_SIZE};
use crate::context::RuntimeContext;
use crate::exec::{CheckpointId, FINAL_CHECKPOINT};
use crate::operator::source::{Poll, SourceOutput, SourceReader};
use crate::operator::Either;
use crate::time::{
    Timestamp, TimestampAssigner, WatermarkGenerator, Watermarks, MAX_WATERMARK, NO_TIMESTAMP,
};
use crate::{Error, Result};
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
}

impl TaskMetrics {
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
}

/// What a source reader pushes into: assigns each row its timestamp, counts it, feeds the chain
/// and, with a zero watermark interval, emits the watermark after every row.
struct Emitter<'a, C, A> {
    chain: &'a mut C,
    assigner: &'a mut A,
    generator: &'a mut WatermarkGenerator,
    event_time: bool,
    rows: u64,
    error: Option<Error>,
}

impl<T, C: Collector<T>, A: TimestampAssigner<T>> SourceOutput<T> for Emitter<'_, C, A> {
    #[inline(always)]
    fn collect(&mut self, row: T) {
        self.collect_with_timestamp(row, NO_TIMESTAMP);
    }
    #[inline(always)]
    fn collect_with_timestamp(&mut self, row: T, timestamp: Timestamp) {
        self.rows += 1;
        let ts = self.assigner.timestamp(&row, timestamp);
        self.chain.collect(row, ts);
        if self.event_time {
            if let Some(wm) = self.generator.on_row(ts) {
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
        if self.event_time {
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
    mut reader: R,
    mut chain: C,
    source_node: u32,
    watermarks: &Watermarks,
    mut assigner: A,
) -> Result<TaskMetrics>
where
    R: SourceReader,
    C: Collector<R::Row>,
    A: TimestampAssigner<R::Row>,
{
    chain.open(ctx)?;
    reader.open(ctx)?;
    let mut generator = WatermarkGenerator::new(watermarks, ctx.watermark_interval());
    let has_event_time = generator.active();
    // Batch mode has no intermediate watermarks (as Flink's BATCH runtime mode): every window
    // and timer fires at the end of input, and no row is late.
    let event_time = has_event_time && ctx.mode() != crate::env::RuntimeMode::Batch;
    // On the stack and touched only off the row path: the poll loop below is inlined here,
    // and more live values cost it registers (measured: a third of the stateless chain's
    // throughput when the checkpoint counters lived in this loop).
    let mut progress = SourceCheckpoints::default();
    let mut rows = 0u64;
    loop {
        if ctx.is_cancelled() {
            return Err(Error::Cancelled(ctx.task_name()));
        }
        if progress.pending(ctx) {
            progress.step(ctx, &mut reader, &mut chain)?;
        }
        let (returned, outcome) = poll_batch(
            &mut reader,
            chain,
            &mut assigner,
            &mut generator,
            event_time,
        );
        chain = returned;
        let (poll, polled) = outcome?;
        rows += polled;
        if event_time {
            let (wm, status) = generator.on_poll(polled > 0);
            if let Some(idle) = status {
                chain.idle(idle)?;
            }
            if let Some(wm) = wm {
                chain.watermark(wm)?;
            }
        }
        chain.flush()?;
        match poll {
            Poll::Ready => {}
            Poll::Idle => std::thread::sleep(Duration::from_millis(1)),
            Poll::Finished => break,
        }
    }
    if has_event_time {
        chain.watermark(MAX_WATERMARK)?;
    }
    chain.finish()?;
    // The final position is committed once the whole job ended well: until then the rows
    // before it may still be on their way to a sink in another task.
    let _ = reader.snapshot(FINAL_CHECKPOINT)?;
    ctx.checkpoints.finished(ctx.task);
    if ctx.checkpoints.wait_for_job_end() {
        reader.checkpoint_complete(FINAL_CHECKPOINT)?;
    }
    let mut metrics = TaskMetrics::default();
    metrics.add_out(source_node, rows);
    reader.report(&mut metrics, source_node);
    chain.report(&mut metrics);
    Ok(metrics)
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
    generator: &mut WatermarkGenerator,
    event_time: bool,
) -> (C, Result<(Poll, u64)>)
where
    R: SourceReader,
    C: Collector<R::Row>,
    A: TimestampAssigner<R::Row>,
{
    let mut out = Emitter {
        chain: &mut chain,
        assigner,
        generator,
        event_time,
        rows: 0,
        error: None,
    };
    let outcome = match (reader.poll(&mut out, BATCH_SIZE), out.error) {
        (Err(e), _) | (Ok(_), Some(e)) => Err(e),
        (Ok(poll), None) => Ok((poll, out.rows)),
    };
    (chain, outcome)
}

/// A source task's progress through the job's checkpoints.
#[derive(Default)]
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
    fn step<R: SourceReader, C: Collector<R::Row>>(
        &mut self,
        ctx: &RuntimeContext,
        reader: &mut R,
        chain: &mut C,
    ) -> Result<()> {
        let triggered = ctx.checkpoints.triggered();
        if triggered > self.taken {
            self.taken = triggered;
            let snapshot = reader.snapshot(triggered)?.and(chain.barrier(triggered)?);
            ctx.checkpoints.ack(ctx.task, triggered, snapshot);
        }
        let completed = ctx.checkpoints.completed();
        if completed > self.committed {
            self.committed = completed;
            reader.checkpoint_complete(completed)?;
        }
        Ok(())
    }
}

/// Drives `chain` from an input gate until every input ended.
///
/// # Errors
/// The chain's first error, or [`Error::Cancelled`] when an input broke off or another task
/// failed. In both cases `finish` is not called: nothing is committed from a failed job.
pub fn run_gate<T, C: Collector<T>>(
    ctx: &RuntimeContext,
    mut gate: InputGate<T>,
    mut chain: C,
) -> Result<TaskMetrics> {
    chain.open(ctx)?;
    loop {
        match gate.next(IDLE_POLL) {
            GateEvent::Rows(batch) => {
                if batch.timestamps.is_empty() {
                    for row in batch.rows {
                        chain.collect(row, NO_TIMESTAMP);
                    }
                } else {
                    for (row, ts) in batch.rows.into_iter().zip(batch.timestamps) {
                        chain.collect(row, ts);
                    }
                }
                chain.flush()?;
            }
            GateEvent::Watermark(w) => chain.watermark(w)?,
            GateEvent::Barrier(id) => {
                let snapshot = chain.barrier(id)?;
                ctx.checkpoints.ack(ctx.task, id, snapshot);
            }
            GateEvent::Status(idle) => chain.idle(idle)?,
            GateEvent::Idle => {
                if ctx.is_cancelled() {
                    return Err(Error::Cancelled(ctx.task_name()));
                }
                chain.flush()?;
            }
            GateEvent::End => break,
            GateEvent::Broken => return Err(Error::Cancelled(ctx.task_name())),
        }
    }
    chain.finish()?;
    ctx.checkpoints.finished(ctx.task);
    let mut metrics = TaskMetrics::default();
    chain.report(&mut metrics);
    Ok(metrics)
}

/// Drives a two-input operator from two input gates (the stage after `connect`) until both
/// ended: each row goes in as [`Either::First`] or [`Either::Second`]. The watermark is the
/// minimum of the two gates'.
///
/// # Errors
/// As [`run_gate`].
pub fn run_two_gates<A, B, C: Collector<Either<A, B>>>(
    ctx: &RuntimeContext,
    mut first: InputGate<A>,
    mut second: InputGate<B>,
    mut chain: C,
) -> Result<TaskMetrics> {
    chain.open(ctx)?;
    use crate::time::MIN_WATERMARK;
    use crossbeam_channel::Select;
    let (mut wm_first, mut wm_second, mut current) = (MIN_WATERMARK, MIN_WATERMARK, MIN_WATERMARK);
    // The newest barrier of each side (an ended side holds none back), and the one passed on.
    let (mut b_first, mut b_second, mut barrier) = (0, 0, 0);
    // Which side an event came from.
    enum Side<A, B> {
        First(GateEvent<A>),
        Second(GateEvent<B>),
    }
    loop {
        let event = if let Some(e) = first.take_pending() {
            Side::First(e)
        } else if let Some(e) = second.take_pending() {
            Side::Second(e)
        } else if first.is_done() && second.is_done() {
            break;
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
            let selected = sel.select_timeout(IDLE_POLL);
            // Bound to a local so that the select's borrows end before the receivers drop.
            #[allow(clippy::let_and_return)]
            let side = match selected {
                Err(_) => {
                    if ctx.is_cancelled() {
                        return Err(Error::Cancelled(ctx.task_name()));
                    }
                    chain.flush()?;
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
        match event {
            Side::First(GateEvent::Rows(batch)) => {
                let ts = batch
                    .timestamps
                    .into_iter()
                    .chain(std::iter::repeat(NO_TIMESTAMP));
                for (row, t) in batch.rows.into_iter().zip(ts) {
                    chain.collect(Either::First(row), t);
                }
                chain.flush()?;
            }
            Side::Second(GateEvent::Rows(batch)) => {
                let ts = batch
                    .timestamps
                    .into_iter()
                    .chain(std::iter::repeat(NO_TIMESTAMP));
                for (row, t) in batch.rows.into_iter().zip(ts) {
                    chain.collect(Either::Second(row), t);
                }
                chain.flush()?;
            }
            Side::First(GateEvent::Watermark(w)) => wm_first = w,
            Side::Second(GateEvent::Watermark(w)) => wm_second = w,
            Side::First(GateEvent::Barrier(id)) => b_first = id,
            Side::Second(GateEvent::Barrier(id)) => b_second = id,
            Side::First(GateEvent::End) => {
                wm_first = Timestamp::MAX;
                b_first = FINAL_CHECKPOINT;
            }
            Side::Second(GateEvent::End) => {
                wm_second = Timestamp::MAX;
                b_second = FINAL_CHECKPOINT;
            }
            Side::First(GateEvent::Broken) | Side::Second(GateEvent::Broken) => {
                return Err(Error::Cancelled(ctx.task_name()))
            }
            // Idle inputs are already left out of each gate's watermark.
            _ => {}
        }
        let min = wm_first.min(wm_second);
        if min > current {
            current = min;
            chain.watermark(min)?;
        }
        let b = b_first.min(b_second);
        if b > barrier && b != FINAL_CHECKPOINT {
            barrier = b;
            let snapshot = chain.barrier(b)?;
            ctx.checkpoints.ack(ctx.task, b, snapshot);
        }
    }
    chain.finish()?;
    ctx.checkpoints.finished(ctx.task);
    let mut metrics = TaskMetrics::default();
    chain.report(&mut metrics);
    Ok(metrics)
}
