//! `connect` with `co_map` / `co_flat_map`: two streams of different row types into one
//! operator; the watermark after it is the minimum of both inputs'.

mod common;

use common::sorted;
use flow::prelude::*;
use flow::BroadcastProcessFunction;
use std::time::Duration;

#[derive(Row, Clone, Debug, PartialEq, PartialOrd)]
struct Order {
    id: i64,
    amount: f64,
}

fn co_map(p: usize) {
    let env = StreamEnv::new().with_parallelism(p);
    flow! { env =>
        let orders = from_collection(vec![Order { id: 1, amount: 9.5 }, Order { id: 2, amount: 20.0 }]);
        let refunds = source(NumberSequence::new(10, 12), Watermarks::no_watermarks());
        let out = orders
            .connect(refunds)
            .co_map(|o| format!("order {} {}", o.id, o.amount), |r| format!("refund {r}"))
            .collect();
    }
    env.execute("co_map").unwrap();
    assert_eq!(
        sorted(out.take()),
        vec![
            "order 1 9.5",
            "order 2 20",
            "refund 10",
            "refund 11",
            "refund 12"
        ]
    );
}

fn co_flat_map(p: usize) {
    let env = StreamEnv::new().with_parallelism(p);
    flow! { env =>
        let words = from_collection(vec!["a b", "c"]);
        let counts = from_collection(vec![2usize, 0]);
        let out = words
            .connect(counts)
            .co_flat_map(|s| s.split(' ').map(String::from).collect::<Vec<_>>(), |n| vec!["x".to_string(); n])
            .collect();
    }
    env.execute("co_flat_map").unwrap();
    assert_eq!(sorted(out.take()), vec!["a", "b", "c", "x", "x"]);
}

fn watermark_is_the_minimum_of_both_inputs(p: usize) {
    // Windows after the connect fire only when both inputs' event time passed them.
    let env = StreamEnv::new()
        .with_parallelism(p)
        .with_auto_watermark_interval(Duration::ZERO);
    flow! { env =>
        let fast = source(NumberSequence::new(0, 2999), Watermarks::monotonous()).timestamps(|n| *n);
        let slow = from_collection(vec![500i64, 1500], Watermarks::monotonous()).timestamps(|n| *n);
        let out = fast
            .connect(slow)
            .co_map(|n| ("fast", n), |n| ("slow", n))
            .key_by(|r| r.0)
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .process(|k, w, rows, out| out.push((k.to_string(), w.start, rows.len())))
            .name("windows")
            .collect();
    }
    let result = env.execute("connected watermarks").unwrap();
    assert_eq!(
        sorted(out.take()),
        vec![
            ("fast".to_string(), 0, 1000),
            ("fast".to_string(), 1000, 1000),
            ("fast".to_string(), 2000, 1000),
            ("slow".to_string(), 0, 1),
            ("slow".to_string(), 1000, 1),
        ]
    );
    // Nothing is late: the slow input held the watermark back until it ended.
    assert_eq!(result.operator("windows").unwrap().late_rows, 0);
}

mod basic {
    use super::*;
    at_parallelism!(co_map, co_flat_map, watermark_is_the_minimum_of_both_inputs);
}

fn interval_join_bounds_are_inclusive(p: usize) {
    // Flink's example: second.ts in [first.ts - 2, first.ts + 1].
    let firsts = vec![("a", 10i64), ("b", 10), ("a", 20)];
    let seconds = vec![
        ("b", 7i64),
        ("a", 8),
        ("b", 9),
        ("a", 11),
        ("a", 12),
        ("a", 21),
    ];
    let env = StreamEnv::new()
        .with_parallelism(p)
        .with_auto_watermark_interval(Duration::ZERO);
    flow! { env =>
        let left = from_collection(firsts, Watermarks::bounded_out_of_orderness(Duration::from_millis(100)))
            .timestamps(|r| r.1)
            .key_by(|r| r.0);
        let right = from_collection(seconds, Watermarks::bounded_out_of_orderness(Duration::from_millis(100)))
            .timestamps(|r| r.1)
            .key_by(|r| r.0);
        let out = left
            .interval_join(right)
            .between(-2, 1)
            .process(|a, b, out| out.push((a.0, a.1, b.1)))
            .collect();
    }
    env.execute("interval join").unwrap();
    assert_eq!(
        sorted(out.take()),
        vec![("a", 10, 8), ("a", 10, 11), ("a", 20, 21), ("b", 10, 9)]
    );
}

