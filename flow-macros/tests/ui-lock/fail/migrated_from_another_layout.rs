// The state changed, and the `.migrate_state(..)` reads a layout that is not the one
// flow.lock recorded (three numbers where the checkpoints hold two): the build fails.
use flow::prelude::*;

#[derive(Row, Clone, Debug)]
struct Count {
    key: i64,
    count: i64,
    sum: i64,
}

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        source(NumberSequence::new(1, 10), Watermarks::no_watermarks())
            .map(|n| Count { key: n % 2, count: 1, sum: n })
            .key_by(|c| c.key)
            .reduce(|a, b| Count { key: a.key, count: a.count + b.count, sum: a.sum + b.sum })
            .uid("counts")
            .migrate_state(|old: (i64, i64, i64)| Count { key: old.0, count: old.1, sum: old.2 })
            .print();
    }
}
