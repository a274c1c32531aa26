//! `window` / `window_all` / `count_window`, with `reduce`, `aggregate` or `process`: groups a
//! keyed stream's rows into windows and emits one result per key and window when the window
//! closes (Flink's `WindowedStream` with its default triggers).
//!
//! - Event-time windows close when the watermark passes their end; rows later than that (plus
//!   `allowed_lateness`) are late: dropped and counted in the job result. A row that arrives
//!   after its window fired but within the allowed lateness updates the window, which fires
//!   again with the new result (Flink's `EventTimeTrigger`). A session row is late only when
//!   the session it merges into is: its own `[t, t + gap)` may have ended behind the
//!   watermark while it falls into, or extends, a session still open.
//! - Processing-time windows use the wall clock when a row arrives, and close when the clock
//!   passes their end (checked after every input batch and at least every 50 ms).
//! - Count windows fire every `slide` rows of a key over its last `size` rows; an incomplete
//!   count window never fires (as in Flink, also at the end of input).
//! - At the end of a bounded input every open time window fires (the final watermark), so
//!   batch mode gives the streaming results' final values.
//!
//! Results carry the window's last millisecond (`end - 1`) as their timestamp.

use super::{Operator, Output};
use crate::chain::Snapshot;
use crate::context::RuntimeContext;
use crate::exec::{CheckpointId, TaskMetrics};
use crate::function::{Key, KeySelector};
use crate::operator::side_output::{OutputTag, SideOutputs};
use crate::port::Stream;
use crate::snapshot::{StateData, StateReader, StateWriter};
use crate::state::panes::Panes;
use crate::state::timers::Timers;
use crate::state::KeyedState;
use crate::time::{now_millis, Timestamp, MAX_WATERMARK, MIN_WATERMARK, NO_TIMESTAMP};
use crate::{Error, Result};
use std::collections::VecDeque;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A window `[start, end)` in milliseconds.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct TimeWindow {
    /// First millisecond in the window.
    pub start: Timestamp,
    /// First millisecond after the window.
    pub end: Timestamp,
}

impl crate::snapshot::StateSchema for TimeWindow {
    const FINGERPRINT: u64 =
        crate::snapshot::record(&[Timestamp::FINGERPRINT, Timestamp::FINGERPRINT]);
}

impl TimeWindow {
    /// The last millisecond in the window: the timestamp of its result.
    pub fn max_timestamp(&self) -> Timestamp {
        self.end - 1
    }
    fn intersects(&self, other: &TimeWindow) -> bool {
        self.start <= other.end && self.end >= other.start
    }
    fn cover(&self, other: &TimeWindow) -> TimeWindow {
        TimeWindow {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// The one window of count windows (Flink's `GlobalWindow`): it has no bounds in time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GlobalWindow;

/// What a window function's window parameter is: [`TimeWindow`] after `window` and
/// `window_all`, [`GlobalWindow`] after `count_window`.
pub trait WindowType: Copy + Send + 'static {
    /// The window of an operator's (time-ranged) window.
    fn of(window: &TimeWindow) -> Self;
}

impl WindowType for TimeWindow {
    #[inline(always)]
    fn of(window: &TimeWindow) -> Self {
        *window
    }
}

impl WindowType for GlobalWindow {
    #[inline(always)]
    fn of(_: &TimeWindow) -> Self {
        GlobalWindow
    }
}

/// A closure over the window as its kind `W` ([`TimeWindow`], [`GlobalWindow`]): `|key,
/// window, rows, out|` and `|key, window, result, out|`, or without the key after
/// `window_all` ([`NoKey`]).
pub struct Typed<F, W>(pub F, pub std::marker::PhantomData<fn() -> W>);

impl<F: Clone, W> Clone for Typed<F, W> {
    fn clone(&self) -> Self {
        Typed(self.0.clone(), std::marker::PhantomData)
    }
}

/// A `window_all` function: it takes no key (there is none).
#[derive(Clone)]
pub struct NoKey<F>(pub F);

/// How rows are grouped into windows: the argument of `window`, `window_all` or
/// `count_window`. Build it with the assigner types named as in Flink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Windows {
    /// Fixed-size, non-overlapping windows.
    Tumbling {
        /// Window length in ms.
        size: i64,
        /// Offset of the window starts from the epoch, in ms.
        offset: i64,
        /// Event time (`true`) or processing time.
        event_time: bool,
    },
    /// Fixed-size windows starting every `slide`.
    Sliding {
        /// Window length in ms.
        size: i64,
        /// Distance between window starts, in ms.
        slide: i64,
        /// Offset of the window starts from the epoch, in ms.
        offset: i64,
        /// Event time (`true`) or processing time.
        event_time: bool,
    },
    /// Windows of activity separated by gaps of at least `gap`.
    Session {
        /// The inactivity gap in ms.
        gap: i64,
        /// Event time (`true`) or processing time.
        event_time: bool,
    },
    /// The last `size` rows of a key, every `slide` rows.
    Count {
        /// Rows per window.
        size: u64,
        /// Rows between firings.
        slide: u64,
    },
}

fn millis(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// Tumbling event-time windows (Flink's `TumblingEventTimeWindows`).
pub struct TumblingEventTimeWindows;
impl TumblingEventTimeWindows {
    /// Windows of `size`.
    pub fn of(size: Duration) -> Windows {
        Windows::Tumbling {
            size: millis(size),
            offset: 0,
            event_time: true,
        }
    }
    /// Windows of `size`, starting `offset` after the epoch's multiples of `size`.
    pub fn of_with_offset(size: Duration, offset: Duration) -> Windows {
        Windows::Tumbling {
            size: millis(size),
            offset: millis(offset),
            event_time: true,
        }
    }
}
/// Tumbling processing-time windows (Flink's `TumblingProcessingTimeWindows`).
pub struct TumblingProcessingTimeWindows;
impl TumblingProcessingTimeWindows {
    /// Windows of `size`.
    pub fn of(size: Duration) -> Windows {
        Windows::Tumbling {
            size: millis(size),
            offset: 0,
            event_time: false,
        }
    }
}
/// Sliding event-time windows (Flink's `SlidingEventTimeWindows`).
pub struct SlidingEventTimeWindows;
impl SlidingEventTimeWindows {
    /// Windows of `size` starting every `slide`.
    pub fn of(size: Duration, slide: Duration) -> Windows {
        Windows::Sliding {
            size: millis(size),
            slide: millis(slide),
            offset: 0,
            event_time: true,
        }
    }
}
/// Sliding processing-time windows (Flink's `SlidingProcessingTimeWindows`).
pub struct SlidingProcessingTimeWindows;
impl SlidingProcessingTimeWindows {
    /// Windows of `size` starting every `slide`.
    pub fn of(size: Duration, slide: Duration) -> Windows {
        Windows::Sliding {
            size: millis(size),
            slide: millis(slide),
            offset: 0,
            event_time: false,
        }
    }
}
/// Event-time session windows (Flink's `EventTimeSessionWindows`).
pub struct EventTimeSessionWindows;
impl EventTimeSessionWindows {
    /// Sessions separated by at least `gap` without rows.
    pub fn with_gap(gap: Duration) -> Windows {
        Windows::Session {
            gap: millis(gap),
            event_time: true,
        }
    }
}
/// Processing-time session windows (Flink's `ProcessingTimeSessionWindows`).
pub struct ProcessingTimeSessionWindows;
impl ProcessingTimeSessionWindows {
    /// Sessions separated by at least `gap` without rows.
    pub fn with_gap(gap: Duration) -> Windows {
        Windows::Session {
            gap: millis(gap),
            event_time: false,
        }
    }
}

impl Windows {
    /// Count windows: the last `size` rows, every `slide` rows (`slide == size`: tumbling).
    pub fn count(size: u64, slide: u64) -> Windows {
        Windows::Count { size, slide }
    }

    /// Whether the windows follow event time.
    pub fn is_event_time(&self) -> bool {
        match self {
            Windows::Tumbling { event_time, .. }
            | Windows::Sliding { event_time, .. }
            | Windows::Session { event_time, .. } => *event_time,
            Windows::Count { .. } => false,
        }
    }

    /// Checks sizes, slides and gaps: all must be positive.
    ///
    /// # Errors
    /// [`Error::Config`] naming the operator and the bad value.
    pub fn validate(&self, operator: &str) -> Result<()> {
        let bad = |what: &str, v: i128| {
            Err(Error::Config(format!(
                "`{operator}`: the window {what} must be positive, got {v}"
            )))
        };
        match *self {
            Windows::Tumbling { size, .. } if size <= 0 => bad("size", size as i128),
            Windows::Sliding { size, .. } if size <= 0 => bad("size", size as i128),
            Windows::Sliding { slide, .. } if slide <= 0 => bad("slide", slide as i128),
            Windows::Session { gap, .. } if gap <= 0 => bad("gap", gap as i128),
            Windows::Count { size: 0, .. } => bad("size", 0),
            Windows::Count { slide: 0, .. } => bad("slide", 0),
            _ => Ok(()),
        }
    }

    /// The fixed windows `t` falls into, appended to `out`.
    pub(crate) fn assign(&self, t: Timestamp, out: &mut Vec<TimeWindow>) {
        match *self {
            Windows::Tumbling { size, offset, .. } => {
                let start = t - (t - offset).rem_euclid(size);
                out.push(TimeWindow {
                    start,
                    end: start + size,
                });
            }
            Windows::Sliding {
                size,
                slide,
                offset,
                ..
            } => {
                let last = t - (t - offset).rem_euclid(slide);
                let mut start = last;
                while start > t - size {
                    out.push(TimeWindow {
                        start,
                        end: start + size,
                    });
                    start -= slide;
                }
            }
            Windows::Session { gap, .. } => out.push(TimeWindow {
                start: t,
                end: t + gap,
            }),
            Windows::Count { .. } => {}
        }
    }
}

/// What a window function sees besides the window's rows or result (Flink's
/// `ProcessWindowFunction.Context`): the window, the watermark and the clock, state kept per
/// key across windows (`G`) and per key and window (`P`), and the side outputs. A closure
/// gets it by naming it as its second parameter: `|key, ctx: &mut WindowContext<'_>, rows,
/// out| ..`, or with state `WindowContext<'_, Global, PerWindow>`.
pub struct WindowContext<'a, G = (), P = ()> {
    window: TimeWindow,
    watermark: Timestamp,
    global: &'a mut G,
    per_window: &'a mut P,
    side: &'a mut dyn SideOutputs,
}

impl<G, P> WindowContext<'_, G, P> {
    /// The window whose result this is.
    pub fn window(&self) -> &TimeWindow {
        &self.window
    }
    /// The operator's current event-time watermark (the lowest possible before the first).
    pub fn current_watermark(&self) -> Timestamp {
        self.watermark
    }
    /// The wall clock, in milliseconds since the epoch.
    pub fn current_processing_time(&self) -> Timestamp {
        now_millis()
    }
    /// The key's state across all its windows (Flink's `globalState()`), `G::default()` at
    /// first; saved in checkpoints.
    pub fn global_state(&mut self) -> &mut G {
        self.global
    }
    /// The state of this key and window (Flink's `windowState()`), `P::default()` at first;
    /// kept across the window's firings (late rows within the allowed lateness fire it again)
    /// and dropped with the window; saved in checkpoints. Not with session windows, whose
    /// windows merge (as in Flink): such a job fails when it starts.
    pub fn window_state(&mut self) -> &mut P {
        self.per_window
    }
    /// Emits `row` to the side output `tag` (read with `.side_output(&tag)` after the window
    /// in `flow!`) with the window's last millisecond as its timestamp; dropped when nothing
    /// reads that tag.
    pub fn output<T: 'static>(&mut self, tag: &OutputTag<T>, row: T) {
        let mut slot = Some(row);
        self.side
            .emit(tag.id(), &mut slot, self.window.max_timestamp());
    }
}

