//! Exactly-once across the instances of a group (`--processing-guarantee exactly-once`), the
//! way Kafka Streams' `exactly_once_v2` has it: what a subtask reads from Kafka and what it
//! writes from it commit together, in one Kafka transaction.
//!
//! **Origins.** An *origin* is a subtask that reads Kafka for the group: a Kafka source's
//! subtask, or a subtask of a stage fed by a repartition topic's reader. It owns one
//! transactional producer ([`Origin`]), which the connectors of the subtask that write to
//! Kafka share, finding it by their task's [`SubtaskKey`] (a reader's task has the key of the
//! stage subtask it feeds): the repartition writers at the end of its chain and exactly-once
//! `KafkaSink`s in it.
//!
//! - A source's task pushes each polled batch through its chain before it polls again, so
//!   every row the source polled has gone through the chain when the task reaches a *commit
//!   point* (`SourceReader::commit_point`, after a flush of every exchange of the chain).
//!   There the source sends its positions (after the last row it polled) to the
//!   transaction, with its consumer's group metadata, and commits.
//! - A reader runs on a thread of its own: at its commit points it sends the stage a held
//!   handover (`Handover::held`), which the stage answers once it flushed its chain into the
//!   transaction (with its keyed state, saved at the reader's positions with a checkpoint
//!   directory); the stage then takes no input until the reader wrote its state records into
//!   the transaction, committed it with its positions, and let it go on.
//!
//! So the repartition topics and the outputs get the records of exactly the rows the group's
//! committed offsets say were read. Readers read `read_committed`: an aborted transaction's
//! records are never read.
//!
//! **Outside Kafka.** A sink of the chain with transactions of its own (an exactly-once
//! `JdbcSink`: `jdbc::group`; a `FileSink`'s pending parts: `file::group`) prepares them
//! before the origin's commit and enlists them ([`Enlisted`]); that commit then carries a
//! *commit marker* ([`Marker`]) and commits them after the Kafka transaction: two-phase
//! commit, the Kafka transaction the coordinator.
//!
//! **When.** An origin commits every [`COMMIT_INTERVAL`] while it read rows or its writers
//! wrote (watermarks, signs of life); before the group takes its partitions away (it defers
//! librdkafka's unassign until its commit: the partitions' last rows go with it); before it
//! leaves the group (SIGTERM); and at its end (the last writer's or sink's end commits the
//! final transaction: a stage fires what it holds after its input ended).
//!
//! **Crashes.** Each origin subtask of an instance has a stable *base id*,
//! `<group>-<instance id>-eos-<block>-<stage>-<subtask>`, and each run of the instance writes
//! with `<base>.<run>`, recorded in the group's ledger topic `<group>-transactions` before
//! the job's tasks start ([`prepare`]). An instance started again with its `--instance-id`
//! (and the same plan and parallelism) first initialises the ids its dead self wrote with,
//! which fences their producers and aborts their open transactions, so that the readers read
//! on; then it reads on from the committed offsets (with the state saved there): no row is
//! lost, and none is written twice. (A new id per run, not one for every run: on noida-db,
//! the test broker, a `read_committed` consumer skips the transactions that follow an
//! aborted one of the same producer id as if they were aborted too.) A dead instance that
//! does not come back leaves its open transactions to the broker's transaction timeout
//! (`transaction.timeout.ms`, 60 s) on a Kafka broker; noida-db never aborts them.

use super::config::ClientSettings;
use super::connector_error;
use super::sink::Output;
use super::transactions::{marker_group, marker_offset, read_marker};
use flow_runtime::instances::InstanceConfig;
use flow_runtime::{Error, Result, SubtaskKey, Timestamp, NO_TIMESTAMP};
use rdkafka::consumer::{BaseConsumer, ConsumerGroupMetadata};
use rdkafka::message::Message;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// How often an origin commits while it reads rows (Kafka Streams commits every 100 ms under
/// exactly-once; rows become visible to the readers at the commits).
pub(super) const COMMIT_INTERVAL: Duration = Duration::from_millis(500);

