//! Checkpoints: the coordinator that triggers them, collects every task's part and completes
//! them (on the writer thread, off the tasks' row path), then tells sources and sinks.
//!
//! A checkpoint `n` starts at the sources: each source task records its reader's position
//! ([`SourceReader::snapshot`](crate::SourceReader::snapshot)) and sends barrier `n` down its
//! chain, in order with the rows. Operators write their state and pass it on (exchanges to
//! every channel); an input gate passes barrier `n` on once every open input delivered it, and
//! in exactly-once mode reads no input that delivered it until then (alignment); sinks make
//! what they wrote durable or prepare it. A task acknowledges `n` with its operators' state;
//! the writer thread writes it under `--checkpoint-dir`, and `n` is complete when every
//! running task acknowledged it, its files are written and its metadata is on disk. Then the
//! sinks commit what they prepared and the sources commit the positions they recorded for it.
//!
//! Without a checkpoint directory, an operator that keeps keyed state declines (its state
//! would be saved nowhere) and the job takes no more checkpoints; sources' positions and
//! sinks' pending output are restore-only state and need none. A task that finished leaves its
//! final state for every checkpoint after the newest it took, and its sinks commit with the
//! first of those that completes (or when the job ends); a job that ends well writes a final
//! checkpoint before its sinks commit. A fused subtask whose source ended runs on until the
//! other subtasks ended: its parts carry its source's final position
//! ([`Coordinator::source_ended`]). A savepoint is a checkpoint into `--savepoint-dir` after which
//! every task ends without its end of input.

use crate::chain::Snapshot;
use crate::snapshot::{
    states_of, CheckpointStorage, FileEntry, FinishedTask, OperatorState, Section, TaskState,
};
use crate::Error;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What woke a finished task ([`Coordinator::wait_after_finish`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AfterFinish {
    /// A checkpoint holding the task's final state completed: its sinks may commit.
    Checkpoint,
    /// The job ended: well (`true`), or failed or stopped with a savepoint.
    JobEnded(bool),
}

/// A checkpoint's number: 1, 2, ... in the order they were triggered.
pub type CheckpointId = u64;

/// The checkpoint a source records at the end of its input; it completes when the whole job
/// ended successfully.
pub const FINAL_CHECKPOINT: CheckpointId = u64::MAX;

/// Flink's checkpointing mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CheckpointingMode {
    /// Operators with several inputs align barriers: state and output reflect every row
    /// exactly once after a restore.
    #[default]
    ExactlyOnce,
    /// No alignment: no input is held back, but after a restore rows that came after a
    /// barrier on a fast input may be counted twice.
    AtLeastOnce,
}

/// Where and how a job checkpoints (the `--checkpoint-*` and `--restore` flags).
#[derive(Clone, Debug)]
pub struct CheckpointConfig {
    /// `--checkpoint-dir`.
    pub dir: Option<PathBuf>,
    /// `--checkpoints-retained`.
    pub retained: usize,
    /// `--restore`: a checkpoint folder, its `_metadata`, or `latest`.
    pub restore: Option<String>,
    /// `--checkpointing-mode`.
    pub mode: CheckpointingMode,
    /// `--savepoint-dir`: where a stop (SIGTERM, SIGINT) writes the job's savepoint.
    pub savepoint_dir: Option<PathBuf>,
    /// `--allow-non-restored-state`: restore even when the checkpoint holds state for
    /// operators the job no longer has (that state is dropped, with a warning).
    pub allow_non_restored_state: bool,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            dir: None,
            retained: 1,
            restore: None,
            mode: CheckpointingMode::ExactlyOnce,
            savepoint_dir: None,
            allow_non_restored_state: false,
        }
    }
}

