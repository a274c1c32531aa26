use flow::prelude::*;

#[filter_function]
fn is_positive(row: i64) -> bool {
    row > 0
}

fn main() {}
