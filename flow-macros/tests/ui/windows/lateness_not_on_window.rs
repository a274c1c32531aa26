use flow::prelude::*;
use std::time::Duration;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        from_collection(vec![1i64, 2])
            .map(|n| n + 1)
            .allowed_lateness(Duration::from_secs(1))
            .print();
    }
}
