//! `DataGeneratorSource`: its speed against a loop calling the same generator, and how well
//! its rate limit holds.
//!
//! - Unlimited: 20M rows of `|i| (i, i * 3)` and 2M `RowGenerator` rows (a struct of an id
//!   sequence, a 16-digit random string, a bounded integer and a float) into a `DiscardSink`
//!   at parallelism 1, against a loop that `black_box`es `generator(i)` for the same indices.
//! - Rate-limited: `.rows_per_second(r)` for 2 s worth of rows at parallelism 1 and 2: the
//!   rate achieved (rows / wall time of the job) against `r`.
//!
//! ```text
//! cargo bench --bench datagen
//! FLOW_BENCH_SCALE=0.1 FLOW_BENCH_RUNS=1 cargo bench --bench datagen   # quick check
//! ```

use flow::prelude::*;
use std::hint::black_box;
use std::time::{Duration, Instant};

#[derive(Row, Clone, Debug)]
struct Reading {
    id: i64,
    sensor: String,
    level: u32,
    value: f64,
}

fn readings() -> RowGenerator<Reading> {
    RowGenerator::new(42)
        .field("id", FieldGen::sequence(0, i64::MAX))
        .field("sensor", FieldGen::random().length(16))
        .field("level", FieldGen::random().min(0).max(10))
}

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn best(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..runs).map(|_| f()).min().unwrap_or(Duration::MAX)
}

fn job<G: flow::connectors::datagen::Generator>(
    source: DataGeneratorSource<G>,
    p: usize,
) -> (Duration, u64) {
    let env = StreamEnv::new().with_parallelism(p);
    flow! { env =>
        source(source, Watermarks::no_watermarks()).sink_to(DiscardSink);
    }
    let start = Instant::now();
    let r = env.execute("datagen").unwrap();
    (start.elapsed(), r.operators[0].rows_out)
}

fn main() {
    let scale = env_f64("FLOW_BENCH_SCALE", 1.0);
    let runs = env_f64("FLOW_BENCH_RUNS", 3.0).max(1.0) as usize;
    let n = ((20_000_000.0 * scale) as u64).max(1);
    let m = ((2_000_000.0 * scale) as u64).max(1);
    println!("datagen: best of {runs} runs, parallelism 1");
    println!(
        "{:<16} {:>10} {:>14} {:>14} {:>8}",
        "bench", "rows", "flow Mrows/s", "loop Mrows/s", "ratio"
    );
    let rate = |rows: u64, d: Duration| rows as f64 / d.as_secs_f64() / 1e6;

    let flow = best(runs, || {
        let (d, rows) = job(DataGeneratorSource::new(|i| (i, i * 3), n), 1);
        assert_eq!(rows, n);
        d
    });
    let hand = best(runs, || {
        let start = Instant::now();
        let g = black_box(|i: u64| (i, i * 3));
        for i in 0..n {
            black_box(g(i));
        }
        start.elapsed()
    });
    println!(
        "{:<16} {:>10} {:>14.1} {:>14.1} {:>7.3}x",
        "fn",
        n,
        rate(n, flow),
        rate(n, hand),
        hand.as_secs_f64() / flow.as_secs_f64()
    );

    let flow = best(runs, || {
        let (d, rows) = job(DataGeneratorSource::new(readings(), m), 1);
        assert_eq!(rows, m);
        d
    });
    let hand = best(runs, || {
        let g = readings();
        let start = Instant::now();
        for i in 0..m {
            black_box(g.generate(i));
        }
        start.elapsed()
    });
    println!(
        "{:<16} {:>10} {:>14.1} {:>14.1} {:>7.3}x",
        "row_generator",
        m,
        rate(m, flow),
        rate(m, hand),
        hand.as_secs_f64() / flow.as_secs_f64()
    );

    println!(
        "{:<16} {:>10} {:>14} {:>14} {:>8}",
        "rate limit", "rows", "asked rows/s", "got rows/s", "got/asked"
    );
    for p in [1, 2] {
        for asked in [10_000.0, 100_000.0, 1_000_000.0] {
            let rows = (asked * 2.0 * scale.min(1.0)).max(1.0) as u64;
            let (d, got) = job(
                DataGeneratorSource::new(|i| i, rows).rows_per_second(asked),
                p,
            );
            assert_eq!(got, rows);
            let achieved = rows as f64 / d.as_secs_f64();
            println!(
                "{:<16} {:>10} {:>14.0} {:>14.0} {:>8.3}",
                format!("p{p}"),
                rows,
                asked,
                achieved,
                achieved / asked
            );
        }
    }
}
