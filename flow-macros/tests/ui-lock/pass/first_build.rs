// No line in flow.lock for this operator yet (a first build): it builds, and a debug run
// of the job adds the line.
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
            .print();
    }
}
