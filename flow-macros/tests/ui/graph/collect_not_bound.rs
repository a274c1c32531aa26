use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        from_collection(vec![1, 2, 3]).map(|x| x * 2).collect();
    }
    env.execute("job").unwrap();
}
