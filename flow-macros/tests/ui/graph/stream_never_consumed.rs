use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        let numbers = from_collection(vec![1, 2, 3]);
        let doubled = numbers.map(|x| x * 2);
        numbers.print();
    }
}
