use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        let keyed = from_collection(vec![(1u8, 10i64)]).key_by(|r| r.0);
        keyed.sum(1).print();
        keyed.reduce(|a, b| (a.0, a.1.max(b.1))).parallelism(3).print();
    }
}
