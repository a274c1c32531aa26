//! The Kafka source: a builder, the source value, and the per-subtask reader.

use super::config::{ClientSettings, OffsetReset, StartingOffsets};
use super::downtime::Downtime;
use super::leave_turns::{self, Rebalances};
use super::origin::SharedOrigin;
use super::{connector_error, fetch_metadata, fmt_duration, topic_partitions, KafkaAdmin};
use crate::bad_records::{BadRecordCounts, BadRecordHandler, BadRecords, DeadLetter};
use crate::format::{Decode, Raw};
use crate::StopHandle;
use flow_runtime::instances::{source_splits, split_name, InstanceConfig, SourceSplits};
use flow_runtime::snapshot::{StateReader, StateWriter};
use flow_runtime::{
    CheckpointId, Error, Poll, Result, RuntimeContext, Snapshot, Source, SourceOutput,
    SourceReader, Watermarks, FINAL_CHECKPOINT, NO_TIMESTAMP,
};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use rdkafka::{Offset, TopicPartitionList};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How long a reader waits in one poll for the first record before it reports itself idle.
const POLL_WAIT: Duration = Duration::from_millis(100);

/// How long a source leaving its instance group (SIGTERM) waits at most for the others to take
/// its partitions over before its writers end (or twice the group's session timeout, when
/// longer: a group of static members may re-form only once the leaver's session expired).
const TAKEOVER_LIMIT: Duration = Duration::from_secs(60);

/// After the others took a leaving source's partitions over: the rows they read meanwhile
/// reach the repartition topic before the leaving instance's writers end.
const TAKEOVER_MARGIN: Duration = Duration::from_secs(1);

/// With a broker that does not describe consumer groups: when a leaving source takes the
/// group as re-formed without it: this after the group's session timeout (a rebalance, and a
/// margin).
const UNDESCRIBED_REGROUP: Duration = Duration::from_secs(5);

/// Reads rows from Kafka topics, one reader per subtask (Flink's `KafkaSource`). See the
/// [module documentation](super) for splits, commits and guarantees.
///
/// Build it with [`KafkaSource::builder`]; its row type is its format's.
///
/// # Examples
/// ```no_run
/// use flow_connectors::format::Json;
/// use flow_connectors::kafka::{BadRecords, KafkaSource, StartingOffsets};
///
/// #[derive(serde::Deserialize)]
/// struct Order { id: i64, amount: f64 }
///
/// let source = KafkaSource::builder()
///     .bootstrap_servers("127.0.0.1:9092")
///     .topic("orders")
///     .group_id("billing")
///     .starting_offsets(StartingOffsets::Earliest)
///     .format(Json::<Order>::new())
///     .bad_records(BadRecords::skip())
///     .bounded()
///     .build()?;
/// # let _ = source;
/// # Ok::<(), flow_runtime::Error>(())
/// ```
pub struct KafkaSource<F> {
    cfg: SourceConfig,
    format: F,
}

/// Everything but the format.
#[derive(Clone, Debug)]
struct SourceConfig {
    settings: ClientSettings,
    topics: Topics,
    group_id: Option<String>,
    starting: StartingOffsets,
    bounded: bool,
    read_committed: bool,
    group_assignment: bool,
    /// Reads for an instance group (`--instance-group`): commits on giving partitions up.
    instance_group: bool,
    /// The instance group's configuration (its id names the readers' static memberships).
    instances: Option<InstanceConfig>,
    stop_when_idle: Option<Duration>,
    /// Set by [`KafkaSourceBuilder::max_broker_downtime`]; unset: its instance group's
    /// (`--max-broker-downtime`), or 60 s.
    max_broker_downtime: Option<Duration>,
    create_missing: Option<i32>,
    bad_records: BadRecords,
    counts: BadRecordCounts,
    stop: StopHandle,
}

#[derive(Clone, Debug)]
enum Topics {
    List(Vec<String>),
    Pattern(String),
}

/// Configures a [`KafkaSource`]; from [`KafkaSource::builder`].
pub struct KafkaSourceBuilder<F> {
    cfg: SourceConfig,
    format: F,
}

impl KafkaSource<Raw> {
    /// A builder; set at least the bootstrap servers, the topics and the format.
    ///
    /// # Default
    /// Format [`Raw`] (rows are the records' bytes), unbounded, starting from the group's
    /// committed offsets (earliest where none), [`BadRecords::Fail`], a 10 s connect timeout.
    /// Offsets are committed to the group when a checkpoint completes and at a successful end
    /// (see the [module documentation](super)).
    pub fn builder() -> KafkaSourceBuilder<Raw> {
        KafkaSourceBuilder {
            cfg: SourceConfig {
                settings: ClientSettings::new(),
                topics: Topics::List(Vec::new()),
                group_id: None,
                starting: StartingOffsets::default(),
                bounded: false,
                read_committed: false,
                group_assignment: false,
                instance_group: false,
                instances: None,
                stop_when_idle: None,
                max_broker_downtime: None,
                create_missing: None,
                bad_records: BadRecords::Fail,
                counts: BadRecordCounts::default(),
                stop: StopHandle::default(),
            },
            format: Raw,
        }
    }
}

impl<F> KafkaSourceBuilder<F> {
    /// The brokers to connect to first: `host:port[,host:port...]`.
    #[must_use]
    pub fn bootstrap_servers(mut self, servers: impl Into<String>) -> Self {
        self.cfg.settings.bootstrap_servers = servers.into();
        self
    }

    /// Adds a topic to read.
    #[must_use]
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        match &mut self.cfg.topics {
            Topics::List(list) => list.push(topic.into()),
            t @ Topics::Pattern(_) => *t = Topics::List(vec![topic.into()]),
        }
        self
    }

    /// Adds topics to read.
    #[must_use]
    pub fn topics<I: IntoIterator<Item = S>, S: Into<String>>(mut self, topics: I) -> Self {
        for t in topics {
            self = self.topic(t);
        }
        self
    }

    /// Reads every topic whose whole name matches the regular expression `pattern`
    /// (instead of a list). Topics are matched when the job starts; with
    /// [`consumer_group_assignment`](Self::consumer_group_assignment) librdkafka also picks up
    /// matching topics created later.
    #[must_use]
    pub fn topic_pattern(mut self, pattern: impl Into<String>) -> Self {
        self.cfg.topics = Topics::Pattern(pattern.into());
        self
    }

    /// The consumer group: offsets are committed to it and, by default, read from it.
    ///
    /// # Default
    /// None: nothing is committed, and [`StartingOffsets::Committed`] cannot be used.
    #[must_use]
    pub fn group_id(mut self, group: impl Into<String>) -> Self {
        self.cfg.group_id = Some(group.into());
        self
    }

    /// Where reading starts.
    ///
    /// # Default
    /// The group's committed offsets, the earliest where it has none.
    #[must_use]
    pub fn starting_offsets(mut self, starting: StartingOffsets) -> Self {
        self.cfg.starting = starting;
        self
    }

    /// Reads up to the end offsets the partitions have when the job starts, then finishes (a
    /// batch job over a topic). Records produced after the start are left for the next run.
    ///
    /// # Default
    /// Unbounded: the source never finishes by itself (see [`KafkaSource::stop_handle`]).
    #[must_use]
    pub fn bounded(mut self) -> Self {
        self.cfg.bounded = true;
        self
    }

    /// Reads only records of committed transactions (`isolation.level=read_committed`): the
    /// rows an exactly-once [`KafkaSink`](super::KafkaSink) wrote once their checkpoint
    /// completed, none of an aborted or open transaction. A partition is read up to its last
    /// stable offset: an open transaction holds back everything after its first record.
    ///
    /// # Default
    /// `read_uncommitted`, as Flink's `KafkaSource`: every record, including those of aborted
    /// and open transactions.
    #[must_use]
    pub fn read_committed(mut self) -> Self {
        self.cfg.read_committed = true;
        self
    }

    /// Lets the consumer group assign the partitions: every reader of every job instance that
    /// uses this group id joins the group and Kafka spreads the partitions over all of them,
    /// re-assigning them when an instance comes or goes. Needs a group id and
    /// [`StartingOffsets::Committed`]; unbounded only.
    ///
    /// # Default
    /// Off: the source assigns the partitions to its own readers when the job starts.
    #[must_use]
    pub fn consumer_group_assignment(mut self) -> Self {
        self.cfg.group_assignment = true;
        self
    }

    /// Ends each reader once no record arrived for `idle` after its first one: for a job
    /// that processes what a topic holds and exits, also with
    /// [`consumer_group_assignment`](Self::consumer_group_assignment) (in an instance group,
    /// each instance ends when its share went quiet). Positions are committed at the end.
    ///
    /// # Default
    /// Off: an unbounded source runs until it is stopped.
    #[must_use]
    pub fn stop_when_idle(mut self, idle: Duration) -> Self {
        self.cfg.stop_when_idle = Some(idle);
        self
    }

    /// How long the broker must answer when the job starts (metadata, offsets).
    ///
    /// # Default
    /// 10 s.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.cfg.settings.connect_timeout = timeout;
        self
    }

    /// How long a running reader tolerates the broker being unreachable (librdkafka retries
    /// with backoff meanwhile) before it fails the job.
    ///
    /// # Default
    /// 60 s; in an instance group, the group's `--max-broker-downtime`.
    #[must_use]
    pub fn max_broker_downtime(mut self, downtime: Duration) -> Self {
        self.cfg.max_broker_downtime = Some(downtime);
        self
    }

    /// Creates listed topics that do not exist, with `partitions` partitions, when the job
    /// starts.
    ///
    /// # Default
    /// Off: a missing topic is an error.
    #[must_use]
    pub fn create_missing_topics(mut self, partitions: i32) -> Self {
        self.cfg.create_missing = Some(partitions);
        self
    }

    /// Sets a librdkafka consumer property (`fetch.max.bytes`, `security.protocol`, ...),
    /// passed through as is; it overrides flow's own settings of the same key.
    #[must_use]
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.cfg
            .settings
            .properties
            .push((key.into(), value.into()));
        self
    }

    /// What to do with records the format cannot read.
    ///
    /// # Default
    /// [`BadRecords::Fail`].
    #[must_use]
    pub fn bad_records(mut self, policy: BadRecords) -> Self {
        self.cfg.bad_records = policy;
        self
    }

    /// How records' values are read; the source's row type is the format's.
    ///
    /// # Default
    /// [`Raw`]: rows are the values' bytes.
    #[must_use]
    pub fn format<G: Decode>(self, format: G) -> KafkaSourceBuilder<G> {
        KafkaSourceBuilder {
            cfg: self.cfg,
            format,
        }
    }

    /// The source.
    ///
    /// # Errors
    /// [`Error::Config`] for settings that cannot work together: no bootstrap servers, no
    /// topic, committed offsets without a group, group assignment without a group or in
    /// bounded mode, an invalid topic pattern, a `FLOW_KAFKA_DEBUG` value librdkafka refuses.
    pub fn build(self) -> Result<KafkaSource<F>>
    where
        F: Decode,
    {
        let c = &self.cfg;
        let name = c.connector_name();
        c.settings.validate(&name)?;
        let config = |m: String| Err(Error::Config(format!("{name}: {m}")));
        match &c.topics {
            Topics::List(l) if l.is_empty() => {
                return config("no topic: call `.topic(..)` or `.topic_pattern(..)`".into())
            }
            Topics::List(l) if l.iter().any(|t| t.is_empty()) => {
                return config("an empty topic name".into())
            }
            Topics::Pattern(p) => {
                if let Err(e) = regex::Regex::new(p) {
                    return config(format!("invalid topic pattern `{p}`: {e}"));
                }
            }
            Topics::List(_) => {}
        }
        if c.group_id.is_none() && matches!(c.starting, StartingOffsets::Committed { .. }) {
            return config(
                "committed starting offsets need a group: call `.group_id(..)`, or choose other `.starting_offsets(..)`".into(),
            );
        }
        if c.group_assignment {
            if c.group_id.is_none() {
                return config("consumer group assignment needs `.group_id(..)`".into());
            }
            if c.bounded {
                return config("consumer group assignment cannot be bounded: the partitions a reader gets change while it runs".into());
            }
            if !matches!(c.starting, StartingOffsets::Committed { .. }) {
                return config("consumer group assignment starts from the group's committed offsets: use `StartingOffsets::Committed { .. }`".into());
            }
        }
        if c.stop_when_idle.is_some_and(|d| d.is_zero()) {
            return config("`stop_when_idle` needs a positive duration".into());
        }
        if c.create_missing.is_some_and(|p| p < 1) {
            return config("`create_missing_topics` needs at least one partition".into());
        }
        Ok(KafkaSource {
            cfg: self.cfg,
            format: self.format,
        })
    }
}

