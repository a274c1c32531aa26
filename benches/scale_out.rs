//! A windowed word count shared by instances of a job (`--instance-group`, README "Scaling
//! out") against the same job in one process and a hand-written rdkafka loop: what the
//! repartition topic costs, and what 1, 2 and 3 instances reach on this machine.
//!
//! Every case reads a fresh 12-partition topic of text lines (three words each from a 40-word
//! vocabulary, record timestamps 1 ms apart), written by one producer 8 s after the case's
//! consumers started (so that a group has formed before rows flow: a group that forms while
//! they flow splits them unevenly), counts words per 1-second event-time tumbling window and
//! writes the counts as JSON to a fresh topic. Each case is timed from the start of the
//! write to its end; the write itself runs at about 30,000 lines/s on the tests' broker and
//! bounds every case:
//! - `loop`: one rdkafka consumer of every partition, a `HashMap` per window, the counts of
//!   every window produced at the end (it knows the input is complete; the jobs fire windows
//!   as watermarks pass);
//! - `process pN`: the `flow!` job in one process at parallelism N (p1 is fused: the
//!   `key_by` costs nothing; p2 exchanges rows between threads);
//! - `group xN`: N instances of the job in an instance group (threads of this process, each
//!   its own `StreamEnv` at parallelism 1, as N processes would be): every word crosses the
//!   repartition topic;
//! - `group xN state`: the same with a checkpoint directory (the readers save the windows'
//!   state at their commits, which move it with the partitions);
//! - `group xN eos` and `eos state`: `--processing-guarantee exactly-once` (the sources'
//!   repartition writes and the readers' output and state records in Kafka transactions,
//!   committed every 500 ms, with an exactly-once `KafkaSink`) without and with the
//!   checkpoint directory. Only on a broker that completes transactions (noida-db:
//!   `FLOW_BENCH_KAFKA_ENGINE=noida`); skipped on tansu.
//!
//! A run ends when the flat_maps of all instances saw every line (their sources are stopped
//! then) and the jobs finished; the counts are checked against the loop's.
//!
//! The broker: `FLOW_BENCH_KAFKA_ENGINE=memory` (default) starts tansu's memory engine on
//! 127.0.0.1:19292; `sqlite`, tansu's sqlite store on 127.0.0.1:19294; `noida`, noida-db on
//! 127.0.0.1:19393 (each stopped at the end).
//!
//! ```text
//! cargo bench --bench scale_out
//! FLOW_BENCH_LINES=50000 FLOW_BENCH_RUNS=1 cargo bench --bench scale_out   # quick check
//! FLOW_BENCH_KAFKA_ENGINE=noida cargo bench --bench scale_out              # with exactly-once
//! ```

#[path = "common/kafka_broker.rs"]
mod kafka_broker;

use flow::connectors::format::{Json, Utf8};
use flow::connectors::kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use flow::connectors::kafka::rdkafka::message::Message;
use flow::connectors::kafka::rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use flow::connectors::kafka::rdkafka::{ClientConfig, Offset, TopicPartitionList};
use flow::connectors::kafka::{DeliveryGuarantee, KafkaAdmin};
use flow::instances::InstanceConfig;
use flow::prelude::*;
use flow::StopHandle;
use kafka_broker::{address, broker_script, env_num, send_record, unique};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 12;
const VOCABULARY: u64 = 40;
const BASE: i64 = 1_700_000_000_000;

static BROKER: OnceLock<String> = OnceLock::new();

fn broker() -> &'static str {
    BROKER.get().expect("set in main")
}

/// One window's count of one word, as the job writes it.
#[derive(Row, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct WindowCount {
    start: i64,
    end: i64,
    word: String,
    count: u64,
}

fn line(n: u64) -> String {
    let h = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!(
        "w{} w{} w{}",
        h % VOCABULARY,
        (h >> 16) % VOCABULARY,
        (h >> 32) % VOCABULARY
    )
}

fn producer() -> BaseProducer {
    kafka_broker::producer(broker())
}

/// `lines` lines into `topic`, round-robin over its partitions, 1 ms of event time apart.
fn fill(topic: &str, lines: usize) {
    let p = producer();
    for i in 0..lines {
        let value = line(i as u64);
        let record = BaseRecord::to(topic)
            .partition(i as i32 % PARTITIONS)
            .payload(value.as_bytes())
            .timestamp(BASE + i as i64);
        send_record(&p, record);
    }
    p.flush(Duration::from_secs(300)).expect("fill flush");
}

/// How long the consumers get to join their groups before the input is written: a group
/// that forms while rows flow splits them unevenly (the first member reads everything).
const SETTLE: Duration = Duration::from_secs(8);

