use flow::prelude::*;

#[timestamp_assigner]
fn event_time(row: &(String, i64)) -> u64 {
    row.1 as u64
}

fn main() {}
