//! The Kafka sink: a builder, the sink value, and the per-subtask writer.

use super::config::ClientSettings;
use super::{connector_error, fetch_metadata, fmt_duration, topic_partitions};
use crate::format::{Encode, FormatError, Raw};
use flow_runtime::snapshot::StateWriter;
use flow_runtime::{
    CheckpointId, Error, Result, RuntimeContext, Sink, SinkWriter, Snapshot, Timestamp,
    NO_TIMESTAMP,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How many records a writer sends between two polls of the producer's delivery reports.
const POLL_EVERY: u32 = 1024;

type KeyFn<T> = Arc<dyn Fn(&T, &mut Vec<u8>) -> Result<(), FormatError> + Send + Sync>;
type TopicFn<T> = Arc<dyn Fn(&T, &mut String) + Send + Sync>;

/// Writes rows to Kafka (Flink's `KafkaSink`), at least once: see the
/// [module documentation](super) for the guarantee.
///
/// Each row's value is written with the sink's format; its key (optional) with a key format
/// from a closure; its topic is fixed or chosen per row; a row with an event timestamp is
/// written with it as the record's timestamp. The producer is idempotent with `acks=all`;
/// every record must be acknowledged before the job ends successfully, and a record the
/// broker does not take within the delivery timeout fails the job.
///
/// The key and topic closures are boxed: one indirect call per row is noise next to handing
/// the record to librdkafka, and it keeps the sink's type to its row and format.
///
/// # Examples
/// ```no_run
/// use flow_connectors::format::{Json, Utf8};
/// use flow_connectors::kafka::KafkaSink;
///
/// #[derive(serde::Serialize)]
/// struct Order { id: i64, customer: String }
///
/// let sink = KafkaSink::builder()
///     .bootstrap_servers("127.0.0.1:9092")
///     .topic("orders")
///     .format(Json::<Order>::new())
///     .key(Utf8, |o: &Order| o.customer.clone())
///     .build()?;
/// # let _ = sink;
/// # Ok::<(), flow_runtime::Error>(())
/// ```
pub struct KafkaSink<F: Encode> {
    settings: ClientSettings,
    topic: Option<String>,
    topic_fn: Option<TopicFn<F::Row>>,
    key: Option<KeyFn<F::Row>>,
    delivery_timeout: Duration,
    format: F,
}

/// Configures a [`KafkaSink`]; from [`KafkaSink::builder`].
pub struct KafkaSinkBuilder<F: Encode> {
    sink: KafkaSink<F>,
}

impl KafkaSink<Raw> {
    /// A builder; set at least the bootstrap servers, the topic and the format.
    ///
    /// # Default
    /// Format [`Raw`] (rows are `Vec<u8>` values), no key, a 30 s delivery timeout, a 10 s
    /// connect timeout.
    pub fn builder() -> KafkaSinkBuilder<Raw> {
        KafkaSinkBuilder {
            sink: KafkaSink {
                settings: ClientSettings::new(),
                topic: None,
                topic_fn: None,
                key: None,
                delivery_timeout: Duration::from_secs(30),
                format: Raw,
            },
        }
    }
}

impl<F: Encode> KafkaSinkBuilder<F> {
    /// The brokers to connect to first: `host:port[,host:port...]`.
    #[must_use]
    pub fn bootstrap_servers(mut self, servers: impl Into<String>) -> Self {
        self.sink.settings.bootstrap_servers = servers.into();
        self
    }

    /// Writes every row to `topic`.
    #[must_use]
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.sink.topic = Some(topic.into());
        self.sink.topic_fn = None;
        self
    }

    /// Writes each row to the topic `f` names for it. The topics must exist.
    #[must_use]
    pub fn topic_fn<S, G>(mut self, f: G) -> Self
    where
        S: AsRef<str>,
        G: Fn(&F::Row) -> S + Send + Sync + 'static,
    {
        self.sink.topic_fn = Some(Arc::new(move |row, buf: &mut String| {
            buf.clear();
            buf.push_str(f(row).as_ref());
        }));
        self.sink.topic = None;
        self
    }

    /// The value format; the sink accepts rows of its row type. Resets the key: set it after.
    ///
    /// # Default
    /// [`Raw`].
    #[must_use]
    pub fn format<G: Encode>(self, format: G) -> KafkaSinkBuilder<G> {
        let s = self.sink;
        KafkaSinkBuilder {
            sink: KafkaSink {
                settings: s.settings,
                topic: s.topic,
                topic_fn: None,
                key: None,
                delivery_timeout: s.delivery_timeout,
                format,
            },
        }
    }

    /// Gives each record the key `key(row)`, written with `format` (records with the same key
    /// go to the same partition).
    ///
    /// # Default
    /// No key: librdkafka spreads the records over the partitions.
    #[must_use]
    pub fn key<K, E, G>(mut self, format: E, key: G) -> Self
    where
        E: Encode<Row = K>,
        G: Fn(&F::Row) -> K + Send + Sync + 'static,
    {
        self.sink.key = Some(Arc::new(move |row, buf: &mut Vec<u8>| {
            format.encode(&key(row), buf)
        }));
        self
    }

    /// Keys each record with the field `field` of the row's serde form (a `#[derive(Row)]`
    /// field): a string field as its UTF-8 text, any other value as its JSON text (`42`).
    /// A row without that field is an error that fails the job.
    #[must_use]
    pub fn key_field(mut self, field: &str) -> Self
    where
        F::Row: serde::Serialize,
    {
        let field = field.to_owned();
        self.sink.key = Some(Arc::new(move |row, buf: &mut Vec<u8>| {
            let value =
                serde_json::to_value(row).map_err(|e| FormatError::new("key", e.to_string()))?;
            match value.get(&field) {
                Some(serde_json::Value::String(s)) => buf.extend_from_slice(s.as_bytes()),
                Some(v) => serde_json::to_writer(&mut *buf, v)
                    .map_err(|e| FormatError::new("key", e.to_string()))?,
                None => {
                    return Err(FormatError::new(
                        "key",
                        format!("the row has no field `{field}`"),
                    ))
                }
            }
            Ok(())
        }));
        self
    }

    /// How long librdkafka may try (with retries and backoff) to deliver a record before the
    /// sink gives up and fails the job (`message.timeout.ms`).
    ///
    /// # Default
    /// 30 s.
    #[must_use]
    pub fn delivery_timeout(mut self, timeout: Duration) -> Self {
        self.sink.delivery_timeout = timeout;
        self
    }

    /// How long the broker must answer when the job starts.
    ///
    /// # Default
    /// 10 s.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.sink.settings.connect_timeout = timeout;
        self
    }

    /// Sets a librdkafka producer property (`linger.ms`, `compression.type`, ...), passed
    /// through as is; it overrides flow's own settings of the same key. Settings that would
    /// weaken the guarantee (`acks`, `enable.idempotence`) are refused by `build`.
    #[must_use]
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.sink
            .settings
            .properties
            .push((key.into(), value.into()));
        self
    }

    /// The sink.
    ///
    /// # Errors
    /// [`Error::Config`]: no bootstrap servers, no topic, a zero timeout, a property that
    /// would weaken at-least-once delivery or ask for transactions.
    pub fn build(self) -> Result<KafkaSink<F>> {
        let s = self.sink;
        let name = s.connector_name();
        s.settings.validate(&name)?;
        let config = |m: String| Err(Error::Config(format!("{name}: {m}")));
        match (&s.topic, &s.topic_fn) {
            (None, None) => return config("no topic: call `.topic(..)` or `.topic_fn(..)`".into()),
            (Some(t), _) if t.is_empty() => return config("an empty topic name".into()),
            _ => {}
        }
        if s.delivery_timeout.is_zero() {
            return config("the delivery timeout must be positive".into());
        }
        for (key, ok) in [
            ("acks", &["all", "-1"][..]),
            ("enable.idempotence", &["true"][..]),
        ] {
            if let Some(v) = s.settings.property(key) {
                if !ok.contains(&v) {
                    return config(format!(
                        "`{key}={v}` would weaken at-least-once delivery; the sink needs `acks=all` and `enable.idempotence=true`"
                    ));
                }
            }
        }
        if s.settings.property("transactional.id").is_some() {
            return config(
                "transactions are not supported: the Kafka sink is at-least-once".into(),
            );
        }
        Ok(s)
    }
}

