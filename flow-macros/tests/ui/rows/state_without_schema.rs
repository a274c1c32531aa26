// A type kept in state (a reduce's rows) with serde but no state schema: flow.lock could not
// record it, so it is an error naming the type.
use flow::prelude::*;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Total {
    key: i64,
    sum: i64,
}

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        let rows = source(NumberSequence::new(1, 10), Watermarks::no_watermarks())
            .map(|n| Total { key: n % 2, sum: n })
            .key_by(|t| t.key)
            .reduce(|a, b| Total { key: a.key, sum: a.sum + b.sum })
            .collect();
    }
}
