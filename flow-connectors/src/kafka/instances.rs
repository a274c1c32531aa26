//! Kafka as the transport between instances of a job (`--instance-group`): the repartition
//! topics of the hash edges that cross instances. See [`flow_runtime::instances`].
//!
//! **Records.** Every upstream subtask of an edge is a *writer* with a random id. Its records
//! carry a 16-byte key (writer id, plan fingerprint) and a value whose first byte says what
//! it is: a batch of rows for the partition's key groups (the edge's [`RowCodec`]), the
//! writer's watermark, its idleness, its end, or its hello (the plan as text, written to
//! every partition when the writer opens and acknowledged before its source reads, so that a
//! reader knows every writer of a group that formed before it sees any rows, and can say how
//! another plan differs).
//!
//! **Exactly-once** (`--processing-guarantee exactly-once`): a writer at the end of a Kafka
//! source's chain writes through the source subtask's transactions, which commit the source's
//! positions with the records ([`super::origin`]); readers read `read_committed`.
//!
//! **Readers.** Each downstream subtask reads the partitions the consumer group
//! (`<topic>`) assigns it. A partition's watermark is the minimum over the writers it heard
//! from that are neither idle nor ended; the reader's is the minimum over its partitions. It
//! ends when every writer it heard from, on every partition it has, ended.
//!
//! **Handing a partition over.** A reader that gives a partition up (revoked in a rebalance,
//! or at its end) commits its position and then writes a *state* record to the partition:
//! what it knew of each writer there (watermark, idle, ended). The next reader starts at the
//! commit, so no row is read twice, and the state record tells it what the records before
//! the commit said — above all which writers already ended, which it could not learn
//! otherwise. The record is in the log rather than in the commit's metadata, which not every
//! broker keeps.
//!
//! **State follows partitions** (with `--checkpoint-dir`). Before it commits the positions
//! of partitions it gives up, a reader asks the stage it feeds to release its keyed state
//! (in order with the rows: the state is what the rows before the positions made it), and
//! saves each partition's share at its position ([`PartitionStore`]); the stage drops it. A
//! reader that gets a partition with a committed position adopts the share saved at that
//! position before passing a row of it on. Eager rebalancing takes every partition from
//! every reader, so each stage starts afresh at a rebalance with the state (and the lowest
//! watermark) of exactly the partitions it reads now.
//!
//! **Ending together.** A reader whose partitions all ended does not leave the group yet: a
//! member that leaves makes the group deal the partitions anew, and a partition still being
//! read would move, rows and all, to an instance that holds none of its keys' state. It
//! writes a *done* record to every partition instead (the partitions it finished, and the
//! writers it knew, which tell this run from an earlier one), and ends once the done records
//! it read cover the whole topic, or a state record says its writer saw that.
//!
//! **Leaving** ([`flow_runtime::instances::leave_requested`], SIGTERM). A reader hands all its
//! partitions over as in a rebalance and ends its stage's input; the instance's sources leave
//! their group and end only once the others took their partitions over, so that the writers'
//! watermarks hold the readers back until then (see `KafkaSource`'s `Leaving`).

use super::config::ClientSettings;
use super::downtime::Downtime;
use super::leave_turns::{self, Rebalances};
use super::origin::SharedOrigin;
use super::sink::Output;
use super::splits::{self, SplitLedger};
use super::{connector_error, KafkaAdmin};
use flow_runtime::instances::{
    await_answer, Answer, Awaited, Handover, Inbox, InstanceConfig, Membership, Message,
    PartitionStore, Released, RemoteEdge, RemoteOut, Resume, SourceSplits, SplitState,
    SplitWatermark, Transport,
};
use flow_runtime::instances::{source_splits, split_name};
use flow_runtime::{
    Error, Result, RuntimeContext, SubtaskKey, TaskMetrics, Timestamp, NO_TIMESTAMP,
};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message as _;
use rdkafka::{ClientContext, TopicPartitionList};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a reader that is caught up commits the positions that moved.
const CAUGHT_UP_COMMIT: Duration = Duration::from_secs(1);

/// How often an at-least-once reader commits while records keep coming: each commit waits
/// for the stage's output to be durable and saves its state (with a checkpoint directory),
/// a cost that grows with the state.
const LOADED_COMMIT: Duration = Duration::from_secs(5);

/// The kinds of records on a repartition topic (the value's first byte).
const ROWS: u8 = 0;
const WATERMARK: u8 = 1;
const IDLE: u8 = 2;
const ACTIVE: u8 = 3;
const END: u8 = 4;
const HELLO: u8 = 5;
/// A reader that gave the partition up: whether the whole topic ended (a byte), then what it
/// knew of each writer there.
const STATE: u8 = 6;
/// A reader whose partitions all ended: the writers it knew, then those partitions.
const DONE: u8 = 7;
/// A writer's sign of life, every [`ALIVE_EVERY`] to every partition: a writer that others
/// outlive by [`SILENCE`] without one is taken as gone (its instance crashed) and no longer
/// waited for.
const ALIVE: u8 = 8;
/// Rows of a two-input operator's second input (its first input's are [`ROWS`]): both
/// inputs share the operator's topic.
const SECOND_ROWS: u8 = 9;
/// What a writer's source knows of each partition (split) of its Kafka topics it reads
/// ([`splits`](super::splits)), when that changed: before its idleness and end, and between
/// watermarks (a [`WATERMARK`] record carries them too when they changed with it).
const SPLITS: u8 = 10;

/// How often a writer writes an [`ALIVE`] record.
const ALIVE_EVERY: Duration = Duration::from_secs(5);
/// How long a writer may stay silent (in the record timestamps, while other writers write)
/// before readers take it as gone.
const SILENCE: Timestamp = 20_000;
/// A jump of the newest record time by more than this is a span in which no writer wrote
/// (each writes every [`ALIVE_EVERY`]): a broker outage.
const GAP: Timestamp = 2 * ALIVE_EVERY.as_millis() as Timestamp;

/// A batch encodes into records of at most about this many bytes (Kafka's default limit is
/// 1 MB).
const MAX_RECORD_BYTES: usize = 512 << 10;

/// Kafka's [`Transport`]: repartition topics on the group's brokers.
#[derive(Clone, Copy, Debug, Default)]
pub struct KafkaTransport;

fn settings(edge: &RemoteEdge) -> ClientSettings {
    let mut s = ClientSettings::new();
    s.bootstrap_servers = edge.config.brokers.clone();
    s
}

/// How long a repartition record may take to be acknowledged: as long as a reader rides out
/// a broker outage (`--max-broker-downtime`), so that the writers ride it out too.
fn delivery_timeout(edge: &RemoteEdge) -> Duration {
    edge.config.max_broker_downtime()
}

fn connector(edge: &RemoteEdge) -> String {
    format!(
        "repartition topic `{}` (into `{}`)",
        edge.topic, edge.operator
    )
}

/// How often a member renews its entry in the group's registry, and how long an entry
/// counts as a live member.
const HEARTBEAT: Duration = Duration::from_secs(5);
const LEASE: Duration = Duration::from_secs(15);

fn now_ms() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Timestamp)
}

/// A live member's entry in the registry topic `<group>-instances`: key the member's id,
/// value its plan's fingerprint, its start (ms) and its plan.
struct Entry {
    fingerprint: u64,
    started: Timestamp,
    plan: String,
}

fn entry_value(fingerprint: u64, started: Timestamp, plan: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + plan.len());
    v.extend_from_slice(&fingerprint.to_be_bytes());
    v.extend_from_slice(&started.to_be_bytes());
    v.extend_from_slice(plan.as_bytes());
    v
}

fn parse_entry(value: &[u8]) -> Option<Entry> {
    let fingerprint = u64::from_be_bytes(value.get(..8)?.try_into().ok()?);
    let started = Timestamp::from_be_bytes(value.get(8..16)?.try_into().ok()?);
    let plan = String::from_utf8_lossy(value.get(16..)?).into_owned();
    Some(Entry {
        fingerprint,
        started,
        plan,
    })
}

/// The member entries written to `topic` within the last [`LEASE`], latest per member.
fn live_members(
    settings: &ClientSettings,
    topic: &str,
    connector: &str,
) -> Result<HashMap<u64, Entry>> {
    let lease = LEASE.as_millis() as i64;
    let mut members = HashMap::new();
    let since = Some(now_ms() - lease);
    let wait = settings.connect_timeout;
    super::read_own_topic(settings, topic, connector, "registry", since, wait, |m| {
        let fresh = (m.timestamp().to_millis()).is_some_and(|t| t >= now_ms() - lease);
        let id = m
            .key()
            .and_then(|k| <[u8; 8]>::try_from(k).ok())
            .map(u64::from_be_bytes);
        if let (true, Some(id), Some(entry)) = (fresh, id, m.payload().and_then(parse_entry)) {
            members.insert(id, entry);
        }
    })?;
    Ok(members)
}

/// This instance's entry in its group's registry, renewed every [`HEARTBEAT`] by a thread
/// until dropped.
struct Member {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
    }
}

impl Transport for KafkaTransport {
    /// Writes this instance's entry to `<group>-instances`, then reads the entries of the last
    /// [`LEASE`]: a live member of another plan that started first refuses this one.
    fn join(&self, config: &InstanceConfig, fingerprint: u64, plan: &str) -> Result<Membership> {
        let mut settings = ClientSettings::new();
        settings.bootstrap_servers = config.brokers.clone();
        settings.validate("--instance-brokers")?;
        let topic = format!("{}-instances", config.group);
        let connector = format!("instance group `{}`", config.group);
        KafkaAdmin::with_settings(settings.clone())?.ensure_topic(&topic, 1)?;
        tracing::debug!(registry = %topic, "instance registry topic ready");
        let downtime = config.max_broker_downtime();
        let mut out = Output::connect(&settings, &connector, downtime, Some(&topic), None)?;
        let id = uuid::Uuid::new_v4().as_u64_pair().0;
        let started = now_ms();
        let value = entry_value(fingerprint, started, plan);
        out.send_to(
            &topic,
            Some(0),
            Some(&id.to_be_bytes()),
            &value,
            NO_TIMESTAMP,
        )?;
        out.wait_for_acks()?;
        tracing::debug!(registry = %topic, "instance entry written");
        let members = live_members(&settings, &topic, &connector)?;
        tracing::debug!(registry = %topic, live = members.len(), "instance registry read");
        for (other, e) in &members {
            if e.fingerprint != fingerprint && (e.started, *other) < (started, id) {
                return Err(connector_error(
                    &connector,
                    format!(
                        "a running instance of the group (started {} ms before this one) runs another plan (fingerprint {:016x}, this one {fingerprint:016x}): {}. Every instance of a group must run the same job: stop the group's instances before starting another plan (an instance counts as running until {} s after its last heartbeat)",
                        started - e.started,
                        e.fingerprint,
                        plan_difference(plan, &e.plan),
                        LEASE.as_secs()
                    ),
                ));
            }
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let heartbeat = std::thread::Builder::new()
            .name("flow-instance-heartbeat".into())
            .spawn(move || {
                let mut last = std::time::Instant::now();
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    if last.elapsed() >= HEARTBEAT {
                        last = std::time::Instant::now();
                        let sent = out.send_to(
                            &topic,
                            Some(0),
                            Some(&id.to_be_bytes()),
                            &value,
                            NO_TIMESTAMP,
                        );
                        if let Err(e) = sent.and_then(|()| out.poll()) {
                            tracing::warn!(group = %topic, error = %e, "instance heartbeat failed");
                        }
                    }
                }
                let _ = out.wait_for_acks();
            })
            .map_err(|e| connector_error(&connector, format!("cannot start the heartbeat: {e}")))?;
        Ok(Box::new(Member {
            stop,
            heartbeat: Some(heartbeat),
        }))
    }

    fn prepare(&self, edge: &RemoteEdge) -> Result<()> {
        let settings = settings(edge);
        settings.validate("--instance-brokers")?;
        let want = edge.config.partitions;
        let admin = KafkaAdmin::with_settings(settings.clone())?;
        admin.ensure_topic(&edge.topic, want as i32)?;
        tracing::debug!(topic = %edge.topic, "repartition topic ready");
        let consumer: BaseConsumer = settings.client_config(&[]).create().map_err(|e| {
            connector_error(connector(edge), format!("cannot create a client: {e}"))
        })?;
        let metadata = super::fetch_metadata(
            consumer.client(),
            &settings,
            &connector(edge),
            Some(&edge.topic),
        )?;
        let have = super::topic_partitions(&metadata, &edge.topic, &connector(edge), "")?.len();
        if have != want {
            return Err(connector_error(
                connector(edge),
                format!(
                    "the topic has {have} partitions and this instance routes keys to {want} (--repartition-partitions): every instance of group `{}` must use the topic's number",
                    edge.config.group
                ),
            ));
        }
        Ok(())
    }

    /// Exactly-once: initialises the transactions of the instance's source subtasks and
    /// reader-fed stage subtasks now, before its readers read, so that a dead predecessor's open transactions are aborted
    /// first (a reader waiting at such a transaction when it is aborted may not read on: seen
    /// with noida-db).
    fn prepare_origins(
        &self,
        config: &InstanceConfig,
        run: u64,
        sources: &[(usize, usize, usize)],
        readers: &[(usize, usize, usize)],
    ) -> Result<()> {
        if config.exactly_once {
            super::origin::prepare(config, run, sources, readers)?;
        }
        Ok(())
    }

