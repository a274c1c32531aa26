//! What exactly-once checkpoints cost: W1 (keyed sum), W3 (keyed `ValueState` map) and W4
//! (tumbling event-time windows) with a checkpoint every second into a checkpoint directory,
//! against the same job without checkpoints; then the size and duration of a checkpoint of
//! 1M keys (of a `reduce`, and of a `#[state]` function) and the time to restore them.
//!
//! ```text
//! cargo bench --bench checkpoints
//! FLOW_BENCH_SCALE=0.2 cargo bench --bench checkpoints    # shorter runs (fewer checkpoints)
//! FLOW_BENCH_CHECKPOINTING_MODE=at-least-once cargo bench --bench checkpoints   # no alignment
//! ```
//!
//! Each case alternates a run without and a run with checkpoints, best of `FLOW_BENCH_RUNS`
//! (default 3) each. The runs are long enough (several seconds at parallelism 1) for a few
//! checkpoints to complete; the table says how many did, the longest a task's rows stopped for
//! one (`sync`: writing its operators' state to memory at the barrier), and their size.

use flow::prelude::*;
use flow::{CheckpointStats, CheckpointingMode, JobResult, Sink};
use std::path::Path;
use std::time::{Duration, Instant};

fn w1_map(n: i64) -> (i64, i64) {
    (n % 1024, 1)
}

fn sum(a: (i64, i64), b: (i64, i64)) -> (i64, i64) {
    (a.0, a.1 + b.1)
}

#[map_function]
fn count_first_two(row: (i64, i64), #[state] cnt: &mut ValueState<u32>) -> (i64, i64) {
    let seen = cnt.value().unwrap_or(0);
    if seen < 2 {
        cnt.update(seen + 1);
        (row.0, row.1 + 1)
    } else {
        row
    }
}

/// The environment of a run: checkpoints every second into `dir`, or none. Watermarks every
/// millisecond: with the default 200 ms, W4 holds 200 ms of windows open.
fn env(p: usize, dir: Option<&Path>) -> StreamEnv {
    let env = StreamEnv::new()
        .with_parallelism(p)
        .with_auto_watermark_interval(Duration::from_millis(1));
    match dir {
        Some(dir) => env
            .with_checkpoint_interval(Some(Duration::from_secs(1)))
            .with_checkpoint_dir(dir, 1)
            .with_checkpointing_mode(
                if std::env::var("FLOW_BENCH_CHECKPOINTING_MODE").as_deref() == Ok("at-least-once")
                {
                    CheckpointingMode::AtLeastOnce
                } else {
                    CheckpointingMode::ExactlyOnce
                },
            ),
        None => env.with_checkpoint_interval(None),
    }
}

fn run(env: &StreamEnv, name: &str) -> (Duration, JobResult) {
    let start = Instant::now();
    let result = env.execute(name).expect("the job runs");
    (start.elapsed(), result)
}

fn w1<S: Sink<(i64, i64)>>(rows: i64, env: StreamEnv, sink: S) -> (Duration, JobResult) {
    flow! { env =>
        source(NumberSequence::new(1, rows), Watermarks::no_watermarks())
            .map(w1_map)
            .key_by(|r: &(i64, i64)| r.0)
            .reduce(sum)
            .sink_to(sink);
    }
    run(&env, "w1")
}

fn w3<S: Sink<(i64, i64)>>(rows: i64, env: StreamEnv, sink: S) -> (Duration, JobResult) {
    flow! { env =>
        source(NumberSequence::new(1, rows), Watermarks::no_watermarks())
            .map(|n| (n % 4, 1))
            .key_by(|r: &(i64, i64)| r.0)
            .map(count_first_two)
            .sink_to(sink);
    }
    run(&env, "w3")
}

#[derive(Clone)]
struct Count;

impl AggregateFunction<i64> for Count {
    type Acc = u64;
    type Out = u64;
    fn create_accumulator(&mut self) -> u64 {
        0
    }
    #[inline]
    fn add(&mut self, _: i64, acc: &mut u64) {
        *acc += 1;
    }
    fn get_result(&mut self, acc: &u64) -> u64 {
        *acc
    }
    fn merge(&mut self, a: u64, b: u64) -> u64 {
        a + b
    }
}

/// W4 with event time advancing alike in every source subtask: subtask `i` of `p` reads the
/// numbers `i * events / p ..`, and its event time is the number modulo `events / p`. (With
/// event time `n` itself, subtask 1 would run ahead of subtask 0 by `events / 2` ms of event
/// time, and every window of that span would wait in state for the slowest watermark.)
fn w4<S: Sink<u64>>(events: i64, env: StreamEnv, sink: S) -> (Duration, JobResult) {
    let span = events / env.parallelism() as i64;
    flow! { env =>
        source(NumberSequence::new(0, events - 1), Watermarks::monotonous())
            .timestamps(move |n| n % span)
            .key_by(|n| n % 1000)
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .aggregate(Count)
            .sink_to(sink);
    }
    run(&env, "w4")
}

