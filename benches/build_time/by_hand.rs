//! The build-time benchmark's hand-written program: the same job as `flow_job.rs` as a plain
//! loop with a `HashMap`, writing through flow's `FileSink` (the same crates).
//! `scripts/build-time` edits the line marked `EDIT`.

use flow::{FileSink, Row, RuntimeContext, Sink, SinkWriter};
use std::collections::HashMap;

/// The seed's `Row(a % 4, 1)`.
#[derive(Row, Clone, Debug)]
struct KeyCount {
    key: i64,
    count: i64,
}

fn main() -> flow::Result<()> {
    let dir = std::env::temp_dir().join("flow-build-time-by-hand");
    let sink = FileSink::row_format(&dir)
        .part_prefix("pre")
        .part_suffix("suf");
    let mut writer = sink.create_writer(&RuntimeContext::standalone("by_hand", 0, 1))?;
    let mut seen: HashMap<i64, u32> = HashMap::new();
    for a in 1..=10_000i64 {
        let row = KeyCount {
            key: a % 4,
            count: 1,
        }; // EDIT
        let n = seen.entry(row.key).or_insert(0);
        let row = if *n < 2 {
            *n += 1;
            KeyCount {
                count: row.count + 1,
                ..row
            }
        } else {
            row
        };
        writer.write(row, flow::NO_TIMESTAMP);
    }
    SinkWriter::<KeyCount>::finish(&mut writer)
}