    fn end_run(&self, run: u64) {
        super::origin::forget(run);
        LOCAL_WRITERS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|w| w.run != run);
    }

    fn output(&self, edge: &RemoteEdge, _subtask: usize) -> Result<Box<dyn RemoteOut>> {
        Ok(Box::new(Writer {
            edge: edge.clone(),
            out: None,
            key: [0; 16],
            buf: Vec::new(),
            beat: Instant::now(),
            checked: false,
            splits: None,
            written: Vec::new(),
        }))
    }

    fn read(
        &self,
        edge: &RemoteEdge,
        subtask: usize,
        ctx: &RuntimeContext,
        to: Inbox,
    ) -> Result<TaskMetrics> {
        Reader::open(edge, subtask, &to, ctx)?.run(ctx, to)
    }
}

/// The repartition writers of this process, by job run and topic: a reader's partitions end
/// only once its own instance's writers ended there too. They write to every partition, and
/// without them an earlier run's writers' ends, read before this run's writers said hello
/// (an instance that left with SIGTERM and was started again), would end the partitions.
static LOCAL_WRITERS: Mutex<Vec<LocalWriter>> = Mutex::new(Vec::new());

struct LocalWriter {
    run: u64,
    topic: String,
    fingerprint: u64,
    id: u64,
}

/// The writers of this process's job run `run` to `edge`'s topic (of its plan).
fn local_writers(run: u64, edge: &RemoteEdge) -> Vec<u64> {
    let all = LOCAL_WRITERS.lock().unwrap_or_else(|e| e.into_inner());
    (all.iter())
        .filter(|w| w.run == run && w.topic == edge.topic && w.fingerprint == edge.fingerprint)
        .map(|w| w.id)
        .collect()
}

/// One upstream subtask's writer of a repartition topic.
struct Writer {
    edge: RemoteEdge,
    out: Option<WriterOut>,
    /// Writer id and plan fingerprint.
    key: [u8; 16],
    buf: Vec<u8>,
    /// When it last wrote an [`ALIVE`] record.
    beat: Instant,
    /// Exactly-once: whether it checked that a source commits its origin's transactions.
    checked: bool,
    /// The source splits of its task's chain, and the version it wrote last: a writer in
    /// a Kafka source's chain with event time, or in the chain of a stage a repartition
    /// reader feeds (its partitions).
    splits: Option<(Arc<SourceSplits>, u64)>,
    /// The splits as it wrote them last.
    written: Vec<SplitWatermark>,
}

/// Where a writer's records go.
enum WriterOut {
    /// Its own idempotent producer (at-least-once).
    Own(Output),
    /// The transactions of the source whose chain it ends (`--processing-guarantee
    /// exactly-once`).
    Origin(SharedOrigin),
}

impl Writer {
    fn send(&mut self, partition: usize, value: &[u8]) -> Result<()> {
        let (topic, key) = (&self.edge.topic, Some(&self.key[..]));
        let partition = Some(partition as i32);
        match self.out.as_mut().expect("opened before it writes") {
            WriterOut::Own(out) => out.send_to(topic, partition, key, value, NO_TIMESTAMP),
            WriterOut::Origin(origin) => {
                (origin.lock()).send_to(topic, partition, key, value, NO_TIMESTAMP)
            }
        }
    }

    /// `value` to every partition.
    fn send_to_every_partition(&mut self, value: &[u8]) -> Result<()> {
        for p in 0..self.edge.config.partitions {
            self.send(p, value)?;
        }
        Ok(())
    }

    /// Writes its source's splits to every partition ([`SPLITS`]) when they changed, or
    /// `always` (with its signs of life: a reader that took a stale word of another writer
    /// on one of them hears this one's again), or, as it `ends`, those its source still
    /// reads, finished. After the rows before them.
    fn write_splits(&mut self, always: bool, ends: bool) -> Result<()> {
        let Some(splits) = self.changed_splits(always || ends, ends) else {
            return Ok(());
        };
        let mut value = vec![SPLITS];
        splits::encode(&splits, &mut value);
        self.send_to_every_partition(&value)
    }

    /// What to write of its source's splits ([`splits::to_write`]): when they changed since
    /// it wrote them last, or `always`.
    fn changed_splits(&mut self, always: bool, ends: bool) -> Option<Vec<SplitWatermark>> {
        let (from, version) = self.splits.as_mut()?;
        let now = match from.changed_since(*version) {
            Some((changed, now)) => {
                *version = changed;
                now
            }
            None if always => from.current()?,
            None => return None,
        };
        let splits = splits::to_write(&self.written, &now, ends);
        self.written = now;
        Some(splits).filter(|s| !s.is_empty())
    }
}

impl RemoteOut for Writer {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<()> {
        // Known to this instance's readers before it connects (a failed connect fails the
        // job): they count it on every partition.
        let id = uuid::Uuid::new_v4().as_u64_pair().0;
        LOCAL_WRITERS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(LocalWriter {
                run: ctx.subtask_key().run,
                topic: self.edge.topic.clone(),
                fingerprint: self.edge.fingerprint,
                id,
            });
        self.out = Some(if self.edge.config.exactly_once {
            let who = connector(&self.edge);
            let origin = SharedOrigin::of(ctx.subtask_key(), &who)?;
            origin.lock().writer_opened();
            WriterOut::Origin(origin)
        } else {
            WriterOut::Own(Output::connect(
                &settings(&self.edge),
                &connector(&self.edge),
                delivery_timeout(&self.edge),
                Some(&self.edge.topic),
                None,
            )?)
        });
        self.key[..8].copy_from_slice(&id.to_be_bytes());
        self.key[8..].copy_from_slice(&self.edge.fingerprint.to_be_bytes());
        self.splits = source_splits(ctx.subtask_key()).map(|s| (s, 0));
        let mut hello = vec![HELLO];
        hello.extend_from_slice(self.edge.plan.as_bytes());
        self.send_to_every_partition(&hello)?;
        // In the topic before its task passes a row on (a Kafka source subscribes only once
        // its chain opened; a stage fed by a reader takes rows only once it opened): a
        // reader learns of a writer from its hello, and a writer it does not know of holds
        // nothing back. Without this wait a slow producer's hello could follow
        // another instance's rows and watermarks, which would pass this writer's first rows:
        // late, and dropped.
        match self.out.as_mut().expect("opened above") {
            WriterOut::Own(out) => out.wait_for_acks(),
            WriterOut::Origin(origin) => origin.lock().commit_records(),
        }
    }

    fn rows(&mut self, partition: usize, rows: flow_runtime::instances::Rows) -> Result<()> {
        let mut chunks = Vec::new();
        let kind = if self.edge.input == 0 {
            ROWS
        } else {
            SECOND_ROWS
        };
        (self.edge.codecs[self.edge.input].encode)(
            rows,
            MAX_RECORD_BYTES,
            &mut |bytes: &[u8]| {
                let mut value = Vec::with_capacity(bytes.len() + 1);
                value.push(kind);
                value.extend_from_slice(bytes);
                chunks.push(value);
            },
        )?;
        for value in chunks {
            self.send(partition, &value)?;
        }
        Ok(())
    }

    fn event(&mut self, message: &Message) -> Result<()> {
        if let Message::Idle(_) | Message::End = message {
            let ends = matches!(message, Message::End);
            self.write_splits(ends, ends)?;
        }
        self.buf.clear();
        match message {
            Message::Watermark(w) => {
                // The splits travel with it when they changed (mostly: the source publishes
                // them as it emits it).
                let splits = self.changed_splits(false, false);
                self.buf.push(WATERMARK);
                self.buf.extend_from_slice(&w.to_be_bytes());
                if let Some(splits) = splits {
                    splits::encode(&splits, &mut self.buf);
                }
            }
            Message::Idle(true) => self.buf.push(IDLE),
            Message::Idle(false) => self.buf.push(ACTIVE),
            Message::End => self.buf.push(END),
            Message::Barrier(_) => {
                return Err(Error::Config(format!(
                    "{}: checkpoints of an instance group are not supported yet",
                    connector(&self.edge)
                )))
            }
            Message::Rows(_) | Message::SecondRows(_) => unreachable!("rows go through `rows`"),
            Message::Handover(_) => unreachable!("only readers send handovers, downstream"),
            Message::Many(_) => unreachable!("an exchange sends a repartition writer each message"),
        }
        let value = std::mem::take(&mut self.buf);
        let sent = self.send_to_every_partition(&value);
        self.buf = value;
        sent?;
        if matches!(message, Message::End) {
            // Everything this writer wrote is acknowledged (committed) before its task ends.
            match self.out.as_mut().expect("opened before it writes") {
                WriterOut::Own(out) => out.wait_for_acks()?,
                WriterOut::Origin(origin) => origin.lock().writer_ended()?,
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if let (Some(WriterOut::Origin(origin)), false) = (&self.out, self.checked) {
            origin.lock().check_claimed(&connector(&self.edge))?;
            self.checked = true;
        }
        if self.out.is_none() {
            return Ok(());
        }
        let beat = self.beat.elapsed() >= ALIVE_EVERY;
        if beat {
            self.beat = Instant::now();
            self.send_to_every_partition(&[ALIVE])?;
        }
        // A split's own watermark may move on while the writer's does not.
        self.write_splits(beat, false)?;
        match self.out.as_mut().expect("checked above") {
            WriterOut::Own(out) => out.poll(),
            WriterOut::Origin(origin) => origin.lock().poll(),
        }
    }

    /// At least once, waits for the broker's acknowledgements; exactly-once, the records
    /// are in the transaction its source or reader commits next.
    fn durable(&mut self) -> Result<()> {
        match &mut self.out {
            Some(WriterOut::Own(out)) => out.wait_for_acks(),
            Some(WriterOut::Origin(origin)) => origin.lock().poll(),
            None => Ok(()),
        }
    }
}

/// What a reader knows of one writer on one partition.
#[derive(Clone, Copy, Debug)]
struct WriterState {
    watermark: Timestamp,
    idle: bool,
    ended: bool,
}

impl WriterState {
    /// A writer not yet heard from on a partition: it holds the partition back.
    const NEW: WriterState = WriterState {
        watermark: Timestamp::MIN,
        idle: false,
        ended: false,
    };
}

impl WriterState {
    /// One entry of a [`STATE`] record: writer id, watermark, flags (1 idle, 2 ended).
    const ENTRY: usize = 17;

    fn encode(&self, writer: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(&writer.to_be_bytes());
        out.extend_from_slice(&self.watermark.to_be_bytes());
        out.push(u8::from(self.idle) | (u8::from(self.ended) << 1));
    }

    fn decode(entry: &[u8]) -> (u64, WriterState) {
        let writer = u64::from_be_bytes(entry[..8].try_into().expect("8 bytes"));
        let watermark = Timestamp::from_be_bytes(entry[8..16].try_into().expect("8 bytes"));
        let flags = entry[16];
        let state = WriterState {
            watermark,
            idle: flags & 1 != 0,
            ended: flags & 2 != 0,
        };
        (writer, state)
    }
}

/// The reader's consumer context: when the group takes partitions away, it saves the
/// stage's state of them (with a [`PartitionStore`]) and commits the reader's position on
/// them before they go (the next reader starts there), and leaves their state records to the
/// reader, which writes them after the poll.
struct ReaderContext {
    /// Partitions given up since the reader last looked, and how that went.
    revoked: Mutex<Revoked>,
    /// A rebalance happened since the reader last looked: its assignment may have changed.
    /// Only then does it ask librdkafka (a lock and a copy of the list), not per record.
    rebalanced: AtomicBool,
    /// The reader's job: `None` once the consumer outlives the reader ([`GroupMember`]).
    job: Mutex<Option<JobLink>>,
    /// The reader is gone (its end committed what it read; a failed one commits nothing): the
    /// consumer's close revokes its partitions without a handover.
    closed: AtomicBool,
    /// The repartition topic.
    topic: String,
    /// Its consumer group.
    group: String,
    /// Every partition the reader has ended: its stage keeps its keys' state to fire it at
    /// its end, and no longer saves or hands any over.
    finished: AtomicBool,
    /// When the group last took partitions away and dealt them (a reader leaving the group
    /// waits for it to re-form after a sibling's leave).
    rebalances: Rebalances,
    /// Exactly-once: the group took the partitions away, and the unassign waits for the
    /// reader's commit of them ([`Reader::give_up_revoked`]).
    exactly_once: bool,
    revoke_pending: AtomicBool,
    /// The group's committed positions of the partitions the last assignment dealt the
    /// reader, read as they were assigned ([`ReaderContext::start_at_commits`]), or why they
    /// could not be: the reader adopts the state saved there, and fetches from there.
    dealt_at: Mutex<Option<Commits>>,
    /// The partitions as the reader last sent them to the stage ([`Handover::Splits`]).
    sent_splits: Mutex<Vec<SplitWatermark>>,
}

/// What ties a reader's consumer to its job. A consumer that stays in the group after its
/// reader ended ([`GroupMember`]) drops it: it must not keep the job's stage, state store
/// (whose directory goes when the last reference does) or checkpoints alive.
struct JobLink {
    /// The reader's task: a handover stops waiting for the stage when the job is cancelled
    /// (the stage failed, or another task did).
    task: RuntimeContext,
    /// The stage the reader feeds.
    stage: Inbox,
    /// With a checkpoint directory: where partitions' state is kept.
    store: Option<PartitionStore>,
}

impl ClientContext for ReaderContext {}

impl ReaderContext {
    /// Sets the start of each partition of the assignment `tpl` to the group's committed
    /// position, read here once (the beginning where none is): the state the reader adopts
    /// is the one saved there ([`Reader::adopt`]). Were librdkafka to read the commits again
    /// for its fetch, a commit landing in between (an old owner's, late) would make the
    /// reader read on from one position with the state of another: rows lost or counted
    /// twice. A commit that cannot be read is the reader's error, at its next look at its
    /// assignment.
    fn start_at_commits(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        if tpl.count() == 0 {
            *self.dealt_at.lock().expect("not poisoned") = Some(Ok(Vec::new()));
            return;
        }
        let dealt = read_commits(consumer, tpl).map(|mut dealt| {
            let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            for p in partitions {
                // One without a commit starts at its beginning (as `auto.offset.reset`), not
                // at a commit librdkafka would read later.
                let start = (dealt.iter().find(|&&(d, _)| d == p))
                    .map_or(rdkafka::Offset::Beginning, |&(_, o)| {
                        rdkafka::Offset::Offset(o)
                    });
                if let Err(e) = tpl.set_partition_offset(&self.topic, p, start) {
                    // (Not seen: the partition is in the list.) Its state is not adopted.
                    tracing::warn!(connector = %self.topic, partition = p, "{e}");
                    dealt.retain(|&(d, _)| d != p);
                }
            }
            dealt
        });
        *self.dealt_at.lock().expect("not poisoned") = Some(dealt);
    }
}

/// Committed positions (partition, offset), or why they could not be read.
type Commits = std::result::Result<Vec<(i32, i64)>, String>;

/// The group's committed positions of `partitions` (those that have one).
fn read_commits(
    consumer: &BaseConsumer<ReaderContext>,
    partitions: &TopicPartitionList,
) -> Commits {
    let committed = consumer
        .committed_offsets(partitions.clone(), Duration::from_secs(10))
        .map_err(|e| format!("cannot read committed offsets: {e}"))?;
    let mut at = Vec::new();
    for e in committed.elements() {
        e.error().map_err(|err| {
            format!(
                "cannot read the committed offset of partition {}: {err}",
                e.partition()
            )
        })?;
        if let rdkafka::Offset::Offset(o) = e.offset() {
            at.push((e.partition(), o));
        }
    }
    Ok(at)
}

impl ConsumerContext for ReaderContext {
    /// librdkafka's rebalance, but that an exactly-once reader defers the unassign of revoked
    /// partitions until it committed them (librdkafka pauses them meanwhile; the group's
    /// rebalance waits for it): their state records and the stage's records of their rows
    /// go into the transaction that commits their positions.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: rdkafka::types::RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let revoke = err == rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS;
        if revoke && self.exactly_once && !self.closed.load(Ordering::Acquire) {
            self.revoke_pending.store(true, Ordering::Release);
            return;
        }
        if err == rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
            self.start_at_commits(consumer, tpl);
        }
        super::apply_rebalance(self, consumer, err, tpl, &self.topic);
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let mut revoked = self.revoked.lock().expect("not poisoned");
        let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
        give_splits_up(consumer);
        // A state that could not be saved keeps the old commit: the next reader starts from
        // the state saved there (this reader's job fails). Once every partition it had
        // ended, the stage keeps its state and fires it at its own end: nothing moves.
        let state = (!self.finished.load(Ordering::Acquire)).then_some(StateAction::Release);
        match save_and_commit(consumer, &partitions, state) {
            Ok(at) => {
                tracing::info!(connector = %self.topic, positions = ?at, "partitions given up at a rebalance: positions committed, state saved there");
                revoked.partitions.extend(partitions);
            }
            Err(HandoverError::Commit(e)) => {
                revoked.uncommitted.get_or_insert(e);
                revoked.lost.extend(partitions);
            }
            Err(HandoverError::Other(e)) => {
                revoked.failed.get_or_insert(e);
                revoked.partitions.extend(partitions);
            }
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.rebalances.saw(rebalance);
        self.rebalanced.store(true, Ordering::Release);
    }
}

/// Partitions a reader gave up since it last looked.
#[derive(Default)]
struct Revoked {
    /// Handed over: their positions committed, their state saved there.
    partitions: Vec<i32>,
    /// Given up without a commit (the group's coordinator did not answer, as after a broker
    /// outage that outlasted the reader's session): the stage dropped their state, and the
    /// next reader starts at their last commit with the state saved there, as after a crash.
    lost: Vec<i32>,
    /// Why the commit of `lost` failed (the first such error).
    uncommitted: Option<String>,
    /// The first error giving partitions up that fails the job: their state not saved.
    failed: Option<String>,
}

/// Why a reader could not hand partitions over.
enum HandoverError {
    /// The commit of their positions failed: the partitions go as a crashed reader's would.
    Commit(String),
    /// Anything else: their keyed state was not saved, the stage is gone.
    Other(String),
}

impl std::fmt::Display for HandoverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandoverError::Commit(e) | HandoverError::Other(e) => f.write_str(e),
        }
    }
}

