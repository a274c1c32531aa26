//! Fused jobs (README, "How a job runs"): one parallelism and only `key_by` between stages,
//! each subtask one task that keeps its own keys' rows and sends the others'. The same rows,
//! results and checkpoints as the staged run of the same job (a `rebalance` at the end keeps
//! it staged), at parallelism 1 and 2, under both schedulings, with channels that fill up.

mod common;

use common::{finished_rows, sorted};
use flow::prelude::*;
use flow::Scheduling;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

const ROWS: i64 = 300_000;

/// A sum that sleeps now and then (`flow::sleep`, which gives its worker away): the keyed
/// subtasks fall behind their sources, the channels between subtasks fill up and each
/// subtask waits for room while the other sends to it.
fn slow_sum(a: (i64, i64), b: (i64, i64)) -> (i64, i64) {
    if b.1 % 50_000 == 0 {
        flow::sleep(Duration::from_millis(20));
    }
    (a.0, a.1 + b.1)
}

/// Two `key_by`s in a row (two fused exchanges, the second fed from the first's chain), a
/// rolling sum after each (the second counts the first's rows per key group); the last count
/// per key of the second, and the rows it got.
fn two_key_bys(p: usize, scheduling: Scheduling, staged: bool) -> (Vec<(i64, i64)>, u64) {
    let env = StreamEnv::new()
        .with_parallelism(p)
        .with_scheduling(scheduling);
    if staged {
        flow! { env =>
            let out = source(NumberSequence::new(1, ROWS), Watermarks::no_watermarks())
                .map(|n: i64| (n % 1_009, n))
                .key_by(|r| r.0)
                .reduce(slow_sum)
                .map(|r| (r.0 % 13, 1))
                .key_by(|r| r.0)
                .reduce(|a, b| (a.0, a.1 + b.1)).name("count")
                .rebalance()
                .collect();
        }
        // (At parallelism 1 every job without multi-input operators runs fused.)
        assert_eq!(is_fused(&env), p == 1);
        let result = env.execute("staged").unwrap();
        (
            last_per_key(out.take()),
            result.operator("count").unwrap().rows_in,
        )
    } else {
        // (`collect` runs in one subtask unless told otherwise: a `CollectHandle`'s sink at
        // the job's parallelism.)
        let out = flow::CollectHandle::new();
        let sink = out.sink();
        flow! { env =>
            source(NumberSequence::new(1, ROWS), Watermarks::no_watermarks())
                .map(|n: i64| (n % 1_009, n))
                .key_by(|r| r.0)
                .reduce(slow_sum)
                .map(|r| (r.0 % 13, 1))
                .key_by(|r| r.0)
                .reduce(|a, b| (a.0, a.1 + b.1)).name("count")
                .sink_to(sink);
        }
        assert!(is_fused(&env), "{}", env.explain(flow::ExplainFormat::Text));
        let result = env.execute("fused").unwrap();
        (
            last_per_key(out.take()),
            result.operator("count").unwrap().rows_in,
        )
    }
}

/// Two `key_by`s in a row, no keyed state (so checkpoints without a directory complete), a
/// checkpoint every 5 ms, and subtask 1's source much slower than subtask 0's: checkpoints
/// are triggered while subtask 0 waits for subtask 1's end. Its first `key_by` takes its part
/// and must pass the barrier to its second, which subtask 1's second `key_by` waits for (else
/// both wait for each other for good).
fn checkpoints_after_a_subtask_s_source_ended(p: usize) {
    const N: i64 = 20_000;
    let env = StreamEnv::new()
        .with_parallelism(p)
        .with_checkpoint_interval(Some(Duration::from_millis(5)));
    let out = flow::CollectHandle::new();
    let sink = out.sink();
    flow! { env =>
        source(NumberSequence::new(1, N), Watermarks::no_watermarks())
            .map(|n: i64| {
                // The second half is subtask 1's split at parallelism 2.
                if n > N / 2 && n % 100 == 0 {
                    flow::sleep(Duration::from_millis(1));
                }
                n
            })
            .key_by(|n| *n % 7)
            .map(|n: i64| n * 2)
            .key_by(|n| *n % 5)
            .map(|n: i64| n / 2)
            .sink_to(sink);
    }
    assert!(is_fused(&env));
    let (done, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(env.execute("tail"));
    });
    let result = wait
        .recv_timeout(Duration::from_secs(60))
        .expect("the job ends (its subtasks waited for each other)");
    let result = result.unwrap();
    assert_eq!(sorted(out.take()), (1..=N).collect::<Vec<_>>());
    // Subtask 0 took its part of every checkpoint after its source ended: none declined.
    assert_eq!(result.checkpoints.failed, 0, "{:?}", result.checkpoints);
}

