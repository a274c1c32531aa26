//! `collect`: hands a stream's rows back to the program that runs the job
//! (Flink's `execute_and_collect`).

use flow_runtime::snapshot::StateWriter;
use flow_runtime::{CheckpointId, Result, RuntimeContext, Sink, SinkWriter, Snapshot, Timestamp};
use std::sync::{Arc, Mutex};

/// The caller's end of a `collect()` sink: after `execute`, [`CollectHandle::take`] returns
/// the rows. `collect()` runs in one subtask unless given a parallelism; with several, the
/// rows of each subtask stay in order and subtasks are concatenated in the order they
/// finished.
pub struct CollectHandle<T> {
    rows: Arc<Mutex<Vec<T>>>,
}

impl<T> Default for CollectHandle<T> {
    fn default() -> Self {
        CollectHandle {
            rows: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

impl<T> CollectHandle<T> {
    /// An empty handle.
    pub fn new() -> Self {
        Self::default()
    }
    /// The sink feeding this handle.
    pub fn sink(&self) -> CollectSink<T> {
        CollectSink {
            rows: self.rows.clone(),
        }
    }
    /// Takes the rows collected so far (all of them once `execute` returned `Ok`).
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.rows.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The sink side of a [`CollectHandle`].
pub struct CollectSink<T> {
    rows: Arc<Mutex<Vec<T>>>,
}

/// One subtask's buffer; appended to the handle when its input ends.
pub struct CollectWriter<T> {
    buf: Vec<T>,
    rows: Arc<Mutex<Vec<T>>>,
}

impl<T: Send + 'static> Sink<T> for CollectSink<T> {
    type Writer = CollectWriter<T>;
    fn create_writer(&self, _: &RuntimeContext) -> Result<CollectWriter<T>> {
        Ok(CollectWriter {
            buf: Vec::new(),
            rows: self.rows.clone(),
        })
    }
}

impl<T> SinkWriter<T> for CollectWriter<T> {
    #[inline]
    fn write(&mut self, row: T, _ts: Timestamp) {
        self.buf.push(row);
    }
    /// Hands the rows so far to the handle.
    fn checkpoint(&mut self, _: CheckpointId, _: &mut StateWriter) -> Result<Snapshot> {
        SinkWriter::<T>::finish(self)?;
        Ok(Snapshot::Taken)
    }
    fn finish(&mut self) -> Result<()> {
        self.rows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .append(&mut self.buf);
        Ok(())
    }
}
