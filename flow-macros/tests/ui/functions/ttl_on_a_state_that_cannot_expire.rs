use flow::prelude::*;

#[map_function]
fn count(row: (i64, i64), #[state] seen: &mut Ttl<u64, 60_000>) -> (i64, u64) {
    // A time to live applies to Flink's state kinds, not to a plain value.
    **seen += 1;
    (row.0, **seen)
}

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        source(NumberSequence::new(1, 100), Watermarks::no_watermarks())
            .map(|a| (a % 4, 1))
            .key_by(|r: &(i64, i64)| r.0)
            .map(count)
            .print();
    }
}
