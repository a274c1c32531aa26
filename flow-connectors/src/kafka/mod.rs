//! Kafka: [`KafkaSource`] and [`KafkaSink`] (rdkafka), behind the `kafka` feature.
//!
//! **Source.** Partitions are the splits. By default the source lists the partitions of its
//! topics when the job starts and spreads them over its `P` readers (partition `i` of the
//! sorted list goes to reader `i % P`, as Flink's enumerator does); each reader is one
//! librdkafka consumer reading its partitions. With
//! [`consumer_group_assignment`](KafkaSourceBuilder::consumer_group_assignment) the readers
//! instead join the consumer group and Kafka assigns the partitions, so several instances of a
//! job (on one machine or many) split the topic between them. Each row keeps its Kafka message
//! timestamp (handed to the job's event-time clock), and each partition has its own watermark
//! clock: a reader's watermark follows its slowest partition that is not idle. A reader's
//! position per partition ([`KafkaSplit`]) is saved in every checkpoint; a job restored from
//! one reads on from there (consumer-group assignment resumes from the group's committed
//! offsets instead).
//!
//! **Guarantees.**
//! - The source commits offsets to its group only for rows that reached the sinks' durable
//!   output: when a job checkpoint completes and at the end of a job that finished
//!   successfully. In an instance group (`--instance-group`), where its rows go on to a
//!   repartition topic, it also commits the partitions the group takes away (before they go)
//!   and, while caught up, every second. With checkpoints saved (`--checkpoint-dir`) and a job restored with
//!   `--restore`, the source's positions come from the checkpoint, so every row reaches the
//!   job's state exactly once. [`read_committed`](KafkaSourceBuilder::read_committed) reads only
//!   records of committed transactions (the default, as Flink's, is `read_uncommitted`).
//! - The sink is at-least-once by default: an idempotent producer (`enable.idempotence=true`,
//!   `acks=all`), every record acknowledged by the broker at each checkpoint and before the job
//!   ends successfully, a failed delivery fails the job. A job restarted from a checkpoint may
//!   write again what the failed run wrote after it.
//! - With [`DeliveryGuarantee::ExactlyOnce`] the sink writes each checkpoint's rows in one
//!   Kafka transaction (transactional id `<prefix>-<subtask>`), committed when the checkpoint
//!   completes; a `read_committed` consumer sees every row once, whatever crashed when. The
//!   checkpoint keeps a copy of the rows not yet committed, so a restart after a crash between a
//!   checkpoint's completion and its commit writes them again (librdkafka cannot resume the
//!   dead producer's transaction, which Flink's Java client does); a commit marker (the
//!   checkpoint id, as the offset of partition 0 of the topic in the consumer group named
//!   like the transactional id) says which were committed. Rows become visible once per
//!   checkpoint, and the transaction timeout (`transaction.timeout.ms`, 60 s unless set with
//!   `.property(..)`) must be longer than a checkpoint interval. The copy must be saved
//!   somewhere: without a checkpoint directory the sink declines checkpoints and commits once,
//!   at the end of the job.

mod config;
mod downtime;
mod instances;
mod leave_turns;
pub(crate) mod origin;
mod sink;
mod source;
mod splits;
mod transactions;

pub use crate::bad_records::{BadRecordCounts, BadRecords, DeadLetter, DeadLetterSink};
pub use crate::StopHandle;
pub use config::{DeliveryGuarantee, OffsetReset, StartingOffsets};
pub use instances::KafkaTransport;
pub use sink::{KafkaSink, KafkaSinkBuilder, KafkaSinkWriter};
pub use source::{KafkaSource, KafkaSourceBuilder, KafkaSourceReader, KafkaSplit};

/// The rdkafka crate flow's Kafka connectors are built on, for what they do not cover.
pub use rdkafka;

