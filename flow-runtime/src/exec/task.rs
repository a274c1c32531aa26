//! The loops that drive one subtask's fused chain, from a source reader or an input gate.

use crate::channel::{GateEvent, InputGate, BATCH_SIZE};
use crate::collector::Collector;
use crate::context::RuntimeContext;
use crate::operator::source::{Poll, SourceReader};
use crate::time::{Timestamp, MAX_WATERMARK};
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
}

impl TaskMetrics {
    /// Adds `rows` to node `node`'s output count.
    pub fn add_out(&mut self, node: u32, rows: u64) {
        self.out.push((node, rows));
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

/// Counts the rows a source reader pushes; the count stays in a register in the poll loop.
struct Counted<'a, C> {
    inner: &'a mut C,
    rows: u64,
}

impl<T, C: Collector<T>> Collector<T> for Counted<'_, C> {
    #[inline(always)]
    fn collect(&mut self, row: T) {
        self.rows += 1;
        self.inner.collect(row);
    }
    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.inner.watermark(watermark)
    }
    fn finish(&mut self) -> Result<()> {
        self.inner.finish()
    }
    fn report(&self, metrics: &mut super::TaskMetrics) {
        self.inner.report(metrics)
    }
}

/// Drives `chain` from a source reader until the reader finishes, then ends the stream.
///
/// # Errors
/// The reader's or the chain's first error, or [`Error::Cancelled`] when another task failed.
pub fn run_source<R, C>(
    ctx: &RuntimeContext,
    mut reader: R,
    mut chain: C,
    source_node: u32,
    watermarks: bool,
) -> Result<TaskMetrics>
where
    R: SourceReader,
    C: Collector<R::Row>,
{
    reader.open(ctx)?;
    let mut rows = 0u64;
    loop {
        if ctx.is_cancelled() {
            return Err(Error::Cancelled(ctx.task_name()));
        }
        let mut counted = Counted {
            inner: &mut chain,
            rows: 0,
        };
        let poll = reader.poll(&mut counted, BATCH_SIZE)?;
        rows += counted.rows;
        chain.flush()?;
        match poll {
            Poll::Ready => {}
            Poll::Idle => std::thread::sleep(Duration::from_millis(1)),
            Poll::Finished => break,
        }
    }
    if watermarks {
        chain.watermark(MAX_WATERMARK)?;
    }
    chain.finish()?;
    let mut metrics = TaskMetrics::default();
    metrics.add_out(source_node, rows);
    chain.report(&mut metrics);
    Ok(metrics)
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
    loop {
        match gate.next(IDLE_POLL) {
            GateEvent::Rows(rows) => {
                for row in rows {
                    chain.collect(row);
                }
                chain.flush()?;
            }
            GateEvent::Watermark(w) => chain.watermark(w)?,
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
    let mut metrics = TaskMetrics::default();
    chain.report(&mut metrics);
    Ok(metrics)
}