/// Whether `--explain` says the job runs fused (on its first line).
fn is_fused(env: &StreamEnv) -> bool {
    let plan = env.explain(flow::ExplainFormat::Text);
    plan.lines().next().unwrap().contains(", fused")
}

/// The newest row per key of a rolling reduce's output (its counts only grow).
fn last_per_key(rows: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    let mut last = BTreeMap::new();
    for (k, v) in rows {
        let e = last.entry(k).or_insert(v);
        *e = (*e).max(v);
    }
    last.into_iter().collect()
}

fn fused_and_staged_agree(p: usize) {
    // The model: every row counted once, under the second `key_by`'s key (of the first's).
    let mut model = BTreeMap::new();
    for n in 1..=ROWS {
        *model.entry(n % 1_009 % 13).or_insert(0i64) += 1;
    }
    let model: Vec<(i64, i64)> = model.into_iter().collect();
    for scheduling in [Scheduling::Workers, Scheduling::Threads] {
        let fused = two_key_bys(p, scheduling, false);
        let staged = two_key_bys(p, scheduling, true);
        assert_eq!(fused.1, ROWS as u64, "{scheduling:?}");
        assert_eq!(fused, staged, "{scheduling:?}");
        assert_eq!(fused.0, model, "{scheduling:?}");
    }
}

/// Event time through a fused `key_by`: the window sees the minimum watermark over every
/// subtask's, so no row is late and every window fires once, with all its rows.
fn windows_see_every_subtask_s_watermark(p: usize) {
    let env = StreamEnv::new().with_parallelism(p);
    let out = flow::CollectHandle::new();
    let sink = out.sink();
    flow! { env =>
        source(NumberSequence::new(0, 99_999), Watermarks::monotonous())
            .timestamps(|n| *n)
            .map(|n: i64| (n % 10, 1i64))
            .key_by(|r| r.0)
            .window(TumblingEventTimeWindows::of(Duration::from_millis(1_000)))
            .reduce(|a, b| (a.0, a.1 + b.1)).name("per second")
            .sink_to(sink);
    }
    assert!(is_fused(&env));
    let result = env.execute("windows").unwrap();
    assert_eq!(result.operator("per second").unwrap().late_rows, 0);
    let rows = sorted(out.take());
    assert_eq!(rows.len(), 10 * 100, "a window per key and second");
    assert!(rows.iter().all(|r| r.1 == 100), "{:?}", &rows[..5]);
}

at_parallelism!(
    fused_and_staged_agree,
    windows_see_every_subtask_s_watermark,
    a_fork_into_two_key_bys,
    checkpoints_after_a_subtask_s_source_ended
);

/// A fork whose two branches each reach a `key_by` is not fused above parallelism 1 (a
/// subtask waiting in one branch's `key_by` would not read the other's), and gives the same
/// rows as at parallelism 1.
fn a_fork_into_two_key_bys(p: usize) {
    let env = StreamEnv::new().with_parallelism(p);
    let (by_3, by_5) = (flow::CollectHandle::new(), flow::CollectHandle::new());
    let (sink_3, sink_5) = (by_3.sink(), by_5.sink());
    flow! { env =>
        let numbers = source(NumberSequence::new(1, 100_000), Watermarks::no_watermarks())
            .map(|n: i64| (n, 1i64));
        numbers.key_by(|r| r.0 % 3).reduce(|a, b| (a.0, a.1 + b.1)).sink_to(sink_3);
        numbers.key_by(|r| r.0 % 5).reduce(|a, b| (a.0, a.1 + b.1)).sink_to(sink_5);
    }
    // At parallelism 1 it is fused all the same: nothing crosses between tasks.
    assert_eq!(is_fused(&env), p == 1);
    env.execute("fork").unwrap();
    let counts = |rows: Vec<(i64, i64)>, m: i64| -> Vec<(i64, i64)> {
        let rows = last_per_key(rows.into_iter().map(|(n, c)| (n % m, c)).collect());
        assert_eq!(rows.len() as i64, m);
        rows
    };
    let count = |m: i64, k: i64| (1..=100_000).filter(|n| n % m == k).count() as i64;
    assert_eq!(
        counts(by_3.take(), 3),
        (0..3).map(|k| (k, count(3, k))).collect::<Vec<_>>()
    );
    assert_eq!(
        counts(by_5.take(), 5),
        (0..5).map(|k| (k, count(5, k))).collect::<Vec<_>>()
    );
}