impl<F: Encode> KafkaSink<F> {
    fn connector_name(&self) -> String {
        match &self.topic {
            Some(t) => format!("KafkaSink({t})"),
            None => "KafkaSink(<per-row topic>)".to_owned(),
        }
    }
}

impl<F: Encode> fmt::Debug for KafkaSink<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSink")
            .field("settings", &self.settings)
            .field("topic", &self.topic)
            .field("keyed", &self.key.is_some())
            .field("delivery_timeout", &self.delivery_timeout)
            .field("format", &std::any::type_name::<F>())
            .finish()
    }
}

impl<F: Encode> Sink<F::Row> for KafkaSink<F> {
    type Writer = KafkaSinkWriter<F>;

    /// Creates the subtask's idempotent producer and checks that the broker answers and the
    /// (fixed) topic exists.
    ///
    /// # Errors
    /// The producer cannot be created, the broker does not answer within the connect timeout,
    /// the topic does not exist.
    fn create_writer(&self, _ctx: &RuntimeContext) -> Result<KafkaSinkWriter<F>> {
        let name = self.connector_name();
        let timeout_ms = self.delivery_timeout.as_millis().max(1).to_string();
        let deliveries = Arc::new(Deliveries::default());
        let producer: BaseProducer<DeliveryContext> = self
            .settings
            .client_config(&[
                ("enable.idempotence", "true"),
                ("acks", "all"),
                ("message.timeout.ms", &timeout_ms),
                ("linger.ms", "5"),
                // Topics must exist: a missing one is an error, not a silent creation.
                ("allow.auto.create.topics", "false"),
                ("socket.connection.setup.timeout.ms", "10000"),
            ])
            .create_with_context(DeliveryContext {
                deliveries: deliveries.clone(),
            })
            .map_err(|e| connector_error(&name, format!("cannot create a producer: {e}")))?;
        let metadata = fetch_metadata(
            producer.client(),
            &self.settings,
            &name,
            self.topic.as_deref(),
        )?;
        if let Some(topic) = &self.topic {
            topic_partitions(&metadata, topic, &name, ": create it first")?;
        }
        Ok(KafkaSinkWriter {
            producer,
            deliveries,
            connector: name,
            topic: self.topic.clone().unwrap_or_default(),
            topic_fn: self.topic_fn.clone(),
            key: self.key.clone(),
            delivery_timeout: self.delivery_timeout,
            format: self.format.clone(),
            value: Vec::with_capacity(256),
            key_buf: Vec::new(),
            topic_buf: String::new(),
            sent: 0,
            since_poll: 0,
            error: None,
        })
    }
}

