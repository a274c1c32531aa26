use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    let id = "counts";
    flow! { env =>
        source(NumberSequence::new(1, 10), Watermarks::no_watermarks())
            .key_by(|n| n % 2)
            .reduce(|a, b| a + b)
            .uid(id)
            .print();
    }
}