/// The bounds of the state a window function keeps through its [`WindowContext`]: saved in
/// checkpoints, and copied on write as keyed state is.
pub trait WindowState: Default + Clone + Send + Sync + StateData {}
impl<T: Default + Clone + Send + Sync + StateData> WindowState for T {}

/// A window function that takes a [`WindowContext`] (`G` and `P` its state types): what the
/// macro wraps a closure whose second parameter is a `&mut WindowContext` in.
pub struct WithWindowContext<F, G, P>(pub F, pub std::marker::PhantomData<fn() -> (G, P)>);

impl<F: Clone, G, P> Clone for WithWindowContext<F, G, P> {
    fn clone(&self) -> Self {
        WithWindowContext(self.0.clone(), std::marker::PhantomData)
    }
}

/// What a window computes: `reduce`, `aggregate` or `process` as an accumulator.
pub trait WindowFunction<K, T>: Clone + Send + 'static {
    /// The per-window accumulator (copied at checkpoints).
    type Acc: Clone + Send + 'static;
    /// The result row type.
    type Out: Send + 'static;
    /// The state kept per key across windows (`()`: none).
    type Global: WindowState;
    /// The state kept per key and window (`()`: none).
    type PerWindow: WindowState;
    /// Whether `emit` may use its context beyond the window (state, side outputs): if not,
    /// a window's results are emitted together.
    const CONTEXT: bool = true;
    /// An empty accumulator.
    fn create(&mut self) -> Self::Acc;
    /// Adds a row.
    fn add(&mut self, acc: &mut Self::Acc, row: T);
    /// Merges two accumulators (session windows).
    fn merge(&mut self, a: Self::Acc, b: Self::Acc) -> Self::Acc;
    /// The results of a window (`ctx.window()`).
    fn emit(
        &mut self,
        key: &K,
        ctx: &mut WindowContext<'_, Self::Global, Self::PerWindow>,
        acc: &Self::Acc,
        out: &mut Vec<Self::Out>,
    );
}

/// `aggregate`'s function: an accumulator with create/add/get_result/merge (Flink's
/// `AggregateFunction`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot aggregate rows of type `{In}`",
    label = "an aggregate function implements `AggregateFunction<Row>`"
)]
pub trait AggregateFunction<In>: Clone + Send + 'static {
    /// The accumulator.
    type Acc: Clone + Send + 'static;
    /// The result.
    type Out: Send + 'static;
    /// A new, empty accumulator.
    fn create_accumulator(&mut self) -> Self::Acc;
    /// Adds a row to the accumulator.
    fn add(&mut self, value: In, acc: &mut Self::Acc);
    /// The result for an accumulator.
    fn get_result(&mut self, acc: &Self::Acc) -> Self::Out;
    /// Merges two accumulators (session windows).
    fn merge(&mut self, a: Self::Acc, b: Self::Acc) -> Self::Acc;
}

/// `process`'s function: every row of the window at once, with its key and bounds (Flink's
/// `ProcessWindowFunction`), emitting rows of type `Out`. Closures and fns
/// `|key, window, rows, out| ..` are ones, and closures `|key, ctx, rows, out| ..` whose `ctx`
/// is a `&mut WindowContext`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot process windows of rows of type `{In}` keyed by `{K}`",
    label = "a window process function takes `(&key, &TimeWindow, &[row], &mut Vec<out>)`"
)]
pub trait ProcessWindowFunction<K, In, Out>: Clone + Send + 'static {
    /// The state kept per key across windows.
    type Global: WindowState;
    /// The state kept per key and window.
    type PerWindow: WindowState;
    /// Whether it may use its context beyond the window (state, side outputs).
    const CONTEXT: bool = true;
    /// Emits the results of one window into `out`.
    fn process(
        &mut self,
        key: &K,
        ctx: &mut WindowContext<'_, Self::Global, Self::PerWindow>,
        rows: &[In],
        out: &mut Vec<Out>,
    );
}

