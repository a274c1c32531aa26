use flow::prelude::*;

/// Kept per key, but not `Sync` (a `Cell`): the checkpoint thread reads frozen state while
/// rows go on.
#[map_function]
fn count(row: (i64, i64), #[state] seen: &mut ValueState<std::cell::Cell<u32>>) -> (i64, i64) {
    let n = seen.get_mut_or_default();
    n.set(n.get() + 1);
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
