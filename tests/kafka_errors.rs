//! Kafka bad input: an unreachable broker, a missing topic, settings that cannot work.
#![cfg(feature = "kafka")]

mod kafka_common;

use flow::connectors::format::Json;
use flow::connectors::kafka::{
    DeliveryGuarantee, KafkaAdmin, KafkaSink, KafkaSource, StartingOffsets,
};
use flow::prelude::*;
use flow::Error;
use kafka_common::{bootstrap, produce_people, read_all, unique, Person};
use std::time::{Duration, Instant};

/// A port nothing listens on.
const NOWHERE: &str = "127.0.0.1:1";

#[test]
fn an_unreachable_broker_is_a_clear_error_within_the_timeout() {
    let env = StreamEnv::new();
    let src = KafkaSource::builder()
        .bootstrap_servers(NOWHERE)
        .topic("anything")
        .starting_offsets(StartingOffsets::Earliest)
        .connect_timeout(Duration::from_secs(2))
        .format(Json::<Person>::new())
        .bounded()
        .build()
        .unwrap();
    flow! { env =>
        source(src, Watermarks::no_watermarks()).sink_to(flow::connectors::DiscardSink);
    }
    let start = Instant::now();
    let err = env.execute("unreachable").unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
    let msg = err.to_string();
    assert!(
        msg.contains("cannot reach the Kafka broker at `127.0.0.1:1` within 2 s"),
        "{msg}"
    );
}

#[test]
fn an_unreachable_broker_fails_a_sink_too() {
    let env = StreamEnv::new();
    let sink = KafkaSink::builder()
        .bootstrap_servers(NOWHERE)
        .topic("anything")
        .connect_timeout(Duration::from_secs(2))
        .format(Json::<Person>::new())
        .build()
        .unwrap();
    flow! { env =>
        from_collection(vec![Person { id: 1, name: "a".into() }]).sink_to(sink);
    }
    let start = Instant::now();
    let msg = env.execute("unreachable sink").unwrap_err().to_string();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
    assert!(msg.contains("cannot reach the Kafka broker"), "{msg}");
}

#[test]
fn a_missing_topic_is_a_clear_error() {
    let missing = unique("missing");
    let env = StreamEnv::new();
    let src = KafkaSource::builder()
        .bootstrap_servers(bootstrap())
        .topic(&missing)
        .starting_offsets(StartingOffsets::Earliest)
        .format(Json::<Person>::new())
        .bounded()
        .build()
        .unwrap();
    flow! { env =>
        source(src, Watermarks::no_watermarks()).sink_to(flow::connectors::DiscardSink);
    }
    let msg = env.execute("missing").unwrap_err().to_string();
    assert!(
        msg.contains(&format!("topic `{missing}` does not exist")),
        "{msg}"
    );
    assert!(msg.contains("create_missing_topics"), "{msg}");

    let env = StreamEnv::new();
    let sink = KafkaSink::builder()
        .bootstrap_servers(bootstrap())
        .topic(&missing)
        .format(Json::<Person>::new())
        .build()
        .unwrap();
    flow! { env =>
        from_collection(vec![Person { id: 1, name: "a".into() }]).sink_to(sink);
    }
    let msg = env.execute("missing sink").unwrap_err().to_string();
    assert!(
        msg.contains(&format!("topic `{missing}` does not exist")),
        "{msg}"
    );
}

#[test]
fn missing_topics_are_created_when_asked() {
    let t = unique("created");
    let env = StreamEnv::new();
    let src = KafkaSource::builder()
        .bootstrap_servers(bootstrap())
        .topic(&t)
        .starting_offsets(StartingOffsets::Earliest)
        .create_missing_topics(3)
        .format(Json::<Person>::new())
        .bounded()
        .build()
        .unwrap();
    flow! { env =>
        let rows = source(src, Watermarks::no_watermarks()).collect();
    }
    env.execute("created").unwrap();
    assert!(rows.take().is_empty());
    produce_people(&t, 1, 10);
    assert_eq!(read_all(&t, Json::<Person>::new(), 1).len(), 10);
    KafkaAdmin::connect(bootstrap())
        .unwrap()
        .delete_topic(&t)
        .unwrap();
}

