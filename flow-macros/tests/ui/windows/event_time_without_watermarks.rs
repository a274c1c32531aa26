use flow::prelude::*;
use std::time::Duration;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        from_collection(vec![("a", 1000i64)])
            .key_by(|e| e.0)
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .reduce(|a, b| (a.0, a.1 + b.1))
            .print();
    }
}