/// The positions of `consumer` on `partitions`, those it has read from.
fn positions_of(
    consumer: &BaseConsumer<ReaderContext>,
    partitions: &[i32],
) -> std::result::Result<Vec<(usize, i64)>, String> {
    let positions = consumer.position().map_err(|e| e.to_string())?;
    Ok((positions.elements().iter())
        .filter(|e| partitions.contains(&e.partition()))
        .filter_map(|e| match e.offset() {
            rdkafka::Offset::Offset(o) => Some((e.partition() as usize, o)),
            _ => None,
        })
        .collect())
}

/// Before a handover that gives the reader's partitions up: tells the stage that it reads
/// none of them now, if it was told of any. Its chain's repartition writers then write them
/// as moved: each holds the readers of their topic back at the watermark written of it last
/// until its next reader writes it moved on (the state of its keys moves too, and fires
/// there), where without this the stage's end would write it finished. But once every
/// partition ended the stage keeps its state, and fires it at its own end: nothing moves.
/// (Eager rebalances take every partition: the next assignment's are sent anew.)
fn give_splits_up(consumer: &BaseConsumer<ReaderContext>) {
    let context = consumer.context();
    let mut sent = context.sent_splits.lock().expect("not poisoned");
    if sent.is_empty() || context.finished.load(Ordering::Acquire) {
        return;
    }
    sent.clear();
    if let Some(job) = context.job.lock().expect("not poisoned").as_ref() {
        // A stage that is gone fails the handover that follows.
        let _ = (job.stage).send(Message::Handover(Handover::Splits(Vec::new())));
    }
}

/// The broker answers a reader again after an outage that began at `down_from`: the outage,
/// and [`GAP`] after it for the writers to write again, is no writer's silence.
fn outage_ended(down_from: &mut Option<Timestamp>, ledger: &mut Ledger, connector: &str) {
    if let Some(from) = down_from.take() {
        let back = now_ms();
        ledger.gaps.push((from, back + GAP));
        tracing::info!(reader = %connector, "the broker answers again after {} s", (back - from) / 1000);
    }
}

/// What a commit does with the stage's keyed state (with a checkpoint directory).
#[derive(Clone, Copy)]
enum StateAction {
    /// Saves it at the positions committed; the stage keeps it.
    Save,
    /// Saves it and the stage drops it: the partitions go.
    Release,
}

/// Commits `consumer`'s positions on `partitions` (those it has read from); first has the
/// stage it feeds make its output of the rows before them durable (its sinks commit) and,
/// with a checkpoint directory and a `state` action (none once every partition ended), asks
/// it for its keyed state and saves each partition's share at its position. Returns the
/// positions committed.
fn save_and_commit(
    consumer: &BaseConsumer<ReaderContext>,
    partitions: &[i32],
    state: Option<StateAction>,
) -> std::result::Result<Vec<(usize, i64)>, HandoverError> {
    let at = positions_of(consumer, partitions).map_err(HandoverError::Other)?;
    let job = consumer.context().job.lock().expect("not poisoned");
    let job = job
        .as_ref()
        .ok_or_else(|| HandoverError::Other("the reader is gone".to_owned()))?;
    let (request, answer) = match (&job.store, state) {
        (Some(_), Some(StateAction::Release)) => Handover::release(),
        (Some(_), Some(StateAction::Save)) => Handover::save(),
        // No state moves: the output alone.
        _ => Handover::flush(),
    };
    let released = ask_stage(job, request, answer)?;
    if let (Some(store), Some(_)) = (&job.store, state) {
        // Partitions it read nothing from keep the file of their committed position, which
        // it adopted.
        store.save(released, &at).map_err(|e| {
            HandoverError::Other(format!("cannot save the state of its partitions: {e}"))
        })?;
    }
    commit_positions(consumer, &at).map_err(HandoverError::Commit)?;
    Ok(at)
}

/// Sends `request` to the stage `job`'s reader feeds (in order with the rows: it answers once
/// it handled every row before) and waits for its `answer`, while the job runs.
fn ask_stage(
    job: &JobLink,
    request: Handover,
    answer: Answer,
) -> std::result::Result<Released, HandoverError> {
    (job.stage)
        .send(Message::Handover(request))
        .map_err(|_| HandoverError::Other("the stage it feeds is gone".to_owned()))?;
    match await_answer(&answer, || job.task.is_cancelled()) {
        Awaited::Answered(released) => Ok(released),
        Awaited::Cancelled => Err(HandoverError::Other(
            "the job stopped while its stage made its output durable".into(),
        )),
        Awaited::Gone => Err(HandoverError::Other(
            "the stage it feeds failed making its output durable or saving its state".into(),
        )),
    }
}

/// Exactly-once: holds the stage `consumer`'s reader feeds at the rows read so far ([`Hold`]:
/// it flushes its chain into the reader's transaction first); with a checkpoint directory and
/// a `state` action, saves its state of the reader's partitions at their positions `at`.
/// The stage goes on once the returned [`Resume`] is dropped.
fn hold_stage(
    consumer: &BaseConsumer<ReaderContext>,
    at: &[(usize, i64)],
    state: Option<StateAction>,
) -> std::result::Result<Resume, String> {
    let job = consumer.context().job.lock().expect("not poisoned");
    let job = job.as_ref().ok_or("the reader is gone")?;
    // Without a checkpoint directory (or once every partition ended) the stage keeps its
    // state: it only flushes.
    let (request, answer, resume) = Handover::held(match (&job.store, state) {
        (Some(_), Some(action)) => Some(matches!(action, StateAction::Release)),
        _ => None,
    });
    (job.stage)
        .send(Message::Handover(request))
        .map_err(|_| "the stage it feeds is gone")?;
    let released = match await_answer(&answer, || job.task.is_cancelled()) {
        Awaited::Answered(released) => released,
        Awaited::Cancelled => {
            return Err("the job stopped while its stage flushed its records".into())
        }
        Awaited::Gone => return Err("the stage it feeds failed flushing its records".into()),
    };
    if let (Some(store), Some(_)) = (&job.store, state) {
        store
            .save(released, at)
            .map_err(|e| format!("cannot save the state of its partitions: {e}"))?;
    }
    Ok(resume)
}

/// Commits positions `at` (partition, offset) of `consumer`'s topic.
fn commit_positions(
    consumer: &BaseConsumer<ReaderContext>,
    at: &[(usize, i64)],
) -> std::result::Result<(), String> {
    let topic = &consumer.context().topic;
    let mut tpl = TopicPartitionList::new();
    for &(p, o) in at {
        tpl.add_partition_offset(topic, p as i32, rdkafka::Offset::Offset(o))
            .map_err(|e| e.to_string())?;
    }
    if tpl.count() == 0 {
        return Ok(());
    }
    consumer
        .commit(&tpl, CommitMode::Sync)
        .map_err(|e| format!("cannot commit its positions: {e}"))
}

/// What a reader knows from the records it read: the writers, each one's progress on each
/// partition, and which partitions of the topic ended. No Kafka in here.
struct Ledger {
    /// The topic's number of partitions.
    all: usize,
    /// When the reader started (ms since the epoch): a record of another plan written before
    /// means this instance is the one that does not belong; a state or done record written
    /// after is of this run.
    started: Timestamp,
    /// Every writer heard from, on any partition (each writes its hello to all), and every
    /// writer a state record names as not ended.
    writers: HashSet<u64>,
    /// Per partition, per writer id.
    partitions: BTreeMap<i32, HashMap<u64, WriterState>>,
    /// The partitions of the topic known to have ended in this run, from done records.
    done: HashSet<i32>,
    /// A final state record of this run said every partition of the topic ended.
    topic_ended: bool,
    /// Partitions taken over at a committed position whose state record was not read yet:
    /// writers that wrote nothing there since may be unknown, so they count as unfinished.
    awaiting: HashSet<i32>,
    /// Per writer, the newest timestamp of its records read (its producer's clock), or when
    /// a state record named it.
    last_heard: HashMap<u64, Timestamp>,
    /// The newest timestamp of a record read from any writer.
    newest: Timestamp,
    /// Spans of record time in which no writer wrote (`newest` jumped by more than
    /// [`GAP`]): a broker outage, which silences every writer. They do not count as a
    /// writer's silence: after an outage the writers come back one record at a time.
    gaps: Vec<(Timestamp, Timestamp)>,
    /// Writers taken as gone ([`Ledger::silent`]): they count as ended everywhere.
    gone: HashSet<u64>,
    /// The source splits the writers read, on each partition.
    splits: SplitLedger,
}

