use flow::prelude::*;

#[derive(Clone, Default, KeyedState)]
struct CountFirstTwo {
    #[state]
    cnt: ValueState<u32>,
}

#[map_function]
impl CountFirstTwo {
    fn map(&mut self, row: (i64, i64)) -> (i64, i64) {
        let seen = self.cnt.value().unwrap_or(0);
        self.cnt.update(seen + 1);
        if seen < 2 { (row.0, row.1 + 1) } else { row }
    }
}

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        source(NumberSequence::new(1, 100), Watermarks::monotonous())
            .map(|a| (a % 4, 1))
            .map(CountFirstTwo::default())
            .print();
    }
}
