use flow::prelude::*;
use flow::AggregateFunction;
use std::time::Duration;

#[derive(Clone)]
struct Count;

impl AggregateFunction<i64> for Count {
    type Acc = u64;
    type Out = u64;
    fn create_accumulator(&mut self) -> u64 {
        0
    }
    fn add(&mut self, _: i64, acc: &mut u64) {
        *acc += 1;
    }
    fn get_result(&mut self, acc: &u64) -> u64 {
        *acc
    }
    fn merge(&mut self, a: u64, b: u64) -> u64 {
        a + b
    }
}

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        source(NumberSequence::new(1, 10), Watermarks::monotonous())
            .timestamps(|n| *n)
            .key_by(|n| n % 2)
            .window(TumblingEventTimeWindows::of(Duration::from_millis(5)))
            // The count is a `u64`, not a `String`.
            .aggregate(Count, |key: &i64, _, count: String, out: &mut Vec<String>| {
                out.push(format!("{key}: {count}"))
            })
            .print();
    }
}