/// Why a subtask has no transactions to write in (a writer's, or a source's).
const NOT_IN_A_SOURCE_CHAIN: &str = "exactly-once (--processing-guarantee): no transactions were prepared for this subtask: it is not a Kafka source of the group, nor in the chain of one or of a repartition topic's reader, whose transactions it would write in (an exchange between a source and a repartition writer is not supported yet)";

/// An origin's transactional producer, shared by the source and the writers of its chain.
pub(crate) struct Origin {
    out: Output,
    /// The instance brokers its transactions are on.
    brokers: String,
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
    /// Where its commit markers are.
    place: MarkerPlace,
    /// Its commit marker, read when a transaction outside Kafka is first enlisted.
    marker: Option<Marker>,
    /// Transactions prepared outside Kafka for the next commit ([`Enlisted`]).
    enlisted: Vec<Box<dyn Enlisted>>,
    /// A Kafka transaction committed and a transaction enlisted in it could not: the
    /// instance must stop (an abort cannot undo the commit).
    enlisted_failed: bool,
}

/// A transaction that a sink of an origin's chain prepared outside Kafka for the origin's
/// next commit (a `JdbcSink`'s, with PostgreSQL's `PREPARE TRANSACTION`; a `FileSink`'s
/// pending parts; two-phase commit with the Kafka transaction as coordinator). The origin
/// commits it once its Kafka transaction, which carries the commit marker that names it,
/// committed, and rolls it back when it aborts that transaction. An instance that dies
/// between the two leaves it prepared: the instance started again with its `--instance-id`
/// finds the marker ([`Leftovers`]) and finishes it the same way.
pub(crate) trait Enlisted: Send {
    /// The Kafka transaction committed: commit this one.
    ///
    /// # Errors
    /// It cannot be committed now (the job fails; its restart commits it).
    fn commit(&mut self) -> Result<()>;
    /// The Kafka transaction was aborted: roll this one back.
    ///
    /// # Errors
    /// It cannot be rolled back now (the job fails; its restart rolls it back).
    fn rollback(&mut self) -> Result<()>;
}

/// An origin's commit marker: the number of its last commit that carried transactions from
/// outside Kafka ([`Enlisted`]), kept as the committed offset of partition 0 of the group's
/// ledger topic in the consumer group `<transactional id>.commits` (one per run: a run's
/// marker is final once the run's producer is fenced), and committed in the transaction (as
/// the exactly-once `KafkaSink`'s marker: [`super::transactions`]).
struct Marker {
    _consumer: BaseConsumer,
    group: ConsumerGroupMetadata,
    committed: u64,
}

/// Where the commit markers of an origin's stage are ([`Marker`]).
struct MarkerPlace {
    /// The stage's stable name ([`stage_id`]).
    stage: String,
    /// The origin's subtask.
    subtask: usize,
    /// This run's suffix of its transactional ids (`<base>.<run>`).
    run: String,
    /// The group's ledger topic, whose partition 0 the markers are offsets of.
    ledger: String,
}

impl MarkerPlace {
    /// The consumer group of the marker of run `run` of subtask `subtask` of the stage:
    /// `<its transactional id>.commits`.
    fn group(&self, subtask: usize, run: &str) -> String {
        format!("{}-{subtask}.{run}.commits", self.stage)
    }
}

/// An [`Origin`] shared by the connectors of one subtask.
#[derive(Clone)]
pub(crate) struct SharedOrigin(Arc<Mutex<Origin>>);

/// The origins of running subtasks: each lives as long as its source or a writer holds it.
static ORIGINS: Mutex<Vec<(SubtaskKey, Weak<Mutex<Origin>>)>> = Mutex::new(Vec::new());

/// Transactional producers initialised before the job's tasks started ([`prepare`]), by
/// their subtask, for the origins to take; and the job runs of exactly-once groups, until
/// they end ([`forget`]).
static PREPARED: Mutex<Vec<Prepared>> = Mutex::new(Vec::new());
static RUNS: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// A transactional producer [`prepare`]d for an origin.
struct Prepared {
    subtask: SubtaskKey,
    /// A repartition reader commits its transactions (a source stage's Kafka source claims
    /// them when it opens: another source leaves them unclaimed).
    reader: bool,
    /// The instance brokers (a sink writes in the transactions only on them).
    brokers: String,
    /// Where its commit markers are.
    place: MarkerPlace,
    out: Output,
}

