//! W4 of DESIGN.md section 6: 10M events 1 ms apart (monotonous timestamps), key `n % 1000`,
//! 1-second event-time tumbling windows, count per key and window; against a hand-written
//! loop doing the same bucketing (a hash map per open window, flushed when the event time
//! crosses the window's end, as a monotonous watermark allows).
//!
//! ```text
//! cargo bench --bench windows                  # W4 at parallelism 1 and 2
//! cargo bench --bench windows -- p1/200ms       # the cases whose name contains a filter
//! FLOW_BENCH_SCALE=0.1 cargo bench --bench windows
//! ```
//!
//! Flow runs with Flink's default watermark interval (200 ms of processing time); each window
//! result goes to a `DiscardSink`, each loop result to `black_box`. Both are checked on a
//! small input first: the same counts per key and window.
//!
//! At parallelism 2 the input is read two ways: `NumberSequence`, which (as Flink's) gives
//! each source subtask a contiguous half, so the second half's windows stay open until the
//! first half's watermark reaches them; and `interleaved` (a source written here: subtask `i`
//! reads `i, i + 2, ...`), whose subtasks move through event time together, as the partitions
//! of a live topic do.

use flow::prelude::*;
use flow::Sink;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::hint::black_box;
use std::time::{Duration, Instant};

const KEYS: i64 = 1000;
const WINDOW_MS: i64 = 1000;

/// Counts rows: the window function of both sides.
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

fn key(n: &i64) -> i64 {
    n % KEYS
}

fn flow_w4<Src, S>(input: Src, parallelism: usize, sink: S) -> Duration
where
    Src: flow::Source<Row = i64> + Clone + std::fmt::Debug + Send + 'static,
    S: Sink<(i64, i64, u64)>,
{
    let env = StreamEnv::new().with_parallelism(parallelism);
    flow! { env =>
        source(input, Watermarks::monotonous())
            .timestamps(|n| *n)
            .key_by(key)
            .window(TumblingEventTimeWindows::of(Duration::from_millis(WINDOW_MS as u64)))
            .process(|k: &i64, w: &TimeWindow, rows: &[i64], out: &mut Vec<(i64, i64, u64)>| {
                out.push((*k, w.start, rows.len() as u64))
            })
            .sink_to(sink);
    }
    let start = Instant::now();
    env.execute("w4").expect("the job runs");
    start.elapsed()
}

/// The numbers `0..n`, subtask `i` of `p` reading `i, i + p, i + 2p, ...`: at parallelism 2
/// both subtasks move through event time together. `NumberSequence` gives each subtask a
/// contiguous range (as Flink's `NumberSequenceSource`), so at parallelism 2 the second half's
/// windows all stay open until the first half's watermark reaches them.
#[derive(Clone, Debug)]
struct Interleaved(i64);

struct InterleavedReader {
    next: i64,
    step: i64,
    end: i64,
}

impl flow::Source for Interleaved {
    type Row = i64;
    type Reader = InterleavedReader;
    fn is_bounded(&self) -> bool {
        true
    }
    fn into_readers(self, p: usize, _: &Watermarks) -> flow::Result<Vec<InterleavedReader>> {
        let step = p.max(1) as i64;
        Ok((0..step)
            .map(|i| InterleavedReader {
                next: i,
                step,
                end: self.0,
            })
            .collect())
    }
}

impl flow::SourceReader for InterleavedReader {
    type Row = i64;
    fn poll<O: flow::SourceOutput<i64>>(
        &mut self,
        out: &mut O,
        max: usize,
    ) -> flow::Result<flow::Poll> {
        for _ in 0..max {
            if self.next >= self.end {
                return Ok(flow::Poll::Finished);
            }
            out.collect(self.next);
            self.next += self.step;
        }
        Ok(flow::Poll::Ready)
    }
}

/// `flow_w4` over `events` numbers from `NumberSequence`, or from `Interleaved`.
fn flow_w4_of<S: Sink<(i64, i64, u64)>>(
    interleaved: bool,
    events: i64,
    parallelism: usize,
    sink: S,
) -> Duration {
    match interleaved {
        false => flow_w4(NumberSequence::new(0, events - 1), parallelism, sink),
        true => flow_w4(Interleaved(events), parallelism, sink),
    }
}

/// `flow_w4_aggregate` over `events` numbers from `NumberSequence`, or from `Interleaved`.
fn flow_w4_aggregate_of<S: Sink<u64>>(
    interleaved: bool,
    events: i64,
    parallelism: usize,
    interval: Duration,
    sink: S,
) -> Duration {
    match interleaved {
        false => flow_w4_aggregate(
            NumberSequence::new(0, events - 1),
            parallelism,
            interval,
            sink,
        ),
        true => flow_w4_aggregate(Interleaved(events), parallelism, interval, sink),
    }
}

