//! A keyed exchange inside a fused subtask: the rows a subtask keeps go straight into the next
//! stage's chain, the others to the subtasks that own their keys.
//!
//! When every stage of a job has the same parallelism and every edge between stages is a
//! `key_by` (no union, no rebalance, no broadcast), subtask `i` of the job is one task: its
//! source reader, the operators before the `key_by`, and subtask `i` of every keyed stage
//! after it. At the `key_by` a row whose key subtask `i` owns is handed to the keyed chain
//! by a call, as inside a stage; only the others cross to their subtask, in batches over a
//! channel. Each task handles what the others sent it between two of its source's batches.
//! With two subtasks that is half of the rows through no channel at all, and a worker per
//! core that never waits for the other stage of its own subtask (`BENCHMARKS.md`).
//!
//! The subtask's own rows are one more input of the keyed stage's [`Gate`] (its channel from
//! itself stays empty): its watermarks, idleness, barriers and end are handed to the gate as
//! they come, so the keyed chain sees the minimum over every producer, as on a gate of its
//! own. A checkpoint barrier stops the subtask's source until the barrier came from every
//! other subtask (their rows before it handled, under exactly-once their rows after it held
//! back), then the keyed chain takes its part into the same task state as the source's
//! position. The end of input waits for the other subtasks' ends in the same way; meanwhile
//! the subtask takes part in the checkpoints the others' barriers bring, with its source's
//! final position ([`Coordinator::source_end`](crate::exec::Coordinator::source_end)) and its
//! keyed chain's state, and tells the keyed chain of completed checkpoints (its sinks commit).
//!
//! A subtask never blocks on a full channel: the subtask at the other end may be blocked
//! sending to it. It keeps the batch ([`Outbox::retry_backlog`](super::exchange)) and
//! handles its own inputs until there is room.

use super::{Exchange, Gate, GateEvent, Message, Outlets, Partition, Receiver, CHANNEL_CAPACITY};
use crate::chain::{Collector, Control, Snapshot};
use crate::context::RuntimeContext;
use crate::exec::{worker, CheckpointId, TaskMetrics};
use crate::snapshot::{Adopted, TaskState};
use crate::time::Timestamp;
use crate::{Error, Result};
use std::time::{Duration, Instant};

/// Messages handled per look at the inputs between two source batches (each is a batch of
/// rows at most): a subtask whose peers send faster than it reads still polls its source.
const PUMP: usize = 64;

/// The `key_by` of a fused subtask ([module docs](self)): routes each row by `P`, keeps the
/// subtask's own rows for the keyed chain `L`, sends the others.
pub struct FusedExchange<T, P, L> {
    inner: Exchange<T, P>,
    /// This subtask.
    me: usize,
    /// The channels from every subtask (input `me`: this one's own, never sent on).
    gate: Gate,
    /// The keyed chain of this subtask.
    local: L,
    /// The `key_by` node: its rows out are the rows its chain got here.
    node: u32,
    name: &'static str,
    /// Rows handed to `local`, from this subtask and from the others.
    delivered: u64,
    /// The checkpoint whose barrier this subtask's source sent and the others' have not all
    /// come yet.
    waiting: Option<CheckpointId>,
    /// What `local` did with the barrier of `waiting`, once every producer sent it.
    taken: Option<Snapshot>,
    /// The newest completed checkpoint `local` was told of.
    committed: CheckpointId,
    /// The first error met where no caller could be told (a row sent while a channel was
    /// full), reported by the next flush.
    failed: Option<Error>,
    ctx: Option<RuntimeContext>,
}

