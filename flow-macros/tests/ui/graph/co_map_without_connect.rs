use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        from_collection(vec![1i64, 2]).co_map(|a| a, |b| b).print();
    }
}
