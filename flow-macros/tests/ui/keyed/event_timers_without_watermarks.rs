use flow::prelude::*;

#[derive(Clone, Default, KeyedState)]
struct Timeout {
    #[state]
    seen: ValueState<bool>,
}

#[process_function]
impl Timeout {
    fn process(&mut self, row: (u32, i64), ctx: &mut ProcessContext<'_, u32>, _out: &mut Vec<u32>) {
        ctx.register_event_time_timer(row.1 + 1000);
    }
}

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        from_collection(vec![(1u32, 10i64)])
            .key_by(|r| r.0)
            .process(Timeout::default())
            .print();
    }
}
