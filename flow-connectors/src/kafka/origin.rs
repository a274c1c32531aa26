//! Exactly-once across the instances of a group (`--processing-guarantee exactly-once`), the
//! way Kafka Streams' `exactly_once_v2` has it: what a subtask reads from Kafka and what it
//! writes from it commit together, in one Kafka transaction.
//!
//! **Origins.** An *origin* is a subtask that reads Kafka for the group: a Kafka source's
//! subtask (and, next, a repartition topic's reader). It owns one transactional producer
//! ([`Origin`]), shared with the repartition writers at the end of its chain, which find it by
//! their task's [`SubtaskKey`]: the source's task pushes each polled batch through its chain
//! before it polls again, so every row the source polled has gone through the chain when the
//! task reaches a *commit point* (`SourceReader::commit_point`, after a flush of every
//! exchange of the chain). There the source sends
//! its positions (after the last row it polled) to the transaction, with its consumer's
//! group metadata, and commits: the repartition topics get the rows, watermarks and ends of
//! its partitions' records exactly as far as the group's committed offsets say they were
//! read. Readers read `read_committed`, so an aborted transaction's records are never read.
//!
//! **When.** A source commits every [`COMMIT_INTERVAL`] while it read rows or its writers
//! wrote (watermarks, signs of life); before the group takes its partitions away (it defers
//! librdkafka's unassign until its commit point: the partitions' last rows go with it); before
//! it leaves the group (SIGTERM); and at its end (the last writer's end record commits the
//! final transaction).
//!
//! **Crashes.** Each source subtask of an instance has a stable *base id*,
//! `<group>-<instance id>-eos-<block>-<stage>-<subtask>`, and each run of the instance writes
//! with `<base>.<run>`, recorded in the group's ledger topic `<group>-transactions` before
//! the job's tasks start ([`prepare`]). An instance started again with its `--instance-id`
//! (and the same plan and parallelism) first initialises the ids its dead self wrote with,
//! which fences their producers and aborts their open transactions, so that the readers read
//! on; then it reads on from the committed offsets: no row is lost, and none is written to a
//! repartition topic twice. (A new id per run, not one for every run: on noida-db, the test
//! broker, a `read_committed` consumer skips the transactions that follow an aborted one of
//! the same producer id as if they were aborted too.) A dead instance that does not come back
//! leaves its open transactions to the broker's transaction timeout
//! (`transaction.timeout.ms`, 60 s) on a Kafka broker; noida-db never aborts them.
//!
//! **Not yet.** The readers' side (keyed state saved with the readers' commits, the sinks'
//! rows in the readers' transactions) is at-least-once still.

use super::config::ClientSettings;
use super::connector_error;
use super::sink::Output;
use flow_runtime::instances::InstanceConfig;
use flow_runtime::{Error, Result, SubtaskKey, Timestamp, NO_TIMESTAMP};
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::message::Message;
use rdkafka::producer::Producer;
use rdkafka::TopicPartitionList;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// How often an origin commits while it reads rows (Kafka Streams commits every 100 ms under
/// exactly-once; rows become visible to the readers at the commits).
pub(super) const COMMIT_INTERVAL: Duration = Duration::from_millis(500);

/// How long a record may take to be acknowledged, and a commit to complete: as long as a
/// repartition writer's records may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a subtask has no transactions to write in (a writer's, or a source's).
const NOT_IN_A_SOURCE_CHAIN: &str = "exactly-once (--processing-guarantee): no transactions were prepared for this subtask: it is not a Kafka source of the group, nor in the chain of one, whose transactions it would write in (an exchange between a source and a repartition writer, or a second key_by, is not supported yet)";

/// An origin's transactional producer, shared by the source and the writers of its chain.
pub(super) struct Origin {
    out: Output,
    /// A source took the origin: it commits the transactions. A writer whose origin no
    /// source took is not in a source's chain.
    claimed: bool,
    /// Writers that opened and did not end yet.
    writers: usize,
    /// Records were sent since the last commit.
    dirty: bool,
    /// The source's positions at its end and its group, for the commit of the last writer's
    /// end record.
    last: Option<(TopicPartitionList, ConsumerGroupMetadata)>,
    last_commit: Instant,
}

