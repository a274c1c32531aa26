//! Kafka source -> map -> Kafka sink against a bare rdkafka consume/produce loop doing the
//! same work on the same broker (DESIGN.md §6: flow reaches >= 90 % of the loop).
//!
//! Both read the same pre-filled 4-partition topic of JSON rows `{"id":..,"name":..}` from
//! the beginning, decode each row with serde_json, upper-case the name, encode it again and
//! produce it to a fresh topic with the same producer settings (idempotent, `acks=all`,
//! `linger.ms=5`), until every input row was read and every output row acknowledged.
//! flow runs with parallelism 1 (one consumer, one producer), as the loop does; its source is
//! unbounded and stopped (with its stop handle) once the map saw every row, as the loop stops
//! once it read every row.
//!
//! Three brokers, each started on a port of its own and stopped at the end:
//! `FLOW_BENCH_KAFKA_ENGINE=sqlite` (default) starts tansu 0.6 with its sqlite store on
//! 127.0.0.1:19294 (`scripts/kafka-broker` builds it with cargo when missing, ~20 min once),
//! which bounds both sides at ~10k records/s;
//! `FLOW_BENCH_KAFKA_ENGINE=memory` starts a broker of its own with tansu's memory engine on
//! 127.0.0.1:19292, fast enough for flow's own cost to show;
//! `FLOW_BENCH_KAFKA_ENGINE=noida` starts noida-db on 127.0.0.1:19393, the broker that
//! completes transactions.
//!
//! `FLOW_BENCH_KAFKA_GUARANTEE=exactly-once` (noida only) compares the exactly-once sink (a
//! transaction per checkpoint, a checkpoint every second into a temporary directory,
//! streaming mode) with a loop whose transactional producer commits once a second.
//!
//! ```text
//! cargo bench --bench kafka
//! FLOW_BENCH_KAFKA_ENGINE=memory cargo bench --bench kafka
//! FLOW_BENCH_KAFKA_ENGINE=noida FLOW_BENCH_KAFKA_GUARANTEE=exactly-once cargo bench --bench kafka
//! FLOW_BENCH_KAFKA_ROWS=50000 FLOW_BENCH_RUNS=1 cargo bench --bench kafka   # quick check
//! ```

use flow::connectors::format::Json;
use flow::connectors::kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use flow::connectors::kafka::rdkafka::message::Message;
use flow::connectors::kafka::rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use flow::connectors::kafka::rdkafka::{ClientConfig, Offset, TopicPartitionList};
use flow::connectors::kafka::{DeliveryGuarantee, KafkaAdmin};
use flow::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

#[path = "common/kafka_broker.rs"]
mod kafka_broker;
use kafka_broker::{address, broker_script, env_num, send_record, unique};

const TARGET: f64 = 0.90;
const PARTITIONS: i32 = 4;

/// The broker's address, set once in `main`.
static BROKER: OnceLock<String> = OnceLock::new();

/// Whether both sides write exactly once (transactions), set once in `main`.
static EXACTLY_ONCE: OnceLock<bool> = OnceLock::new();

fn exactly_once() -> bool {
    *EXACTLY_ONCE.get().expect("set in main")
}

fn broker() -> &'static str {
    BROKER.get().expect("set in main")
}

#[derive(Row, Clone, Debug)]
struct Person {
    id: i32,
    name: String,
}

fn transform(p: Person) -> Person {
    Person {
        id: p.id,
        name: p.name.to_uppercase(),
    }
}

fn producer() -> BaseProducer {
    kafka_broker::producer(broker())
}

fn send(p: &BaseProducer, topic: &str, key: &[u8], value: &[u8]) {
    send_record(p, BaseRecord::to(topic).key(key).payload(value));
}

/// Fills `topic` with `rows` JSON rows.
fn fill(topic: &str, rows: usize) {
    let p = producer();
    for i in 0..rows {
        let v = serde_json::to_vec(&Person {
            id: i as i32,
            name: format!("name-{i}"),
        })
        .unwrap();
        send(&p, topic, i.to_string().as_bytes(), &v);
    }
    p.flush(Duration::from_secs(120)).expect("fill flush");
}

/// The bare loop: consume every partition from the beginning, decode, map, encode, produce.
fn by_hand(input: &str, output: &str, rows: usize) -> Duration {
    let start = Instant::now();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker())
        .set("group.id", unique("bench-loop"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(input, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let producer = if exactly_once() {
        let p: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", broker())
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "30000")
            .set("linger.ms", "5")
            .set("transactional.id", unique("bench-loop-txn"))
            .create()
            .expect("producer");
        p.init_transactions(Duration::from_secs(30)).expect("init");
        p.begin_transaction().expect("begin");
        p
    } else {
        producer()
    };
    let mut last_commit = Instant::now();
    let mut buf = Vec::new();
    let mut key = Vec::new();
    let mut n = 0;
    while n < rows {
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                eprintln!("  loop: consumer error (retried): {e}");
                continue;
            }
        };
        let p: Person = serde_json::from_slice(m.payload().unwrap_or(&[])).expect("decode");
        let p = transform(p);
        buf.clear();
        serde_json::to_writer(&mut buf, &p).unwrap();
        key.clear();
        key.extend_from_slice(p.id.to_string().as_bytes());
        send(&producer, output, &key, &buf);
        n += 1;
        if n % 1024 == 0 {
            producer.poll(Duration::ZERO);
            if exactly_once() && last_commit.elapsed() >= Duration::from_secs(1) {
                producer
                    .commit_transaction(Duration::from_secs(60))
                    .expect("commit");
                producer.begin_transaction().expect("begin");
                last_commit = Instant::now();
            }
        }
    }
    if exactly_once() {
        producer
            .commit_transaction(Duration::from_secs(60))
            .expect("commit");
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    start.elapsed()
}