use config::ClientSettings;
use flow_runtime::{Error, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::metadata::Metadata;
use std::time::Duration;

/// Creates and deletes topics (the broker must allow it). Tests, examples and
/// [`KafkaSourceBuilder::create_missing_topics`] use it.
///
/// # Examples
/// ```no_run
/// use flow_connectors::kafka::KafkaAdmin;
///
/// let admin = KafkaAdmin::connect("127.0.0.1:9092")?;
/// admin.create_topic("orders", 4)?;
/// # Ok::<(), flow_runtime::Error>(())
/// ```
pub struct KafkaAdmin {
    client: AdminClient<DefaultClientContext>,
    settings: ClientSettings,
}

impl KafkaAdmin {
    /// An admin client for the brokers `bootstrap_servers` (`host:port,...`).
    ///
    /// # Errors
    /// The client cannot be created (an invalid property).
    pub fn connect(bootstrap_servers: &str) -> Result<Self> {
        let mut settings = ClientSettings::new();
        settings.bootstrap_servers = bootstrap_servers.to_owned();
        Self::with_settings(settings)
    }

    pub(crate) fn with_settings(settings: ClientSettings) -> Result<Self> {
        settings.validate("KafkaAdmin")?;
        let client = settings
            .client_config(&[])
            .create()
            .map_err(|e| connector_error("KafkaAdmin", format!("cannot create client: {e}")))?;
        Ok(KafkaAdmin { client, settings })
    }

    /// Creates `topic` with `partitions` partitions (replication factor 1).
    ///
    /// # Errors
    /// The broker is unreachable within the connect timeout, or refused (the topic exists).
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        self.create_topic_inner(topic, partitions, false, &[])
    }

    /// Creates `topic` unless it exists.
    ///
    /// # Errors
    /// As for [`KafkaAdmin::create_topic`], except that an existing topic is no error.
    pub fn ensure_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        self.create_topic_inner(topic, partitions, true, &[])
    }

    /// Creates `topic` as a compacted topic (`cleanup.policy=compact`: the last record of each
    /// key stays, whatever its age) unless it exists (an existing topic is left as it is).
    ///
    /// # Errors
    /// As for [`KafkaAdmin::ensure_topic`].
    pub(crate) fn ensure_compacted_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        let compact = [("cleanup.policy", "compact")];
        self.create_topic_inner(topic, partitions, true, &compact)
    }

    fn create_topic_inner(
        &self,
        topic: &str,
        partitions: i32,
        exists_ok: bool,
        configs: &[(&str, &str)],
    ) -> Result<()> {
        let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        for (key, value) in configs {
            new = new.set(key, value);
        }
        // A connection that drops while the request is out fails it at once (admin requests
        // are not retried by librdkafka): asked again until the connect timeout.
        let deadline = std::time::Instant::now() + self.settings.connect_timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let options = Self::options_within(left);
            let code = match futures_executor::block_on(self.client.create_topics([&new], &options))
            {
                Ok(results) => match results.into_iter().next() {
                    None | Some(Ok(_)) => return Ok(()),
                    Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) if exists_ok => {
                        return Ok(())
                    }
                    Some(Err((_, code))) => code,
                },
                Err(e) => match e.rdkafka_error_code() {
                    Some(code) => code,
                    None => return Err(self.error(format!("create topic `{topic}`: {e}"))),
                },
            };
            if !downtime::Downtime::is_unreachable_code(code)
                || std::time::Instant::now() >= deadline
            {
                return Err(self.error(format!("create topic `{topic}`: {code}")));
            }
            tracing::debug!(topic, error = %code, "broker unreachable while creating a topic; retrying");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Deletes `topic`.
    ///
    /// # Errors
    /// The broker is unreachable within the connect timeout, or refused (no such topic).
    pub fn delete_topic(&self, topic: &str) -> Result<()> {
        let results =
            futures_executor::block_on(self.client.delete_topics(&[topic], &self.options()))
                .map_err(|e| self.error(format!("delete topic `{topic}`: {e}")))?;
        for r in results {
            if let Err((name, code)) = r {
                return Err(self.error(format!("delete topic `{name}`: {code}")));
            }
        }
        Ok(())
    }

    fn options(&self) -> AdminOptions {
        Self::options_within(self.settings.connect_timeout)
    }

    /// A request that must be answered, and its operation done, within `timeout`.
    fn options_within(timeout: Duration) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(timeout))
            .operation_timeout(Some(timeout))
    }

    fn error(&self, message: String) -> Error {
        connector_error(
            format!("KafkaAdmin({})", self.settings.bootstrap_servers),
            message,
        )
    }
}

pub(crate) fn connector_error(connector: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Connector {
        connector: connector.into(),
        message: message.into(),
    }
}

/// Fetches the cluster's metadata, turning "no answer" into an error that says so.
pub(crate) fn fetch_metadata(
    client: &rdkafka::client::Client<impl rdkafka::ClientContext>,
    settings: &ClientSettings,
    connector: &str,
    topic: Option<&str>,
) -> Result<Metadata> {
    client
        .fetch_metadata(topic, settings.connect_timeout)
        .map_err(|e| {
            connector_error(
                connector,
                format!(
                    "cannot reach the Kafka broker at `{}` within {}: {e}",
                    settings.bootstrap_servers,
                    fmt_duration(settings.connect_timeout)
                ),
            )
        })
}

/// Checks that `topic` exists in `metadata` and returns its partition ids, sorted.
pub(crate) fn topic_partitions(
    metadata: &Metadata,
    topic: &str,
    connector: &str,
    hint: &str,
) -> Result<Vec<i32>> {
    let missing = || {
        connector_error(
            connector,
            format!("topic `{topic}` does not exist (topics are not created automatically{hint})"),
        )
    };
    let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(missing());
    };
    if let Some(err) = t.error() {
        let code = RDKafkaErrorCode::from(err);
        if code == RDKafkaErrorCode::UnknownTopicOrPartition {
            return Err(missing());
        }
        return Err(connector_error(
            connector,
            format!("metadata of topic `{topic}`: {code}"),
        ));
    }
    if t.partitions().is_empty() {
        return Err(missing());
    }
    let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    ids.sort_unstable();
    Ok(ids)
}