impl<K, In, O, F> ProcessWindowFunction<K, In, O> for F
where
    F: FnMut(&K, &TimeWindow, &[In], &mut Vec<O>) + Clone + Send + 'static,
{
    type Global = ();
    type PerWindow = ();
    const CONTEXT: bool = false;
    fn process(&mut self, key: &K, ctx: &mut WindowContext<'_>, rows: &[In], out: &mut Vec<O>) {
        self(key, ctx.window(), rows, out)
    }
}

impl<K, In, O, F, G: WindowState, P: WindowState> ProcessWindowFunction<K, In, O>
    for WithWindowContext<F, G, P>
where
    F: FnMut(&K, &mut WindowContext<'_, G, P>, &[In], &mut Vec<O>) + Clone + Send + 'static,
{
    type Global = G;
    type PerWindow = P;
    fn process(
        &mut self,
        key: &K,
        ctx: &mut WindowContext<'_, G, P>,
        rows: &[In],
        out: &mut Vec<O>,
    ) {
        (self.0)(key, ctx, rows, out)
    }
}

impl<K, In, O, F, W> ProcessWindowFunction<K, In, O> for Typed<F, W>
where
    F: FnMut(&K, &W, &[In], &mut Vec<O>) + Clone + Send + 'static,
    W: WindowType,
{
    type Global = ();
    type PerWindow = ();
    const CONTEXT: bool = false;
    fn process(&mut self, key: &K, ctx: &mut WindowContext<'_>, rows: &[In], out: &mut Vec<O>) {
        (self.0)(key, &W::of(ctx.window()), rows, out)
    }
}

impl<In, O, F, W> ProcessWindowFunction<(), In, O> for NoKey<Typed<F, W>>
where
    F: FnMut(&W, &[In], &mut Vec<O>) + Clone + Send + 'static,
    W: WindowType,
{
    type Global = ();
    type PerWindow = ();
    const CONTEXT: bool = false;
    fn process(&mut self, _: &(), ctx: &mut WindowContext<'_>, rows: &[In], out: &mut Vec<O>) {
        (self.0 .0)(&W::of(ctx.window()), rows, out)
    }
}

impl<In, O, F, G: WindowState, P: WindowState> ProcessWindowFunction<(), In, O>
    for NoKey<WithWindowContext<F, G, P>>
where
    F: FnMut(&mut WindowContext<'_, G, P>, &[In], &mut Vec<O>) + Clone + Send + 'static,
{
    type Global = G;
    type PerWindow = P;
    fn process(
        &mut self,
        _: &(),
        ctx: &mut WindowContext<'_, G, P>,
        rows: &[In],
        out: &mut Vec<O>,
    ) {
        (self.0 .0)(ctx, rows, out)
    }
}

/// A window `reduce`.
#[derive(Clone)]
pub struct WindowReduce<F>(pub F);

impl<K, T: Clone + Send + 'static, F: crate::function::ReduceFunction<T>> WindowFunction<K, T>
    for WindowReduce<F>
{
    type Acc = Option<T>;
    type Out = T;
    type Global = ();
    type PerWindow = ();
    const CONTEXT: bool = false;
    fn create(&mut self) -> Option<T> {
        None
    }
    #[inline]
    fn add(&mut self, acc: &mut Option<T>, row: T) {
        *acc = Some(match acc.take() {
            Some(prev) => self.0.reduce(prev, row),
            None => row,
        });
    }
    fn merge(&mut self, a: Option<T>, b: Option<T>) -> Option<T> {
        match (a, b) {
            (Some(a), Some(b)) => Some(self.0.reduce(a, b)),
            (a, b) => a.or(b),
        }
    }
    fn emit(&mut self, _: &K, _: &mut WindowContext<'_>, acc: &Option<T>, out: &mut Vec<T>) {
        out.extend(acc.iter().cloned());
    }
}

/// What a window `aggregate` makes of a key's and window's result: the result itself
/// ([`AsIs`], `aggregate(f)`), or what a closure `|key, window, result, out| ..` emits for it
/// (`aggregate(f, window_fn)`: Flink's `aggregate(AggregateFunction, ProcessWindowFunction)`).
pub trait ResultFunction<K, R, O>: Clone + Send + 'static {
    /// The state kept per key across windows.
    type Global: WindowState;
    /// The state kept per key and window.
    type PerWindow: WindowState;
    /// Whether it may use its context beyond the window (state, side outputs).
    const CONTEXT: bool = true;
    /// Emits the rows for `result`, the aggregate of `key` in `ctx.window()`.
    fn emit(
        &mut self,
        key: &K,
        ctx: &mut WindowContext<'_, Self::Global, Self::PerWindow>,
        result: R,
        out: &mut Vec<O>,
    );
}

/// `aggregate(f)`: each result as it is.
#[derive(Clone, Copy, Debug)]
pub struct AsIs;

impl<K, R> ResultFunction<K, R, R> for AsIs {
    type Global = ();
    type PerWindow = ();
    const CONTEXT: bool = false;
    #[inline]
    fn emit(&mut self, _: &K, _: &mut WindowContext<'_>, result: R, out: &mut Vec<R>) {
        out.push(result);
    }
}

impl<K, R, O, F> ResultFunction<K, R, O> for F
where
    F: FnMut(&K, &TimeWindow, R, &mut Vec<O>) + Clone + Send + 'static,
{
    type Global = ();
    type PerWindow = ();
    const CONTEXT: bool = false;
    #[inline]
    fn emit(&mut self, key: &K, ctx: &mut WindowContext<'_>, result: R, out: &mut Vec<O>) {
        self(key, ctx.window(), result, out)
    }
}

impl<K, R, O, F, G: WindowState, P: WindowState> ResultFunction<K, R, O>
    for WithWindowContext<F, G, P>
where
    F: FnMut(&K, &mut WindowContext<'_, G, P>, R, &mut Vec<O>) + Clone + Send + 'static,
{
    type Global = G;
    type PerWindow = P;
    #[inline]
    fn emit(&mut self, key: &K, ctx: &mut WindowContext<'_, G, P>, result: R, out: &mut Vec<O>) {
        (self.0)(key, ctx, result, out)
    }
}

impl<K, R, O, F, W> ResultFunction<K, R, O> for Typed<F, W>
where
    F: FnMut(&K, &W, R, &mut Vec<O>) + Clone + Send + 'static,
    W: WindowType,
{
    type Global = ();
    type PerWindow = ();
    const CONTEXT: bool = false;
    #[inline]
    fn emit(&mut self, key: &K, ctx: &mut WindowContext<'_>, result: R, out: &mut Vec<O>) {
        (self.0)(key, &W::of(ctx.window()), result, out)
    }
}

impl<R, O, F, W> ResultFunction<(), R, O> for NoKey<Typed<F, W>>
where
    F: FnMut(&W, R, &mut Vec<O>) + Clone + Send + 'static,
    W: WindowType,
{
    type Global = ();
    type PerWindow = ();
    const CONTEXT: bool = false;
    #[inline]
    fn emit(&mut self, _: &(), ctx: &mut WindowContext<'_>, result: R, out: &mut Vec<O>) {
        (self.0 .0)(&W::of(ctx.window()), result, out)
    }
}

impl<R, O, F, G: WindowState, P: WindowState> ResultFunction<(), R, O>
    for NoKey<WithWindowContext<F, G, P>>
where
    F: FnMut(&mut WindowContext<'_, G, P>, R, &mut Vec<O>) + Clone + Send + 'static,
{
    type Global = G;
    type PerWindow = P;
    #[inline]
    fn emit(&mut self, _: &(), ctx: &mut WindowContext<'_, G, P>, result: R, out: &mut Vec<O>) {
        (self.0 .0)(ctx, result, out)
    }
}

/// A window `aggregate`: the rows are aggregated as they come (one accumulator per key and
/// window), and each result goes through `W` (see [`ResultFunction`]).
pub struct WindowAggregate<A, W, O>(pub A, pub W, pub std::marker::PhantomData<fn() -> O>);

impl<A: Clone, W: Clone, O> Clone for WindowAggregate<A, W, O> {
    fn clone(&self) -> Self {
        WindowAggregate(self.0.clone(), self.1.clone(), std::marker::PhantomData)
    }
}

impl<K, T, A, W, O> WindowFunction<K, T> for WindowAggregate<A, W, O>
where
    A: AggregateFunction<T>,
    W: ResultFunction<K, A::Out, O>,
    O: Send + 'static,
{
    type Acc = A::Acc;
    type Out = O;
    type Global = W::Global;
    type PerWindow = W::PerWindow;
    const CONTEXT: bool = W::CONTEXT;
    fn create(&mut self) -> A::Acc {
        self.0.create_accumulator()
    }
    #[inline]
    fn add(&mut self, acc: &mut A::Acc, row: T) {
        self.0.add(row, acc);
    }
    fn merge(&mut self, a: A::Acc, b: A::Acc) -> A::Acc {
        self.0.merge(a, b)
    }
    fn emit(
        &mut self,
        key: &K,
        ctx: &mut WindowContext<'_, W::Global, W::PerWindow>,
        acc: &A::Acc,
        out: &mut Vec<O>,
    ) {
        let result = self.0.get_result(acc);
        self.1.emit(key, ctx, result, out);
    }
}

/// A window `process`: keeps every row of the window.
pub struct WindowProcess<F, O>(pub F, pub std::marker::PhantomData<fn() -> O>);

impl<F: Clone, O> Clone for WindowProcess<F, O> {
    fn clone(&self) -> Self {
        WindowProcess(self.0.clone(), std::marker::PhantomData)
    }
}

impl<K, T, O, F> WindowFunction<K, T> for WindowProcess<F, O>
where
    T: Clone + Send + 'static,
    O: Send + 'static,
    F: ProcessWindowFunction<K, T, O>,
{
    type Acc = Vec<T>;
    type Out = O;
    type Global = F::Global;
    type PerWindow = F::PerWindow;
    const CONTEXT: bool = F::CONTEXT;
    fn create(&mut self) -> Vec<T> {
        Vec::new()
    }
    #[inline]
    fn add(&mut self, acc: &mut Vec<T>, row: T) {
        acc.push(row);
    }
    fn merge(&mut self, mut a: Vec<T>, b: Vec<T>) -> Vec<T> {
        a.extend(b);
        a
    }
    fn emit(
        &mut self,
        key: &K,
        ctx: &mut WindowContext<'_, F::Global, F::PerWindow>,
        acc: &Vec<T>,
        out: &mut Vec<O>,
    ) {
        self.0.process(key, ctx, acc, out);
    }
}

/// The key of `window_all`: every row in one group.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllRows;

impl<T> KeySelector<T> for AllRows {
    type Key = ();
    #[inline(always)]
    fn key(&self, _: &T) {}
}

/// A count window's rows of one key.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct CountPane<T> {
    rows: VecDeque<T>,
    since_fire: u64,
}

/// How many results of a firing window a function without context emits at a time
/// ([`Window::emit_pane`]): a buffer that stays in the first-level cache.
const EMIT_CHUNK: usize = 256;

/// A result held in batch mode: (key's sort bytes, window end, window start, row, timestamp).
type Held<O> = (Vec<u8>, Timestamp, Timestamp, O, Timestamp);

/// The window operator: rows `T` keyed by `key`, grouped by `windows`, computed by `f`.
pub struct Window<KS, K, F: WindowFunction<K, T>, T> {
    key: KS,
    windows: Windows,
    lateness: i64,
    f: F,
    event_time: bool,
    /// Fixed (tumbling, sliding) windows by (end, start), each with its keys' accumulators:
    /// the order is the firing order, so fixed windows need no timers.
    fixed: Panes<K, F::Acc>,
    /// Session windows per key, sorted by start.
    sessions: KeyedState<K, Vec<(TimeWindow, F::Acc)>>,
    counts: KeyedState<K, CountPane<T>>,
    /// When to fire (`false`) or drop (`true`) a session's state. Not saved in checkpoints:
    /// a checkpoint derives them from the sessions and `advanced`.
    timers: Timers<(K, TimeWindow, bool)>,
    /// The latest time the windows were advanced to (the watermark, or the wall clock for
    /// processing time): every session that ends by it has fired.
    advanced: Timestamp,
    /// The function's state per key across windows ([`WindowContext::global_state`]).
    global: KeyedState<K, F::Global>,
    /// The function's state per key and window ([`WindowContext::window_state`]).
    per_window: KeyedState<(K, TimeWindow), F::PerWindow>,
    watermark: Timestamp,
    /// What a row's window is late against: the watermark in event-time windows, the start
    /// of time in processing-time ones (never late, whatever watermark passes: a gate may pass
    /// on the largest while an idle input is still open). One compare per row.
    late_clock: Timestamp,
    /// The tumbling window of the last row (empty at first).
    tumbling: TimeWindow,
    /// When `tumbling` closes for good ([`Window::expires`]), computed with it.
    tumbling_expires: Timestamp,
    assigned: Vec<TimeWindow>,
    buf: Vec<F::Out>,
    late: u64,
    error: Option<Error>,
    /// The side output late rows go to (`side_output_late_data`); dropped and counted without.
    late_tag: Option<String>,
    name: &'static str,
    /// Batch mode: the results are held until the end of input, to be emitted by key.
    batch: bool,
    /// Batch mode's results, until the end of input.
    held: Vec<Held<F::Out>>,
}

impl<KS, K, F, T> Window<KS, K, F, T>
where
    K: Hash + Eq + Clone + serde::Serialize,
    F: WindowFunction<K, T>,
{
    /// The disk state backend's first error, if a row met one.
    fn check_state(&mut self) -> Result<()> {
        self.fixed.check()?;
        self.timers.check()?;
        self.sessions.check()?;
        self.counts.check()?;
        self.global.check()?;
        self.per_window.check()
    }

    /// A window operator keyed by `key`; late rows go to the side output `late_tag` if given.
    /// Sizes are checked when it opens.
    pub fn new(
        key: KS,
        windows: Windows,
        allowed_lateness: Duration,
        f: F,
        late_tag: Option<String>,
    ) -> Self {
        Window {
            key,
            event_time: windows.is_event_time(),
            windows,
            lateness: millis(allowed_lateness),
            f,
            fixed: Panes::default(),
            sessions: KeyedState::default(),
            counts: KeyedState::default(),
            timers: Timers::fifo(),
            advanced: MIN_WATERMARK,
            global: KeyedState::default(),
            per_window: KeyedState::default(),
            watermark: MIN_WATERMARK,
            late_clock: MIN_WATERMARK,
            tumbling: TimeWindow { start: 0, end: 0 },
            tumbling_expires: Timestamp::MIN,
            assigned: Vec::new(),
            buf: Vec::new(),
            late: 0,
            error: None,
            late_tag,
            name: "window",
            batch: false,
            held: Vec::new(),
        }
    }

    fn emit(&mut self, key: &K, window: &TimeWindow, acc: &F::Acc, out: &mut impl Output<F::Out>) {
        self.emit_at(key, window, acc, window.max_timestamp(), out);
    }

    /// Calls the function for `key`'s `window` with its context, and emits its rows at `ts`.
    fn emit_at(
        &mut self,
        key: &K,
        window: &TimeWindow,
        acc: &F::Acc,
        ts: Timestamp,
        out: &mut impl Output<F::Out>,
    ) {
        // Functions without state (zero-sized `()`) look nothing up.
        let (mut no_global, mut no_window_state) = Default::default();
        let global = if std::mem::size_of::<F::Global>() == 0 {
            &mut no_global
        } else {
            self.global.get_or_default(key.clone())
        };
        let per_window = if std::mem::size_of::<F::PerWindow>() == 0 {
            &mut no_window_state
        } else {
            self.per_window.get_or_default((key.clone(), *window))
        };
        let mut ctx = WindowContext {
            window: *window,
            watermark: self.watermark,
            global,
            per_window,
            side: out.side_outputs(),
        };
        self.f.emit(key, &mut ctx, acc, &mut self.buf);
        if self.batch && !self.buf.is_empty() {
            let sort_key = crate::sort_key::sort_key(key);
            for row in self.buf.drain(..) {
                self.held
                    .push((sort_key.clone(), window.end, window.start, row, ts));
            }
        } else {
            out.emit_all(&mut self.buf, ts);
        }
    }

    /// Calls the function for every key of a `window` that fires, and emits its rows.
    fn emit_pane(
        &mut self,
        entries: &[(K, F::Acc)],
        window: &TimeWindow,
        out: &mut impl Output<F::Out>,
    ) {
        // (A function that says it sees nothing of its context but keeps state, as a user's
        // own `WindowFunction` could, gets its state looked up per key all the same.)
        let state =
            std::mem::size_of::<F::Global>() != 0 || std::mem::size_of::<F::PerWindow>() != 0;
        if F::CONTEXT || state || self.batch {
            for (key, acc) in entries {
                self.emit(key, window, acc, out);
            }
            return;
        }
        // A function that sees nothing of its context (no state, no side output): one
        // context for the window, its rows emitted a chunk at a time.
        let ts = window.max_timestamp();
        for chunk in entries.chunks(EMIT_CHUNK) {
            let (mut global, mut per_window) = Default::default();
            let mut ctx = WindowContext {
                window: *window,
                watermark: self.watermark,
                global: &mut global,
                per_window: &mut per_window,
                side: out.side_outputs(),
            };
            for (key, acc) in chunk {
                self.f.emit(key, &mut ctx, acc, &mut self.buf);
            }
            out.emit_all(&mut self.buf, ts);
        }
    }

    /// A row too late for all of its windows: to the late side output, or dropped and counted.
    #[inline(never)]
    fn on_late(&mut self, row: T, ts: Timestamp, out: &mut impl Output<F::Out>)
    where
        T: 'static,
    {
        match &self.late_tag {
            Some(tag) => out.emit_to(tag, row, ts),
            None => self.late += 1,
        }
    }

    fn timer(&mut self, at: Timestamp, key: K, window: TimeWindow, cleanup: bool) {
        self.timers.add(&(key, window, cleanup), at);
    }

    /// The watermark is `watermark` now, and with it the clock rows are late against.
    fn set_watermark(&mut self, watermark: Timestamp) {
        self.watermark = watermark;
        self.late_clock = match self.event_time {
            true => watermark,
            false => MIN_WATERMARK,
        };
    }

    /// Whether a window closes for good (its state may go) by `time`.
    fn expired(&self, w: &TimeWindow, time: Timestamp) -> bool {
        self.expires(w) <= time
    }

    /// When a window closes for good: its last timestamp and the allowed lateness.
    fn expires(&self, w: &TimeWindow) -> Timestamp {
        w.max_timestamp().saturating_add(self.lateness)
    }

    /// Fires and cleans up every window due at `time`. Only session windows have timers;
    /// fixed windows fire in the order of their ends.
    fn advance(&mut self, time: Timestamp, out: &mut impl Output<F::Out>) {
        self.advanced = self.advanced.max(time);
        while let Some((_, (key, window, cleanup))) = self.timers.pop(time) {
            let Some(list) = self.sessions.get_mut(&key) else {
                continue;
            };
            // A merged session's old timers find no window: skip them.
            let Some(i) = list.iter().position(|(w, _)| *w == window) else {
                continue;
            };
            if cleanup || self.lateness == 0 {
                let (w, acc) = list.remove(i);
                if list.is_empty() {
                    self.sessions.remove(&key);
                }
                if !cleanup {
                    self.emit(&key, &w, &acc, out);
                }
            } else {
                let acc = std::mem::replace(&mut list[i].1, self.f.create());
                self.emit(&key, &window, &acc, out);
                if let Some(list) = self.sessions.get_mut(&key) {
                    list[i].1 = acc;
                }
            }
        }
        self.advance_fixed(time, out);
    }

    /// Fires the fixed windows whose last millisecond is `time` or earlier, and drops those
    /// past their allowed lateness.
    fn advance_fixed(&mut self, time: Timestamp, out: &mut impl Output<F::Out>) {
        // The due panes are the first ones (sorted by end): those whose last millisecond is
        // `time` or earlier.
        let (mut i, len) = (0, self.fixed.len());
        while i < self.fixed.len() && self.fixed.get(i).end <= time.saturating_add(1) {
            let pane = self.fixed.get(i);
            let window = TimeWindow {
                start: pane.start,
                end: pane.end,
            };
            if pane.is_stored() {
                // (A stored pane has no keys yet to fire but all or none.) Read from the store
                // a chunk at a time, in key order.
                if !pane.fired {
                    Panes::for_each_stored(self, Self::fixed, i, |w, key, acc| {
                        w.emit(&key, &window, &acc, out)
                    });
                    self.fixed.get_mut(i).fired = true;
                }
            } else if !pane.fired || !pane.unfired.is_empty() {
                let pane = self.fixed.get_mut(i);
                let entries = std::mem::take(&mut pane.entries);
                let unfired = std::mem::take(&mut pane.unfired);
                if pane.fired {
                    // Restored keys that had not fired, in a pane whose other keys had.
                    for &slot in &unfired {
                        let (key, acc) = &entries[slot as usize];
                        self.emit(key, &window, acc, out);
                    }
                } else {
                    self.emit_pane(&entries, &window, out);
                }
                let pane = self.fixed.get_mut(i);
                pane.entries = entries;
                pane.fired = true;
            }
            if self.expired(&window, time) {
                if std::mem::size_of::<F::PerWindow>() != 0 {
                    if self.fixed.get(i).is_stored() {
                        Panes::for_each_stored(self, Self::fixed, i, |w, key, _| {
                            w.per_window.remove(&(key, window));
                        });
                    } else {
                        for (key, _) in &self.fixed.get(i).entries {
                            self.per_window.remove(&(key.clone(), window));
                        }
                    }
                }
                self.fixed.remove(i);
            } else {
                i += 1;
            }
        }
        if self.fixed.len() < len {
            self.fixed.dropped();
        }
    }

    /// A row for a tumbling window, computed here without the list of windows: the last
    /// row's window again (rows come mostly in order) or, by a division, a new one.
    #[inline(always)]
    fn add_tumbling(
        &mut self,
        key: K,
        row: T,
        time: Timestamp,
        size: i64,
        offset: i64,
        out: &mut impl Output<F::Out>,
    ) where
        T: 'static,
    {
        // (`start <= time < end` in one compare; the empty window holds no time.)
        let w = match self.tumbling {
            w if (time.wrapping_sub(w.start) as u64) < (w.end.wrapping_sub(w.start) as u64) => w,
            _ => {
                let start = time - (time - offset).rem_euclid(size);
                self.tumbling = TimeWindow {
                    start,
                    end: start + size,
                };
                let w = self.tumbling;
                self.tumbling_expires = self.expires(&w);
                w
            }
        };
        // (`expired`, with the bound computed with the window.)
        if self.tumbling_expires <= self.late_clock {
            self.on_late(row, time, out);
        } else {
            self.add_to(&key, &w, row, out);
        }
    }

    /// A row for windows other than tumbling ones.
    #[inline(never)]
    fn add_other(&mut self, key: K, row: T, time: Timestamp, out: &mut impl Output<F::Out>)
    where
        T: Clone + 'static,
    {
        match self.windows {
            Windows::Count { size, slide } => self.add_count(key, row, size, slide, out),
            Windows::Session { gap, .. } => self.add_session(key, row, time, gap, out),
            _ => self.add_fixed(key, row, time, out),
        }
    }

    /// A row without a timestamp in event-time windows: the job's error at the next tick.
    #[cold]
    #[inline(never)]
    fn no_timestamp(&mut self) {
        if self.error.is_none() {
            self.error = Some(Error::Config(format!(
                "`{}` uses event-time windows, but its rows have no timestamps: add `.timestamps(|row| ..)` after the source, or use processing-time windows",
                self.name
            )));
        }
    }

    /// A row for sliding windows: each window the row falls in.
    fn add_fixed(&mut self, key: K, row: T, time: Timestamp, out: &mut impl Output<F::Out>)
    where
        T: Clone + 'static,
    {
        let wm = self.late_clock;
        self.assigned.clear();
        self.windows.assign(time, &mut self.assigned);
        let windows = std::mem::take(&mut self.assigned);
        let mut placed = false;
        let n = windows.len();
        let mut row = Some(row);
        for (i, w) in windows.iter().enumerate() {
            if self.event_time && self.expired(w, wm) {
                continue;
            }
            placed = true;
            let r = if i + 1 == n {
                row.take().expect("row")
            } else {
                row.clone().expect("row")
            };
            self.add_to(&key, w, r, out);
        }
        self.assigned = windows;
        if !placed {
            self.on_late(row.take().expect("a late row was not placed"), time, out);
        }
    }

    /// Adds `row` to `key`'s accumulator in window `w`, which is open.
    #[inline(always)]
    fn add_to(&mut self, key: &K, w: &TimeWindow, row: T, out: &mut impl Output<F::Out>) {
        let f = &mut self.f;
        // A new accumulator is made with the row added: written once, not made and then
        // read, added to and written again.
        let mut row = Some(row);
        let new = || {
            let mut acc = f.create();
            if let Some(row) = row.take() {
                f.add(&mut acc, row);
            }
            acc
        };
        let Some((acc, fired)) = self.fixed.get_or_insert(w.end, w.start, key, new) else {
            let row = row.expect("a stored pane's row was not added");
            return self.add_stored(key, w, row, out);
        };
        let f = &mut self.f;
        if let Some(row) = row {
            f.add(acc, row);
        }
        // Late but within the allowed lateness: the window already fired, so this key's
        // result fires again at once.
        if fired {
            let acc = std::mem::replace(acc, f.create());
            self.fire_again(key, w, acc, out);
        }
    }

    /// Emits `key`'s result in the fired window `w` again, with a late row added to `acc`,
    /// and puts `acc` back. Out of the row's path: `get_or_insert` is inlined where it is
    /// called, and this is the rare second call.
    #[cold]
    #[inline(never)]
    fn fire_again(&mut self, key: &K, w: &TimeWindow, acc: F::Acc, out: &mut impl Output<F::Out>) {
        self.emit(key, w, &acc, out);
        let f = &mut self.f;
        match self.fixed.get_or_insert(w.end, w.start, key, || f.create()) {
            Some((a, _)) => *a = acc,
            // Its pane moved to the store meanwhile (with the placeholder, counted).
            None => self.fixed.stored_put(w.end, w.start, key, &acc, false),
        }
    }

    /// Adds `row` to `key`'s accumulator in window `w`, whose pane is in the store (disk
    /// backend): read, added to, written.
    #[inline(never)]
    fn add_stored(&mut self, key: &K, w: &TimeWindow, row: T, out: &mut impl Output<F::Out>) {
        let (acc, fired) = self.fixed.stored_get(w.end, w.start, key);
        let new = acc.is_none();
        let mut acc = acc.unwrap_or_else(|| self.f.create());
        self.f.add(&mut acc, row);
        if fired {
            self.emit(key, w, &acc, out);
        }
        self.fixed.stored_put(w.end, w.start, key, &acc, new);
    }

    /// The fixed windows' panes (for [`Panes::for_each_stored`]).
    fn fixed(&mut self) -> &mut Panes<K, F::Acc> {
        &mut self.fixed
    }

    fn add_session(
        &mut self,
        key: K,
        row: T,
        time: Timestamp,
        gap: i64,
        out: &mut impl Output<F::Out>,
    ) where
        T: 'static,
    {
        let wm = self.late_clock;
        let mut window = TimeWindow {
            start: time,
            end: time.saturating_add(gap),
        };
        // As Flink's `WindowOperator`: the row's window is merged with the key's sessions it
        // meets first, and the *merged* window is asked whether it is late. A row late on its
        // own that falls into (or extends) a session still open joins it. The key's sessions
        // never meet one another, so one pass in start order finds every one the merged
        // window covers.
        for (w, _) in self.sessions.get(&key).into_iter().flatten() {
            if w.intersects(&window) {
                window = window.cover(w);
            }
        }
        if self.event_time && self.expired(&window, wm) {
            self.on_late(row, time, out);
            return;
        }
        let mut acc = self.f.create();
        self.f.add(&mut acc, row);
        let list = self.sessions.get_or_default(key.clone());
        let mut i = 0;
        while i < list.len() {
            if list[i].0.intersects(&window) {
                let (_, other) = list.remove(i);
                acc = self.f.merge(other, acc);
            } else {
                i += 1;
            }
        }
        let pos = list
            .iter()
            .position(|(w, _)| w.start > window.start)
            .unwrap_or(list.len());
        list.insert(pos, (window, acc));
        self.timer(window.max_timestamp(), key.clone(), window, false);
        if self.lateness > 0 {
            self.timer(
                window.max_timestamp().saturating_add(self.lateness),
                key.clone(),
                window,
                true,
            );
        }
        if self.event_time && window.max_timestamp() <= wm {
            self.advance(wm, out);
        }
    }

    fn add_count(&mut self, key: K, row: T, size: u64, slide: u64, out: &mut impl Output<F::Out>)
    where
        T: Clone,
    {
        let pane = self.counts.get_or_insert_with(key.clone(), || CountPane {
            rows: VecDeque::new(),
            since_fire: 0,
        });
        pane.rows.push_back(row);
        if pane.rows.len() as u64 > size {
            pane.rows.pop_front();
        }
        pane.since_fire += 1;
        if pane.since_fire < slide {
            return;
        }
        pane.since_fire = 0;
        let rows: Vec<T> = if slide >= size {
            pane.rows.drain(..).collect()
        } else {
            pane.rows.iter().cloned().collect()
        };
        let mut acc = self.f.create();
        for r in rows {
            self.f.add(&mut acc, r);
        }
        let window = TimeWindow {
            start: MIN_WATERMARK,
            end: MAX_WATERMARK,
        };
        self.emit_at(&key, &window, &acc, NO_TIMESTAMP, out);
    }
}

impl<T, KS, F> Operator<T> for Window<KS, KS::Key, F, T>
where
    T: Clone + Send + Sync + StateData,
    KS: KeySelector<T>,
    KS::Key: StateData,
    KS::Key: Sync,
    F: WindowFunction<KS::Key, T>,
    F::Acc: Sync + StateData,
{
    type Out = F::Out;
    /// The function's own state joins the record only when it keeps some, so that windows
    /// without it keep the schema they always had.
    const STATE_SCHEMA: u64 = {
        let windows = crate::snapshot::record(&[
            crate::snapshot::fingerprint("window"),
            <KS::Key as crate::snapshot::StateSchema>::FINGERPRINT,
            <T as crate::snapshot::StateSchema>::FINGERPRINT,
            <F::Acc as crate::snapshot::StateSchema>::FINGERPRINT,
        ]);
        if std::mem::size_of::<F::Global>() == 0 && std::mem::size_of::<F::PerWindow>() == 0 {
            windows
        } else {
            crate::snapshot::record(&[
                windows,
                <F::Global as crate::snapshot::StateSchema>::FINGERPRINT,
                <F::PerWindow as crate::snapshot::StateSchema>::FINGERPRINT,
            ])
        }
    };

    /// Inlined into the chain for tumbling windows, the common case: a row in order is a
    /// probe of the newest-pane map and an append (see `add_tumbling`); every other kind of
    /// window is a call.
    #[inline(always)]
    fn process(&mut self, row: T, ts: Timestamp, out: &mut impl Output<F::Out>) {
        let key = self.key.key(&row);
        let time = if self.event_time {
            if ts == NO_TIMESTAMP {
                return self.no_timestamp();
            }
            ts
        } else {
            now_millis()
        };
        match self.windows {
            Windows::Tumbling { size, offset, .. } => {
                self.add_tumbling(key, row, time, size, offset, out)
            }
            _ => self.add_other(key, row, time, out),
        }
    }

    fn open(&mut self, ctx: &RuntimeContext) -> Result<()> {
        self.name = ctx.operator_name();
        self.batch = ctx.mode() == crate::env::RuntimeMode::Batch;
        if std::mem::size_of::<F::PerWindow>() != 0
            && matches!(self.windows, Windows::Session { .. })
        {
            return Err(Error::Config(format!(
                "{}: session windows merge, so their function cannot keep per-window state \
                 (`WindowContext::window_state`, as in Flink); keep it per key with \
                 `global_state`",
                self.name
            )));
        }
        self.windows.validate(self.name)?;
        match self.windows {
            Windows::Session { .. } => {
                self.sessions.open(ctx)?;
                self.timers.open(ctx)?;
            }
            Windows::Count { .. } => self.counts.open(ctx)?,
            _ => self.fixed.open(ctx)?,
        }
        if std::mem::size_of::<F::Global>() != 0 {
            self.global.open(ctx)?;
        }
        if std::mem::size_of::<F::PerWindow>() != 0 {
            self.per_window.open(ctx)?;
        }
        Ok(())
    }

    fn on_tick(&mut self, out: &mut impl Output<F::Out>) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.check_state()?;
        if !self.event_time && !matches!(self.windows, Windows::Count { .. }) {
            self.advance(now_millis(), out);
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: Timestamp, out: &mut impl Output<F::Out>) -> Result<()> {
        if watermark > self.watermark {
            self.set_watermark(watermark);
            if self.event_time {
                self.advance(watermark, out);
            }
        }
        Ok(())
    }

    /// Every open window's accumulators (fixed windows by key, sessions, count windows'
    /// rows), the session timers and the watermark.
    fn snapshot(&mut self, _: CheckpointId, state: &mut StateWriter) -> Result<Snapshot> {
        self.check_state()?;
        // Fixed windows hold most of the state: copied now (a memory copy per pane for plain
        // accumulators; panes in the disk backend's store as an MVCC view), encoded off the
        // row path.
        state.keyed_deferred::<KS::Key, (Timestamp, Timestamp, bool, F::Acc), _>(
            "panes",
            self.fixed.snapshot(),
            |panes, out| {
                panes.try_for_each(|k, end, start, fired, acc| {
                    out.entry(k, (end, start, fired, acc))
                })
            },
        );
        // Sessions, count windows and window states: frozen now (copy-on-write), encoded
        // off the row path, as the session timers, which the writer derives from the frozen
        // sessions: a session that ends after `advanced` has not fired, and with an allowed
        // lateness each one still open waits for its cleanup.
        let sessions = Arc::new(Mutex::new(self.sessions.snapshot()));
        state.keyed_deferred::<KS::Key, Vec<(TimeWindow, F::Acc)>, _>(
            "sessions",
            sessions.clone(),
            move |snapshot, out| {
                let mut snapshot = snapshot.lock().unwrap_or_else(|e| e.into_inner());
                snapshot.try_for_each(|k, list| out.entry(k, list))
            },
        );
        let (advanced, lateness) = (self.advanced, self.lateness);
        state.keyed_deferred::<KS::Key, (Timestamp, TimeWindow, bool), _>(
            "timers",
            sessions,
            move |snapshot, out| {
                let mut snapshot = snapshot.lock().unwrap_or_else(|e| e.into_inner());
                snapshot.try_for_each(|k, list| {
                    for (w, _) in list {
                        let end = w.max_timestamp();
                        if end > advanced {
                            out.entry(k, (end, w, false))?;
                        }
                        if lateness > 0 {
                            out.entry(k, (end.saturating_add(lateness), w, true))?;
                        }
                    }
                    Ok(())
                })
            },
        );
        self.counts
            .write_entries::<KS::Key, (VecDeque<T>, u64)>("counts", state, |k, p, out| {
                out.entry(k, (&p.rows, p.since_fire))
            });
        state.list("watermark", [&self.watermark])?;
        if std::mem::size_of::<F::Global>() != 0 {
            self.global.write("global_state", state);
        }
        if std::mem::size_of::<F::PerWindow>() != 0 {
            self.per_window
                .write_entries::<KS::Key, (TimeWindow, F::PerWindow)>(
                    "window_state",
                    state,
                    |(k, w), s, out| out.entry(k, (w, s)),
                );
        }
        Ok(Snapshot::Taken)
    }

    fn restore(&mut self, state: &StateReader) -> Result<()> {
        if std::mem::size_of::<F::Global>() != 0 {
            state.keyed("global_state", |k, s| self.global.insert(k, s))?;
        }
        if std::mem::size_of::<F::PerWindow>() != 0 {
            state.keyed("window_state", |k, (w, s): (TimeWindow, F::PerWindow)| {
                self.per_window.insert((k, w), s);
            })?;
        }
        state.keyed(
            "panes",
            |k, (end, start, fired, acc): (Timestamp, Timestamp, bool, F::Acc)| {
                self.fixed.restore(end, start, fired, k, acc);
            },
        )?;
        state.keyed("sessions", |k, list| {
            self.sessions.insert(k, list);
        })?;
        state.keyed("counts", |k, (rows, since_fire)| {
            self.counts.insert(k, CountPane { rows, since_fire });
        })?;
        state.keyed("timers", |k, (at, w, cleanup)| {
            self.timer(at, k, w, cleanup)
        })?;
        if let Some(w) = state.union::<Timestamp>("watermark")?.into_iter().min() {
            self.set_watermark(w);
            // Every session that ended by it fired (its timers say so): the next snapshot
            // must not derive a firing for them again.
            if self.event_time {
                self.advanced = self.advanced.max(w);
            }
        }
        self.check_state()
    }

    /// Every window of every key, the timers and the watermark: as when the operator opened.
    fn clear_state(&mut self) -> Result<bool> {
        self.check_state()?;
        self.fixed.clear()?;
        self.sessions.clear()?;
        self.counts.clear()?;
        self.timers.clear()?;
        self.global.clear()?;
        self.per_window.clear()?;
        self.advanced = MIN_WATERMARK;
        self.set_watermark(MIN_WATERMARK);
        Ok(true)
    }

    fn end_of_input(&mut self, out: &mut impl Output<F::Out>) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        // The end of input closes every time window (processing-time ones too).
        self.advance(MAX_WATERMARK, out);
        self.check_state()?;
        // Batch mode: every result of one key together, keys in `sort_key` order, each key's
        // windows by end then start (Flink's batch execution sorts by key, then time); results
        // of one window in the order they were emitted.
        let mut held = std::mem::take(&mut self.held);
        held.sort_by(|a, b| (&a.0, a.1, a.2).cmp(&(&b.0, b.1, b.2)));
        for (_, _, _, row, ts) in held {
            out.emit(row, ts);
        }
        Ok(())
    }

    fn report(&self, node: u32, metrics: &mut TaskMetrics) {
        metrics.add_late(node, self.late);
    }
}

/// The port of a windowed stream: rows `T` of key type `K` (`()` after `window_all`) grouped
/// into windows of kind `W` ([`TimeWindow`], [`GlobalWindow`] after `count_window`), waiting
/// for the function that computes each window's result.
#[allow(clippy::type_complexity)]
pub struct Windowed<T, K, W = TimeWindow>(std::marker::PhantomData<fn() -> (T, K, W)>);

impl<T: Send + 'static, K: Key> Stream<T, K> {
    /// `window`: groups each key's rows into windows.
    pub fn window(&self, windows: Windows) -> (Windows, Windowed<T, K>) {
        (windows, Windowed(std::marker::PhantomData))
    }
    /// `count_window(size)` or `count_window(size, slide)`.
    pub fn count_window(&self, size: u64, slide: u64) -> (Windows, Windowed<T, K, GlobalWindow>) {
        (
            Windows::count(size, slide),
            Windowed(std::marker::PhantomData),
        )
    }
}

