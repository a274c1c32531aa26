use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        from_collection(vec![(1_i64, "a")])
            .map(|r: (i64, i64)| r.0 + r.1)
            .print();
    }
}
