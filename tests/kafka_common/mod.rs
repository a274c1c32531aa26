//! Shared by the `kafka_*` tests: the broker (started with `scripts/kafka-broker` when it is
//! not running; a broker that cannot start fails the test, it never skips it), fresh topic
//! names, and producing and reading rows.
#![allow(dead_code)]

use flow::connectors::format::{Decode, Json};
use flow::connectors::kafka::{KafkaAdmin, KafkaSink, KafkaSource, StartingOffsets};
use flow::prelude::*;
use flow::{Sink, SinkWriter, Timestamp};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// The seed's row: `id: i32, name: String`, as one JSON object.
#[derive(Row, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Person {
    pub id: i32,
    pub name: String,
}

/// The broker's address: `FLOW_KAFKA_BOOTSTRAP`, or the script's default broker (noida-db,
/// which completes transactions) on `127.0.0.1:9092`.
pub fn bootstrap() -> &'static str {
    static BROKER: OnceLock<String> = OnceLock::new();
    BROKER.get_or_init(|| started("FLOW_KAFKA_BOOTSTRAP", "noida", 9092))
}

/// The port of the broker that re-forms a consumer group after a member dies (tansu-main).
pub const GROUP_PORT: u16 = 19492;

/// The address of a broker that deals a group's partitions anew when a member dies, for the
/// crash tests of instance groups: `FLOW_KAFKA_GROUP_BOOTSTRAP`, or tansu-main started on
/// 127.0.0.1:19492 by `FLOW_KAFKA_BROKER=tansu-main scripts/kafka-broker start` (tansu 0.6
/// leaves a dead member's partitions unassigned; noida-db never deals them anew, and answers
/// the members that stay with ILLEGAL_GENERATION once one left). Its memory engine answers
/// ListOffsets(LATEST) short, so read it with [`read_until_idle`], not bounded reads.
pub fn group_bootstrap() -> &'static str {
    static BROKER: OnceLock<String> = OnceLock::new();
    BROKER.get_or_init(|| started("FLOW_KAFKA_GROUP_BOOTSTRAP", "tansu-main", GROUP_PORT))
}