/// The stable name of source subtask `subtask` of stage `stage` of block `graph` of this
/// instance: `<group>-<instance id>-eos-<block>-<stage>-<subtask>`. A run writes with
/// `<base>.<run>`, recorded in the group's ledger ([`ledger_topic`]).
fn base_id(config: &InstanceConfig, graph: usize, stage: usize, subtask: usize) -> Result<String> {
    Ok(format!("{}-{subtask}", stage_id(config, graph, stage)?))
}

/// The stable name of stage `stage` of block `graph` of this instance, the [`base_id`] of its
/// subtasks without the subtask: `<group>-<instance id>-eos-<block>-<stage>`.
fn stage_id(config: &InstanceConfig, graph: usize, stage: usize) -> Result<String> {
    let Some(id) = &config.id else {
        return Err(Error::Config(format!(
            "instance group `{}`: exactly-once needs an --instance-id (its transactional ids are named after it, so that the instance started again aborts what its dead self left open)",
            config.group
        )));
    };
    Ok(format!("{}-{id}-eos-{graph}-{stage}", config.group))
}

/// The topic `<group>-transactions` (one partition, compacted): per base id, the
/// transactional id its latest run writes with (key the base id, value the transactional id).
fn ledger_topic(config: &InstanceConfig) -> String {
    format!("{}-transactions", config.group)
}

fn instance_settings(config: &InstanceConfig) -> ClientSettings {
    broker_settings(&config.brokers)
}

/// Client settings for the instance brokers `brokers`.
fn broker_settings(brokers: &str) -> ClientSettings {
    let mut settings = ClientSettings::new();
    settings.bootstrap_servers = brokers.to_owned();
    settings
}

/// A transactional producer for `transactional_id`, its transactions initialised (which
/// fences an older producer of the id and aborts its open transaction).
fn connect(config: &InstanceConfig, transactional_id: &str) -> Result<Output> {
    let connector = format!("transactions `{transactional_id}`");
    let mut settings = instance_settings(config);
    // A record may take as long to be acknowledged, and a commit to complete, as a
    // repartition writer's records may take (`--max-broker-downtime`); librdkafka wants the
    // transaction's timeout no shorter, and the broker aborts a transaction open longer.
    let downtime = config.max_broker_downtime();
    settings.properties.push((
        "transaction.timeout.ms".into(),
        transaction_timeout(downtime).as_millis().to_string(),
    ));
    Output::connect(
        &settings,
        &connector,
        downtime,
        None,
        Some(transactional_id),
    )
}

/// The `transaction.timeout.ms` of an instance's transactional producers: its records'
/// delivery timeout (`--max-broker-downtime`), then a commit interval and a margin, at least
/// Kafka's 60 s (65.5 s by default). A Kafka broker refuses more than its
/// `transaction.max.timeout.ms` (15 min by default).
fn transaction_timeout(max_broker_downtime: Duration) -> Duration {
    (max_broker_downtime + COMMIT_INTERVAL + Duration::from_secs(5)).max(Duration::from_secs(60))
}

