//! What a user function can ask about where it runs.

use crate::env::RuntimeMode;
use crate::exec::Coordinator;
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
    /// Whether the job is being torn down because a task failed.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
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
    pub(crate) fn for_operator(&self, operator: &'static str) -> RuntimeContext {
        RuntimeContext {
            operator,
            ..self.clone()
        }
    }
}
