//! Event time: timestamps, watermark strategies, timestamp assigners, and the per-split
//! watermark generator sources run.

use crate::instances::{stage_split, SourceSplits, SplitState, SplitWatermark};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Milliseconds since the Unix epoch, as in Flink.
pub type Timestamp = i64;

/// The timestamp of a row that has none (the job has no event time, or the source gave none).
pub const NO_TIMESTAMP: Timestamp = Timestamp::MIN;

/// The watermark that ends a bounded stream: every window and timer may fire.
pub const MAX_WATERMARK: Timestamp = Timestamp::MAX;

/// The watermark before any input: nothing is known yet.
pub const MIN_WATERMARK: Timestamp = Timestamp::MIN;

/// How watermarks follow the timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatermarkKind {
    /// No event time: the job runs on processing time.
    None,
    /// Timestamps never decrease; the watermark trails the largest one by 1 ms.
    Monotonous,
    /// Rows may arrive up to this many milliseconds out of order.
    BoundedOutOfOrderness(i64),
}

/// How a source derives watermarks from its rows' timestamps (Flink's `WatermarkStrategy`).
/// Each source split (subtask) generates its own; operators with several inputs take the
/// minimum. Every strategy ends a bounded source with [`MAX_WATERMARK`].
///
/// Timestamps come from `.timestamps(|row| ..)` right after the source in `flow!`, or from
/// the source itself (a Kafka message's timestamp).
///
/// # Examples
/// ```
/// use flow_runtime::Watermarks;
/// use std::time::Duration;
/// let w = Watermarks::bounded_out_of_orderness(Duration::from_millis(500))
///     .with_idleness(Duration::from_secs(10));
/// assert!(w.has_event_time());
/// assert!(!Watermarks::no_watermarks().has_event_time());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watermarks {
    kind: WatermarkKind,
    idleness: Option<Duration>,
}

impl Watermarks {
    /// `WatermarkStrategy.for_monotonous_timestamps()`.
    pub fn monotonous() -> Self {
        Watermarks {
            kind: WatermarkKind::Monotonous,
            idleness: None,
        }
    }
    /// `WatermarkStrategy.for_bounded_out_of_orderness(max_delay)`.
    pub fn bounded_out_of_orderness(max_delay: Duration) -> Self {
        Watermarks {
            kind: WatermarkKind::BoundedOutOfOrderness(max_delay.as_millis() as i64),
            idleness: None,
        }
    }
    /// `WatermarkStrategy.no_watermarks()`: processing time only.
    pub fn no_watermarks() -> Self {
        Watermarks {
            kind: WatermarkKind::None,
            idleness: None,
        }
    }
    /// `with_idleness(timeout)`: a split that emits no row for `timeout` (processing time)
    /// is marked idle and stops holding back the watermark downstream until it emits again.
    pub fn with_idleness(mut self, timeout: Duration) -> Self {
        self.idleness = Some(timeout);
        self
    }
    /// Whether the stream carries event time.
    pub fn has_event_time(&self) -> bool {
        self.kind != WatermarkKind::None
    }
    /// The strategy's kind.
    pub fn kind(&self) -> WatermarkKind {
        self.kind
    }
    /// The idleness timeout, if any.
    pub fn idleness(&self) -> Option<Duration> {
        self.idleness
    }
}

/// Gives a row its event timestamp (Flink's `TimestampAssigner`). Closures
/// `|row: &T| -> i64` implement it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot assign timestamps to rows of type `{T}`",
    label = "a timestamp assigner takes `&row` and returns its timestamp in milliseconds (`i64`)"
)]
pub trait TimestampAssigner<T>: Clone + Send + 'static {
    /// The timestamp of `row`; `previous` is the one the source gave it, or [`NO_TIMESTAMP`].
    fn timestamp(&mut self, row: &T, previous: Timestamp) -> Timestamp;
}

impl<T, F: FnMut(&T) -> Timestamp + Clone + Send + 'static> TimestampAssigner<T> for F {
    #[inline(always)]
    fn timestamp(&mut self, row: &T, _: Timestamp) -> Timestamp {
        self(row)
    }
}

