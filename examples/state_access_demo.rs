//! The seed's `state_access_demo`: numbers 1..=10000 -> `(n % 4, 1)` -> key_by the first
//! field -> a map whose keyed `ValueState` count gives the first two rows of every key +1 ->
//! part files with prefix `pre` and suffix `suf`.
//!
//! ```text
//! cargo run --release --example state_access_demo -- --output out/state_access_demo --parallelism 2
//! ```

use flow::clap::Arg;
use flow::prelude::*;
use std::path::PathBuf;
use std::process::ExitCode;

/// The seed's `Row(a % 4, 1)`; its text form is `key count`.
#[derive(Row, Clone, Debug)]
struct KeyCount {
    key: i64,
    count: i64,
}

/// The first two rows of every key get +1 (the seed's `MyMapFunction`).
#[map_function]
fn count_first_two(row: KeyCount, #[state] cnt: &mut ValueState<u32>) -> KeyCount {
    let seen = cnt.value().unwrap_or(0);
    if seen < 2 {
        cnt.update(seen + 1);
        KeyCount {
            count: row.count + 1,
            ..row
        }
    } else {
        row
    }
}

fn run() -> flow::Result<()> {
    let args = StreamEnv::command("state_access_demo")
        .arg(
            Arg::new("output")
                .long("output")
                .value_name("DIR")
                .default_value("out/state_access_demo")
                .help("Directory for the part files (created if missing)"),
        )
        .get_matches();
    let env = StreamEnv::from_matches(&args);
    let output = PathBuf::from(args.get_one::<String>("output").expect("has a default"));

    flow! { env =>
        source(NumberSequence::new(1, 10_000), Watermarks::monotonous())
            .map(|a| KeyCount { key: a % 4, count: 1 })
            .key_by(|row| row.key)
            .map(count_first_two)
            .sink_to(FileSink::row_format(&output).part_prefix("pre").part_suffix("suf"));
    }
    let result = env.execute("state_access_demo")?;
    eprintln!(
        "state_access_demo: {} rows written to {} in {:.1?}",
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
