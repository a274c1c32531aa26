//! Every stateful operator's snapshot and restore, end to end: a job fails (a user panic) after
//! some checkpoints completed, is restored from the latest one and runs to its end; its
//! finished files must hold exactly the rows of a run that never failed. (The killed-process
//! tests in `fault_tolerance.rs` cover keyed state, reduce and fixed windows; these cover
//! session and count windows, window functions' state, process functions' state and timers,
//! the joins and broadcast state.)

mod common;

use common::finished_rows;
use flow::prelude::*;
use std::path::Path;
use std::time::Duration;

const ROWS: i64 = 20_000;

/// Where the first run fails: at row `ROWS / 2` (the last of the first split at parallelism
/// 2, so the second split often ends around the crash), with the rows from `ROWS / 4` on slowed
/// down until a checkpoint completed under `checkpoints` (so that one has, on a loaded machine
/// too).
#[derive(Clone, Copy)]
struct Crash {
    checkpoints: &'static Path,
}

/// Row `n` as the source emits it: slowed down so that checkpoints (every 5 ms) fall between
/// the rows, and with `crash`, a user panic (see [`Crash`]).
fn row(n: i64, crash: Option<Crash>) -> i64 {
    if let Some(c) = crash {
        if n == ROWS / 2 {
            panic!("crash at row {n}");
        }
        if n >= ROWS / 4 && n % 10 == 0 && !common::has_checkpoint(c.checkpoints) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    if n % 100 == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    n
}

/// With `disk`, the disk state backend with the smallest cache, its store under `disk`.
fn env(p: usize, checkpoints: &Path, restore: bool, disk: Option<&Path>) -> StreamEnv {
    let mut env = StreamEnv::new()
        .with_parallelism(p)
        .with_checkpoint_interval(Some(Duration::from_millis(5)))
        .with_checkpoint_dir(checkpoints, 1)
        .with_auto_watermark_interval(Duration::ZERO);
    if let Some(dir) = disk {
        env = env.with_state_backend(flow::state::StateBackendConfig {
            kind: flow::state::StateBackendKind::Disk,
            dir: Some(dir.into()),
            cache_bytes: 1,
        });
    }
    if restore {
        env.with_restore("latest")
    } else {
        env
    }
}

type Job = fn(StreamEnv, &Path, Option<Crash>) -> flow::Result<flow::JobResult>;

/// `job` uninterrupted, against `job` failing after a checkpoint (see [`Crash`]) and
/// restored, at each of `parallelisms`.
fn crash_and_restore(name: &str, parallelisms: &[usize], job: Job) {
    crash_and_restore_on(name, parallelisms, job, false);
}

/// As [`crash_and_restore`]; with `disk`, the failing and the restored runs on the disk
/// backend (the uninterrupted one on the memory backend).
fn crash_and_restore_on(name: &str, parallelisms: &[usize], job: Job, disk: bool) {
    for &p in parallelisms {
        let root = tempfile::tempdir().unwrap();
        let state = root.path().join("state");
        let disk = disk.then_some(state.as_path());
        let reference = root.path().join("reference");
        job(
            env(p, &root.path().join("ck-ref"), false, None),
            &reference,
            None,
        )
        .unwrap_or_else(|e| panic!("{name} p{p}: {e}"));
        let expected = finished_rows(&reference);
        assert!(!expected.is_empty(), "{name}: no output");

        let (out, checkpoints) = (root.path().join("out"), root.path().join("ck"));
        let crash = Crash {
            checkpoints: Box::leak(checkpoints.clone().into_boxed_path()),
        };
        let err = job(env(p, &checkpoints, false, disk), &out, Some(crash))
            .expect_err("the first run fails");
        assert!(err.to_string().contains("crash at row"), "{name}: {err}");
        let restored_from = std::fs::read_dir(&checkpoints)
            .unwrap()
            .flatten()
            .find(|e| e.path().join("_metadata").is_file())
            .unwrap_or_else(|| panic!("{name} p{p}: no checkpoint completed before the crash"));
        let before = finished_rows(&out).len();
        job(env(p, &checkpoints, true, disk), &out, None)
            .unwrap_or_else(|e| panic!("{name} p{p} restored from {restored_from:?}: {e}"));
        let got = finished_rows(&out);
        assert_eq!(
            got.len(),
            expected.len(),
            "{name} p{p}: {} rows ({before} before the crash), {} without it",
            got.len(),
            expected.len()
        );
        assert!(got == expected, "{name} p{p}: the rows differ");
    }
}

#[test]
fn session_windows() {
    crash_and_restore("sessions", &[1, 2], |env, out, crash| {
        flow! { env =>
            source(NumberSequence::new(1, ROWS), Watermarks::monotonous())
                // Every 50th row starts a new session: a gap of 1 s of event time.
                .timestamps(|n| n * 10 + (n / 50) * 1000)
                .map(move |n| row(n, crash))
                .key_by(|n| n % 3)
                .window(EventTimeSessionWindows::with_gap(Duration::from_millis(500)))
                .process(|k: &i64, w: &TimeWindow, rows: &[i64], out: &mut Vec<(i64, i64, i64, usize)>| {
                    out.push((*k, w.start, w.end, rows.len()))
                })
                .sink_to(FileSink::row_format(out));
        }
        env.execute("sessions")
    });
}

/// Session windows of 200 keys, watermarks 2 s behind and an allowed lateness: some 400
/// timers pending (a firing and a cleanup per session), on the disk backend with the smallest
/// cache: the latest are in the store at the checkpoints and the restore.
#[test]
fn session_windows_on_disk() {
    crash_and_restore_on(
        "sessions on disk",
        &[1, 2],
        |env, out, crash| {
            flow! { env =>
                source(NumberSequence::new(1, ROWS), Watermarks::bounded_out_of_orderness(Duration::from_secs(2)))
                    // Every 1000th row starts a new session of each key.
                    .timestamps(|n| n * 10 + (n / 1000) * 1000)
                    .map(move |n| row(n, crash))
                    .key_by(|n| n % 200)
                    .window(EventTimeSessionWindows::with_gap(Duration::from_millis(500)))
                    .allowed_lateness(Duration::from_secs(1))
                    .process(|k: &i64, w: &TimeWindow, rows: &[i64], out: &mut Vec<(i64, i64, i64, usize)>| {
                        out.push((*k, w.start, w.end, rows.len()))
                    })
                    .sink_to(FileSink::row_format(out));
            }
            env.execute("sessions on disk")
        },
        true,
    );
}

#[test]
fn window_function_state() {
    // A window function's state per key across windows (a running count of its windows) and
    // per key and window (its firings; kept for the allowed lateness): both restored, or the
    // counts after the crash start over.
    crash_and_restore("window state", &[1, 2], |env, out, crash| {
        flow! { env =>
            source(NumberSequence::new(1, ROWS), Watermarks::monotonous())
                .timestamps(|n| *n)
                .map(move |n| row(n, crash))
                .key_by(|n| n % 3)
                .window(TumblingEventTimeWindows::of(Duration::from_millis(100)))
                .allowed_lateness(Duration::from_secs(1))
                .process(|k: &i64, ctx: &mut WindowContext<'_, u64, u32>, rows: &[i64], out: &mut Vec<(i64, i64, usize, u64, u32)>| {
                    *ctx.global_state() += 1;
                    *ctx.window_state() += 1;
                    out.push((*k, ctx.window().start, rows.len(), *ctx.global_state(), *ctx.window_state()))
                })
                .sink_to(FileSink::row_format(out));
        }
        env.execute("window state")
    });
}

