use flow::prelude::*;

#[filter_function]
fn first_per_key(_row: &(i64, i64), #[state] seen: &mut ValueState<bool>) -> bool {
    let first = seen.value().is_none();
    seen.update(true);
    first
}

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        from_collection(vec![(1_i64, 2_i64), (1, 3)])
            .rebalance()
            .filter(first_per_key)
            .print();
    }
}
