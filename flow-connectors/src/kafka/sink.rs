//! The Kafka sink: a builder, the sink value, and the per-subtask writer.

use super::config::{ClientSettings, DeliveryGuarantee};
use super::origin::SharedOrigin;
use super::transactions::Transactions;
use super::{connector_error, fetch_metadata, fmt_duration, topic_partitions};
use crate::format::{Encode, FormatError, Raw};
use flow_runtime::instances::InstanceConfig;
use flow_runtime::snapshot::{StateReader, StateWriter};
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

/// `transaction.timeout.ms` of an exactly-once sink unless set with `.property(..)`: a
/// transaction stays open for a checkpoint interval and until the checkpoint completes.
const DEFAULT_TRANSACTION_TIMEOUT_MS: &str = "60000";

type KeyFn<T> = Arc<dyn Fn(&T, &mut Vec<u8>) -> Result<(), FormatError> + Send + Sync>;
type TopicFn<T> = Arc<dyn Fn(&T, &mut String) + Send + Sync>;

/// Writes rows to Kafka (Flink's `KafkaSink`), at least once or, with
/// [`DeliveryGuarantee::ExactlyOnce`], exactly once: see the [module documentation](super)
/// for the guarantees.
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
    guarantee: DeliveryGuarantee,
    transactional_id_prefix: String,
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
    /// connect timeout, [`DeliveryGuarantee::AtLeastOnce`].
    pub fn builder() -> KafkaSinkBuilder<Raw> {
        KafkaSinkBuilder {
            sink: KafkaSink {
                settings: ClientSettings::new(),
                topic: None,
                topic_fn: None,
                key: None,
                delivery_timeout: Duration::from_secs(30),
                guarantee: DeliveryGuarantee::AtLeastOnce,
                transactional_id_prefix: String::new(),
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
                guarantee: s.guarantee,
                transactional_id_prefix: s.transactional_id_prefix,
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

    /// The delivery guarantee (Flink's `setDeliveryGuarantee`). Exactly-once writes each
    /// checkpoint's rows in a Kafka transaction committed when the checkpoint completes, and
    /// needs [`transactional_id_prefix`](Self::transactional_id_prefix) (outside an instance
    /// group, whose transactions it writes in then: refused when the job starts) and a fixed
    /// [`topic`](Self::topic); consumers see the rows only with `isolation.level=read_committed`
    /// (`KafkaSourceBuilder::read_committed`). Run the job with a checkpoint directory: the
    /// checkpoints keep a copy of the rows not committed yet, and without a directory the sink
    /// declines them and commits once, at the end.
    ///
    /// # Default
    /// [`DeliveryGuarantee::AtLeastOnce`].
    #[must_use]
    pub fn delivery_guarantee(mut self, guarantee: DeliveryGuarantee) -> Self {
        self.sink.guarantee = guarantee;
        self
    }

    /// The prefix of the exactly-once sink's transactional ids (Flink's
    /// `setTransactionalIdPrefix`): subtask `i` uses `<prefix>-<i>`. It must be the same
    /// across restarts of a job and unique among the jobs writing to the same brokers: a
    /// producer with the same id fences the older one.
    #[must_use]
    pub fn transactional_id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.sink.transactional_id_prefix = prefix.into();
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
    /// would weaken at-least-once delivery or set a transactional id; exactly-once without a
    /// transactional id prefix or with a per-row topic; a `FLOW_KAFKA_DEBUG` value librdkafka
    /// refuses.
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
                "`transactional.id` is set by the sink: use `.delivery_guarantee(DeliveryGuarantee::ExactlyOnce)` and `.transactional_id_prefix(..)`".into(),
            );
        }
        if s.guarantee == DeliveryGuarantee::ExactlyOnce {
            // (An empty prefix is refused when the job starts outside an instance group,
            // whose transactions the sink then writes in.)
            let prefix = &s.transactional_id_prefix;
            if !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                return config(format!(
                    "the transactional id prefix `{prefix}` may only have ASCII letters, digits, `.`, `_` and `-`"
                ));
            }
            if s.topic.is_none() {
                return config("exactly-once needs a fixed topic (`.topic(..)`): each transaction's commit marker goes to its partition 0".into());
            }
            let txn_ms = s
                .settings
                .property("transaction.timeout.ms")
                .unwrap_or(DEFAULT_TRANSACTION_TIMEOUT_MS);
            match txn_ms.parse::<u128>() {
                Ok(ms) if s.delivery_timeout.as_millis() <= ms => {}
                Ok(ms) => {
                    return config(format!(
                        "the delivery timeout ({} ms) must not exceed the transaction timeout ({ms} ms): lower it, or raise `transaction.timeout.ms`",
                        s.delivery_timeout.as_millis()
                    ))
                }
                Err(_) => {
                    return config(format!(
                        "`transaction.timeout.ms={txn_ms}` is not a number of milliseconds"
                    ))
                }
            }
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

    /// Why the sink cannot run as configured, if it cannot: in an instance group
    /// (`Some(exactly_once)`, whether the group has transactions to write in) or outside one.
    fn refusal(&self, group: Option<bool>) -> Option<&'static str> {
        if self.guarantee != DeliveryGuarantee::ExactlyOnce {
            return None;
        }
        match group {
            Some(false) => Some("exactly-once in an at-least-once instance group: run the group with `--processing-guarantee exactly-once` (the sink then writes in the group's transactions), or make the sink at-least-once"),
            None if self.transactional_id_prefix.is_empty() => Some("exactly-once needs a transactional id prefix: call `.transactional_id_prefix(..)` (in an instance group the sink writes in the group's transactions and needs none)"),
            _ => None,
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
            .field("guarantee", &self.guarantee)
            .field("transactional_id_prefix", &self.transactional_id_prefix)
            .field("format", &std::any::type_name::<F>())
            .finish()
    }
}

