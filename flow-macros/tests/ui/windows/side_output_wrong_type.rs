use flow::prelude::*;
use std::time::Duration;

fn main() {
    let late = flow::OutputTag::<String>::new("late");
    let env = StreamEnv::new();
    flow! { env =>
        let counts = from_collection(vec![("a", 1000i64)], Watermarks::monotonous())
            .timestamps(|e| e.1)
            .key_by(|e| e.0)
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .side_output_late_data(&late)
            .reduce(|a, b| (a.0, a.1 + b.1));
        counts.print();
        counts.side_output(&late).print();
    }
}