/// What a job's checkpoints cost, in its [`JobResult`](crate::JobResult).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// Checkpoints completed (a savepoint and the final checkpoint included).
    pub completed: u64,
    /// Checkpoints that failed: declined (an operator that keeps state, and no
    /// `--checkpoint-dir` to save it in: no more are triggered after it) or not written (the
    /// job fails with it).
    pub failed: u64,
    /// Whether a checkpoint is being taken now (triggered, neither completed nor failed).
    pub in_progress: bool,
    /// The operator that declined a checkpoint (it keeps state, and no `--checkpoint-dir` is
    /// set to save it in): from then on no checkpoints are taken.
    pub declined_by: Option<&'static str>,
    /// From the trigger to the metadata on disk: the last completed checkpoint's.
    pub last_duration: Duration,
    /// The longest of them.
    pub max_duration: Duration,
    /// The longest a task's chain spent on a barrier (writing its operators' state to memory):
    /// how long its rows stopped, barrier alignment aside.
    pub max_sync: Duration,
    /// The longest an input gate held an input back to align a barrier (exactly-once mode):
    /// from the first input's barrier to the last one's.
    pub max_alignment: Duration,
    /// The state files of the last completed checkpoint, in bytes.
    pub last_bytes: u64,
    /// The largest checkpoint, in bytes.
    pub max_bytes: u64,
}

/// One per job: shared by the job's driver (which triggers) and every task (which acknowledge).
#[derive(Debug)]
pub(crate) struct Coordinator {
    /// The newest checkpoint triggered (0: none yet); sources poll it.
    triggered: AtomicU64,
    /// The newest checkpoint every task acknowledged; sources poll it.
    completed: AtomicU64,
    progress: Mutex<Progress>,
    changed: Condvar,
    /// Where checkpoints are written (`--checkpoint-dir`); without it operators that keep
    /// state decline.
    storage: Option<CheckpointStorage>,
    /// To the thread that writes the tasks' state files, off their row path.
    writer: Mutex<Option<crossbeam_channel::Sender<Write>>>,
    /// The savepoint the job stops with (0: none): tasks end once it completed.
    stop_at: AtomicU64,
    /// The state schemas the stateful operators reported when they opened: (flow! block,
    /// plan node, fingerprint, the one it migrates from or 0), for `flow.lock`.
    schemas: Mutex<Vec<(usize, u32, u64, u64)>>,
}

/// What the writer thread does: write one task's state for one checkpoint, or complete a
/// checkpoint (its metadata), both off the tasks' row path.
enum Write {
    Task {
        id: CheckpointId,
        subtask: u32,
        parallelism: u32,
        operators: Vec<(String, crate::snapshot::OperatorState)>,
    },
    Complete(CheckpointId),
}

#[derive(Debug)]
struct Progress {
    /// Per task, the newest checkpoint it acknowledged ([`FINAL_CHECKPOINT`] once finished).
    acked: Vec<CheckpointId>,
    running: usize,
    failed: bool,
    /// The operator that declined a checkpoint, and the checkpoint: no more are triggered
    /// (but for a savepoint, which every operator can take).
    declined: Option<(&'static str, CheckpointId)>,
    /// The job stopped with a savepoint: tasks waiting for the job's end do not commit.
    stopped: bool,
    /// Every task finished and the final checkpoint is written (or needs not be): tasks
    /// waiting for the job's end commit.
    ended: bool,
    /// Per checkpoint in flight: the state files written so far, and writes still running.
    files: BTreeMap<CheckpointId, Vec<FileEntry>>,
    writing: BTreeMap<CheckpointId, usize>,
    /// The final state of finished tasks (source positions, sinks' last output), written into
    /// every checkpoint after the newest each took (`FinishedTask::after`).
    finished: Vec<FinishedTask>,
    /// Per task whose source ended but which still runs (a fused subtask whose keyed stages
    /// wait for the other subtasks' rows): the source's final position, part of each
    /// checkpoint the task takes until it finished.
    source_ends: BTreeMap<usize, Vec<(String, Vec<Section>)>>,
    /// A checkpoint that could not be written: the job fails with it.
    error: Option<Error>,
    /// The folder of the newest completed checkpoint.
    last: Option<PathBuf>,
    /// The checkpoint whose metadata the writer thread is writing.
    completing: Option<CheckpointId>,
    /// When each checkpoint in flight was triggered.
    started: BTreeMap<CheckpointId, Instant>,
    stats: CheckpointStats,
}

impl Coordinator {
    /// A coordinator for a job of `tasks` tasks, without checkpoint storage.
    pub(crate) fn new(tasks: usize) -> Self {
        Coordinator::with_storage(tasks, None, 0)
    }