impl<F: Encode> Sink<F::Row> for KafkaSink<F> {
    type Writer = KafkaSinkWriter<F>;

    /// Exactly-once needs the group's transactions in an instance group (`--processing-guarantee
    /// exactly-once`) and, outside one, a transactional id prefix.
    fn check(&self, instances: Option<&InstanceConfig>) -> Result<()> {
        match self.refusal(instances.map(|group| group.exactly_once)) {
            Some(why) => Err(connector_error(self.connector_name(), why)),
            None => Ok(()),
        }
    }

    /// Creates the subtask's idempotent producer (transactional, with the id
    /// `<prefix>-<subtask>`, when exactly-once) and checks that the broker answers and the
    /// (fixed) topic exists.
    ///
    /// # Errors
    /// The producer cannot be created, the broker does not answer within the connect timeout,
    /// the topic does not exist, the broker refuses transactions.
    fn create_writer(&self, ctx: &RuntimeContext) -> Result<KafkaSinkWriter<F>> {
        let name = self.connector_name();
        // In an exactly-once instance group: the rows go into the transactions of the source
        // or repartition reader that feeds the subtask, which commit its input positions.
        let key = ctx.subtask_key();
        let origin = match self.guarantee {
            DeliveryGuarantee::ExactlyOnce => SharedOrigin::find(key),
            DeliveryGuarantee::AtLeastOnce => None,
        };
        if self.guarantee == DeliveryGuarantee::ExactlyOnce && origin.is_none() {
            // Its own transactions, which commit at checkpoints: a group takes none (and every
            // instance has a subtask 0, the same transactional id).
            if super::origin::is_exactly_once(key.run) {
                return Err(connector_error(&name, "exactly-once in an instance group: the sink must be in the chain of a Kafka source of the group or of the stage a repartition topic feeds (after a key_by), whose transactions it writes in, not behind another exchange (a rebalance, another parallelism)"));
            }
            // `check`'s refusals again, for a sink flow! does not check (a source's dead
            // letters).
            if let Some(why) = self.refusal(ctx.in_instance_group().then_some(false)) {
                return Err(connector_error(&name, why));
            }
        }
        let transactional_id = match self.guarantee {
            DeliveryGuarantee::ExactlyOnce if origin.is_none() => Some(transactional_id(
                &self.transactional_id_prefix,
                ctx.subtask_index(),
            )),
            _ => None,
        };
        // With an origin, only to check the broker and the topic.
        let out = Output::connect(
            &self.settings,
            &name,
            self.delivery_timeout,
            self.topic.as_deref(),
            transactional_id.as_deref(),
        )?;
        if let Some(origin) = origin {
            let mut o = origin.lock();
            if !super::same_brokers(&self.settings.bootstrap_servers, o.brokers()) {
                return Err(connector_error(
                    &name,
                    format!(
                        "exactly-once in an instance group writes the sink's rows in the transactions of the group's readers, on the instance brokers ({}), not on `{}`",
                        o.brokers(),
                        self.settings.bootstrap_servers
                    ),
                ));
            }
            o.writer_opened();
            drop(o);
            return Ok(self.writer(out, None, Some(origin)));
        }
        let transactions = match &transactional_id {
            Some(id) => Some(Box::new(Transactions::new(
                &out,
                self.settings.clone(),
                self.delivery_timeout,
                id.clone(),
                self.topic.clone().unwrap_or_default(),
            )?)),
            None => None,
        };
        Ok(self.writer(out, transactions, None))
    }
}