/// Keeps the source's timestamps (the default when no `.timestamps(..)` is given).
#[derive(Clone, Copy, Debug, Default)]
pub struct SourceTimestamps;

impl<T> TimestampAssigner<T> for SourceTimestamps {
    #[inline(always)]
    fn timestamp(&mut self, _: &T, previous: Timestamp) -> Timestamp {
        previous
    }
}

/// One reader's watermark generator: tracks the largest timestamp and says when to emit.
///
/// A reader of several splits (Kafka partitions) that reports each row's split gets one clock
/// per split, and its watermark follows the slowest split that is not idle (Flink's
/// per-split watermarks): a partition that lags behind does not make its rows late.
#[derive(Debug)]
pub(crate) struct SourceWatermarks {
    kind: WatermarkKind,
    max_ts: Timestamp,
    /// Per split that delivered a row, its clock; empty for a reader that reports no splits.
    splits: Vec<SplitClock>,
    emitted: Timestamp,
    interval: Duration,
    last_emit: Instant,
    idleness: Option<Duration>,
    last_row: Instant,
    idle: bool,
    /// In an instance group: where each named split's own watermark goes, for the
    /// repartition writers of the chain ([`SourceSplits`]), and the source's stage.
    published: Option<(Arc<SourceSplits>, usize)>,
}

impl SourceWatermarks {
    pub(crate) fn new(strategy: &Watermarks, interval: Duration) -> Self {
        let now = Instant::now();
        SourceWatermarks {
            kind: strategy.kind,
            max_ts: MIN_WATERMARK,
            emitted: MIN_WATERMARK,
            interval,
            last_emit: now,
            idleness: strategy.idleness,
            last_row: now,
            idle: false,
            splits: Vec::new(),
            published: None,
        }
    }

    /// Publishes each named split's own watermark to `splits` (the source of stage `stage`
    /// in an instance group), on every watermark interval and every change of its splits.
    pub(crate) fn publish_splits(&mut self, splits: Arc<SourceSplits>, stage: usize) {
        self.published = Some((splits, stage));
    }

    /// The clock of split `split`, made if it is new (off the per-row path).
    fn clock(&mut self, split: usize) -> &mut SplitClock {
        if split >= self.splits.len() {
            self.grow(split);
        }
        &mut self.splits[split]
    }

    /// Split `split` is `id` in every instance of the group.
    pub(crate) fn name_split(&mut self, split: usize, id: u64) {
        let clock = self.clock(split);
        if clock.id != Some(id) {
            clock.id = Some(id);
            self.publish();
        }
    }

    /// Split `split` went to another reader: it holds nothing back here, and is no longer
    /// published (its new reader says what it holds back).
    pub(crate) fn release_split(&mut self, split: usize) {
        self.end_split(split, true);
    }

    /// Publishes the named splits that are not released (see [`SourceSplits`]).
    fn publish(&self) {
        let Some((to, stage)) = &self.published else {
            return;
        };
        let now = Some(Instant::now());
        let splits: Vec<SplitWatermark> = (self.splits.iter())
            .filter(|c| !c.released)
            .filter_map(|c| {
                let id = stage_split(*stage, c.id?);
                let state = if c.done {
                    SplitState::Finished
                } else if c.holds_back(self.idleness, now) {
                    SplitState::Active
                } else {
                    SplitState::Idle
                };
                let watermark = match c.max_ts {
                    MIN_WATERMARK => MIN_WATERMARK,
                    max_ts => self.watermark_after(max_ts).unwrap_or(MIN_WATERMARK),
                };
                Some(SplitWatermark {
                    id,
                    watermark,
                    state,
                })
            })
            .collect();
        to.publish(&splits);
    }

