//! Windows, with expected results worked out by hand from Flink's documented semantics
//! (default triggers, watermark = max timestamp - out-of-orderness - 1, windows fire when the
//! watermark reaches their last millisecond, results stamped `end - 1`).

mod common;

use common::sorted;
use flow::prelude::*;
use flow::{AggregateFunction, GlobalWindow, OutputTag, TimeWindow};
use std::time::Duration;

fn env(p: usize) -> StreamEnv {
    // A watermark after every row makes the firing points deterministic.
    StreamEnv::new()
        .with_parallelism(p)
        .with_auto_watermark_interval(Duration::ZERO)
}

/// (key, timestamp ms)
type Event = (&'static str, i64);

/// Per key and window: (key, start, end, rows), from a `process` window function.
fn describe(
    key: &&'static str,
    w: &TimeWindow,
    rows: &[Event],
    out: &mut Vec<(String, i64, i64, usize)>,
) {
    out.push((key.to_string(), w.start, w.end, rows.len()));
}

fn tumbling_with_out_of_order_and_late_rows(p: usize) {
    // delay 500 ms: the watermark trails the largest timestamp by 501 ms.
    let events: Vec<Event> = vec![
        ("a", 1000),
        ("a", 1500),
        ("b", 1200),
        ("a", 2100),
        ("a", 1900),
        ("a", 3000),
        ("a", 500),
        ("b", 3100),
    ];
    let env = env(p);
    flow! { env =>
        let out = from_collection(events, Watermarks::bounded_out_of_orderness(Duration::from_millis(500)))
            .timestamps(|e| e.1)
            .key_by(|e| e.0)
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .process(describe)
            .name("windows")
            .collect();
    }
    let result = env.execute("tumbling").unwrap();
    // ("a", 1900) is out of order but not late: the watermark was 1599 < 1999.
    // ("a", 500) is late: its window [0, 1000) closed when the watermark passed 999.
    assert_eq!(
        sorted(out.take()),
        vec![
            ("a".into(), 1000, 2000, 3),
            ("a".into(), 2000, 3000, 1),
            ("a".into(), 3000, 4000, 1),
            ("b".into(), 1000, 2000, 1),
            ("b".into(), 3000, 4000, 1),
        ]
    );
    assert_eq!(result.operator("windows").unwrap().late_rows, 1);
}

fn batch_mode_fires_every_window_at_the_end(p: usize) {
    let events: Vec<Event> = vec![
        ("a", 1000),
        ("a", 1500),
        ("b", 1200),
        ("a", 2100),
        ("a", 1900),
        ("a", 3000),
        ("a", 500),
        ("b", 3100),
    ];
    let env = env(p).with_mode(RuntimeMode::Batch);
    flow! { env =>
        let out = from_collection(events, Watermarks::bounded_out_of_orderness(Duration::from_millis(500)))
            .timestamps(|e| e.1)
            .key_by(|e| e.0)
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .process(describe)
            .collect();
    }
    env.execute("tumbling batch").unwrap();
    // No watermarks before the end: nothing is late, ("a", 500) gets its window.
    assert_eq!(
        sorted(out.take()),
        vec![
            ("a".into(), 0, 1000, 1),
            ("a".into(), 1000, 2000, 3),
            ("a".into(), 2000, 3000, 1),
            ("a".into(), 3000, 4000, 1),
            ("b".into(), 1000, 2000, 1),
            ("b".into(), 3000, 4000, 1),
        ]
    );
}

fn sliding(p: usize) {
    // ("b", 100) comes after the watermark passed 2499: both of its windows closed, so it is
    // late and dropped; ("b", 2600) lands in [1000, 3000) and [2000, 4000).
    let events: Vec<Event> = vec![("a", 1000), ("a", 2500), ("b", 100), ("b", 2600)];
    let env = env(p);
    flow! { env =>
        let out = from_collection(events, Watermarks::monotonous())
            .timestamps(|e| e.1)
            .key_by(|e| e.0)
            .window(SlidingEventTimeWindows::of(Duration::from_secs(2), Duration::from_secs(1)))
            .process(describe)
            .name("sliding")
            .collect();
    }
    let result = env.execute("sliding").unwrap();
    assert_eq!(
        sorted(out.take()),
        vec![
            ("a".into(), 0, 2000, 1),
            ("a".into(), 1000, 3000, 2),
            ("a".into(), 2000, 4000, 1),
            ("b".into(), 1000, 3000, 1),
            ("b".into(), 2000, 4000, 1),
        ]
    );
    assert_eq!(result.operator("sliding").unwrap().late_rows, 1);
}

fn sessions_merge_out_of_order(p: usize) {
    // gap 1 s: a's first rows make [1000, 2500) and [3000, 4200); the late-arriving 2400
    // bridges them into one session. Within the 2 s delay, so not late.
    let events: Vec<Event> = vec![
        ("a", 1000),
        ("a", 1500),
        ("a", 3000),
        ("a", 3200),
        ("a", 2400),
        ("b", 1000),
    ];
    let env = env(p);
    flow! { env =>
        let out = from_collection(events, Watermarks::bounded_out_of_orderness(Duration::from_secs(2)))
            .timestamps(|e| e.1)
            .key_by(|e| e.0)
            .window(EventTimeSessionWindows::with_gap(Duration::from_secs(1)))
            .process(describe)
            .collect();
    }
    env.execute("sessions").unwrap();
    assert_eq!(
        sorted(out.take()),
        vec![("a".into(), 1000, 4200, 5), ("b".into(), 1000, 2000, 1)]
    );
}

/// One key's session rows through a 1 s gap session window with monotonous watermarks
/// (`max timestamp - 1`); the sessions and the late-row count.
fn sessions_of(p: usize, events: Vec<Event>) -> (Vec<(String, i64, i64, usize)>, u64) {
    let env = env(p);
    flow! { env =>
        let out = from_collection(events, Watermarks::monotonous())
            .timestamps(|e| e.1)
            .key_by(|e| e.0)
            .window(EventTimeSessionWindows::with_gap(Duration::from_secs(1)))
            .process(describe)
            .name("sessions")
            .collect();
    }
    let result = env.execute("sessions").unwrap();
    (
        sorted(out.take()),
        result.operator("sessions").unwrap().late_rows,
    )
}

// Flink's `WindowOperator` merges a row's own session window `[t, t + gap)` into the key's
// sessions first and then drops the row only if the *merged* window is late (its last
// millisecond at or behind the watermark).

fn a_row_late_on_its_own_falls_into_an_open_session(p: usize) {
    // 1000, 1500, 2400 make [1000, 3400) with the watermark at 2399. 1300's own window
    // [1300, 2300) ended at or before the watermark, but it lies in the open session: joined.
    let events = vec![("a", 1000), ("a", 1500), ("a", 2400), ("a", 1300)];
    assert_eq!(
        sessions_of(p, events),
        (vec![("a".into(), 1000, 3400, 4)], 0)
    );
}

fn a_row_late_on_its_own_extends_an_open_session(p: usize) {
    // 2000, 2600 make [2000, 3600) with the watermark at 2599. 1200's own window
    // [1200, 2200) is late on its own but touches the session: merged into [1200, 3600).
    let events = vec![("a", 2000), ("a", 2600), ("a", 1200)];
    assert_eq!(
        sessions_of(p, events),
        (vec![("a".into(), 1200, 3600, 3)], 0)
    );
}

fn a_row_whose_merged_session_is_late_is_dropped(p: usize) {
    // 100's window [100, 1100) meets no session (the open one starts at 2000): the merged
    // window is its own, late behind the watermark 2599: dropped and counted.
    let events = vec![("a", 2000), ("a", 2600), ("a", 100)];
    assert_eq!(
        sessions_of(p, events),
        (vec![("a".into(), 2000, 3600, 2)], 1)
    );
}

/// `describe` of each window of `windows` with an allowed lateness of 1 s (in emission
/// order), and the late rows dropped.
fn with_lateness(
    p: usize,
    events: Vec<Event>,
    windows: flow::Windows,
) -> (Vec<(String, i64, i64, usize)>, u64) {
    let env = env(p);
    flow! { env =>
        let out = from_collection(events, Watermarks::monotonous())
            .timestamps(|e| e.1)
            .key_by(|e| e.0)
            .window(windows)
            .allowed_lateness(Duration::from_secs(1))
            .process(describe)
            .name("late windows")
            .collect();
    }
    let result = env.execute("lateness").unwrap();
    (
        out.take(),
        result.operator("late windows").unwrap().late_rows,
    )
}

fn allowed_lateness_refires_and_then_drops(p: usize) {
    let events: Vec<Event> = vec![
        ("a", 1000),
        ("a", 2500),
        ("a", 1800),
        ("a", 3500),
        ("a", 1900),
    ];
    // 2500 fires [1000, 2000) with 1 row; 1800 is late but within the lateness: it fires
    // again with 2; 3500 moves the watermark past 2999, so [1000, 2000) is gone and 1900 is
    // dropped as late.
    assert_eq!(
        with_lateness(
            p,
            events,
            TumblingEventTimeWindows::of(Duration::from_secs(1))
        ),
        (
            vec![
                ("a".into(), 1000, 2000, 1),
                ("a".into(), 1000, 2000, 2),
                ("a".into(), 2000, 3000, 1),
                ("a".into(), 3000, 4000, 1),
            ],
            1
        )
    );
}

fn a_session_with_an_allowed_lateness_fires_once(p: usize) {
    // 1000 and 1500 make the session [1000, 2500); 1200's own window [1200, 2200) lies in it,
    // so the session stays the same: it still fires once when the watermark (3999) passes it,
    // with the three rows (Flink's timers are one per key, window and time).
    let events: Vec<Event> = vec![
        ("a", 1000),
        ("a", 1500),
        ("a", 1200),
        ("a", 4000),
        ("a", 9000),
    ];
    assert_eq!(
        with_lateness(
            p,
            events,
            EventTimeSessionWindows::with_gap(Duration::from_secs(1))
        )
        .0,
        vec![
            ("a".into(), 1000, 2500, 3),
            ("a".into(), 4000, 5000, 1),
            ("a".into(), 9000, 10000, 1),
        ]
    );
}

/// Average of the second field: an `AggregateFunction` with (sum, count).
#[derive(Clone)]
struct Average;

impl AggregateFunction<(&'static str, i64)> for Average {
    type Acc = (i64, i64);
    type Out = f64;
    fn create_accumulator(&mut self) -> (i64, i64) {
        (0, 0)
    }
    fn add(&mut self, value: (&'static str, i64), acc: &mut (i64, i64)) {
        acc.0 += value.1;
        acc.1 += 1;
    }
    fn get_result(&mut self, acc: &(i64, i64)) -> f64 {
        acc.0 as f64 / acc.1 as f64
    }
    fn merge(&mut self, a: (i64, i64), b: (i64, i64)) -> (i64, i64) {
        (a.0 + b.0, a.1 + b.1)
    }
}

fn reduce_and_aggregate(p: usize) {
    let events: Vec<Event> = vec![("a", 100), ("a", 300), ("b", 500), ("a", 1500)];
    let env = env(p);
    flow! { env =>
        let keyed = from_collection(events, Watermarks::monotonous())
            .timestamps(|e| e.1)
            .key_by(|e| e.0);
        let sums = keyed
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .reduce(|a, b| (a.0, a.1 + b.1))
            .collect();
        let averages = keyed
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .aggregate(Average)
            .map(|avg| (avg * 10.0) as i64)
            .collect();
    }
    env.execute("reduce and aggregate").unwrap();
    assert_eq!(
        sorted(sums.take()),
        vec![("a", 400), ("a", 1500), ("b", 500)]
    );
    assert_eq!(sorted(averages.take()), vec![2000, 5000, 15000]);
}

fn aggregate_with_a_window_function(p: usize) {
    // Flink's `aggregate(AggregateFunction, ProcessWindowFunction)`: the rows are averaged as
    // they come, and each key's and window's one result reaches the function with the key and
    // the window.
    let events: Vec<Event> = vec![("a", 100), ("a", 300), ("b", 500), ("a", 1500)];
    let env = env(p);
    flow! { env =>
        let out = from_collection(events, Watermarks::monotonous())
            .timestamps(|e| e.1)
            .key_by(|e| e.0)
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .aggregate(Average, |key, window, avg, out| {
                out.push((key.to_string(), window.start, window.end, avg))
            })
            .collect();
        let all = from_collection(vec![("a", 100), ("b", 300), ("a", 1500)], Watermarks::monotonous())
            .timestamps(|e| e.1)
            .window_all(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .aggregate(Average, |window, avg, out| out.push((window.start, avg)))
            .collect();
    }
    env.execute("aggregate with a window function").unwrap();
    assert_eq!(
        sorted(
            out.take()
                .into_iter()
                .map(|(k, s, e, avg)| (k, s, e, (avg * 10.0) as i64))
                .collect()
        ),
        vec![
            ("a".to_string(), 0, 1000, 2000),
            ("a".to_string(), 1000, 2000, 15000),
            ("b".to_string(), 0, 1000, 5000),
        ]
    );
    let all: Vec<_> = all
        .take()
        .into_iter()
        .map(|(s, avg)| (s, (avg * 10.0) as i64))
        .collect();
    assert_eq!(all, vec![(0, 2000), (1000, 15000)]);
}

fn count_windows(p: usize) {
    let rows: Vec<(&str, i64)> = (1..=5)
        .map(|v| ("a", v))
        .chain((1..=2).map(|v| ("b", v * 100)))
        .collect();
    let env = env(p);
    flow! { env =>
        let keyed = from_collection(rows).key_by(|r| r.0);
        let tumbling = keyed.count_window(2).reduce(|a, b| (a.0, a.1 + b.1)).collect();
        let sliding = keyed.count_window(3, 1).reduce(|a, b| (a.0, a.1 + b.1)).collect();
        // A count window is a `GlobalWindow` (no bounds in time), as in Flink.
        let described = keyed
            .count_window(2)
            .process(|key: &&str, _: &GlobalWindow, rows: &[(&str, i64)], out: &mut Vec<(String, usize)>| {
                out.push((key.to_string(), rows.len()))
            })
            .collect();
    }
    env.execute("count windows").unwrap();
    // Every 2 rows of a key; a's fifth row is an incomplete window and never fires.
    assert_eq!(
        sorted(tumbling.take()),
        vec![("a", 3), ("a", 7), ("b", 300)]
    );
    assert_eq!(
        sorted(described.take()),
        vec![("a".into(), 2), ("a".into(), 2), ("b".into(), 2)]
    );
    // Every row, over the key's last 3.
    assert_eq!(
        sorted(sliding.take()),
        vec![
            ("a", 1),
            ("a", 3),
            ("a", 6),
            ("a", 9),
            ("a", 12),
            ("b", 100),
            ("b", 300)
        ]
    );
}

fn window_all_counts_everything_in_one_subtask(p: usize) {
    let env = env(p);
    flow! { env =>
        let out = source(NumberSequence::new(0, 2999), Watermarks::monotonous())
            .timestamps(|n| *n)
            .window_all(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .process(|w, rows, out| out.push((w.start, rows.len())))
            .collect();
        // With the context: no key either, the window and the watermark from the context.
        let with_context = source(NumberSequence::new(0, 2999), Watermarks::monotonous())
            .timestamps(|n| *n)
            .window_all(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .process(|ctx: &mut WindowContext<'_, u32>, rows, out| {
                *ctx.global_state() += 1;
                out.push((ctx.window().start, rows.len(), *ctx.global_state()))
            })
            .collect();
    }
    env.execute("window_all").unwrap();
    assert_eq!(
        sorted(out.take()),
        vec![(0, 1000), (1000, 1000), (2000, 1000)]
    );
    // The one group's state counts its windows.
    assert_eq!(
        sorted(with_context.take()),
        vec![(0, 1000, 1), (1000, 1000, 2), (2000, 1000, 3)]
    );
}

fn processing_time_windows_count_every_row_once(p: usize) {
    let env = env(p);
    flow! { env =>
        let out = source(NumberSequence::new(1, 20_000), Watermarks::no_watermarks())
            .key_by(|n| n % 3)
            .window(TumblingProcessingTimeWindows::of(Duration::from_millis(5)))
            .process(|k, _w, rows, out| out.push((*k, rows.len())))
            .collect();
    }
    env.execute("processing time").unwrap();
    let rows = out.take();
    for k in 0..3 {
        let n: usize = rows.iter().filter(|r| r.0 == k).map(|r| r.1).sum();
        assert_eq!(n, (1..=20_000).filter(|n| n % 3 == k).count(), "key {k}");
    }
}

fn event_time_windows_on_rows_without_timestamps_fail_clearly(p: usize) {
    // A source without a strategy is a compile error; here the strategy exists but the rows
    // carry no timestamps.
    let env = env(p);
    flow! { env =>
        from_collection(vec![("a", 1i64)], Watermarks::monotonous())
            .key_by(|e| e.0)
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .reduce(|a, b| (a.0, a.1 + b.1))
            .print();
    }
    let err = env
        .execute("no timestamps")
        .expect_err("rows without timestamps");
    assert!(err.to_string().contains("no timestamps"), "{err}");
}

fn zero_window_size_fails_at_job_start(p: usize) {
    let size = Duration::from_millis(std::hint::black_box(0));
    let env = env(p);
    flow! { env =>
        source(NumberSequence::new(1, 10), Watermarks::monotonous())
            .timestamps(|n| *n)
            .key_by(|n| n % 2)
            .window(TumblingEventTimeWindows::of(size))
            .reduce(|a, b| a + b)
            .print();
    }
    let err = env.execute("zero size").expect_err("a zero window size");
    assert!(err.to_string().contains("must be positive"), "{err}");
}

fn late_rows_go_to_the_side_output(p: usize) {
    // As `allowed_lateness_refires_and_then_drops`, but the late row is kept.
    let late = OutputTag::<Event>::new("late");
    let events: Vec<Event> = vec![
        ("a", 1000),
        ("a", 2500),
        ("a", 1800),
        ("a", 3500),
        ("a", 1900),
        ("b", 10),
    ];
    let env = env(p);
    flow! { env =>
        let counts = from_collection(events, Watermarks::monotonous())
            .timestamps(|e| e.1)
            .key_by(|e| e.0)
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .allowed_lateness(Duration::from_secs(1))
            .side_output_late_data(&late)
            .process(describe)
            .name("late windows");
        let on_time = counts.collect();
        let late_rows = counts.side_output(&late).map(|e| (e.0, e.1 + 1)).collect();
    }
    let result = env.execute("late side output").unwrap();
    assert_eq!(on_time.take().len(), 4, "the same four firings");
    // 1900 came after its window's lateness; ("b", 10) after the watermark passed 3499.
    assert_eq!(sorted(late_rows.take()), vec![("a", 1901), ("b", 11)]);
    assert_eq!(
        result.operator("late windows").unwrap().late_rows,
        0,
        "kept, not dropped"
    );
}

fn a_windowed_stream_bound_with_let_feeds_two_functions(p: usize) {
    let env = env(p);
    flow! { env =>
        let windowed = from_collection(vec![("a", 100i64), ("a", 200), ("b", 300), ("a", 1200)], Watermarks::monotonous())
            .timestamps(|e| e.1)
            .key_by(|e| e.0)
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)));
        let counts = windowed.process(describe).collect();
        let sums = windowed.reduce(|a, b| (a.0, a.1 + b.1)).collect();
    }
    env.execute("windowed twice").unwrap();
    assert_eq!(
        sorted(counts.take()),
        vec![
            ("a".into(), 0, 1000, 2),
            ("a".into(), 1000, 2000, 1),
            ("b".into(), 0, 1000, 1),
        ]
    );
    assert_eq!(
        sorted(sums.take()),
        vec![("a", 300), ("a", 1200), ("b", 300)]
    );
}

/// (key, window start, rows, the key's firings so far, this window's firings, watermark)
type Fired = (String, i64, usize, u32, u32, i64);

fn a_window_function_with_context(p: usize) {
    // As `allowed_lateness_refires_and_then_drops`, with a second key. The context gives the
    // window, the watermark when it fires, state per key across windows (Flink's
    // `globalState()`), state per key and window kept across its late firings and dropped
    // with it (`windowState()`), and side outputs.
    let refired = OutputTag::<(String, i64)>::new("refired");
    let tag = refired.clone();
    let events: Vec<Event> = vec![
        ("a", 1000),
        ("b", 1100),
        ("a", 2500),
        ("a", 1800),
        ("a", 3500),
        ("a", 1900),
    ];
    let env = env(p);
    flow! { env =>
        let fired = from_collection(events, Watermarks::monotonous())
            .timestamps(|e| e.1)
            .key_by(|e| e.0)
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .allowed_lateness(Duration::from_secs(1))
            .process(move |key, ctx: &mut WindowContext<'_, u32, u32>, rows, out| {
                *ctx.global_state() += 1;
                *ctx.window_state() += 1;
                let (start, firings) = (ctx.window().start, *ctx.window_state());
                if firings > 1 {
                    ctx.output(&tag, (key.to_string(), start));
                }
                out.push((key.to_string(), start, rows.len(), *ctx.global_state(), firings, ctx.current_watermark()))
            });
        let all = fired.collect();
        let again = fired.side_output(&refired).collect();
    }
    env.execute("window context").unwrap();
    let all: Vec<Fired> = all.take();
    // Monotonous watermarks trail the largest timestamp by 1 ms. 2500 fires [1000, 2000) of
    // both keys at 2499; 1800 is late within the lateness: "a"'s window fires again at once,
    // its window state now 2; 3500 fires [2000, 3000) at 3499 (a new window: its state starts
    // at 0) and drops [1000, 2000), so 1900 is late; the end of input's final watermark
    // fires [3000, 4000). The per-key count goes on across windows.
    assert_eq!(
        sorted(all),
        vec![
            ("a".into(), 1000, 1, 1, 1, 2499),
            ("a".into(), 1000, 2, 2, 2, 2499),
            ("a".into(), 2000, 1, 3, 1, 3499),
            ("a".into(), 3000, 1, 4, 1, i64::MAX),
            ("b".into(), 1000, 1, 1, 1, 2499),
        ]
    );
    assert_eq!(again.take(), vec![("a".to_string(), 1000)]);
}

