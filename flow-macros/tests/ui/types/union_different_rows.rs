use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        let numbers = from_collection(vec![1_i64, 2, 3]);
        let words = from_collection(vec!["a".to_string(), "b".to_string()]);
        numbers.union(words).print();
    }
}
