// A state type that is not a `#[derive(Row)]` gets its schema from `#[derive(StateSchema)]`;
// flow.lock's line is that of `reduce` over `Count { key: i64, count: i64 }`, same layout.
use flow::prelude::*;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, flow::StateSchema)]
struct Count {
    key: i64,
    count: i64,
}

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        let rows = source(NumberSequence::new(1, 10), Watermarks::no_watermarks())
            .map(|n| Count { key: n % 2, count: 1 })
            .key_by(|c| c.key)
            .reduce(|a, b| Count { key: a.key, count: a.count + b.count })
            .uid("counts")
            .collect();
    }
}