const TAIL: i64 = 40_000;

/// How a run of [`tail_counts`] ends early, once subtask 0's source ended and checkpoints
/// completed since (see [`tail_row`]): subtask 1 crashes (a user panic), or asks the job to
/// stop with a savepoint.
#[derive(Clone, Copy)]
enum Early {
    Crash,
    Stop,
}

#[derive(Clone, Copy)]
struct Tail {
    checkpoints: &'static Path,
    early: Early,
    /// The first checkpoint triggered after subtask 0's source ended (0: not yet).
    after_end: &'static AtomicU64,
    stop_requested: &'static AtomicBool,
}

/// Row `n`; subtask 1's rows (the second half) are slow, so subtask 0's source ends long
/// before. With `tail`, subtask 1 ends the run early once a checkpoint completed that was
/// triggered after subtask 0's source ended: its fused subtask took its part of it (its
/// source's final position, its keyed stages' state) while waiting for subtask 1's rows.
fn tail_row(n: i64, tail: Option<Tail>) -> i64 {
    let Some(t) = tail else {
        return n;
    };
    if n == TAIL / 2 {
        // Subtask 0's last row. The checkpoint after the newest completed one may have been
        // triggered before its source ended; the one after that cannot complete before.
        let latest = common::latest_checkpoint(t.checkpoints);
        t.after_end.store(latest + 2, Ordering::SeqCst);
    }
    if n > TAIL / 2 {
        let after_end = t.after_end.load(Ordering::SeqCst);
        if after_end != 0 && common::latest_checkpoint(t.checkpoints) >= after_end {
            match t.early {
                Early::Crash if n % 7 == 0 => panic!("crash at row {n}"),
                Early::Stop if !t.stop_requested.swap(true, Ordering::SeqCst) => {
                    flow::request_stop()
                }
                _ => {}
            }
        }
        if n % 20 == 0 {
            flow::sleep(Duration::from_millis(1));
        }
    }
    n
}

/// A rolling count per key after each of two `key_by`s, into part files: each input row gives
/// one output row, and a key's outputs are 1, 2, ... whatever the order its rows come in.
fn tail_counts(env: StreamEnv, out: &Path, tail: Option<Tail>) -> flow::Result<flow::JobResult> {
    flow! { env =>
        source(NumberSequence::new(1, TAIL), Watermarks::no_watermarks())
            .map(move |n| tail_row(n, tail))
            .map(|n: i64| (n % 1_009, 1i64))
            .key_by(|r| r.0)
            .reduce(|a, b| (a.0, a.1 + b.1))
            .map(|r: (i64, i64)| (r.0 % 13, 1i64))
            .key_by(|r| r.0)
            .reduce(|a, b| (a.0, a.1 + b.1))
            .sink_to(FileSink::row_format(out));
    }
    assert!(is_fused(&env), "{}", env.explain(flow::ExplainFormat::Text));
    within(Duration::from_secs(120), move || env.execute("tail counts"))
}

/// `f()` on a thread of its own, failing the test if it takes longer than `limit` (a fused
/// subtask waiting for the others for good).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(f());
    });
    wait.recv_timeout(limit)
        .expect("the job ends (its subtasks waited for each other)")
}

fn tail_env(checkpoints: &Path) -> StreamEnv {
    StreamEnv::new()
        .with_parallelism(2)
        .with_checkpoint_interval(Some(Duration::from_millis(5)))
        .with_checkpoint_dir(checkpoints, 1)
}

impl Tail {
    fn new(checkpoints: &Path, early: Early) -> Tail {
        Tail {
            checkpoints: Box::leak(checkpoints.to_path_buf().into_boxed_path()),
            early,
            after_end: Box::leak(Box::new(AtomicU64::new(0))),
            stop_requested: Box::leak(Box::new(AtomicBool::new(false))),
        }
    }
}

/// The part files under `out` hold exactly the rows `expected` (`context`: for the message).
fn assert_rows(out: &Path, expected: &[String], context: &str) {
    let got = finished_rows(out);
    assert_eq!(got.len(), expected.len(), "{context}");
    assert!(got == expected, "the rows differ ({context})");
}

/// The rows of an uninterrupted run of [`tail_counts`].
fn tail_reference(root: &Path) -> Vec<String> {
    let reference = root.join("reference");
    tail_counts(tail_env(&root.join("ck-ref")), &reference, None).unwrap();
    let rows = finished_rows(&reference);
    assert_eq!(rows.len(), TAIL as usize);
    rows
}

