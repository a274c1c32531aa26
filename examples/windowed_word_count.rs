//! Event-time word count in 1-second tumbling windows over a generated stream of timestamped
//! words, printing each window's counts. Rows arrive up to 200 ms out of order, which the
//! bounded-out-of-orderness watermark absorbs.
//!
//! ```text
//! cargo run --release --example windowed_word_count -- --events 20000 --parallelism 2
//! ```

use flow::clap::{value_parser, Arg};
use flow::prelude::*;
use std::process::ExitCode;
use std::time::Duration;

const WORDS: [&str; 8] = [
    "flink", "flow", "rust", "stream", "window", "event", "time", "state",
];

/// A word seen at an event time.
#[derive(Row, Clone, Debug)]
struct Word {
    word: String,
    /// Event time, ms.
    at: i64,
}

/// One window's count of one word; prints as `start end word count`.
#[derive(Row, Clone, Debug)]
struct WindowCount {
    start: i64,
    end: i64,
    word: String,
    count: u64,
}

fn mix(n: i64) -> u64 {
    (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The event time of event `n`: 10 ms after event `n - 1`, give or take 200 ms.
fn event_time(n: &i64) -> i64 {
    n * 10 + (mix(*n) >> 40) as i64 % 200
}

/// Event `n`: a word picked by a fixed hash.
fn event(n: i64) -> Word {
    Word {
        word: WORDS[(mix(n) >> 61) as usize].to_string(),
        at: event_time(&n),
    }
}

fn run() -> flow::Result<()> {
    let args = StreamEnv::command("windowed_word_count")
        .arg(
            Arg::new("events")
                .long("events")
                .value_name("N")
                .value_parser(value_parser!(i64).range(1..))
                .default_value("10000")
                .help("How many events to generate (10 ms of event time apart)"),
        )
        .get_matches();
    let env = StreamEnv::from_matches(&args);
    let events = *args.get_one::<i64>("events").expect("has a default");

    flow! { env =>
        source(NumberSequence::new(0, events - 1), Watermarks::bounded_out_of_orderness(Duration::from_millis(200)))
            .timestamps(event_time)
            .map(event)
            .key_by(|w| w.word.clone())
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .process(|word: &String, window: &TimeWindow, rows: &[Word], out: &mut Vec<WindowCount>| {
                out.push(WindowCount {
                    start: window.start,
                    end: window.end,
                    word: word.clone(),
                    count: rows.len() as u64,
                })
            })
            .name("count per window")
            .print();
    }
    let result = env.execute("windowed_word_count")?;
    if let Some(m) = result.operator("count per window") {
        eprintln!(
            "windowed_word_count: {} events, {} window counts, {} late rows dropped",
            m.rows_in, m.rows_out, m.late_rows
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
