//! [`StopHandle`]: ends an unbounded source from outside the job.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Ends an unbounded source (a `KafkaSource`, a monitoring `FileSource`) from outside the
/// job: its readers finish what they have and end their input, so the job ends as a bounded
/// one does (windows fire, sinks commit). Get one from the source's `stop_handle()`.
#[derive(Clone, Debug, Default)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    /// Asks every reader of the source to finish: a Kafka reader at its next poll (its final
    /// offsets are committed when the job ended successfully); a monitoring file reader after
    /// one last listing of its paths and reading every file found.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    /// Whether [`StopHandle::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