/// A fused job with saved checkpoints crashes after subtask 0's source ended and checkpoints
/// completed with subtask 0's part taken meanwhile; restored from the latest, it ends with the
/// rows of a run that never crashed (subtask 0's keyed state was in its part: without it the
/// counts of its keys start over). (Its source's final position is in the part too; a
/// `NumberSequence` split missing from a checkpoint reads nothing, so this job would not tell.)
#[test]
fn a_crash_after_a_subtask_s_source_ended_restores_exactly_once() {
    let root = tempfile::tempdir().unwrap();
    let expected = tail_reference(root.path());
    let (out, checkpoints) = (root.path().join("out"), root.path().join("ck"));
    let tail = Tail::new(&checkpoints, Early::Crash);
    let err = tail_counts(tail_env(&checkpoints), &out, Some(tail))
        .expect_err("the first run crashes (checkpoints went on after subtask 0's source ended)");
    assert!(err.to_string().contains("crash at row"), "{err}");
    let before = finished_rows(&out).len();
    tail_counts(tail_env(&checkpoints).with_restore("latest"), &out, None).unwrap();
    assert_rows(&out, &expected, &format!("{before} rows before the crash"));
}

/// A stop with a savepoint while subtask 0's source has ended and its keyed stages wait for
/// subtask 1's rows: both subtasks end without their end of input, and the job started from
/// the savepoint ends with the rows of a run that was never stopped.
/// (`flow::request_stop` is for the whole process and stays: no other job in this test binary
/// may have a savepoint directory and run.)
#[test]
fn a_stop_after_a_subtask_s_source_ended_takes_a_savepoint() {
    let root = tempfile::tempdir().unwrap();
    let expected = tail_reference(root.path());
    let (out, checkpoints) = (root.path().join("out"), root.path().join("ck"));
    let tail = Tail::new(&checkpoints, Early::Stop);
    let env = tail_env(&checkpoints).with_savepoint_dir(root.path().join("savepoints"));
    let stopped = tail_counts(env, &out, Some(tail)).unwrap();
    let savepoint = stopped.savepoint.expect("the job stopped with a savepoint");
    let partial = finished_rows(&out).len();
    assert!(partial < expected.len(), "stopped too late: {partial} rows");
    let env = tail_env(&checkpoints).with_restore(savepoint.to_str().unwrap());
    tail_counts(env, &out, None).unwrap();
    assert_rows(&out, &expected, &format!("{partial} rows at the savepoint"));
}

/// With saved checkpoints, a sink before the `key_by` keeps a task per stage: a fused subtask
/// whose source ended takes its later parts with its keyed chain only, and would leave the
/// sink's state out. Without a directory (nothing to restore) it runs fused.
#[test]
fn a_sink_before_the_key_by_with_saved_checkpoints_keeps_a_task_per_stage() {
    let dir = tempfile::tempdir().unwrap();
    let envs = [
        (StreamEnv::new().with_checkpoint_dir(dir.path(), 1), false),
        (StreamEnv::new().with_savepoint_dir(dir.path()), false),
        (StreamEnv::new(), true),
    ];
    for (env, fused) in envs {
        let env = env.with_parallelism(2);
        flow! { env =>
            let numbers = source(NumberSequence::new(1, 10), Watermarks::no_watermarks());
            numbers.print();
            numbers.key_by(|n| *n % 3).reduce(|a, b| a + b).print();
        }
        assert_eq!(is_fused(&env), fused);
    }
}

#[test]
fn a_rebalance_or_a_parallelism_change_keeps_a_task_per_stage() {
    let env = StreamEnv::new().with_parallelism(2);
    flow! { env =>
        source(NumberSequence::new(1, 10), Watermarks::no_watermarks())
            .key_by(|n| *n % 3)
            .reduce(|a, b| a + b)
            .print()
            .parallelism(1);
    }
    assert!(!is_fused(&env));
    let env = StreamEnv::new().with_parallelism(2);
    flow! { env =>
        source(NumberSequence::new(1, 10), Watermarks::no_watermarks())
            .key_by(|n| *n % 3)
            .reduce(|a, b| a + b)
            .rebalance()
            .print();
    }
    assert!(!is_fused(&env));
    let env = StreamEnv::new().with_parallelism(2);
    flow! { env =>
        source(NumberSequence::new(1, 10), Watermarks::no_watermarks())
            .key_by(|n| *n % 3)
            .reduce(|a, b| a + b)
            .print();
    }
    assert!(is_fused(&env));
}
