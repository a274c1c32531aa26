use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        source(NumberSequence::new(1, 10), Watermarks::monotonous())
            .sink_to(FileSink::<String>::row_format("out"));
    }
}
