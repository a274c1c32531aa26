use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        from_collection(vec![(1, "a".to_string())]).key_by(|r| r.0).sum(1).print();
    }
}