    /// A coordinator writing checkpoints to `storage`, numbered after `last` (the newest
    /// already in its directory).
    pub(crate) fn with_storage(
        tasks: usize,
        storage: Option<CheckpointStorage>,
        last: CheckpointId,
    ) -> Self {
        Coordinator {
            triggered: AtomicU64::new(last),
            completed: AtomicU64::new(last),
            progress: Mutex::new(Progress {
                acked: vec![last; tasks],
                running: tasks,
                failed: false,
                declined: None,
                stopped: false,
                ended: false,
                files: BTreeMap::new(),
                writing: BTreeMap::new(),
                finished: Vec::new(),
                source_ends: BTreeMap::new(),
                error: None,
                last: None,
                completing: None,
                started: BTreeMap::new(),
                stats: CheckpointStats::default(),
            }),
            changed: Condvar::new(),
            storage,
            writer: Mutex::new(None),
            stop_at: AtomicU64::new(0),
            schemas: Mutex::new(Vec::new()),
        }
    }

    /// Operator `node` of block `graph` saves state with the schema `fingerprint`.
    pub(crate) fn report_schema(&self, graph: usize, node: u32, fingerprint: u64, from: u64) {
        let mut s = self.schemas.lock().unwrap_or_else(|e| e.into_inner());
        if !s.iter().any(|&(g, n, _, _)| g == graph && n == node) {
            s.push((graph, node, fingerprint, from));
        }
    }