fn aggregate_with_a_window_function_with_context(p: usize) {
    let events: Vec<Event> = vec![("a", 100), ("a", 300), ("b", 500), ("a", 1500), ("a", 2500)];
    let env = env(p);
    flow! { env =>
        let out = from_collection(events, Watermarks::monotonous())
            .timestamps(|e| e.1)
            .key_by(|e| e.0)
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .aggregate(Average, |key, ctx: &mut WindowContext<'_, f64>, avg, out| {
                // The running total of the key's averages, across windows.
                *ctx.global_state() += avg;
                out.push((key.to_string(), ctx.window().start, *ctx.global_state() as i64))
            })
            .collect();
    }
    env.execute("aggregate with context").unwrap();
    assert_eq!(
        sorted(out.take()),
        vec![
            ("a".to_string(), 0, 200),
            ("a".to_string(), 1000, 1700),
            ("a".to_string(), 2000, 4200),
            ("b".to_string(), 0, 500),
        ]
    );
}

fn per_window_state_on_session_windows_fails_at_job_start(p: usize) {
    let env = env(p);
    flow! { env =>
        from_collection(vec![("a", 100i64)], Watermarks::monotonous())
            .timestamps(|e| e.1)
            .key_by(|e| e.0)
            .window(EventTimeSessionWindows::with_gap(Duration::from_secs(1)))
            .process(|_, ctx: &mut WindowContext<'_, (), u32>, rows: &[Event], out| {
                *ctx.window_state() += 1;
                out.push(rows.len())
            })
            .name("sessions")
            .print();
    }
    let e = env
        .execute("per-window state of sessions")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("sessions") && e.contains("per-window state"),
        "the error names the operator and the cause: {e}"
    );
}