    /// Records the timestamp of a row of split `split`; with a zero interval returns the
    /// watermark to emit now.
    #[inline]
    pub(crate) fn on_split_row(&mut self, split: usize, ts: Timestamp) -> Option<Timestamp> {
        if split >= self.splits.len() {
            self.grow(split);
        }
        let clock = &mut self.splits[split];
        clock.seen = true;
        clock.holds = !clock.done;
        if ts > clock.max_ts {
            clock.max_ts = ts;
        }
        if self.interval.is_zero() && self.active() {
            self.take_advance()
        } else {
            None
        }
    }

    /// Split `split` is read from now on: it holds the watermark back until its rows move it.
    pub(crate) fn start_split(&mut self, split: usize) {
        let clock = self.clock(split);
        clock.holds = !clock.done;
        clock.last_row = Instant::now();
        self.publish();
    }

    /// Split `split`, ended or released, is read again: it holds the watermark back as a
    /// started one (from its last timestamp).
    pub(crate) fn restart_split(&mut self, split: usize) {
        let clock = self.clock(split);
        clock.done = false;
        clock.holds = true;
        clock.released = false;
        clock.last_row = Instant::now();
        self.publish();
    }

    /// Split `split` ended: it holds nothing back any more.
    pub(crate) fn finish_split(&mut self, split: usize) {
        self.end_split(split, false);
    }

    /// Split `split` holds nothing back here any more: it ended, or it was `released` to
    /// another reader.
    fn end_split(&mut self, split: usize, released: bool) {
        let clock = self.clock(split);
        clock.done = true;
        clock.holds = false;
        clock.released = released;
        self.publish();
    }

    #[cold]
    fn grow(&mut self, split: usize) {
        let now = Instant::now();
        // A split holds nothing back until it delivers a row.
        self.splits.resize_with(split + 1, || SplitClock {
            max_ts: MIN_WATERMARK,
            seen: false,
            last_row: now,
            holds: false,
            done: false,
            id: None,
            released: false,
        });
    }

    /// Whether the job has event time here.
    pub(crate) fn active(&self) -> bool {
        self.kind != WatermarkKind::None
    }

    /// Whether each row's timestamp must come through [`SourceWatermarks::on_row`] (a zero
    /// interval: the watermark follows every row); else a batch's newest timestamp may come
    /// through [`SourceWatermarks::saw`] after it.
    pub(crate) fn per_row(&self) -> bool {
        self.interval.is_zero() && self.active()
    }

    /// Records the newest timestamp of rows whose watermark waits for the next interval.
    #[inline]
    pub(crate) fn saw(&mut self, ts: Timestamp) {
        if ts > self.max_ts {
            self.max_ts = ts;
        }
    }

    /// Records a row's timestamp; with a zero interval returns the watermark to emit now.
    #[inline(always)]
    pub(crate) fn on_row(&mut self, ts: Timestamp) -> Option<Timestamp> {
        self.saw(ts);
        if self.interval.is_zero() && self.active() {
            self.take_advance()
        } else {
            None
        }
    }

    /// After a poll: rows were seen or not; returns (watermark to emit, idle status change).
    pub(crate) fn on_poll(&mut self, saw_rows: bool) -> (Option<Timestamp>, Option<bool>) {
        if !self.active() {
            return (None, None);
        }
        let now = Instant::now();
        for clock in &mut self.splits {
            if std::mem::take(&mut clock.seen) {
                clock.last_row = now;
            }
        }
        let mut status = None;
        if saw_rows {
            self.last_row = now;
            if self.idle {
                self.idle = false;
                status = Some(false);
            }
        } else if let Some(timeout) = self.idleness {
            if !self.idle && now.duration_since(self.last_row) >= timeout {
                self.idle = true;
                status = Some(true);
            }
        }
        let wm = if now.duration_since(self.last_emit) >= self.interval {
            self.last_emit = now;
            // Each split's own watermark moves on even when the reader's does not (a split
            // behind the others, taken over from another instance).
            self.publish();
            self.take_advance()
        } else {
            None
        };
        (wm, status)
    }