impl<F> KafkaSource<F> {
    /// The counts of bad records skipped or dead-lettered, live while the job runs (the job
    /// result does not carry them yet).
    pub fn bad_record_counts(&self) -> BadRecordCounts {
        self.cfg.counts.clone()
    }

    /// A handle that ends an unbounded source cleanly: its readers finish, the job ends as a
    /// bounded one would, and the final offsets are committed once it ended successfully.
    pub fn stop_handle(&self) -> StopHandle {
        self.cfg.stop.clone()
    }
}

impl<F> fmt::Debug for KafkaSource<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSource")
            .field("config", &self.cfg)
            .field("format", &std::any::type_name::<F>())
            .finish()
    }
}

impl SourceConfig {
    /// The `session.timeout.ms` of its consumers (when it sets one): its instance group's, or
    /// the default of a group without ids.
    fn session_timeout(&self) -> Duration {
        (self.instances.as_ref()).map_or(flow_runtime::instances::SESSION_TIMEOUT, |i| {
            i.session_timeout()
        })
    }

    /// How long a running reader rides out a broker that does not answer: its own limit,
    /// else its instance group's.
    fn max_broker_downtime(&self) -> Duration {
        (self.max_broker_downtime).unwrap_or_else(|| {
            (self.instances.as_ref()).map_or(flow_runtime::instances::MAX_BROKER_DOWNTIME, |i| {
                i.max_broker_downtime()
            })
        })
    }

    /// [`InstanceConfig::regroup_bound`] of its instance group (the default without one).
    fn regroup_bound(&self) -> Duration {
        (self.instances.as_ref()).map_or(flow_runtime::instances::SESSION_TIMEOUT, |i| {
            i.regroup_bound()
        })
    }

    fn connector_name(&self) -> String {
        match &self.topics {
            Topics::List(l) => format!("KafkaSource({})", l.join(",")),
            Topics::Pattern(p) => format!("KafkaSource(/{p}/)"),
        }
    }

