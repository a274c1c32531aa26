use flow::prelude::*;


fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        source(NumberSequence::new(1, 10), Watermarks::monotonous())
            .timestamps(|n| *n)
            .window_all(TumblingEventTimeWindows::of(std::time::Duration::from_millis(5)))
            // `window_all` groups the whole stream: there is no key to take.
            .process(|_key, window, rows, out| out.push((window.start, rows.len())))
            .print();
    }
}
