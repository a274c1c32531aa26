// The state changed (a `sum` field) under the uid flow.lock recorded with the old state, and
// `.migrate_state(..)` reads the old layout: the build accepts it.
use flow::prelude::*;

#[derive(Row, Clone, Debug)]
struct Count {
    key: i64,
    count: i64,
    sum: i64,
}

/// The rows as they were: what the checkpoints before the change hold.
#[derive(serde::Serialize, serde::Deserialize, flow::StateSchema)]
struct OldCount {
    key: i64,
    count: i64,
}

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        source(NumberSequence::new(1, 10), Watermarks::no_watermarks())
            .map(|n| Count { key: n % 2, count: 1, sum: n })
            .key_by(|c| c.key)
            .reduce(|a, b| Count { key: a.key, count: a.count + b.count, sum: a.sum + b.sum })
            .uid("counts")
            .migrate_state(|old: OldCount| Count { key: old.key, count: old.count, sum: 0 })
            .print();
    }
}