impl Ledger {
    fn new(all: usize, started: Timestamp) -> Ledger {
        Ledger {
            all,
            started,
            writers: HashSet::new(),
            partitions: BTreeMap::new(),
            done: HashSet::new(),
            topic_ended: false,
            awaiting: HashSet::new(),
            last_heard: HashMap::new(),
            newest: Timestamp::MIN,
            gaps: Vec::new(),
            gone: HashSet::new(),
            splits: SplitLedger::default(),
        }
    }

    /// A record of `writer` on `partition`, written at `at`: what is known of it there, to
    /// update.
    fn heard(&mut self, partition: i32, writer: u64, at: Timestamp) -> &mut WriterState {
        self.writers.insert(writer);
        let last = self.last_heard.entry(writer).or_insert(at);
        *last = (*last).max(at);
        if self.newest != Timestamp::MIN && at.saturating_sub(self.newest) > GAP {
            self.gaps.push((self.newest, at));
        }
        self.newest = self.newest.max(at);
        if !self.gone.is_empty() && self.gone.remove(&writer) {
            tracing::warn!(
                writer = format!("{writer:016x}"),
                "a writer taken as gone wrote again: its rows are read, but a reader may have ended without them"
            );
        }
        (self.partitions.entry(partition).or_default())
            .entry(writer)
            .or_insert(WriterState::NEW)
    }

    /// A record of `writer` on `partition`, written at `at`, said this of the source
    /// `splits` its source reads.
    fn heard_splits(
        &mut self,
        partition: i32,
        writer: u64,
        at: Timestamp,
        splits: &[SplitWatermark],
    ) {
        let early = at < self.started;
        self.splits.heard(partition, writer, early, splits);
    }

    /// Where `assigned` stand: the smallest watermark of those that hold one back
    /// ([`Ledger::partition`]), else whether they all ended or are idle.
    fn progress(&self, assigned: &[i32]) -> Progress {
        if assigned.is_empty() || self.writers.is_empty() {
            return Progress::Waiting;
        }
        let mut min = Timestamp::MAX;
        let (mut ended, mut active) = (true, false);
        for &p in assigned {
            match self.partition(p) {
                (SplitState::Finished, _) => {}
                (SplitState::Idle, _) => ended = false,
                (SplitState::Active, watermark) => {
                    (ended, active) = (false, true);
                    min = min.min(watermark);
                }
            }
        }
        if ended {
            Progress::Ended
        } else if !active {
            Progress::Idle
        } else {
            Progress::Watermark(min)
        }
    }

    /// Where `partition` stands: every writer heard from anywhere counts (one whose hello on
    /// it was not read yet holds it back), and, while one of them is active there, every
    /// source split its writers read (one that moved to another instance holds it back
    /// until its new reader moves it on). `Finished` when every writer ended on it; `Idle`
    /// when none of the others is active (at the smallest of their watermarks); else
    /// `Active` at the smallest watermark of the active ones and of the splits.
    fn partition(&self, partition: i32) -> (SplitState, Timestamp) {
        if self.awaiting.contains(&partition) {
            return (SplitState::Active, Timestamp::MIN);
        }
        let on = self.partitions.get(&partition);
        let (mut open, mut active) = (Timestamp::MAX, Timestamp::MAX);
        let (mut ended, mut active_here) = (true, false);
        for id in self.writers.difference(&self.gone) {
            let w = on
                .and_then(|m| m.get(id))
                .copied()
                .unwrap_or(WriterState::NEW);
            if !w.ended {
                ended = false;
                open = open.min(w.watermark);
                if !w.idle {
                    active_here = true;
                    active = active.min(w.watermark);
                }
            }
        }
        if ended {
            (SplitState::Finished, Timestamp::MAX)
        } else if !active_here {
            (SplitState::Idle, open)
        } else {
            let hold = self.splits.hold(partition).unwrap_or(Timestamp::MAX);
            (SplitState::Active, active.min(hold))
        }
    }

    /// Takes as gone, and returns, the writers that have not ended and were silent for a
    /// [`SILENCE`]: in record time, while another writer wrote (so a broker outage, which
    /// silences every writer, takes none); or, when every writer not ended is silent by the
    /// clock (`now`, given when the reader is caught up and the broker answers). A crashed
    /// instance's writers never end: without this the others would wait for them forever.
    fn silent(&mut self, now: Option<Timestamp>) -> Vec<u64> {
        let open = self.open_writers();
        // By the clock: every writer still open silent (those that wrote lately are alive,
        // and would have outlived the silent ones in record time).
        let all_silent = now.is_some_and(|now| self.all_silent_at(&open, now));
        let gone: Vec<u64> = (open.iter())
            .filter(|w| all_silent || self.silent_at(w, self.newest))
            .copied()
            .collect();
        self.gone.extend(&gone);
        for w in &gone {
            self.splits.forget_early(*w);
        }
        gone
    }

    /// The writers neither gone nor ended on every partition.
    fn open_writers(&self) -> Vec<u64> {
        let ended = |w: &u64| (self.partitions.values()).all(|m| m.get(w).is_some_and(|s| s.ended));
        (self.writers.difference(&self.gone))
            .filter(|w| !ended(w))
            .copied()
            .collect()
    }

    /// Whether `writer` was silent for a [`SILENCE`] at time `t`, not counting the
    /// [`gaps`](Ledger::gaps) in which every writer was.
    fn silent_at(&self, writer: &u64, t: Timestamp) -> bool {
        (self.last_heard.get(writer)).is_some_and(|&last| {
            let everyone: Timestamp = (self.gaps.iter())
                .map(|&(from, to)| to.min(t).saturating_sub(from.max(last)).max(0))
                .sum();
            t.saturating_sub(last).saturating_sub(everyone) > SILENCE
        })
    }

    /// Whether every writer of `open` was silent for a [`SILENCE`] at `now` (the clock
    /// rule of [`Ledger::silent`]).
    fn all_silent_at(&self, open: &[u64], now: Timestamp) -> bool {
        !open.is_empty() && open.iter().all(|w| self.silent_at(w, now))
    }

    /// Whether every partition of the topic ended in this run.
    fn topic_done(&self) -> bool {
        self.topic_ended || (0..self.all as i32).all(|p| self.done.contains(&p))
    }

    /// The [`STATE`] record for `partition`: whether the topic ended, the number of
    /// writers, each writer's entry, then the source splits'.
    fn state_record(&self, partition: i32, topic_ended: bool) -> Vec<u8> {
        let mut value = vec![STATE, u8::from(topic_ended)];
        let writers = self.partitions.get(&partition);
        let n = writers.map_or(0, HashMap::len) as u32;
        value.extend_from_slice(&n.to_be_bytes());
        for (writer, state) in writers.into_iter().flatten() {
            let mut state = *state;
            // The next reader need not find out again that it is gone.
            state.ended |= self.gone.contains(writer);
            state.encode(*writer, &mut value);
        }
        splits::encode(&self.splits.on(partition), &mut value);
        value
    }

    /// The [`DONE`] record for `partitions`, naming the writers known.
    fn done_record(&self, partitions: &[i32]) -> Vec<u8> {
        let mut value = vec![DONE];
        value.extend_from_slice(&(self.writers.len() as u32).to_be_bytes());
        for w in &self.writers {
            value.extend_from_slice(&w.to_be_bytes());
        }
        for p in partitions {
            value.extend_from_slice(&p.to_be_bytes());
        }
        value
    }

    /// Takes in the body of a [`DONE`] record written at `at`: its partitions ended, if it
    /// is of this run (written after this reader started, or naming a writer it knows:
    /// writer ids are new in every run).
    fn merge_done(&mut self, body: &[u8], at: Timestamp) -> std::result::Result<(), String> {
        let bad = || "a done record of the wrong size".to_string();
        let n = body.get(..4).ok_or_else(bad)?;
        let n = u32::from_be_bytes(n.try_into().expect("4 bytes")) as usize;
        let (writers, partitions) = body[4..].split_at_checked(n * 8).ok_or_else(bad)?;
        if partitions.len() % 4 != 0 {
            return Err(bad());
        }
        let this_run = at >= self.started
            || (writers.chunks_exact(8))
                .any(|w| (self.writers).contains(&u64::from_be_bytes(w.try_into().expect("8"))));
        if this_run {
            for p in partitions.chunks_exact(4) {
                self.done
                    .insert(i32::from_be_bytes(p.try_into().expect("4")));
            }
        }
        Ok(())
    }

    /// Takes in the body of a [`STATE`] record written at `at` by a reader that gave
    /// `partition` up: records read since its commit are newer, so a watermark only rises,
    /// an end stays, and idleness counts only for a writer not heard from here yet.
    fn merge_state(
        &mut self,
        partition: i32,
        body: &[u8],
        at: Timestamp,
    ) -> std::result::Result<(), String> {
        let Some((&topic_ended, body)) = body.split_first() else {
            return Err("an empty state record".into());
        };
        let wrong = || "a state record of the wrong size".to_string();
        let (n, body) = body.split_first_chunk::<4>().ok_or_else(wrong)?;
        let writers = (u32::from_be_bytes(*n) as usize).checked_mul(WriterState::ENTRY);
        let (body, sources) = (writers.and_then(|n| body.split_at_checked(n))).ok_or_else(wrong)?;
        let sources = splits::decode(sources)?;
        self.awaiting.remove(&partition);
        let entries = body
            .chunks_exact(WriterState::ENTRY)
            .map(WriterState::decode);
        let this_run = at >= self.started
            || (entries.clone()).any(|(writer, _)| self.writers.contains(&writer));
        let here = self.partitions.entry(partition).or_default();
        for (writer, state) in entries {
            // A writer an earlier run left unfinished (it stopped mid-stream) is not waited
            // for; what the record says of the others stays (an end, a watermark).
            if !state.ended && this_run {
                self.writers.insert(writer);
                // Silent from here on, it is gone a lease after the record.
                self.last_heard.entry(writer).or_insert(at);
            }
            here.entry(writer)
                .and_modify(|w| {
                    w.watermark = w.watermark.max(state.watermark);
                    w.ended |= state.ended;
                })
                .or_insert(state);
        }
        // What an earlier run's readers knew of the source splits is not of this run. (What
        // its writers wrote after its last commits is, until they are taken as gone:
        // `SplitLedger::forget_early`.)
        if this_run {
            self.splits.merge_state(partition, &sources);
        }
        // The final state record of a reader that saw the whole topic end.
        self.topic_ended |= topic_ended == 1 && this_run;
        Ok(())
    }
}

/// One downstream subtask's reader of a repartition topic.
struct Reader {
    edge: RemoteEdge,
    consumer: GroupMember,
    /// Writes [`STATE`] and [`DONE`] records: opened when first needed.
    out: Option<Output>,
    /// This reader's id, the key of its state and done records.
    id: u64,
    /// What the records read so far say.
    ledger: Ledger,
    /// The partitions this reader wrote a done record for.
    announced: HashSet<i32>,
    /// The plans of writers whose fingerprint is not this instance's, by fingerprint.
    foreign: HashMap<u64, String>,
    /// Writers of another plan that joined after this reader started, whose records it skips.
    ignored: HashSet<u64>,
    watermark: Timestamp,
    idle: bool,
    connector: String,
    /// The partitions the group assigned, as last seen.
    assigned: Vec<i32>,
    /// When the reader last committed while caught up.
    last_commit: Instant,
    /// A record that changes what the stage holds (rows, a watermark, idleness, an end) was
    /// read since the last commit: its own state records and signs of life do not count.
    moved: bool,
    /// Since when a partition waits for the state record after its commit (see
    /// [`Ledger::awaiting`]); a previous owner that crashed never writes one.
    awaiting_since: Option<Instant>,
    /// When the reader last looked for silent writers while records arrived.
    last_silent_check: Instant,
    /// Whether, and since when, the broker is unreachable.
    downtime: Downtime,
    /// When the current outage began (ms since the epoch): when it ends, the span goes to
    /// the ledger as one in which no writer could write.
    down_from: Option<Timestamp>,
    /// Asked to leave, it waits for its turn ([`leave_turns`]).
    turn: leave_turns::Turn,
    /// Exactly-once (`--processing-guarantee exactly-once`): the transactions of the stage
    /// it feeds, which it commits with its positions (see [`super::origin`]).
    origin: Option<SharedOrigin>,
    /// How many of this instance's writers it knows ([`Reader::know_local_writers`]).
    local: usize,
    /// The stage it feeds (its subtask, of the job run: [`local_writers`]), and the splits
    /// the stage publishes for its chain's writers once found ([`Reader::send_splits`]).
    stage: SubtaskKey,
    stage_splits: Option<Arc<SourceSplits>>,
}

