//! The Kafka connectors' settings: where reading starts, what happens to bad records, and the
//! client properties shared by sources, sinks and the admin client.

use flow_runtime::{
    Field, Result, Row, RowText, RuntimeContext, Schema, Sink, SinkWriter, Timestamp,
};
use rdkafka::ClientConfig;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where a [`KafkaSource`](super::KafkaSource) starts reading each partition (Flink's
/// `OffsetsInitializer`).
///
/// # Default
/// [`StartingOffsets::Committed`] with fallback [`OffsetReset::Earliest`]: resume where the
/// group left off, and read a partition the group never committed from its beginning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartingOffsets {
    /// The earliest offset still in the partition.
    Earliest,
    /// The end of the partition: only records produced after the start.
    Latest,
    /// The group's committed offset; `fallback` where the group has none.
    Committed {
        /// Where to start in a partition without a committed offset.
        fallback: OffsetReset,
    },
    /// The first record whose timestamp is at or after this one (milliseconds since the
    /// epoch); the end of the partition when there is none.
    Timestamp(Timestamp),
}

impl Default for StartingOffsets {
    fn default() -> Self {
        StartingOffsets::Committed {
            fallback: OffsetReset::Earliest,
        }
    }
}

/// What a [`KafkaSink`](super::KafkaSink) promises about its rows after a failure (Flink's
/// `DeliveryGuarantee`).
///
/// # Default
/// [`DeliveryGuarantee::AtLeastOnce`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeliveryGuarantee {
    /// Every row is written; a job restarted from a checkpoint may write again rows the failed
    /// run wrote after that checkpoint.
    #[default]
    AtLeastOnce,
    /// Every row is written once, as seen by `read_committed` consumers: each checkpoint's
    /// rows are one Kafka transaction, committed when the checkpoint completes.
    ExactlyOnce,
}

/// Where to start in a partition without a committed offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetReset {
    /// The earliest offset still in the partition.
    Earliest,
    /// The end of the partition.
    Latest,
}

/// A record the source's format could not read, as sent to a dead-letter sink: where it was,
/// why it was rejected, and its bytes as they were.
///
/// It is a row like any other (schema, serde, text form), so any sink that accepts it can be
/// the dead-letter sink: a [`KafkaSink`](super::KafkaSink) with [`Json`](crate::format::Json)
/// to a dead-letter topic, a `FileSink`, a `CollectHandle`'s sink.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    /// The record's topic.
    pub topic: String,
    /// The record's partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// Why the format rejected it.
    pub error: String,
    /// The record's value, unchanged (empty for a record without a value).
    pub payload: Vec<u8>,
}

impl Row for DeadLetter {
    const SCHEMA: Schema = Schema {
        name: "DeadLetter",
        fields: &[
            Field {
                name: "topic",
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

/// The text form: `topic partition offset error payload`, the payload lossily as UTF-8.
impl fmt::Display for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {}",
            self.topic,
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

/// What a source does with a record its format cannot read (malformed JSON, a wrong type, a
/// missing field, invalid UTF-8). No policy panics or drops a record without a trace.
///
/// # Default
/// [`BadRecords::fail`].
#[derive(Clone, Default)]
pub enum BadRecords {
    /// The job stops with an error naming the topic, partition, offset and the format's error.
    #[default]
    Fail,
    /// The record is skipped, logged (warn) with the same coordinates, and counted: in the job
    /// result (the source's `OperatorMetrics::skipped_records`) and, live, by
    /// [`KafkaSource::bad_record_counts`](super::KafkaSource::bad_record_counts).
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

impl DeadLetterSink {
    pub(crate) fn create_writer(&self, ctx: &RuntimeContext) -> Result<Box<DeadLetterWriter>> {
        self.0.create_erased(ctx)
    }
}

/// A dead-letter sink's writer, type-erased.
pub(crate) type DeadLetterWriter = dyn SinkWriter<DeadLetter> + Send;

pub(crate) trait ErasedSink: Send + Sync {
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
    pub(crate) fn add_skipped(&self, n: u64) {
        self.0.skipped.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn add_dead_lettered(&self, n: u64) {
        self.0.dead_lettered.fetch_add(n, Ordering::Relaxed);
    }
}

/// The client settings every Kafka connector has: brokers, extra librdkafka properties and how
/// long to wait for the broker at start.
#[derive(Clone, Debug)]
pub(crate) struct ClientSettings {
    pub(crate) bootstrap_servers: String,
    pub(crate) properties: Vec<(String, String)>,
    pub(crate) connect_timeout: Duration,
}

impl ClientSettings {
    /// 10 s: the broker must answer a metadata request within it when a connector starts.
    pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

    pub(crate) fn new() -> Self {
        ClientSettings {
            bootstrap_servers: String::new(),
            properties: Vec::new(),
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// The librdkafka configuration: `defaults` first, then the user's properties over them.
    pub(crate) fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers);
        for (k, v) in defaults {
            c.set(*k, *v);
        }
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }

    pub(crate) fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn validate(&self, connector: &str) -> Result<()> {
        if self.bootstrap_servers.trim().is_empty() {
            return Err(flow_runtime::Error::Config(format!(
                "{connector}: no bootstrap servers: call `.bootstrap_servers(\"host:port\")`"
            )));
        }
        if self.connect_timeout.is_zero() {
            return Err(flow_runtime::Error::Config(format!(
                "{connector}: the connect timeout must be positive"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_properties_override_defaults() {
        let mut s = ClientSettings::new();
        s.bootstrap_servers = "127.0.0.1:9092".into();
        s.properties.push(("linger.ms".into(), "50".into()));
        let c = s.client_config(&[("linger.ms", "5"), ("acks", "all")]);
        assert_eq!(c.get("linger.ms"), Some("50"));
        assert_eq!(c.get("acks"), Some("all"));
        assert_eq!(c.get("bootstrap.servers"), Some("127.0.0.1:9092"));
        assert_eq!(s.property("linger.ms"), Some("50"));
        assert!(s.validate("KafkaSource").is_ok());
        s.bootstrap_servers = " ".into();
        let e = s.validate("KafkaSource").unwrap_err().to_string();
        assert!(e.contains("no bootstrap servers"), "{e}");
    }

    #[test]
    fn dead_letters_are_rows() {
        let d = DeadLetter {
            topic: "t".into(),
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
