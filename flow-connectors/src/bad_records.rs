//! What a source does with a record its format cannot read: the policy ([`BadRecords`]), the
//! [`DeadLetter`] rows and the counts, shared by every source that decodes bytes (Kafka
//! topics, files).
//!
//! A bad record is never dropped without a trace: it fails the job (naming where it was),
//! or it is skipped, logged and counted, or it goes to a dead-letter sink with its bytes.

use flow_runtime::snapshot::StateWriter;
use flow_runtime::{
    CheckpointId, Field, GroupCommits, Result, Row, RowText, RuntimeContext, Schema, Sink,
    SinkWriter, Snapshot, Timestamp,
};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A record the source's format could not read, as sent to a dead-letter sink: where it was,
/// why it was rejected, and its bytes as they were.
///
/// It is a row like any other (schema, serde, text form), so any sink that accepts it can be
/// the dead-letter sink: a `KafkaSink` with [`Json`](crate::format::Json) to a dead-letter
/// topic, a [`FileSink`](crate::FileSink), a `CollectHandle`'s sink.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    /// Where the record came from: its Kafka topic, or its file's path.
    pub source: String,
    /// The record's Kafka partition (0 for a file).
    pub partition: i32,
    /// The record's Kafka offset, or its line number in the file (from 1).
    pub offset: i64,
    /// Why the format rejected it.
    pub error: String,
    /// The record's bytes, unchanged (a Kafka record's value, empty when it has none; a
    /// file's line without its line break).
    pub payload: Vec<u8>,
}

impl Row for DeadLetter {
    const SCHEMA: Schema = Schema {
        name: "DeadLetter",
        fields: &[
            Field {
                name: "source",
                type_name: "String",
            },
            Field {
                name: "partition",
                type_name: "i32",
            },
            Field {
                name: "offset",
                type_name: "i64",
            },
            Field {
                name: "error",
                type_name: "String",
            },
            Field {
                name: "payload",
                type_name: "Vec<u8>",
            },
        ],
    };
}

/// The text form: `source partition offset error payload`, the payload lossily as UTF-8.
impl fmt::Display for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {}",
            self.source,
            self.partition,
            self.offset,
            self.error,
            String::from_utf8_lossy(&self.payload)
        )
    }
}

impl RowText for DeadLetter {
    fn fmt_row(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What a source does with a record its format cannot read (malformed JSON or CSV, a wrong
/// type, a missing field, invalid UTF-8). No policy panics or drops a record without a trace.
///
/// # Default
/// [`BadRecords::fail`].
#[derive(Clone, Default)]
pub enum BadRecords {
    /// The job stops with an error naming where the record was (topic, partition and offset;
    /// file and line) and the format's error.
    #[default]
    Fail,
    /// The record is skipped, logged (warn) with the same coordinates, and counted: in the job
    /// result (the source's `OperatorMetrics::skipped_records`) and, live, by the source's
    /// `bad_record_counts()`.
    Skip,
    /// The record goes, as a [`DeadLetter`] row, to a sink whose writers the source's readers
    /// own (one per reader, flushed with every batch and finished with the reader).
    DeadLetter(DeadLetterSink),
}

impl BadRecords {
    /// [`BadRecords::Fail`].
    pub fn fail() -> Self {
        BadRecords::Fail
    }
    /// [`BadRecords::Skip`].
    pub fn skip() -> Self {
        BadRecords::Skip
    }
    /// [`BadRecords::DeadLetter`] to `sink`.
    pub fn dead_letter<S>(sink: S) -> Self
    where
        S: Sink<DeadLetter>,
        S::Writer: Send + 'static,
    {
        BadRecords::DeadLetter(DeadLetterSink(Arc::new(sink)))
    }
}

impl fmt::Debug for BadRecords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadRecords::Fail => f.write_str("Fail"),
            BadRecords::Skip => f.write_str("Skip"),
            BadRecords::DeadLetter(_) => f.write_str("DeadLetter(..)"),
        }
    }
}

/// A sink of [`DeadLetter`] rows, type-erased so that the source's type does not depend on it.
/// Dead letters are rare, so one virtual call per bad record costs nothing that matters.
#[derive(Clone)]
pub struct DeadLetterSink(Arc<dyn ErasedSink>);

/// A dead-letter sink's writer, type-erased.
type DeadLetterWriter = dyn SinkWriter<DeadLetter> + Send;

trait ErasedSink: Send + Sync {
    fn create_erased(&self, ctx: &RuntimeContext) -> Result<Box<DeadLetterWriter>>;
}

impl<S: Sink<DeadLetter>> ErasedSink for S
where
    S::Writer: Send + 'static,
{
    fn create_erased(&self, ctx: &RuntimeContext) -> Result<Box<DeadLetterWriter>> {
        Ok(Box::new(self.create_writer(ctx)?))
    }
}

/// How many bad records a source's readers skipped or sent to the dead-letter sink, summed
/// over its readers; live while the job runs.
#[derive(Clone, Debug, Default)]
pub struct BadRecordCounts(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    skipped: AtomicU64,
    dead_lettered: AtomicU64,
}

impl BadRecordCounts {
    /// Records skipped under [`BadRecords::Skip`].
    pub fn skipped(&self) -> u64 {
        self.0.skipped.load(Ordering::Relaxed)
    }
    /// Records sent to the dead-letter sink under [`BadRecords::DeadLetter`].
    pub fn dead_lettered(&self) -> u64 {
        self.0.dead_lettered.load(Ordering::Relaxed)
    }
}