#[test]
fn count_windows() {
    // At parallelism 2 the rows of a key come from two source subtasks in an order that
    // differs from run to run, and a count window's contents with it: parallelism 1 only.
    crash_and_restore("count windows", &[1], |env, out, crash| {
        flow! { env =>
            source(NumberSequence::new(1, ROWS), Watermarks::no_watermarks())
                .map(move |n| row(n, crash))
                .map(|n| (n % 5, n))
                .key_by(|r| r.0)
                .count_window(10, 5)
                .reduce(|a, b| (a.0, a.1 + b.1))
                .sink_to(FileSink::row_format(out));
        }
        env.execute("count windows")
    });
}

/// Counts rows per key and, 1 s of event time after every 10th, emits the key, the timer's
/// time and the count then.
#[derive(Clone, Default, KeyedState)]
struct Delayed {
    #[state]
    count: ValueState<u32>,
}

#[process_function]
impl Delayed {
    fn process(
        &mut self,
        n: i64,
        ctx: &mut ProcessContext<'_, i64>,
        _out: &mut Vec<(i64, i64, u32)>,
    ) {
        *self.count.get_mut_or_default() += 1;
        if n % 10 == 0 {
            let at = ctx.timestamp().unwrap_or(0) + 1000;
            ctx.register_event_time_timer(at);
        }
    }

