use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        source(NumberSequence::new(1, 10), Watermarks::no_watermarks())
            .key_by(|n| n % 2)
            .count_window(3)
            // A count window has no start or end: it is a `GlobalWindow`.
            .process(|key: &i64, window: &TimeWindow, rows: &[i64], out: &mut Vec<i64>| {
                out.push(key + window.start + rows.len() as i64)
            })
            .print();
    }
}