    /// The consumer configuration of reader `reader`, or of the start-up probe (`None`).
    fn consumer(&self, name: &str, reader: Option<usize>) -> Result<ReaderConsumer> {
        let reset = match self.starting {
            StartingOffsets::Committed {
                fallback: OffsetReset::Latest,
            }
            | StartingOffsets::Latest => "latest",
            _ => "earliest",
        };
        let private_group = format!("flow-private-{}", uuid::Uuid::new_v4());
        // Exactly-once in an instance group: librdkafka asks for stable offsets only when it
        // reads committed records (KIP-447), and a partition taken over right after its old
        // owner's commit must start at that commit, not before it (the commit markers are
        // written after the commit is answered).
        let read_committed = self.read_committed
            || (self.instances.as_ref()).is_some_and(|i| i.exactly_once && self.instance_group);
        let mut defaults: Vec<(&str, &str)> = vec![
            ("enable.partition.eof", "false"),
            ("auto.offset.reset", reset),
            // The reader commits itself, and only positions whose rows reached the sinks'
            // durable output: those of a completed checkpoint, or the end of a successful job.
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("socket.connection.setup.timeout.ms", "10000"),
            // Flink's default; librdkafka's own is read_committed.
            (
                "isolation.level",
                if read_committed {
                    "read_committed"
                } else {
                    "read_uncommitted"
                },
            ),
        ];
        // librdkafka assigns partitions through its group handle, which needs a group id:
        // without one, a private one that nothing is committed to.
        defaults.push((
            "group.id",
            self.group_id.as_deref().unwrap_or(&private_group),
        ));
        // An instance with an id (`--instance-id`): a static member, named after the id,
        // the topics and the reader (two sources of one job may share the group).
        let static_member = reader.and_then(|r| {
            let what = match &self.topics {
                Topics::List(l) => l.join(","),
                Topics::Pattern(p) => p.clone(),
            };
            self.instances.as_ref()?.static_member(&what, r)
        });
        if let Some(member) = &static_member {
            defaults.push(("group.instance.id", member));
        }
        let session = super::config::session_properties(self.session_timeout());
        if !self.group_assignment || self.instance_group {
            // Not a group member, so the session timeout only bounds how long a commit waits
            // for an unreachable coordinator (librdkafka's default: 45 s); in an instance
            // group, a crashed instance's partitions move after the group's session timeout.
            defaults.extend(session.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let eos = (self.instances.as_ref())
            .filter(|i| i.exactly_once && reader.is_some())
            .map(|_| {
                Arc::new(Eos {
                    origin: OnceLock::new(),
                })
            });
        let context = SourceContext {
            commit_on_revoke: self.instance_group && eos.is_none(),
            connector: name.to_owned(),
            closed: AtomicBool::new(false),
            rebalances: Rebalances::default(),
            eos,
            revoke_pending: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            commit_failed: AtomicBool::new(false),
        };
        self.settings
            .client_config(&defaults)
            .create_with_context(context)
            .map_err(|e| connector_error(name, format!("cannot create a consumer: {e}")))
    }

    /// The partitions to read, sorted, creating missing topics if asked.
    fn partitions(&self, probe: &ReaderConsumer, name: &str) -> Result<Vec<(String, i32)>> {
        let metadata = fetch_metadata(probe.client(), &self.settings, name, None)?;
        let mut out = Vec::new();
        match &self.topics {
            Topics::List(list) => {
                let mut created = false;
                if let Some(partitions) = self.create_missing {
                    for t in list {
                        if topic_partitions(&metadata, t, name, "").is_err() {
                            KafkaAdmin::with_settings(self.settings.clone())?
                                .ensure_topic(t, partitions)?;
                            created = true;
                        }
                    }
                }
                let metadata = if created {
                    fetch_metadata(probe.client(), &self.settings, name, None)?
                } else {
                    metadata
                };
                let hint = ": create it first, or call `.create_missing_topics(partitions)`";
                for t in list {
                    for p in topic_partitions(&metadata, t, name, hint)? {
                        out.push((t.clone(), p));
                    }
                }
            }
            Topics::Pattern(pattern) => {
                let re = regex::Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| Error::Config(format!("{name}: {e}")))?;
                let mut names: Vec<&str> = metadata
                    .topics()
                    .iter()
                    .map(|t| t.name())
                    .filter(|t| re.is_match(t))
                    .collect();
                names.sort_unstable();
                if names.is_empty() {
                    return Err(connector_error(
                        name,
                        format!("no topic matches the pattern `{pattern}`"),
                    ));
                }
                for t in names {
                    for p in topic_partitions(&metadata, t, name, "")? {
                        out.push((t.to_owned(), p));
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Each partition's start offset and, when bounded, its end offset.
    fn resolve_splits(
        &self,
        probe: &ReaderConsumer,
        partitions: Vec<(String, i32)>,
        name: &str,
    ) -> Result<Vec<KafkaSplit>> {
        let timeout = self.settings.connect_timeout;
        let broker = |what: &str, e: KafkaError| {
            connector_error(
                name,
                format!(
                    "{what} (broker `{}`, timeout {}): {e}",
                    self.settings.bootstrap_servers,
                    fmt_duration(timeout)
                ),
            )
        };
        let mut committed = None;
        if let StartingOffsets::Committed { .. } = self.starting {
            let mut tpl = TopicPartitionList::new();
            for (t, p) in &partitions {
                tpl.add_partition(t, *p);
            }
            committed = Some(
                probe
                    .committed_offsets(tpl, timeout)
                    .map_err(|e| broker("cannot read the group's committed offsets", e))?,
            );
        }
        let mut by_time = None;
        if let StartingOffsets::Timestamp(ts) = self.starting {
            let mut tpl = TopicPartitionList::new();
            for (t, p) in &partitions {
                tpl.add_partition_offset(t, *p, Offset::Offset(ts))
                    .map_err(|e| broker("offsets for a timestamp", e))?;
            }
            by_time = Some(
                probe
                    .offsets_for_times(tpl, timeout)
                    .map_err(|e| broker("cannot look up offsets for a timestamp", e))?,
            );
        }
        let mut splits = Vec::with_capacity(partitions.len());
        for (topic, partition) in partitions {
            let (low, high) = probe
                .fetch_watermarks(&topic, partition, timeout)
                .map_err(|e| {
                    broker(
                        &format!("cannot read the offsets of `{topic}` partition {partition}"),
                        e,
                    )
                })?;
            let found = |tpl: &Option<TopicPartitionList>| {
                tpl.as_ref()
                    .and_then(|l| l.find_partition(&topic, partition))
                    .map(|e| e.offset())
            };
            let start = match self.starting {
                StartingOffsets::Earliest => low,
                StartingOffsets::Latest => high,
                StartingOffsets::Committed { fallback } => match found(&committed) {
                    Some(Offset::Offset(o)) => o.clamp(low, high),
                    _ => match fallback {
                        OffsetReset::Earliest => low,
                        OffsetReset::Latest => high,
                    },
                },
                StartingOffsets::Timestamp(_) => match found(&by_time) {
                    Some(Offset::Offset(o)) => o.clamp(low, high),
                    _ => high,
                },
            };
            splits.push(KafkaSplit {
                topic,
                partition,
                next_offset: start,
                end_offset: self.bounded.then_some(high),
            });
        }
        Ok(splits)
    }
}

impl<F: Decode> Source for KafkaSource<F> {
    type Row = F::Row;
    type Reader = KafkaSourceReader<F>;

    fn is_bounded(&self) -> bool {
        self.cfg.bounded
    }

    /// Reads through consumer-group assignment: the source's group, or the instance group's
    /// name when it names none; starting where the group committed.
    fn join_instance_group(&mut self, instances: &InstanceConfig) -> Result<()> {
        let group = instances.group.as_str();
        let c = &mut self.cfg;
        let name = c.connector_name();
        if c.bounded {
            return Err(Error::Config(format!(
                "{name}: a bounded Kafka source cannot be divided among the instances of group `{group}` (the partitions an instance reads change while it runs): use `.stop_when_idle(..)` to end when the topic went quiet"
            )));
        }
        c.starting = match c.starting {
            StartingOffsets::Committed { fallback } => StartingOffsets::Committed { fallback },
            StartingOffsets::Earliest => StartingOffsets::Committed {
                fallback: OffsetReset::Earliest,
            },
            StartingOffsets::Latest => StartingOffsets::Committed {
                fallback: OffsetReset::Latest,
            },
            StartingOffsets::Timestamp(_) => {
                return Err(Error::Config(format!(
                    "{name}: in instance group `{group}` the source starts from its group's committed offsets, not from a timestamp"
                )))
            }
        };
        let cooperative = (c.settings.property("partition.assignment.strategy"))
            .is_some_and(|s| s.contains("cooperative"))
            || c.settings.property("group.protocol") == Some("consumer");
        if instances.exactly_once && cooperative {
            return Err(Error::Config(format!(
                "{name}: exactly-once in instance group `{group}` commits a source's partitions before an eager rebalance takes them all; cooperative rebalancing (`partition.assignment.strategy` cooperative-sticky, `group.protocol=consumer`) is not supported with it"
            )));
        }
        if instances.exactly_once
            && !super::same_brokers(&c.settings.bootstrap_servers, &instances.brokers)
        {
            return Err(Error::Config(format!(
                "{name}: exactly-once in instance group `{group}` commits the source's positions in the transactions of the repartition topics' writers, so the source must read from the instance brokers ({}), not from `{}`",
                instances.brokers, c.settings.bootstrap_servers
            )));
        }
        c.group_assignment = true;
        c.instance_group = true;
        if c.group_id.is_none() {
            c.group_id = Some(group.to_owned());
        }
        c.instances = Some(instances.clone());
        Ok(())
    }

    /// Connects to the broker, lists the partitions and (unless the group assigns them)
    /// resolves each partition's start and end offsets and spreads them over the readers.
    ///
    /// # Errors
    /// The broker does not answer within the connect timeout, a topic is missing, offsets
    /// cannot be read, a consumer cannot be created.
    fn into_readers(self, parallelism: usize, _: &Watermarks) -> Result<Vec<KafkaSourceReader<F>>> {
        let cfg = self.cfg;
        let name = cfg.connector_name();
        let probe = cfg.consumer(&name, None)?;
        let partitions = cfg.partitions(&probe, &name)?;
        let mut shares: Vec<Vec<KafkaSplit>> = (0..parallelism).map(|_| Vec::new()).collect();
        if !cfg.group_assignment {
            let splits = cfg.resolve_splits(&probe, partitions, &name)?;
            for (i, s) in splits.into_iter().enumerate() {
                shares[i % parallelism].push(s);
            }
        }
        drop(probe);
        let subscription = match &cfg.topics {
            Topics::List(l) => l.clone(),
            // librdkafka takes a leading `^` as "regular expression".
            Topics::Pattern(p) => vec![format!("^(?:{p})$")],
        };
        let mut readers = Vec::with_capacity(parallelism);
        for (reader, splits) in shares.into_iter().enumerate() {
            let consumer = cfg.consumer(&name, Some(reader))?;
            let eos = consumer.context().eos.clone();
            readers.push(KafkaSourceReader {
                consumer: Closing {
                    consumer: Some(consumer),
                    at_once: false,
                },
                state: ReaderState {
                    connector: name.clone(),
                    reader,
                    splits,
                    last_split: 0,
                    subscription: subscription.clone(),
                    group_assignment: cfg.group_assignment,
                    bounded: cfg.bounded,
                    // Exactly-once: the transactions commit the positions.
                    commits: cfg.group_id.is_some() && eos.is_none(),
                    caught_up: cfg.instance_group.then(|| (Instant::now(), Vec::new())),
                    eos,
                    moved: false,
                    leave_commit: LeaveCommit::No,
                    commit_due: false,
                    bad_records: BadRecordHandler::new(
                        cfg.bad_records.clone(),
                        name.clone(),
                        cfg.counts.clone(),
                    ),
                    stop: cfg.stop.clone(),
                    stop_when_idle: cfg.stop_when_idle,
                    last_record: None,
                    draining: false,
                    downtime: Downtime::new(
                        cfg.max_broker_downtime(),
                        cfg.settings.connect_timeout,
                    ),
                    pending_commits: Vec::new(),
                    announced: false,
                    group: cfg.group_id.clone(),
                    regroup: cfg.regroup_bound(),
                    leaving: None,
                    turn: leave_turns::Turn::default(),
                    published: None,
                    assigned: Vec::new(),
                    assignment_checked: None,
                    first_offsets: Vec::new(),
                    finished: false,
                    poll_wait: POLL_WAIT,
                },
                format: self.format.clone(),
            });
        }
        Ok(readers)
    }
}

/// A reader's consumer. Commits are asynchronous, so a broker that is away never blocks the
/// reader (librdkafka logs a failed one, and the next commit covers its positions); the final
/// commit is read back from the broker, with a time limit.
type ReaderConsumer = BaseConsumer<SourceContext>;

/// A reader's consumer context. In an instance group, a reader that the group takes
/// partitions from commits its positions on them before they go: the instance that gets them
/// starts after every row this one handed on (to the repartition topic's writer, which
/// delivers them), so a rebalance reads no row twice. Elsewhere commits follow completed
/// checkpoints only.
struct SourceContext {
    commit_on_revoke: bool,
    connector: String,
    /// The reader is gone ([`Closing`]): no commit when the close revokes its partitions.
    closed: AtomicBool,
    /// When the group last took partitions away and dealt them (a reader leaving its
    /// instance group waits for the group to re-form after a sibling's leave).
    rebalances: Rebalances,
    /// In an exactly-once instance group: the subtask's transactions.
    eos: Option<Arc<Eos>>,
    /// In an instance group (eager rebalancing): the group took the partitions away, and
    /// the unassign waits for the next commit point, which commits the rows polled so far
    /// (their output made durable; exactly-once, in the transaction) with the positions
    /// after them.
    revoke_pending: AtomicBool,
    /// The reader's input ended ([`end_reader`]): no commit point comes any more, so an
    /// at-least-once revocation is committed at once (`pre_rebalance`), as the final
    /// commit's polls serve the group's rebalances ([`serve_rebalance`]).
    ended: AtomicBool,
    /// An asynchronous commit failed (the broker answered later, say that the group was
    /// rebalancing): an instance group's next commit point commits the positions again.
    commit_failed: AtomicBool,
}

impl SourceContext {
    /// Whether a revocation waits for the next commit point ([`SourceContext::revoke_pending`]).
    fn revoking(&self) -> bool {
        self.revoke_pending.load(Ordering::Acquire)
    }

    /// Whether a revocation waited, which the caller now commits and carries out.
    fn take_revoke(&self) -> bool {
        self.revoke_pending.swap(false, Ordering::AcqRel)
    }
}

/// A source reader of an exactly-once instance group (see [`super::origin`]).
struct Eos {
    /// Its subtask's transactions, taken when the reader opens.
    origin: OnceLock<SharedOrigin>,
}

/// `consumer`'s valid positions on the partitions `keep` accepts (topic, partition); `None`
/// when librdkafka has none to give.
fn positions(
    consumer: &BaseConsumer<SourceContext>,
    keep: impl Fn(&str, i32) -> bool,
) -> Option<TopicPartitionList> {
    let positions = consumer.position().ok()?;
    let mut tpl = TopicPartitionList::new();
    for e in positions.elements() {
        if let (true, Offset::Offset(o)) = (keep(e.topic(), e.partition()), e.offset()) {
            let _ = tpl.add_partition_offset(e.topic(), e.partition(), Offset::Offset(o));
        }
    }
    Some(tpl)
}

impl ClientContext for SourceContext {}

impl ConsumerContext for SourceContext {
    /// librdkafka's rebalance, but that an exactly-once reader defers the unassign of
    /// revoked partitions to its next commit point (librdkafka pauses them meanwhile, and the
    /// group's rebalance waits for it): the rows it polled from them go into the transaction
    /// that commits the positions after them.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let revoke = err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS;
        // (Exactly-once refuses cooperative rebalancing; at least once, a cooperative
        // revocation is committed here, `pre_rebalance`.)
        let defer = self.eos.is_some()
            || (self.commit_on_revoke
                && !self.ended.load(Ordering::Acquire)
                && !matches!(
                    consumer.rebalance_protocol(),
                    rdkafka::consumer::RebalanceProtocol::Cooperative
                ));
        if revoke && defer && !self.closed.load(Ordering::Acquire) {
            tracing::debug!(connector = %self.connector, partitions = tpl.count(), "partitions revoked: committing before they go");
            self.revoke_pending.store(true, Ordering::Release);
            return;
        }
        super::apply_rebalance(self, consumer, err, tpl, &self.connector);
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.rebalances.saw(rebalance);
    }

    /// A commit's answer (librdkafka reports synchronous ones here too): an asynchronous
    /// `commit` only queued its request. A failure left the group's offsets behind the
    /// positions the reader took as committed: in an instance group, it commits those of the
    /// partitions it still holds again at its next commit point.
    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                tracing::warn!(connector = %self.connector, offsets = ?offsets, "the broker refused a commit of offsets: {e}");
                self.commit_failed.store(true, Ordering::Release);
            }
        }
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let (true, Rebalance::Revoke(revoked)) = (self.commit_on_revoke, rebalance) else {
            return;
        };
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        // The positions after the last records polled: every one of them goes on downstream.
        let Some(tpl) = positions(consumer, |topic, p| {
            revoked.find_partition(topic, p).is_some()
        }) else {
            return;
        };
        if tpl.count() == 0 {
            return;
        }
        match consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => {
                tracing::debug!(connector = %self.connector, offsets = ?tpl, "committed partitions given up")
            }
            // The next owner starts at the last commit and reads these rows again.
            Err(e) => {
                tracing::warn!(connector = %self.connector, "cannot commit the positions of partitions given up (their new owner reads them again): {e}")
            }
        }
    }
}

/// A revocation deferred to a commit point, once it committed: the partitions go (the
/// group's rebalance goes on).
fn give_up_revoked(consumer: &ReaderConsumer, connector: &str) -> Result<()> {
    let revoked = consumer.assignment().unwrap_or_default();
    tracing::debug!(connector = %connector, partitions = revoked.count(), "committed the partitions given up");
    consumer
        .unassign()
        .map_err(|e| connector_error(connector, format!("cannot give its partitions up: {e}")))?;
    (consumer.context().rebalances).saw(&Rebalance::Revoke(&revoked));
    Ok(())
}

/// The reader's input ended (or it left its group): with exactly-once, its last positions go
/// to the final transaction, which its last writer's end record commits.
fn end_reader(consumer: &ReaderConsumer, s: &mut ReaderState) -> Result<()> {
    consumer.context().ended.store(true, Ordering::Release);
    if let Some(origin) = s.eos.as_ref().and_then(|e| e.origin.get()) {
        let offsets = positions(consumer, |_, _| true).ok_or_else(|| {
            connector_error(
                &s.connector,
                "cannot read its last positions to commit them",
            )
        })?;
        origin
            .lock()
            .source_ended(offsets, consumer.group_metadata())?;
    }
    s.end()
}

/// Serves a rebalance of the reader's group without taking a row: a group that rebalances
/// (its other members end too) refuses the final commit of a member that did not rejoin, and
/// only a poll rejoins. The assignment is paused first; a row that comes anyway is sought
/// back to, so that no commit passes it (a revocation commits the positions).
fn serve_rebalance(consumer: &ReaderConsumer) {
    if let Ok(assigned) = consumer.assignment() {
        let _ = consumer.pause(&assigned);
    }
    if let Some(Ok(m)) = consumer.poll(Duration::ZERO) {
        let at = Offset::Offset(m.offset());
        let (topic, partition) = (m.topic().to_owned(), m.partition());
        drop(m);
        let _ = consumer.seek(&topic, partition, at, Duration::from_secs(1));
    }
}

/// A reader's consumer, closed in the background unless the job ended successfully:
/// librdkafka's close waits for pending commits, which a broker that is gone leaves hanging
/// for up to `session.timeout.ms`, and a failed job should report its error at once.
struct Closing {
    consumer: Option<ReaderConsumer>,
    /// Close in the dropping thread (the job succeeded: nothing hangs, and a group member
    /// leaves its group before the process exits).
    at_once: bool,
}

impl std::ops::Deref for Closing {
    type Target = ReaderConsumer;
    fn deref(&self) -> &ReaderConsumer {
        self.consumer
            .as_ref()
            .expect("the consumer is only taken when dropped")
    }
}

impl Drop for Closing {
    fn drop(&mut self) {
        if let Some(consumer) = self.consumer.take() {
            // Leaving the group revokes the partitions: the end committed what a successful
            // job read, and a failed one commits nothing.
            consumer.context().closed.store(true, Ordering::Release);
            if consumer.context().take_revoke() {
                // A revocation deferred to a commit point that never came (the job failed):
                // librdkafka's close would wait for the unassign forever.
                let _ = consumer.unassign();
            }
            if !self.at_once {
                // If the thread cannot start, the closure and the consumer drop here.
                let _ = std::thread::Builder::new()
                    .name("flow-kafka-close".into())
                    .spawn(move || drop(consumer));
            }
        }
    }
}

/// A source reader leaving its instance group (SIGTERM).
///
/// Its writers' watermarks hold the repartition topics' readers back until they end. The
/// others' sources, which take its partitions over, went on reading meanwhile: their
/// watermarks are ahead of the rows after its positions, which piled up until the group
/// dealt the partitions anew. So it ends only once the others read (and committed) every
/// row that was in those partitions when they began to read them, and those rows are not
/// late where they are read. Unless the watermarks its writers wrote of each partition
/// hold the readers back ([`SourceSplits::cover_the_writers`]): then it ends a margin after
/// its leave.
struct Leaving {
    /// The partitions it gave up, at the positions it committed.
    handed: TopicPartitionList,
    /// How far the takeover of each partition of `handed` got (in its order).
    taking: Vec<TakeOver>,
    since: Instant,
    checked: Option<Instant>,
    /// When every partition was found taken over.
    taken: Option<Instant>,
}

/// The consumer-group member ids of this process's source readers that are leaving their
/// groups. A group that re-formed with one of them still in it did not re-form without them:
/// a reader's partitions may have gone to a sibling reader (`-p 2`) that leaves too.
static LEAVING_MEMBERS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// What a leaving reader's consumer group says of itself.
struct Regrouped {
    /// No member left (the group's state says so: not an entry that failed).
    empty: bool,
    ids: Vec<String>,
    /// Its rebalance is over: every partition is assigned.
    stable: bool,
}

impl Regrouped {
    fn of(group: &rdkafka::groups::GroupInfo) -> Self {
        Regrouped {
            empty: group.members().is_empty() && matches!(group.state(), "Empty" | "Dead"),
            ids: group.members().iter().map(|m| m.id().to_owned()).collect(),
            stable: group.state() == "Stable",
        }
    }

