use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        from_collection(vec![(1, "a"), (2, "b")])
            .reduce(|a, b| (a.0 + b.0, a.1))
            .print();
    }
}
