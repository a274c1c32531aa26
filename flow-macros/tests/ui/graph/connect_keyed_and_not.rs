use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        let keyed = from_collection(vec![(1u8, 10i64)]).key_by(|r| r.0);
        let plain = from_collection(vec![5i64]);
        keyed.connect(plain).co_map(|r| r.1, |n| n).print();
    }
}
