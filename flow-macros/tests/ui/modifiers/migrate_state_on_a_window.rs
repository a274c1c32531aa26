use flow::prelude::*;
use std::time::Duration;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        source(NumberSequence::new(1, 10), Watermarks::monotonous())
            .timestamps(|n| *n)
            .key_by(|n| n % 2)
            .window(TumblingEventTimeWindows::of(Duration::from_millis(5)))
            .reduce(|a, b| a + b)
            .uid("sums")
            .migrate_state(|old: i32| old as i64)
            .print();
    }
}
