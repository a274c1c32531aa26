use flow::prelude::*;

#[derive(Clone, Default)]
struct Doubler;

#[map_function]
impl Doubler {
    fn map(&mut self, row: i64) -> i64 {
        row * 2
    }
}

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        from_collection(vec![1_i64, 2, 3]).map(Doubler).print();
    }
}