impl<F: Encode> KafkaSink<F> {
    fn writer(
        &self,
        out: Output,
        transactions: Option<Box<Transactions>>,
        origin: Option<SharedOrigin>,
    ) -> KafkaSinkWriter<F> {
        KafkaSinkWriter {
            out,
            transactions,
            origin,
            checked: false,
            topic: self.topic.clone().unwrap_or_default(),
            topic_fn: self.topic_fn.clone(),
            key: self.key.clone(),
            format: self.format.clone(),
            value: Vec::with_capacity(256),
            key_buf: Vec::new(),
            topic_buf: String::new(),
            error: None,
        }
    }
}

/// A subtask's transactional id: `<prefix>-<subtask>`.
pub(super) fn transactional_id(prefix: &str, subtask: usize) -> String {
    format!("{prefix}-{subtask}")
}

/// Delivery reports, shared between the producer's callback and the writer.
#[derive(Default)]
struct Deliveries {
    acked: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

pub(super) struct DeliveryContext {
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

/// A producer and its delivery reports: what every writer sends through, compiled once
/// whatever the row type.
pub(super) struct Output {
    /// Shared with the thread that commits a transaction while rows wait for the next one.
    pub(super) producer: Arc<BaseProducer<DeliveryContext>>,
    deliveries: Arc<Deliveries>,
    pub(super) connector: String,
    delivery_timeout: Duration,
    sent: u64,
    since_poll: u32,
}

impl Output {
    /// An idempotent producer (with `transactional_id`: a transactional one, its
    /// transactions initialised, which fences an older producer with the same id and aborts
    /// its open transaction); checks that the broker answers and `topic` exists.
    pub(super) fn connect(
        settings: &ClientSettings,
        connector: &str,
        delivery_timeout: Duration,
        topic: Option<&str>,
        transactional_id: Option<&str>,
    ) -> Result<Output> {
        let timeout_ms = delivery_timeout.as_millis().max(1).to_string();
        let deliveries = Arc::new(Deliveries::default());
        let mut defaults = vec![
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("message.timeout.ms", timeout_ms.as_str()),
            ("linger.ms", "5"),
            // Topics must exist: a missing one is an error, not a silent creation.
            ("allow.auto.create.topics", "false"),
            ("socket.connection.setup.timeout.ms", "10000"),
        ];
        if let Some(id) = transactional_id {
            defaults.push(("transactional.id", id));
            defaults.push(("transaction.timeout.ms", DEFAULT_TRANSACTION_TIMEOUT_MS));
        }
        let producer: BaseProducer<DeliveryContext> = settings
            .client_config(&defaults)
            .create_with_context(DeliveryContext {
                deliveries: deliveries.clone(),
            })
            .map_err(|e| connector_error(connector, format!("cannot create a producer: {e}")))?;
        let metadata = fetch_metadata(producer.client(), settings, connector, topic)?;
        if let Some(topic) = topic {
            topic_partitions(&metadata, topic, connector, ": create it first")?;
        }
        if let Some(id) = transactional_id {
            producer
                .init_transactions(settings.connect_timeout + delivery_timeout)
                .map_err(|e| {
                    connector_error(
                        connector,
                        format!(
                            "cannot initialise the transactions of transactional id `{id}`: {e}"
                        ),
                    )
                })?;
        }
        Ok(Output {
            producer: Arc::new(producer),
            deliveries,
            connector: connector.to_owned(),
            delivery_timeout,
            sent: 0,
            since_poll: 0,
        })
    }