/// What rdkafka's default `ConsumerContext::rebalance` does, for a context that overrides it
/// to defer a revocation in some cases: `pre_rebalance`, librdkafka's (incremental) assign or
/// unassign, `post_rebalance`.
pub(crate) fn apply_rebalance<C: rdkafka::consumer::ConsumerContext>(
    context: &C,
    consumer: &rdkafka::consumer::BaseConsumer<C>,
    err: rdkafka::types::RDKafkaRespErr,
    tpl: &mut rdkafka::TopicPartitionList,
    connector: &str,
) {
    use rdkafka::consumer::{Consumer, Rebalance, RebalanceProtocol};
    use rdkafka::types::RDKafkaRespErr as E;
    let rebalance = match err {
        E::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => Rebalance::Assign(tpl),
        E::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => Rebalance::Revoke(tpl),
        other => Rebalance::Error(rdkafka::error::KafkaError::Rebalance(other.into())),
    };
    context.pre_rebalance(consumer, &rebalance);
    let cooperative = matches!(
        consumer.rebalance_protocol(),
        RebalanceProtocol::Cooperative
    );
    // As rdkafka's: anything but an assignment (a revocation, an error) gives up `tpl`.
    let assign = err == E::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
    let done = match (assign, cooperative) {
        (true, true) => consumer.incremental_assign(tpl),
        (true, false) => consumer.assign(tpl),
        (false, true) => consumer.incremental_unassign(tpl),
        (false, false) => consumer.unassign(),
    };
    if let Err(e) = done {
        tracing::warn!(connector = %connector, error = %e, "cannot apply the group's assignment");
    }
    context.post_rebalance(consumer, &rebalance);
}

/// Whether two lists of bootstrap servers name the same brokers.
pub(crate) fn same_brokers(a: &str, b: &str) -> bool {
    fn set(s: &str) -> Vec<&str> {
        let mut v: Vec<&str> = s
            .split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
    set(a) == set(b)
}

pub(crate) fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Reads partition 0 of `topic`, one of an instance group's own one-partition topics (its
/// registry, its exactly-once ledger), from the records of `since` (ms; `None`: its start)
/// to the end it had when the read began, handing `each` every record; fails when that end
/// is not reached within `limit`. `what` names the topic in errors.
pub(crate) fn read_own_topic(
    settings: &ClientSettings,
    topic: &str,
    connector: &str,
    what: &str,
    since: Option<flow_runtime::Timestamp>,
    limit: Duration,
    mut each: impl FnMut(&rdkafka::message::BorrowedMessage<'_>),
) -> Result<()> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::{Offset, TopicPartitionList};
    let private = format!("flow-private-{}", uuid::Uuid::new_v4());
    let consumer: BaseConsumer = settings
        .client_config(&[
            ("group.id", private.as_str()),
            ("enable.auto.commit", "false"),
        ])
        .create()
        .map_err(|e| connector_error(connector, format!("cannot create a consumer: {e}")))?;
    let wait = settings.connect_timeout;
    let (low, high) = consumer
        .fetch_watermarks(topic, 0, wait)
        .map_err(|e| connector_error(connector, format!("cannot read the {what}'s end: {e}")))?;
    let mut from = TopicPartitionList::new();
    from.add_partition_offset(topic, 0, Offset::Offset(since.unwrap_or(low)))
        .map_err(|e| connector_error(connector, e.to_string()))?;
    if since.is_some() {
        from = consumer
            .offsets_for_times(from, wait)
            .map_err(|e| connector_error(connector, format!("cannot look up the {what}: {e}")))?;
    }
    consumer
        .assign(&from)
        .map_err(|e| connector_error(connector, format!("cannot read the {what}: {e}")))?;
    let deadline = std::time::Instant::now() + limit;
    let mut next = match from.elements().first().map(|e| e.offset()) {
        Some(Offset::Offset(o)) => o,
        _ => high,
    };
    let mut unreachable = None;
    while next < high {
        if std::time::Instant::now() > deadline {
            let why = unreachable.map_or(String::new(), |e| format!(" (last broker error: {e})"));
            return Err(connector_error(
                connector,
                format!(
                    "cannot read the {what} to its end within {}{why}",
                    fmt_duration(limit)
                ),
            ));
        }
        let m = match consumer.poll(Duration::from_millis(100)) {
            None => continue,
            Some(Ok(m)) => {
                unreachable = None;
                m
            }
            // A connection dropped (a broker may close one, and librdkafka then says all
            // brokers are down until it reconnected): librdkafka reconnects; wait for it.
            Some(Err(e)) if downtime::Downtime::is_unreachable(&e) => {
                tracing::debug!(connector, error = %e, "broker unreachable while reading the {what}; retrying");
                unreachable = Some(e);
                continue;
            }
            Some(Err(e)) => return Err(connector_error(connector, e.to_string())),
        };
        next = m.offset() + 1;
        each(&m);
    }
    Ok(())
}
