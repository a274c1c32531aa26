//! `DiscardSink`: drops every row. For benchmarks and dry runs: the job does all of its work
//! except writing anything.

use flow_runtime::snapshot::StateWriter;
use flow_runtime::{CheckpointId, Result, RuntimeContext, Sink, SinkWriter, Snapshot, Timestamp};

/// A sink that discards every row (each row is passed through [`std::hint::black_box`] so the
/// compiler cannot optimise away the work that produced it).
///
/// # Examples
/// ```
/// use flow_connectors::DiscardSink;
/// use flow_runtime::{RuntimeContext, Sink, SinkWriter};
/// let ctx = RuntimeContext::standalone("sink_to", 0, 1);
/// let mut writer = Sink::<i64>::create_writer(&DiscardSink, &ctx)?;
/// writer.write(42, flow_runtime::NO_TIMESTAMP);
/// SinkWriter::<i64>::finish(&mut writer)?;
/// # Ok::<(), flow_runtime::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct DiscardSink;

/// One subtask's writer of a [`DiscardSink`]: `black_box`es each row, counts nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiscardWriter;

impl<T: Send + 'static> Sink<T> for DiscardSink {
    type Writer = DiscardWriter;
    fn create_writer(&self, _: &RuntimeContext) -> Result<DiscardWriter> {
        Ok(DiscardWriter)
    }
}

impl<T> SinkWriter<T> for DiscardWriter {
    #[inline(always)]
    fn write(&mut self, row: T, _ts: Timestamp) {
        std::hint::black_box(row);
    }
    fn checkpoint(&mut self, _: CheckpointId, _: &mut StateWriter) -> Result<Snapshot> {
        Ok(Snapshot::Taken)
    }
}
