//! A fused stateless chain against the hand-written loop doing the same arithmetic.
//!
//! `NumberSequence` 1..=100M -> map -> filter -> map -> `DiscardSink`, parallelism 1. The loop
//! calls the same functions and `black_box`es each output row as the sink does. DESIGN.md
//! sets the target: the chain runs at >= 0.95x the loop.
//!
//! ```text
//! cargo bench --bench stateless_chain
//! FLOW_BENCH_SCALE=0.1 FLOW_BENCH_RUNS=1 cargo bench --bench stateless_chain   # quick check
//! FLOW_BENCH_METRICS=1 cargo bench --bench stateless_chain   # with the metrics endpoint on
//! ```

use flow::prelude::*;
use flow::Sink;
use std::hint::black_box;
use std::time::{Duration, Instant};

const ROWS: f64 = 100_000_000.0;
const TARGET: f64 = 0.95;

fn first(n: i64) -> i64 {
    n.wrapping_mul(3) + 1
}

fn keep(n: &i64) -> bool {
    n % 5 != 0
}

fn second(n: i64) -> i64 {
    n ^ (n >> 3)
}

/// The chain, writing to `sink`.
fn flow_chain<S: Sink<i64>>(rows: i64, sink: S) -> Duration {
    let mut env = StreamEnv::new().with_parallelism(1);
    // `FLOW_BENCH_METRICS=1`: the job serves its metrics, so its task publishes its counters.
    if std::env::var("FLOW_BENCH_METRICS").as_deref() == Ok("1") {
        env = env.with_metrics_addr(([127, 0, 0, 1], 0).into());
    }
    flow! { env =>
        source(NumberSequence::new(1, rows), Watermarks::no_watermarks())
            .map(first)
            .filter(keep)
            .map(second)
            .sink_to(sink);
    }
    let start = Instant::now();
    env.execute("stateless_chain").expect("the chain runs");
    start.elapsed()
}

/// The same work by hand; `emit` receives every output row.
#[inline(always)]
fn by_hand(rows: i64, mut emit: impl FnMut(i64)) {
    // `1..rows + 1`, not `1..=rows`: an inclusive range adds a check per step.
    for n in 1..rows + 1 {
        let x = first(n);
        if keep(&x) {
            emit(second(x));
        }
    }
}

/// The loop, on a new thread as flow runs a job: a new thread goes to the idlest core, while
/// `main` stays where it is, so timing the loop on `main` would hand flow the better core
/// whenever something else loads the machine.
fn loop_chain(rows: i64) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| discarding_loop(rows))
            .join()
            .expect("the loop runs")
    });
    start.elapsed()
}

// Not inlined into its caller: its code, and so its speed, must not depend on the caller.
#[inline(never)]
fn discarding_loop(rows: i64) {
    by_hand(rows, |x| {
        black_box(x);
    });
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
    let rows = ((ROWS * scale) as i64).max(1);

    // The pipeline must compute what the loop computes before its speed means anything.
    let check_rows = rows.min(1_000_000);
    let collected = CollectHandle::new();
    flow_chain(check_rows, collected.sink());
    let mut expected = Vec::new();
    by_hand(check_rows, |x| expected.push(x));
    assert_eq!(
        collected.take(),
        expected,
        "the flow chain's output differs from the loop's"
    );
    println!("stateless_chain: output of 1..={check_rows} checked against the loop");

    println!("stateless_chain: 1..={rows} -> map -> filter -> map -> discard, parallelism 1, best of {runs} runs");
    // Flow and the loop take turns, so that a burst of load on the machine hits both.
    let (mut flow, mut hand) = (Duration::MAX, Duration::MAX);
    for _ in 0..runs {
        flow = flow.min(flow_chain(rows, DiscardSink));
        hand = hand.min(loop_chain(rows));
    }
    let rate = |d: Duration| rows as f64 / d.as_secs_f64() / 1e6;
    let ratio = hand.as_secs_f64() / flow.as_secs_f64();
    println!(
        "{:<16} {:>10} {:>16} {:>16} {:>7} {:>8}",
        "bench", "rows", "flow Mrows/s", "loop Mrows/s", "ratio", "target"
    );
    println!(
        "{:<16} {:>10} {:>16.1} {:>16.1} {:>6.3}x {:>7}",
        "stateless_chain",
        rows,
        rate(flow),
        rate(hand),
        ratio,
        format!(
            "{}{TARGET:.2}x",
            if ratio >= TARGET { ">=" } else { "MISS " }
        ),
    );
}
