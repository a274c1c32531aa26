use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        from_collection(vec![("a", 1), ("a", 1)])
            .key_by(|r| r.0)
            .sum(1, false)
            .print();
    }
}
