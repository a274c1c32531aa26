use flow::prelude::*;
use std::time::Duration;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        from_collection(vec![1i64, 2])
            .key_by(|n| n % 2)
            .window(TumblingProcessingTimeWindows::of(Duration::from_secs(1)))
            .print();
    }
}