/// A reader's consumer, a member of the topic's group.
///
/// A reader that fails or leaves (SIGTERM) leaves the group when it drops, which revokes its
/// partitions: the revocation must neither hand state over to a stage that ended nor commit
/// for a reader that failed. (A static member, `--instance-id`, leaves only at a SIGTERM:
/// its close alone keeps its partitions for the instance started again with its id.) A
/// reader at the end of the topic [`stays`](GroupMember::stays) a
/// member until the process exits: its leave would deal the partitions anew, and the other
/// instances' readers, which may not have read the last done records on theirs yet, would
/// have to wait for the group to re-form to read them. The group's coordinator expires it
/// after `session.timeout.ms` once the process is gone; a later job of this process
/// that reads the topic makes it leave first ([`GroupMember::leave_stayed`]).
struct GroupMember {
    consumer: Option<BaseConsumer<ReaderContext>>,
    /// The reader ended with its topic.
    stays: bool,
    /// A static member (`--instance-id`): its close does not leave the group (Kafka's rule,
    /// kept by librdkafka: it keeps its partitions for the instance started again with its
    /// id), so at a SIGTERM ([`GroupMember::leaves`]) it leaves explicitly.
    static_member: bool,
    /// The instance leaves the group (SIGTERM).
    leaves: bool,
}

/// The consumers of readers that ended with their topic, with their group: members until
/// the process exits. Not polled, they hold a rebalance of their group up while the process
/// lives, at most librdkafka's `max.poll.interval.ms` (5 min, then librdkafka leaves the
/// group): a later job of this process that reads the group makes them leave first.
static STAYING: Mutex<Vec<Stayed>> = Mutex::new(Vec::new());

/// A consumer in [`STAYING`]: its group, and whether it is a static member.
type Stayed = (String, BaseConsumer<ReaderContext>, bool);

impl GroupMember {
    /// A reader of `group` opens: the readers of an earlier job of this process that stayed
    /// in it leave it now, one at a time as at a SIGTERM ([`leave_turns`]): each next one
    /// serves its consumer's rebalances (without reading: its topic ended) until the group
    /// re-formed after the previous leave.
    fn leave_stayed(group: &str) {
        let stayed: Vec<_> = (STAYING.lock().expect("not poisoned"))
            .extract_if(.., |(g, _, _)| g == group)
            .collect();
        for (_, consumer, static_member) in stayed {
            if static_member {
                // It keeps its partitions for its name, which a reader of this job takes
                // over as it joins: no leave, no turn to wait for.
                drop(consumer);
                continue;
            }
            let regroup = flow_runtime::instances::SESSION_TIMEOUT;
            while !leave_turns::take_turn(group, &consumer.context().rebalances, regroup) {
                drop(consumer.poll(Duration::from_millis(100)));
            }
            drop(consumer);
            leave_turns::left(group);
        }
    }
}

/// Leaves the group before the consumer closes: a static member's close does not (Kafka's
/// rule, kept by librdkafka, for a member started again with its id), an unsubscribe does,
/// once its revocation was served (at most 5 s of polls; the revocation commits nothing, the
/// consumer is closed for it).
fn leave_explicitly(consumer: &BaseConsumer<ReaderContext>) {
    consumer.unsubscribe();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        drop(consumer.poll(Duration::from_millis(100)));
        if consumer.assignment().is_ok_and(|a| a.count() == 0) {
            break;
        }
    }
}

impl std::ops::Deref for GroupMember {
    type Target = BaseConsumer<ReaderContext>;
    fn deref(&self) -> &Self::Target {
        self.consumer
            .as_ref()
            .expect("the consumer is only taken when dropped")
    }
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        let Some(consumer) = self.consumer.take() else {
            return;
        };
        let context = consumer.context();
        context.closed.store(true, Ordering::Release);
        if context.revoke_pending.swap(false, Ordering::AcqRel) {
            // A revocation deferred to a commit that never came (the job failed):
            // librdkafka's close would wait for the unassign forever.
            let _ = consumer.unassign();
        }
        let group = context.group.clone();
        if self.stays {
            context.job.lock().expect("not poisoned").take();
            STAYING
                .lock()
                .expect("not poisoned")
                .push((group, consumer, self.static_member));
        } else {
            // The close sends the group a LeaveGroup (a static member leaves first): a
            // sibling's turn to leave counts from here, not from when this reader began to
            // hand its partitions over.
            if self.leaves && self.static_member {
                leave_explicitly(&consumer);
            }
            drop(consumer);
            leave_turns::left(&group);
        }
    }
}

impl Reader {
    fn open(
        edge: &RemoteEdge,
        subtask: usize,
        stage: &Inbox,
        task: &RuntimeContext,
    ) -> Result<Reader> {
        let connector = format!("{} reader {subtask}", connector(edge));
        GroupMember::leave_stayed(&edge.consumer_group);
        let static_member = edge.config.static_member("reader", subtask);
        let session = super::config::session_properties(edge.config.session_timeout());
        let mut config = vec![
            ("group.id", edge.consumer_group.as_str()),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("enable.partition.eof", "false"),
            ("partition.assignment.strategy", "range"),
            ("socket.connection.setup.timeout.ms", "10000"),
            // Exactly-once writers' aborted transactions are never read.
            ("isolation.level", "read_committed"),
        ];
        // A crashed instance's partitions move after the group's session timeout (10 s by
        // default, 30 s with an instance id; librdkafka's is 45).
        config.extend(session.iter().map(|(k, v)| (*k, v.as_str())));
        if let Some(member) = &static_member {
            config.push(("group.instance.id", member));
        }
        let consumer: BaseConsumer<ReaderContext> = settings(edge)
            .client_config(&config)
            .create_with_context(ReaderContext {
                revoked: Mutex::default(),
                rebalanced: AtomicBool::new(true),
                job: Mutex::new(Some(JobLink {
                    task: task.clone(),
                    stage: stage.clone(),
                    store: edge.partition_state.clone(),
                })),
                closed: AtomicBool::new(false),
                topic: edge.topic.clone(),
                group: edge.consumer_group.clone(),
                finished: AtomicBool::new(false),
                rebalances: Rebalances::default(),
                exactly_once: edge.config.exactly_once,
                revoke_pending: AtomicBool::new(false),
                dealt_at: Mutex::new(None),
                sent_splits: Mutex::default(),
            })
            .map_err(|e| connector_error(&connector, format!("cannot create a consumer: {e}")))?;
        consumer
            .subscribe(&[edge.topic.as_str()])
            .map_err(|e| connector_error(&connector, format!("cannot subscribe: {e}")))?;
        let origin = if edge.config.exactly_once {
            Some(SharedOrigin::of(task.subtask_key(), &connector)?)
        } else {
            None
        };
        Ok(Reader {
            edge: edge.clone(),
            consumer: GroupMember {
                consumer: Some(consumer),
                stays: false,
                static_member: static_member.is_some(),
                leaves: false,
            },
            out: None,
            id: uuid::Uuid::new_v4().as_u64_pair().0,
            ledger: Ledger::new(edge.config.partitions, now_ms()),
            announced: HashSet::new(),
            foreign: HashMap::new(),
            ignored: HashSet::new(),
            watermark: Timestamp::MIN,
            idle: false,
            connector,
            assigned: Vec::new(),
            last_commit: Instant::now(),
            moved: false,
            awaiting_since: None,
            last_silent_check: Instant::now(),
            downtime: Downtime::new(
                edge.config.max_broker_downtime(),
                settings(edge).connect_timeout,
            ),
            down_from: None,
            turn: leave_turns::Turn::default(),
            origin,
            local: 0,
            stage: task.subtask_key(),
            stage_splits: None,
        })
    }

    fn run(mut self, ctx: &RuntimeContext, to: Inbox) -> Result<TaskMetrics> {
        let send = |m: Message| to.send(m).map_err(|_| Error::Cancelled(ctx.task_name()));
        loop {
            if ctx.is_cancelled() {
                return Err(Error::Cancelled(ctx.task_name()));
            }
            if flow_runtime::instances::leave_requested() && self.turn_to_leave() {
                return self.leave(send);
            }
            if self.origin.is_some() {
                self.exactly_once_commit_point()?;
            } else {
                self.commit_caught_up(false)?;
            }
            // A poll that served a rebalance returns nothing: `advance` hands over what the
            // group took away.
            let Some(next) = self.consumer.poll(Duration::from_millis(100)) else {
                if self.last_silent_check.elapsed() >= Duration::from_secs(1) {
                    self.last_silent_check = Instant::now();
                    self.forget_silent_writers(true);
                }
                if self.advance(&send)? {
                    return self.end(send);
                }
                self.commit_caught_up(true)?;
                self.check_down()?;
                continue;
            };
            let msg = match next {
                Ok(msg) => msg,
                Err(e) if Downtime::is_unreachable(&e) => {
                    if self.downtime.unreachable(&e) {
                        self.down_from = Some(now_ms());
                        tracing::warn!(reader = %self.connector, error = %e, "broker unreachable; librdkafka retries for up to {}", super::fmt_duration(self.downtime.limit()));
                    }
                    self.check_down()?;
                    continue;
                }
                Err(e) => return Err(connector_error(&self.connector, e.to_string())),
            };
            if self.downtime.answered() {
                outage_ended(&mut self.down_from, &mut self.ledger, &self.connector);
            }
            let partition = msg.partition();
            let value = msg.payload().unwrap_or(&[]);
            let key = msg.key().unwrap_or(&[]);
            let (Some((&kind, body)), Ok(key)) = (value.split_first(), <[u8; 16]>::try_from(key))
            else {
                return Err(connector_error(
                    &self.connector,
                    format!(
                        "partition {partition} offset {}: not a repartition record of flow",
                        msg.offset()
                    ),
                ));
            };
            let writer = u64::from_be_bytes(key[..8].try_into().expect("8 bytes"));
            let fingerprint = u64::from_be_bytes(key[8..].try_into().expect("8 bytes"));
            if fingerprint != self.edge.fingerprint {
                if kind == STATE || kind == DONE {
                    // Left by readers of an earlier run of another plan, past their commits:
                    // nothing of this run, and no sign of a running instance (but the record
                    // a partition's commit is followed by).
                    if kind == STATE {
                        self.ledger.awaiting.remove(&partition);
                    }
                    continue;
                }
                let at = msg.timestamp().to_millis().unwrap_or(Timestamp::MIN);
                if kind == HELLO {
                    self.foreign
                        .entry(fingerprint)
                        .or_insert_with(|| String::from_utf8_lossy(body).into_owned());
                }
                if at <= self.ledger.started {
                    // This instance joined a group that runs another plan: refused.
                    return Err(self.other_plan(fingerprint));
                }
                // An instance of another plan joined after this one: it is refused on its
                // side (it reads this instance's hello); its records are not this job's.
                if self.ignored.insert(writer) {
                    tracing::error!(
                        reader = %self.connector,
                        "{}; its records are ignored here",
                        self.other_plan(fingerprint)
                    );
                }
                continue;
            }
            if kind == STATE || kind == DONE {
                let at = msg.timestamp().to_millis().unwrap_or(Timestamp::MIN);
                let taken = if kind == STATE {
                    self.ledger.merge_state(partition, body, at)
                } else {
                    self.ledger.merge_done(body, at)
                };
                taken.map_err(|e| {
                    connector_error(
                        &self.connector,
                        format!("partition {partition} offset {}: {e}", msg.offset()),
                    )
                })?;
                drop(msg);
                if self.advance(&send)? {
                    return self.end(send);
                }
                continue;
            }
            let at = msg.timestamp().to_millis().unwrap_or(Timestamp::MIN);
            self.moved |= kind != HELLO && kind != ALIVE;
            if kind == SPLITS {
                let sources = splits::decode(body).map_err(|e| {
                    connector_error(
                        &self.connector,
                        format!("partition {partition} offset {}: {e}", msg.offset()),
                    )
                })?;
                self.ledger.heard(partition, writer, at);
                self.ledger.heard_splits(partition, writer, at, &sources);
                drop(msg);
                if self.advance(&send)? {
                    return self.end(send);
                }
                continue;
            }
            let w = self.ledger.heard(partition, writer, at);
            match kind {
                ROWS | SECOND_ROWS => {
                    let input = usize::from(kind == SECOND_ROWS);
                    let decoded = match self.edge.codecs.get(input) {
                        Some(codec) => (codec.decode)(body),
                        None => Err(Error::Config(
                            "rows of a second input, and the operator has one".into(),
                        )),
                    };
                    let rows = decoded.map_err(|e| {
                        connector_error(
                            &self.connector,
                            format!("partition {partition} offset {}: {e}", msg.offset()),
                        )
                    })?;
                    if self.idle {
                        self.idle = false;
                        send(Message::Idle(false))?;
                    }
                    send(if input == 0 {
                        Message::Rows(rows)
                    } else {
                        Message::SecondRows(rows)
                    })?;
                    continue;
                }
                WATERMARK => {
                    let wrong = |e: String| {
                        connector_error(
                            &self.connector,
                            format!(
                                "partition {partition} offset {}: a watermark record: {e}",
                                msg.offset()
                            ),
                        )
                    };
                    let (bytes, rest) = (body.split_first_chunk::<8>())
                        .ok_or_else(|| wrong("shorter than a timestamp".into()))?;
                    let sources = splits::decode(rest).map_err(wrong)?;
                    w.watermark = w.watermark.max(Timestamp::from_be_bytes(*bytes));
                    w.idle = false;
                    self.ledger.heard_splits(partition, writer, at, &sources);
                }
                IDLE => w.idle = true,
                ACTIVE => w.idle = false,
                END => w.ended = true,
                HELLO | ALIVE => {}
                other => {
                    return Err(connector_error(
                        &self.connector,
                        format!("partition {partition}: unknown record kind {other}"),
                    ))
                }
            }
            drop(msg);
            if self.last_silent_check.elapsed() >= Duration::from_secs(1) {
                // Records keep coming: a crashed writer must not hold the watermark back
                // until they pause.
                self.last_silent_check = Instant::now();
                self.forget_silent_writers(false);
            }
            if kind == END {
                tracing::debug!(
                    reader = %self.connector,
                    partition,
                    writers = self.ledger.writers.len(),
                    "a writer ended"
                );
            }
            if self.advance(&send)? {
                return self.end(send);
            }
        }
    }