/// One reader's side of the policy: its dead-letter writer and its share of the counts.
pub(crate) struct BadRecordHandler {
    policy: BadRecords,
    /// The source's name, for errors and logs.
    connector: String,
    dead_letters: Option<Box<DeadLetterWriter>>,
    counts: BadRecordCounts,
    /// This reader's share of `counts`, for the job result.
    skipped: u64,
    dead_lettered: u64,
    finished: bool,
    /// The instance group's commits ([`BadRecordHandler::commit_output`]; a Kafka source's
    /// only).
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    commits: GroupCommits,
}

impl BadRecordHandler {
    pub(crate) fn new(policy: BadRecords, connector: String, counts: BadRecordCounts) -> Self {
        BadRecordHandler {
            policy,
            connector,
            dead_letters: None,
            counts,
            skipped: 0,
            dead_lettered: 0,
            finished: false,
            commits: GroupCommits::default(),
        }
    }

    /// Creates the dead-letter writer in the reader's thread.
    pub(crate) fn open(&mut self, ctx: &RuntimeContext) -> Result<()> {
        if let BadRecords::DeadLetter(sink) = &self.policy {
            self.dead_letters = Some(sink.0.create_erased(ctx)?);
        }
        Ok(())
    }

    /// Applies the policy to `letter`, a record that failed to decode; `at` says where it was
    /// for people ("topic `t` partition 0 offset 7", "file `a.csv` line 3").
    #[cold]
    pub(crate) fn handle(&mut self, letter: DeadLetter, ts: Timestamp, at: &str) -> Result<()> {
        match &self.policy {
            BadRecords::Fail => Err(flow_runtime::Error::Connector {
                connector: self.connector.clone(),
                message: format!(
                    "bad record at {at}: {} (set `.bad_records(BadRecords::skip())` or `dead_letter(..)` to go on)",
                    letter.error
                ),
            }),
            BadRecords::Skip => {
                tracing::warn!(
                    connector = %self.connector,
                    at,
                    error = %letter.error,
                    "skipped a bad record"
                );
                self.counts.0.skipped.fetch_add(1, Ordering::Relaxed);
                self.skipped += 1;
                Ok(())
            }
            BadRecords::DeadLetter(_) => {
                tracing::debug!(
                    connector = %self.connector,
                    at,
                    error = %letter.error,
                    "bad record sent to the dead-letter sink"
                );
                let dlq = self
                    .dead_letters
                    .as_mut()
                    .expect("the dead-letter writer is created in `open`");
                dlq.write(letter, ts);
                self.counts.0.dead_lettered.fetch_add(1, Ordering::Relaxed);
                self.dead_lettered += 1;
                Ok(())
            }
        }
    }

    /// Flushes the dead-letter writer (after every batch of the reader).
    pub(crate) fn flush(&mut self) -> Result<()> {
        match &mut self.dead_letters {
            Some(dlq) => dlq.flush(),
            None => Ok(()),
        }
    }

    /// Makes the dead-letter output durable (it belongs to the rows before the barrier), or
    /// prepares it for its commit: also after [`finish`](Self::finish), for the final
    /// checkpoint, as a sink task's writer gets it.
    pub(crate) fn checkpoint(&mut self, id: CheckpointId) -> Result<Snapshot> {
        match &mut self.dead_letters {
            Some(dlq) => dlq.checkpoint(id, &mut StateWriter::detached()),
            None => Ok(Snapshot::Taken),
        }
    }

    /// Checkpoint `id` completed: the dead-letter writer commits what it prepared (a
    /// `FileSink`'s parts become visible).
    pub(crate) fn checkpoint_complete(&mut self, id: CheckpointId) -> Result<()> {
        match &mut self.dead_letters {
            Some(dlq) => dlq.checkpoint_complete(id),
            None => Ok(()),
        }
    }

    /// In an instance group, the reader commits its positions next: the dead letters of the
    /// records before them are made durable and visible now, as the group's sinks' output is
    /// ([`GroupCommits`]); in an exactly-once group a `FileSink` (or an exactly-once
    /// `JdbcSink`) of them prepares them for the reader's transaction, which commits them.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) fn commit_output(&mut self) -> Result<()> {
        match &mut self.dead_letters {
            Some(dlq) => self.commits.commit(dlq.as_mut()),
            None => Ok(()),
        }
    }

    /// The end of the reader's input: finishes the dead-letter writer.
    pub(crate) fn finish(&mut self) -> Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        match &mut self.dead_letters {
            Some(dlq) => dlq.finish(),
            None => Ok(()),
        }
    }

    /// Adds the reader's counts to the job result.
    pub(crate) fn report(&self, metrics: &mut flow_runtime::TaskMetrics, node: u32) {
        metrics.add_skipped(node, self.skipped);
        metrics.add_dead_lettered(node, self.dead_lettered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_are_rows() {
        let d = DeadLetter {
            source: "t".into(),
            partition: 2,
            offset: 40,
            error: "json: EOF".into(),
            payload: b"{\"i".to_vec(),
        };
        assert_eq!(d.to_string(), "t 2 40 json: EOF {\"i");
        assert_eq!(DeadLetter::SCHEMA.fields.len(), 5);
        let j = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<DeadLetter>(&j).unwrap(), d);
    }
}