    /// Whether one of `members` is still one of the group's.
    fn has_any(&self, members: &[String]) -> bool {
        members.iter().any(|m| self.ids.contains(m))
    }
}

/// The consumer group's member id of `consumer` (librdkafka's), if it has one.
fn member_id(consumer: &ReaderConsumer) -> Option<String> {
    use rdkafka::bindings::{rd_kafka_mem_free, rd_kafka_memberid};
    let rk = consumer.client().native_ptr();
    // SAFETY: the client's pointer is valid while `consumer` is borrowed; librdkafka returns
    // a NUL-terminated copy (or null), freed here with its own allocator after it is copied.
    unsafe {
        let id = rd_kafka_memberid(rk);
        if id.is_null() {
            return None;
        }
        let owned = std::ffi::CStr::from_ptr(id).to_string_lossy().into_owned();
        rd_kafka_mem_free(rk as *mut _, id.cast());
        (!owned.is_empty()).then_some(owned)
    }
}

/// Whether the consumer group of `consumer` took the partitions `leaving` handed over, and
/// their new owners read the rows that were in them when they began ([`TakeOver`]).
fn taken_over(consumer: &ReaderConsumer, leaving: &mut Leaving, regrouped: bool) -> bool {
    const ASK: Duration = Duration::from_secs(2);
    let Ok(now) = consumer.committed_offsets(leaving.handed.clone(), ASK) else {
        return false;
    };
    let mut all = true;
    for (e, take) in leaving.handed.elements().iter().zip(&mut leaving.taking) {
        let committed =
            (now.find_partition(e.topic(), e.partition())).and_then(|n| match n.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            });
        let end = || {
            (consumer.fetch_watermarks(e.topic(), e.partition(), ASK))
                .ok()
                .map(|(_, high)| high)
        };
        all &= take.done(committed, regrouped, end);
    }
    all
}