impl<T: Send + 'static, P: Partition<T>, L: Collector<T>> FusedExchange<T, P, L> {
    /// Subtask `me`'s `key_by` (node `node`, named `name`): `outlets` to every subtask,
    /// `inputs` from every subtask (both including `me`'s own channel, never sent on), and
    /// `local`, the keyed chain of subtask `me`. With `timestamps`, rows carry theirs.
    #[allow(clippy::too_many_arguments)] // one call, in generated code
    pub fn new(
        partition: P,
        outlets: Outlets,
        inputs: Vec<Receiver>,
        me: usize,
        name: &'static str,
        node: u32,
        timestamps: bool,
        local: L,
    ) -> Self {
        FusedExchange {
            inner: Exchange::new(partition, outlets, name, timestamps).fused(me),
            me,
            gate: Gate::new(inputs),
            local,
            node,
            name,
            delivered: 0,
            waiting: None,
            taken: None,
            committed: 0,
            failed: None,
            ctx: None,
        }
    }

    /// After each batch sent: once a channel from another subtask is more than half full,
    /// handles what the others sent (so that a subtask whose source emits many rows per
    /// poll, as a `flat_map` does, keeps the channels to it drained, and the others need not
    /// wait for its next flush); then, if a channel was full, waits until the backlog went.
    /// (Handling them at every batch sent cost W1 at p2 a fifth: rows that come a batch
    /// at a time are better handled at the flush after each poll.)
    #[cold]
    #[inline(never)]
    fn sent_batch(&mut self) {
        if self.gate.fuller_than(CHANNEL_CAPACITY / 2) {
            // This subtask's source is emitting rows: if the gate counts its input idle (the
            // source tells it otherwise only after the poll), the others' watermarks must not
            // pass ahead of the rows still to come from this poll.
            let active = self.gate.activate(self.me);
            if let Err(e) = self
                .dispatch(active, None)
                .and_then(|()| self.pump(None).map(drop))
            {
                self.failed.get_or_insert(e);
            }
        }
        self.settle_later();
    }

    /// The error recorded where no caller could be told, if any.
    fn check_failed(&mut self) -> Result<()> {
        self.failed.take().map_or(Ok(()), Err)
    }

    /// Sends what waits in the backlog, handling this subtask's inputs meanwhile; records an
    /// error for the next flush (called from `collect`, which returns none).
    #[cold]
    #[inline(never)]
    fn settle_later(&mut self) {
        if let Err(e) = self.settle() {
            self.failed.get_or_insert(e);
        }
    }

    /// Waits until every message of the backlog is sent, handling this subtask's inputs (and
    /// those of the fused exchanges after it) meanwhile: the subtask at the other end may be
    /// waiting for room in a channel to this one.
    fn settle(&mut self) -> Result<()> {
        if !self.inner.out.retry_backlog() {
            return self.inner.out.check();
        }
        let start = Instant::now();
        while self.inner.out.retry_backlog() {
            self.wait_once(None)?;
        }
        self.inner.out.add_blocked(start.elapsed());
        self.inner.out.check()
    }

    /// One round of waiting: handles what arrived (`state`: the barrier waited for may pass),
    /// lets the chain after it handle its own inputs, and, if nothing arrived, gives the
    /// worker away.
    fn wait_once(&mut self, state: Option<&mut TaskState>) -> Result<()> {
        let moved = self.pump(state)?;
        self.local.flush()?;
        if !moved {
            if let Some(ctx) = &self.ctx {
                if ctx.is_cancelled() {
                    return Err(Error::Cancelled(ctx.task_name()));
                }
            }
            if worker::cooperative() {
                worker::wait();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        Ok(())
    }

    /// Handles up to [`PUMP`] messages from the other subtasks; returns whether there were
    /// any.
    fn pump(&mut self, mut state: Option<&mut TaskState>) -> Result<bool> {
        let mut moved = false;
        for _ in 0..PUMP {
            let Some((i, message)) = self.gate.try_recv() else {
                break;
            };
            moved = true;
            let event = self.gate.handle(i, message);
            self.dispatch(event, state.as_deref_mut())?;
        }
        Ok(moved)
    }

    /// This subtask's own watermark, idleness, barrier or end, as an input of the gate.
    fn local_event(&mut self, message: Message, state: Option<&mut TaskState>) -> Result<()> {
        let event = self.gate.handle(self.me, Ok(message));
        self.dispatch(event, state)
    }

    /// What the gate made of a message (and what it held back for after it), to the keyed
    /// chain.
    fn dispatch(
        &mut self,
        mut event: Option<GateEvent>,
        mut state: Option<&mut TaskState>,
    ) -> Result<()> {
        while let Some(e) = event {
            match e {
                GateEvent::Rows(rows) => {
                    let local = &mut self.local;
                    self.delivered += rows.feed(|row: T, ts| local.collect(row, ts));
                }
                GateEvent::Watermark(w) => self.local.watermark(w)?,
                GateEvent::Status(idle) => self.local.idle(idle)?,
                GateEvent::Barrier(id) => self.passed(id, state.as_deref_mut())?,
                GateEvent::Idle | GateEvent::End => {}
                GateEvent::Broken => return Err(Error::Cancelled(self.task_name())),
                GateEvent::SecondRows(_) | GateEvent::Handover(_) => {
                    return Err(Error::Config(format!(
                        "{}: a second input's rows, or a handover, on a fused `key_by` (a bug in flow)",
                        self.task_name()
                    )))
                }
            }
            event = self.gate.take_pending();
        }
        Ok(())
    }

    /// Every producer sent the barrier of checkpoint `id`.
    fn passed(&mut self, id: CheckpointId, state: Option<&mut TaskState>) -> Result<()> {
        match (self.waiting, state) {
            (Some(want), Some(state)) if id == want => {
                self.taken = Some(self.local.barrier(id, state)?);
            }
            // A checkpoint this subtask's source skipped (it took a newer one): it cannot
            // complete, and the keyed chain takes its part in the newer one.
            (Some(want), _) if id < want => {}
            // The others' barrier after this subtask's source ended.
            _ => self.take_part_after_end(id)?,
        }
        Ok(())
    }

    /// The subtask's part of checkpoint `id` once its source ended: the source's final
    /// position and the keyed chain's state at the barrier, as a staged job's finished source
    /// task and running keyed task give them. (Without that position, which only a source that
    /// ended leaves, the part is declined; the barrier still goes down the keyed chain, into a
    /// state thrown away: a fused `key_by` after it waits for this subtask's barrier in the
    /// other subtasks.)
    #[cold]
    fn take_part_after_end(&mut self, id: CheckpointId) -> Result<()> {
        let Some(ctx) = self.ctx.clone() else {
            return Ok(());
        };
        let start = Instant::now();
        let mut state = ctx.task_state(id);
        let position = match ctx.checkpoints.source_end(ctx.task) {
            Some(operators) => {
                state.operators = operators;
                Snapshot::Taken
            }
            None => Snapshot::Declined(self.name),
        };
        let snapshot = position.and(self.local.barrier(id, &mut state)?);
        state.sync = start.elapsed();
        state.alignment = self.gate.alignment();
        ctx.checkpoints
            .ack(ctx.task, id, snapshot, state, ctx.subtask, ctx.parallelism);
        Ok(())
    }

    /// Once this subtask's source ended (no source loop tells the keyed chain any more): tells
    /// the keyed chain of the checkpoint completed since the last it heard of (its sinks
    /// commit); returns whether the job stops with a savepoint that completed.
    fn commit_completed(&mut self) -> Result<bool> {
        match &self.ctx {
            Some(ctx) => crate::exec::commit_completed(ctx, &mut self.local, &mut self.committed),
            None => Ok(false),
        }
    }

    fn task_name(&self) -> String {
        self.ctx
            .as_ref()
            .map_or_else(|| self.name.to_string(), RuntimeContext::task_name)
    }
}

impl<T: Send + 'static, P: Partition<T>, L: Collector<T>> Collector<T> for FusedExchange<T, P, L> {
    #[inline(always)]
    fn collect(&mut self, row: T, ts: Timestamp) {
        // (Made above parallelism 1 only: at 1 the chains have no exchange at all.)
        let i = self.inner.partition.route(&row, self.inner.buffers.len());
        if i != self.me {
            if self.inner.push(i, row, ts) {
                self.sent_batch();
            }
            return;
        }
        self.delivered += 1;
        self.local.collect(row, ts);
    }
}

