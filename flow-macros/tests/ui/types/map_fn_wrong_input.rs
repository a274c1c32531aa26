use flow::prelude::*;

#[map_function]
fn double(row: (i64, String)) -> (i64, String) {
    (row.0 * 2, row.1)
}

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        from_collection(vec![1_i64, 2, 3])
            .map(double)
            .print();
    }
}