/// Before the job's tasks start: for each of the instance's source subtasks `sources` and
/// subtasks of stages fed by repartition readers `readers` (block, stage, subtask), aborts
/// what the transactional id of its previous run (the ledger's) left open, records a new id
/// for this run, and initialises its producer.
///
/// A new id per run, rather than one id for every run: a broker aborts the dead run's open
/// transaction when the id is initialised again, and Kafka's consumers read on past it, but
/// on noida-db a `read_committed` consumer then skips the next transactions of that producer
/// id as if aborted too. With the ledger, the dead run's id is still known to fence.
pub(super) fn prepare(
    config: &InstanceConfig,
    run: u64,
    sources: &[(usize, usize, usize)],
    readers: &[(usize, usize, usize)],
) -> Result<()> {
    let all = (sources.iter().map(|s| (*s, false))).chain(readers.iter().map(|r| (*r, true)));
    let all: Vec<_> = all.collect();
    RUNS.lock().unwrap_or_else(|e| e.into_inner()).push(run);
    if all.is_empty() {
        return Ok(());
    }
    let settings = instance_settings(config);
    let topic = ledger_topic(config);
    let connector = format!("exactly-once ledger `{topic}`");
    // Compacted: an id must stay known to fence however long its instance was down.
    super::KafkaAdmin::with_settings(settings.clone())?.ensure_compacted_topic(&topic, 1)?;
    let ledger = read_ledger(&settings, &topic, &connector)?;
    let suffix = format!("{:08x}", uuid::Uuid::new_v4().as_u64_pair().0 as u32);
    let downtime = config.max_broker_downtime();
    let mut out = Output::connect(&settings, &connector, downtime, Some(&topic), None)?;
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
    let mut ids = Vec::with_capacity(all.len());
    for &((graph, stage, subtask), reader) in &all {
        let base = base_id(config, graph, stage, subtask)?;
        let id = format!("{base}.{suffix}");
        out.send_to(
            &topic,
            Some(0),
            Some(base.as_bytes()),
            id.as_bytes(),
            NO_TIMESTAMP,
        )?;
        ids.push(((graph, stage, subtask), reader, id));
    }
    out.wait_for_acks()?;
    for ((graph, stage, subtask), reader, id) in ids {
        let out = connect(config, &id)?;
        begin(&out)?;
        tracing::debug!(transactional_id = %id, "exactly-once transactions initialised");
        let subtask = SubtaskKey {
            run,
            graph,
            stage,
            subtask,
        };
        let place = MarkerPlace {
            stage: stage_id(config, graph, stage)?,
            subtask: subtask.subtask,
            run: suffix.clone(),
            ledger: topic.clone(),
        };
        let mut prepared = PREPARED.lock().unwrap_or_else(|e| e.into_inner());
        prepared.push(Prepared {
            subtask,
            reader,
            brokers: config.brokers.clone(),
            place,
            out,
        });
    }
    Ok(())
}

/// Job run `run` ended: its origins no task took are dropped (their transactions, empty,
/// with them), and it is no exactly-once run any more.
pub(super) fn forget(run: u64) {
    let left: Vec<Prepared> = (PREPARED.lock().unwrap_or_else(|e| e.into_inner()))
        .extract_if(.., |p| p.subtask.run == run)
        .collect();
    drop(left);
    RUNS.lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|r| *r != run);
}

