//! The seed's Kafka job: rows `(id: i32, name: String)` read as JSON from `test_source_topic`
//! (group `test_group`), transformed, and written as JSON to `test_sink_topic`.
//!
//! ```text
//! scripts/kafka-broker start
//! cargo run --release --example kafka_json -- --create-topics --produce 1000 --bounded
//! scripts/kafka-broker stop
//! ```
//!
//! Without `--bounded` the job runs until stopped (Ctrl-C), reading new records as they come.

use flow::clap::{value_parser, Arg, ArgAction};
use flow::connectors::format::Json;
use flow::connectors::kafka::{BadRecords, KafkaAdmin, KafkaSink, KafkaSource};
use flow::prelude::*;
use std::process::ExitCode;

/// The seed's `Types.ROW([Types.INT(), Types.STRING()])`, with field names: one JSON object
/// `{"id": 1, "name": "a"}` per record.
#[derive(Row, Clone, Debug)]
struct Person {
    id: i32,
    name: String,
}

fn run() -> flow::Result<()> {
    let args = StreamEnv::command("kafka_json")
        .arg(
            Arg::new("bootstrap-servers")
                .long("bootstrap-servers")
                .value_name("HOST:PORT")
                .default_value("127.0.0.1:9092")
                .help("The Kafka brokers (scripts/kafka-broker starts one on 127.0.0.1:9092)"),
        )
        .arg(
            Arg::new("bounded")
                .long("bounded")
                .action(ArgAction::SetTrue)
                .help("Read up to the end offsets at start, then finish"),
        )
        .arg(
            Arg::new("create-topics")
                .long("create-topics")
                .action(ArgAction::SetTrue)
                .help("Create test_source_topic and test_sink_topic (4 partitions) if missing"),
        )
        .arg(
            Arg::new("produce")
                .long("produce")
                .value_name("N")
                .value_parser(value_parser!(u32))
                .help("First write N sample rows to test_source_topic"),
        )
        .get_matches();
    let env = StreamEnv::from_matches(&args);
    let servers = args
        .get_one::<String>("bootstrap-servers")
        .expect("has a default")
        .clone();

    if args.get_flag("create-topics") {
        let admin = KafkaAdmin::connect(&servers)?;
        admin.ensure_topic("test_source_topic", 4)?;
        admin.ensure_topic("test_sink_topic", 4)?;
    }
    if let Some(&n) = args.get_one::<u32>("produce") {
        let samples = StreamEnv::new();
        let sink = KafkaSink::builder()
            .bootstrap_servers(&servers)
            .topic("test_source_topic")
            .format(Json::<Person>::new())
            .key_field("id")
            .build()?;
        flow! { samples =>
            source(NumberSequence::new(1, i64::from(n)), Watermarks::no_watermarks())
                .map(|i| Person { id: i as i32, name: format!("name-{i}") })
                .sink_to(sink);
        }
        samples.execute("kafka_json samples")?;
        eprintln!("kafka_json: wrote {n} sample rows to test_source_topic");
    }

    let mut source = KafkaSource::builder()
        .bootstrap_servers(&servers)
        .topic("test_source_topic")
        .group_id("test_group")
        .format(Json::<Person>::new())
        .bad_records(BadRecords::skip());
    if args.get_flag("bounded") {
        source = source.bounded();
    }
    let source = source.build()?;
    let skipped = source.bad_record_counts();
    let sink = KafkaSink::builder()
        .bootstrap_servers(&servers)
        .topic("test_sink_topic")
        .format(Json::<Person>::new())
        .key_field("id")
        .build()?;

    flow! { env =>
        source(source, Watermarks::no_watermarks())
            .map(|p| Person { id: p.id * 10, name: p.name.to_uppercase() })
            .name("transform")
            .sink_to(sink);
    }
    let result = env.execute("kafka_json")?;
    eprintln!(
        "kafka_json: {} rows from test_source_topic to test_sink_topic in {:.1?} ({} bad records skipped)",
        result.operator("transform").map_or(0, |m| m.rows_out),
        result.wall_time,
        skipped.skipped()
    );
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