/// Many keys and windows, rows out of order by up to 300 ms (never late): every (key, window)
/// count equals a model's, for tumbling and sliding windows (rows found in panes other than
/// their key's newest, panes made between others, panes gone and keys coming back).
fn many_windows_out_of_order_match_a_model(p: usize) {
    // A fixed pseudo-random order: each row's time jitters back by up to 300 ms.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let rows: Vec<(u32, i64)> = (0..20_000i64)
        .map(|i| {
            let r = next();
            ((r % 37) as u32, (i * 3 - (r >> 8) as i64 % 300).max(0))
        })
        .collect();
    let windows = [
        (Duration::from_millis(100), Duration::from_millis(100)),
        (Duration::from_millis(250), Duration::from_millis(100)),
    ];
    for (size, slide) in windows {
        let (size_ms, slide_ms) = (size.as_millis() as i64, slide.as_millis() as i64);
        let mut want = std::collections::BTreeMap::new();
        for &(k, t) in &rows {
            let last = t - t.rem_euclid(slide_ms);
            let mut start = last;
            while start > t - size_ms {
                *want.entry((k, start, start + size_ms)).or_insert(0u64) += 1;
                start -= slide_ms;
            }
        }
        let want: Vec<(u32, i64, i64, u64)> = want
            .into_iter()
            .map(|((k, s, e), n)| (k, s, e, n))
            .collect();
        // Tumbling windows have a path of their own.
        let assigner = if size == slide {
            TumblingEventTimeWindows::of(size)
        } else {
            SlidingEventTimeWindows::of(size, slide)
        };
        // A watermark after every row: windows fire and go all along.
        let delay = Duration::from_millis(300);
        let (got, late) = counts_per_window(p, rows.clone(), delay, assigner);
        assert_eq!(late, 0);
        assert_eq!(got, want, "size {size:?} slide {slide:?}");
    }
}

