//! `sum`, `min`, `max`, `min_by`, `max_by` on keyed and windowed streams, with Flink's
//! semantics: `sum`/`min`/`max` change one field of the first row; `min_by`/`max_by` keep the
//! whole row (the first one on ties, or the last with `first = false`).

mod common;

use common::sorted;
use flow::prelude::*;
use flow::Scheduling;
use std::time::Duration;

#[derive(Row, Clone, Debug, PartialEq, PartialOrd)]
struct Reading {
    sensor: String,
    value: f64,
    at: i64,
}

fn reading(sensor: &str, value: f64, at: i64) -> Reading {
    Reading {
        sensor: sensor.into(),
        value,
        at,
    }
}

fn tuples(p: usize) {
    let rows = vec![
        ("a", 3, 100),
        ("b", 5, 200),
        ("a", 1, 300),
        ("a", 4, 400),
        ("b", 5, 500),
    ];
    let env = StreamEnv::new()
        .with_parallelism(p)
        .with_mode(RuntimeMode::Batch);
    flow! { env =>
        let keyed = from_collection(rows).key_by(|r| r.0);
        let sum = keyed.sum(1).name("total").collect();
        let min = keyed.min(1).collect();
        let max = keyed.max(1).collect();
        let min_by = keyed.min_by(1).collect();
        let max_by = keyed.max_by(1).collect();
        let min_by_last = keyed.min_by(1, false).collect();
        let max_by_last = keyed.max_by(1, false).name("max_by last").collect();
    }
    let result = env.execute("tuple aggregations").unwrap();
    assert!(result.operator("total").is_some(), "named");
    // sum/min/max keep the first row's other fields (here: the third field 100 / 200).
    assert_eq!(sorted(sum.take()), vec![("a", 8, 100), ("b", 10, 200)]);
    assert_eq!(sorted(min.take()), vec![("a", 1, 100), ("b", 5, 200)]);
    assert_eq!(sorted(max.take()), vec![("a", 4, 100), ("b", 5, 200)]);
    // min_by/max_by keep the whole row; b's tie keeps the first one (200).
    assert_eq!(sorted(min_by.take()), vec![("a", 1, 300), ("b", 5, 200)]);
    assert_eq!(sorted(max_by.take()), vec![("a", 4, 400), ("b", 5, 200)]);
    // Flink's `minBy(1, false)` / `maxBy(1, false)`: on b's tie the last row (500) wins.
    assert_eq!(
        sorted(min_by_last.take()),
        vec![("a", 1, 300), ("b", 5, 500)]
    );
    assert_eq!(
        sorted(max_by_last.take()),
        vec![("a", 4, 400), ("b", 5, 500)]
    );
}

fn named_fields_streaming(p: usize) {
    let rows = vec![
        reading("s1", 2.5, 1),
        reading("s1", 1.0, 2),
        reading("s1", 4.0, 3),
    ];
    let env = StreamEnv::new().with_parallelism(p);
    flow! { env =>
        let keyed = from_collection(rows).key_by(|r| r.sensor.clone());
        let sums = keyed.sum(value).map(|r| r.value).collect();
        let max_by = keyed.max_by("value").map(|r| r.at).collect();
    }
    env.execute("named aggregations").unwrap();
    // Streaming: every update.
    assert_eq!(sums.take(), vec![2.5, 3.5, 7.5]);
    assert_eq!(max_by.take(), vec![1, 1, 3]);
}

fn windowed_sum(p: usize) {
    let env = StreamEnv::new()
        .with_parallelism(p)
        .with_auto_watermark_interval(Duration::ZERO);
    flow! { env =>
        let out = source(NumberSequence::new(0, 2999), Watermarks::monotonous())
            .timestamps(|n| *n)
            .map(|n| (n % 2, 1i64))
            .key_by(|r| r.0)
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .sum(1)
            .collect();
    }
    env.execute("windowed sum").unwrap();
    assert_eq!(
        sorted(out.take()),
        vec![(0, 500), (0, 500), (0, 500), (1, 500), (1, 500), (1, 500)]
    );
}

/// Reduce calls of the test below, by parallelism and by whether a source thread made them.
static REDUCE_CALLS: std::sync::Mutex<Vec<(usize, bool)>> = std::sync::Mutex::new(Vec::new());

/// In batch mode the rows of a `key_by` read only by a `reduce` are reduced per key before
/// the exchange (a combiner), in the source's threads: the result is the same, and the
/// reduce's own subtasks reduce about one row per key and upstream subtask. In streaming mode
/// every row goes through, every update out.
fn batch_reduce_combines_before_the_exchange(p: usize) {
    let run = |mode: RuntimeMode| {
        REDUCE_CALLS.lock().unwrap().retain(|c| c.0 != p);
        // A thread per task, named after its stage (on workers, stages share threads).
        let env = StreamEnv::new()
            .with_parallelism(p)
            .with_mode(mode)
            .with_scheduling(Scheduling::Threads);
        flow! { env =>
            let sums = source(NumberSequence::new(1, 100_000), Watermarks::no_watermarks())
                .map(|n: i64| (n % 97, n))
                .key_by(|r| r.0)
                .reduce(move |a: (i64, i64), b: (i64, i64)| {
                    // The source's stage is stage 0: `flow-s0-<subtask>`.
                    let name = std::thread::current().name().unwrap_or("").to_string();
                    REDUCE_CALLS.lock().unwrap().push((p, name.starts_with("flow-s0-")));
                    (a.0, a.1 + b.1)
                })
                .collect();
        }
        env.execute("sum by key").unwrap();
        let calls = REDUCE_CALLS.lock().unwrap();
        let upstream = calls.iter().filter(|c| c.0 == p && c.1).count();
        let downstream = calls.iter().filter(|c| c.0 == p && !c.1).count();
        (upstream, downstream, sorted(sums.take()))
    };
    let expected: Vec<(i64, i64)> = {
        let mut sums = std::collections::BTreeMap::new();
        for n in 1..=100_000i64 {
            *sums.entry(n % 97).or_insert(0) += n;
        }
        sums.into_iter().collect()
    };
    let (upstream, downstream, sums) = run(RuntimeMode::Batch);
    assert_eq!(sums, expected);
    assert_eq!(upstream + downstream, 100_000 - 97);
    if p > 1 {
        // Each source subtask reduced its rows to one per key; the reduce merged those.
        assert_eq!(downstream, 97 * (p - 1), "calls in the reduce's subtasks");
    }
    let (upstream, downstream, updates) = run(RuntimeMode::Streaming);
    assert_eq!(upstream + downstream, 100_000 - 97);
    assert_eq!(updates.len(), 100_000);
    if p > 1 {
        assert_eq!(upstream, 0, "streaming mode combines nothing");
    }
    // Each key's last update is its sum.
    let mut last = std::collections::BTreeMap::new();
    for (k, sum) in updates {
        let top = last.entry(k).or_insert(sum);
        *top = (*top).max(sum);
    }
    assert_eq!(last.into_iter().collect::<Vec<_>>(), expected);
}

at_parallelism!(
    tuples,
    named_fields_streaming,
    windowed_sum,
    batch_reduce_combines_before_the_exchange
);
