//! Word count over files: the lines of a file or directory (text, `.gz` too) -> words ->
//! key_by the word -> rolling count -> part files of `word count` lines. With `--mode batch`
//! only the final count per word is written; in streaming mode every update.
//!
//! ```text
//! cargo run --release --example file_word_count -- --input README.md --mode batch
//! ```
//!
//! With `--monitor MS` the job keeps watching the input and counts the words of new files as
//! they appear; add `--checkpoint-dir DIR --checkpoint-interval MS` so that the counts reach
//! finished part files while it runs.

use flow::clap::{value_parser, Arg};
use flow::prelude::*;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// A word and how often it was seen so far; its text form is `word count`.
#[derive(Row, Clone, Debug)]
struct WordCount {
    word: String,
    count: u64,
}

fn run() -> flow::Result<()> {
    let args = StreamEnv::command("file_word_count")
        .arg(
            Arg::new("input")
                .long("input")
                .value_name("PATH")
                .required(true)
                .help(
                    "A text file, or a directory read recursively (files named .* or _* skipped)",
                ),
        )
        .arg(
            Arg::new("output")
                .long("output")
                .value_name("DIR")
                .default_value("out/file_word_count")
                .help("Directory for the part files (created if missing)"),
        )
        .arg(
            Arg::new("monitor")
                .long("monitor")
                .value_name("MS")
                .value_parser(value_parser!(u64).range(1..))
                .help("Keep watching the input for new files, listing it every MS milliseconds"),
        )
        .get_matches();
    let env = StreamEnv::from_matches(&args);
    let input = PathBuf::from(args.get_one::<String>("input").expect("required"));
    let output = PathBuf::from(args.get_one::<String>("output").expect("has a default"));
    let mut files = FileSource::text_lines(&input);
    if let Some(ms) = args.get_one::<u64>("monitor") {
        files = files.monitor_continuously(Duration::from_millis(*ms));
    }

    flow! { env =>
        source(files, Watermarks::no_watermarks())
            .flat_map(|line| {
                line.split(|c: char| !c.is_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .map(|w| WordCount { word: w.to_lowercase(), count: 1 })
                    .collect::<Vec<_>>()
            })
            .key_by(|r| r.word.clone())
            .reduce(|a, b| WordCount { word: a.word, count: a.count + b.count })
            .sink_to(FileSink::row_format(&output));
    }
    let result = env.execute("file_word_count")?;
    eprintln!(
        "file_word_count: {} lines read from {}, {} rows written to {} in {:.1?}",
        result.operators.first().map_or(0, |m| m.rows_out),
        input.display(),
        result.operators.last().map_or(0, |m| m.rows_in),
        output.display(),
        result.wall_time
    );
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