/// Delivery reports, shared between the producer's callback and the writer.
#[derive(Default)]
struct Deliveries {
    acked: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

struct DeliveryContext {
    deliveries: Arc<Deliveries>,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let d = &self.deliveries;
        match result {
            Ok(_) => {
                d.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, msg)) => {
                d.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = d.first_error.lock().unwrap_or_else(|p| p.into_inner());
                if first.is_none() {
                    *first = Some(format!(
                        "delivery to topic `{}` partition {} failed: {e}",
                        msg.topic(),
                        msg.partition()
                    ));
                }
            }
        }
    }
}

/// One subtask's writer of a [`KafkaSink`]: an idempotent producer.
///
/// Dropping it without [`finish`](SinkWriter::finish) (a failed job) drops the records not yet
/// delivered; those delivered stay in the topic.
pub struct KafkaSinkWriter<F: Encode> {
    producer: BaseProducer<DeliveryContext>,
    deliveries: Arc<Deliveries>,
    connector: String,
    topic: String,
    topic_fn: Option<TopicFn<F::Row>>,
    key: Option<KeyFn<F::Row>>,
    delivery_timeout: Duration,
    format: F,
    value: Vec<u8>,
    key_buf: Vec<u8>,
    topic_buf: String,
    sent: u64,
    since_poll: u32,
    /// The first error of a row (`write` cannot fail), reported by the next flush.
    error: Option<Error>,
}

