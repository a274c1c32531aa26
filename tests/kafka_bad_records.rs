//! Bad records in a Kafka source (malformed JSON, wrong types, missing fields, invalid UTF-8)
//! under each policy, with exact counts, against a real broker.
#![cfg(feature = "kafka")]

mod kafka_common;

use flow::connectors::format::{Json, Utf8};
use flow::connectors::kafka::{
    BadRecords, DeadLetter, DeliveryGuarantee, KafkaSink, KafkaSource, StartingOffsets,
};
use flow::prelude::*;
use flow::Error;
use kafka_common::{bootstrap, produce_raw, topic, Person};

/// The records written, in order, to a one-partition topic: offset = index.
fn records() -> (Vec<Vec<u8>>, Vec<(i64, &'static str)>) {
    let mut values = Vec::new();
    let mut bad = Vec::new();
    let bad_kinds: [(&[u8], &str); 4] = [
        (br#"{"id": 1, "name": "#, "EOF while parsing"),
        (
            br#"{"id": "7", "name": "x"}"#,
            "invalid type: string \"7\", expected i32",
        ),
        (br#"{"id": 7}"#, "missing field `name`"),
        (
            b"{\"id\": 7, \"name\": \"\xff\xfe\"}",
            "invalid unicode code point",
        ),
    ];
    for i in 0..1000 {
        if i % 100 == 50 {
            let (bytes, why) = bad_kinds[(i / 100) % 4];
            bad.push((values.len() as i64, why));
            values.push(bytes.to_vec());
        }
        values.push(format!(r#"{{"id":{i},"name":"p{i}"}}"#).into_bytes());
    }
    (values, bad)
}

fn source(topic: &str, policy: BadRecords) -> KafkaSource<Json<Person>> {
    KafkaSource::builder()
        .bootstrap_servers(bootstrap())
        .topic(topic)
        .starting_offsets(StartingOffsets::Earliest)
        .format(Json::<Person>::new())
        .bad_records(policy)
        .bounded()
        .build()
        .unwrap()
}

#[test]
fn fail_stops_the_job_naming_topic_partition_offset_and_error() {
    let t = topic("bad-fail", 1);
    let (values, bad) = records();
    produce_raw(&t, values);
    let env = StreamEnv::new();
    let src = source(&t, BadRecords::fail());
    flow! { env =>
        source(src, Watermarks::no_watermarks()).sink_to(flow::connectors::DiscardSink);
    }
    let err = env
        .execute("fail")
        .expect_err("a bad record must fail the job");
    let (offset, why) = bad[0];
    let msg = err.to_string();
    assert!(matches!(err, Error::Connector { .. }), "{err:?}");
    assert!(
        msg.contains(&format!("topic `{t}` partition 0 offset {offset}")),
        "{msg}"
    );
    assert!(msg.contains(why), "{msg}");
}

#[test]
fn fail_is_the_default() {
    let t = topic("bad-default", 1);
    produce_raw(&t, vec![b"{}".to_vec()]);
    let env = StreamEnv::new();
    let src = KafkaSource::builder()
        .bootstrap_servers(bootstrap())
        .topic(&t)
        .starting_offsets(StartingOffsets::Earliest)
        .format(Json::<Person>::new())
        .bounded()
        .build()
        .unwrap();
    flow! { env =>
        source(src, Watermarks::no_watermarks()).sink_to(flow::connectors::DiscardSink);
    }
    let msg = env.execute("default").unwrap_err().to_string();
    assert!(
        msg.contains("offset 0") && msg.contains("missing field `id`"),
        "{msg}"
    );
}

fn skip_counts_every_bad_record(p: usize) {
    let t = topic("bad-skip", 1);
    let (values, bad) = records();
    produce_raw(&t, values);
    let env = StreamEnv::new().with_parallelism(p);
    let src = source(&t, BadRecords::skip());
    let counts = src.bad_record_counts();
    flow! { env =>
        let rows = source(src, Watermarks::no_watermarks()).collect();
    }
    let result = env.execute("skip").expect("skip goes on");
    let mut ids: Vec<i32> = rows.take().into_iter().map(|p| p.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..1000).collect::<Vec<_>>());
    assert_eq!(counts.skipped(), bad.len() as u64);
    // The job result counts them too, on the source.
    assert_eq!(result.operators[0].skipped_records, bad.len() as u64);
    assert_eq!(counts.dead_lettered(), 0);
}

#[test]
fn skip_counts_every_bad_record_p1() {
    skip_counts_every_bad_record(1);
}

#[test]
fn skip_counts_every_bad_record_p2() {
    skip_counts_every_bad_record(2);
}

#[test]
fn dead_letter_gets_the_bytes_and_the_error() {
    let t = topic("bad-dlq", 1);
    let (values, bad) = records();
    produce_raw(&t, values.clone());
    let env = StreamEnv::new();
    let dead = CollectHandle::<DeadLetter>::new();
    let src = source(&t, BadRecords::dead_letter(dead.sink()));
    let counts = src.bad_record_counts();
    flow! { env =>
        let rows = source(src, Watermarks::no_watermarks()).collect();
    }
    let result = env.execute("dead letter").expect("dead letters go on");
    assert_eq!(result.operators[0].dead_lettered_records, bad.len() as u64);
    assert_eq!(rows.take().len(), 1000);
    let mut dead = dead.take();
    dead.sort_by_key(|d| d.offset);
    assert_eq!(dead.len(), bad.len());
    for (d, (offset, why)) in dead.iter().zip(&bad) {
        assert_eq!(d.source, t);
        assert_eq!(d.partition, 0);
        assert_eq!(d.offset, *offset);
        assert!(d.error.contains(why), "{d:?}");
        assert_eq!(d.payload, values[*offset as usize]);
    }
    assert_eq!(counts.dead_lettered(), bad.len() as u64);
    assert_eq!(counts.skipped(), 0);
}

/// A dead-letter topic: the dead letters written as JSON by a Kafka sink.
#[test]
fn dead_letters_to_a_kafka_topic() {
    let (result, dlq, bad) = dead_letters_to_kafka("bad-dlq", DeliveryGuarantee::AtLeastOnce);
    result.expect("dead letters go on");
    let dead = kafka_common::read_all(&dlq, Json::<DeadLetter>::new(), 1);
    let offsets: Vec<i64> = dead.iter().map(|d| d.offset).collect();
    assert_eq!(offsets, bad.iter().map(|b| b.0).collect::<Vec<_>>());
}

/// A dead-letter sink is not a node of the job (flow! does not check it): it refuses what
/// `Sink::check` refuses when its source opens. Here an exactly-once `KafkaSink` without a
/// transactional id prefix (each subtask's id would be `-0`, the same in every job).
#[test]
fn a_dead_letter_sink_that_cannot_run_fails_the_job_when_its_source_opens() {
    let (result, dlq, _) = dead_letters_to_kafka("bad-dlq-eos", DeliveryGuarantee::ExactlyOnce);
    let e = result.unwrap_err().to_string();
    assert!(e.contains("needs a transactional id prefix"), "{e}");
    assert!(kafka_common::read_all(&dlq, Json::<DeadLetter>::new(), 1).is_empty());
}

/// [`records`] read from topic `<name>-src` with their dead letters going to `<name>-topic`
/// through a `KafkaSink` of `guarantee` (no transactional id prefix): the job's result, the
/// dead-letter topic and the bad records.
fn dead_letters_to_kafka(
    name: &str,
    guarantee: DeliveryGuarantee,
) -> (
    flow::Result<flow::JobResult>,
    String,
    Vec<(i64, &'static str)>,
) {
    let t = topic(&format!("{name}-src"), 1);
    let dlq = topic(&format!("{name}-topic"), 1);
    let (values, bad) = records();
    produce_raw(&t, values);
    let sink = KafkaSink::builder()
        .bootstrap_servers(bootstrap())
        .topic(&dlq)
        .format(Json::<DeadLetter>::new())
        .delivery_guarantee(guarantee)
        .build()
        .unwrap();
    let env = StreamEnv::new();
    let src = source(&t, BadRecords::dead_letter(sink));
    flow! { env =>
        source(src, Watermarks::no_watermarks()).sink_to(flow::connectors::DiscardSink);
    }
    (env.execute(name), dlq, bad)
}

#[test]
fn invalid_utf8_is_a_bad_record_for_text() {
    let t = topic("bad-utf8", 1);
    produce_raw(&t, vec![b"ok".to_vec(), b"\xff".to_vec(), b"fine".to_vec()]);
    let env = StreamEnv::new();
    let src = KafkaSource::builder()
        .bootstrap_servers(bootstrap())
        .topic(&t)
        .starting_offsets(StartingOffsets::Earliest)
        .format(Utf8)
        .bad_records(BadRecords::skip())
        .bounded()
        .build()
        .unwrap();
    let counts = src.bad_record_counts();
    flow! { env =>
        let rows = source(src, Watermarks::no_watermarks()).collect();
    }
    env.execute("utf8").unwrap();
    assert_eq!(rows.take(), vec!["ok".to_string(), "fine".to_string()]);
    assert_eq!(counts.skipped(), 1);
}