#[test]
fn settings_that_cannot_work_are_refused_by_build() {
    let e = |r: flow::Result<()>| match r.unwrap_err() {
        Error::Config(m) => m,
        other => panic!("expected a configuration error, got {other:?}"),
    };
    let m = e(KafkaSource::builder().topic("t").build().map(drop));
    assert!(m.contains("no bootstrap servers"), "{m}");
    let m = e(KafkaSource::builder()
        .bootstrap_servers("h:1")
        .build()
        .map(drop));
    assert!(m.contains("no topic"), "{m}");
    let m = e(KafkaSource::builder()
        .bootstrap_servers("h:1")
        .topic("t")
        .build()
        .map(drop));
    assert!(m.contains("need a group"), "{m}");
    let m = e(KafkaSource::builder()
        .bootstrap_servers("h:1")
        .topic("t")
        .group_id("g")
        .consumer_group_assignment()
        .bounded()
        .build()
        .map(drop));
    assert!(m.contains("cannot be bounded"), "{m}");
    let m = e(KafkaSource::builder()
        .bootstrap_servers("h:1")
        .topic_pattern("(")
        .starting_offsets(StartingOffsets::Earliest)
        .build()
        .map(drop));
    assert!(m.contains("invalid topic pattern"), "{m}");
    let m = e(KafkaSink::builder()
        .bootstrap_servers("h:1")
        .topic("t")
        .property("acks", "1")
        .build()
        .map(drop));
    assert!(m.contains("at-least-once"), "{m}");
    let m = e(KafkaSink::builder()
        .bootstrap_servers("h:1")
        .topic("t")
        .property("transactional.id", "x")
        .build()
        .map(drop));
    assert!(m.contains("`transactional.id` is set by the sink"), "{m}");
    let exactly_once = || {
        KafkaSink::builder()
            .bootstrap_servers("h:1")
            .topic("t")
            .delivery_guarantee(DeliveryGuarantee::ExactlyOnce)
    };
    // Without a prefix it builds (in an instance group it writes in the group's
    // transactions); outside one the job fails when it is built, before a task starts.
    let sink = exactly_once().build().expect("builds without a prefix");
    let env = StreamEnv::new();
    flow! { env =>
        from_collection(vec![vec![1u8]]).sink_to(sink);
    }
    let m = env.execute("no prefix").unwrap_err().to_string();
    assert!(m.contains("needs a transactional id prefix"), "{m}");
    // In an at-least-once instance group (no transactions of the group's to write in, no
    // checkpoints for its own): refused when the job is built, before it joins the group.
    let sink = exactly_once()
        .transactional_id_prefix("job")
        .build()
        .unwrap();
    let group = flow::instances::InstanceConfig::new(unique("g"), NOWHERE);
    let env = StreamEnv::new().with_instance_group(group);
    let src = KafkaSource::builder()
        .bootstrap_servers(NOWHERE)
        .topic("t")
        .group_id("g")
        .connect_timeout(Duration::from_secs(2))
        .format(flow::connectors::format::Raw)
        .build()
        .unwrap();
    flow! { env =>
        source(src, Watermarks::no_watermarks()).sink_to(sink);
    }
    let m = env.execute("at-least-once group").unwrap_err().to_string();
    assert!(
        m.contains("exactly-once in an at-least-once instance group"),
        "{m}"
    );
    let m = e(exactly_once()
        .transactional_id_prefix("a b")
        .build()
        .map(drop));
    assert!(m.contains("may only have ASCII letters"), "{m}");
    let m = e(exactly_once()
        .transactional_id_prefix("job")
        .topic_fn(|_: &Vec<u8>| "t")
        .build()
        .map(drop));
    assert!(m.contains("needs a fixed topic"), "{m}");
    let m = e(exactly_once()
        .transactional_id_prefix("job")
        .delivery_timeout(Duration::from_secs(120))
        .build()
        .map(drop));
    assert!(m.contains("must not exceed the transaction timeout"), "{m}");
    assert!(exactly_once()
        .transactional_id_prefix("job")
        .build()
        .is_ok());
}

#[test]
fn a_topic_pattern_reads_every_matching_topic() {
    let prefix = unique("pattern");
    let admin = KafkaAdmin::connect(bootstrap()).unwrap();
    for i in 0..2 {
        admin.create_topic(&format!("{prefix}-{i}"), 2).unwrap();
        produce_people(&format!("{prefix}-{i}"), i * 100 + 1, i * 100 + 100);
    }
    let env = StreamEnv::new().with_parallelism(2);
    let src = KafkaSource::builder()
        .bootstrap_servers(bootstrap())
        .topic_pattern(format!("{}-[0-9]+", regex_escape(&prefix)))
        .starting_offsets(StartingOffsets::Earliest)
        .format(Json::<Person>::new())
        .bounded()
        .build()
        .unwrap();
    flow! { env =>
        let rows = source(src, Watermarks::no_watermarks()).collect();
    }
    env.execute("pattern").unwrap();
    kafka_common::assert_exactly_once(rows.take().into_iter().map(|p| p.id).collect(), 1, 200);
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}