/// An [`Origin`] shared by the connectors of one subtask.
#[derive(Clone)]
pub(super) struct SharedOrigin(Arc<Mutex<Origin>>);

/// The origins of running subtasks: each lives as long as its source or a writer holds it.
static ORIGINS: Mutex<Vec<(SubtaskKey, Weak<Mutex<Origin>>)>> = Mutex::new(Vec::new());

/// Transactional producers initialised before the job's tasks started ([`prepare`]), by the
/// base id of their source subtask ([`base_id`]), for the origins to take.
static PREPARED: Mutex<Vec<(String, Output)>> = Mutex::new(Vec::new());

/// The stable name of source subtask `subtask` of stage `stage` of block `graph` of this
/// instance: `<group>-<instance id>-eos-<block>-<stage>-<subtask>`. A run writes with
/// `<base>.<run>`, recorded in the group's ledger ([`ledger_topic`]).
fn base_id(config: &InstanceConfig, graph: usize, stage: usize, subtask: usize) -> Result<String> {
    let Some(id) = &config.id else {
        return Err(Error::Config(format!(
            "instance group `{}`: exactly-once needs an --instance-id (its transactional ids are named after it, so that the instance started again aborts what its dead self left open)",
            config.group
        )));
    };
    Ok(format!(
        "{}-{id}-eos-{graph}-{stage}-{subtask}",
        config.group
    ))
}

/// The topic `<group>-transactions` (one partition): per base id, the transactional id its
/// latest run writes with (key the base id, value the transactional id).
fn ledger_topic(config: &InstanceConfig) -> String {
    format!("{}-transactions", config.group)
}

fn instance_settings(config: &InstanceConfig) -> ClientSettings {
    let mut settings = ClientSettings::new();
    settings.bootstrap_servers = config.brokers.clone();
    settings
}

/// A transactional producer for `transactional_id`, its transactions initialised (which
/// fences an older producer of the id and aborts its open transaction).
fn connect(config: &InstanceConfig, transactional_id: &str) -> Result<Output> {
    let connector = format!("transactions `{transactional_id}`");
    Output::connect(
        &instance_settings(config),
        &connector,
        DELIVERY_TIMEOUT,
        None,
        Some(transactional_id),
    )
}

/// Before the job's tasks start: for each of the instance's source subtasks `sources`
/// (block, stage, subtask), aborts what the transactional id of its previous run (the
/// ledger's) left open, records a new id for this run, and initialises its producer.
///
/// A new id per run, rather than one id for every run: a broker aborts the dead run's open
/// transaction when the id is initialised again, and Kafka's consumers read on past it, but
/// on noida-db a `read_committed` consumer then skips the next transactions of that producer
/// id as if aborted too. With the ledger, the dead run's id is still known to fence.
pub(super) fn prepare(config: &InstanceConfig, sources: &[(usize, usize, usize)]) -> Result<()> {
    if sources.is_empty() {
        return Ok(());
    }
    let settings = instance_settings(config);
    let topic = ledger_topic(config);
    let connector = format!("exactly-once ledger `{topic}`");
    super::KafkaAdmin::with_settings(settings.clone())?.ensure_topic(&topic, 1)?;
    let ledger = read_ledger(&settings, &topic, &connector)?;
    let run = format!("{:08x}", uuid::Uuid::new_v4().as_u64_pair().0 as u32);
    let mut out = Output::connect(&settings, &connector, DELIVERY_TIMEOUT, Some(&topic), None)?;
    // Every id this instance's earlier runs wrote with (also of subtasks it no longer has, at
    // a lower parallelism): initialising one aborts what its dead run left open.
    let own = base_id(config, 0, 0, 0)?;
    let own = &own[..own.len() - "0-0-0".len()];
    let ours = |base: &str| {
        // `<own><block>-<stage>-<subtask>`, not another id's that starts with this one.
        base.strip_prefix(own).is_some_and(|rest| {
            let parts: Vec<&str> = rest.split('-').collect();
            parts.len() == 3 && parts.iter().all(|p| p.parse::<usize>().is_ok())
        })
    };
    for old in (ledger.iter())
        .filter(|(base, _)| ours(base))
        .map(|(_, id)| id)
    {
        drop(connect(config, old)?);
        tracing::debug!(transactional_id = %old, "the previous run's transactions fenced");
    }
    let mut ids = Vec::with_capacity(sources.len());
    for &(graph, stage, subtask) in sources {
        let base = base_id(config, graph, stage, subtask)?;
        let id = format!("{base}.{run}");
        out.send_to(
            &topic,
            Some(0),
            Some(base.as_bytes()),
            id.as_bytes(),
            NO_TIMESTAMP,
        )?;
        ids.push((base, id));
    }
    out.wait_for_acks()?;
    for (base, id) in ids {
        let out = connect(config, &id)?;
        begin(&out)?;
        tracing::debug!(transactional_id = %id, "exactly-once transactions initialised");
        let mut prepared = PREPARED.lock().unwrap_or_else(|e| e.into_inner());
        prepared.retain(|(b, _)| *b != base);
        prepared.push((base, out));
    }
    Ok(())
}

