// flow.lock has this operator's line, and its state is the same: it builds.
use flow::prelude::*;

#[derive(Row, Clone, Debug)]
struct Count {
    key: i64,
    count: i64,
}

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        source(NumberSequence::new(1, 10), Watermarks::no_watermarks())
            .map(|n| Count { key: n % 2, count: 1 })
            .key_by(|c| c.key)
            .reduce(|a, b| Count { key: a.key, count: a.count + b.count })
            .uid("counts")
            .print();
    }
}
