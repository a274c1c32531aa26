use flow::prelude::*;
use std::time::Duration;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        source(NumberSequence::new(1, 10), Watermarks::monotonous())
            .timestamps(|n| *n)
            .key_by(|n| n % 2)
            .window(TumblingEventTimeWindows::of(Duration::from_millis(5)))
            // A window function's context is a `WindowContext`, not a `ProcessContext`.
            .process(|key: &i64, ctx: &mut ProcessContext<'_, i64>, rows: &[i64], out: &mut Vec<i64>| {
                out.push(key + rows.len() as i64 + ctx.current_watermark())
            })
            .print();
    }
}
