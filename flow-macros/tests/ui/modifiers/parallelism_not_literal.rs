use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    let workers = 4;
    flow! { env =>
        from_collection(vec![1, 2, 3]).map(|x| x * 2).parallelism(workers).print();
    }
}
