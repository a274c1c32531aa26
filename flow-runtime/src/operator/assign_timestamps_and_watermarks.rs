//! `assign_timestamps_and_watermarks(strategy[, |row| ts])` anywhere in a stream (Flink's
//! `DataStream.assign_timestamps_and_watermarks`): gives each row a new event timestamp (or
//! keeps the one it has) and generates the stream's watermarks from then on, per subtask,
//! with a built-in strategy ([`Watermarks`]) or a [`WatermarkGenerator`] of the user's
//! (`Watermarks::for_generator(g)`: punctuated watermarks from `on_event`, periodic ones from
//! `on_periodic_emit`, called every auto-watermark interval). The watermarks that reach it
//! from upstream are dropped, but for the final one at the end of input, as in Flink.

use super::{Operator, Output};
use crate::context::RuntimeContext;
use crate::port::Stream;
use crate::time::{Timestamp, TimestampAssigner, WatermarkKind, Watermarks, MAX_WATERMARK};
use crate::time::{MIN_WATERMARK, NO_TIMESTAMP};
use crate::{Error, Result};
use std::time::{Duration, Instant};

/// Generates watermarks from the rows' timestamps (Flink's `WatermarkGenerator`): emit a
/// watermark from [`on_event`](Self::on_event) for punctuated watermarks (a marker row), from
/// [`on_periodic_emit`](Self::on_periodic_emit) for periodic ones. A watermark no larger than
/// one already emitted is ignored.
///
/// # Examples
/// ```
/// use flow_runtime::{Timestamp, WatermarkGenerator, WatermarkOutput};
/// /// A watermark at every row that marks the end of a batch.
/// #[derive(Clone)]
/// struct EndOfBatch;
/// impl WatermarkGenerator<(bool, i64)> for EndOfBatch {
///     fn on_event(&mut self, row: &(bool, i64), ts: Timestamp, out: &mut WatermarkOutput) {
///         if row.0 {
///             out.emit_watermark(ts);
///         }
///     }
///     fn on_periodic_emit(&mut self, _: &mut WatermarkOutput) {}
/// }
/// ```
pub trait WatermarkGenerator<T>: Clone + Send + 'static {
    /// A row with its (new) timestamp.
    fn on_event(&mut self, row: &T, timestamp: Timestamp, output: &mut WatermarkOutput);
    /// Called every auto-watermark interval (`--auto-watermark-interval`; after every row
    /// when it is 0).
    fn on_periodic_emit(&mut self, output: &mut WatermarkOutput);
}

/// Where a [`WatermarkGenerator`] emits.
#[derive(Debug)]
pub struct WatermarkOutput {
    watermark: Timestamp,
}

impl WatermarkOutput {
    /// Emits `watermark`: no row with a timestamp at or below it is expected any more.
    pub fn emit_watermark(&mut self, watermark: Timestamp) {
        self.watermark = self.watermark.max(watermark);
    }
}

/// What `assign_timestamps_and_watermarks` takes: a built-in [`Watermarks`] strategy or
/// [`Watermarks::for_generator`].
pub trait WatermarkStrategy<T> {
    /// The generator each subtask runs.
    type Generator: WatermarkGenerator<T>;
    /// The generator of one subtask.
    fn generator(&self) -> Self::Generator;
}

/// The built-in strategies as a generator: the watermark trails the largest timestamp seen by
/// the out-of-orderness bound plus 1 ms (monotonous: 0), emitted periodically.
#[derive(Clone, Debug)]
pub struct BoundedOutOfOrderness {
    /// `None`: no watermarks at all (`Watermarks::no_watermarks()`).
    delay: Option<i64>,
    max_ts: Timestamp,
}

impl<T> WatermarkGenerator<T> for BoundedOutOfOrderness {
    #[inline]
    fn on_event(&mut self, _: &T, timestamp: Timestamp, _: &mut WatermarkOutput) {
        if timestamp != NO_TIMESTAMP {
            self.max_ts = self.max_ts.max(timestamp);
        }
    }
    fn on_periodic_emit(&mut self, output: &mut WatermarkOutput) {
        if let (Some(delay), true) = (self.delay, self.max_ts != MIN_WATERMARK) {
            output.emit_watermark(self.max_ts.saturating_sub(delay).saturating_sub(1));
        }
    }
}

impl<T> WatermarkStrategy<T> for Watermarks {
    type Generator = BoundedOutOfOrderness;
    fn generator(&self) -> BoundedOutOfOrderness {
        BoundedOutOfOrderness {
            delay: match self.kind() {
                WatermarkKind::None => None,
                WatermarkKind::Monotonous => Some(0),
                WatermarkKind::BoundedOutOfOrderness(d) => Some(d),
            },
            max_ts: MIN_WATERMARK,
        }
    }
}

/// A strategy of the user's generator: [`Watermarks::for_generator`].
#[derive(Clone, Debug)]
pub struct ForGenerator<G>(G);

impl<T, G: WatermarkGenerator<T>> WatermarkStrategy<T> for ForGenerator<G> {
    type Generator = G;
    fn generator(&self) -> G {
        self.0.clone()
    }
}

impl Watermarks {
    /// `WatermarkStrategy.for_generator(..)`: watermarks from `generator` (one copy per
    /// subtask), for `assign_timestamps_and_watermarks`.
    pub fn for_generator<G>(generator: G) -> ForGenerator<G> {
        ForGenerator(generator)
    }
}

/// How many rows pass between two readings of the clock for the periodic watermark.
const CHECK_EVERY: u32 = 16;

