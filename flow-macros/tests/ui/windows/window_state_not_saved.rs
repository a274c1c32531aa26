use flow::prelude::*;
use std::time::Duration;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        source(NumberSequence::new(1, 10), Watermarks::monotonous())
            .timestamps(|n| *n)
            .key_by(|n| n % 2)
            .window(TumblingEventTimeWindows::of(Duration::from_millis(5)))
            // State kept through the context goes into checkpoints: an `Instant` cannot.
            .process(|_, ctx: &mut WindowContext<'_, Option<std::time::Instant>>, rows: &[i64], out: &mut Vec<usize>| {
                ctx.global_state().get_or_insert_with(std::time::Instant::now);
                out.push(rows.len())
            })
            .print();
    }
}
