use flow::prelude::*;

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
        from_collection(vec![1i64, 2, 3]).key_by(|n| n % 2).aggregate(Count).print();
    }
}
