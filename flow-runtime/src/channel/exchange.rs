//! The end of a stage: partitions rows among the next stage's subtasks, in batches.

use super::{batch_rows, Batch, Message, Outlets, Rows};
use crate::chain::{Collector, Control, Snapshot};
use crate::context::RuntimeContext;
use crate::exec::{worker, CheckpointId, TaskMetrics};
use crate::snapshot::TaskState;
use crate::time::Timestamp;
use crate::{Error, Result};
use crossbeam_channel::{Sender, TrySendError};
use std::time::{Duration, Instant};

/// How long a partial batch may wait before it is sent anyway.
const FLUSH_INTERVAL: Duration = Duration::from_millis(10);

/// The most messages a channel's packet of rows and watermarks holds before it is sent
/// ([`Exchange::hold`]).
const PACKET: usize = 256;

/// Watermarks closer together than this ride with the rows (see [`Exchange::watermark`]):
/// those of a zero watermark interval, not those of the shortest periodic one (1 ms).
const WATERMARK_STORM: Duration = Duration::from_micros(500);

/// Which downstream subtask a row goes to.
pub trait Partition<T>: Send {
    /// The target among `n` channels.
    fn route(&mut self, row: &T, n: usize) -> usize;
}

/// The channels an exchange sends on, whatever its row type: compiled once.
pub(super) struct Outbox {
    senders: Vec<Sender<Message>>,
    /// In a fused subtask ([`FusedExchange`](super::FusedExchange)): the channel to the
    /// subtask itself, never sent on (its rows go straight into its chain).
    skip: Option<usize>,
    /// In a fused subtask: messages a full channel did not take yet, in order. A fused
    /// subtask must not block on a full channel (the subtask at the other end may be blocked
    /// sending to it): it keeps them here and handles its own inputs until they go.
    backlog: Option<std::collections::VecDeque<(usize, Message)>>,
    /// On an edge across instances: the repartition topic's writer, instead of `senders`.
    remote: Option<Box<dyn crate::instances::RemoteOut>>,
    /// The remote writer's first error, reported by the next check.
    failed: Option<Error>,
    last_flush: Instant,
    task: &'static str,
    closed: bool,
    /// How long sends waited for room in a full channel: the task's backpressured time.
    blocked: Duration,
    /// The last watermark sent (the task's output watermark).
    watermark: Option<Timestamp>,
    /// The newest watermark held in the packets, sent with them.
    held: Option<Timestamp>,
    /// When a watermark last went out on its own (see [`Exchange::watermark`]).
    watermark_sent: Option<Instant>,
    /// Per channel: rows and watermarks held in order, to go as one [`Message::Many`] before
    /// anything else on that channel.
    packets: Vec<Vec<Message>>,
    /// The job is being torn down (from the task's context, once open).
    cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl Outbox {
    fn send(&mut self, i: usize, message: Message) {
        if let Some(remote) = &mut self.remote {
            if self.failed.is_none() {
                let result = match message {
                    Message::Rows(rows) => remote.rows(i, rows),
                    other => remote.event(&other),
                };
                self.failed = result.err();
            }
            return;
        }
        if let Some(backlog) = &mut self.backlog {
            if !backlog.is_empty() {
                backlog.push_back((i, message));
                return;
            }
        }
        match self.senders[i].try_send(message) {
            Ok(()) => worker::progress(),
            Err(TrySendError::Full(message)) => match &mut self.backlog {
                Some(backlog) => backlog.push_back((i, message)),
                None => self.wait_and_send(i, message),
            },
            Err(TrySendError::Disconnected(_)) => self.closed = true,
        }
    }

    /// Sends what the backlog holds, in order, until a channel is full; returns whether some
    /// is left.
    pub(super) fn retry_backlog(&mut self) -> bool {
        let Some(backlog) = &mut self.backlog else {
            return false;
        };
        while let Some((i, message)) = backlog.pop_front() {
            match self.senders[i].try_send(message) {
                Ok(()) => worker::progress(),
                Err(TrySendError::Full(message)) => {
                    backlog.push_front((i, message));
                    return true;
                }
                Err(TrySendError::Disconnected(_)) => self.closed = true,
            }
        }
        false
    }

    /// Adds time a fused subtask waited for room in a full channel.
    pub(super) fn add_blocked(&mut self, waited: Duration) {
        self.blocked += waited;
    }

    /// Sends into a full channel: waits for the receiver to make room (backpressure), timed.
    /// On a worker, its other tasks run meanwhile (the receiver may be one of them).
    #[cold]
    #[inline(never)]
    fn wait_and_send(&mut self, i: usize, mut message: Message) {
        let start = Instant::now();
        if worker::cooperative() {
            loop {
                worker::wait();
                match self.senders[i].try_send(message) {
                    Ok(()) => {
                        worker::progress();
                        break;
                    }
                    Err(TrySendError::Full(m)) => message = m,
                    Err(TrySendError::Disconnected(_)) => {
                        self.closed = true;
                        break;
                    }
                }
            }
        } else if self.senders[i].send(message).is_ok() {
            worker::progress();
        } else {
            self.closed = true;
        }
        self.blocked += start.elapsed();
    }

    /// Sends what channel `i`'s packet holds, if anything: before any other message on it.
    fn send_packet(&mut self, i: usize) {
        let Some(packet) = self.packets.get_mut(i) else {
            return;
        };
        match packet.len() {
            0 => {}
            1 => {
                let message = packet.pop().expect("one message");
                self.send(i, message);
            }
            _ => {
                let messages = std::mem::take(packet);
                self.send(i, Message::Many(messages));
            }
        }
    }

    /// `make()` to every channel.
    fn broadcast(&mut self, make: impl Fn() -> Message) -> Result<()> {
        if self.remote.is_some() {
            // A repartition topic's writer tells every partition itself.
            self.send(0, make());
            return self.check();
        }
        for i in 0..self.senders.len() {
            if self.skip != Some(i) {
                self.send(i, make());
            }
        }
        self.check()
    }

    /// In an instance group, before its commit: every downstream subtask, once it handled
    /// what this exchange sent before, makes its own output durable (its sinks commit:
    /// [`Handover::flush`](crate::instances::Handover::flush), as a repartition reader asks its
    /// stage); waits for their answers. On a worker, its other tasks run meanwhile (a
    /// downstream subtask may be one of them).
    #[cold]
    fn downstream_durable(&mut self) -> Result<()> {
        let mut answers = Vec::with_capacity(self.senders.len());
        for i in 0..self.senders.len() {
            if self.skip != Some(i) {
                let (request, answer) = crate::instances::Handover::flush();
                self.send(i, Message::Handover(request));
                answers.push(answer);
            }
        }
        self.check()?;
        let cancelled =
            || (self.cancel.as_ref()).is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed));
        for answer in answers {
            // A subtask that failed drops the request (the job is being cancelled).
            match crate::instances::await_answer(&answer, cancelled) {
                crate::instances::Awaited::Answered(_) => {}
                _ => return Err(Error::Cancelled(self.task.to_string())),
            }
        }
        Ok(())
    }

    /// Whether the receivers are still there (and the remote writer did not fail).
    pub(super) fn check(&mut self) -> Result<()> {
        if let Some(e) = self.failed.take() {
            self.closed = true;
            return Err(e);
        }
        if self.closed {
            Err(Error::Cancelled(self.task.to_string()))
        } else {
            Ok(())
        }
    }
}