    fn on_timer(
        &mut self,
        timestamp: i64,
        ctx: &mut ProcessContext<'_, i64>,
        out: &mut Vec<(i64, i64, u32)>,
    ) {
        out.push((*ctx.key(), timestamp, self.count.value().unwrap_or(0)));
    }
}

#[test]
fn process_function_state_and_timers() {
    // At parallelism 2 how many rows of a key are counted when its timer fires depends on
    // how the two source subtasks interleave: parallelism 1 only.
    crash_and_restore("timers", &[1], |env, out, crash| {
        flow! { env =>
            source(NumberSequence::new(1, ROWS), Watermarks::monotonous())
                .timestamps(|n| *n)
                .map(move |n| row(n, crash))
                .key_by(|n| n % 7)
                .process(Delayed::default())
                .sink_to(FileSink::row_format(out));
        }
        env.execute("timers")
    });
}

/// As `process_function_state_and_timers`, on the disk backend with the smallest cache: of
/// the ~100 timers pending at a time, the latest are in the store.
#[test]
fn process_function_timers_on_disk() {
    crash_and_restore_on(
        "timers on disk",
        &[1],
        |env, out, crash| {
            flow! { env =>
                source(NumberSequence::new(1, ROWS), Watermarks::monotonous())
                    .timestamps(|n| *n)
                    .map(move |n| row(n, crash))
                    .key_by(|n| n % 7)
                    .process(Delayed::default())
                    .sink_to(FileSink::row_format(out));
            }
            env.execute("timers on disk")
        },
        true,
    );
}

#[test]
fn interval_join() {
    crash_and_restore("interval join", &[1, 2], |env, out, crash| {
        flow! { env =>
            let left = source(NumberSequence::new(1, ROWS), Watermarks::monotonous())
                .timestamps(|n| *n)
                .map(move |n| row(n, crash))
                .key_by(|n| n % 10);
            let right = source(NumberSequence::new(1, ROWS), Watermarks::monotonous())
                .timestamps(|n| *n)
                .map(|n| row(n, None))
                .key_by(|n| n % 10);
            left.interval_join(right)
                .between(-20, 20)
                .process(|a: &i64, b: &i64, out: &mut Vec<(i64, i64)>| out.push((*a, *b)))
                .sink_to(FileSink::row_format(out));
        }
        env.execute("interval join")
    });
}

#[test]
fn window_join() {
    crash_and_restore("window join", &[1, 2], |env, out, crash| {
        flow! { env =>
            let left = source(NumberSequence::new(1, ROWS), Watermarks::monotonous())
                .timestamps(|n| *n)
                .map(move |n| row(n, crash))
                .key_by(|n| n % 10);
            let right = source(NumberSequence::new(1, ROWS), Watermarks::monotonous())
                .timestamps(|n| *n)
                .map(|n| row(n, None))
                .filter(|n| n % 7 == 0)
                .key_by(|n| n % 10);
            left.window_join(right, TumblingEventTimeWindows::of(Duration::from_millis(100)))
                .process(|a: &i64, b: &i64, out: &mut Vec<(i64, i64)>| out.push((*a, *b)))
                .sink_to(FileSink::row_format(out));
        }
        env.execute("window join")
    });
}

