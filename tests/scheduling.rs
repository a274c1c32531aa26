//! `--scheduling`: a job's tasks on workers (one thread per core, subtask `i` of every stage on
//! worker `i % cores`, switching where a task waits) or on a thread each; the same results
//! either way.

mod common;

use common::sorted;
use flow::prelude::*;
use flow::Scheduling;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Names of the threads that ran the test's functions, by test.
static THREADS: Mutex<Vec<(&'static str, String)>> = Mutex::new(Vec::new());

fn seen(test: &'static str) {
    let name = std::thread::current().name().unwrap_or("").to_string();
    THREADS.lock().unwrap().push((test, name));
}

fn threads_of(test: &'static str) -> BTreeSet<String> {
    THREADS
        .lock()
        .unwrap()
        .iter()
        .filter(|t| t.0 == test)
        .map(|t| t.1.clone())
        .collect()
}

/// A keyed running sum, a two-input stage (`connect`) and event-time windows: every kind of
/// loop a task runs (source, one gate, two gates), with exchanges between them.
fn job(p: usize, scheduling: Scheduling, test: &'static str) -> (Vec<(i64, i64)>, Vec<String>) {
    let env = StreamEnv::new()
        .with_parallelism(p)
        .with_scheduling(scheduling)
        .with_auto_watermark_interval(Duration::from_millis(1));
    flow! { env =>
        let numbers = source(NumberSequence::new(0, 99_999), Watermarks::monotonous()).timestamps(|n| *n);
        let sums = numbers
            .map(move |n: i64| {
                seen(test);
                (n % 10, n)
            })
            .key_by(|r| r.0)
            .reduce(|a: (i64, i64), b: (i64, i64)| (a.0, a.1 + b.1))
            .collect();
        let labels = source(NumberSequence::new(0, 2), Watermarks::no_watermarks());
        let windows = numbers
            .key_by(|n| n % 3)
            .window(TumblingEventTimeWindows::of(Duration::from_millis(50_000)))
            .reduce(|a: i64, b: i64| a + b);
        let joined = windows
            .connect(labels)
            .co_map(|w| format!("window {w}"), |l| format!("label {l}"))
            .collect();
    }
    env.execute("scheduling").unwrap();
    // Each key's last update is its sum.
    let mut last = std::collections::BTreeMap::new();
    for (k, sum) in sums.take() {
        let top = last.entry(k).or_insert(sum);
        *top = (*top).max(sum);
    }
    (last.into_iter().collect(), sorted(joined.take()))
}

/// The sums and windows of [`job`], computed by hand.
fn expected() -> (Vec<(i64, i64)>, Vec<String>) {
    let sums = (0..10)
        .map(|k| (k, (0..100_000i64).filter(|n| n % 10 == k).sum()))
        .collect();
    let mut windows: Vec<String> = (0..2)
        .flat_map(|w| {
            (0..3).map(move |k| {
                let sum: i64 = (w * 50_000..(w + 1) * 50_000).filter(|n| n % 3 == k).sum();
                format!("window {sum}")
            })
        })
        .chain((0..3).map(|l| format!("label {l}")))
        .collect();
    windows.sort();
    (sums, windows)
}

#[test]
fn workers_and_threads_give_the_same_results() {
    let want = expected();
    for p in [1, 2, 4] {
        assert_eq!(job(p, Scheduling::Workers, "same"), want, "workers, p{p}");
        assert_eq!(job(p, Scheduling::Threads, "same"), want, "threads, p{p}");
    }
}

#[test]
fn workers_run_every_stage_on_one_thread_per_core() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    job(4, Scheduling::Workers, "workers");
    let names = threads_of("workers");
    assert!(
        names.iter().all(|n| n.starts_with("flow-w")) && names.len() <= cores.min(4),
        "{names:?} on {cores} cores"
    );
    job(4, Scheduling::Threads, "threads");
    let names = threads_of("threads");
    assert_eq!(
        names,
        (0..4)
            .map(|i| format!("flow-s0-{i}"))
            .collect::<BTreeSet<_>>(),
        "a thread per source subtask"
    );
}

#[test]
fn the_scheduling_flag() {
    let parse = |args: &[&str]| {
        StreamEnv::command("job")
            .try_get_matches_from(std::iter::once("job").chain(args.iter().copied()))
    };
    for ok in [
        &[][..],
        &["--scheduling", "workers"],
        &["--scheduling", "threads"],
    ] {
        let m = parse(ok).unwrap();
        let env = StreamEnv::from_matches(&m);
        flow! { env =>
            let out = from_collection(vec![1, 2, 3]).map(|x: i32| x * 2).collect();
        }
        env.execute("flag").unwrap();
        assert_eq!(sorted(out.take()), vec![2, 4, 6], "{ok:?}");
    }
    let err = parse(&["--scheduling", "fibers"]).unwrap_err().to_string();
    assert!(err.contains("workers") && err.contains("threads"), "{err}");
    let help = StreamEnv::command("job").render_long_help().to_string();
    assert!(help.contains("--scheduling"), "{help}");
}

/// Rows the second pipeline of `a_function_sleeping_with_flow_sleep_lets_its_worker_run_the_others`
/// has seen.
static COUNTED: AtomicU64 = AtomicU64::new(0);

/// A map that waits, with `flow::sleep`, until another pipeline of its job has counted its
/// 1,000 rows: on workers subtask 0 of both pipelines shares worker 0, so with
/// `std::thread::sleep` the counting subtask never runs and the map gives up after 20 s.
#[test]
fn a_function_sleeping_with_flow_sleep_lets_its_worker_run_the_others() {
    let env = StreamEnv::new()
        .with_parallelism(2)
        .with_scheduling(Scheduling::Workers);
    flow! { env =>
        let waited = source(NumberSequence::new(0, 1), Watermarks::no_watermarks())
            .map(|n: i64| {
                let start = Instant::now();
                while COUNTED.load(Ordering::SeqCst) < 1_000 {
                    if start.elapsed() > Duration::from_secs(20) {
                        return -1;
                    }
                    flow::sleep(Duration::from_millis(1));
                }
                n
            })
            .collect();
        let counted = source(NumberSequence::new(0, 999), Watermarks::no_watermarks())
            .map(|n: i64| {
                COUNTED.fetch_add(1, Ordering::SeqCst);
                n
            })
            .collect();
    }
    env.execute("flow sleep").unwrap();
    assert_eq!(counted.take().len(), 1_000);
    assert_eq!(
        sorted(waited.take()),
        [0, 1],
        "a map sleeping with flow::sleep held its worker: the other pipeline never ran"
    );
}