impl<T: Send + 'static, K> Stream<T, K> {
    /// `window_all`: windows over the whole stream, in one subtask.
    pub fn window_all(&self, windows: Windows) -> (Windows, Windowed<T, ()>) {
        (windows, Windowed(std::marker::PhantomData))
    }
}

/// `window_all`'s functions: no key.
impl<T: Send + 'static> Windowed<T, ()> {
    /// A `window_all` `process` with a closure `|window, rows, out| ..`.
    #[allow(clippy::type_complexity)]
    pub fn process_all_closure<O: Send + 'static, F>(
        &self,
        f: F,
    ) -> (WindowProcess<NoKey<Typed<F, TimeWindow>>, O>, Stream<O>)
    where
        F: FnMut(&TimeWindow, &[T], &mut Vec<O>) + Clone + Send + 'static,
    {
        let f = NoKey(Typed(f, std::marker::PhantomData));
        (WindowProcess(f, std::marker::PhantomData), Stream::new())
    }
    /// A `window_all` `process` with a closure `|ctx: &mut WindowContext<..>, rows, out| ..`.
    #[allow(clippy::type_complexity)]
    pub fn process_all_closure_with_context<O, G, P, F>(
        &self,
        f: F,
    ) -> (
        WindowProcess<NoKey<WithWindowContext<F, G, P>>, O>,
        Stream<O>,
    )
    where
        O: Send + 'static,
        G: WindowState,
        P: WindowState,
        F: FnMut(&mut WindowContext<'_, G, P>, &[T], &mut Vec<O>) + Clone + Send + 'static,
    {
        let f = NoKey(WithWindowContext(f, std::marker::PhantomData));
        (WindowProcess(f, std::marker::PhantomData), Stream::new())
    }
    /// A `window_all` `aggregate` whose results go through `|window, result, out| ..`.
    #[allow(clippy::type_complexity)]
    pub fn aggregate_all_with<A, O, F>(
        &self,
        a: A,
        f: F,
    ) -> (
        WindowAggregate<A, NoKey<Typed<F, TimeWindow>>, O>,
        Stream<O>,
    )
    where
        A: AggregateFunction<T>,
        O: Send + 'static,
        F: FnMut(&TimeWindow, A::Out, &mut Vec<O>) + Clone + Send + 'static,
    {
        let f = NoKey(Typed(f, std::marker::PhantomData));
        (
            WindowAggregate(a, f, std::marker::PhantomData),
            Stream::new(),
        )
    }
    /// A `window_all` `aggregate` whose results go through `|ctx: &mut WindowContext<..>,
    /// result, out| ..`.
    #[allow(clippy::type_complexity)]
    pub fn aggregate_all_with_context<A, O, G, P, F>(
        &self,
        a: A,
        f: F,
    ) -> (
        WindowAggregate<A, NoKey<WithWindowContext<F, G, P>>, O>,
        Stream<O>,
    )
    where
        A: AggregateFunction<T>,
        O: Send + 'static,
        G: WindowState,
        P: WindowState,
        F: FnMut(&mut WindowContext<'_, G, P>, A::Out, &mut Vec<O>) + Clone + Send + 'static,
    {
        let f = NoKey(WithWindowContext(f, std::marker::PhantomData));
        (
            WindowAggregate(a, f, std::marker::PhantomData),
            Stream::new(),
        )
    }
}

impl<T: Send + 'static, K, W: WindowType> Windowed<T, K, W> {
    /// Checks that the late-data tag carries the window's input rows.
    pub fn late_data(&self, _tag: &OutputTag<T>) {}
    /// A window `reduce` with a function.
    pub fn reduce<F: crate::function::ReduceFunction<T>>(
        &self,
        f: F,
    ) -> (WindowReduce<F>, Stream<T>)
    where
        T: Clone,
    {
        (WindowReduce(f), Stream::new())
    }
    /// A window `reduce` with a closure.
    pub fn reduce_closure<F: FnMut(T, T) -> T + Clone + Send + 'static>(
        &self,
        f: F,
    ) -> (WindowReduce<F>, Stream<T>)
    where
        T: Clone,
    {
        (WindowReduce(f), Stream::new())
    }
    /// A window `aggregate`.
    pub fn aggregate<A: AggregateFunction<T>>(
        &self,
        a: A,
    ) -> (WindowAggregate<A, AsIs, A::Out>, Stream<A::Out>) {
        (
            WindowAggregate(a, AsIs, std::marker::PhantomData),
            Stream::new(),
        )
    }
    /// A window `aggregate` whose results go through `|key, window, result, out| ..`.
    #[allow(clippy::type_complexity)]
    pub fn aggregate_with<A, O, F>(
        &self,
        a: A,
        f: F,
    ) -> (WindowAggregate<A, Typed<F, W>, O>, Stream<O>)
    where
        A: AggregateFunction<T>,
        O: Send + 'static,
        F: FnMut(&K, &W, A::Out, &mut Vec<O>) + Clone + Send + 'static,
    {
        (
            WindowAggregate(
                a,
                Typed(f, std::marker::PhantomData),
                std::marker::PhantomData,
            ),
            Stream::new(),
        )
    }
    /// A window `aggregate` whose results go through `|key, ctx: &mut WindowContext<..>,
    /// result, out| ..`.
    #[allow(clippy::type_complexity)]
    pub fn aggregate_with_context<A, O, G: WindowState, P: WindowState, F>(
        &self,
        a: A,
        f: F,
    ) -> (WindowAggregate<A, WithWindowContext<F, G, P>, O>, Stream<O>)
    where
        A: AggregateFunction<T>,
        O: Send + 'static,
        F: FnMut(&K, &mut WindowContext<'_, G, P>, A::Out, &mut Vec<O>) + Clone + Send + 'static,
    {
        (
            WindowAggregate(
                a,
                WithWindowContext(f, std::marker::PhantomData),
                std::marker::PhantomData,
            ),
            Stream::new(),
        )
    }
    /// A window `process` with a function.
    pub fn process<O: Send + 'static, F: ProcessWindowFunction<K, T, O>>(
        &self,
        f: F,
    ) -> (WindowProcess<F, O>, Stream<O>) {
        (WindowProcess(f, std::marker::PhantomData), Stream::new())
    }
    /// A window `process` with a closure `|key, window, rows, out| ..`.
    #[allow(clippy::type_complexity)]
    pub fn process_closure<O: Send + 'static, F>(
        &self,
        f: F,
    ) -> (WindowProcess<Typed<F, W>, O>, Stream<O>)
    where
        F: FnMut(&K, &W, &[T], &mut Vec<O>) + Clone + Send + 'static,
    {
        (
            WindowProcess(Typed(f, std::marker::PhantomData), std::marker::PhantomData),
            Stream::new(),
        )
    }
    /// A window `process` with a closure `|key, ctx: &mut WindowContext<..>, rows, out| ..`.
    #[allow(clippy::type_complexity)]
    pub fn process_closure_with_context<O: Send + 'static, G: WindowState, P: WindowState, F>(
        &self,
        f: F,
    ) -> (WindowProcess<WithWindowContext<F, G, P>, O>, Stream<O>)
    where
        F: FnMut(&K, &mut WindowContext<'_, G, P>, &[T], &mut Vec<O>) + Clone + Send + 'static,
    {
        (
            WindowProcess(
                WithWindowContext(f, std::marker::PhantomData),
                std::marker::PhantomData,
            ),
            Stream::new(),
        )
    }
}
