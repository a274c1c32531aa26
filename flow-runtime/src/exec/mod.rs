//! Running a job: its tasks (stage subtasks) on workers, one thread per core, or a thread
//! each; the source and input-gate loops that drive a stage's fused chain, checkpoints, and
//! the job result.

mod checkpoint;
mod job;
mod live;
mod observe;
#[cfg(feature = "progress")]
mod progress;
mod signal;
mod task;
pub(crate) mod worker;

pub(crate) use checkpoint::Coordinator;
pub use checkpoint::{
    CheckpointConfig, CheckpointId, CheckpointStats, CheckpointingMode, FINAL_CHECKPOINT,
};
pub(crate) use job::run_job as run_job_entry;
pub use job::{JobBuilder, JobGraph, JobResult, OperatorMetrics};
#[cfg(feature = "web")]
pub(crate) use live::JobMetrics;
pub(crate) use live::Live;
pub(crate) use observe::parse_addr;
pub use observe::Observe;
pub(crate) use signal::{install as install_stop_signals, install_drain, stop_requested};
pub use signal::{request_drain, request_stop};
pub(crate) use task::commit_completed;
pub use task::{run_gate, run_source, run_two_gates, TaskMetrics};
pub use worker::Scheduling;
