//! `print`: each row's text form on stdout, prefixed `N> ` with the 1-based subtask when the
//! sink runs with parallelism > 1 (Flink's `PrintSink`).

use flow_runtime::snapshot::StateWriter;
use flow_runtime::{
    CheckpointId, DisplayRow, Result, RowText, RuntimeContext, Sink, SinkWriter, Snapshot,
    Timestamp,
};
use std::io::{self, BufWriter, Stdout, Write};

/// Writes rows to stdout.
#[derive(Clone, Debug, Default)]
pub struct PrintSink {
    prefix: Option<String>,
}

impl PrintSink {
    /// A print sink.
    pub fn new() -> Self {
        PrintSink { prefix: None }
    }
    /// A print sink whose lines start with `identifier` (Flink's `print(sinkIdentifier)`).
    pub fn with_identifier(identifier: impl Into<String>) -> Self {
        PrintSink {
            prefix: Some(identifier.into()),
        }
    }
}

/// One subtask's writer of a [`PrintSink`]. Lines are buffered per input batch and written
/// whole, so lines of parallel subtasks do not interleave mid-line.
pub struct PrintWriter {
    prefix: String,
    out: BufWriter<Stdout>,
    error: Option<io::Error>,
}

impl<T: RowText + Send + 'static> Sink<T> for PrintSink {
    type Writer = PrintWriter;

    fn create_writer(&self, ctx: &RuntimeContext) -> Result<PrintWriter> {
        let subtask = (ctx.parallelism() > 1).then(|| ctx.subtask_index() + 1);
        let prefix = match (&self.prefix, subtask) {
            (Some(id), Some(i)) => format!("{id}:{i}> "),
            (Some(id), None) => format!("{id}> "),
            (None, Some(i)) => format!("{i}> "),
            (None, None) => String::new(),
        };
        Ok(PrintWriter {
            prefix,
            out: BufWriter::with_capacity(64 * 1024, io::stdout()),
            error: None,
        })
    }
}

impl PrintWriter {
    fn result(&mut self) -> Result<()> {
        match self.error.take() {
            Some(e) => Err(flow_runtime::Error::Connector {
                connector: "print".into(),
                message: e.to_string(),
            }),
            None => Ok(()),
        }
    }
}

impl<T: RowText> SinkWriter<T> for PrintWriter {
    #[inline]
    fn write(&mut self, row: T, _ts: Timestamp) {
        if self.error.is_none() {
            if let Err(e) = writeln!(self.out, "{}{}", self.prefix, DisplayRow(&row)) {
                self.error = Some(e);
            }
        }
    }
    fn flush(&mut self) -> Result<()> {
        if let Err(e) = self.out.flush() {
            self.error.get_or_insert(e);
        }
        self.result()
    }
    fn checkpoint(&mut self, _: CheckpointId, _: &mut StateWriter) -> Result<Snapshot> {
        SinkWriter::<T>::flush(self)?;
        Ok(Snapshot::Taken)
    }
    fn finish(&mut self) -> Result<()> {
        SinkWriter::<T>::flush(self)
    }
}