/// `rows` (key, time) counted per key and window of `windows`, with `delay` of out-of-order
/// time: (key, start, end, rows) sorted, and how many rows were dropped as late.
fn counts_per_window(
    p: usize,
    rows: Vec<(u32, i64)>,
    delay: Duration,
    windows: flow::window::Windows,
) -> (Vec<(u32, i64, i64, u64)>, u64) {
    let env = env(p);
    flow! { env =>
        let out = from_collection(rows, Watermarks::bounded_out_of_orderness(delay))
            .timestamps(|r| r.1)
            .key_by(|r| r.0)
            .window(windows)
            .process(|k: &u32, w: &TimeWindow, rows: &[(u32, i64)], out: &mut Vec<(u32, i64, i64, u64)>| {
                out.push((*k, w.start, w.end, rows.len() as u64))
            })
            .name("windows")
            .collect();
    }
    let result = env.execute("windows").unwrap();
    let late = result.operator("windows").unwrap().late_rows;
    (sorted(out.take()), late)
}

fn tumbling_windows_with_an_offset_over_negative_times_match_a_model(p: usize) {
    // Rows at and next to every window's edges, before and after time 0, in order and then
    // again out of order (within the out-of-orderness: none is late).
    let (size, offset) = (1000i64, 300i64);
    let mut times = Vec::new();
    for k in -4..4 {
        let start = k * size + offset;
        times.extend([start - 1, start, start + 1, start + size - 1]);
    }
    let mut rows: Vec<(u32, i64)> = times.iter().map(|&t| (0, t)).collect();
    rows.extend(times.iter().rev().map(|&t| (1, t)));
    let mut want = std::collections::BTreeMap::new();
    for &(k, t) in &rows {
        let start = t - (t - offset).rem_euclid(size);
        *want.entry((k, start, start + size)).or_insert(0u64) += 1;
    }
    let want: Vec<(u32, i64, i64, u64)> = want
        .into_iter()
        .map(|((k, s, e), n)| (k, s, e, n))
        .collect();
    let windows = TumblingEventTimeWindows::of_with_offset(
        Duration::from_millis(size as u64),
        Duration::from_millis(offset as u64),
    );
    let (got, late) = counts_per_window(p, rows, Duration::from_secs(10), windows);
    assert_eq!(late, 0);
    assert_eq!(got, want);
}