/// How far the takeover of one partition a leaving reader handed over got.
///
/// Its new owner's watermark may be ahead of the rows it reads there first: its other
/// partitions moved on while these waited for the group to deal them anew. A commit just
/// past the handed position says it began to read them, not that it passed those rows on;
/// so the takeover is done once it committed where the partition ended when that commit
/// was first seen (its high watermark; for a `read_committed` reader, its last stable
/// offset). A job far behind its input waits that long for its new owner (at most
/// `TAKEOVER_LIMIT`): which of those rows are behind the new owner's watermark, the leaving
/// reader cannot tell. A partition to which nothing came after the handed position, once the
/// group re-formed without the leaving member, is done too (what comes later is read at
/// once by its new owner).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TakeOver {
    /// Handed over at this position (the next record to read).
    Handed(i64),
    /// Its new owner began: done once the group committed this position.
    Reading(i64),
    Done,
}

impl TakeOver {
    /// Given the group's committed position now, whether the group `regrouped`, and the
    /// partition's `end` (as the leaving reader's consumer sees it; asked only when needed).
    fn done(
        &mut self,
        committed: Option<i64>,
        regrouped: bool,
        end: impl FnOnce() -> Option<i64>,
    ) -> bool {
        *self = match *self {
            TakeOver::Handed(at) => {
                let began = committed.is_some_and(|c| c > at);
                match (began || regrouped).then(end).flatten() {
                    Some(end) if began => TakeOver::Reading(end),
                    Some(end) if end <= at => TakeOver::Done,
                    _ => TakeOver::Handed(at),
                }
            }
            other => other,
        };
        if let TakeOver::Reading(to) = *self {
            if committed.is_some_and(|c| c >= to) {
                *self = TakeOver::Done;
            }
        }
        *self == TakeOver::Done
    }
}

/// A partition a reader reads and how far it got: the position a checkpoint stores.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KafkaSplit {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset of the next record to hand to the job (all before it were handed).
    pub next_offset: i64,
    /// In bounded mode, the partition's end offset when the job started: the reader stops
    /// there.
    pub end_offset: Option<i64>,
}

impl KafkaSplit {
    /// Its name in every instance of a group ([`split_name`]).
    fn name(&self) -> u64 {
        split_name(&self.topic, self.partition)
    }

    fn is_done(&self) -> bool {
        self.end_offset.is_some_and(|end| self.next_offset >= end)
    }
}

/// One subtask's reader of a [`KafkaSource`]: one librdkafka consumer for its partitions.
pub struct KafkaSourceReader<F> {
    consumer: Closing,
    state: ReaderState,
    format: F,
}

/// The reader's state apart from the consumer, so a polled message (which borrows the
/// consumer) and the state can be used together.
struct ReaderState {
    connector: String,
    /// Its index among the source's readers (subtasks).
    reader: usize,
    /// Assigned mode: the reader's partitions. Group mode: the partitions it has read from.
    splits: Vec<KafkaSplit>,
    /// The split of the last record: consecutive records mostly share a partition.
    last_split: usize,
    subscription: Vec<String>,
    group_assignment: bool,
    bounded: bool,
    commits: bool,
    /// In an instance group: when the reader last committed while caught up, and the
    /// positions it committed.
    caught_up: Option<(Instant, Vec<i64>)>,
    bad_records: BadRecordHandler,
    stop: StopHandle,
    /// End once no record arrived for this long after the first one.
    stop_when_idle: Option<Duration>,
    /// When the last record arrived.
    last_record: Option<Instant>,
    /// The job drains (SIGUSR1): end at the next poll, as when idle.
    draining: bool,
    /// Whether, and since when, the broker is unreachable.
    downtime: Downtime,
    /// Positions recorded for checkpoints not yet known complete, oldest first.
    pending_commits: Vec<(CheckpointId, Vec<KafkaSplit>)>,
    /// Whether the splits were announced to the output (for per-split watermarks).
    announced: bool,
    /// In an instance group: the consumer group, and the partitions handed over since the
    /// instance began to leave it.
    group: Option<String>,
    /// How long its group may take to re-form once it left ([`InstanceConfig::regroup_bound`]).
    regroup: Duration,
    leaving: Option<Leaving>,
    /// Asked to leave, it waits for its turn ([`leave_turns`]).
    turn: leave_turns::Turn,
    /// In an instance group with event time: its splits' watermarks, which the repartition
    /// writers of its chain write.
    published: Option<Arc<SourceSplits>>,
    /// Group mode: per split, whether the group assigns it to this reader now (it holds the
    /// watermark back), and when the assignment was last looked at.
    assigned: Vec<bool>,
    assignment_checked: Option<Instant>,
    /// Each split's position at the first poll (after a restore): where its progress counts
    /// from.
    first_offsets: Vec<i64>,
    finished: bool,
    /// How long a poll waits for the first record: [`POLL_WAIT`], or nothing when the reader
    /// shares its thread with other tasks (it would hold them up).
    poll_wait: Duration,
    /// In an exactly-once instance group: the subtask's transactions.
    eos: Option<Arc<Eos>>,
    /// Exactly-once: rows were polled since the last commit.
    moved: bool,
    /// In an instance group: a leave (SIGTERM) commits at a commit point first.
    leave_commit: LeaveCommit,
    /// In an instance group, at least once: a commit of its positions waits for the next
    /// commit point ([`ReaderState::note_commit_due`]).
    commit_due: bool,
}

/// Where an exactly-once reader that leaves its group is with its last commit.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum LeaveCommit {
    No,
    /// It waits for a commit point.
    Wanted,
    /// Committed: it may leave.
    Done,
}

impl<F> KafkaSourceReader<F> {
    /// Assigns the reader's partitions that are not done to its consumer, at their positions.
    fn assign(&mut self) -> Result<()> {
        let s = &self.state;
        let mut tpl = TopicPartitionList::new();
        for split in s.splits.iter().filter(|s| !s.is_done()) {
            tpl.add_partition_offset(
                &split.topic,
                split.partition,
                Offset::Offset(split.next_offset),
            )
            .map_err(|e| connector_error(&s.connector, e.to_string()))?;
        }
        self.consumer
            .assign(&tpl)
            .map_err(|e| connector_error(&s.connector, format!("cannot assign partitions: {e}")))
    }

    /// The reader's partitions and positions (in group mode: the partitions it has read from
    /// so far, some of which may since have moved to another reader).
    pub fn splits(&self) -> &[KafkaSplit] {
        &self.state.splits
    }
}

