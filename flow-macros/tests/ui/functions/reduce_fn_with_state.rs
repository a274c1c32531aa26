use flow::prelude::*;

#[reduce_function]
fn sum(acc: (String, i64), row: (String, i64), #[state] seen: &mut ValueState<u32>) -> (String, i64) {
    seen.update(seen.value().unwrap_or(0) + 1);
    (acc.0, acc.1 + row.1)
}

fn main() {}