/// Counts rows.
#[derive(Clone)]
struct Count;

impl AggregateFunction<(u32, i64)> for Count {
    type Acc = u64;
    type Out = u64;
    fn create_accumulator(&mut self) -> u64 {
        0
    }
    fn add(&mut self, _: (u32, i64), acc: &mut u64) {
        *acc += 1;
    }
    fn get_result(&mut self, acc: &u64) -> u64 {
        *acc
    }
    fn merge(&mut self, a: u64, b: u64) -> u64 {
        a + b
    }
}

fn a_window_of_many_keys_emits_its_results_in_the_order_its_keys_came(p: usize) {
    // 1,000 keys a window (W4's shape), each window's keys in another order. A function that
    // sees only the window emits a window's results together; one that uses its context one
    // key at a time: both give every result, in the order the keys first came to the window
    // (as at parallelism 1 in Flink, whose heap state keeps insertion order per key group).
    let rows: Vec<(u32, i64)> = (0..5i64)
        .flat_map(|w| (0..1000u32).map(move |k| ((k * 7 + w as u32 * 13) % 1000, w * 1000 + 1)))
        .collect();
    let env = env(p);
    let input = rows.clone();
    flow! { env =>
        let keyed = from_collection(input, Watermarks::monotonous())
            .timestamps(|r| r.1)
            .key_by(|r| r.0)
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)));
        let plain = keyed
            .aggregate(Count, |k: &u32, w: &TimeWindow, n: u64, out: &mut Vec<(u32, i64, u64)>| {
                out.push((*k, w.start, n))
            })
            .collect();
        let with_context = keyed
            .aggregate(Count, |k, ctx: &mut WindowContext<'_>, n, out| {
                out.push((*k, ctx.window().start, n))
            })
            .collect();
    }
    env.execute("many keys").unwrap();
    let (plain, with_context) = (plain.take(), with_context.take());
    assert_eq!(plain.len(), 5000);
    assert_eq!(sorted(plain.clone()), sorted(with_context.clone()));
    if p == 1 {
        let want: Vec<(u32, i64, u64)> = rows.iter().map(|&(k, t)| (k, t - 1, 1)).collect();
        assert_eq!(plain, want, "a window's results in the order of its keys");
        assert_eq!(with_context, want);
    }
}

