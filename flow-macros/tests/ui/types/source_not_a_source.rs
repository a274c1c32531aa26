use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        source(vec![1, 2, 3], Watermarks::monotonous()).print();
    }
}
