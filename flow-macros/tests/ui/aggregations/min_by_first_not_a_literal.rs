use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    let keep_first = false;
    flow! { env =>
        from_collection(vec![("a", 1), ("a", 1)])
            .key_by(|r| r.0)
            .min_by(1, keep_first)
            .print();
    }
}
