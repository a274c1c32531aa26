use flow::prelude::*;

#[map_function]
fn log_row(row: (i64, String)) {
    println!("{row:?}");
}

fn main() {}
