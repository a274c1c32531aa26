// A migration from a type with the layout the operator keeps now would never run (the
// checkpoint's values are read as they are): the build fails on it.
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
            .migrate_state(|old: (i64, i64)| Count { key: old.0, count: old.1 * 100 })
            .print();
    }
}