/// W1 with `keys` distinct keys.
fn many_keys<S: Sink<(i64, i64)>>(
    rows: i64,
    keys: i64,
    env: StreamEnv,
    sink: S,
) -> (Duration, JobResult) {
    flow! { env =>
        source(NumberSequence::new(1, rows), Watermarks::no_watermarks())
            .map(move |n| (n % keys, 1))
            .key_by(|r: &(i64, i64)| r.0)
            .reduce(sum)
            .sink_to(sink);
    }
    run(&env, "many keys")
}

/// W3 with `keys` distinct keys: a `#[state]` per key.
fn many_states<S: Sink<(i64, i64)>>(
    rows: i64,
    keys: i64,
    env: StreamEnv,
    sink: S,
) -> (Duration, JobResult) {
    flow! { env =>
        source(NumberSequence::new(1, rows), Watermarks::no_watermarks())
            .map(move |n| (n % keys, 1))
            .key_by(|r: &(i64, i64)| r.0)
            .map(count_first_two)
            .sink_to(sink);
    }
    run(&env, "many states")
}

/// Session windows of `keys` keys that stay open to the end (a gap of an hour of event time):
/// one session per key, every row merging into it.
fn open_sessions<S: Sink<u64>>(
    rows: i64,
    keys: i64,
    env: StreamEnv,
    sink: S,
) -> (Duration, JobResult) {
    flow! { env =>
        source(NumberSequence::new(1, rows), Watermarks::monotonous())
            .timestamps(|n| n / 1000)
            .key_by(move |n| n % keys)
            .window(EventTimeSessionWindows::with_gap(Duration::from_secs(3600)))
            .aggregate(Count)
            .sink_to(sink);
    }
    run(&env, "open sessions")
}

/// An interval join of two streams of `rows` rows over `keys` keys whose bounds (an hour)
/// keep every row to the end: `2 * rows` rows buffered.
fn open_join<S: Sink<i64>>(rows: i64, keys: i64, env: StreamEnv, sink: S) -> (Duration, JobResult) {
    flow! { env =>
        let left = source(NumberSequence::new(1, rows), Watermarks::monotonous())
            .timestamps(|n| n / 1000)
            .key_by(move |n| n % keys);
        let right = source(NumberSequence::new(1, rows), Watermarks::monotonous())
            .timestamps(|n| n / 1000)
            .key_by(move |n| n % keys);
        left.interval_join(right)
            .between(-3_600_000, 3_600_000)
            .process(|a: &i64, b: &i64, out: &mut Vec<i64>| out.push(a ^ b))
            .sink_to(sink);
    }
    run(&env, "open join")
}

/// A process function that keeps one event-time timer per key, an hour ahead (never due
/// before the end): `keys` timers.
#[derive(Clone, Default, KeyedState)]
struct Remind;

#[process_function]
impl Remind {
    fn process(&mut self, n: i64, ctx: &mut ProcessContext<'_, i64>, out: &mut Vec<i64>) {
        ctx.register_event_time_timer(3_600_000 + *ctx.key() % 1000);
        if n % 1024 == 0 {
            out.push(n);
        }
    }
    fn on_timer(&mut self, _: i64, ctx: &mut ProcessContext<'_, i64>, out: &mut Vec<i64>) {
        out.push(*ctx.key());
    }
}

fn many_timers<S: Sink<i64>>(
    rows: i64,
    keys: i64,
    env: StreamEnv,
    sink: S,
) -> (Duration, JobResult) {
    flow! { env =>
        source(NumberSequence::new(1, rows), Watermarks::monotonous())
            .timestamps(|n| n / 1000)
            .key_by(move |n| n % keys)
            .process(Remind)
            .sink_to(sink);
    }
    run(&env, "many timers")
}

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn describe(s: &CheckpointStats) -> String {
    format!(
        "{} done, longest {:.0?}, sync {:.2?}, alignment {:.1?}, {} B",
        s.completed, s.max_duration, s.max_sync, s.max_alignment, s.max_bytes
    )
}

/// A sink that takes `per_row` per row: a slow downstream, so that the channels before it
/// are full (backpressure) when a barrier comes.
#[derive(Clone)]
struct Slow(Duration);

struct SlowWriter(Duration, u64);

impl<T> Sink<T> for Slow {
    type Writer = SlowWriter;
    fn create_writer(&self, _: &flow::RuntimeContext) -> flow::Result<SlowWriter> {
        Ok(SlowWriter(self.0, 0))
    }
}

impl<T> flow::SinkWriter<T> for SlowWriter {
    fn write(&mut self, _: T, _: flow::Timestamp) {
        self.1 += 1;
        if self.1 % 1000 == 0 {
            std::thread::sleep(self.0 * 1000);
        }
    }
    fn checkpoint(
        &mut self,
        _: flow::CheckpointId,
        _: &mut flow::snapshot::StateWriter,
    ) -> flow::Result<flow::Snapshot> {
        Ok(flow::Snapshot::Taken)
    }
}