    /// The schemas reported so far.
    pub(crate) fn schemas(&self) -> Vec<(usize, u32, u64, u64)> {
        self.schemas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Starts the thread that writes state files (with storage only); it ends when
    /// [`Coordinator::stop_writer`] is called.
    pub(crate) fn start_writer(self: &Arc<Self>) -> Option<std::thread::JoinHandle<()>> {
        self.storage.as_ref()?;
        let (tx, rx) = crossbeam_channel::unbounded::<Write>();
        *self.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        let this = self.clone();
        std::thread::Builder::new()
            .name("flow-checkpoints".into())
            .spawn(move || {
                let storage = this.storage.as_ref().expect("a writer has storage");
                for w in rx {
                    match w {
                        Write::Task {
                            id,
                            subtask,
                            parallelism,
                            operators,
                        } => {
                            let written = storage.write_task(id, subtask, parallelism, operators);
                            let mut p = this.lock();
                            match written {
                                Ok(files) => p.files.entry(id).or_default().extend(files),
                                Err(e) => this.fail_with(&mut p, e),
                            }
                            if let Some(n) = p.writing.get_mut(&id) {
                                *n -= 1;
                            }
                            this.advance(&mut p);
                            this.try_end(&mut p);
                        }
                        Write::Complete(id) => this.complete_stored(storage, id),
                    }
                }
            })
            .ok()
    }

    /// Lets the writer thread end once it wrote what it was given.
    pub(crate) fn stop_writer(&self) {
        self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether checkpoint `id` is saved (a checkpoint directory is configured, or it is the
    /// savepoint): without that, operators that keep state decline it. A finished task's
    /// final state ([`FINAL_CHECKPOINT`]) is kept with any storage: it goes into every later
    /// checkpoint and the savepoint.
    pub(crate) fn stored(&self, id: CheckpointId) -> bool {
        self.storage
            .as_ref()
            .is_some_and(|s| id == FINAL_CHECKPOINT || s.stores(id))
    }

    /// Starts the savepoint the job stops with, once no checkpoint is in flight; returns its
    /// id, or `None` to try again later (or when the job is ending anyway).
    pub(crate) fn trigger_savepoint(&self) -> Option<CheckpointId> {
        let mut p = self.lock();
        let storage = self.storage.as_ref()?;
        let triggered = self.triggered.load(Ordering::Acquire);
        let in_flight = self.completed.load(Ordering::Acquire) < triggered
            && p.declined.is_none_or(|(_, id)| id != triggered);
        if p.failed || p.running == 0 || in_flight || self.stop_at() != 0 {
            return None;
        }
        let id = triggered + 1;
        if let Err(e) = storage.begin_savepoint(id) {
            self.fail_with(&mut p, e);
            return None;
        }
        self.stop_at.store(id, Ordering::Release);
        self.triggered.store(id, Ordering::Release);
        p.started.insert(id, Instant::now());
        tracing::info!(
            checkpoint = id,
            "savepoint triggered: the job stops once it completed"
        );
        Some(id)
    }

    /// The savepoint the job stops with (0: none).
    #[inline]
    pub(crate) fn stop_at(&self) -> CheckpointId {
        self.stop_at.load(Ordering::Acquire)
    }

    /// Starts the next checkpoint unless the last one is still running, one was declined or
    /// the job is ending; returns its id.
    pub(crate) fn trigger(&self) -> Option<CheckpointId> {
        let mut p = self.lock();
        let triggered = self.triggered.load(Ordering::Acquire);
        if p.declined.is_some()
            || self.stop_at() != 0
            || p.failed
            || p.running == 0
            || self.completed.load(Ordering::Acquire) < triggered
        {
            return None;
        }
        let id = triggered + 1;
        self.triggered.store(id, Ordering::Release);
        p.started.insert(id, Instant::now());
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

    /// The folder of the newest completed checkpoint, if one was written.
    pub(crate) fn last_checkpoint(&self) -> Option<PathBuf> {
        self.lock().last.clone()
    }

    /// What the checkpoints cost so far.
    pub(crate) fn stats(&self) -> CheckpointStats {
        let p = self.lock();
        let triggered = self.triggered.load(Ordering::Acquire);
        CheckpointStats {
            in_progress: !p.failed
                && self.completed.load(Ordering::Acquire) < triggered
                && p.declined.is_none_or(|(_, id)| id != triggered),
            declined_by: p.declined.map(|(operator, _)| operator),
            ..p.stats.clone()
        }
    }

    /// Whether the job stopped with its savepoint.
    pub(crate) fn stopped(&self) -> bool {
        self.lock().stopped
    }

    /// The error that stopped checkpointing (a file that could not be written), once.
    pub(crate) fn take_error(&self) -> Option<Error> {
        self.lock().error.take()
    }

    /// Task `task` (subtask `subtask` of `parallelism`) took its part of checkpoint `id`, with
    /// the state its operators wrote, or declined.
    pub(crate) fn ack(
        &self,
        task: usize,
        id: CheckpointId,
        snapshot: Snapshot,
        state: TaskState,
        subtask: usize,
        parallelism: usize,
    ) {
        let mut p = self.lock();
        if let Snapshot::Declined(operator) = snapshot {
            if id == self.stop_at() {
                let e = crate::Error::State {
                    operator: operator.to_string(),
                    file: None,
                    message: "cannot take part in a savepoint (its writer declines \
                              checkpoints); the job was not stopped with a savepoint"
                        .into(),
                };
                return self.fail_with(&mut p, e);
            }
            if p.declined.is_none() {
                p.declined = Some((operator, id));
                p.stats.failed += 1;
                tracing::info!(
                    checkpoint = id,
                    operator,
                    "checkpoint declined: this operator keeps state and no --checkpoint-dir is \
                     set to save it; no more checkpoints are taken, and sources commit their \
                     positions only when the job ends successfully"
                );
            }
            return;
        }
        if p.acked[task] >= id {
            return;
        }
        p.acked[task] = id;
        p.stats.max_sync = p.stats.max_sync.max(state.sync);
        p.stats.max_alignment = p.stats.max_alignment.max(state.alignment);
        if !state.operators.is_empty() {
            let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(tx) = writer.as_ref() {
                *p.writing.entry(id).or_default() += 1;
                let sent = tx.send(Write::Task {
                    id,
                    subtask: subtask as u32,
                    parallelism: parallelism as u32,
                    operators: state.operators,
                });
                if sent.is_err() {
                    *p.writing.entry(id).or_default() -= 1;
                }
            }
        }
        self.advance(&mut p);
    }

    /// Task `task` finished: everything it emitted is durable or handed on; `last` is its
    /// source's final position, saved in every later checkpoint. Called by the task's run
    /// loop, and again (a no-op then) by the job when the task returned `Ok`. Returns the
    /// newest checkpoint the task took before: the checkpoints after it hold `last`.
    pub(crate) fn finished(&self, task: usize, last: Option<FinishedTask>) -> CheckpointId {
        let mut p = self.lock();
        if p.acked[task] == FINAL_CHECKPOINT {
            return FINAL_CHECKPOINT;
        }
        p.source_ends.remove(&task);
        let after = std::mem::replace(&mut p.acked[task], FINAL_CHECKPOINT);
        p.running -= 1;
        if let Some(mut last) = last.filter(|l| !l.operators.is_empty()) {
            last.after = after;
            p.finished.push(last);
        }
        self.advance(&mut p);
        self.try_end(&mut p);
        self.changed.notify_all();
        after
    }

    /// The source of task `task` read its last row and ended at `position` (its reader's
    /// state), while the task runs on: a fused subtask's keyed stages take part in later
    /// checkpoints until the other subtasks ended ([`Coordinator::source_end`]).
    pub(crate) fn source_ended(&self, task: usize, position: Vec<(String, Vec<Section>)>) {
        self.lock().source_ends.insert(task, position);
    }

    /// The final position of task `task`'s source, if it ended ([`Coordinator::source_ended`]),
    /// for a part of a checkpoint.
    pub(crate) fn source_end(&self, task: usize) -> Option<Vec<(String, OperatorState)>> {
        self.lock().source_ends.get(&task).map(|p| states_of(p))
    }

    /// What a finished task waits for: a saved checkpoint completed after `after` (the newest
    /// it took; `committed`: it already saw one), which holds the task's final state, so its
    /// sinks may commit (the savepoint the job stops with too); or the job's end. Without a
    /// checkpoint directory regular checkpoints save nothing: a task commits at a completed
    /// checkpoint then only if there is no storage at all (nothing could be restored).
    ///
    /// On a worker ([`worker::cooperative`](super::worker::cooperative)) the worker runs its
    /// other tasks meanwhile, looking again each time it comes back to this one.
    pub(crate) fn wait_after_finish(&self, after: CheckpointId, committed: bool) -> AfterFinish {
        if super::worker::cooperative() {
            loop {
                if let Some(a) = self.after_finish(&self.lock(), after, committed) {
                    return a;
                }
                super::worker::wait();
            }
        }
        let mut p = self.lock();
        loop {
            if let Some(a) = self.after_finish(&p, after, committed) {
                return a;
            }
            p = self.changed.wait(p).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// What [`Coordinator::wait_after_finish`] returns, if it is there yet.
    fn after_finish(
        &self,
        p: &Progress,
        after: CheckpointId,
        committed: bool,
    ) -> Option<AfterFinish> {
        let saved = |id: CheckpointId| match self.storage.as_ref() {
            None => true,
            Some(s) => s.stores(id),
        };
        if p.failed {
            return Some(AfterFinish::JobEnded(false));
        }
        let completed = self.completed.load(Ordering::Acquire);
        if !committed && completed > after && saved(completed) {
            return Some(AfterFinish::Checkpoint);
        }
        if p.stopped {
            return Some(AfterFinish::JobEnded(false));
        }
        if p.ended {
            return Some(AfterFinish::JobEnded(true));
        }
        None
    }

    /// Once every task finished and every state file is written: the final checkpoint, then
    /// the tasks waiting for the job's end may commit.
    fn try_end(&self, p: &mut Progress) {
        if p.running != 0 || p.failed || p.stopped || p.ended || p.completing.is_some() {
            return;
        }
        // A checkpoint's files still being written: the writer thread calls again.
        if p.writing.values().any(|&n| n > 0) {
            return;
        }
        self.complete_final(p);
        if !p.failed {
            p.ended = true;
        }
        self.changed.notify_all();
    }

    /// Every task ended well: with storage, writes the final checkpoint (every source at its
    /// end, every sink's parts about to be committed), before the tasks commit. A job
    /// restarted from it (a crash between the commits and the process's exit) writes nothing
    /// again and commits what was left.
    fn complete_final(&self, p: &mut Progress) {
        let Some(storage) = self.storage.as_ref().filter(|s| s.stores(FINAL_CHECKPOINT)) else {
            return;
        };
        let id = self.triggered.load(Ordering::Acquire) + 1;
        self.triggered.store(id, Ordering::Release);
        match storage.complete_with_finished(id, Vec::new(), &p.finished) {
            Ok((dir, _)) => {
                if let Some(dir) = &dir {
                    tracing::info!(checkpoint = id, path = %dir.display(), "final checkpoint completed");
                }
                p.last = dir;
                self.completed.store(id, Ordering::Release);
            }
            Err(e) => self.fail_with(p, e),
        }
    }

    /// A task failed: waiters give up.
    pub(crate) fn failed(&self) {
        self.lock().failed = true;
        self.changed.notify_all();
    }

    fn fail_with(&self, p: &mut Progress, e: Error) {
        tracing::error!(error = %e, "checkpoint failed");
        if !p.failed {
            p.stats.failed += 1;
        }
        p.error.get_or_insert(e);
        p.failed = true;
        self.changed.notify_all();
    }

    /// Completes the newest checkpoint every task acknowledged and whose state is written:
    /// with storage, writes its metadata first (then it is complete on disk, too).
    fn advance(&self, p: &mut Progress) {
        if p.failed {
            return;
        }
        let triggered = self.triggered.load(Ordering::Acquire);
        let min = p.acked.iter().copied().min().unwrap_or(FINAL_CHECKPOINT);
        let done = min.min(triggered);
        if done <= self.completed.load(Ordering::Acquire) {
            return;
        }
        // A declined checkpoint never completes; only a later savepoint can.
        if p.declined.is_some() && self.stop_at() != done {
            return;
        }
        if p.writing.range(..=done).any(|(_, &n)| n > 0) || p.completing.is_some() {
            return;
        }
        if self.storage.as_ref().is_some_and(|s| s.stores(done)) {
            // The metadata is written by the writer thread: not on a task's row path, and
            // not under this lock.
            let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(tx) = writer.as_ref() {
                if tx.send(Write::Complete(done)).is_ok() {
                    p.completing = Some(done);
                    return;
                }
            }
            drop(writer);
            let e = crate::Error::Config("the checkpoint writer stopped".into());
            return self.fail_with(p, e);
        }
        self.completed_at(p, done);
    }

    /// Completes stored checkpoint `id` on the writer thread: writes the finished tasks'
    /// state and the metadata without holding the lock, then records it complete.
    fn complete_stored(&self, storage: &CheckpointStorage, id: CheckpointId) {
        // Taken out under the lock, written without it (finished tasks are only ever added).
        let (files, finished) = {
            let mut p = self.lock();
            let finished = std::mem::take(&mut p.finished);
            (p.files.remove(&id).unwrap_or_default(), finished)
        };
        let outcome = storage.complete_with_finished(id, files, &finished);
        let mut p = self.lock();
        let added = std::mem::replace(&mut p.finished, finished);
        p.finished.extend(added);
        p.completing = None;
        match outcome {
            Ok((dir, bytes)) => {
                if let Some(dir) = &dir {
                    let what = if self.stop_at() == id {
                        "savepoint"
                    } else {
                        "checkpoint"
                    };
                    tracing::info!(checkpoint = id, path = %dir.display(), "{what} completed");
                }
                p.last = dir.or(p.last.take());
                p.stats.last_bytes = bytes;
                p.stats.max_bytes = p.stats.max_bytes.max(bytes);
                self.completed_at(&mut p, id);
                self.advance(&mut p);
                self.try_end(&mut p);
            }
            Err(e) => self.fail_with(&mut p, e),
        }
    }

    /// Records checkpoint `done` complete: sources and sinks see it on their next look.
    fn completed_at(&self, p: &mut Progress, done: CheckpointId) {
        p.files = p.files.split_off(&(done + 1));
        p.writing = p.writing.split_off(&(done + 1));
        self.completed.store(done, Ordering::Release);
        if let Some(start) = p.started.remove(&done) {
            let took = start.elapsed();
            p.stats.last_duration = took;
            p.stats.max_duration = p.stats.max_duration.max(took);
        }
        p.started = p.started.split_off(&(done + 1));
        p.stats.completed += 1;
        if self.stop_at() == done {
            p.stopped = true;
        }
        // Finished tasks commit with the first checkpoint after their end.
        self.changed.notify_all();
        tracing::debug!(checkpoint = done, "checkpoint completed");
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
        c.ack(0, 1, Snapshot::Taken, TaskState::default(), 0, 1);
        c.ack(1, 1, Snapshot::Taken, TaskState::default(), 0, 1);
        assert_eq!(c.completed(), 0);
        assert!(c.stats().in_progress);
        c.finished(2, None);
        c.finished(2, None);
        assert_eq!(c.completed(), 1, "a finished task counts as acknowledged");
        assert!(!c.stats().in_progress);
        assert_eq!(c.stats().failed, 0);
        assert_eq!(c.trigger(), Some(2));
        c.ack(0, 2, Snapshot::Taken, TaskState::default(), 0, 1);
        c.ack(1, 2, Snapshot::Taken, TaskState::default(), 0, 1);
        assert_eq!(c.completed(), 2);
    }

    #[test]
    fn a_decline_stops_checkpoints() {
        let c = Coordinator::new(2);
        assert_eq!(c.trigger(), Some(1));
        c.ack(0, 1, Snapshot::Taken, TaskState::default(), 0, 1);
        c.ack(
            1,
            1,
            Snapshot::Declined("window"),
            TaskState::default(),
            0,
            1,
        );
        assert_eq!(c.completed(), 0);
        assert_eq!(c.stats().failed, 1, "a declined checkpoint failed");
        assert_eq!(c.stats().declined_by, Some("window"));
        assert!(!c.stats().in_progress);
        c.finished(0, None);
        c.finished(1, None);
        assert_eq!(c.completed(), 0, "a declined checkpoint never completes");
        assert_eq!(c.trigger(), None);
        assert_eq!(
            c.wait_after_finish(FINAL_CHECKPOINT, true),
            AfterFinish::JobEnded(true)
        );
    }

    /// Task `task`'s state for checkpoint `id`: operator `op` wrote `value`.
    fn state(value: u32) -> TaskState {
        let mut state = TaskState::new(true, None, 0);
        let mut w = crate::snapshot::StateWriter::new("op");
        w.list("v", [&value]).unwrap();
        let _ = state.add(0, "op", w);
        state
    }

    /// What checkpoint `id` under `dir` holds for subtask 0 of operator `op`.
    fn restored(dir: &std::path::Path, id: CheckpointId) -> Vec<u32> {
        let path = dir.join(format!("chk-{id}"));
        let restore = crate::snapshot::Restore::load(path.to_str().unwrap(), None, "job").unwrap();
        let reader = restore.reader("op-0", 0, 1).unwrap().expect("state of op");
        reader.list::<u32>("v").unwrap()
    }

    /// Waits (a bounded while) until checkpoint `id` completed.
    fn await_completed(c: &Coordinator, id: CheckpointId) {
        for _ in 0..2000 {
            if c.completed() >= id {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        panic!("checkpoint {id} did not complete");
    }

    #[test]
    fn a_task_that_finished_after_a_barrier_keeps_its_acknowledged_state_in_that_checkpoint() {
        // Task 0 (a source, say) takes checkpoint 1 at 10 and then finishes at 20 before
        // task 1 (downstream) acknowledges 1: task 1's state covers only task 0's rows before
        // the barrier, so checkpoint 1 must hold 10, and only checkpoint 2 the final 20.
        let dir = tempfile::tempdir().unwrap();
        let (storage, last) = CheckpointStorage::open(Some(dir.path()), None, 5, "job")
            .unwrap()
            .unwrap();
        let c = Arc::new(Coordinator::with_storage(2, Some(storage), last));
        let writer = c.start_writer().unwrap();
        assert_eq!(c.trigger(), Some(1));
        c.ack(0, 1, Snapshot::Taken, state(10), 0, 1);
        let last = state(20);
        c.finished(
            0,
            Some(FinishedTask {
                subtask: 0,
                parallelism: 1,
                operators: last
                    .operators
                    .into_iter()
                    .map(|(uid, s)| (uid, s.materialize().unwrap()))
                    .collect(),
                after: 0,
            }),
        );
        c.ack(1, 1, Snapshot::Taken, TaskState::default(), 0, 1);
        await_completed(&c, 1);
        assert_eq!(restored(dir.path(), 1), [10]);
        assert_eq!(c.trigger(), Some(2));
        c.ack(1, 2, Snapshot::Taken, TaskState::default(), 0, 1);
        await_completed(&c, 2);
        assert_eq!(restored(dir.path(), 2), [20]);
        c.stop_writer();
        writer.join().unwrap();
    }

    #[test]
    fn a_finished_task_commits_with_the_first_checkpoint_after_it() {
        // Task 0 took checkpoint 1 and finished; checkpoint 1 completing must not wake it to
        // commit (its final state is not in 1), checkpoint 2 must.
        let c = std::sync::Arc::new(Coordinator::new(2));
        assert_eq!(c.trigger(), Some(1));
        c.ack(0, 1, Snapshot::Taken, TaskState::default(), 0, 1);
        let after = c.finished(0, None);
        assert_eq!(after, 1);
        c.ack(1, 1, Snapshot::Taken, TaskState::default(), 0, 1);
        assert_eq!(c.completed(), 1);
        let waiter = {
            let c = c.clone();
            std::thread::spawn(move || c.wait_after_finish(after, false))
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(
            !waiter.is_finished(),
            "woken by the checkpoint it took itself"
        );
        assert_eq!(c.trigger(), Some(2));
        c.ack(1, 2, Snapshot::Taken, TaskState::default(), 0, 1);
        assert_eq!(waiter.join().unwrap(), AfterFinish::Checkpoint);
        // Once committed, only the job's end wakes it.
        c.finished(1, None);
        assert_eq!(
            c.wait_after_finish(after, true),
            AfterFinish::JobEnded(true)
        );
    }

    #[test]
    fn a_failure_wakes_the_waiters() {
        let c = std::sync::Arc::new(Coordinator::new(2));
        c.finished(0, None);
        let waiter = {
            let c = c.clone();
            std::thread::spawn(move || c.wait_after_finish(0, false))
        };
        c.failed();
        assert_eq!(waiter.join().unwrap(), AfterFinish::JobEnded(false));
    }
}
