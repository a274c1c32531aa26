use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        let left = source(NumberSequence::new(1, 10), Watermarks::monotonous()).timestamps(|n| *n).key_by(|n| n % 2);
        let right = source(NumberSequence::new(1, 10), Watermarks::monotonous()).timestamps(|n| *n).key_by(|n| n % 2);
        left.interval_join(right)
            .between(-1, 1)
            // An interval join's context is a `JoinContext`, not a `ProcessContext`.
            .process(|a: &i64, b: &i64, ctx: &mut ProcessContext<'_>, out: &mut Vec<i64>| {
                out.push(a + b + ctx.current_watermark())
            })
            .print();
    }
}
