//! Kafka options against a real broker: bincode rows, a topic and a key per row, and where
//! reading starts (latest, a timestamp).
#![cfg(feature = "kafka")]

mod kafka_common;

use flow::connectors::format::{Bincode, Utf8};
use flow::prelude::*;
use kafka_common::{
    assert_exactly_once, bootstrap, person, produce_people, read_all, topic, Person, SharedIds,
};
use std::time::{Duration, Instant};

fn ids(rows: Vec<Person>) -> Vec<i32> {
    rows.into_iter().map(|p| p.id).collect()
}

#[test]
fn bincode_rows_go_to_the_topic_each_row_names() {
    let (even, odd) = (topic("options-even", 2), topic("options-odd", 2));
    let env = StreamEnv::new().with_parallelism(2);
    let (e, o) = (even.clone(), odd.clone());
    let sink = KafkaSink::builder()
        .bootstrap_servers(bootstrap())
        .format(Bincode::<Person>::new())
        .topic_fn(move |p: &Person| if p.id % 2 == 0 { e.clone() } else { o.clone() })
        .key(Utf8, |p: &Person| p.name.clone())
        .build()
        .unwrap();
    flow! { env =>
        source(NumberSequence::new(1, 2_000), Watermarks::no_watermarks())
            .map(person)
            .sink_to(sink);
    }
    env.execute("bincode per-row topics").unwrap();
    let evens = read_all(&even, Bincode::<Person>::new(), 2);
    assert!(evens.iter().all(|p| p.name == format!("p{}", p.id)));
    let mut got: Vec<i32> = ids(evens).into_iter().map(|id| id / 2).collect();
    got.sort_unstable();
    assert_exactly_once(got, 1, 1_000);
    let mut odds: Vec<i32> = ids(read_all(&odd, Bincode::<Person>::new(), 1))
        .into_iter()
        .map(|id| (id + 1) / 2)
        .collect();
    odds.sort_unstable();
    assert_exactly_once(odds, 1, 1_000);
}

#[test]
fn latest_reads_only_what_is_produced_after_the_start() {
    let t = topic("options-latest", 4);
    produce_people(&t, 1, 100);
    let source = |bounded: bool| {
        let b = KafkaSource::builder()
            .bootstrap_servers(bootstrap())
            .topic(&t)
            .starting_offsets(StartingOffsets::Latest)
            .format(Json::<Person>::new());
        if bounded { b.bounded() } else { b }.build().unwrap()
    };

    // Bounded from the latest offsets: nothing to read.
    let env = StreamEnv::new();
    let src = source(true);
    flow! { env =>
        let rows = source(src, Watermarks::no_watermarks()).collect();
    }
    env.execute("latest, bounded").unwrap();
    assert_eq!(rows.take(), Vec::<Person>::new());

    // Unbounded: the rows produced after the start, and only those.
    let rows = SharedIds::default();
    let src = source(false);
    let stop = src.stop_handle();
    let job = {
        let rows = rows.clone();
        std::thread::spawn(move || {
            let env = StreamEnv::new().with_parallelism(2);
            flow! { env =>
                source(src, Watermarks::no_watermarks()).sink_to(rows);
            }
            env.execute("latest")
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    produce_people(&t, 101, 150);
    let start = Instant::now();
    while rows.len() < 50 {
        assert!(!job.is_finished(), "the job ended early");
        assert!(start.elapsed() < Duration::from_secs(60), "timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.stop();
    job.join().unwrap().unwrap();
    assert_exactly_once(rows.ids(), 101, 150);
}

#[test]
fn a_timestamp_start_skips_older_records() {
    let base = recent_base();
    let t = topic("options-timestamp", 4);
    // Row n gets the event time base + n s, which the sink writes as its record timestamp.
    let env = StreamEnv::new();
    let sink = KafkaSink::builder()
        .bootstrap_servers(bootstrap())
        .topic(&t)
        .format(Json::<Person>::new())
        .key_field("id")
        .build()
        .unwrap();
    flow! { env =>
        source(NumberSequence::new(1, 100), Watermarks::monotonous())
            .timestamps(move |n| base + n * 1000)
            .map(person)
            .sink_to(sink);
    }
    env.execute("timestamped").unwrap();

    let env = StreamEnv::new().with_parallelism(2);
    let src = KafkaSource::builder()
        .bootstrap_servers(bootstrap())
        .topic(&t)
        .starting_offsets(StartingOffsets::Timestamp(base + 51_000))
        .format(Json::<Person>::new())
        .bounded()
        .build()
        .unwrap();
    flow! { env =>
        let rows = source(src, Watermarks::no_watermarks()).collect();
    }
    env.execute("from a timestamp").unwrap();
    assert_exactly_once(ids(rows.take()), 51, 100);
}

/// A whole second an hour ago: record timestamps the broker keeps (noida-db deletes records
/// older than its 7-day retention at once).
fn recent_base() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    (now - 3_600_000) / 1000 * 1000
}

/// Writes `Person` rows `from..=to` to `topic`, row n with the record timestamp
/// `base + n * 10` ms.
fn produce_timestamped(topic: &str, from: i64, to: i64, base: i64) {
    let env = StreamEnv::new();
    let sink = KafkaSink::builder()
        .bootstrap_servers(bootstrap())
        .topic(topic)
        .format(Json::<Person>::new())
        .build()
        .unwrap();
    flow! { env =>
        source(NumberSequence::new(from, to), Watermarks::monotonous())
            .timestamps(move |n| base + n * 10)
            .map(person)
            .sink_to(sink);
    }
    env.execute("timestamped").unwrap();
}

/// One reader of two partitions, one far ahead of the other in event time: the watermark
/// follows the slower partition, so none of its rows is late.
#[test]
fn each_partition_has_its_own_watermark() {
    let base = recent_base();
    let (ahead, behind) = (topic("options-ahead", 1), topic("options-behind", 1));
    produce_timestamped(&ahead, 1, 2_000, base + 600_000);
    produce_timestamped(&behind, 1, 2_000, base);

    let env = StreamEnv::new().with_auto_watermark_interval(Duration::ZERO);
    let src = KafkaSource::builder()
        .bootstrap_servers(bootstrap())
        .topics([&ahead, &behind])
        .starting_offsets(StartingOffsets::Earliest)
        .format(Json::<Person>::new())
        .bounded()
        .build()
        .unwrap();
    flow! { env =>
        let counts = source(src, Watermarks::monotonous())
            .map(|_p: Person| 1u64)
            .key_by(|_| 0)
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .reduce(|a, b| a + b)
            .name("per second")
            .collect();
    }
    let result = env.execute("per-partition watermarks").unwrap();
    assert_eq!(result.operator("per second").unwrap().late_rows, 0);
    assert_eq!(counts.take().iter().sum::<u64>(), 4_000);
}