/// The ledger: the last transactional id recorded per base id.
fn read_ledger(
    settings: &ClientSettings,
    topic: &str,
    connector: &str,
) -> Result<HashMap<String, String>> {
    let mut ledger = HashMap::new();
    let limit = settings.connect_timeout + Duration::from_secs(10);
    super::read_own_topic(settings, topic, connector, "ledger", None, limit, |m| {
        if let (Some(k), Some(v)) = (m.key(), m.payload()) {
            ledger.insert(
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            );
        }
    })?;
    Ok(ledger)
}

impl SharedOrigin {
    /// The origin of subtask `key` of instance group `config`, created (its transactional
    /// producer connected, its transactions initialised) if it has none yet.
    /// `who` (a writer, a source) names itself in the error when the subtask has no
    /// transactions: it is no source subtask of the group.
    pub(super) fn of(key: SubtaskKey, config: &InstanceConfig, who: &str) -> Result<SharedOrigin> {
        let mut all = ORIGINS.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|(_, o)| o.strong_count() > 0);
        if let Some(origin) = (all.iter())
            .find(|(k, _)| *k == key)
            .and_then(|(_, o)| o.upgrade())
        {
            return Ok(SharedOrigin(origin));
        }
        let base = base_id(config, key.graph, key.stage, key.subtask)?;
        let prepared = {
            let mut prepared = PREPARED.lock().unwrap_or_else(|e| e.into_inner());
            (prepared.iter())
                .position(|(b, _)| *b == base)
                .map(|at| prepared.swap_remove(at).1)
        };
        let Some(out) = prepared else {
            return Err(connector_error(who, NOT_IN_A_SOURCE_CHAIN));
        };
        let origin = Arc::new(Mutex::new(Origin {
            out,
            claimed: false,
            writers: 0,
            dirty: false,
            last: None,
            last_commit: Instant::now(),
        }));
        all.push((key, Arc::downgrade(&origin)));
        Ok(SharedOrigin(origin))
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Origin> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Origin {
    /// The source of the subtask takes the origin: it commits its transactions.
    pub(super) fn claim(&mut self) {
        self.claimed = true;
    }

    /// A writer of the subtask's chain opened.
    pub(super) fn writer_opened(&mut self) {
        self.writers += 1;
    }

    /// Fails unless a source took the origin: `writer` is not in a Kafka source's chain.
    pub(super) fn check_claimed(&self, writer: &str) -> Result<()> {
        if self.claimed {
            return Ok(());
        }
        Err(connector_error(writer, NOT_IN_A_SOURCE_CHAIN))
    }

    /// Hands a record to the open transaction.
    pub(super) fn send_to(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: &[u8],
        ts: Timestamp,
    ) -> Result<()> {
        self.dirty = true;
        self.out.send_to(topic, partition, key, value, ts)
    }

    /// Serves delivery reports; fails on a record not delivered.
    pub(super) fn poll(&mut self) -> Result<()> {
        self.out.poll()
    }

    /// Whether a periodic commit is due: [`COMMIT_INTERVAL`] passed since the last, and
    /// `moved` (the source read rows) or records were sent since.
    pub(super) fn due(&self, moved: bool) -> bool {
        (moved || self.dirty) && self.last_commit.elapsed() >= COMMIT_INTERVAL
    }

    /// Commits the open transaction with `offsets` (the source's positions, in its group
    /// `group`) and begins the next. The records sent so far are in it.
    pub(super) fn commit(
        &mut self,
        offsets: &TopicPartitionList,
        group: Option<&ConsumerGroupMetadata>,
    ) -> Result<()> {
        let wait = self.out.wait();
        if offsets.count() > 0 {
            let group = group.ok_or_else(|| {
                connector_error(
                    &self.out.connector,
                    "cannot commit its positions: the consumer is no member of its group",
                )
            })?;
            self.out
                .producer
                .send_offsets_to_transaction(offsets, group, wait)
                .map_err(|e| self.failed("cannot add its positions to the transaction", e))?;
        } else if !self.dirty {
            self.last_commit = Instant::now();
            return Ok(());
        }
        (self.out.producer.commit_transaction(wait))
            .map_err(|e| self.failed("cannot commit the transaction", e))?;
        self.out.wait_for_acks()?;
        begin(&self.out)?;
        self.dirty = false;
        self.last_commit = Instant::now();
        tracing::trace!(connector = %self.out.connector, offsets = offsets.count(), "transaction committed");
        Ok(())
    }

    /// The source ended at `offsets` of its group `group`: the end record of its last writer
    /// commits them. Without writers, they are committed now.
    pub(super) fn source_ended(
        &mut self,
        offsets: TopicPartitionList,
        group: Option<ConsumerGroupMetadata>,
    ) -> Result<()> {
        if self.writers == 0 {
            return self.commit(&offsets, group.as_ref());
        }
        self.last = group.map(|g| (offsets, g));
        Ok(())
    }

    /// A writer wrote its end record: the last one commits the final transaction.
    pub(super) fn writer_ended(&mut self) -> Result<()> {
        self.writers = self.writers.saturating_sub(1);
        if self.writers > 0 {
            return Ok(());
        }
        match self.last.take() {
            Some((offsets, group)) => self.commit(&offsets, Some(&group)),
            None => self.commit(&TopicPartitionList::new(), None),
        }
    }

    /// The error of a failed transaction call: the job stops, and its restart resumes from
    /// the last commit. A fenced producer means another process took this transactional id.
    fn failed(&self, what: &str, e: rdkafka::error::KafkaError) -> Error {
        let fenced = e.to_string().to_ascii_lowercase().contains("fenced");
        connector_error(
            &self.out.connector,
            if fenced {
                format!("{what}: {e} (fenced: another process runs as this instance, with its --instance-id; this one stops)")
            } else {
                format!("{what}: {e} (the instance stops; started again it resumes from its last commit)")
            },
        )
    }
}

impl Drop for Origin {
    /// A job that failed aborts its open transaction: left open, it would hold back the
    /// `read_committed` readers of every partition it wrote to (its signs of life go to all)
    /// until the broker's transaction timeout.
    fn drop(&mut self) {
        if self.dirty {
            let _ = (self.out.producer).abort_transaction(Duration::from_secs(5));
        }
    }
}

fn begin(out: &Output) -> Result<()> {
    out.producer
        .begin_transaction()
        .map_err(|e| connector_error(&out.connector, format!("cannot begin a transaction: {e}")))
}
