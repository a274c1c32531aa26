//! The build-time benchmark's flow program: the seed's `state_access_demo` pipeline.
//! `scripts/build-time` edits the line marked `EDIT` and times the incremental release build
//! against the same edit in `by_hand.rs`.

use flow::prelude::*;

/// The seed's `Row(a % 4, 1)`.
#[derive(Row, Clone, Debug)]
struct KeyCount {
    key: i64,
    count: i64,
}

/// The first two rows of every key get +1.
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

fn main() -> flow::Result<()> {
    let env = StreamEnv::from_args();
    let dir = std::env::temp_dir().join("flow-build-time");
    flow! { env =>
        source(NumberSequence::new(1, 10_000), Watermarks::monotonous())
            .map(|a| KeyCount { key: a % 4, count: 1 }) // EDIT
            .key_by(|row| row.key)
            .map(count_first_two)
            .sink_to(FileSink::row_format(&dir).part_prefix("pre").part_suffix("suf"));
    }
    env.execute("build_time")?;
    Ok(())
}
