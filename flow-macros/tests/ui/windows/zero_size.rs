use flow::prelude::*;
use std::time::Duration;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        from_collection(vec![("a", 1000i64)], Watermarks::monotonous())
            .timestamps(|e| e.1)
            .key_by(|e| e.0)
            .window(TumblingEventTimeWindows::of(Duration::from_millis(0)))
            .reduce(|a, b| (a.0, a.1 + b.1))
            .print();
        from_collection(vec![1i64]).key_by(|n| *n).count_window(0).reduce(|a, b| a + b).print();
    }
}