impl<T: Send + 'static, P: Partition<T>, L: Collector<T>> Control for FusedExchange<T, P, L> {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<()> {
        self.local.open(ctx)?;
        self.inner.open(ctx)?;
        self.gate.set_aligned(ctx.aligned);
        self.committed = ctx.checkpoints.completed();
        self.ctx = Some(ctx.clone());
        Ok(())
    }

    /// Handles what the other subtasks sent, then flushes the keyed chain; sends partial
    /// batches as an exchange does.
    fn flush(&mut self) -> Result<()> {
        self.check_failed()?;
        self.pump(None)?;
        self.local.flush()?;
        self.inner.flush()?;
        self.settle()
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.check_failed()?;
        self.inner.watermark(watermark)?;
        self.settle()?;
        self.local_event(Message::Watermark(watermark), None)
    }

    fn idle(&mut self, idle: bool) -> Result<()> {
        self.check_failed()?;
        self.inner.idle(idle)?;
        self.settle()?;
        self.local_event(Message::Idle(idle), None)
    }

    /// Sends the barrier to the other subtasks, then handles their rows until each of them
    /// sent it too; then the keyed chain takes its part.
    fn barrier(&mut self, id: CheckpointId, state: &mut TaskState) -> Result<Snapshot> {
        self.check_failed()?;
        if state.last {
            return self.local.barrier(id, state);
        }
        let _ = self.inner.barrier(id, state)?;
        self.settle()?;
        self.waiting = Some(id);
        self.taken = None;
        self.local_event(Message::Barrier(id), Some(&mut *state))?;
        let taken = loop {
            if let Some(taken) = self.taken.take() {
                break taken;
            }
            self.wait_once(Some(&mut *state))?;
        };
        self.waiting = None;
        Ok(taken)
    }

    fn release(&mut self, _: &mut TaskState, _: bool) -> Result<()> {
        Ok(())
    }
    fn adopt(&mut self, _: &RuntimeContext, _: &Adopted) -> Result<()> {
        Ok(())
    }

    /// The subtask's own keys' chain: the rows of the other subtasks' keys went to them.
    fn commit_output(&mut self) -> Result<()> {
        self.local.commit_output()
    }

    fn checkpoint_complete(&mut self, id: CheckpointId) -> Result<()> {
        self.committed = self.committed.max(id);
        self.local.checkpoint_complete(id)
    }

    /// Sends the end to the other subtasks, handles their rows (and takes part in checkpoints)
    /// until each of them ended, then ends the keyed chain. When the job stops with a savepoint
    /// meanwhile, the keyed chain ends without its end of input, as a gate task does.
    fn finish(&mut self) -> Result<()> {
        self.check_failed()?;
        self.inner.finish()?;
        self.settle()?;
        self.local_event(Message::End, None)?;
        while !self.gate.is_done() {
            if self.commit_completed()? {
                return Ok(());
            }
            match self.wait_once(None) {
                // The other subtasks ended after the savepoint, without their end of input.
                Err(Error::Cancelled(_)) if self.commit_completed()? => return Ok(()),
                outcome => outcome?,
            }
        }
        self.check_failed()?;
        self.local.finish()
    }

    fn report(&self, metrics: &mut TaskMetrics) {
        self.inner.report(metrics);
        metrics.add_out(self.node, self.delivered);
        self.local.report(metrics);
    }
}
