//! Jobs that keep state, for trying (and testing) fault tolerance: run one with
//! `--checkpoint-dir`, kill it at any moment, start it again with `--restore latest`, and the
//! finished part files hold exactly the rows of a run that never crashed.
//!
//! - `--job state-access`: the seed's `state_access_demo` scaled up: `(n % 1000, 1)` keyed by
//!   the first field, the first two rows of every key get +1 (keyed `ValueState`).
//! - `--job keyed-reduce`: a rolling count per key `n % 100` (`reduce`).
//!
//! `--keys N` counts those two by `n % N` instead: with `--state-backend disk` and a small
//! `--state-cache-mb`, state larger than the cache.
//! - `--job event-time-window`: counts per key `n % 10` in 1-second tumbling event-time
//!   windows, with event time `n` milliseconds (window panes, watermarks).
//! - `--job window-backlog`: counts per key `n % N` (`--keys`, default 1000) in 1-second
//!   tumbling event-time windows, each key once per second of event time, with watermarks
//!   60 s behind (out-of-order rows allowed): 61 windows of N keys open at once. With
//!   `--state-backend disk` and a small `--state-cache-mb`, panes larger than the cache.
//! - `--job kafka-count` (with the `kafka` feature): a rolling count per `id % 100` of the JSON
//!   rows `{"id":..,"name":..}` of `--topic`, read up to the end offsets at its first start
//!   (Kafka positions in checkpoints).
//! - `--job kafka-to-kafka` (with the `kafka` feature): the same count written to
//!   `--output-topic` by an exactly-once Kafka sink (a transaction per checkpoint).
//! - `--job files-to-postgres` (with the `postgres` feature): the numbers of the text files
//!   under `--input`, a rolling count per `n % 100`, every update written to the table
//!   `--table (key BIGINT, count BIGINT)` of `--jdbc-url` by an exactly-once `JdbcSink`
//!   (file positions, keyed state and prepared transactions in checkpoints).
//!
//! ```text
//! cargo run --release --example fault_tolerance -- --job keyed-reduce --rows 2000000 \
//!     --output out/ft --checkpoint-dir ckpt --checkpoint-interval 1000
//! # kill it (Ctrl-C, kill -9), then:
//! cargo run --release --example fault_tolerance -- --job keyed-reduce --rows 2000000 \
//!     --output out/ft --checkpoint-dir ckpt --checkpoint-interval 1000 --restore latest
//! ```

use flow::clap::{value_parser, Arg};
use flow::prelude::*;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// A key and a count; prints as `key count`.
#[derive(Row, Clone, Debug)]
struct KeyCount {
    key: i64,
    count: i64,
}

/// A row of the topic `kafka-count` reads, as the Kafka tests write them.
#[cfg(feature = "kafka")]
#[derive(Row, Clone, Debug)]
struct Person {
    id: i32,
    name: String,
}

/// One window's count of one key; prints as `start key count`.
#[derive(Row, Clone, Debug)]
struct WindowCount {
    start: i64,
    key: i64,
    count: i64,
}

/// The first two rows of every key get +1 (the seed's `MyMapFunction`).
#[map_function]
fn count_first_two(row: KeyCount, #[state] cnt: &mut ValueState<u32>) -> KeyCount {
    let seen = cnt.value().unwrap_or(0);
    if seen < 2 {
        cnt.update(seen + 1);
        KeyCount {
            count: row.count + 1,
            ..row
        }
    } else {
        row
    }
}

impl KeyCount {
    /// The rolling count's step: `self` with `other`'s count added.
    fn add(self, other: KeyCount) -> KeyCount {
        KeyCount {
            count: self.count + other.count,
            ..self
        }
    }
}

/// A Kafka job's row: one count for the key `id % 100`, paced as `pace` does.
#[cfg(feature = "kafka")]
fn count_one(p: Person, every: i64) -> KeyCount {
    pace(p.id as i64, every);
    KeyCount {
        key: p.id as i64 % 100,
        count: 1,
    }
}

/// Sleeps a millisecond every `every` rows (0: never), so that a job runs long enough to be
/// interrupted. `flow::sleep`, not `std::thread::sleep`: the worker runs the job's other
/// tasks meanwhile.
fn pace(n: i64, every: i64) -> i64 {
    if every > 0 && n % every == 0 {
        flow::sleep(Duration::from_millis(1));
    }
    n
}

