use flow::prelude::*;

#[map_function]
fn label(n: i64) -> (i64, String) {
    (n, format!("#{n}"))
}

fn main() {
    let env = StreamEnv::new();
    let sink: FileSink<String> = FileSink::row_format("out");
    flow! { env =>
        source(NumberSequence::new(1, 10), Watermarks::monotonous())
            .map(label)
            .sink_to(sink);
    }
}
