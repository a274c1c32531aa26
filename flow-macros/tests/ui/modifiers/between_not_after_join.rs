use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        from_collection(vec![1i64, 2]).map(|n| n + 1).between(0, 10).print();
    }
}