fn run() -> flow::Result<()> {
    let args = StreamEnv::command("fault_tolerance")
        .arg(
            Arg::new("job")
                .long("job")
                .value_name("JOB")
                .value_parser([
                    "state-access",
                    "keyed-reduce",
                    "event-time-window",
                    "window-backlog",
                    "kafka-count",
                    "kafka-to-kafka",
                    "files-to-postgres",
                ])
                .default_value("state-access")
                .help("Which job to run"),
        )
        .arg(
            Arg::new("rows")
                .long("rows")
                .value_name("N")
                .value_parser(value_parser!(i64).range(1..))
                .default_value("100000")
                .help("How many numbers the source emits (1..=N)"),
        )
        .arg(
            Arg::new("pace")
                .long("pace")
                .value_name("ROWS")
                .value_parser(value_parser!(i64).range(0..))
                .default_value("0")
                .help("Sleep 1 ms every ROWS rows (0: run at full speed)"),
        )
        .arg(
            Arg::new("keys")
                .long("keys")
                .value_name("N")
                .value_parser(value_parser!(i64).range(1..))
                .help("How many keys `state-access`, `keyed-reduce` and `window-backlog` count by (default 1000, 100 and 1000): many keys make state larger than --state-cache-mb"),
        )
        .arg(
            Arg::new("topic")
                .long("topic")
                .value_name("TOPIC")
                .help("The topic `kafka-count` and `kafka-to-kafka` read"),
        )
        .arg(
            Arg::new("output-topic")
                .long("output-topic")
                .value_name("TOPIC")
                .help("The topic `kafka-to-kafka` writes (exactly once)"),
        )
        .arg(
            Arg::new("bootstrap-servers")
                .long("bootstrap-servers")
                .value_name("HOST:PORT")
                .default_value("127.0.0.1:9092")
                .help("The Kafka brokers of the Kafka jobs"),
        )
        .arg(
            Arg::new("input")
                .long("input")
                .value_name("DIR")
                .help("The text files of numbers `files-to-postgres` reads"),
        )
        .arg(
            Arg::new("jdbc-url")
                .long("jdbc-url")
                .value_name("URL")
                .default_value("postgresql://flow:flow@127.0.0.1:15432/flow")
                .help("The PostgreSQL database `files-to-postgres` writes"),
        )
        .arg(
            Arg::new("table")
                .long("table")
                .value_name("NAME")
                .help("The table (key BIGINT, count BIGINT) `files-to-postgres` writes"),
        )
        .arg(
            Arg::new("output")
                .long("output")
                .value_name("DIR")
                .default_value("out/fault_tolerance")
                .help("Directory for the part files (created if missing)"),
        )
        .get_matches();
    let env = StreamEnv::from_matches(&args);
    let rows = *args.get_one::<i64>("rows").expect("has a default");
    let every = *args.get_one::<i64>("pace").expect("has a default");
    let keys = args.get_one::<i64>("keys").copied();
    let output = PathBuf::from(args.get_one::<String>("output").expect("has a default"));
    let job = args
        .get_one::<String>("job")
        .expect("has a default")
        .clone();

    match job.as_str() {
        "state-access" => {
            flow! { env =>
                source(NumberSequence::new(1, rows), Watermarks::no_watermarks())
                    .map(move |n| pace(n, every))
                    .map(move |a| KeyCount { key: a % keys.unwrap_or(1000), count: 1 })
                    .key_by(|row| row.key)
                    .map(count_first_two)
                    .sink_to(FileSink::row_format(&output));
            }
        }
        "keyed-reduce" => {
            flow! { env =>
                source(NumberSequence::new(1, rows), Watermarks::no_watermarks())
                    .map(move |n| pace(n, every))
                    .map(move |a| KeyCount { key: a % keys.unwrap_or(100), count: 1 })
                    .key_by(|row| row.key)
                    .reduce(|a, b| a.add(b))
                    .sink_to(FileSink::row_format(&output));
            }
        }
        "files-to-postgres" => {
            #[cfg(feature = "postgres")]
            {
                let (Some(input), Some(table)) = (
                    args.get_one::<String>("input"),
                    args.get_one::<String>("table"),
                ) else {
                    return Err(flow::Error::Config(
                        "`--job files-to-postgres` needs `--input` and `--table`".into(),
                    ));
                };
                let url = args.get_one::<String>("jdbc-url").expect("has a default");
                let sink = JdbcSink::<KeyCount>::insert_into(
                    table,
                    JdbcExecutionOptions::default(),
                    JdbcConnectionOptions::new(url.as_str()),
                )
                .exactly_once(
                    JdbcExactlyOnceOptions::default()
                        .transaction_id_prefix(format!("fault-tolerance-{table}")),
                );
                // Split small, so that both readers share each file and stop mid-file.
                let files = FileSource::text_lines(input).split_size(64 << 10);
                flow! { env =>
                    source(files, Watermarks::no_watermarks())
                        .map(|line| line.trim().parse::<i64>().unwrap_or(-1))
                        .map(move |n| pace(n, every))
                        .map(|a| KeyCount { key: a % 100, count: 1 })
                        .key_by(|row| row.key)
                        .reduce(|a, b| a.add(b))
                        .sink_to(sink);
                }
            }
            #[cfg(not(feature = "postgres"))]
            return Err(flow::Error::Config(format!(
                "`--job {job}` needs the `postgres` feature"
            )));
        }
        "kafka-count" | "kafka-to-kafka" => {
            #[cfg(feature = "kafka")]
            {
                use flow::connectors::format::Json;
                use flow::connectors::kafka::{
                    DeliveryGuarantee, KafkaSink, KafkaSource, StartingOffsets,
                };
                let servers = args
                    .get_one::<String>("bootstrap-servers")
                    .expect("has a default");
                let Some(topic) = args.get_one::<String>("topic") else {
                    return Err(flow::Error::Config(format!(
                        "`--job {job}` needs `--topic`"
                    )));
                };
                let src = KafkaSource::builder()
                    .bootstrap_servers(servers)
                    .topic(topic)
                    .starting_offsets(StartingOffsets::Earliest)
                    .format(Json::<Person>::new())
                    .bounded()
                    .build()?;
                if job == "kafka-count" {
                    flow! { env =>
                        source(src, Watermarks::no_watermarks())
                            .map(move |p: Person| count_one(p, every))
                            .key_by(|row| row.key)
                            .reduce(|a, b| a.add(b))
                            .sink_to(FileSink::row_format(&output));
                    }
                } else {
                    let Some(out_topic) = args.get_one::<String>("output-topic") else {
                        return Err(flow::Error::Config(
                            "`--job kafka-to-kafka` needs `--output-topic`".into(),
                        ));
                    };
                    let sink = KafkaSink::builder()
                        .bootstrap_servers(servers)
                        .topic(out_topic)
                        .format(Json::<KeyCount>::new())
                        .key_field("key")
                        .delivery_guarantee(DeliveryGuarantee::ExactlyOnce)
                        .transactional_id_prefix(format!("fault-tolerance-{out_topic}"))
                        .build()?;
                    flow! { env =>
                        source(src, Watermarks::no_watermarks())
                            .map(move |p: Person| count_one(p, every))
                            .key_by(|row| row.key)
                            .reduce(|a, b| a.add(b))
                            .sink_to(sink);
                    }
                }
            }
            #[cfg(not(feature = "kafka"))]
            return Err(flow::Error::Config(format!(
                "`--job {job}` needs the `kafka` feature"
            )));
        }
        "window-backlog" => {
            let keys = keys.unwrap_or(1000);
            flow! { env =>
                source(
                    NumberSequence::new(1, rows),
                    Watermarks::bounded_out_of_orderness(Duration::from_secs(60)),
                )
                    .timestamps(move |n| *n * 1000 / keys)
                    .map(move |n| pace(n, every))
                    .key_by(move |n| n % keys)
                    .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
                    .process(|key: &i64, window: &TimeWindow, rows: &[i64], out: &mut Vec<WindowCount>| {
                        out.push(WindowCount { start: window.start, key: *key, count: rows.len() as i64 })
                    })
                    .sink_to(FileSink::row_format(&output));
            }
        }
        _ => {
            flow! { env =>
                source(NumberSequence::new(1, rows), Watermarks::monotonous())
                    .timestamps(|n| *n)
                    .map(move |n| pace(n, every))
                    .key_by(|n| n % 10)
                    .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
                    .process(|key: &i64, window: &TimeWindow, rows: &[i64], out: &mut Vec<WindowCount>| {
                        out.push(WindowCount { start: window.start, key: *key, count: rows.len() as i64 })
                    })
                    .sink_to(FileSink::row_format(&output));
            }
        }
    }
    let result = env.execute(&format!("fault_tolerance {job}"))?;
    eprintln!(
        "fault_tolerance: {job}: {} rows written in {:.1?}{}",
        result.operators.last().map_or(0, |m| m.rows_in),
        result.wall_time,
        peak_memory_mib().map_or(String::new(), |m| format!(", peak memory {m} MiB")),
    );
    Ok(())
}

/// This process's peak resident memory (Linux: `VmHWM`, which, unlike `getrusage`, does not
/// count the memory of the process that started it).
fn peak_memory_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