/// The flow job: Kafka source -> map -> Kafka sink, parallelism 1, stopped once the map saw
/// every row.
fn flow_job(input: &str, output: &str, rows: usize) -> Duration {
    let start = Instant::now();
    let mut env = StreamEnv::new().with_parallelism(1);
    // The exactly-once sink declines checkpoints that save its pending rows nowhere.
    let checkpoints = std::env::temp_dir().join(unique("flow-bench-kafka-checkpoints"));
    if exactly_once() {
        env = env
            .with_mode(RuntimeMode::Streaming)
            .with_checkpoint_dir(&checkpoints, 1)
            .with_checkpoint_interval(Some(Duration::from_secs(1)));
    }
    let src = KafkaSource::builder()
        .bootstrap_servers(broker())
        .topic(input)
        .starting_offsets(StartingOffsets::Earliest)
        .format(Json::<Person>::new())
        .build()
        .unwrap();
    let (stop, seen) = (src.stop_handle(), Arc::new(AtomicUsize::new(0)));
    let sink = KafkaSink::builder()
        .bootstrap_servers(broker())
        .topic(output)
        .format(Json::<Person>::new())
        .key(flow::connectors::format::Utf8, |p: &Person| {
            p.id.to_string()
        })
        .delivery_guarantee(if exactly_once() {
            DeliveryGuarantee::ExactlyOnce
        } else {
            DeliveryGuarantee::AtLeastOnce
        })
        .transactional_id_prefix(unique("bench-flow-txn"))
        .build()
        .unwrap();
    flow! { env =>
        source(src, Watermarks::no_watermarks())
            .map(move |p| {
                if seen.fetch_add(1, Ordering::Relaxed) + 1 == rows {
                    stop.stop();
                }
                transform(p)
            })
            .name("transform")
            .sink_to(sink);
    }
    let result = env.execute("kafka bench").expect("the job runs");
    let elapsed = start.elapsed();
    let _ = std::fs::remove_dir_all(&checkpoints);
    assert_eq!(result.operator("transform").unwrap().rows_out, rows as u64);
    elapsed
}

fn main() {
    let engine = std::env::var("FLOW_BENCH_KAFKA_ENGINE").unwrap_or_else(|_| "sqlite".into());
    let address = address(&engine);
    let guarantee =
        std::env::var("FLOW_BENCH_KAFKA_GUARANTEE").unwrap_or_else(|_| "at-least-once".into());
    let eo = match guarantee.as_str() {
        "at-least-once" => false,
        "exactly-once" if engine == "noida" => true,
        "exactly-once" => {
            panic!("exactly-once needs a broker with transactions: FLOW_BENCH_KAFKA_ENGINE=noida")
        }
        other => {
            panic!("FLOW_BENCH_KAFKA_GUARANTEE must be at-least-once or exactly-once, not {other}")
        }
    };
    EXACTLY_ONCE.set(eo).unwrap();
    broker_script("start", &engine);
    BROKER.set(address.to_string()).unwrap();
    let rows = env_num("FLOW_BENCH_KAFKA_ROWS", 200_000);
    let runs = env_num("FLOW_BENCH_RUNS", 3);
    let admin = KafkaAdmin::connect(broker()).unwrap();
    let input = unique("bench-in");
    admin.create_topic(&input, PARTITIONS).unwrap();
    let t = Instant::now();
    fill(&input, rows);
    eprintln!(
        "kafka bench: {rows} rows written to {input} in {:.1?}",
        t.elapsed()
    );

    let (mut best_flow, mut best_loop) = (Duration::MAX, Duration::MAX);
    for run in 0..runs {
        // Alternate the order so neither side always meets a warmer broker.
        let order = if run % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for is_flow in order {
            let output = unique("bench-out");
            admin.create_topic(&output, PARTITIONS).unwrap();
            let d = if is_flow {
                flow_job(&input, &output, rows)
            } else {
                by_hand(&input, &output, rows)
            };
            let (name, best) = if is_flow {
                ("flow", &mut best_flow)
            } else {
                ("loop", &mut best_loop)
            };
            eprintln!(
                "  run {}: {name} {:.2} s ({:.0} rows/s)",
                run + 1,
                d.as_secs_f64(),
                rows as f64 / d.as_secs_f64()
            );
            *best = (*best).min(d);
        }
    }
    let flow_rate = rows as f64 / best_flow.as_secs_f64();
    let loop_rate = rows as f64 / best_loop.as_secs_f64();
    let ratio = flow_rate / loop_rate;
    broker_script("stop", &engine);
    println!(
        "kafka source -> map -> kafka sink ({guarantee}), {engine} broker, {rows} JSON rows, p1 (best of {runs}): flow {:.0} rows/s, bare rdkafka loop {:.0} rows/s, ratio {ratio:.2} (target >= {TARGET:.2}) {}",
        flow_rate,
        loop_rate,
        if ratio >= TARGET { "OK" } else { "BELOW TARGET" }
    );
}
