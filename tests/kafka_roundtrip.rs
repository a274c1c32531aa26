//! Kafka against a real broker (noida-db, started by `scripts/kafka-broker`): JSON rows through
//! a source -> map -> sink job, every row exactly once in a bounded run.
#![cfg(feature = "kafka")]

mod kafka_common;

use flow::connectors::format::Json;
use flow::connectors::kafka::{KafkaSink, KafkaSource, StartingOffsets};
use flow::prelude::*;
use kafka_common::{
    assert_exactly_once, bootstrap, produce_people, read_all, topic, unique, Person,
};

const ROWS: i64 = 100_000;

fn json_round_trip(parallelism: usize) {
    let input = topic("roundtrip-in", 4);
    let output = topic("roundtrip-out", 4);
    produce_people(&input, 0, ROWS - 1);

    let env = StreamEnv::new().with_parallelism(parallelism);
    let src = KafkaSource::builder()
        .bootstrap_servers(bootstrap())
        .topic(&input)
        .group_id(unique("roundtrip-group"))
        .starting_offsets(StartingOffsets::Earliest)
        .format(Json::<Person>::new())
        .bounded()
        .build()
        .unwrap();
    let sink = KafkaSink::builder()
        .bootstrap_servers(bootstrap())
        .topic(&output)
        .format(Json::<Person>::new())
        .key_field("id")
        .build()
        .unwrap();
    flow! { env =>
        source(src, Watermarks::no_watermarks())
            .map(|p: Person| Person { name: p.name.to_uppercase(), ..p })
            .name("upper")
            .sink_to(sink);
    }
    let result = env
        .execute("kafka round trip")
        .expect("the job must succeed");
    assert_eq!(result.operator("upper").unwrap().rows_out, ROWS as u64);

    let rows = read_all(&output, Json::<Person>::new(), 2);
    for p in &rows {
        assert_eq!(p.name, format!("P{}", p.id), "{p:?}");
    }
    assert_exactly_once(rows.into_iter().map(|p| p.id).collect(), 0, ROWS as i32 - 1);
}

#[test]
fn json_round_trip_100k_p1() {
    json_round_trip(1);
}

#[test]
fn json_round_trip_100k_p2() {
    json_round_trip(2);
}

/// Partitions are the splits: with more readers than partitions the extra readers finish at
/// once, and every row still arrives once.
#[test]
fn more_readers_than_partitions() {
    let t = topic("few-partitions", 2);
    produce_people(&t, 1, 1000);
    let rows = read_all(&t, Json::<Person>::new(), 4);
    assert_exactly_once(rows.into_iter().map(|p| p.id).collect(), 1, 1000);
}