impl<F: Encode> KafkaSinkWriter<F> {
    fn send(&mut self, row: &F::Row, ts: Timestamp) -> Result<()> {
        self.value.clear();
        self.format
            .encode(row, &mut self.value)
            .map_err(|e| connector_error(&self.connector, format!("cannot encode a row: {e}")))?;
        let key = match &self.key {
            Some(k) => {
                self.key_buf.clear();
                k(row, &mut self.key_buf).map_err(|e| {
                    connector_error(&self.connector, format!("cannot encode a row's key: {e}"))
                })?;
                Some(self.key_buf.as_slice())
            }
            None => None,
        };
        let topic = match &self.topic_fn {
            Some(f) => {
                f(row, &mut self.topic_buf);
                self.topic_buf.as_str()
            }
            None => self.topic.as_str(),
        };
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(&self.value);
        if let Some(key) = key {
            record = record.key(key);
        }
        if ts != NO_TIMESTAMP {
            record = record.timestamp(ts);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // The local queue is full: serve delivery reports until there is room
                    // (backpressure). A broker that is gone makes records time out, which
                    // frees the queue and records the error.
                    record = back;
                    self.producer.poll(Duration::from_millis(10));
                    self.check_deliveries()?;
                }
                Err((e, _)) => {
                    return Err(connector_error(
                        &self.connector,
                        format!("cannot send to topic `{topic}`: {e}"),
                    ))
                }
            }
        }
        self.sent += 1;
        self.since_poll += 1;
        if self.since_poll >= POLL_EVERY {
            self.since_poll = 0;
            self.producer.poll(Duration::ZERO);
        }
        Ok(())
    }

    fn check_deliveries(&self) -> Result<()> {
        let failed = self.deliveries.failed.load(Ordering::Relaxed);
        if failed == 0 {
            return Ok(());
        }
        let first = self
            .deliveries
            .first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default();
        Err(connector_error(
            &self.connector,
            format!(
                "{first} ({failed} record(s) not delivered within the delivery timeout of {}; records acknowledged before stay written)",
                fmt_duration(self.delivery_timeout)
            ),
        ))
    }

    fn take_error(&mut self) -> Result<()> {
        match self.error.take() {
            Some(e) => {
                // Keep failing: nothing is written after an error.
                self.error = Some(connector_error(
                    &self.connector,
                    "the writer stopped after an earlier error",
                ));
                Err(e)
            }
            None => Ok(()),
        }
    }
}

impl<F: Encode> SinkWriter<F::Row> for KafkaSinkWriter<F> {
    #[inline]
    fn write(&mut self, row: F::Row, ts: Timestamp) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.send(&row, ts) {
            tracing::warn!(connector = %self.connector, error = %e, "kafka sink failed");
            self.error = Some(e);
        }
    }

    fn flush(&mut self) -> Result<()> {
        self.take_error()?;
        self.producer.poll(Duration::ZERO);
        self.since_poll = 0;
        self.check_deliveries()
    }

    /// Waits until every record written so far is acknowledged by the broker: the sources may
    /// then commit the positions of the rows before the barrier.
    fn checkpoint(&mut self, _: CheckpointId, _: &mut StateWriter) -> Result<Snapshot> {
        self.wait_for_acks()?;
        Ok(Snapshot::Taken)
    }

    fn finish(&mut self) -> Result<()> {
        self.wait_for_acks()
    }
}

impl<F: Encode> KafkaSinkWriter<F> {
    /// Waits until every record is acknowledged (at most the delivery timeout and a margin).
    fn wait_for_acks(&mut self) -> Result<()> {
        self.take_error()?;
        let wait = self.delivery_timeout + Duration::from_secs(5);
        let flushed = self.producer.flush(wait);
        self.producer.poll(Duration::ZERO);
        self.check_deliveries()?;
        if let Err(e) = flushed {
            return Err(connector_error(
                &self.connector,
                format!(
                    "records not acknowledged within {}: {e}",
                    fmt_duration(wait)
                ),
            ));
        }
        let acked = self.deliveries.acked.load(Ordering::Relaxed);
        if acked != self.sent {
            return Err(connector_error(
                &self.connector,
                format!(
                    "{} of {} records were not acknowledged",
                    self.sent - acked,
                    self.sent
                ),
            ));
        }
        Ok(())
    }
}