/// Whether job run `run` is one of an exactly-once instance group.
pub(crate) fn is_exactly_once(run: u64) -> bool {
    RUNS.lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&run)
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
    /// The origin of subtask `key` (the transactions [`prepare`]d for it), created if it
    /// has none yet. `who` (a writer, a source, a reader) names itself in the error when the
    /// subtask has no transactions: it is no source subtask of the group, nor fed by a
    /// repartition reader.
    pub(super) fn of(key: SubtaskKey, who: &str) -> Result<SharedOrigin> {
        Self::find(key).ok_or_else(|| connector_error(who, NOT_IN_A_SOURCE_CHAIN))
    }

    /// The origin of subtask `key`, if it has transactions: in an exactly-once group, a
    /// source subtask or one fed by a repartition reader.
    pub(crate) fn find(key: SubtaskKey) -> Option<SharedOrigin> {
        let mut all = ORIGINS.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|(_, o)| o.strong_count() > 0);
        if let Some(origin) = (all.iter())
            .find(|(k, _)| *k == key)
            .and_then(|(_, o)| o.upgrade())
        {
            return Some(SharedOrigin(origin));
        }
        let Prepared {
            reader,
            brokers,
            place,
            out,
            ..
        } = {
            let mut prepared = PREPARED.lock().unwrap_or_else(|e| e.into_inner());
            let at = prepared.iter().position(|p| p.subtask == key)?;
            prepared.swap_remove(at)
        };
        let origin = Arc::new(Mutex::new(Origin {
            out,
            brokers,
            claimed: reader,
            writers: 0,
            dirty: false,
            last: None,
            last_commit: Instant::now(),
            place,
            marker: None,
            enlisted: Vec::new(),
            enlisted_failed: false,
        }));
        all.push((key, Arc::downgrade(&origin)));
        Some(SharedOrigin(origin))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Origin> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Origin {
    /// The source of the subtask takes the origin: it commits its transactions.
    pub(super) fn claim(&mut self) {
        self.claimed = true;
    }

    /// The brokers its transactions are on.
    pub(super) fn brokers(&self) -> &str {
        &self.brokers
    }

    /// A writer of the subtask's chain opened (a repartition writer, or an exactly-once
    /// `KafkaSink`): the end of the last one commits the final transaction.
    pub(crate) fn writer_opened(&mut self) {
        self.writers += 1;
    }

    /// Commits the records the open transaction holds, without positions: the hello of a
    /// writer that just opened ([`super::instances`]), before its task passes a row on.
    pub(super) fn commit_records(&mut self) -> Result<()> {
        self.commit(&TopicPartitionList::new(), None)
    }

    /// Fails unless a source took the origin: `writer` is not in a Kafka source's chain.
    pub(crate) fn check_claimed(&self, writer: &str) -> Result<()> {
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

    /// The number the next commit's marker will have: a sink names the transaction it
    /// prepares for that commit with it ([`Origin::enlist`]). Reads the marker first.
    ///
    /// # Errors
    /// The marker cannot be read.
    pub(crate) fn next_commit(&mut self) -> Result<u64> {
        if self.marker.is_none() {
            let place = &self.place;
            let (consumer, group, committed) =
                self.read_marker(&place.group(place.subtask, &place.run))?;
            self.marker = Some(Marker {
                _consumer: consumer,
                group,
                committed,
            });
        }
        Ok(self.marker.as_ref().map_or(1, |m| m.committed + 1))
    }

    /// [`Origin::next_commit`] for `writer`, a sink of the chain that prepares a transaction
    /// for it.
    ///
    /// # Errors
    /// No source took the origin (`writer` is not in a Kafka source's chain), or the marker
    /// cannot be read.
    pub(crate) fn writer_next_commit(&mut self, writer: &str) -> Result<u64> {
        self.check_claimed(writer)?;
        self.next_commit()
    }

    /// A consumer of the marker group `group`, its metadata, and the marker (0: none).
    fn read_marker(&self, group: &str) -> Result<(BaseConsumer, ConsumerGroupMetadata, u64)> {
        let connector = &self.out.connector;
        let settings = broker_settings(&self.brokers);
        let (consumer, metadata) = marker_group(&settings, connector, group)?;
        let marker = read_marker(&consumer, &self.place.ledger, connector, self.out.wait())?;
        Ok((consumer, metadata, marker))
    }

    /// Enlists a transaction prepared outside Kafka for the next commit, whose number
    /// ([`Origin::next_commit`]) it was named after: that commit carries the marker, then
    /// commits it.
    ///
    /// # Errors
    /// A commit with a marker came between: the transaction's name has a number the marker
    /// says was committed before it (a bug in flow).
    pub(crate) fn enlist(&mut self, commit: u64, prepared: Box<dyn Enlisted>) -> Result<()> {
        let next = self.next_commit()?;
        if next != commit {
            return Err(connector_error(
                &self.out.connector,
                format!("a transaction prepared for commit {commit} was enlisted at commit {next} (a bug in flow)"),
            ));
        }
        self.dirty = true;
        self.enlisted.push(prepared);
        Ok(())
    }

    /// The number of the last commit with a marker of run `run` of sibling `subtask` of this
    /// origin's stage (an earlier run's, maybe at another parallelism), and the marker's
    /// consumer group: the transactions prepared for a commit up to it committed in Kafka,
    /// and later ones never will (the earlier runs' producers were fenced before this run
    /// started: [`prepare`]).
    ///
    /// # Errors
    /// The marker cannot be read.
    fn committed_through(&self, subtask: usize, run: &str) -> Result<(u64, String)> {
        let group = self.place.group(subtask, run);
        let (_, _, marker) = self.read_marker(&group)?;
        Ok((marker, group))
    }

    /// A name for this origin's stage in this instance, for the names of transactions
    /// outside Kafka: 16 hex digits of a hash of `<group>-<instance id>-eos-<block>-<stage>`;
    /// and this run's (the suffix of its transactional id).
    pub(crate) fn stage_tag(&self) -> (String, String) {
        let tag = format!(
            "{:016x}",
            flow_runtime::hash::stable_hash(&self.place.stage)
        );
        (tag, self.place.run.clone())
    }

    /// Whether a Kafka transaction committed and a transaction enlisted in it could not: the
    /// error of that commit is no failed Kafka commit, and the instance must stop.
    pub(super) fn enlisted_failed(&self) -> bool {
        self.enlisted_failed
    }

    /// Commits the open transaction with `offsets` (the source's positions, in its group
    /// `group`) and begins the next. The records sent so far are in it, and the commit marker
    /// when transactions outside Kafka are enlisted, which are committed after it.
    pub(super) fn commit(
        &mut self,
        offsets: &TopicPartitionList,
        group: Option<&ConsumerGroupMetadata>,
    ) -> Result<()> {
        let wait = self.out.wait();
        self.enlisted_failed = false;
        if !self.enlisted.is_empty() {
            self.add_marker()?;
        }
        if offsets.count() > 0 {
            let group = group.ok_or_else(|| {
                connector_error(
                    &self.out.connector,
                    "cannot commit its positions: the consumer is no member of its group",
                )
            })?;
            if let Err(e) = (self.out.producer).send_offsets_to_transaction(offsets, group, wait) {
                // The transaction is in an error state: an abort must end it.
                self.dirty = true;
                return Err(self.failed("cannot add its positions to the transaction", e));
            }
        } else if !self.dirty {
            self.last_commit = Instant::now();
            return Ok(());
        }
        (self.out.producer.commit_transaction(wait))
            .map_err(|e| self.failed("cannot commit the transaction", e))?;
        // Committed: nothing to abort any more.
        self.dirty = false;
        self.last_commit = Instant::now();
        let enlisted = self.finish_enlisted(true);
        self.enlisted_failed = enlisted.is_err();
        self.out.wait_for_acks()?;
        begin(&self.out)?;
        tracing::trace!(connector = %self.out.connector, offsets = offsets.count(), "transaction committed");
        enlisted
    }

    /// Adds the commit marker, numbered one past the last, to the open transaction.
    fn add_marker(&mut self) -> Result<()> {
        self.next_commit()?;
        let marker = self.marker.as_ref().expect("read by next_commit");
        let mut offsets = TopicPartitionList::new();
        let at = Offset::Offset(marker_offset(marker.committed + 1));
        offsets
            .add_partition_offset(&self.place.ledger, 0, at)
            .map_err(|e| connector_error(&self.out.connector, format!("commit marker: {e}")))?;
        let wait = self.out.wait();
        if let Err(e) =
            (self.out.producer).send_offsets_to_transaction(&offsets, &marker.group, wait)
        {
            self.dirty = true;
            return Err(self.failed("cannot add its commit marker to the transaction", e));
        }
        Ok(())
    }

    /// The Kafka transaction committed (`committed`) or was aborted: so are the transactions
    /// enlisted for it. The first error, after trying each.
    fn finish_enlisted(&mut self, committed: bool) -> Result<()> {
        if committed {
            if let Some(m) = &mut self.marker {
                if !self.enlisted.is_empty() {
                    m.committed += 1;
                }
            }
        }
        let mut first = Ok(());
        for mut e in self.enlisted.drain(..) {
            let done = if committed { e.commit() } else { e.rollback() };
            if first.is_ok() {
                first = done;
            }
        }
        first
    }

    /// Aborts the open transaction (its records are never read) and begins the next: the
    /// partitions whose rows made them were given up without their commit.
    ///
    /// # Errors
    /// The abort, or the rollback of a transaction enlisted in it, failed. The caller must
    /// stop the instance then: the next commit has the number the aborted one had, and a
    /// transaction left prepared under that number would be committed with it when the
    /// instance starts again.
    pub(super) fn abort(&mut self) -> Result<()> {
        if self.dirty {
            (self.out.producer.abort_transaction(self.out.wait()))
                .map_err(|e| self.failed("cannot abort the transaction", e))?;
            begin(&self.out)?;
            self.dirty = false;
        }
        self.last_commit = Instant::now();
        self.finish_enlisted(false)
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
    pub(crate) fn writer_ended(&mut self) -> Result<()> {
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
    /// Its enlisted transactions are rolled back once the abort succeeded; else the
    /// instance's next run finishes them by the marker.
    fn drop(&mut self) {
        if self.dirty {
            let aborted = (self.out.producer).abort_transaction(Duration::from_secs(5));
            if aborted.is_ok() {
                if let Err(e) = self.finish_enlisted(false) {
                    tracing::warn!(connector = %self.out.connector, "{e}");
                }
            }
        }
    }
}

/// What became of the Kafka commits an instance's earlier runs prepared transactions outside
/// Kafka for ([`Enlisted`]), read from the markers of their runs and subtasks, each once: a
/// sink finds what its stage's earlier runs left prepared when it opens, and finishes each by
/// its [`Verdict`].
pub(crate) struct Leftovers {
    origin: SharedOrigin,
    markers: HashMap<(usize, String), (u64, String)>,
}

/// Whether a Kafka commit that a transaction outside Kafka was prepared for committed.
pub(crate) struct Verdict {
    /// `Some(true)`: it committed (commit the transaction); `Some(false)`: it never will (roll
    /// the transaction back); `None`: unknown, its marker is gone (consumer-group offsets
    /// expire after the broker's `offsets.retention.minutes`).
    pub(crate) committed: Option<bool>,
    /// The marker: the number of the run's last commit with one.
    pub(crate) marker: u64,
    /// The marker's consumer group.
    pub(crate) group: String,
}

impl Leftovers {
    pub(crate) fn new(origin: SharedOrigin) -> Leftovers {
        Leftovers {
            origin,
            markers: HashMap::new(),
        }
    }

    /// `<subtask>-<run>-<commit>` of a leftover's name (after the stage's tag): whose it is
    /// and the commit it was prepared for.
    pub(crate) fn parse(name: &str) -> Option<(usize, &str, u64)> {
        let (j, rest) = name.split_once('-')?;
        let (run, commit) = rest.split_once('-')?;
        let hex = !run.is_empty() && run.bytes().all(|b| b.is_ascii_hexdigit());
        hex.then_some(())?;
        Some((j.parse().ok()?, run, commit.parse().ok()?))
    }

    /// What became of commit `commit` of run `run` of subtask `subtask` of the stage.
    ///
    /// # Errors
    /// The marker cannot be read.
    pub(crate) fn verdict(&mut self, subtask: usize, run: &str, commit: u64) -> Result<Verdict> {
        let key = (subtask, run.to_owned());
        let (marker, group) = match self.markers.get(&key) {
            Some(m) => m.clone(),
            None => {
                let m = self.origin.lock().committed_through(subtask, run)?;
                self.markers.insert(key, m.clone());
                m
            }
        };
        // A marker of 0 for a commit after the first: commit `commit - 1` carried a marker,
        // which is gone.
        let committed = (marker > 0 || commit <= 1).then_some(commit <= marker);
        Ok(Verdict {
            committed,
            marker,
            group,
        })
    }
}

fn begin(out: &Output) -> Result<()> {
    out.producer
        .begin_transaction()
        .map_err(|e| connector_error(&out.connector, format!("cannot begin a transaction: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftover_names_give_their_subtask_run_and_commit() {
        assert_eq!(Leftovers::parse("3-0a1b2c3d-17"), Some((3, "0a1b2c3d", 17)));
        assert_eq!(Leftovers::parse("0-ffffffff-1"), Some((0, "ffffffff", 1)));
        assert_eq!(Leftovers::parse("3-17"), None);
        assert_eq!(Leftovers::parse("x-0a1b2c3d-17"), None);
        assert_eq!(Leftovers::parse("3-run-17"), None);
        assert_eq!(Leftovers::parse("3--17"), None);
        assert_eq!(Leftovers::parse("3-0a1b2c3d-17.0"), None);
    }

    #[test]
    fn the_transaction_timeout_outlasts_the_delivery_timeout() {
        let secs = |s| transaction_timeout(Duration::from_secs(s));
        assert_eq!(secs(15), Duration::from_secs(60));
        assert_eq!(secs(60), Duration::from_millis(65_500));
        assert_eq!(secs(120), Duration::from_millis(125_500));
    }
}
