use flow::prelude::*;

#[map_function]
fn count_first_two(row: (i64, i64), #[state] cnt: &mut ValueState<u32>) -> (i64, i64) {
    let seen = cnt.value().unwrap_or(0);
    cnt.update(seen + 1);
    if seen < 2 { (row.0, row.1 + 1) } else { row }
}

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        source(NumberSequence::new(1, 100), Watermarks::monotonous())
            .map(|a| (a % 4, 1))
            .map(count_first_two)
            .print();
    }
}
