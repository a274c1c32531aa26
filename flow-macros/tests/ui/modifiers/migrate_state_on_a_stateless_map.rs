use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        source(NumberSequence::new(1, 10), Watermarks::no_watermarks())
            .map(|n| n * 2)
            .uid("doubled")
            .migrate_state(|old: i32| old as i64)
            .print();
    }
}
