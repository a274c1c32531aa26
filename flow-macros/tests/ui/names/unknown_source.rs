use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        from_colection(vec![1, 2, 3]).print();
    }
}
