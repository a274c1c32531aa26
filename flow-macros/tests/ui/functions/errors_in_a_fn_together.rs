use flow::prelude::*;

#[map_function]
async fn double<T>(row: i64, #[state] seen: ValueState<u32>) -> i64 {
    row * 2
}

fn main() {}
