//! Event time: timestamps, watermarks and the strategies sources generate them with.

use std::time::Duration;

/// Milliseconds since the Unix epoch, as in Flink.
pub type Timestamp = i64;

/// The watermark that ends a bounded stream: every window and timer may fire.
pub const MAX_WATERMARK: Timestamp = Timestamp::MAX;

/// The watermark before any input: nothing is known yet.
pub const MIN_WATERMARK: Timestamp = Timestamp::MIN;

/// How a source derives watermarks from its rows (Flink's `WatermarkStrategy`).
///
/// Every strategy ends a bounded source with [`MAX_WATERMARK`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Watermarks {
    /// No event time: the job runs on processing time.
    None,
    /// Timestamps never decrease; the watermark trails the largest one by 1 ms.
    Monotonous,
    /// Rows may arrive up to the given delay out of order.
    BoundedOutOfOrderness(Duration),
}

impl Watermarks {
    /// `WatermarkStrategy.for_monotonous_timestamps()`.
    pub fn monotonous() -> Self {
        Watermarks::Monotonous
    }
    /// `WatermarkStrategy.for_bounded_out_of_orderness(max_delay)`.
    pub fn bounded_out_of_orderness(max_delay: Duration) -> Self {
        Watermarks::BoundedOutOfOrderness(max_delay)
    }
    /// `WatermarkStrategy.no_watermarks()`: processing time only.
    pub fn no_watermarks() -> Self {
        Watermarks::None
    }
}