/// The hand-written loop: counts per (window start, word), then produces them. Timed from
/// the start of the fill.
fn by_hand(input: &str, output: &str, lines: usize) -> (Duration, u64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker())
        .set("group.id", unique("bench-loop"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(input, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let filling = {
        let input = input.to_owned();
        std::thread::spawn(move || {
            std::thread::sleep(SETTLE);
            let start = Instant::now();
            fill(&input, lines);
            start
        })
    };
    let mut counts: HashMap<(i64, String), u64> = HashMap::new();
    let mut read = 0;
    while read < lines {
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m.expect("consume");
        let ts = m.timestamp().to_millis().unwrap();
        let window = ts - ts.rem_euclid(1000);
        for w in std::str::from_utf8(m.payload().unwrap())
            .unwrap()
            .split_whitespace()
        {
            *counts.entry((window, w.to_owned())).or_default() += 1;
        }
        read += 1;
    }
    let p = producer();
    let mut words = 0;
    for ((start, word), count) in counts {
        words += count;
        let v = serde_json::to_vec(&WindowCount {
            start,
            end: start + 1000,
            word,
            count,
        })
        .unwrap();
        send_record(&p, BaseRecord::to(output).payload(&v[..]));
    }
    p.flush(Duration::from_secs(60)).expect("flush");
    let start = filling.join().unwrap();
    (start.elapsed(), words)
}

/// The job in `env`: lines of `input`, words counted per window into `output`; the source
/// stops once `seen` (shared by every instance) reached `lines`.
fn job(
    env: &StreamEnv,
    input: &str,
    output: &str,
    group: &str,
    exactly_once: bool,
    seen: Arc<AtomicUsize>,
    stops: &mut Vec<StopHandle>,
) {
    let src = KafkaSource::builder()
        .bootstrap_servers(broker())
        .topic(input)
        .group_id(group)
        .format(Utf8)
        .build()
        .unwrap();
    stops.push(src.stop_handle());
    let mut sink = KafkaSink::builder()
        .bootstrap_servers(broker())
        .topic(output)
        .format(Json::<WindowCount>::new());
    if exactly_once {
        sink = sink
            .delivery_guarantee(DeliveryGuarantee::ExactlyOnce)
            .transactional_id_prefix("bench");
    }
    let sink = sink.build().unwrap();
    flow! { env =>
        source(src, Watermarks::bounded_out_of_orderness(Duration::from_secs(1)))
            .flat_map(move |l: String, out: &mut Vec<String>| {
                seen.fetch_add(1, Ordering::Relaxed);
                out.extend(l.split_whitespace().map(str::to_owned))
            })
            .key_by(|w| w.clone())
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .process(|word: &String, window: &TimeWindow, rows: &[String], out: &mut Vec<WindowCount>| {
                out.push(WindowCount {
                    start: window.start,
                    end: window.end,
                    word: word.clone(),
                    count: rows.len() as u64,
                })
            })
            .name("count")
            .sink_to(sink);
    }
}

/// One case: the loop, the job in one process, or a group of instances.
struct Case {
    name: &'static str,
    /// Instances of the group; 0: one process, no group.
    instances: usize,
    /// The one process's parallelism (a group's instances run at 1).
    parallelism: usize,
    /// `--processing-guarantee exactly-once` (groups only).
    exactly_once: bool,
    /// A checkpoint directory for the group (state saved at the readers' commits).
    state: bool,
}

const fn case(name: &'static str, instances: usize, parallelism: usize) -> Case {
    Case {
        name,
        instances,
        parallelism,
        exactly_once: false,
        state: false,
    }
}

const fn group(name: &'static str, instances: usize, exactly_once: bool, state: bool) -> Case {
    Case {
        name,
        instances,
        parallelism: 1,
        exactly_once,
        state,
    }
}

/// Runs `case`'s job (instances, or one process) over `input`.
fn flow_run(input: &str, output: &str, lines: usize, case: &Case) -> (Duration, u64) {
    let seen = Arc::new(AtomicUsize::new(0));
    let mut stops = Vec::new();
    let group = unique("bench-group");
    let state = tempfile::tempdir().expect("a checkpoint directory");
    let envs: Vec<StreamEnv> = if case.instances == 0 {
        vec![StreamEnv::new().with_parallelism(case.parallelism)]
    } else {
        (0..case.instances)
            .map(|i| {
                let env = StreamEnv::new().with_instance_group(InstanceConfig {
                    partitions: 12,
                    // Exactly-once needs ids (the transactional ids are named after them).
                    id: case.exactly_once.then(|| format!("i{i}")),
                    exactly_once: case.exactly_once,
                    ..InstanceConfig::new(group.clone(), broker())
                });
                if case.state {
                    env.with_checkpoint_dir(state.path(), 1)
                } else {
                    env
                }
            })
            .collect()
    };
    for env in &envs {
        let eos = case.exactly_once;
        job(env, input, output, &group, eos, seen.clone(), &mut stops);
    }
    let handles: Vec<_> = envs
        .into_iter()
        .map(|env| {
            std::thread::spawn(move || env.execute("scale_out bench").expect("the job runs"))
        })
        .collect();
    std::thread::sleep(SETTLE);
    let start = Instant::now();
    fill(input, lines);
    while seen.load(Ordering::Relaxed) < lines {
        std::thread::sleep(Duration::from_millis(5));
    }
    for s in &stops {
        s.stop();
    }
    if std::env::var("FLOW_BENCH_VERBOSE").is_ok() {
        eprintln!(
            "    every line seen after {:.2?}; sources stopped",
            start.elapsed()
        );
    }
    let mut words = 0;
    for h in handles {
        words += h.join().unwrap().operator("count").unwrap().rows_in;
    }
    (start.elapsed(), words)
}

fn main() {
    let engine = std::env::var("FLOW_BENCH_KAFKA_ENGINE").unwrap_or_else(|_| "memory".into());
    let address = address(&engine);
    if std::env::var("FLOW_BENCH_VERBOSE").is_ok() {
        // Logs to stderr as a job binary's (RUST_LOG).
        let _ = StreamEnv::from_matches(
            &StreamEnv::command("scale_out bench").get_matches_from(["bench"]),
        );
    }
    broker_script("start", &engine);
    BROKER.set(address.to_string()).unwrap();
    let lines = env_num("FLOW_BENCH_LINES", 300_000);
    let runs = env_num("FLOW_BENCH_RUNS", 3);
    let admin = KafkaAdmin::connect(broker()).unwrap();
    let words = 3 * lines as u64;
    let transactions = engine == "noida";
    let cases: Vec<Case> = [
        case("loop", 0, 0),
        case("process p1", 0, 1),
        case("process p2", 0, 2),
        group("group x1", 1, false, false),
        group("group x2", 2, false, false),
        group("group x3", 3, false, false),
        group("group x1 state", 1, false, true),
        group("group x1 eos", 1, true, false),
        group("group x1 eos state", 1, true, true),
        group("group x2 state", 2, false, true),
        group("group x2 eos state", 2, true, true),
    ]
    .into_iter()
    .filter(|c| transactions || !c.exactly_once)
    .collect();
    // `FLOW_BENCH_CASES=group` runs the cases whose name contains it (and the loop).
    let only = std::env::var("FLOW_BENCH_CASES").unwrap_or_default();
    let mut best = vec![Duration::MAX; cases.len()];
    for run in 0..runs {
        for (i, case) in cases.iter().enumerate() {
            let name = case.name;
            if i > 0 && !name.contains(only.as_str()) {
                continue;
            }
            let (input, output) = (unique("bench-lines"), unique("bench-counts"));
            admin.create_topic(&input, PARTITIONS).unwrap();
            admin.create_topic(&output, 4).unwrap();
            let (d, counted) = if name == "loop" {
                by_hand(&input, &output, lines)
            } else {
                flow_run(&input, &output, lines, case)
            };
            assert_eq!(counted, words, "{name}: every word counted once");
            eprintln!(
                "  run {}: {name} {:.2} s ({:.0} lines/s)",
                run + 1,
                d.as_secs_f64(),
                lines as f64 / d.as_secs_f64()
            );
            best[i] = best[i].min(d);
        }
    }
    broker_script("stop", &engine);
    let rate = |i: usize| lines as f64 / best[i].as_secs_f64();
    println!("windowed word count over Kafka, {engine} broker, {lines} lines, best of {runs} (lines/s, ratio to the loop):");
    for (i, case) in cases.iter().enumerate() {
        if best[i] == Duration::MAX {
            continue;
        }
        println!(
            "  {:<20} {:>9.0}  {:.2}",
            case.name,
            rate(i),
            rate(i) / rate(0)
        );
    }
    // Ratios of two cases that ran.
    let ratio = |a: &str, b: &str| {
        let at = |n: &str| cases.iter().position(|c| c.name == n);
        let (a, b) = (at(a)?, at(b)?);
        (best[a] != Duration::MAX && best[b] != Duration::MAX).then(|| rate(a) / rate(b))
    };
    let pairs = [
        (
            "repartition topic against the in-process exchange",
            "group x1",
            "process p2",
        ),
        ("saved state", "group x1 state", "group x1"),
        ("exactly-once", "group x1 eos", "group x1"),
        (
            "exactly-once with saved state",
            "group x1 eos state",
            "group x1 state",
        ),
        (
            "exactly-once with saved state, 2 instances",
            "group x2 eos state",
            "group x2 state",
        ),
    ];
    for (what, a, b) in pairs {
        if let Some(r) = ratio(a, b) {
            println!("  {what}: {a} / {b} = {r:.2}");
        }
    }
}