thread_local! {
    /// How many [`flushing_all`] run on this thread (tasks of one worker thread may nest them
    /// when one waits for room in a channel): while any does, every exchange flushes its
    /// partial batches, however recently it last did.
    static FLUSHING_ALL: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Runs `flush` (a chain's flush, on this thread) with every exchange sending its partial
/// batches on, rather than only those older than [`FLUSH_INTERVAL`]: afterwards no row the
/// chain was given waits in it (a source's commit point).
pub(crate) fn flushing_all<R>(flush: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            FLUSHING_ALL.set(FLUSHING_ALL.get() - 1);
        }
    }
    FLUSHING_ALL.set(FLUSHING_ALL.get() + 1);
    let _reset = Reset;
    flush()
}

/// Sends a stage's output to the next stage: a [`Collector`] that buffers rows per target and
/// sends full batches (or partial ones after `FLUSH_INTERVAL`).
pub struct Exchange<T, P> {
    pub(super) partition: P,
    pub(super) out: Outbox,
    pub(super) buffers: Vec<Batch<T>>,
    /// Rows per batch ([`batch_rows`]).
    batch: usize,
    timestamps: bool,
}

impl<T: Send + 'static, P> Exchange<T, P> {
    /// An exchange over `outlets` (a channel per downstream subtask it reaches, or a
    /// repartition topic's partitions).
    ///
    /// With `timestamps`, each row's timestamp travels with it (the job has event time).
    pub fn new(partition: P, outlets: Outlets, task: &'static str, timestamps: bool) -> Self {
        let batch = batch_rows::<T>(timestamps);
        let buffers = (0..outlets.len())
            .map(|_| Batch::with_capacity(batch, timestamps))
            .collect();
        Exchange {
            partition,
            out: Outbox {
                senders: outlets.senders,
                skip: None,
                backlog: None,
                remote: outlets.remote,
                failed: None,
                last_flush: Instant::now(),
                blocked: Duration::ZERO,
                watermark: None,
                held: None,
                watermark_sent: None,
                packets: Vec::new(),
                cancel: None,
                task,
                closed: false,
            },
            buffers,
            batch,
            timestamps,
        }
    }

    /// In a fused subtask `me`: never sends on channel `me`, and never blocks on a full
    /// channel (see [`Outbox::retry_backlog`]).
    pub(super) fn fused(mut self, me: usize) -> Self {
        self.out.skip = Some(me);
        self.out.backlog = Some(std::collections::VecDeque::new());
        self
    }

    /// Buffers `row` for channel `i`, sending the batch when it is full; returns whether it
    /// sent one.
    #[inline(always)]
    pub(super) fn push(&mut self, i: usize, row: T, ts: Timestamp) -> bool {
        let buf = &mut self.buffers[i];
        buf.rows.push(row);
        if self.timestamps {
            buf.timestamps.push(ts);
        }
        if buf.rows.len() >= self.batch {
            self.send_full(i);
            return true;
        }
        false
    }

    #[cold]
    fn send_full(&mut self, i: usize) {
        self.out.send_packet(i);
        let batch = std::mem::replace(
            &mut self.buffers[i],
            Batch::with_capacity(self.batch, self.timestamps),
        );
        self.out.send(i, Message::Rows(Rows::new(batch)));
    }

    /// Holds watermark `w` for channel `i` after the rows buffered for it: they go into the
    /// channel's packet, then `w`.
    #[cold]
    #[inline(never)]
    fn hold(&mut self, i: usize, w: Timestamp) {
        if self.out.packets.is_empty() {
            self.out.packets = (0..self.buffers.len()).map(|_| Vec::new()).collect();
        }
        let n = self.buffers[i].rows.len();
        if n > 0 {
            // Few rows come between two such watermarks: the next batch starts as small.
            let next = Batch::with_capacity(n.min(self.batch), self.timestamps);
            let rows = std::mem::replace(&mut self.buffers[i], next);
            self.out.packets[i].push(Message::Rows(Rows::new(rows)));
        }
        // Every watermark, even one with no rows after the last: an operator sees each
        // (its timers fire at each, with that watermark as the current one).
        let packet = &mut self.out.packets[i];
        packet.push(Message::Watermark(w));
        if packet.len() >= PACKET {
            self.out.send_packet(i);
        }
    }

    /// Sends every partial batch (and what the packets hold).
    pub(super) fn send_all(&mut self) -> Result<()> {
        for i in 0..self.buffers.len() {
            if !self.buffers[i].rows.is_empty() {
                self.send_full(i);
            } else {
                self.out.send_packet(i);
            }
        }
        if let Some(w) = self.out.held.take() {
            self.out.watermark = Some(w);
        }
        self.out.last_flush = Instant::now();
        self.out.check()
    }
}

