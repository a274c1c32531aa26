use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        let out = from_collection(vec![1, 2, 3]).print();
    }
}