    /// The largest timestamp the watermark may follow: the reader's, or with splits the
    /// smallest over the splits that are not idle.
    fn progress(&self) -> Timestamp {
        if self.splits.is_empty() {
            return self.max_ts;
        }
        // The clock is read only when idleness is configured (it may be per row).
        let now = self.idleness.map(|_| Instant::now());
        self.splits
            .iter()
            .filter(|c| c.holds_back(self.idleness, now))
            .map(|c| c.max_ts)
            .min()
            // Every split idle: no advance (the reader reports itself idle instead); every
            // split ended: up to the largest timestamp seen.
            .unwrap_or_else(|| {
                if self.splits.iter().all(|c| c.done) {
                    self.splits
                        .iter()
                        .map(|c| c.max_ts)
                        .max()
                        .unwrap_or(MIN_WATERMARK)
                } else {
                    MIN_WATERMARK
                }
            })
    }

    /// The watermark once rows up to `max_ts` came.
    fn watermark_after(&self, max_ts: Timestamp) -> Option<Timestamp> {
        match self.kind {
            WatermarkKind::None => None,
            WatermarkKind::Monotonous => Some(max_ts.saturating_sub(1)),
            WatermarkKind::BoundedOutOfOrderness(d) => {
                Some(max_ts.saturating_sub(d).saturating_sub(1))
            }
        }
    }

    fn take_advance(&mut self) -> Option<Timestamp> {
        let max_ts = self.progress();
        if max_ts == MIN_WATERMARK || max_ts == Timestamp::MAX {
            return None;
        }
        let wm = self.watermark_after(max_ts)?;
        (wm > self.emitted).then(|| {
            self.emitted = wm;
            wm
        })
    }
}

/// The event-time progress of one split of a reader.
#[derive(Debug)]
struct SplitClock {
    max_ts: Timestamp,
    /// Whether a row came since the last poll ended.
    seen: bool,
    last_row: Instant,
    /// Whether it holds the watermark back: it delivered a row and has not ended.
    holds: bool,
    done: bool,
    /// Its name in every instance of the group ([`SourceWatermarks::name_split`]).
    id: Option<u64>,
    /// It went to another reader of the group ([`SourceWatermarks::release_split`]).
    released: bool,
}

impl SplitClock {
    /// Whether it holds the watermark back: it holds, and a row came since the last poll or
    /// within the `idleness` timeout (`now`, read when there is one).
    fn holds_back(&self, idleness: Option<Duration>, now: Option<Instant>) -> bool {
        self.holds
            && (self.seen
                || match (idleness, now) {
                    (Some(t), Some(now)) => now.duration_since(self.last_row) < t,
                    _ => true,
                })
    }
}