impl<T: Send + 'static, P: Partition<T>> Collector<T> for Exchange<T, P> {
    #[inline]
    fn collect(&mut self, row: T, ts: Timestamp) {
        let n = self.buffers.len();
        let i = if n == 1 {
            0
        } else {
            self.partition.route(&row, n)
        };
        self.push(i, row, ts);
    }
}

impl<T: Send + 'static, P> Control for Exchange<T, P> {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<()> {
        self.out.cancel = Some(ctx.cancel.clone());
        if ctx.instance_group {
            // In a source's chain: whether its splits reach every writer its rows reach.
            if let Some(splits) = crate::instances::source_splits(ctx.subtask_key()) {
                splits.exchange_opened(self.out.remote.is_some());
            }
        }
        match &mut self.out.remote {
            Some(remote) => remote.open(ctx),
            None => Ok(()),
        }
    }

    fn flush(&mut self) -> Result<()> {
        if self.out.last_flush.elapsed() >= FLUSH_INTERVAL || FLUSHING_ALL.get() > 0 {
            self.send_all()?;
            if let Some(remote) = &mut self.out.remote {
                remote.flush()?;
            }
            Ok(())
        } else {
            self.out.check()
        }
    }

    /// Rows before a watermark must arrive before it: the partial batches go, then the
    /// watermark to every channel. Watermarks between rows that come within
    /// [`WATERMARK_STORM`] of the last one sent (a zero watermark interval: one after every
    /// row) would make every row a message of its own, and every channel a queue of one-row
    /// messages its receiver wakes for: those ride in order with the rows, in one message
    /// per channel per flush (as Flink's network buffers carry watermarks among records),
    /// at most [`FLUSH_INTERVAL`] later.
    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        // Held while held ones wait, or between rows soon after the last one sent: not
        // watermarks alone. (A repartition topic's writer takes rows and events as they
        // come.)
        let storm = self.out.remote.is_none()
            && (self.out.packets.iter().any(|p| !p.is_empty())
                || (self.buffers.iter().any(|b| !b.rows.is_empty())
                    && (self.out.watermark_sent).is_some_and(|t| t.elapsed() < WATERMARK_STORM)));
        if storm {
            // (The task's output watermark once they went: `send_all`.)
            self.out.held = Some(watermark);
            for i in 0..self.buffers.len() {
                if self.out.skip != Some(i) {
                    self.hold(i, watermark);
                }
            }
            // Not longer than a partial batch waits while watermarks come; once they stop,
            // the task's next flush sends them (every task loop flushes after a batch of
            // rows, and when its inputs are quiet: within 50 ms).
            if self.out.last_flush.elapsed() >= FLUSH_INTERVAL {
                return self.send_all();
            }
            return self.out.check();
        }
        self.send_all()?;
        self.out.watermark = Some(watermark);
        self.out.watermark_sent = Some(Instant::now());
        self.out.broadcast(|| Message::Watermark(watermark))
    }

    fn idle(&mut self, idle: bool) -> Result<()> {
        self.send_all()?;
        self.out.broadcast(|| Message::Idle(idle))
    }

    /// Sends the rows before the barrier, then the barrier to every downstream subtask: the
    /// checkpoint's part of this stage is done when they have it.
    fn barrier(&mut self, id: CheckpointId, state: &mut TaskState) -> Result<Snapshot> {
        if state.last {
            return Ok(Snapshot::Taken);
        }
        self.send_all()?;
        self.out.broadcast(|| Message::Barrier(id))?;
        Ok(Snapshot::Taken)
    }

    /// The stage ends here: the stages after it keep no state that follows partitions.
    fn release(&mut self, _: &mut TaskState, _: bool) -> Result<()> {
        Ok(())
    }
    fn adopt(&mut self, _: &RuntimeContext, _: &crate::snapshot::Adopted) -> Result<()> {
        Ok(())
    }
    /// The stage ends here: a repartition topic's writer waits until its records are
    /// written; the stages after an in-process exchange make their output durable.
    fn commit_output(&mut self) -> Result<()> {
        self.send_all()?;
        match &mut self.out.remote {
            Some(remote) => remote.durable(),
            None => self.out.downstream_durable(),
        }
    }
    /// The next stage learns of it from its own task loop.
    fn checkpoint_complete(&mut self, _: CheckpointId) -> Result<()> {
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.send_all()?;
        self.out.broadcast(|| Message::End)
    }

    fn report(&self, metrics: &mut TaskMetrics) {
        metrics.add_backpressured(self.out.blocked);
        if let Some(w) = self.out.watermark {
            metrics.add_output_watermark(w);
        }
    }
}

