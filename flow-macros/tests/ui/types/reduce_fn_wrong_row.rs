use flow::prelude::*;

#[reduce_function]
fn sum_counts(acc: (String, i64), row: (String, i64)) -> (String, i64) {
    (acc.0, acc.1 + row.1)
}

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        from_collection(vec![(1_i64, "a".to_string()), (2, "a".to_string())])
            .key_by(|r| r.1.clone())
            .reduce(sum_counts)
            .print();
    }
}