at_parallelism!(
    a_window_of_many_keys_emits_its_results_in_the_order_its_keys_came,
    many_windows_out_of_order_match_a_model,
    a_windowed_stream_bound_with_let_feeds_two_functions,
    late_rows_go_to_the_side_output,
    tumbling_with_out_of_order_and_late_rows,
    batch_mode_fires_every_window_at_the_end,
    sliding,
    sessions_merge_out_of_order,
    a_row_late_on_its_own_falls_into_an_open_session,
    a_row_late_on_its_own_extends_an_open_session,
    a_row_whose_merged_session_is_late_is_dropped,
    allowed_lateness_refires_and_then_drops,
    a_session_with_an_allowed_lateness_fires_once,
    reduce_and_aggregate,
    aggregate_with_a_window_function,
    a_window_function_with_context,
    aggregate_with_a_window_function_with_context,
    per_window_state_on_session_windows_fails_at_job_start,
    count_windows,
    window_all_counts_everything_in_one_subtask,
    processing_time_windows_count_every_row_once,
    event_time_windows_on_rows_without_timestamps_fail_clearly,
    zero_window_size_fails_at_job_start,
    tumbling_windows_with_an_offset_over_negative_times_match_a_model,
);

/// (key, timestamp ms)
type Keyed = (i64, i64);