fn interval_join_function_with_context(p: usize) {
    // Flink's `ProcessJoinFunction.Context`: the two rows' timestamps, the result's (the larger
    // one), and side outputs. The pairs of `interval_join_bounds_are_inclusive`; a pair whose
    // second row comes first goes to a side output.
    let early = OutputTag::<(&'static str, i64, i64)>::new("second-first");
    let tag = early.clone();
    let firsts = vec![("a", 10i64), ("b", 10), ("a", 20)];
    let seconds = vec![
        ("b", 7i64),
        ("a", 8),
        ("b", 9),
        ("a", 11),
        ("a", 12),
        ("a", 21),
    ];
    let env = StreamEnv::new()
        .with_parallelism(p)
        .with_auto_watermark_interval(Duration::ZERO);
    flow! { env =>
        let left = from_collection(firsts, Watermarks::bounded_out_of_orderness(Duration::from_millis(100)))
            .timestamps(|r| r.1)
            .key_by(|r| r.0);
        let right = from_collection(seconds, Watermarks::bounded_out_of_orderness(Duration::from_millis(100)))
            .timestamps(|r| r.1)
            .key_by(|r| r.0);
        let joined = left
            .interval_join(right)
            .between(-2, 1)
            .process(move |a, b, ctx, out| {
                if ctx.right_timestamp() < ctx.left_timestamp() {
                    ctx.output(&tag, (b.0, ctx.left_timestamp(), ctx.right_timestamp()));
                } else {
                    out.push((a.0, ctx.left_timestamp(), ctx.right_timestamp(), ctx.timestamp()));
                }
            });
        let out = joined.collect();
        let early_out = joined.side_output(&early).collect();
    }
    env.execute("interval join with context").unwrap();
    assert_eq!(
        sorted(out.take()),
        vec![("a", 10, 11, 11), ("a", 20, 21, 21)]
    );
    assert_eq!(sorted(early_out.take()), vec![("a", 10, 8), ("b", 10, 9)]);
}

fn keyed_connect_partitions_both_inputs_by_key(p: usize) {
    let env = StreamEnv::new().with_parallelism(p);
    flow! { env =>
        let a = source(NumberSequence::new(1, 100), Watermarks::no_watermarks()).key_by(|n| n % 5);
        let b = source(NumberSequence::new(101, 200), Watermarks::no_watermarks()).key_by(|n| n % 5);
        let out = a.connect(b).co_map(|n| n % 5, |n| n % 5).collect();
    }
    env.execute("keyed connect").unwrap();
    let rows = out.take();
    assert_eq!(rows.len(), 200);
    assert_eq!(sorted(rows).iter().filter(|&&k| k == 0).count(), 40);
}

at_parallelism!(
    interval_join_bounds_are_inclusive,
    interval_join_function_with_context,
    keyed_connect_partitions_both_inputs_by_key
);

fn window_join_pairs_rows_of_one_key_and_window(p: usize) {
    let orders = vec![("a", 100i64), ("a", 900), ("b", 500), ("a", 1200)];
    let payments = vec![("a", 300i64), ("b", 1100), ("a", 1500), ("a", 1600)];
    let env = StreamEnv::new()
        .with_parallelism(p)
        .with_auto_watermark_interval(Duration::ZERO);
    flow! { env =>
        let left = from_collection(orders, Watermarks::bounded_out_of_orderness(Duration::from_secs(1)))
            .timestamps(|r| r.1)
            .key_by(|r| r.0);
        let right = from_collection(payments, Watermarks::bounded_out_of_orderness(Duration::from_secs(1)))
            .timestamps(|r| r.1)
            .key_by(|r| r.0);
        let out = left
            .window_join(right, TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .process(|o, pay, out| out.push((o.0, o.1, pay.1)))
            .collect();
    }
    env.execute("window join").unwrap();
    // [0, 1000): a has orders 100, 900 and payment 300 -> 2 pairs; b's order 500 has no
    // payment there (b's is at 1100). [1000, 2000): a's order 1200 with payments 1500, 1600.
    assert_eq!(
        sorted(out.take()),
        vec![
            ("a", 100, 300),
            ("a", 900, 300),
            ("a", 1200, 1500),
            ("a", 1200, 1600)
        ]
    );
}

fn sliding_window_join_pairs_rows_in_every_window_they_share(p: usize) {
    let orders = vec![("a", 100i64), ("a", 700)];
    let payments = vec![("a", 600i64), ("a", 1200)];
    let env = StreamEnv::new().with_parallelism(p);
    flow! { env =>
        let left = from_collection(orders, Watermarks::monotonous())
            .timestamps(|r| r.1)
            .key_by(|r| r.0);
        let right = from_collection(payments, Watermarks::monotonous())
            .timestamps(|r| r.1)
            .key_by(|r| r.0);
        let out = left
            .window_join(right, SlidingEventTimeWindows::of(Duration::from_secs(1), Duration::from_millis(500)))
            .process(|o, pay, out| out.push((o.1, pay.1)))
            .collect();
    }
    env.execute("sliding window join").unwrap();
    // Every row is in two windows. [0, 1000): orders 100 and 700 with payment 600;
    // [500, 1500): order 700 with payments 600 and 1200; [-500, 500) and [1000, 2000) have
    // rows of one side only.
    assert_eq!(
        sorted(out.take()),
        vec![(100, 600), (700, 600), (700, 600), (700, 1200)]
    );
}

fn window_join_function_with_context(p: usize) {
    // As `window_join_pairs_rows_of_one_key_and_window`, with the context: the two rows'
    // timestamps, the results' (the window's last millisecond, as Flink stamps a window
    // join's results), and a side output for pairs whose payment came before the order.
    let early = OutputTag::<(&'static str, i64, i64)>::new("paid before ordered");
    let tag = early.clone();
    let orders = vec![("a", 100i64), ("a", 900), ("b", 500), ("a", 1200)];
    let payments = vec![("a", 300i64), ("b", 1100), ("a", 1500), ("a", 1600)];
    let env = StreamEnv::new()
        .with_parallelism(p)
        .with_auto_watermark_interval(Duration::ZERO);
    flow! { env =>
        let left = from_collection(orders, Watermarks::bounded_out_of_orderness(Duration::from_secs(1)))
            .timestamps(|r| r.1)
            .key_by(|r| r.0);
        let right = from_collection(payments, Watermarks::bounded_out_of_orderness(Duration::from_secs(1)))
            .timestamps(|r| r.1)
            .key_by(|r| r.0);
        let joined = left
            .window_join(right, TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .process(move |o, _pay, ctx, out| {
                if ctx.right_timestamp() < ctx.left_timestamp() {
                    ctx.output(&tag, (o.0, ctx.left_timestamp(), ctx.right_timestamp()));
                } else {
                    out.push((o.0, ctx.left_timestamp(), ctx.right_timestamp(), ctx.timestamp()));
                }
            });
        let out = joined.collect();
        let early_out = joined.side_output(&early).collect();
    }
    env.execute("window join with context").unwrap();
    assert_eq!(
        sorted(out.take()),
        vec![
            ("a", 100, 300, 999),
            ("a", 1200, 1500, 1999),
            ("a", 1200, 1600, 1999)
        ]
    );
    assert_eq!(early_out.take(), vec![("a", 900, 300)]);
}

mod joins {
    use super::*;
    at_parallelism!(
        window_join_pairs_rows_of_one_key_and_window,
        sliding_window_join_pairs_rows_in_every_window_they_share,
        window_join_function_with_context
    );
}

/// Alerts on readings above the threshold the broadcast "rules" stream last set.
#[derive(Clone)]
struct Threshold;

impl BroadcastProcessFunction<(&'static str, i64), i64> for Threshold {
    type State = Option<i64>;
    type Out = String;
    fn process_element(
        &mut self,
        row: (&'static str, i64),
        limit: &Option<i64>,
        out: &mut Vec<String>,
    ) {
        if let Some(limit) = limit {
            if row.1 > *limit {
                out.push(format!("{} {}", row.0, row.1));
            }
        }
    }
    fn process_broadcast_element(
        &mut self,
        rule: i64,
        limit: &mut Option<i64>,
        _out: &mut Vec<String>,
    ) {
        *limit = Some(rule);
    }
}

fn broadcast_state_reaches_every_subtask(p: usize) {
    // As in Flink, the broadcast input is not ordered against the other: readings that arrive
    // before the rule see no limit and pass silently. The one-row rule stream arrives within
    // a millisecond; the readings that matter come at the end of 2M rows.
    let env = StreamEnv::new().with_parallelism(p);
    flow! { env =>
        let rules = from_collection(vec![500i64]).broadcast();
        let readings = source(NumberSequence::new(1, 2_000_000), Watermarks::no_watermarks())
            .filter(|n| n % 100_000 == 0)
            .map(|n| (if n % 200_000 == 0 { "even" } else { "odd" }, n / 1000))
            .key_by(|r| r.0);
        let out = readings.connect(rules).process(Threshold).collect();
    }
    env.execute("broadcast").unwrap();
    let rows = sorted(out.take());
    // Only readings above the broadcast limit alert; both keys (on both subtasks at p2) got
    // the rule.
    for r in &rows {
        assert!(
            r.split(' ').nth(1).unwrap().parse::<i64>().unwrap() > 500,
            "{rows:?}"
        );
    }
    assert!(
        rows.contains(&"even 2000".to_string()) && rows.contains(&"odd 1900".to_string()),
        "{rows:?}"
    );
}

mod broadcast {
    use super::*;
    at_parallelism!(broadcast_state_reaches_every_subtask);
}

/// Join configurations that cannot run and that the compiler cannot see (the values are not
/// literals) fail the job when it starts, naming the operator; no row is written.
mod bad_join_configurations {
    use super::*;

    #[test]
    fn interval_join_bounds_the_wrong_way_round() {
        let (lower, upper) = (5i64, -5i64);
        let env = StreamEnv::new();
        flow! { env =>
            let left = from_collection(vec![("a", 1i64)], Watermarks::monotonous())
                .timestamps(|r| r.1)
                .key_by(|r| r.0);
            let right = from_collection(vec![("a", 2i64)], Watermarks::monotonous())
                .timestamps(|r| r.1)
                .key_by(|r| r.0);
            let out = left
                .interval_join(right)
                .between(lower, upper)
                .process(|a, b, out| out.push((a.1, b.1)))
                .name("pairs")
                .collect();
        }
        let err = env.execute("reversed bounds").unwrap_err().to_string();
        assert!(
            err.contains("`pairs`")
                && err.contains("lower bound (5 ms) is above the upper bound (-5 ms)"),
            "{err}"
        );
        assert_eq!(out.take(), Vec::<(i64, i64)>::new());
    }

    #[test]
    fn window_join_over_session_windows() {
        let gap = Duration::from_secs(1);
        let env = StreamEnv::new();
        flow! { env =>
            let left = from_collection(vec![("a", 1i64)], Watermarks::monotonous())
                .timestamps(|r| r.1)
                .key_by(|r| r.0);
            let right = from_collection(vec![("a", 2i64)], Watermarks::monotonous())
                .timestamps(|r| r.1)
                .key_by(|r| r.0);
            let out = left
                .window_join(right, EventTimeSessionWindows::with_gap(gap))
                .process(|a, b, out| out.push((a.1, b.1)))
                .name("sessions")
                .collect();
        }
        let err = env.execute("session join").unwrap_err().to_string();
        assert!(
            err.contains("`sessions`")
                && err.contains("a window join takes tumbling or sliding windows"),
            "{err}"
        );
        assert_eq!(out.take(), Vec::<(i64, i64)>::new());
    }
}