    /// Hands one record to the producer, waiting while its local queue is full.
    pub(super) fn send(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: &[u8],
        ts: Timestamp,
    ) -> Result<()> {
        self.send_to(topic, None, key, value, ts)
    }

    /// [`Output::send`] into `partition` (the producer's partitioner picks one for `None`).
    pub(super) fn send_to(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: &[u8],
        ts: Timestamp,
    ) -> Result<()> {
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(value);
        if let Some(p) = partition {
            record = record.partition(p);
        }
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

    pub(super) fn poll(&mut self) -> Result<()> {
        self.producer.poll(Duration::ZERO);
        self.since_poll = 0;
        self.check_deliveries()
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

    /// How long a flush or a commit may take: the delivery timeout and a margin.
    pub(super) fn wait(&self) -> Duration {
        self.delivery_timeout + Duration::from_secs(5)
    }

    /// Waits until every record is acknowledged (at most the delivery timeout and a margin).
    pub(super) fn wait_for_acks(&mut self) -> Result<()> {
        let wait = self.wait();
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

/// One subtask's writer of a [`KafkaSink`]: an idempotent producer, transactional when the
/// sink is exactly-once.
///
/// Dropping it without [`finish`](SinkWriter::finish) (a failed job) drops the records not yet
/// delivered; at-least-once, those delivered stay in the topic; exactly-once, the open
/// transaction is aborted.
pub struct KafkaSinkWriter<F: Encode> {
    out: Output,
    transactions: Option<Box<Transactions>>,
    /// Exactly-once in an instance group: the transactions of the subtask's reader, which
    /// commit with its positions (`out` then only checked the broker and topic).
    origin: Option<SharedOrigin>,
    /// Whether it checked that a reader commits the origin's transactions.
    checked: bool,
    topic: String,
    topic_fn: Option<TopicFn<F::Row>>,
    key: Option<KeyFn<F::Row>>,
    format: F,
    value: Vec<u8>,
    key_buf: Vec<u8>,
    topic_buf: String,
    /// The first error of a row (`write` cannot fail), reported by the next flush.
    error: Option<Error>,
}

impl<F: Encode> KafkaSinkWriter<F> {
    fn send(&mut self, row: &F::Row, ts: Timestamp) -> Result<()> {
        self.value.clear();
        self.format.encode(row, &mut self.value).map_err(|e| {
            connector_error(&self.out.connector, format!("cannot encode a row: {e}"))
        })?;
        let key = match &self.key {
            Some(k) => {
                self.key_buf.clear();
                k(row, &mut self.key_buf).map_err(|e| {
                    connector_error(
                        &self.out.connector,
                        format!("cannot encode a row's key: {e}"),
                    )
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
        if let Some(origin) = &self.origin {
            return origin.lock().send_to(topic, None, key, &self.value, ts);
        }
        match &mut self.transactions {
            None => self.out.send(topic, key, &self.value, ts),
            Some(t) => t.write(&mut self.out, topic, key, &self.value, ts),
        }
    }

    fn take_error(&mut self) -> Result<()> {
        match self.error.take() {
            Some(e) => {
                // Keep failing: nothing is written after an error.
                self.error = Some(connector_error(
                    &self.out.connector,
                    "the writer stopped after an earlier error",
                ));
                Err(e)
            }
            None => Ok(()),
        }
    }

    /// Runs `f`; an error it returns also stops the writer.
    fn guard(&mut self, f: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        self.take_error()?;
        let result = f(self);
        if let Err(e) = &result {
            self.error = Some(connector_error(
                &self.out.connector,
                format!("the writer stopped after an earlier error: {e}"),
            ));
        }
        result
    }
}

impl<F: Encode> Drop for KafkaSinkWriter<F> {
    fn drop(&mut self) {
        if let Some(t) = &mut self.transactions {
            t.abort(&mut self.out);
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
            tracing::warn!(connector = %self.out.connector, error = %e, "kafka sink failed");
            self.error = Some(e);
        }
    }

    fn flush(&mut self) -> Result<()> {
        self.take_error()?;
        if let Some(origin) = &self.origin {
            let mut origin = origin.lock();
            if !self.checked {
                origin.check_claimed(&self.out.connector)?;
                self.checked = true;
            }
            return origin.poll();
        }
        if let Some(t) = &mut self.transactions {
            let r = t.poll_commit(&mut self.out);
            if let Err(e) = r {
                self.error = Some(connector_error(
                    &self.out.connector,
                    format!("the writer stopped after an earlier error: {e}"),
                ));
                return Err(e);
            }
        }
        self.out.poll()
    }

    /// At-least-once: waits until every record written so far is acknowledged by the broker,
    /// so that the sources may commit the positions of the rows before the barrier.
    /// Exactly-once: the records since the last barrier become the checkpoint's transaction,
    /// and a copy of every transaction not yet committed goes into the checkpoint (see
    /// [`checkpoint_complete`](SinkWriter::checkpoint_complete)).
    fn checkpoint(&mut self, id: CheckpointId, state: &mut StateWriter) -> Result<Snapshot> {
        self.guard(|w| match &mut w.transactions {
            None => w.out.wait_for_acks(),
            Some(t) => t.prepare(&mut w.out, id, state),
        })?;
        Ok(Snapshot::Taken)
    }

    /// Exactly-once: commits the transaction of checkpoint `id` (and of earlier ones not
    /// committed yet), with a marker that says so in the transactional id's consumer group.
    fn checkpoint_complete(&mut self, id: CheckpointId) -> Result<()> {
        self.guard(|w| match &mut w.transactions {
            None => Ok(()),
            Some(t) => t.commit_through(&mut w.out, id),
        })
    }

    /// Exactly-once: for each old subtask's transactional id in the checkpoint, fences its
    /// producer (aborting an open transaction), then writes again, in one transaction, the
    /// checkpoint's records that its marker says were not committed.
    fn restore(&mut self, state: &StateReader) -> Result<()> {
        self.guard(|w| match &mut w.transactions {
            None => Ok(()),
            Some(t) => t.restore(&mut w.out, state),
        })
    }

    fn finish(&mut self) -> Result<()> {
        if let Some(origin) = &self.origin {
            // The last writer of the subtask to end commits the final transaction.
            let origin = origin.clone();
            return self.guard(|_| origin.lock().writer_ended());
        }
        self.guard(|w| match &w.transactions {
            // The last transaction is committed with the first checkpoint that completes after
            // the task finished, or at the job's end.
            Some(_) => w.out.poll(),
            None => w.out.wait_for_acks(),
        })
    }
}