/// `$var`, or the address of `broker` on `port`, started by `scripts/kafka-broker start` when
/// it does not run; a broker that cannot start fails the test.
fn started(var: &str, broker: &str, port: u16) -> String {
    if let Ok(b) = std::env::var(var) {
        return b;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka-broker");
    let out = Command::new("bash")
        .arg(script)
        .arg("start")
        .env("FLOW_KAFKA_BROKER", broker)
        .env("FLOW_KAFKA_PORT", port.to_string())
        .env_remove("FLOW_KAFKA_STATE_DIR")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    assert!(
        out.status.success(),
        "the Kafka broker ({broker}) could not be started by `FLOW_KAFKA_BROKER={broker} scripts/kafka-broker start` ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    format!("127.0.0.1:{port}")
}

/// Creates a fresh topic on the broker at `servers` and returns its name.
pub fn topic_on(servers: &str, prefix: &str, partitions: i32) -> String {
    let name = unique(prefix);
    KafkaAdmin::connect(servers)
        .expect("admin client")
        .create_topic(&name, partitions)
        .unwrap_or_else(|e| panic!("create topic {name}: {e}"));
    name
}

/// A topic name no other test or run uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates a fresh topic with `partitions` partitions and returns its name.
pub fn topic(prefix: &str, partitions: i32) -> String {
    topic_on(bootstrap(), prefix, partitions)
}

pub fn person(n: i64) -> Person {
    Person {
        id: n as i32,
        name: format!("p{n}"),
    }
}

/// Writes `Person` rows `from..=to` as JSON to `topic` with a flow job (keyed by id).
pub fn produce_people(topic: &str, from: i64, to: i64) {
    produce_people_to(bootstrap(), topic, from, to)
}

/// [`produce_people`] to the broker at `servers`.
pub fn produce_people_to(servers: &str, topic: &str, from: i64, to: i64) {
    let env = StreamEnv::new().with_parallelism(2);
    let sink = KafkaSink::builder()
        .bootstrap_servers(servers)
        .topic(topic)
        .format(Json::<Person>::new())
        .key_field("id")
        .build()
        .unwrap();
    flow! { env =>
        source(NumberSequence::new(from, to), Watermarks::no_watermarks())
            .map(person)
            .sink_to(sink);
    }
    env.execute("produce people").expect("produce");
}

/// Writes `values` (in order) to `topic` as raw records.
pub fn produce_raw(topic: &str, values: Vec<Vec<u8>>) {
    produce_raw_to(bootstrap(), topic, values)
}

/// [`produce_raw`] on the broker at `servers`.
pub fn produce_raw_to(servers: &str, topic: &str, values: Vec<Vec<u8>>) {
    let env = StreamEnv::new();
    let sink = KafkaSink::builder()
        .bootstrap_servers(servers)
        .topic(topic)
        .build()
        .unwrap();
    flow! { env =>
        from_collection(values).sink_to(sink);
    }
    env.execute("produce raw").expect("produce raw");
}

/// Every row of `topic` (bounded read from the earliest offsets, no group).
#[track_caller]
pub fn read_all<F>(topic: &str, format: F, parallelism: usize) -> Vec<F::Row>
where
    F: Decode,
    F::Row: Clone,
{
    read_all_from(bootstrap(), topic, format, parallelism)
}

/// [`read_all`] from the broker at `servers`.
#[track_caller]
pub fn read_all_from<F>(servers: &str, topic: &str, format: F, parallelism: usize) -> Vec<F::Row>
where
    F: Decode,
    F::Row: Clone,
{
    read(servers, topic, format, parallelism, false)
}

/// Every row of `topic` on `servers`, read from the earliest offsets until no record came for
/// 2 s: for a broker whose end offsets cannot be trusted (tansu-main).
pub fn read_until_idle<F>(servers: &str, topic: &str, format: F) -> Vec<F::Row>
where
    F: Decode,
    F::Row: Clone,
{
    let env = StreamEnv::new();
    let src = KafkaSource::builder()
        .bootstrap_servers(servers)
        .topic(topic)
        .group_id(unique("read-until-idle"))
        .starting_offsets(StartingOffsets::Earliest)
        .format(format)
        .stop_when_idle(std::time::Duration::from_secs(2))
        .build()
        .unwrap();
    flow! { env =>
        let rows = source(src, Watermarks::no_watermarks()).collect();
    }
    env.execute("read until idle").expect("read until idle");
    rows.take()
}

/// Every committed row of `topic` (bounded `read_committed` read from the earliest offsets):
/// what a consumer of an exactly-once sink's output sees.
#[track_caller]
pub fn read_committed<F>(servers: &str, topic: &str, format: F) -> Vec<F::Row>
where
    F: Decode,
    F::Row: Clone,
{
    read(servers, topic, format, 2, true)
}

#[track_caller]
fn read<F>(
    servers: &str,
    topic: &str,
    format: F,
    parallelism: usize,
    committed: bool,
) -> Vec<F::Row>
where
    F: Decode,
    F::Row: Clone,
{
    let env = StreamEnv::new().with_parallelism(parallelism);
    let mut src = KafkaSource::builder()
        .bootstrap_servers(servers)
        .topic(topic)
        .starting_offsets(StartingOffsets::Earliest)
        .format(format)
        .bounded();
    if committed {
        src = src.read_committed();
    }
    let src = src.build().unwrap();
    flow! { env =>
        let rows = source(src, Watermarks::no_watermarks()).collect();
    }
    // A bounded read ends at each partition's end as it was when the read started; a
    // `read_committed` one at its last stable offset, which an open transaction holds back
    // for as long as it stays open (noida-db never aborts one). Bounded by a deadline, so
    // that a transaction left open fails the test rather than hanging it.
    let (done, ended) = std::sync::mpsc::channel();
    let reading = std::thread::spawn(move || {
        let _ = done.send(env.execute("read all").map(|_| rows.take()));
    });
    match ended.recv_timeout(READ_DEADLINE) {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => panic!("reading `{topic}` failed: {e}"),
        // The reading thread panicked: its panic, not a timeout.
        Err(RecvTimeoutError::Disconnected) => match reading.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => panic!("reading `{topic}` ended without its rows"),
        },
        Err(RecvTimeoutError::Timeout) if committed => panic!(
            "reading `{topic}` read_committed did not reach its end in {READ_DEADLINE:?}: \
             a transaction on it is still open (its last stable offset stays behind)"
        ),
        Err(RecvTimeoutError::Timeout) => {
            panic!("reading `{topic}` did not reach its end in {READ_DEADLINE:?}")
        }
    }
}

/// How long a bounded read of a test's topic may take.
const READ_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// Panics unless `ids` is exactly `from..=to`, each once.
pub fn assert_exactly_once(mut ids: Vec<i32>, from: i32, to: i32) {
    ids.sort_unstable();
    let expected: Vec<i32> = (from..=to).collect();
    if ids != expected {
        let mut dups = Vec::new();
        for w in ids.windows(2) {
            if w[0] == w[1] {
                dups.push(w[0]);
            }
        }
        let missing = first_missing(&ids, &expected);
        panic!(
            "expected ids {from}..={to} once each: got {} rows, {} duplicates (first {:?}), missing (first) {:?}",
            ids.len(),
            dups.len(),
            &dups[..dups.len().min(10)],
            missing
        );
    }
}

/// The first ten of `expected` that `ids` lacks.
fn first_missing(ids: &[i32], expected: &[i32]) -> Vec<i32> {
    let set: std::collections::HashSet<i32> = ids.iter().copied().collect();
    expected
        .iter()
        .copied()
        .filter(|i| !set.contains(i))
        .take(10)
        .collect()
}

/// Panics unless every id of `from..=to` is in `ids` (and nothing else); returns how many
/// were there more than once.
pub fn assert_at_least_once(mut ids: Vec<i32>, from: i32, to: i32) -> usize {
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    let duplicates = before - ids.len();
    let expected: Vec<i32> = (from..=to).collect();
    if ids != expected {
        let missing = first_missing(&ids, &expected);
        panic!(
            "expected every id of {from}..={to} at least once: {} distinct, missing (first) {missing:?}",
            ids.len()
        );
    }
    duplicates
}

/// The offsets `group` committed for `topic`'s partitions `0..partitions`, summed (a partition
/// without a commit counts 0).
pub fn committed_sum(servers: &str, group: &str, topic: &str, partitions: i32) -> i64 {
    use flow::connectors::kafka::rdkafka::consumer::Consumer;
    use flow::connectors::kafka::rdkafka::{Offset, TopicPartitionList};
    let consumer = group_consumer(servers, group);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(tpl, std::time::Duration::from_secs(10))
        .expect("committed offsets");
    committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .sum()
}

/// Commits `offset` for partition `partition` of `topic` in `group` (a group without members,
/// as a tool would).
pub fn commit_offset(servers: &str, group: &str, topic: &str, partition: i32, offset: i64) {
    use flow::connectors::kafka::rdkafka::consumer::{CommitMode, Consumer};
    use flow::connectors::kafka::rdkafka::{Offset, TopicPartitionList};
    let consumer = group_consumer(servers, group);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
        .expect("offset");
    consumer
        .commit(&tpl, CommitMode::Sync)
        .unwrap_or_else(|e| panic!("cannot commit {offset} for {group}: {e}"));
}

/// A consumer in `group` that subscribes to nothing: for the group's committed offsets.
fn group_consumer(
    servers: &str,
    group: &str,
) -> flow::connectors::kafka::rdkafka::consumer::BaseConsumer {
    flow::connectors::kafka::rdkafka::ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("group.id", group)
        .create()
        .expect("consumer")
}

/// The value of the configuration entry `name` of `topic`, as the broker describes it.
pub fn topic_config(servers: &str, topic: &str, name: &str) -> Option<String> {
    use flow::connectors::kafka::rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    use flow::connectors::kafka::rdkafka::client::DefaultClientContext;
    use flow::connectors::kafka::rdkafka::ClientConfig;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .create()
        .expect("admin client");
    let options = AdminOptions::new().request_timeout(Some(std::time::Duration::from_secs(10)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let described = runtime
        .block_on(admin.describe_configs([&ResourceSpecifier::Topic(topic)], &options))
        .expect("describe configs");
    let resource = described
        .into_iter()
        .next()
        .expect("one resource")
        .unwrap_or_else(|e| panic!("describe the configs of `{topic}`: {e}"));
    resource.get(name).and_then(|e| e.value.clone())
}

/// The broker [`OwnBroker`] runs: noida-db, which keeps its data across a restart.
const OWN_BROKER: &str = "noida";

/// A second broker this test starts, stops and restarts itself (through
/// `scripts/kafka-broker` with its own port and state directory); stopped when dropped.
pub struct OwnBroker {
    port: u16,
    dir: std::path::PathBuf,
}

impl OwnBroker {
    /// Starts a broker with an empty database on `port`.
    pub fn start(port: u16, name: &str) -> Self {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join(format!("kafka-broker-{name}"));
        let b = OwnBroker { port, dir };
        b.run("start", false);
        b
    }

    /// `127.0.0.1:port`.
    pub fn servers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the broker (SIGTERM, as an operator would).
    pub fn stop(&self) {
        self.run("stop", false);
    }

    /// Starts it again on the data it had.
    pub fn restart(&self) {
        self.run("start", true);
    }

    /// Freezes the broker (SIGSTOP): it keeps its connections and its state, and answers
    /// nothing until [`OwnBroker::thaw`], as a broker cut off by the network or stalled.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen broker run on (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self
            .pid()
            .unwrap_or_else(|| panic!("no broker runs on port {}", self.port));
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// The broker's PID, from the file `scripts/kafka-broker` writes.
    fn pid(&self) -> Option<String> {
        let file = self.dir.join(format!("{OWN_BROKER}.pid"));
        Some(std::fs::read_to_string(file).ok()?.trim().to_owned())
    }

    /// `scripts/kafka-broker <command>` for this broker.
    fn script(&self, command: &str, keep_data: bool) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka-broker"))
            .arg(command)
            .env("FLOW_KAFKA_BROKER", OWN_BROKER)
            .env("FLOW_KAFKA_PORT", self.port.to_string())
            .env("FLOW_KAFKA_STATE_DIR", &self.dir)
            .env("FLOW_KAFKA_KEEP_DATA", if keep_data { "1" } else { "0" });
        cmd
    }

    fn run(&self, command: &str, keep_data: bool) {
        let out = self
            .script(command, keep_data)
            .output()
            .unwrap_or_else(|e| panic!("cannot run scripts/kafka-broker: {e}"));
        assert!(
            out.status.success(),
            "`scripts/kafka-broker {command}` on port {} failed ({}):\n{}\n{}",
            self.port,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        // A frozen broker would not end on the SIGTERM of `stop`.
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").args(["-CONT", &pid]).status();
        }
        let _ = self.script("stop", false).output();
    }
}

/// A sink that shares the ids of its rows at once (a `collect()` hands rows over only at the
/// end), for tests that watch an unbounded job.
#[derive(Clone, Default)]
pub struct SharedIds(Arc<Mutex<Vec<i32>>>);

impl SharedIds {
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    pub fn ids(&self) -> Vec<i32> {
        self.0.lock().unwrap().clone()
    }
}

pub struct SharedIdsWriter(Arc<Mutex<Vec<i32>>>);

impl Sink<Person> for SharedIds {
    type Writer = SharedIdsWriter;
    fn create_writer(&self, _: &RuntimeContext) -> flow::Result<SharedIdsWriter> {
        Ok(SharedIdsWriter(self.0.clone()))
    }
}

impl SinkWriter<Person> for SharedIdsWriter {
    fn write(&mut self, row: Person, _: Timestamp) {
        self.0.lock().unwrap().push(row.id);
    }
    fn finish(&mut self) -> flow::Result<()> {
        Ok(())
    }
}

/// Creates topic `name` on the test broker unless it exists (the fixed topics SQL tables name).
pub fn ensure_topic(name: &str, partitions: i32) {
    let admin = KafkaAdmin::connect(bootstrap()).expect("admin client");
    if let Err(e) = admin.create_topic(name, partitions) {
        let m = e.to_string();
        assert!(
            m.to_lowercase().contains("exist"),
            "create topic {name}: {m}"
        );
    }
}