/// Wall-clock milliseconds since the Unix epoch: processing time.
pub fn now_millis() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Timestamp)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_watermark_trails_the_largest_timestamp() {
        let w = Watermarks::bounded_out_of_orderness(Duration::from_millis(100));
        let mut g = SourceWatermarks::new(&w, Duration::ZERO);
        assert_eq!(g.on_row(1000), Some(899));
        assert_eq!(
            g.on_row(950),
            None,
            "an older row does not move the watermark"
        );
        assert_eq!(g.on_row(1001), Some(900));
        let mut m = SourceWatermarks::new(&Watermarks::monotonous(), Duration::ZERO);
        assert_eq!(m.on_row(5), Some(4));
    }

    #[test]
    fn each_named_split_s_own_watermark_is_published_and_a_released_one_is_not() {
        let w = Watermarks::bounded_out_of_orderness(Duration::from_millis(100));
        let mut g = SourceWatermarks::new(&w, Duration::from_nanos(1));
        let splits = Arc::new(SourceSplits::default());
        g.publish_splits(splits.clone(), 3);
        let published = |version: &mut u64| {
            let (v, mut s) = splits.changed_since(*version).expect("a new version");
            *version = v;
            s.sort_by_key(|s| s.id);
            s.iter()
                .map(|s| (s.id, s.watermark, s.state))
                .collect::<Vec<_>>()
        };
        let (a, b) = (stage_split(3, 70), stage_split(3, 71));
        let (first, second) = if a < b { (0, 1) } else { (1, 0) };
        let mut v = 0;
        g.name_split(0, 70);
        g.name_split(1, 71);
        g.start_split(0);
        g.start_split(1);
        let both = |wm0, wm1| {
            let mut s = [(a, wm0, SplitState::Active), (b, wm1, SplitState::Active)];
            s.sort_by_key(|s| s.0);
            s.to_vec()
        };
        assert_eq!(published(&mut v), both(MIN_WATERMARK, MIN_WATERMARK));
        g.on_split_row(0, 5000);
        g.on_split_row(1, 2000);
        assert_eq!(g.on_poll(true).0, Some(1899), "the slowest split's");
        assert_eq!(published(&mut v), both(4899, 1899), "each split's own");
        g.on_split_row(1, 3000);
        g.on_split_row(0, 4000);
        g.on_poll(true);
        assert_eq!(published(&mut v), both(4899, 2899));
        g.on_split_row(0, 6000);
        assert_eq!(g.on_poll(true).0, None, "held back by split 1");
        assert_eq!(published(&mut v), both(5899, 2899), "split 0 moved on");
        // Split 1 goes to another instance: what was published of it last stands there.
        g.release_split(1);
        assert_eq!(published(&mut v), vec![(a, 5899, SplitState::Active)]);
        g.restart_split(1);
        let again = published(&mut v);
        assert_eq!(
            again[second],
            (b, 2899, SplitState::Active),
            "back, as it was"
        );
        g.finish_split(0);
        assert_eq!(published(&mut v)[first], (a, 5899, SplitState::Finished));
    }

    #[test]
    fn periodic_emission_waits_for_the_interval() {
        let mut g = SourceWatermarks::new(&Watermarks::monotonous(), Duration::from_secs(3600));
        assert_eq!(g.on_row(10), None);
        assert_eq!(g.on_poll(true), (None, None));
    }

    #[test]
    fn the_watermark_follows_the_slowest_split() {
        let mut g = SourceWatermarks::new(&Watermarks::monotonous(), Duration::ZERO);
        assert_eq!(g.on_split_row(1, 10), Some(9));
        assert_eq!(g.on_split_row(0, 1000), None, "held back by split 1");
        assert_eq!(g.on_split_row(1, 500), Some(499));
        assert_eq!(
            g.on_split_row(1, 3000),
            Some(999),
            "now split 0 is the slowest"
        );
        assert_eq!(g.on_split_row(0, 2000), Some(1999));
        g.finish_split(0);
        assert_eq!(g.on_split_row(1, 4000), Some(3999), "split 0 ended");
    }

    #[test]
    fn a_started_split_holds_the_watermark_back_before_its_first_row() {
        let mut g = SourceWatermarks::new(&Watermarks::monotonous(), Duration::ZERO);
        g.start_split(0);
        g.start_split(1);
        assert_eq!(g.on_split_row(0, 1000), None, "split 1 has no row yet");
        assert_eq!(g.on_split_row(1, 10), Some(9));
    }

    #[test]
    fn an_idle_split_does_not_hold_the_watermark_back() {
        let w = Watermarks::monotonous().with_idleness(Duration::from_millis(1));
        let mut g = SourceWatermarks::new(&w, Duration::ZERO);
        assert_eq!(g.on_split_row(0, 10), Some(9));
        g.on_poll(true);
        assert_eq!(g.on_split_row(1, 1000), None);
        g.on_poll(true);
        std::thread::sleep(Duration::from_millis(3));
        assert_eq!(
            g.on_split_row(1, 1001),
            Some(1000),
            "split 0 went quiet for longer than the idleness timeout"
        );
    }

    #[test]
    fn a_quiet_split_turns_idle_and_back() {
        let w = Watermarks::monotonous().with_idleness(Duration::from_millis(1));
        let mut g = SourceWatermarks::new(&w, Duration::from_secs(3600));
        std::thread::sleep(Duration::from_millis(3));
        assert_eq!(g.on_poll(false).1, Some(true));
        assert_eq!(g.on_poll(false).1, None);
        assert_eq!(g.on_poll(true).1, Some(false));
    }
}
