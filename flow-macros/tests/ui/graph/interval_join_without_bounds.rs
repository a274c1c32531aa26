use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        let clicks = from_collection(vec![(1u8, 10i64)], Watermarks::monotonous()).timestamps(|c| c.1).key_by(|c| c.0);
        let buys = from_collection(vec![(1u8, 20i64)], Watermarks::monotonous()).timestamps(|b| b.1).key_by(|b| b.0);
        clicks
            .interval_join(buys)
            .process(|c: &(u8, i64), b: &(u8, i64), out: &mut Vec<i64>| out.push(b.1 - c.1))
            .print();
    }
}