/// Per key and window: (key, start, end, rows).
fn describe_window(
    key: &i64,
    w: &TimeWindow,
    rows: &[Keyed],
    out: &mut Vec<(i64, i64, i64, usize)>,
) {
    out.push((*key, w.start, w.end, rows.len()));
}

/// Tumbling windows with an allowed lateness and sliding windows, their panes moved to the
/// store by the smallest cache (64 entries): late rows within the lateness fire a stored pane
/// again, later ones are dropped, and the results and late counts equal the memory backend's.
#[test]
fn stored_panes_refire_late_rows_and_slide_as_in_memory() {
    // 300 keys in each of 10 seconds, in order; then rows for second 8 (fired, within the
    // lateness of 1 s), and for second 5 (gone: late); and again the newest second.
    let mut events: Vec<Keyed> = Vec::new();
    for second in 0..10 {
        events.extend((0..300).map(|k| (k, second * 1000 + k)));
    }
    events.extend((0..300).step_by(7).map(|k| (k, 8000 + k)));
    events.extend((0..300).step_by(11).map(|k| (k, 5000 + k)));
    events.extend((0..300).step_by(3).map(|k| (k, 9500)));
    let run = |backend: Option<&std::path::Path>| {
        let mut env = StreamEnv::new().with_auto_watermark_interval(Duration::ZERO);
        if let Some(dir) = backend {
            env = env.with_state_backend(flow::state::StateBackendConfig {
                kind: flow::state::StateBackendKind::Disk,
                dir: Some(dir.into()),
                cache_bytes: 1,
            });
        }
        let events = events.clone();
        flow! { env =>
            let rows = from_collection(events, Watermarks::monotonous())
                .timestamps(|e| e.1)
                .key_by(|e| e.0);
            let tumbling = rows
                .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
                .allowed_lateness(Duration::from_secs(1))
                .process(describe_window)
                .name("tumbling")
                .collect();
            let sliding = rows
                .window(SlidingEventTimeWindows::of(Duration::from_secs(3), Duration::from_secs(1)))
                .process(describe_window)
                .name("sliding")
                .collect();
        }
        let result = env.execute("stored panes").unwrap();
        let late = |name| result.operator(name).unwrap().late_rows;
        (
            sorted(tumbling.take()),
            sorted(sliding.take()),
            late("tumbling"),
            late("sliding"),
        )
    };
    let memory = run(None);
    let dir = tempfile::tempdir().unwrap();
    let disk = run(Some(dir.path()));
    // 10 windows of 300 keys, 43 keys fired again; 28 rows late for both.
    assert_eq!(memory.0.len(), 10 * 300 + 43);
    assert_eq!((memory.2, memory.3), (28, 28));
    assert!(memory.1.len() > 10 * 300);
    assert!(
        disk == memory,
        "the disk backend's windows differ from the memory backend's"
    );
}
