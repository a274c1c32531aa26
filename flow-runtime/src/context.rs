//! What a user function can ask about where it runs.

use crate::env::RuntimeMode;
use crate::exec::Coordinator;
use crate::plan::Plan;
use crate::snapshot::{Restore, StateReader, TaskState};
use crate::{Error, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The job, subtask and parallelism a function instance runs in (Flink's `RuntimeContext`),
/// passed to `open`.
#[derive(Clone, Debug)]
pub struct RuntimeContext {
    pub(crate) job_name: String,
    pub(crate) operator: &'static str,
    pub(crate) subtask: usize,
    pub(crate) parallelism: usize,
    pub(crate) mode: RuntimeMode,
    pub(crate) stage: usize,
    pub(crate) cancel: Arc<AtomicBool>,
    pub(crate) watermark_interval: std::time::Duration,
    /// The job's checkpoint coordinator and this task's index in it.
    pub(crate) checkpoints: Arc<Coordinator>,
    pub(crate) task: usize,
    /// The plan of the job's `flow!` block this task runs, and the block's index: what names
    /// an operator's state ([`Plan::uid`]).
    pub(crate) plan: Option<&'static Plan>,
    pub(crate) graph: usize,
    /// The checkpoint the job restarts from.
    pub(crate) restore: Option<Arc<Restore>>,
    /// Exactly-once checkpoints: input gates align barriers.
    pub(crate) aligned: bool,
    /// Where the task publishes its counters while the job runs.
    pub(crate) live: Arc<crate::exec::Live>,
    /// The disk state backend, when the job runs with one (`--state-backend disk`).
    pub(crate) state_backend: Option<Arc<crate::state::DiskBackend>>,
    /// This run of the job, unique in the process ([`SubtaskKey::run`]).
    pub(crate) run: u64,
    /// Whether the job runs as an instance of a group (`--instance-group`).
    pub(crate) instance_group: bool,
    /// Whether a repartition reader feeds the task's stage (in an instance group).
    pub(crate) fed_by_reader: bool,
}

/// One subtask of one stage of one running job, unique in the process: what the connectors
/// of a subtask find each other by. In an instance group's exactly-once mode a Kafka source
/// and the repartition writers at the end of its chain share one transaction, and so will a
/// repartition reader and the stage it feeds (the reader's task has its stage's index and
/// subtask).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubtaskKey {
    /// The job's run: a number no other job run of the process has.
    pub run: u64,
    /// The job's `flow!` block.
    pub graph: usize,
    /// The stage (the operators of one chain) in the block's plan.
    pub stage: usize,
    /// The subtask of the stage.
    pub subtask: usize,
}

/// A new run number ([`SubtaskKey::run`]).
pub(crate) fn next_run() -> u64 {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    RUNS.fetch_add(1, Ordering::Relaxed)
}

impl RuntimeContext {
    /// A context for running an operator outside a job (tests, benchmarks).
    pub fn standalone(operator: &'static str, subtask: usize, parallelism: usize) -> Self {
        RuntimeContext {
            job_name: "standalone".into(),
            operator,
            subtask,
            parallelism,
            mode: RuntimeMode::Streaming,
            stage: 0,
            cancel: Arc::default(),
            watermark_interval: std::time::Duration::ZERO,
            checkpoints: Arc::new(Coordinator::new(1)),
            task: 0,
            plan: None,
            graph: 0,
            restore: None,
            aligned: true,
            live: Arc::new(crate::exec::Live::unwatched()),
            state_backend: None,
            run: next_run(),
            instance_group: false,
            fed_by_reader: false,
        }
    }

    /// The name passed to `execute`.
    pub fn job_name(&self) -> &str {
        &self.job_name
    }
    /// The operator's name, as `explain()` shows it.
    pub fn operator_name(&self) -> &'static str {
        self.operator
    }
    /// This instance's 0-based index among the operator's parallel instances.
    pub fn subtask_index(&self) -> usize {
        self.subtask
    }
    /// How many parallel instances the operator has.
    pub fn parallelism(&self) -> usize {
        self.parallelism
    }
    /// Streaming or batch, as resolved for this run.
    pub fn mode(&self) -> RuntimeMode {
        self.mode
    }
    /// How often sources emit watermarks (Flink's `pipeline.auto-watermark-interval`); zero
    /// means after every row.
    pub fn watermark_interval(&self) -> std::time::Duration {
        self.watermark_interval
    }
    /// Whether the task shares its thread with other tasks of the job (it runs on a worker:
    /// [`Scheduling::Workers`](crate::Scheduling::Workers)): a connector should then not
    /// block long waiting for data (a poll with a timeout), but report itself idle, and the
    /// task lets the others run meanwhile.
    pub fn shares_thread(&self) -> bool {
        crate::exec::worker::cooperative()
    }
    /// Whether the job runs as one instance of a group (`--instance-group`, README "Scaling
    /// out"): it takes no checkpoints, and its sinks commit at the group's commits
    /// ([`SinkWriter::checkpoint_complete`](crate::SinkWriter::checkpoint_complete)).
    pub fn in_instance_group(&self) -> bool {
        self.instance_group
    }
    /// Whether the job is being torn down because a task failed.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
    /// This subtask of this stage of this run of the job ([`SubtaskKey`]).
    pub fn subtask_key(&self) -> SubtaskKey {
        SubtaskKey {
            run: self.run,
            graph: self.graph,
            stage: self.stage,
            subtask: self.subtask,
        }
    }
    /// The task's name for logs and errors: `stage S subtask I/P`.
    pub fn task_name(&self) -> String {
        format!(
            "stage {} subtask {}/{}",
            self.stage,
            self.subtask + 1,
            self.parallelism
        )
    }
    /// The uid of plan node `node` ([`Plan::uid`]).
    pub(crate) fn uid(&self, node: u32) -> String {
        match self.plan {
            Some(plan) => plan.uid(self.graph, node),
            None => format!("{}-{node}", self.operator),
        }
    }

    /// The state plan node `node` saved in the checkpoint the job restarts from, for this
    /// subtask; `None` without a restore or when the checkpoint holds none for it.
    pub(crate) fn state_of(&self, node: u32) -> Result<Option<StateReader>> {
        match &self.restore {
            Some(r) => r.reader(&self.uid(node), self.subtask, self.parallelism),
            None => Ok(None),
        }
    }

    /// `e`, with node `node`'s uid as the operator of a state error that names none.
    pub(crate) fn state_error(&self, node: u32, e: Error) -> Error {
        match e {
            Error::State {
                operator,
                file,
                message,
            } if operator.is_empty() || operator == "detached" => Error::State {
                operator: self.uid(node),
                file,
                message,
            },
            e => e,
        }
    }

    /// Collects what the task's operators give up at a rebalance of its instance group.
    pub(crate) fn released_state(&self) -> TaskState {
        TaskState::new(true, self.plan, self.graph)
    }

    /// Collects what the task's operators write at checkpoint `id`'s barrier.
    pub(crate) fn task_state(&self, id: crate::exec::CheckpointId) -> TaskState {
        TaskState::new(self.checkpoints.stored(id), self.plan, self.graph)
    }

    pub(crate) fn for_operator(&self, operator: &'static str) -> RuntimeContext {
        RuntimeContext {
            operator,
            ..self.clone()
        }
    }
}