    /// While the broker is unreachable: fails once it has been away too long.
    fn check_down(&mut self) -> Result<()> {
        if !self.downtime.is_down() {
            return Ok(());
        }
        self.downtime
            .check(self.consumer.client())
            .map_err(|e| connector_error(&self.connector, e))?;
        if !self.downtime.is_down() {
            outage_ended(&mut self.down_from, &mut self.ledger, &self.connector);
        }
        Ok(())
    }

    /// Passes on what the partitions' progress now allows: idleness, a new watermark.
    /// True when this reader's partitions and every other of the topic ended.
    fn advance(&mut self, send: &impl Fn(Message) -> Result<()>) -> Result<bool> {
        if self
            .consumer
            .context()
            .rebalanced
            .swap(false, Ordering::Acquire)
        {
            // Partitions the last poll took away are handed over before this reader may end.
            self.hand_over_revoked()?;
            self.assignment(send)?;
        }
        if !self.know_local_writers() {
            return Ok(false);
        }
        let progress = self.ledger.progress(&self.assigned);
        // Before the idleness or watermark they make, no higher than that watermark.
        let next = match progress {
            Progress::Watermark(w) => w.max(self.watermark),
            _ => self.watermark,
        };
        self.send_splits(next, send)?;
        match progress {
            Progress::Ended => {
                self.consumer
                    .context()
                    .finished
                    .store(true, Ordering::Release);
                self.announce()?;
                return Ok(self.ledger.topic_done());
            }
            Progress::Waiting if self.ledger.topic_ended => return Ok(true),
            Progress::Idle if !self.idle => {
                self.idle = true;
                send(Message::Idle(true))?;
            }
            Progress::Watermark(w) if w > self.watermark => {
                if self.idle {
                    self.idle = false;
                    send(Message::Idle(false))?;
                }
                self.watermark = w;
                send(Message::Watermark(w))?;
            }
            _ => {}
        }
        Ok(false)
    }

    /// Sends the stage where each of its partitions stands ([`Ledger::partition`]), no higher
    /// than `watermark` (the stage publishes none higher than its chain's watermark: this
    /// sends a list only when that can change), when that changed, if a repartition writer
    /// of its chain writes it on (a second `key_by`: see [`SourceSplits`]). In order with
    /// the rows: what the stage publishes of a partition is where the rows it took in stand.
    fn send_splits(
        &mut self,
        watermark: Timestamp,
        send: &impl Fn(Message) -> Result<()>,
    ) -> Result<()> {
        if self.stage_splits.is_none() {
            // Registered as the stage opens.
            self.stage_splits = source_splits(self.stage);
        }
        if !(self.stage_splits.as_ref()).is_some_and(|s| s.written()) {
            return Ok(());
        }
        let topic = &self.edge.topic;
        let now = (self.assigned.iter()).map(|&p| {
            let (state, at) = self.ledger.partition(p);
            SplitWatermark {
                id: split_name(topic, p),
                watermark: at.min(watermark),
                state,
            }
        });
        let mut sent = (self.consumer.context().sent_splits.lock()).expect("not poisoned");
        if sent.iter().copied().eq(now.clone()) {
            return Ok(());
        }
        *sent = now.collect();
        send(Message::Handover(Handover::Splits(sent.clone())))
    }

    /// Writes a [`DONE`] record to every partition for the assigned ones not announced yet
    /// (all of them ended).
    fn announce(&mut self) -> Result<()> {
        let new: Vec<i32> = (self.assigned.iter())
            .filter(|p| !self.announced.contains(p))
            .copied()
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let value = self.ledger.done_record(&new);
        let all = (0..self.edge.config.partitions as i32).map(|p| (p, value.clone()));
        self.send_own(all.collect())?;
        self.announced.extend(&new);
        self.ledger.done.extend(new);
        Ok(())
    }

    /// Hands over the partitions the group took away in the last poll: their positions are
    /// committed (by [`ReaderContext`]); their state records are written here.
    fn hand_over_revoked(&mut self) -> Result<()> {
        let Revoked {
            partitions: revoked,
            lost,
            uncommitted,
            failed,
        } = std::mem::take(
            &mut *self
                .consumer
                .context()
                .revoked
                .lock()
                .expect("not poisoned"),
        );
        if let Some(e) = failed {
            // The next reader would read again what this one passed on.
            return Err(connector_error(
                &self.connector,
                format!("giving partitions {revoked:?} up: {e}"),
            ));
        }
        // During an outage the state records cannot be written (opening the writer fails
        // after its connect timeout): given up as after a failed commit.
        let (revoked, lost) = if self.downtime.is_down() && !revoked.is_empty() {
            tracing::warn!(
                reader = %self.connector,
                partitions = ?revoked,
                "gave partitions up while the broker is unreachable: no state records after their commits (the next reader reads on without them after {} s)",
                SILENCE / 1000
            );
            (Vec::new(), [lost, revoked].concat())
        } else {
            (revoked, lost)
        };
        if let Some(e) = uncommitted {
            // No state record either: the next reader waits for one after the commit as
            // for a crashed reader's, then reads on.
            tracing::warn!(
                reader = %self.connector,
                partitions = ?lost,
                "gave partitions up without committing its positions ({e}): the next reader starts at their last commit and reads what came after again"
            );
        }
        let topic_done = self.ledger.topic_done();
        self.write_states(&revoked, topic_done)?;
        for p in revoked.iter().chain(&lost) {
            self.ledger.partitions.remove(p);
            self.ledger.awaiting.remove(p);
        }
        Ok(())
    }

    /// Writes a [`STATE`] record to each of `partitions`: `topic_ended` at the reader's end.
    fn write_states(&mut self, partitions: &[i32], topic_ended: bool) -> Result<()> {
        let records = (partitions.iter())
            .map(|&p| (p, self.ledger.state_record(p, topic_ended)))
            .collect();
        self.send_own(records)
    }

    /// Writes each (partition, value) of `records`, keyed by this reader, and waits for
    /// their acknowledgement.
    fn send_own(&mut self, records: Vec<(i32, Vec<u8>)>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut key = [0; 16];
        key[..8].copy_from_slice(&self.id.to_be_bytes());
        key[8..].copy_from_slice(&self.edge.fingerprint.to_be_bytes());
        if let Some(origin) = &self.origin {
            // Exactly-once: in the transaction its next commit commits.
            let mut origin = origin.lock();
            for (p, value) in records {
                origin.send_to(&self.edge.topic, Some(p), Some(&key), &value, NO_TIMESTAMP)?;
            }
            return Ok(());
        }
        if self.out.is_none() {
            self.out = Some(Output::connect(
                &settings(&self.edge),
                &self.connector,
                delivery_timeout(&self.edge),
                Some(&self.edge.topic),
                None,
            )?);
        }
        let out = self.out.as_mut().expect("opened above");
        for (p, value) in records {
            out.send_to(&self.edge.topic, Some(p), Some(&key), &value, NO_TIMESTAMP)?;
        }
        out.wait_for_acks()
    }

    /// Updates the partitions the group assigns to this reader (logged when they change);
    /// with a checkpoint directory, the stage adopts the state saved at the committed
    /// positions of the new ones.
    fn assignment(&mut self, send: &impl Fn(Message) -> Result<()>) -> Result<()> {
        let assigned = self
            .consumer
            .assignment()
            .map_err(|e| connector_error(&self.connector, e.to_string()))?;
        let now: Vec<i32> = assigned.elements().iter().map(|e| e.partition()).collect();
        if now != self.assigned {
            tracing::info!(
                connector = %self.connector,
                partitions = now.len(),
                "kafka group assignment"
            );
            // A partition with a committed position was given up by a reader (revoked, or
            // at its end), which writes a state record after the commit: until this reader
            // read it, it may not know every writer there.
            let mut new = TopicPartitionList::new();
            for p in now.iter().filter(|p| !self.assigned.contains(p)) {
                new.add_partition(&self.edge.topic, *p);
            }
            if new.count() > 0 {
                // Where the fetch of each starts: the commits read as they were assigned.
                let kept = (self.consumer.context().dealt_at.lock())
                    .expect("not poisoned")
                    .take();
                let dealt = kept
                    .unwrap_or_else(|| {
                        tracing::warn!(reader = %self.connector, "assigned partitions without their commits read in the assignment: read now (librdkafka read them for its fetch on its own)");
                        read_commits(&self.consumer, &new)
                    })
                    .map_err(|e| connector_error(&self.connector, e))?;
                let mut at = Vec::new();
                for (p, o) in dealt {
                    if new.find_partition(&self.edge.topic, p).is_some() {
                        self.ledger.awaiting.insert(p);
                        at.push((p as usize, o));
                    }
                }
                self.adopt(&at, send)?;
                // Partitions that have not ended (yet) until progress says so.
                self.consumer
                    .context()
                    .finished
                    .store(false, Ordering::Release);
            }
            self.assigned = now;
        }
        Ok(())
    }

    /// Stops waiting for writers that went silent ([`Ledger::silent`]; by the clock only when
    /// `caught_up` and the broker answers), and, caught up, for the state record of a
    /// partition whose previous owner stopped between its commit and that record.
    fn forget_silent_writers(&mut self, caught_up: bool) {
        // Asks the broker only when the clock rule would take a writer as gone.
        let clock = now_ms();
        let now = (caught_up
            && self
                .ledger
                .all_silent_at(&self.ledger.open_writers(), clock)
            && (self.consumer.client())
                .fetch_metadata(Some(&self.edge.topic), Duration::from_secs(2))
                .is_ok())
        .then_some(clock);
        for w in self.ledger.silent(now) {
            tracing::warn!(
                reader = %self.connector,
                writer = format!("{w:016x}"),
                "a writer was silent for {} s (its instance stopped?): no longer waited for",
                SILENCE / 1000
            );
        }
        if self.ledger.awaiting.is_empty() {
            self.awaiting_since = None;
        } else if caught_up
            && (self.awaiting_since.get_or_insert_with(Instant::now)).elapsed()
                >= Duration::from_millis(SILENCE as u64)
        {
            tracing::warn!(
                reader = %self.connector,
                partitions = ?self.ledger.awaiting,
                "no state record followed the commit of these partitions (their previous reader stopped?): reading on without"
            );
            self.ledger.awaiting.clear();
            self.awaiting_since = None;
        }
    }

    /// Commits the positions that moved since the last commit, at most every
    /// [`CAUGHT_UP_COMMIT`] when `caught_up` (a poll returned nothing), every
    /// [`LOADED_COMMIT`] while records keep coming, with the stage's output of the rows
    /// before them made durable and its state of its partitions saved at them first (with a
    /// checkpoint directory), as Kafka Streams commits every `commit.interval.ms`. A
    /// rebalance while the input is quiet then moves no row twice even on a broker that
    /// assigns a partition before its old owner gave it up (tansu 0.6).
    fn commit_caught_up(&mut self, caught_up: bool) -> Result<()> {
        let every = if caught_up {
            CAUGHT_UP_COMMIT
        } else {
            LOADED_COMMIT
        };
        if !self.moved
            || self.assigned.is_empty()
            || self.last_commit.elapsed() < every
            || self.origin.is_some()
        {
            return Ok(());
        }
        self.last_commit = Instant::now();
        let finished = self.consumer.context().finished.load(Ordering::Acquire);
        let at = match save_and_commit(
            &self.consumer,
            &self.assigned,
            (!finished).then_some(StateAction::Save),
        ) {
            Ok(at) => at,
            Err(e) => {
                // The next one covers these rows; a rebalance in between re-reads them.
                tracing::warn!(reader = %self.connector, "cannot commit its positions (tries again in a second): {e}");
                return Ok(());
            }
        };
        self.moved = false;
        if let Some(store) = &self.edge.partition_state {
            for &(partition, offset) in &at {
                if let Err(e) = store.remove_before(partition, offset) {
                    tracing::warn!(reader = %self.connector, "{e}");
                }
            }
        }
        // Like a reader giving a partition up, a state record after the commit: a reader
        // that takes the partition over after a crash learns from it which writers ended.
        let partitions: Vec<i32> = at.iter().map(|&(p, _)| p as i32).collect();
        self.write_states(&partitions, false)
    }

    /// Whether it knows every writer of its own instance to the topic (they all opened):
    /// they count on every partition from then on, heard from or not ([`LOCAL_WRITERS`]),
    /// and are taken as gone after a silence as any other. Until then nothing progresses.
    fn know_local_writers(&mut self) -> bool {
        let wanted = self.edge.writers.max(1);
        if self.local < wanted {
            let local = local_writers(self.stage.run, &self.edge);
            self.local = local.len();
            let now = now_ms();
            for id in local {
                if self.ledger.writers.insert(id) {
                    self.ledger.last_heard.entry(id).or_insert(now);
                }
            }
        }
        self.local >= wanted
    }

