//! A windowed word count over a Kafka topic that several instances of this binary share
//! (README, "Scaling out"): lines from `--input` (event time: each record's Kafka timestamp),
//! split into words, counted per word in 1-second tumbling event-time windows, written as JSON
//! to `--output`.
//!
//! ```text
//! scripts/kafka-broker start
//! # in three terminals (or on three machines, with --brokers pointing at the cluster):
//! cargo run --release --example scale_out -- --instance-group wc --instance-brokers 127.0.0.1:9092
//! ```
//!
//! With `--instance-group`, Kafka splits the input's partitions among the instances and the
//! `key_by` crosses them through the topic `wc-key_by-2-repartition`; without it, one process
//! reads every partition (the reference the tests compare the group with).

use flow::clap::{value_parser, Arg};
use flow::connectors::format::Json;
use flow::connectors::kafka::{KafkaSink, KafkaSource};
use flow::prelude::*;
use std::process::ExitCode;
use std::time::Duration;

/// A word at the event time of its line.
#[derive(Row, Clone, Debug)]
struct Word {
    word: String,
}

/// One window's count of one word.
#[derive(Row, Clone, Debug)]
struct WindowCount {
    start: i64,
    end: i64,
    word: String,
    count: u64,
}

fn run() -> flow::Result<()> {
    let args = StreamEnv::command("scale_out")
        .arg(
            Arg::new("brokers")
                .long("brokers")
                .value_name("HOST:PORT")
                .default_value("127.0.0.1:9092")
                .help("The Kafka brokers of the input and output topics"),
        )
        .arg(
            Arg::new("input")
                .long("input")
                .value_name("TOPIC")
                .default_value("scale_out_lines")
                .help("The topic of text lines (it must exist)"),
        )
        .arg(
            Arg::new("output")
                .long("output")
                .value_name("TOPIC")
                .default_value("scale_out_counts")
                .help("The topic the window counts go to, as JSON (it must exist)"),
        )
        .arg(
            Arg::new("source-group")
                .long("source-group")
                .value_name("NAME")
                .help("The input's consumer group (default: the instance group, or `scale_out`)"),
        )
        .arg(
            Arg::new("stop-when-idle")
                .long("stop-when-idle")
                .value_name("SECS")
                .value_parser(value_parser!(u64).range(1..))
                .help("End once the input delivered nothing for SECS seconds (after its first record); without it the job runs until killed"),
        )
        .get_matches();
    let env = StreamEnv::from_matches(&args);
    let get = |name: &str| args.get_one::<String>(name).cloned();
    let brokers = get("brokers").expect("has a default");
    let group = get("source-group")
        .or_else(|| env.instances().map(|i| i.group.clone()))
        .unwrap_or_else(|| "scale_out".into());
    let mut lines = KafkaSource::builder()
        .bootstrap_servers(&brokers)
        .topic(get("input").expect("has a default"))
        .group_id(group)
        .format(flow::connectors::format::Utf8);
    if let Some(secs) = args.get_one::<u64>("stop-when-idle") {
        lines = lines.stop_when_idle(Duration::from_secs(*secs));
    }
    let lines = lines.build()?;
    let counts = KafkaSink::builder()
        .bootstrap_servers(&brokers)
        .topic(get("output").expect("has a default"))
        .format(Json::<WindowCount>::new())
        .build()?;

    flow! { env =>
        source(lines, Watermarks::bounded_out_of_orderness(Duration::from_secs(1)))
            .flat_map(|line: String, out: &mut Vec<Word>| {
                out.extend(line.split_whitespace().map(|w| Word { word: w.to_owned() }))
            })
            .key_by(|w| w.word.clone())
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .process(|word: &String, window: &TimeWindow, rows: &[Word], out: &mut Vec<WindowCount>| {
                out.push(WindowCount {
                    start: window.start,
                    end: window.end,
                    word: word.clone(),
                    count: rows.len() as u64,
                })
            })
            .name("count per window")
            .sink_to(counts);
    }
    let result = env.execute("scale_out")?;
    if let Some(m) = result.operator("count per window") {
        eprintln!(
            "scale_out: {} words counted here, {} window counts, {} late rows dropped",
            m.rows_in, m.rows_out, m.late_rows
        );
    }
    Ok(())
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