fn main() {
    let scale = env_f64("FLOW_BENCH_SCALE", 1.0);
    let runs = env_f64("FLOW_BENCH_RUNS", 3.0).max(1.0) as usize;
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));
    type Job = fn(i64, StreamEnv) -> (Duration, JobResult);
    let jobs: [(&str, i64, Job); 3] = [
        ("w1", 1_000_000_000, |n, env| w1(n, env, DiscardSink)),
        ("w3", 1_000_000_000, |n, env| w3(n, env, DiscardSink)),
        ("w4", 300_000_000, |n, env| w4(n, env, DiscardSink)),
    ];
    println!(
        "scale {scale}, best of {runs} runs; checkpoints every 1 s into a temporary directory"
    );
    println!(
        "{:<14} {:>12} {:>12} {:>7}   checkpoints",
        "case", "none Mrows/s", "1 s Mrows/s", "cost"
    );
    for (name, rows, job) in jobs {
        for p in [1, 2] {
            let case = format!("{name}/p{p}");
            if !wanted(&case) {
                continue;
            }
            let rows = ((rows as f64 * scale) as i64).max(1);
            let (mut none, mut with) = (Duration::MAX, Duration::MAX);
            let mut stats = CheckpointStats::default();
            for _ in 0..runs {
                let (t, _) = job(rows, env(p, None));
                none = none.min(t);
                let dir = tempfile::tempdir().expect("a temporary directory");
                let (t, result) = job(rows, env(p, Some(dir.path())));
                if t < with {
                    with = t;
                    stats = result.checkpoints;
                }
            }
            let rate = |d: Duration| rows as f64 / d.as_secs_f64() / 1e6;
            println!(
                "{:<14} {:>12.1} {:>12.1} {:>6.1}%   {}",
                case,
                rate(none),
                rate(with),
                (1.0 - rate(with) / rate(none)) * 100.0,
                describe(&stats)
            );
        }
    }

    // Backpressure: W1 at parallelism 2 into a sink that takes 1 µs per row, so that the
    // channels into the reduce are full when a barrier comes.
    if wanted("backpressure") {
        let rows = ((30_000_000.0 * scale) as i64).max(1);
        for mode in [
            CheckpointingMode::ExactlyOnce,
            CheckpointingMode::AtLeastOnce,
        ] {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let env = env(2, Some(dir.path())).with_checkpointing_mode(mode);
            let (t, result) = w1(rows, env, Slow(Duration::from_micros(1)));
            println!(
                "backpressure {mode:?}: {:.1} Mrows/s, checkpoints: {}",
                rows as f64 / t.as_secs_f64() / 1e6,
                describe(&result.checkpoints)
            );
        }
    }

    // How long 1M keys of each keyed structure stop the rows at a barrier (`sync`: the freeze;
    // the merge and encoding run on the checkpoint writer's thread): `#[state]`, open session
    // windows (one per key), interval-join rows (8M a side), process-function timers.
    type Keyed = fn(i64, i64, StreamEnv) -> (Duration, JobResult);
    let structures: [(&str, i64, Keyed); 4] = [
        ("states", 200_000_000, |r, k, env| {
            many_states(r, k, env, DiscardSink)
        }),
        ("sessions", 20_000_000, |r, k, env| {
            open_sessions(r, k, env, DiscardSink)
        }),
        ("join", 8_000_000, |r, k, env| {
            open_join(r, k, env, DiscardSink)
        }),
        ("timers", 20_000_000, |r, k, env| {
            many_timers(r, k, env, DiscardSink)
        }),
    ];
    for (name, rows, job) in structures {
        if !wanted(name) {
            continue;
        }
        let keys = 1_000_000;
        let rows = ((rows as f64 * scale) as i64).max(keys);
        for _ in 0..runs {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let (t, result) = job(rows, keys, env(1, Some(dir.path())));
            println!(
                "{name}, 1M keys: {rows} rows in {t:.1?}, checkpoints: {}",
                describe(&result.checkpoints)
            );
        }
    }

    if wanted("restore") {
        let keys = 1_000_000;
        let rows = ((200_000_000.0 * scale) as i64).max(keys);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (t, result) = many_keys(rows, keys, env(1, Some(dir.path())), DiscardSink);
        println!(
            "1M keys: {rows} rows in {t:.1?}, checkpoints: {}",
            describe(&result.checkpoints)
        );
        let last = result.last_checkpoint.expect("a final checkpoint");
        // Restored from the final checkpoint, the source is at its end: the run is the restore.
        let mut best = Duration::MAX;
        for _ in 0..runs {
            let env = StreamEnv::new()
                .with_checkpoint_interval(None)
                .with_restore(last.to_str().expect("a UTF-8 path"));
            let (t, _) = many_keys(rows, keys, env, DiscardSink);
            best = best.min(t);
        }
        println!(
            "restore of 1M keys (start to end of a job with nothing left to read): {best:.1?}"
        );
    }
}