    /// Exactly-once: commits when the group took the partitions away (then gives them up),
    /// or every [`COMMIT_INTERVAL`] while it read records or the stage wrote some.
    fn exactly_once_commit_point(&mut self) -> Result<()> {
        if self.give_up_if_revoked(false)? {
            return Ok(());
        }
        // Also without partitions: the stage's writers' signs of life are in the transaction,
        // which holds the readers of their partitions back until it is committed.
        let due = (self.origin.as_ref()).is_some_and(|o| o.lock().due(self.moved));
        if due {
            self.commit_exactly_once(false, false)?;
        }
        Ok(())
    }

    /// Exactly-once: [`Reader::give_up_revoked`] if the group took the partitions away;
    /// whether it did.
    fn give_up_if_revoked(&mut self, topic_ended: bool) -> Result<bool> {
        let pending = self
            .consumer
            .context()
            .revoke_pending
            .load(Ordering::Acquire);
        if pending {
            self.give_up_revoked(topic_ended)?;
        }
        Ok(pending)
    }

    /// Exactly-once: the group took the partitions away: commits them (their state saved at
    /// the positions and dropped by the stage), then unassigns them (also when that failed:
    /// librdkafka waits for the unassign). A commit the broker refuses (the group moved on
    /// without this member, as after a broker outage that outlasted its session) aborts the
    /// transaction instead: the next reader starts at their last commit with the state saved
    /// there, and the records of the rows after it are never read.
    fn give_up_revoked(&mut self, topic_ended: bool) -> Result<()> {
        let partitions = self.assigned.clone();
        let committed = self.commit_exactly_once(true, topic_ended);
        let context = self.consumer.context();
        context.revoke_pending.store(false, Ordering::Release);
        let revoked = self.consumer.assignment().unwrap_or_default();
        let unassigned = self.consumer.unassign();
        context.rebalances.saw(&Rebalance::Revoke(&revoked));
        context.rebalanced.store(true, Ordering::Release);
        // The next assignment, the same partitions as often as not, is adopted afresh: the
        // stage dropped their state.
        self.assigned.clear();
        for p in &partitions {
            self.ledger.partitions.remove(p);
            self.ledger.awaiting.remove(p);
        }
        if !committed? {
            tracing::warn!(
                reader = %self.connector,
                partitions = ?partitions,
                "gave partitions up without committing them: the transaction was aborted; the next reader starts at their last commit"
            );
        }
        unassigned.map_err(|e| {
            connector_error(
                &self.connector,
                format!("cannot give its partitions up: {e}"),
            )
        })
    }

    /// Exactly-once: a commit. Holds the stage at the rows read so far (it flushes its chain
    /// into the transaction first; with a checkpoint directory its state of the reader's
    /// partitions is saved at their positions, and dropped when `release`), writes their
    /// state records into the transaction, and commits it with the positions and the
    /// consumer's group metadata; then lets the stage go on. A failed commit fails the job
    /// (the stage holds the rows' effects already), but for a `release`: then the
    /// transaction is aborted (the stage dropped the partitions' state), and it returns
    /// `false`.
    fn commit_exactly_once(&mut self, release: bool, topic_ended: bool) -> Result<bool> {
        let Some(origin) = self.origin.clone() else {
            return Ok(true);
        };
        let partitions = self.assigned.clone();
        let connector = self.connector.clone();
        let failed = |e: String| connector_error(&connector, e);
        let at = positions_of(&self.consumer, &partitions).map_err(failed)?;
        let finished = self.consumer.context().finished.load(Ordering::Acquire);
        // Once every partition ended the stage keeps its state, and fires it at its end.
        let state = (!finished).then_some(if release {
            StateAction::Release
        } else {
            StateAction::Save
        });
        if release {
            give_splits_up(&self.consumer);
        }
        let resume = hold_stage(&self.consumer, &at, state).map_err(failed)?;
        // The final state records only at the end (`topic_ended`): this run's readers read on.
        self.write_states(&partitions, topic_ended)?;
        let mut tpl = TopicPartitionList::new();
        for &(p, o) in &at {
            tpl.add_partition_offset(&self.edge.topic, p as i32, rdkafka::Offset::Offset(o))
                .map_err(|e| failed(e.to_string()))?;
        }
        let group = self.consumer.group_metadata();
        let committed = origin.lock().commit(&tpl, group.as_ref());
        // (A commit whose Kafka transaction committed, and a transaction enlisted in it
        // could not, stops the instance: an abort cannot undo it.)
        let kafka_failed = committed.is_err() && !origin.lock().enlisted_failed();
        if let (Err(e), true, true) = (&committed, release, kafka_failed) {
            tracing::warn!(reader = %self.connector, "cannot commit the partitions it gives up: {e}");
            // Nothing of the aborted transaction is read; the stage dropped the state.
            origin.lock().abort()?;
            return Ok(false);
        }
        drop(resume);
        committed?;
        self.moved = false;
        self.last_commit = Instant::now();
        if let Some(store) = &self.edge.partition_state {
            for &(partition, offset) in &at {
                if let Err(e) = store.remove_before(partition, offset) {
                    tracing::warn!(reader = %self.connector, "{e}");
                }
            }
        }
        Ok(true)
    }

    /// Sends the stage the state saved for partitions `at` at their committed positions (no
    /// row of theirs was passed on yet), and removes their older files.
    fn adopt(&self, at: &[(usize, i64)], send: &impl Fn(Message) -> Result<()>) -> Result<()> {
        let Some(store) = &self.edge.partition_state else {
            return Ok(());
        };
        let failed =
            |e: Error| connector_error(&self.connector, format!("taking partitions over: {e}"));
        let adopted = store.load(at).map_err(failed)?;
        if !adopted.is_empty() {
            tracing::info!(reader = %self.connector, partitions = ?at, operators = adopted.operators(), "adopting the state saved at the committed positions");
            send(Message::Handover(Handover::Adopt(adopted)))?;
        }
        for &(partition, offset) in at {
            store.remove_before(partition, offset).map_err(failed)?;
        }
        Ok(())
    }

    /// Every partition ended: hands them over as it would revoked ones (a reader that gets
    /// one later, this one having left the group, reads that every writer ended there, and
    /// a later run of the group starts after), then ends the downstream subtask's input.
    fn end(&mut self, send: impl Fn(Message) -> Result<()>) -> Result<TaskMetrics> {
        // Exactly-once: the group took the partitions in the same turn; they go first
        // (committed, with the final state records), and the end commits what is left.
        let topic_done = self.ledger.topic_done();
        self.give_up_if_revoked(topic_done)?;
        let partitions = self.assigned.clone();
        let at = positions_of(&self.consumer, &partitions)
            .map_err(|e| connector_error(&self.connector, format!("at its end: {e}")))?;
        if self.origin.is_none() {
            // The stage's output of every row read is made durable first.
            let job = self.consumer.context().job.lock().expect("not poisoned");
            if let Some(job) = job.as_ref() {
                let (request, answer) = Handover::flush();
                ask_stage(job, request, answer)
                    .map_err(|e| connector_error(&self.connector, format!("at its end: {e}")))?;
            }
            drop(job);
            commit_positions(&self.consumer, &at)
                .map_err(|e| connector_error(&self.connector, format!("at its end: {e}")))?;
        }
        self.write_states(&partitions, true)?;
        if let Some(origin) = &self.origin {
            // Exactly-once: the stage fires what it holds once its input ended; the end
            // record of its last writer (or sink) commits that with these positions.
            let mut tpl = TopicPartitionList::new();
            for &(p, o) in &at {
                tpl.add_partition_offset(&self.edge.topic, p as i32, rdkafka::Offset::Offset(o))
                    .map_err(|e| connector_error(&self.connector, e.to_string()))?;
            }
            let group = self.consumer.group_metadata();
            origin.lock().source_ended(tpl, group)?;
        }
        if let Some(store) = &self.edge.partition_state {
            // The whole topic ended (every window fired): a later run starts its keys
            // afresh. Every partition's files go, also those a rebalance at the end left of
            // partitions this reader does not hold.
            for p in 0..self.edge.config.partitions {
                store
                    .remove_before(p, i64::MAX)
                    .map_err(|e| connector_error(&self.connector, format!("at its end: {e}")))?;
            }
        }
        send(Message::End)?;
        self.consumer.stays = true;
        Ok(TaskMetrics::default())
    }

    /// Whether this reader leaves the group now ([`leave_turns`]: once the group re-formed
    /// after a sibling reader of this instance left it); until then it reads on.
    fn turn_to_leave(&mut self) -> bool {
        let rebalances = &self.consumer.context().rebalances;
        (self.turn).take(
            &self.edge.consumer_group,
            rebalances,
            self.edge.config.regroup_bound(),
            &self.connector,
        )
    }

    /// The instance leaves its group (SIGTERM): hands every partition over as a rebalance
    /// takes them (the stage's state of them saved at the committed positions and dropped,
    /// state records after the commits), then ends the downstream subtask's input, which has
    /// nothing left to fire. The consumer's close then leaves the group, which deals the
    /// partitions to the readers of the other instances.
    fn leave(&mut self, send: impl Fn(Message) -> Result<()>) -> Result<TaskMetrics> {
        self.give_up_if_revoked(false)?;
        // Partitions the last poll took away first; new ones are adopted, to be handed on.
        if (self.consumer.context().rebalanced).swap(false, Ordering::Acquire) {
            self.hand_over_revoked()?;
            self.assignment(&send)?;
        }
        let partitions = self.assigned.clone();
        if let Some(origin) = self.origin.clone() {
            self.commit_exactly_once(true, false).map_err(|e| {
                let next = if origin.lock().enlisted_failed() {
                    "(the Kafka transaction committed, and their next reader starts after it; what the sinks prepared for it is finished when this instance starts again with its --instance-id)"
                } else {
                    "(their next reader starts at their last commit)"
                };
                connector_error(
                    &self.connector,
                    format!("leaving the group, giving partitions {partitions:?} up: {e} {next}"),
                )
            })?;
            return self.left(&partitions, send);
        }
        // Once every partition ended the stage keeps its state, and fires it at its end.
        let finished = self.consumer.context().finished.load(Ordering::Acquire);
        give_splits_up(&self.consumer);
        save_and_commit(
            &self.consumer,
            &partitions,
            (!finished).then_some(StateAction::Release),
        )
        .map_err(|e| {
            connector_error(
                &self.connector,
                format!("leaving the group, giving partitions {partitions:?} up: {e} (their next reader starts at their last commit)"),
            )
        })?;
        self.write_states(&partitions, false)?;
        self.left(&partitions, send)
    }

    /// The reader handed `partitions` over as it leaves: the consumer's close leaves the
    /// group; the stage's input ends.
    fn left(
        &mut self,
        partitions: &[i32],
        send: impl Fn(Message) -> Result<()>,
    ) -> Result<TaskMetrics> {
        self.consumer.leaves = true;
        tracing::info!(
            reader = %self.connector,
            partitions = ?partitions,
            "the instance leaves its group: partitions handed over"
        );
        send(Message::End)?;
        Ok(TaskMetrics::default())
    }

    fn other_plan(&self, fingerprint: u64) -> Error {
        let diff = match self.foreign.get(&fingerprint) {
            Some(theirs) => plan_difference(&self.edge.plan, theirs),
            None => "(its plan was not seen)".to_owned(),
        };
        connector_error(
            &self.connector,
            format!(
                "an instance of group `{}` runs another plan (fingerprint {fingerprint:016x}, this one {:016x}): {diff}. Every instance of a group must run the same job",
                self.edge.config.group, self.edge.fingerprint
            ),
        )
    }
}

enum Progress {
    /// No partition assigned yet.
    Waiting,
    /// Every writer of every partition is idle.
    Idle,
    /// The minimum watermark.
    Watermark(Timestamp),
    /// Every writer of every partition ended.
    Ended,
}

/// The first line where two plans (from [`flow_runtime::plan::Plan::describe`]) differ.
fn plan_difference(ours: &str, theirs: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (ours.lines().collect(), theirs.lines().collect());
    for i in 0..a.len().max(b.len()) {
        match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) if x == y => {}
            (Some(x), Some(y)) => return format!("this instance has `{x}` where it has `{y}`"),
            (Some(x), None) => return format!("this instance has `{x}`, which it lacks"),
            (None, Some(y)) => return format!("it has `{y}`, which this instance lacks"),
            (None, None) => break,
        }
    }
    "the plans read the same".to_owned()
}

#[cfg(test)]
mod tests {
    use super::{plan_difference, Ledger, Progress, Timestamp, WriterState, DONE, SILENCE, STATE};
    use flow_runtime::instances::{SplitState, SplitWatermark};

    const STARTED: i64 = 1_000;

    fn body(record: Vec<u8>, kind: u8) -> Vec<u8> {
        assert_eq!(record[0], kind);
        record[1..].to_vec()
    }

    /// Two writers (1, 2) on partitions 0 and 1 of a 2-partition topic.
    fn two_writers() -> Ledger {
        let mut l = Ledger::new(2, STARTED);
        for p in 0..2 {
            for w in [1, 2] {
                l.heard(p, w, 0);
            }
        }
        l
    }

