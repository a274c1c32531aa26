use flow::prelude::*;

/// Kept per key, but cannot be copied: a checkpoint's copy-on-write needs `Clone`.
#[derive(Default, serde::Serialize, serde::Deserialize, flow::StateSchema)]
struct Seen {
    n: u32,
}

#[map_function]
fn count(row: (i64, i64), #[state] seen: &mut ValueState<Seen>) -> (i64, i64) {
    seen.get_mut_or_default().n += 1;
    row
}

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        source(NumberSequence::new(1, 100), Watermarks::monotonous())
            .map(|a| (a % 4, 1))
            .key_by(|r: &(i64, i64)| r.0)
            .map(count)
            .print();
    }
}
