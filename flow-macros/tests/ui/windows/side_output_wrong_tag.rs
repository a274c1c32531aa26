use flow::prelude::*;
use std::time::Duration;

fn main() {
    let late = OutputTag::<(u8, i64)>::new("late");
    let other = OutputTag::<(u8, i64)>::new("other");
    let env = StreamEnv::new();
    flow! { env =>
        let sums = from_collection(vec![(1u8, 10i64)], Watermarks::monotonous())
            .timestamps(|r| r.1)
            .key_by(|r| r.0)
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .side_output_late_data(&late)
            .sum(1);
        sums.print();
        sums.side_output(&other).print();
        sums.map(|r| r.1).side_output(&late).print();
    }
}
