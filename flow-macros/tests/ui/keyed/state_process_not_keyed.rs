use flow::prelude::*;

#[derive(Clone, Default, KeyedState)]
struct Count {
    #[state]
    n: ValueState<u32>,
}

#[process_function]
impl Count {
    fn process(&mut self, row: i64, _ctx: &mut ProcessContext<'_>, out: &mut Vec<i64>) {
        self.n.update(1);
        out.push(row);
    }
}

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        from_collection(vec![1i64, 2]).process(Count::default()).print();
    }
}