/// A window join whose function reads the rows' timestamps, with watermarks `delay` behind.
fn window_join_with_timestamps(
    env: StreamEnv,
    out: &Path,
    crash: Option<Crash>,
    delay: Duration,
) -> flow::Result<flow::JobResult> {
    let watermarks = || Watermarks::bounded_out_of_orderness(delay);
    flow! { env =>
        let left = source(NumberSequence::new(1, ROWS), watermarks())
            .timestamps(|n| *n)
            .map(move |n| row(n, crash))
            .key_by(|n| n % 10);
        let right = source(NumberSequence::new(1, ROWS), watermarks())
            .timestamps(|n| *n)
            .map(|n| row(n, None))
            .filter(|n| n % 7 == 0)
            .key_by(|n| n % 10);
        left.window_join(right, TumblingEventTimeWindows::of(Duration::from_millis(100)))
            .process(|a: &i64, b: &i64, ctx, out: &mut Vec<(i64, i64, i64, i64)>| {
                out.push((*a, *b, ctx.left_timestamp(), ctx.right_timestamp()))
            })
            .sink_to(FileSink::row_format(out));
    }
    env.execute("window join with context")
}

#[test]
fn window_join_with_context() {
    // The rows' timestamps are kept only for a function that reads them: restored with them.
    crash_and_restore("window join with context", &[1, 2], |env, out, crash| {
        window_join_with_timestamps(env, out, crash, Duration::ZERO)
    });
}

/// A window join whose watermarks trail by 2 s (20 windows of 10 keys open), on the disk
/// backend with the smallest cache: most panes are in the store when the checkpoints are
/// taken and when they are restored.
#[test]
fn window_join_on_disk() {
    crash_and_restore_on(
        "window join on disk",
        &[1, 2],
        |env, out, crash| window_join_with_timestamps(env, out, crash, Duration::from_secs(2)),
        true,
    );
}

/// Sleeps once per thread (a subtask of one run): long enough for the broadcast rule to
/// reach every subtask of the operator before the first reading does.
fn wait_for_the_rule() {
    thread_local! {
        static FIRST: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
    }
    if FIRST.with(|f| f.replace(false)) {
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Passes readings above the latest broadcast limit.
#[derive(Clone)]
struct Above;

impl flow::BroadcastProcessFunction<(i64, i64), i64> for Above {
    type State = Option<i64>;
    type Out = (i64, i64, i64);
    fn process_element(
        &mut self,
        r: (i64, i64),
        limit: &Option<i64>,
        out: &mut Vec<(i64, i64, i64)>,
    ) {
        if let Some(limit) = limit {
            if r.1 % 1000 > *limit {
                out.push((r.0, r.1, *limit));
            }
        }
    }
    fn process_broadcast_element(
        &mut self,
        rule: i64,
        limit: &mut Option<i64>,
        _: &mut Vec<(i64, i64, i64)>,
    ) {
        *limit = Some(rule);
    }
}

#[test]
fn broadcast_state() {
    crash_and_restore("broadcast", &[1, 2], |env, out, crash| {
        flow! { env =>
            let rules = from_collection(vec![900i64]).broadcast();
            let readings = source(NumberSequence::new(1, ROWS), Watermarks::no_watermarks())
                // The rule arrives long before each subtask's first reading (of this run: a
                // restored one starts mid-sequence): no reading depends on the race.
                .map(|n| { wait_for_the_rule(); n })
                .map(move |n| row(n, crash))
                .map(|n| (n % 4, n))
                .key_by(|r| r.0);
            readings.connect(rules).process(Above).sink_to(FileSink::row_format(out));
        }
        env.execute("broadcast")
    });
}