/// The end of `topic`'s `partition` as `consumer` last learned it from a fetch (librdkafka's
/// cached high watermark; the last stable offset when it reads committed records only),
/// without a request to the broker; `None` before the first fetch.
fn cached_end(consumer: &ReaderConsumer, topic: &str, partition: i32) -> Option<i64> {
    use rdkafka::bindings::{rd_kafka_get_watermark_offsets, rd_kafka_resp_err_t};
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client's pointer is valid while `consumer` is borrowed; `topic` is a
    // NUL-terminated string that outlives the call; librdkafka reads its cached offsets under
    // its own lock and writes only `low` and `high`.
    let err = unsafe {
        rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
}

impl<F: Decode> SourceReader for KafkaSourceReader<F> {
    type Row = F::Row;

    /// Bounded (assigned partitions): records handed on of those between each partition's
    /// position at the start and its end offset. Unbounded or group-assigned: `None`.
    fn progress(&self) -> Option<(u64, u64)> {
        let s = &self.state;
        if !s.bounded || s.group_assignment {
            return None;
        }
        let (mut done, mut total) = (0u64, 0u64);
        for (i, split) in s.splits.iter().enumerate() {
            let end = split.end_offset?;
            let first = s.first_offsets.get(i).copied().unwrap_or(split.next_offset);
            total += end.saturating_sub(first).max(0) as u64;
            done += split.next_offset.min(end).saturating_sub(first).max(0) as u64;
        }
        Some((done, total))
    }

    /// Each partition the reader reads now, its position and the records after it: up to the
    /// end offset in bounded mode, else up to the end the consumer last fetched (a partition
    /// not fetched yet is left out).
    fn partition_lag(&self, lag: &mut Vec<flow_runtime::PartitionLag>) {
        let s = &self.state;
        let assigned = if s.group_assignment {
            match self.consumer.assignment() {
                Ok(tpl) => Some(tpl),
                Err(_) => return,
            }
        } else {
            None
        };
        for split in &s.splits {
            if let Some(tpl) = &assigned {
                if tpl.find_partition(&split.topic, split.partition).is_none() {
                    continue;
                }
            }
            let end = match split.end_offset {
                Some(end) => Some(end),
                None => cached_end(&self.consumer, &split.topic, split.partition),
            };
            if let Some(end) = end {
                lag.push(flow_runtime::PartitionLag {
                    topic: split.topic.clone(),
                    partition: split.partition,
                    offset: split.next_offset,
                    lag: end.saturating_sub(split.next_offset).max(0),
                });
            }
        }
    }

    fn report(&self, metrics: &mut flow_runtime::TaskMetrics, node: u32) {
        self.state.bad_records.report(metrics, node);
    }

    fn open(&mut self, ctx: &RuntimeContext) -> Result<()> {
        let s = &mut self.state;
        if ctx.shares_thread() {
            s.poll_wait = Duration::ZERO;
        }
        // (Its chain opened first: its exchanges said what they write.)
        s.published = source_splits(ctx.subtask_key());
        s.bad_records.open(ctx)?;
        if let Some(eos) = &s.eos {
            // The writers of its chain opened it (the chain opens first), or it is made here.
            let origin = SharedOrigin::of(ctx.subtask_key(), &s.connector)?;
            origin.lock().claim();
            let _ = eos.origin.set(origin);
        }
        if s.group_assignment {
            let topics: Vec<&str> = s.subscription.iter().map(String::as_str).collect();
            self.consumer.subscribe(&topics).map_err(|e| {
                connector_error(&s.connector, format!("cannot subscribe to {topics:?}: {e}"))
            })?;
        } else {
            self.assign()?;
        }
        tracing::debug!(
            connector = %self.state.connector,
            subtask = ctx.subtask_index(),
            splits = ?self.state.splits,
            "kafka reader opened"
        );
        Ok(())
    }

    fn poll<O: SourceOutput<F::Row>>(&mut self, out: &mut O, max_rows: usize) -> Result<Poll> {
        let s = &mut self.state;
        if s.finished {
            return Ok(Poll::Finished);
        }
        if self.consumer.context().revoking() {
            // A revocation is committed at the commit point after this poll before anything
            // else (an end, a leave): the group's rebalance waits for it, and the partitions'
            // next owner for its commit.
            return Ok(Poll::Hold);
        }
        let quiet = s
            .stop_when_idle
            .zip(s.last_record)
            .is_some_and(|(idle, last)| last.elapsed() >= idle);
        if s.caught_up.is_some()
            && flow_runtime::instances::leave_requested()
            && (s.leave_commit != LeaveCommit::No || s.turn_to_leave(&self.consumer))
        {
            if s.leave_commit != LeaveCommit::Done {
                // Its last commit first, at a commit point: the rows polled so far, with their
                // positions (exactly-once, its last transaction).
                s.leave_commit = LeaveCommit::Wanted;
                return Ok(Poll::Hold);
            }
            // Its partitions go to the others: what its writers said of each last holds
            // the repartition topics' readers back until their new owners move it.
            s.release_assigned(out);
            if !s.leave(&self.consumer)? {
                return Ok(Poll::Hold);
            }
            end_reader(&self.consumer, s)?;
            return Ok(Poll::Finished);
        }
        if s.stop.is_stopped()
            || quiet
            || s.draining
            || (s.bounded && s.splits.iter().all(KafkaSplit::is_done))
        {
            end_reader(&self.consumer, s)?;
            return Ok(Poll::Finished);
        }
        if !s.announced {
            // Every partition holds the watermark back from the start (Flink's per-split
            // watermarks), not from its first record: one fetched late is not late itself.
            s.announced = true;
            s.first_offsets = s.splits.iter().map(|s| s.next_offset).collect();
            for (i, split) in s.splits.iter().enumerate() {
                out.split_identified(i, split.name());
                if split.is_done() {
                    out.split_finished(i);
                } else {
                    out.split_started(i);
                }
            }
        }
        if s.group_assignment {
            s.track_assignment(&self.consumer, out);
        }
        let mut rows = 0;
        let mut wait = s.poll_wait;
        while rows < max_rows {
            if self.consumer.context().revoking() {
                // The revoked partitions are paused until the commit point.
                break;
            }
            let Some(next) = self.consumer.poll(wait) else {
                break;
            };
            wait = Duration::ZERO;
            let msg = match next {
                Ok(msg) => msg,
                Err(e) => {
                    s.consumer_error(e, &self.consumer)?;
                    continue;
                }
            };
            s.moved = true;
            let _ = s.downtime.answered();
            if s.stop_when_idle.is_some() {
                s.last_record = Some(Instant::now());
            }
            let i = s.split_index(msg.topic(), msg.partition());
            let split = &mut s.splits[i];
            let offset = msg.offset();
            if offset < split.next_offset {
                // A record before the position (a rebalance replay): already handed on.
                continue;
            }
            if split.end_offset.is_some_and(|end| offset >= end) {
                // Past the end seen at start: left for the next run.
                split.next_offset = split.end_offset.unwrap_or(offset);
                continue;
            }
            split.next_offset = offset + 1;
            let split_done = split.is_done();
            let payload = msg.payload().unwrap_or(&[]);
            match self.format.decode(payload) {
                Ok(row) => {
                    let ts = msg.timestamp().to_millis().unwrap_or(NO_TIMESTAMP);
                    out.collect_in_split(i, row, ts);
                    rows += 1;
                }
                Err(e) => {
                    let ts = msg.timestamp().to_millis().unwrap_or(NO_TIMESTAMP);
                    s.bad_record(
                        msg.topic(),
                        msg.partition(),
                        offset,
                        ts,
                        payload,
                        e.to_string(),
                    )?
                }
            }
            if split_done {
                // A bounded partition that reached its end no longer holds the watermark back.
                out.split_finished(i);
            }
        }
        s.bad_records.flush()?;
        s.note_commit_due(&self.consumer);
        if rows == 0 {
            s.check_down(&self.consumer)?;
            if s.bounded {
                s.skip_control_records(&self.consumer, out);
            }
        }
        Ok(if rows > 0 { Poll::Ready } else { Poll::Idle })
    }

    /// In an instance group: a revocation or a leave waits for its commit, or a periodic one
    /// is due (every second; exactly-once, every 500 ms while rows flow).
    fn wants_commit_point(&self) -> bool {
        let s = &self.state;
        if self.consumer.context().revoking() || s.leave_commit == LeaveCommit::Wanted {
            return true;
        }
        match &s.eos {
            None => s.commit_due,
            Some(eos) => (eos.origin.get()).is_some_and(|o| o.lock().due(s.moved)),
        }
    }

    /// Ends at the next poll, as an idle reader does: its positions committed (exactly-once:
    /// with its last transaction), after a revocation under way. A reader that has not had a
    /// record yet ends too (the idle end waits for a first one).
    fn drain(&mut self) -> bool {
        self.state.draining = true;
        true
    }

    /// Every row polled went through the chain: to the repartition writers (exactly-once,
    /// which handed them to the transaction), to its sinks, which made their output durable.
    /// Commits the positions after them (exactly-once, the transaction with them). Then the
    /// revoked partitions may go, or the reader leave.
    fn commit_point(&mut self) -> Result<()> {
        let s = &mut self.state;
        // Its dead letters too (at least once, as the sinks' output).
        s.bad_records.commit_output()?;
        let Some(eos) = &s.eos else {
            // A revocation waits for this commit: the next owner starts after it.
            let revoke = self.consumer.context().take_revoke();
            s.commit_positions(&self.consumer, revoke)?;
            if revoke {
                give_up_revoked(&self.consumer, &s.connector)?;
            }
            return Ok(());
        };
        let Some(origin) = eos.origin.get() else {
            return Ok(());
        };
        let offsets = positions(&self.consumer, |_, _| true).ok_or_else(|| {
            connector_error(&s.connector, "cannot read its positions to commit them")
        })?;
        let group = self.consumer.group_metadata();
        origin.lock().commit(&offsets, group.as_ref())?;
        s.moved = false;
        if s.leave_commit == LeaveCommit::Wanted {
            s.leave_commit = LeaveCommit::Done;
        }
        if self.consumer.context().take_revoke() {
            tracing::debug!(connector = %s.connector, offsets = ?offsets, "the partitions given up committed in the transaction");
            give_up_revoked(&self.consumer, &s.connector)?;
        }
        Ok(())
    }

    /// Continues from the positions the checkpoint saved for this reader's partitions (in
    /// bounded mode, up to the end offsets the first run saw), whichever reader of the old job
    /// read them. Group mode resumes from the group's committed offsets instead (they follow
    /// the completed checkpoints).
    fn restore(&mut self, state: &StateReader) -> Result<()> {
        let saved = state.union::<KafkaSplit>("splits")?;
        let s = &mut self.state;
        if s.group_assignment {
            tracing::warn!(
                connector = %s.connector,
                "consumer group assignment: resuming from the group's committed offsets, not \
                 the checkpoint's positions (at-least-once: rows after the last committed \
                 checkpoint may be read twice)"
            );
            return Ok(());
        }
        for split in &mut s.splits {
            if let Some(old) = saved
                .iter()
                .find(|o| o.topic == split.topic && o.partition == split.partition)
            {
                split.next_offset = old.next_offset;
                if old.end_offset.is_some() {
                    split.end_offset = old.end_offset;
                }
            }
        }
        tracing::debug!(connector = %s.connector, splits = ?s.splits, "kafka reader restored");
        self.assign()
    }

    /// Makes the dead-letter output durable (it belongs to the rows before the barrier),
    /// saves the positions in the checkpoint and records them to commit to the group when
    /// checkpoint `id` completes.
    fn snapshot(&mut self, id: CheckpointId, state: &mut StateWriter) -> Result<Snapshot> {
        state.list("splits", &self.state.splits)?;
        let s = &mut self.state;
        let dead_letters = s.bad_records.checkpoint(id)?;
        if s.commits && !s.splits.is_empty() {
            s.pending_commits.push((id, s.splits.clone()));
        }
        Ok(dead_letters)
    }

    /// Commits the positions of checkpoint `id` (or the newest earlier one recorded) to the
    /// group.
    fn checkpoint_complete(&mut self, id: CheckpointId) -> Result<()> {
        // The dead letters before the checkpoint are committed (a transactional dead-letter
        // sink's output becomes visible).
        self.state.bad_records.checkpoint_complete(id)?;
        let s = &mut self.state;
        if id == FINAL_CHECKPOINT {
            self.consumer.at_once = true;
        }
        let Some(last) = s.pending_commits.iter().rposition(|(c, _)| *c <= id) else {
            return Ok(());
        };
        let (_, splits) = s
            .pending_commits
            .drain(..=last)
            .next_back()
            .expect("index checked");
        match s.commit(&self.consumer, &splits) {
            Ok(Some(committed)) if id == FINAL_CHECKPOINT => {
                s.await_commit(&self.consumer, &committed)
            }
            Err(e) if id == FINAL_CHECKPOINT => Err(e),
            Err(e) => {
                // The next checkpoint's commit covers these positions too.
                tracing::warn!(connector = %s.connector, checkpoint = id, error = %e, "offset commit failed");
                Ok(())
            }
            Ok(_) => Ok(()),
        }
    }
}

impl ReaderState {
    #[inline]
    /// Group mode: a partition the group assigns to this reader holds its watermark back from
    /// the assignment on, before its first record (so rows of a partition fetched late are
    /// not late); one revoked no longer does, until it comes back.
    fn track_assignment<R>(&mut self, consumer: &ReaderConsumer, out: &mut impl SourceOutput<R>) {
        const EVERY: Duration = Duration::from_millis(50);
        // At once after a rebalance: a partition given up is no longer published as this
        // reader's (its next reader's word on it must not be undone by a stale one).
        if self
            .assignment_checked
            .is_some_and(|t| t.elapsed() < EVERY && !consumer.context().rebalances.moved_since(t))
        {
            return;
        }
        self.assignment_checked = Some(Instant::now());
        let Ok(tpl) = consumer.assignment() else {
            return;
        };
        let mut now = vec![false; self.splits.len()];
        for e in tpl.elements() {
            let known = self.splits.len();
            let i = self.split_index(e.topic(), e.partition());
            if self.splits.len() > known {
                now.resize(self.splits.len(), false);
            }
            now[i] = true;
        }
        let seen = self.assigned.len();
        self.assigned.resize(self.splits.len(), false);
        if self.assigned != now {
            let mut numbers: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            numbers.sort_unstable();
            let numbers: Vec<String> = numbers.iter().map(i32::to_string).collect();
            tracing::info!(
                connector = %self.connector,
                reader = self.reader,
                partitions = tpl.count(),
                assigned = %numbers.join(","),
                "kafka group assignment"
            );
        }
        for (i, (&was, &is)) in self.assigned.iter().zip(&now).enumerate() {
            if !was && is {
                out.split_identified(i, self.splits[i].name());
            }
            match (was, is) {
                (false, true) if i < seen => out.split_reacquired(i),
                (false, true) => out.split_started(i),
                (true, false) => out.split_released(i),
                _ => {}
            }
        }
        self.assigned = now;
    }

    /// Group mode: the reader no longer reads the partitions assigned to it (it leaves).
    fn release_assigned<R>(&mut self, out: &mut impl SourceOutput<R>) {
        for (i, assigned) in self.assigned.iter_mut().enumerate() {
            if std::mem::take(assigned) {
                out.split_released(i);
            }
        }
    }

    fn split_index(&mut self, topic: &str, partition: i32) -> usize {
        let hit = |s: &KafkaSplit| s.partition == partition && s.topic == topic;
        if self.splits.get(self.last_split).is_some_and(hit) {
            return self.last_split;
        }
        let i = match self.splits.iter().position(hit) {
            Some(i) => i,
            None => {
                // Group mode: a partition newly assigned to this reader.
                self.splits.push(KafkaSplit {
                    topic: topic.to_owned(),
                    partition,
                    next_offset: 0,
                    end_offset: None,
                });
                self.splits.len() - 1
            }
        };
        self.last_split = i;
        i
    }

    /// Applies the bad-record policy to the record at `topic`/`partition`/`offset`.
    #[cold]
    fn bad_record(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        ts: i64,
        payload: &[u8],
        error: String,
    ) -> Result<()> {
        let at = format!("topic `{topic}` partition {partition} offset {offset}");
        let letter = DeadLetter {
            source: topic.to_owned(),
            partition,
            offset,
            error,
            payload: payload.to_vec(),
        };
        self.bad_records.handle(letter, ts, &at)
    }

    /// An error from the consumer: fatal ones end the job; a broker that stays unreachable
    /// longer than `max_broker_downtime` too; others are logged (librdkafka retries).
    #[cold]
    fn consumer_error(&mut self, e: KafkaError, consumer: &ReaderConsumer) -> Result<()> {
        let code = e.rdkafka_error_code();
        match code {
            Some(RDKafkaErrorCode::UnknownTopicOrPartition)
            | Some(RDKafkaErrorCode::UnknownTopic)
            | Some(RDKafkaErrorCode::UnknownPartition)
            | Some(RDKafkaErrorCode::TopicAuthorizationFailed)
            | Some(RDKafkaErrorCode::GroupAuthorizationFailed)
            | Some(RDKafkaErrorCode::Fatal) => {
                return Err(connector_error(
                    &self.connector,
                    format!("consumer error: {e}"),
                ))
            }
            _ if Downtime::is_unreachable(&e) => {
                tracing::warn!(connector = %self.connector, error = %e, "broker unreachable; librdkafka retries");
                let _ = self.downtime.unreachable(&e);
                self.check_down(consumer)?;
            }
            _ => tracing::warn!(connector = %self.connector, error = %e, "consumer error"),
        }
        Ok(())
    }

    /// A bounded partition whose consumer position reached its end offset is done even when
    /// the last records were not handed on: the markers that end transactions take offsets
    /// but are no records, so a topic an exactly-once sink wrote ends with one.
    fn skip_control_records<R>(
        &mut self,
        consumer: &ReaderConsumer,
        out: &mut impl SourceOutput<R>,
    ) {
        if self.splits.iter().all(KafkaSplit::is_done) {
            return;
        }
        let Ok(positions) = consumer.position() else {
            return;
        };
        for (i, split) in self.splits.iter_mut().enumerate() {
            let Some(end) = split.end_offset else {
                continue;
            };
            if split.is_done() {
                continue;
            }
            let at = positions
                .find_partition(&split.topic, split.partition)
                .map(|p| p.offset());
            if let Some(Offset::Offset(at)) = at {
                if at >= end {
                    split.next_offset = end;
                    out.split_finished(i);
                }
            }
        }
    }

    /// While the broker is unreachable: whether it answers again, or has been away longer
    /// than `max_broker_downtime`, which fails the job.
    #[cold]
    fn check_down(&mut self, consumer: &ReaderConsumer) -> Result<()> {
        self.downtime
            .check(consumer.client())
            .map_err(|e| connector_error(&self.connector, e))
    }

    /// Starts committing `splits`' positions to the group (in group mode only the partitions
    /// this reader still owns: the others' new owners commit theirs); returns the positions
    /// committed, if any.
    fn commit(
        &self,
        consumer: &ReaderConsumer,
        splits: &[KafkaSplit],
    ) -> Result<Option<TopicPartitionList>> {
        let owned = if self.group_assignment {
            Some(consumer.assignment().map_err(|e| {
                connector_error(&self.connector, format!("cannot read the assignment: {e}"))
            })?)
        } else {
            None
        };
        let mut tpl = TopicPartitionList::new();
        for s in splits {
            if owned
                .as_ref()
                .is_some_and(|o| o.find_partition(&s.topic, s.partition).is_none())
            {
                continue;
            }
            tpl.add_partition_offset(&s.topic, s.partition, Offset::Offset(s.next_offset))
                .map_err(|e| connector_error(&self.connector, e.to_string()))?;
        }
        if tpl.count() == 0 {
            return Ok(None);
        }
        tracing::debug!(connector = %self.connector, offsets = ?tpl, "committing offsets");
        consumer
            .commit(&tpl, CommitMode::Async)
            .map_err(|e| connector_error(&self.connector, format!("cannot commit offsets: {e}")))?;
        Ok(Some(tpl))
    }

    /// In an instance group, after a poll: a commit of the positions that moved since the
    /// last one is due once a second, caught up or not (as Kafka Streams commits every
    /// `commit.interval.ms`). Its sinks' output is then durable at least that often, and a
    /// rebalance while the input is quiet reads no row twice, even on a broker that assigns
    /// a partition before its old owner gave it up. (Exactly-once, its transactions commit
    /// the positions.)
    fn note_commit_due(&mut self, consumer: &ReaderConsumer) {
        let Some((last, committed)) = &self.caught_up else {
            return;
        };
        if self.eos.is_some() || last.elapsed() < Duration::from_secs(1) {
            return;
        }
        if (consumer.context().commit_failed).swap(false, Ordering::AcqRel) {
            // Its last commit did not reach the group: nothing counts as committed.
            self.commit_due = true;
            self.caught_up = Some((*last, Vec::new()));
            return;
        }
        let moved = positions(consumer, |_, _| true).is_some_and(|tpl| {
            tpl.count() > 0
                && (tpl.elements().iter())
                    .filter_map(|e| e.offset().to_raw())
                    .ne(committed.iter().copied())
        });
        match moved {
            true => self.commit_due = true,
            false => self.caught_up = Some((Instant::now(), committed.clone())),
        }
    }

    /// At a commit point (every row polled went through the chain, its sinks' output is
    /// durable): commits the consumer's positions if they moved since the last commit;
    /// `sync`, waiting for the broker (partitions given up: their next owner starts there).
    fn commit_positions(&mut self, consumer: &ReaderConsumer, sync: bool) -> Result<()> {
        self.commit_due = false;
        if self.leave_commit == LeaveCommit::Wanted {
            // (Leaving commits them itself, synchronously.)
            self.leave_commit = LeaveCommit::Done;
        }
        let Some((_, committed)) = &self.caught_up else {
            return Ok(());
        };
        // The consumer's positions (after the last records polled, all passed on), not the
        // splits': a partition assigned again has a split from before.
        let Some(tpl) = positions(consumer, |_, _| true) else {
            return Ok(());
        };
        let now: Vec<i64> = (tpl.elements().iter())
            .filter_map(|e| e.offset().to_raw())
            .collect();
        if tpl.count() > 0 && now != *committed {
            let mode = if sync {
                CommitMode::Sync
            } else {
                CommitMode::Async
            };
            match consumer.commit(&tpl, mode) {
                Ok(()) => {}
                // The next owner starts at the last commit and reads these rows again.
                Err(e) if sync => {
                    tracing::warn!(connector = %self.connector, "cannot commit the positions of partitions given up (their new owner reads them again): {e}")
                }
                Err(e) => {
                    tracing::warn!(connector = %self.connector, "cannot commit offsets (tries again in a second): {e}")
                }
            }
        }
        self.caught_up = Some((Instant::now(), now));
        Ok(())
    }

    /// Reads the group's offsets back until they are `committed`, committing them again every
    /// second meanwhile (an asynchronous commit's failure is not reported back); gives up after
    /// `max_broker_downtime`.
    fn await_commit(
        &self,
        consumer: &ReaderConsumer,
        committed: &TopicPartitionList,
    ) -> Result<()> {
        let start = Instant::now();
        let deadline = start + self.downtime.limit();
        let expected = committed.to_topic_map();
        let mut last_commit = start;
        let mut last = String::from("no answer");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(connector_error(
                    &self.connector,
                    format!(
                        "the final offsets were not committed within {} ({last})",
                        fmt_duration(self.downtime.limit())
                    ),
                ));
            }
            match consumer.committed_offsets(committed.clone(), left.min(Duration::from_secs(2))) {
                Ok(now) if now.to_topic_map() == expected => return Ok(()),
                Ok(now) => {
                    last = format!(
                        "the group has {:?}, expected {expected:?}",
                        now.to_topic_map()
                    )
                }
                Err(e) => last = e.to_string(),
            }
            if last_commit.elapsed() >= Duration::from_secs(1) {
                last_commit = Instant::now();
                if let Err(e) = consumer.commit(committed, CommitMode::Async) {
                    last = e.to_string();
                }
            }
            if self.group_assignment {
                serve_rebalance(consumer);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Commits the positions after the rows passed on, and returns them with the committed
    /// positions of the partitions assigned and not read from yet: where the others take over.
    /// A refused commit is tried again for up to 10 s.
    fn hand_over(&self, consumer: &ReaderConsumer) -> Result<TopicPartitionList> {
        let mut handed = positions(consumer, |_, _| true).unwrap_or_default();
        // Exactly-once: its last transaction committed them (`LeaveCommit`).
        if handed.count() > 0 && self.eos.is_none() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while let Err(e) = consumer.commit(&handed, CommitMode::Sync) {
                if Instant::now() >= deadline {
                    return Err(connector_error(
                        &self.connector,
                        format!("leaving the group, cannot commit its positions (the next reader starts at the last commit): {e}"),
                    ));
                }
                tracing::debug!(connector = %self.connector, "leaving the group: commit refused ({e}), trying again");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        let mut unread = TopicPartitionList::new();
        for e in consumer.assignment().unwrap_or_default().elements() {
            if handed.find_partition(e.topic(), e.partition()).is_none() {
                unread.add_partition(e.topic(), e.partition());
            }
        }
        if unread.count() > 0 {
            let committed =
                (consumer.committed_offsets(unread, Duration::from_secs(5))).map_err(|e| {
                    connector_error(
                        &self.connector,
                        format!("leaving the group, cannot read its committed offsets: {e}"),
                    )
                })?;
            for e in committed.elements() {
                if let Offset::Offset(o) = e.offset() {
                    let _ =
                        handed.add_partition_offset(e.topic(), e.partition(), Offset::Offset(o));
                }
            }
        }
        Ok(handed)
    }

    /// Whether this reader leaves its instance group now: once it began to, or when its turn
    /// came ([`leave_turns`]: a sibling reader of this instance left the group before it);
    /// until then it reads on.
    fn turn_to_leave(&mut self, consumer: &ReaderConsumer) -> bool {
        let (None, Some(group)) = (&self.leaving, &self.group) else {
            return true;
        };
        (self.turn).take(
            group,
            &consumer.context().rebalances,
            self.regroup,
            &self.connector,
        )
    }

    /// The instance leaves its group (SIGTERM): commits the positions after the rows passed
    /// on (all are on their way to the repartition topic), leaves the consumer group, and waits
    /// until the others took its partitions over ([`Leaving`]). True when the reader may end.
    fn leave(&mut self, consumer: &ReaderConsumer) -> Result<bool> {
        let leaving = match &mut self.leaving {
            Some(leaving) => leaving,
            None => {
                let handed = self.hand_over(consumer)?;
                if let Some(member) = member_id(consumer) {
                    LEAVING_MEMBERS.lock().expect("not poisoned").push(member);
                }
                // The revocation that follows commits nothing more: no row was read since.
                consumer.context().closed.store(true, Ordering::Release);
                consumer.unsubscribe();
                tracing::info!(
                    connector = %self.connector,
                    partitions = handed.count(),
                    "the instance leaves its group: positions committed"
                );
                self.leaving.insert(Leaving {
                    taking: (handed.elements().iter())
                        .map(|e| match e.offset() {
                            Offset::Offset(at) => TakeOver::Handed(at),
                            // (A reader hands over only partitions it has a position of.)
                            _ => TakeOver::Done,
                        })
                        .collect(),
                    handed,
                    since: Instant::now(),
                    checked: None,
                    taken: None,
                })
            }
        };
        // Serves the revocation; no record comes, the consumer has no partition any more.
        let _ = consumer.poll(Duration::ZERO);
        if leaving.checked.is_none() {
            // The LeaveGroup is out once the revocation was served: a sibling's turn to
            // leave counts from here ([`leave_turns`]).
            if let Some(group) = &self.group {
                leave_turns::left(group);
            }
            if leaving.taken.is_none()
                && (self.published.as_ref()).is_some_and(|s| s.cover_the_writers())
            {
                // What its writers wrote of each partition's watermark holds the readers
                // back until the partition's next reader reads on in it.
                tracing::info!(
                    connector = %self.connector,
                    "the partitions' watermarks go with them: not waiting for the others to take them over"
                );
                leaving.taken = Some(Instant::now());
                leaving.checked = leaving.taken;
            }
        }
        if let Some(at) = leaving.taken {
            return Ok(at.elapsed() >= TAKEOVER_MARGIN);
        }
        let limit = TAKEOVER_LIMIT.max(2 * self.regroup);
        if leaving.since.elapsed() >= limit {
            tracing::warn!(
                connector = %self.connector,
                "the others did not take the partitions over within {} (is this the last instance?): rows after its positions may be late where they are read",
                fmt_duration(limit)
            );
            return Ok(true);
        }
        if leaving
            .checked
            .is_some_and(|t| t.elapsed() < Duration::from_millis(200))
        {
            return Ok(false);
        }
        leaving.checked = Some(Instant::now());
        let group = (self.group.as_deref())
            .and_then(|g| {
                consumer
                    .fetch_group_list(Some(g), Duration::from_secs(2))
                    .ok()
            })
            .and_then(|list| list.groups().first().map(Regrouped::of));
        let (alone, regrouped) = match group {
            Some(g) => {
                let leaving_here = LEAVING_MEMBERS.lock().expect("not poisoned");
                (g.empty, g.stable && !g.has_any(&leaving_here))
            }
            // A broker that does not describe groups: the group re-formed after a session.
            None => (
                false,
                leaving.since.elapsed() >= self.regroup + UNDESCRIBED_REGROUP,
            ),
        };
        if alone || taken_over(consumer, leaving, regrouped) {
            tracing::info!(
                connector = %self.connector,
                "the partitions were taken over after {} ms{}",
                leaving.since.elapsed().as_millis(),
                if alone { " (no other member)" } else { "" }
            );
            leaving.taken = Some(Instant::now());
        }
        Ok(false)
    }

    /// The end of the input: finish the dead-letter writer. The final positions are
    /// committed once the whole job ended successfully ([`FINAL_CHECKPOINT`]).
    fn end(&mut self) -> Result<()> {
        self.finished = true;
        self.bad_records.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Utf8;

    #[test]
    fn a_takeover_is_done_once_the_new_owner_committed_what_the_partition_held() {
        let mut take = TakeOver::Handed(100);
        // Nobody committed past the handed position yet; the end is not asked.
        assert!(!take.done(Some(100), false, || unreachable!()));
        assert!(!take.done(None, false, || unreachable!()));
        // Its new owner began, but the end is not known: asked again at the next check.
        assert!(!take.done(Some(101), false, || None));
        assert_eq!(take, TakeOver::Handed(100));
        // Its new owner began: the partition holds rows up to 180 then.
        assert!(!take.done(Some(101), false, || Some(180)));
        assert_eq!(take, TakeOver::Reading(180));
        assert!(!take.done(Some(179), true, || unreachable!()));
        assert!(!take.done(None, true, || unreachable!()));
        assert!(take.done(Some(180), false, || unreachable!()));
        // Its new owner caught up at once.
        let mut take = TakeOver::Handed(100);
        assert!(take.done(Some(180), false, || Some(180)));
        // Nothing came after the handed position, and the group re-formed without it.
        let mut quiet = TakeOver::Handed(100);
        assert!(!quiet.done(Some(100), false, || unreachable!()));
        assert!(!quiet.done(Some(100), true, || Some(120)));
        assert!(!quiet.done(Some(100), true, || None));
        assert!(quiet.done(Some(100), true, || Some(100)));
    }

    #[test]
    fn a_source_rides_out_its_own_limit_else_its_instance_groups() {
        let source = |own: Option<Duration>| {
            let b = KafkaSource::builder()
                .bootstrap_servers("127.0.0.1:1")
                .topic("t")
                .group_id("g")
                .format(Utf8);
            match own {
                Some(d) => b.max_broker_downtime(d),
                None => b,
            }
            .build()
            .unwrap()
        };
        let group = InstanceConfig {
            max_broker_downtime: Some(Duration::from_secs(15)),
            ..InstanceConfig::new("g", "127.0.0.1:1")
        };
        assert_eq!(
            source(None).cfg.max_broker_downtime(),
            Duration::from_secs(60)
        );
        let mut in_group = source(None);
        in_group.join_instance_group(&group).unwrap();
        assert_eq!(in_group.cfg.max_broker_downtime(), Duration::from_secs(15));
        let mut own = source(Some(Duration::from_secs(5)));
        own.join_instance_group(&group).unwrap();
        assert_eq!(own.cfg.max_broker_downtime(), Duration::from_secs(5));
    }
}
