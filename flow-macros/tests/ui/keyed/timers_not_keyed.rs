use flow::prelude::*;

#[derive(Clone, Default, KeyedState)]
struct Remind;

#[process_function]
impl Remind {
    fn process(&mut self, row: i64, ctx: &mut ProcessContext<'_>, out: &mut Vec<i64>) {
        ctx.register_processing_time_timer(row + 1000);
        out.push(row);
    }
}

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        from_collection(vec![1i64, 2]).process(Remind).print();
    }
}