fn flow_w4_aggregate<Src, S>(
    input: Src,
    parallelism: usize,
    interval: Duration,
    sink: S,
) -> Duration
where
    Src: flow::Source<Row = i64> + Clone + std::fmt::Debug + Send + 'static,
    S: Sink<u64>,
{
    let env = StreamEnv::new()
        .with_parallelism(parallelism)
        .with_auto_watermark_interval(interval);
    flow! { env =>
        source(input, Watermarks::monotonous())
            .timestamps(|n| *n)
            .key_by(key)
            .window(TumblingEventTimeWindows::of(Duration::from_millis(WINDOW_MS as u64)))
            .aggregate(Count)
            .sink_to(sink);
    }
    let start = Instant::now();
    env.execute("w4").expect("the job runs");
    start.elapsed()
}

#[derive(Default, Clone, Copy)]
struct Fx(u64);
impl Hasher for Fx {
    fn write(&mut self, _: &[u8]) {
        unreachable!("only i64 keys")
    }
    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.0 = ((self.0.rotate_left(5) ^ i as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95))
            .rotate_left(26);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The loop: one map of counts for the open window; when an event's window starts after the
/// open one, the open window's counts are emitted and cleared.
#[inline(never)]
fn by_hand(events: i64, mut emit: impl FnMut(i64, i64, u64)) {
    let mut counts: HashMap<i64, u64, BuildHasherDefault<Fx>> = HashMap::default();
    let mut open = 0i64;
    for n in 0..events {
        let start = n - n.rem_euclid(WINDOW_MS);
        if start != open {
            for (k, c) in counts.drain() {
                emit(k, open, c);
            }
            open = start;
        }
        *counts.entry(key(&n)).or_insert(0) += 1;
    }
    for (k, c) in counts.drain() {
        emit(k, open, c);
    }
}

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let scale = env_f64("FLOW_BENCH_SCALE", 1.0);
    let runs = env_f64("FLOW_BENCH_RUNS", 3.0).max(1.0) as usize;
    let events = ((10_000_000.0 * scale) as i64).max(10_000);
    // `cargo bench` passes `--bench`; everything else not starting with `-` is a filter on the
    // case names (`aggregate/p1/200ms`, `process/p1`).
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted =
        |case: &str| filters.is_empty() || filters.iter().any(|f| case.contains(f.as_str()));

    // Correctness first: the same counts per key and window on a small input, from both
    // sources, and the aggregate's counts.
    let check = 200_000;
    let mut want = Vec::new();
    by_hand(check, |k, s, c| want.push((k, s, c)));
    want.sort();
    let mut counts: Vec<u64> = want.iter().map(|&(_, _, c)| c).collect();
    counts.sort();
    for interleaved in [false, true] {
        let handle = CollectHandle::new();
        flow_w4_of(interleaved, check, 2, handle.sink());
        let mut got = handle.take();
        got.sort();
        assert_eq!(
            got, want,
            "w4: flow's windows differ from the loop's (interleaved: {interleaved})"
        );
        let handle = CollectHandle::new();
        flow_w4_aggregate_of(
            interleaved,
            check,
            2,
            Duration::from_millis(200),
            handle.sink(),
        );
        let mut got = handle.take();
        got.sort();
        assert_eq!(
            got, counts,
            "w4: the aggregate's counts differ from the loop's (interleaved: {interleaved})"
        );
    }
    println!(
        "w4: {check} events checked against the loop ({} windows)",
        want.len()
    );

    let best = |f: &mut dyn FnMut() -> Duration| (0..runs).map(|_| f()).min().expect("runs >= 1");
    let loop_time = best(&mut || {
        std::thread::scope(|s| {
            s.spawn(|| {
                let start = Instant::now();
                by_hand(events, |k, s, c| {
                    black_box((k, s, c));
                });
                start.elapsed()
            })
            .join()
            .expect("the loop runs")
        })
    });
    let rate = |d: Duration| events as f64 / d.as_secs_f64() / 1e6;
    println!(
        "w4: {events} events, 1 s tumbling event-time windows over {KEYS} keys, best of {runs}"
    );
    println!("  loop                  {:>8.1} Mevents/s", rate(loop_time));
    for ms in [200u64, 10, 1, 0] {
        for (p, interleaved) in [(1, false), (2, false), (2, true)] {
            let name = match interleaved {
                false => format!("aggregate/p{p}/{ms}ms"),
                true => format!("aggregate/p{p}/{ms}ms/interleaved"),
            };
            if !wanted(&name) {
                continue;
            }
            let interval = Duration::from_millis(ms);
            let t =
                best(&mut || flow_w4_aggregate_of(interleaved, events, p, interval, DiscardSink));
            let source = if interleaved { " interleaved" } else { "" };
            println!(
                "  flow aggregate p{p} wm {ms:>3} ms{source:<12} {:>8.1} Mevents/s   {:.2}x the loop (target >= 0.5x at p1)",
                rate(t),
                loop_time.as_secs_f64() / t.as_secs_f64()
            );
        }
    }
    if !wanted("process/p1") {
        return;
    }
    let t = best(&mut || flow_w4_of(false, events, 1, DiscardSink));
    println!(
        "  flow process p1       {:>8.1} Mevents/s   {:.2}x the loop (keeps every row of a window)",
        rate(t),
        loop_time.as_secs_f64() / t.as_secs_f64()
    );
}