/// The operator: the assigner `A` and one generator `G` per subtask.
pub struct AssignTimestampsAndWatermarks<A, G> {
    assigner: A,
    generator: G,
    /// The last watermark sent on.
    emitted: Timestamp,
    interval: Duration,
    last_emit: Instant,
    /// Rows since the clock was last read on the row path.
    unchecked: u32,
    /// An error of the operators after it on a watermark sent from the row path.
    error: Option<Error>,
}

impl<A, G> AssignTimestampsAndWatermarks<A, G> {
    /// Timestamps from `assigner`, watermarks from `generator`.
    pub fn new(assigner: A, generator: G) -> Self {
        AssignTimestampsAndWatermarks {
            assigner,
            generator,
            emitted: MIN_WATERMARK,
            interval: Duration::ZERO,
            last_emit: Instant::now(),
            unchecked: 0,
            error: None,
        }
    }

    /// Whether the periodic watermark is due: the clock is read every [`CHECK_EVERY`] rows on
    /// the row path (a long input batch would hold it back until its end otherwise), and after
    /// every batch in `on_tick`.
    #[inline]
    fn periodic_due(&mut self) -> bool {
        self.unchecked += 1;
        if self.unchecked < CHECK_EVERY {
            return false;
        }
        self.unchecked = 0;
        let due = self.last_emit.elapsed() >= self.interval;
        if due {
            self.last_emit = Instant::now();
        }
        due
    }

    /// Sends the generator's watermark on if it advanced.
    fn send<T>(&mut self, wm: WatermarkOutput, out: &mut impl Output<T>) {
        if wm.watermark > self.emitted {
            self.emitted = wm.watermark;
            if let Err(e) = out.emit_watermark(wm.watermark) {
                self.error.get_or_insert(e);
            }
        }
    }
}

impl<T, A, G> Operator<T> for AssignTimestampsAndWatermarks<A, G>
where
    A: TimestampAssigner<T>,
    G: WatermarkGenerator<T>,
{
    type Out = T;
    const ONE_TO_ONE: bool = true;
    const GENERATES_WATERMARKS: bool = true;

    #[inline]
    fn process(&mut self, row: T, ts: Timestamp, out: &mut impl Output<T>) {
        let ts = self.assigner.timestamp(&row, ts);
        let mut wm = WatermarkOutput {
            watermark: self.emitted,
        };
        self.generator.on_event(&row, ts, &mut wm);
        out.emit(row, ts);
        if self.interval.is_zero() || self.periodic_due() {
            self.generator.on_periodic_emit(&mut wm);
        }
        if wm.watermark > self.emitted {
            self.send(wm, out);
        }
    }

    fn open(&mut self, ctx: &RuntimeContext) -> Result<()> {
        self.interval = ctx.watermark_interval();
        self.last_emit = Instant::now();
        // Chained to a source of an instance group: the watermarks after this operator are
        // its own, not the source splits'.
        if let Some(splits) = crate::instances::source_splits(ctx.subtask_key()) {
            splits.regenerated();
        }
        Ok(())
    }

    /// A deferred error; the periodic watermark when its interval passed.
    fn on_tick(&mut self, out: &mut impl Output<T>) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if !self.interval.is_zero() && self.last_emit.elapsed() >= self.interval {
            self.last_emit = Instant::now();
            self.unchecked = 0;
            let mut wm = WatermarkOutput {
                watermark: self.emitted,
            };
            self.generator.on_periodic_emit(&mut wm);
            self.send(wm, out);
        }
        Ok(())
    }

    /// Upstream watermarks are dropped (the link passes on only the final one).
    fn on_watermark(&mut self, watermark: Timestamp, _: &mut impl Output<T>) -> Result<()> {
        if watermark == MAX_WATERMARK {
            self.emitted = MAX_WATERMARK;
        }
        Ok(())
    }

    /// A deferred error; then the final watermark, if the input did not bring it (a source
    /// without watermarks sends none): the end of a bounded input closes event time.
    fn end_of_input(&mut self, out: &mut impl Output<T>) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.emitted != MAX_WATERMARK {
            self.emitted = MAX_WATERMARK;
            out.emit_watermark(MAX_WATERMARK)?;
        }
        Ok(())
    }
}

impl<T: Send + 'static, K> Stream<T, K> {
    /// `assign_timestamps_and_watermarks(strategy)`: the rows keep their timestamps.
    pub fn assign_timestamps_and_watermarks<S: WatermarkStrategy<T>>(
        &self,
        strategy: S,
    ) -> (S::Generator, crate::time::SourceTimestamps, Stream<T>) {
        (
            strategy.generator(),
            crate::time::SourceTimestamps,
            Stream::new(),
        )
    }
    /// `assign_timestamps_and_watermarks(strategy, |row| ts)`.
    pub fn assign_timestamps_and_watermarks_closure<S, F>(
        &self,
        strategy: S,
        assigner: F,
    ) -> (S::Generator, F, Stream<T>)
    where
        S: WatermarkStrategy<T>,
        F: FnMut(&T) -> Timestamp + Clone + Send + 'static,
    {
        (strategy.generator(), assigner, Stream::new())
    }
    /// `assign_timestamps_and_watermarks(strategy, assigner)` with a `#[timestamp_assigner]`
    /// fn or another [`TimestampAssigner`].
    pub fn assign_timestamps_and_watermarks_with<S, A>(
        &self,
        strategy: S,
        assigner: A,
    ) -> (S::Generator, A, Stream<T>)
    where
        S: WatermarkStrategy<T>,
        A: TimestampAssigner<T>,
    {
        (strategy.generator(), assigner, Stream::new())
    }
}