    #[test]
    fn a_writer_not_heard_on_a_partition_holds_it_back_and_idle_ones_do_not() {
        let mut l = two_writers();
        l.heard(0, 1, 0).watermark = 50;
        l.heard(0, 2, 0).watermark = 70;
        l.heard(1, 1, 0).watermark = 60;
        // Writer 2 said nothing on partition 1 but its hello: it holds partition 1 back.
        assert!(matches!(l.progress(&[0, 1]), Progress::Watermark(i64::MIN)));
        l.heard(1, 2, 0).idle = true;
        assert!(matches!(l.progress(&[0, 1]), Progress::Watermark(50)));
        assert!(matches!(l.progress(&[]), Progress::Waiting));
        for p in 0..2 {
            for w in [1, 2] {
                l.heard(p, w, 0).ended = true;
            }
        }
        assert!(matches!(l.progress(&[0, 1]), Progress::Ended));
    }

    #[test]
    fn each_partition_stands_on_its_own_writers() {
        let mut l = two_writers();
        l.heard(0, 1, 0).watermark = 50;
        l.heard(0, 2, 0).watermark = 70;
        l.heard(1, 1, 0).watermark = 60;
        l.heard(1, 2, 0).watermark = 40;
        assert_eq!(l.partition(0), (SplitState::Active, 50));
        assert_eq!(l.partition(1), (SplitState::Active, 40));
        // An idle writer holds nothing back; every writer idle, the partition is idle at
        // the smallest of their watermarks.
        l.heard(1, 2, 0).idle = true;
        assert_eq!(l.partition(1), (SplitState::Active, 60));
        l.heard(1, 1, 0).idle = true;
        assert_eq!(l.partition(1), (SplitState::Idle, 40));
        assert!(matches!(l.progress(&[0, 1]), Progress::Watermark(50)));
        assert!(matches!(l.progress(&[1]), Progress::Idle));
        // An ended writer counts no more; every writer ended, the partition is finished.
        l.heard(1, 2, 0).ended = true;
        assert_eq!(l.partition(1), (SplitState::Idle, 60));
        l.heard(1, 1, 0).ended = true;
        assert_eq!(l.partition(1).0, SplitState::Finished);
        assert!(matches!(l.progress(&[0, 1]), Progress::Watermark(50)));
        assert!(matches!(l.progress(&[1]), Progress::Ended));
    }

    #[test]
    fn a_state_record_hands_a_partition_over_without_undoing_newer_records() {
        let mut from = two_writers();
        *from.heard(1, 1, 0) = WriterState {
            watermark: 40,
            idle: false,
            ended: true,
        };
        *from.heard(1, 2, 0) = WriterState {
            watermark: 90,
            idle: true,
            ended: false,
        };
        let record = body(from.state_record(1, false), STATE);

        // The taker read a newer watermark of writer 2 (past the commit) before the record.
        let mut to = Ledger::new(2, STARTED);
        to.heard(1, 1, 0);
        *to.heard(1, 2, 0) = WriterState {
            watermark: 95,
            idle: false,
            ended: true,
        };
        to.merge_state(1, &record, STARTED + 1).unwrap();
        let got = &to.partitions[&1];
        assert!(got[&1].ended && got[&2].ended, "an end stays");
        assert_eq!(got[&2].watermark, 95, "a watermark only rises");
        assert!(!got[&2].idle, "the newer record's activity stands");
        assert!(!to.topic_ended);
        // A writer that ended is not added to those a reader waits for; a live one is.
        let mut fresh = Ledger::new(2, STARTED);
        fresh.merge_state(1, &record, STARTED + 1).unwrap();
        assert!(fresh.writers.contains(&2) && !fresh.writers.contains(&1));
        assert!(
            to.merge_state(1, &record[1..], STARTED).is_err(),
            "wrong size"
        );
    }

    fn split(id: u64, watermark: Timestamp) -> SplitWatermark {
        SplitWatermark {
            id,
            watermark,
            state: SplitState::Active,
        }
    }

    #[test]
    fn a_source_split_that_moved_holds_its_partitions_until_its_new_reader_moves_it() {
        // Writer 1 read splits 10 and 11, writer 2 split 12. Writer 1 gave split 11 up (its
        // instance left: it ended); writer 2, far ahead in event time, read none of it yet.
        let mut l = two_writers();
        let sources = [split(10, 9_000), split(11, 1_000), split(12, 9_500)];
        l.splits.heard(0, 1, false, &sources);
        l.heard(0, 1, 0).ended = true;
        l.heard(0, 2, 0).watermark = 9_400;
        assert!(matches!(l.progress(&[0]), Progress::Watermark(1_000)));
        l.splits
            .heard(0, 2, false, &[split(11, 1_500), split(12, 9_600)]);
        assert!(matches!(l.progress(&[0]), Progress::Watermark(1_500)));
        // A partition where every writer is idle stays idle.
        l.heard(1, 1, 0).ended = true;
        l.heard(1, 2, 0).idle = true;
        l.splits.heard(1, 2, false, &[split(11, 1_500)]);
        assert!(matches!(l.progress(&[1]), Progress::Idle));

        // Handed over with the partition, in this run; not from an earlier one.
        let record = body(l.state_record(0, false), STATE);
        let mut next = Ledger::new(2, STARTED);
        next.merge_state(0, &record, STARTED + 1).unwrap();
        assert!(matches!(next.progress(&[0]), Progress::Watermark(1_500)));
        let mut later = Ledger::new(2, STARTED);
        later.heard(0, 7, 0).watermark = 20_000;
        later.merge_state(0, &record, STARTED - 1).unwrap();
        assert!(matches!(later.progress(&[0]), Progress::Watermark(20_000)));
    }

    #[test]
    fn the_final_state_record_of_this_run_ends_a_reader_of_an_earlier_one_does_not() {
        let mut last = two_writers();
        for w in [1, 2] {
            last.heard(0, w, 0).ended = true;
        }
        let record = body(last.state_record(0, true), STATE);
        // A reader that read nothing else (it had no partition until the others left).
        let mut this_run = Ledger::new(2, STARTED);
        this_run.merge_state(0, &record, STARTED + 5).unwrap();
        assert!(this_run.topic_done());
        assert!(matches!(this_run.progress(&[0]), Progress::Waiting));
        // A later run reads it too (it lies past the last commit): written before it started,
        // by writers it does not know.
        let mut next_run = Ledger::new(2, STARTED);
        next_run.heard(0, 7, 0);
        next_run.merge_state(0, &record, STARTED - 5).unwrap();
        assert!(!next_run.topic_done());
        assert!(matches!(
            next_run.progress(&[0]),
            Progress::Watermark(i64::MIN)
        ));
    }

    #[test]
    fn a_partition_taken_over_at_a_commit_waits_for_its_state_record() {
        // Writer 1 ended on partition 0 before the commit; writer 2 ends after it. The new
        // reader has heard of writer 2 only.
        let mut from = two_writers();
        from.heard(0, 1, 0).ended = true;
        let record = body(from.state_record(0, false), STATE);
        let mut to = Ledger::new(2, STARTED);
        to.awaiting.insert(0);
        to.heard(0, 2, 0).ended = true;
        assert!(matches!(to.progress(&[0]), Progress::Watermark(i64::MIN)));
        to.merge_state(0, &record, STARTED + 1).unwrap();
        assert!(matches!(to.progress(&[0]), Progress::Ended));
    }

    #[test]
    fn a_writer_an_earlier_run_left_unfinished_is_not_waited_for() {
        let mut crashed = two_writers();
        crashed.heard(0, 1, 0).watermark = 10;
        let record = body(crashed.state_record(0, false), STATE);
        let mut l = Ledger::new(2, STARTED);
        l.heard(0, 7, 0).ended = true;
        l.merge_state(0, &record, STARTED - 1).unwrap();
        assert!(!l.writers.contains(&1) && !l.writers.contains(&2));
        assert!(matches!(l.progress(&[0]), Progress::Ended));
    }

    #[test]
    fn done_records_of_this_run_cover_the_topic() {
        let a = two_writers();
        let mut l = Ledger::new(2, STARTED);
        l.heard(0, 2, 0);
        // Written before this reader started, but naming a writer it knows: this run.
        l.merge_done(&body(a.done_record(&[0]), DONE), STARTED - 1)
            .unwrap();
        assert!(!l.topic_done());
        // Of an earlier run: old and naming no writer it knows.
        let old = {
            let mut o = Ledger::new(2, 0);
            o.heard(1, 9, 0);
            o.done_record(&[1])
        };
        l.merge_done(&body(old.clone(), DONE), STARTED - 1).unwrap();
        assert!(!l.topic_done());
        l.merge_done(&body(old, DONE), STARTED + 1).unwrap();
        assert!(
            l.topic_done(),
            "a recent one counts whatever writers it names"
        );
        assert!(
            l.merge_done(&[0, 0, 0, 9, 1], STARTED).is_err(),
            "wrong size"
        );
    }

    #[test]
    fn a_writer_silent_for_a_lease_while_others_write_is_taken_as_gone() {
        let mut l = Ledger::new(2, 0);
        for p in 0..2 {
            l.heard(p, 1, 1_000).watermark = 500;
            l.heard(p, 2, 1_000).watermark = 900;
        }
        // Writer 2 goes on; writer 1 falls silent.
        writes(&mut l, 0, 2, 1_000, 1_000 + SILENCE);
        l.heard(0, 2, 1_000 + SILENCE).watermark = 5_000;
        assert!(l.silent(None).is_empty(), "not outlived by a lease yet");
        assert!(matches!(l.progress(&[0]), Progress::Watermark(500)));
        l.heard(1, 2, 1_001 + SILENCE).watermark = 6_000;
        assert_eq!(l.silent(None), vec![1]);
        // No longer holds the watermark back, nor the end; the state record says it ended.
        assert!(matches!(l.progress(&[0, 1]), Progress::Watermark(5_000)));
        let mut next = Ledger::new(2, 0);
        next.merge_state(0, &l.state_record(0, false)[1..], 5)
            .unwrap();
        assert!(next.partitions[&0][&1].ended && !next.partitions[&0][&2].ended);
        for p in 0..2 {
            l.heard(p, 2, 2_000 + SILENCE).ended = true;
        }
        assert!(matches!(l.progress(&[0, 1]), Progress::Ended));
    }

    /// Records of `writer` on `partition` from `from` to `to`, one every 4 s (a live writer
    /// writes every [`ALIVE_EVERY`]).
    fn writes(l: &mut Ledger, partition: i32, writer: u64, from: Timestamp, to: Timestamp) {
        for at in (from..to).step_by(4_000).chain([to]) {
            l.heard(partition, writer, at);
        }
    }

    #[test]
    fn a_broker_outage_is_no_writers_silence() {
        let mut l = Ledger::new(1, 0);
        l.heard(0, 1, 1_000);
        l.heard(0, 2, 1_000);
        // The broker was away for 40 s; writer 2's first record after it comes before
        // writer 1's.
        let back = 41_000;
        writes(&mut l, 0, 2, back, back + 4_000);
        assert!(l.silent(None).is_empty(), "the outage counted as silence");
        // Writer 1 never comes back (its instance died in the outage): silent for a lease
        // of record time after it.
        writes(&mut l, 0, 2, back, back + SILENCE);
        assert!(l.silent(None).is_empty(), "not outlived by a lease yet");
        l.heard(0, 2, back + SILENCE + 2);
        assert_eq!(l.silent(None), vec![1]);
    }

    #[test]
    fn by_the_clock_only_when_every_open_writer_is_silent() {
        let mut l = Ledger::new(1, 0);
        l.heard(0, 1, 1_000);
        l.heard(0, 2, 1_000);
        // A broker outage: no record time passes (the reader gives no clock then).
        assert!(l.silent(None).is_empty());
        // Writer 2 still writes: writer 1 is not outlived yet, and the clock takes none.
        writes(&mut l, 0, 2, 1_000, 1_000 + SILENCE);
        assert!(l.silent(Some(1_001 + SILENCE)).is_empty());
        // Writer 2 ended; writer 1 stays silent: by the clock.
        l.heard(0, 2, 1_000 + SILENCE).ended = true;
        assert!(l.silent(Some(1_000 + SILENCE)).is_empty());
        assert_eq!(l.silent(Some(1_001 + SILENCE)), vec![1]);
        assert!(matches!(l.progress(&[0]), Progress::Ended));
        // Two writers silent by the clock (two crashed instances): both.
        let mut two = Ledger::new(1, 0);
        two.heard(0, 1, 1_000);
        two.heard(0, 2, 2_000);
        let mut gone = two.silent(Some(2_001 + SILENCE));
        gone.sort();
        assert_eq!(gone, vec![1, 2]);
    }

    #[test]
    fn the_difference_of_two_plans_is_their_first_differing_line() {
        let a = "#0 source `s` uid=- <- [] source\n#1 map `m` uid=- <- [#0] forward\n";
        let b = "#0 source `s` uid=- <- [] source\n#1 filter `f` uid=- <- [#0] forward\n";
        assert_eq!(
            plan_difference(a, b),
            "this instance has `#1 map `m` uid=- <- [#0] forward` where it has `#1 filter `f` uid=- <- [#0] forward`"
        );
        assert!(plan_difference(a, "#0 source `s` uid=- <- [] source\n").contains("which it lacks"));
        assert_eq!(plan_difference(a, a), "the plans read the same");
    }
}
