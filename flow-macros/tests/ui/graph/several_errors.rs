use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        let words = from_collection(vec![(1, "a"), (2, "b")]);
        words.fliter(|r| r.0 > 1).print();
        words.reduce(|a, b| (a.0 + b.0, a.1)).print();
        words.map(|r| r.0).parallelism(0).print();
    }
}
