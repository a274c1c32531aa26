//! `FileSource` against a hand-written `BufRead` loop over the same files.
//!
//! Four files of text lines (10M lines, ~190 MB at scale 1, written to a temporary directory
//! first, so both read from the page cache): `FileSource::text_lines` -> `DiscardSink` at
//! parallelism 1 against a loop that reads each file with `BufRead::read_line` into a new
//! `String` per line (a row is an owned `String` in both); then CSV rows `(u64, String, f64)`:
//! `FileSource::csv` against the `csv` crate's `Reader::deserialize` loop. Parallelism 2 is
//! printed for information (its ratio is to the same one-thread loop).
//!
//! ```text
//! cargo bench --bench file_source
//! FLOW_BENCH_SCALE=0.1 FLOW_BENCH_RUNS=1 cargo bench --bench file_source   # quick check
//! ```

use flow::prelude::*;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const LINES: f64 = 10_000_000.0;
const FILES: usize = 4;

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Writes `FILES` files of `lines` lines in total under `dir`, each line made by `line(i)`.
fn write_files(dir: &Path, lines: usize, line: impl Fn(usize) -> String) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    (0..FILES)
        .map(|f| {
            let path = dir.join(format!("part-{f}"));
            let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
            for i in (f * lines / FILES)..((f + 1) * lines / FILES) {
                writeln!(out, "{}", line(i)).unwrap();
            }
            out.flush().unwrap();
            path
        })
        .collect()
}

fn text_flow(dir: &Path, p: usize) -> (Duration, u64) {
    let env = StreamEnv::new().with_parallelism(p);
    flow! { env =>
        source(FileSource::text_lines(dir), Watermarks::no_watermarks()).sink_to(DiscardSink);
    }
    let start = Instant::now();
    let r = env.execute("file_source text").unwrap();
    (start.elapsed(), r.operators[0].rows_out)
}

fn text_loop(files: &[PathBuf]) -> (Duration, u64) {
    let start = Instant::now();
    let mut n = 0u64;
    for path in files {
        let mut input = BufReader::with_capacity(256 << 10, std::fs::File::open(path).unwrap());
        loop {
            let mut line = String::new();
            if input.read_line(&mut line).unwrap() == 0 {
                break;
            }
            if line.ends_with('\n') {
                line.pop();
            }
            black_box(line);
            n += 1;
        }
    }
    (start.elapsed(), n)
}

type CsvRow = (u64, String, f64);

fn csv_flow(dir: &Path, p: usize) -> (Duration, u64) {
    let env = StreamEnv::new().with_parallelism(p);
    flow! { env =>
        source(FileSource::<Csv<CsvRow>>::csv(dir), Watermarks::no_watermarks()).sink_to(DiscardSink);
    }
    let start = Instant::now();
    let r = env.execute("file_source csv").unwrap();
    (start.elapsed(), r.operators[0].rows_out)
}

fn csv_loop(files: &[PathBuf]) -> (Duration, u64) {
    let start = Instant::now();
    let mut n = 0u64;
    for path in files {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_path(path)
            .unwrap();
        for row in reader.deserialize::<CsvRow>() {
            black_box(row.unwrap());
            n += 1;
        }
    }
    (start.elapsed(), n)
}

fn report(name: &str, lines: u64, flow: Duration, hand: Duration) {
    let rate = |d: Duration| lines as f64 / d.as_secs_f64() / 1e6;
    println!(
        "{:<18} {:>10} {:>14.1} {:>14.1} {:>7.3}x",
        name,
        lines,
        rate(flow),
        rate(hand),
        hand.as_secs_f64() / flow.as_secs_f64()
    );
}

fn main() {
    let scale = env_f64("FLOW_BENCH_SCALE", 1.0);
    let runs = env_f64("FLOW_BENCH_RUNS", 3.0).max(1.0) as usize;
    // `FLOW_BENCH_ONLY=csv` (or `text`) runs one of the two.
    let only = std::env::var("FLOW_BENCH_ONLY").unwrap_or_default();
    let lines = ((LINES * scale) as usize).max(FILES);
    let tmp = tempfile::tempdir().unwrap();
    let text_dir = tmp.path().join("text");
    let text = write_files(&text_dir, lines, |i| {
        format!("{i} the quick brown fox {}", i % 97)
    });
    let csv_dir = tmp.path().join("csv");
    let csvs = write_files(&csv_dir, lines, |i| {
        format!("{i},\"name {}, jr\",{}.25", i % 1000, i % 777)
    });
    let bytes: u64 = text
        .iter()
        .chain(&csvs)
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    println!(
        "file_source: {lines} lines of text and of CSV in {FILES} files each ({:.0} MB), best of {runs} runs",
        bytes as f64 / 1e6
    );
    println!(
        "{:<18} {:>10} {:>14} {:>14} {:>8}",
        "bench", "lines", "flow Mlines/s", "loop Mlines/s", "ratio"
    );
    let best = |f: &mut dyn FnMut() -> (Duration, u64)| {
        let mut best = Duration::MAX;
        let mut n = 0;
        for _ in 0..runs {
            let (d, rows) = f();
            best = best.min(d);
            n = rows;
        }
        (best, n)
    };
    if only.is_empty() || only == "text" {
        let (hand, n) = best(&mut || text_loop(&text));
        assert_eq!(n, lines as u64, "the loop read every line");
        for p in [1, 2] {
            let (flow, n) = best(&mut || text_flow(&text_dir, p));
            assert_eq!(n, lines as u64, "flow read every line");
            report(&format!("text/p{p}"), n, flow, hand);
        }
    }
    if only.is_empty() || only == "csv" {
        let (hand, n) = best(&mut || csv_loop(&csvs));
        assert_eq!(n, lines as u64, "the loop read every record");
        for p in [1, 2] {
            let (flow, n) = best(&mut || csv_flow(&csv_dir, p));
            assert_eq!(n, lines as u64, "flow read every record");
            report(&format!("csv/p{p}"), n, flow, hand);
        }
    }
}
