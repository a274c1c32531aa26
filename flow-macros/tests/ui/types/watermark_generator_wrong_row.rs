use flow::prelude::*;

/// Watermarks from rows of `(bool, i64)`.
#[derive(Clone)]
struct EndOfBatch;

impl WatermarkGenerator<(bool, i64)> for EndOfBatch {
    fn on_event(&mut self, row: &(bool, i64), ts: i64, out: &mut WatermarkOutput) {
        if row.0 {
            out.emit_watermark(ts);
        }
    }
    fn on_periodic_emit(&mut self, _: &mut WatermarkOutput) {}
}

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        source(NumberSequence::new(1, 10), Watermarks::no_watermarks())
            // The stream's rows are `i64`: this generator reads other rows.
            .assign_timestamps_and_watermarks(Watermarks::for_generator(EndOfBatch), |n| *n)
            .print();
    }
}
