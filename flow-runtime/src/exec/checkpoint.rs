//! Checkpoints: the coordinator that triggers them, collects every task's acknowledgement and
//! tells the sources which checkpoint completed.
//!
//! A checkpoint `n` starts at the sources: each source task records its reader's position
//! ([`SourceReader::snapshot`](crate::SourceReader::snapshot)) and sends barrier `n` down its
//! chain, in order with the rows. Operators pass it on (exchanges to every channel); an input
//! gate passes barrier `n` on once every open input delivered it (the minimum over inputs, as
//! for watermarks); sinks make what they wrote durable when it reaches them. A task
//! acknowledges `n` when its chain took the barrier; `n` is complete when every running task
//! acknowledged it (finished tasks made all their output durable in `finish`). Then the
//! sources learn it ([`SourceReader::checkpoint_complete`](crate::SourceReader::checkpoint_complete))
//! and commit the positions they recorded for `n`: every row before them has reached the
//! sinks' durable output. That is at-least-once delivery end to end.
//!
//! Barriers do not block inputs (Flink's at-least-once mode, which needs no alignment), and
//! operator state is not snapshot yet: an operator that keeps state (keyed state, windows,
//! timers) declines, and the job then takes no more checkpoints. Its sources commit their
//! final positions only when the whole job ended successfully.

use crate::chain::Snapshot;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

/// A checkpoint's number: 1, 2, ... in the order they were triggered.
pub type CheckpointId = u64;

/// The checkpoint a source records at the end of its input; it completes when the whole job
/// ended successfully.
pub const FINAL_CHECKPOINT: CheckpointId = u64::MAX;

/// One per job: shared by the job's driver (which triggers) and every task (which acknowledge).
#[derive(Debug)]
pub(crate) struct Coordinator {
    /// The newest checkpoint triggered (0: none yet); sources poll it.
    triggered: AtomicU64,
    /// The newest checkpoint every task acknowledged; sources poll it.
    completed: AtomicU64,
    progress: Mutex<Progress>,
    changed: Condvar,
}

#[derive(Debug)]
struct Progress {
    /// Per task, the newest checkpoint it acknowledged ([`FINAL_CHECKPOINT`] once finished).
    acked: Vec<CheckpointId>,
    running: usize,
    failed: bool,
    /// The operator that declined a checkpoint: no more are triggered.
    declined: Option<&'static str>,
}

impl Coordinator {
    /// A coordinator for a job of `tasks` tasks.
    pub(crate) fn new(tasks: usize) -> Self {
        Coordinator {
            triggered: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            progress: Mutex::new(Progress {
                acked: vec![0; tasks],
                running: tasks,
                failed: false,
                declined: None,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the next checkpoint unless the last one is still running, one was declined or
    /// the job is ending; returns its id.
    pub(crate) fn trigger(&self) -> Option<CheckpointId> {
        let p = self.lock();
        let triggered = self.triggered.load(Ordering::Acquire);
        if p.declined.is_some()
            || p.failed
            || p.running == 0
            || self.completed.load(Ordering::Acquire) < triggered
        {
            return None;
        }
        let id = triggered + 1;
        self.triggered.store(id, Ordering::Release);
        tracing::debug!(checkpoint = id, "checkpoint triggered");
        Some(id)
    }

    /// The newest checkpoint triggered.
    #[inline]
    pub(crate) fn triggered(&self) -> CheckpointId {
        self.triggered.load(Ordering::Acquire)
    }

    /// The newest checkpoint completed.
    #[inline]
    pub(crate) fn completed(&self) -> CheckpointId {
        self.completed.load(Ordering::Acquire)
    }

    /// Task `task` took its part of checkpoint `id`, or declined.
    pub(crate) fn ack(&self, task: usize, id: CheckpointId, snapshot: Snapshot) {
        let mut p = self.lock();
        if let Snapshot::Declined(operator) = snapshot {
            if p.declined.is_none() {
                p.declined = Some(operator);
                tracing::info!(
                    checkpoint = id,
                    operator,
                    "checkpoint declined: this operator keeps state that is not snapshot yet; \
                     no more checkpoints are taken, and sources commit their positions only \
                     when the job ends successfully"
                );
            }
            return;
        }
        if p.acked[task] < id {
            p.acked[task] = id;
            self.advance(&p);
        }
    }

    /// Task `task` finished: everything it emitted is durable or handed on. Called by the
    /// task's run loop, and again (a no-op then) by the job when the task returned `Ok`.
    pub(crate) fn finished(&self, task: usize) {
        let mut p = self.lock();
        if p.acked[task] == FINAL_CHECKPOINT {
            return;
        }
        p.acked[task] = FINAL_CHECKPOINT;
        p.running -= 1;
        self.advance(&p);
        self.changed.notify_all();
    }

    /// A task failed: waiters give up.
    pub(crate) fn failed(&self) {
        self.lock().failed = true;
        self.changed.notify_all();
    }

    /// Waits until every task finished (`true`) or one failed (`false`).
    pub(crate) fn wait_for_job_end(&self) -> bool {
        let mut p = self.lock();
        loop {
            if p.failed {
                return false;
            }
            if p.running == 0 {
                return true;
            }
            p = self.changed.wait(p).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Completes the checkpoints every task acknowledged.
    fn advance(&self, p: &Progress) {
        if p.declined.is_some() {
            return;
        }
        let triggered = self.triggered.load(Ordering::Acquire);
        let min = p.acked.iter().copied().min().unwrap_or(FINAL_CHECKPOINT);
        let done = min.min(triggered);
        if done > self.completed.load(Ordering::Acquire) {
            self.completed.store(done, Ordering::Release);
            tracing::debug!(checkpoint = done, "checkpoint completed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_completes_when_every_running_task_acknowledged_it() {
        let c = Coordinator::new(3);
        assert_eq!(c.trigger(), Some(1));
        assert_eq!(c.trigger(), None, "one checkpoint at a time");
        c.ack(0, 1, Snapshot::Taken);
        c.ack(1, 1, Snapshot::Taken);
        assert_eq!(c.completed(), 0);
        c.finished(2);
        c.finished(2);
        assert_eq!(c.completed(), 1, "a finished task counts as acknowledged");
        assert_eq!(c.trigger(), Some(2));
        c.ack(0, 2, Snapshot::Taken);
        c.ack(1, 2, Snapshot::Taken);
        assert_eq!(c.completed(), 2);
    }

    #[test]
    fn a_decline_stops_checkpoints() {
        let c = Coordinator::new(2);
        assert_eq!(c.trigger(), Some(1));
        c.ack(0, 1, Snapshot::Taken);
        c.ack(1, 1, Snapshot::Declined("window"));
        assert_eq!(c.completed(), 0);
        c.finished(0);
        c.finished(1);
        assert_eq!(c.completed(), 0, "a declined checkpoint never completes");
        assert_eq!(c.trigger(), None);
        assert!(c.wait_for_job_end());
    }

    #[test]
    fn a_failure_wakes_the_waiters() {
        let c = std::sync::Arc::new(Coordinator::new(2));
        c.finished(0);
        let waiter = {
            let c = c.clone();
            std::thread::spawn(move || c.wait_for_job_end())
        };
        c.failed();
        assert!(!waiter.join().unwrap());
    }
}
