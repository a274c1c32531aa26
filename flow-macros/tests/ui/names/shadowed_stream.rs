use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        let numbers = from_collection(vec![1i64, 2]);
        let numbers = from_collection(vec![3i64]);
        numbers.print();
    }
}