/// Sends every row to every downstream subtask (`broadcast()`), in batches.
pub struct BroadcastExchange<T> {
    inner: Exchange<T, crate::operator::rebalance::RoundRobin>,
}

impl<T: Clone + Send + 'static> BroadcastExchange<T> {
    /// A broadcast over `outlets` (one channel per downstream subtask).
    pub fn new(outlets: Outlets, task: &'static str, timestamps: bool) -> Self {
        BroadcastExchange {
            inner: Exchange::new(
                crate::operator::rebalance::RoundRobin::default(),
                outlets,
                task,
                timestamps,
            ),
        }
    }
}

impl<T: Clone + Send + 'static> Collector<T> for BroadcastExchange<T> {
    #[inline]
    fn collect(&mut self, row: T, ts: Timestamp) {
        for i in 0..self.inner.buffers.len() {
            self.inner.push(i, row.clone(), ts);
        }
    }
}

impl<T: Send + 'static> Control for BroadcastExchange<T> {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<()> {
        self.inner.open(ctx)
    }
    fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }
    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.inner.watermark(watermark)
    }
    fn idle(&mut self, idle: bool) -> Result<()> {
        self.inner.idle(idle)
    }
    fn barrier(&mut self, id: CheckpointId, state: &mut TaskState) -> Result<Snapshot> {
        self.inner.barrier(id, state)
    }
    fn release(&mut self, state: &mut TaskState, clear: bool) -> Result<()> {
        self.inner.release(state, clear)
    }
    fn adopt(&mut self, ctx: &RuntimeContext, state: &crate::snapshot::Adopted) -> Result<()> {
        self.inner.adopt(ctx, state)
    }
    fn commit_output(&mut self) -> Result<()> {
        self.inner.commit_output()
    }
    fn checkpoint_complete(&mut self, id: CheckpointId) -> Result<()> {
        self.inner.checkpoint_complete(id)
    }
    fn finish(&mut self) -> Result<()> {
        self.inner.finish()
    }
    fn report(&self, metrics: &mut TaskMetrics) {
        self.inner.report(metrics)
    }
}
