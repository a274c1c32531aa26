// A field renamed: checkpoints save fields by position, so the state schema is the same and
// flow.lock's line still fits.
use flow::prelude::*;

#[derive(Row, Clone, Debug)]
struct Count {
    key: i64,
    total: i64,
}

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        source(NumberSequence::new(1, 10), Watermarks::no_watermarks())
            .map(|n| Count { key: n % 2, total: 1 })
            .key_by(|c| c.key)
            .reduce(|a, b| Count { key: a.key, total: a.total + b.total })
            .uid("counts")
            .print();
    }
}
