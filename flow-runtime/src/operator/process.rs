//! `process(f)` on a keyed stream: a `#[process_function]` with keyed state and timers
//! (Flink's `KeyedProcessFunction`). Timers are per key and timestamp: registering the same
//! one twice fires it once. Event-time timers fire in timestamp order when the watermark
//! reaches them; processing-time timers when the wall clock does (checked after every input
//! batch and at least every 50 ms). At the end of input every remaining timer fires.

use super::user_call;
use crate::collector::{Collector, Snapshot};
use crate::context::RuntimeContext;
use crate::exec::CheckpointId;
use crate::exec::TaskMetrics;
use crate::function::KeySelector;
use crate::state::KeyedState;
use crate::time::{now_millis, Timestamp, MAX_WATERMARK, MIN_WATERMARK, NO_TIMESTAMP};
use crate::{Error, Result};
use std::collections::{BTreeMap, HashSet};
use std::hash::Hash;

/// What a process function sees of its operator: the current key, the row's timestamp, the
/// watermark, and the timer service.
pub struct ProcessContext<'a, K> {
    key: &'a K,
    timestamp: Timestamp,
    watermark: Timestamp,
    requests: &'a mut Vec<(Timestamp, bool, bool)>,
    side: &'a mut dyn SideOutputs,
}

impl<K> ProcessContext<'_, K> {
    /// The key of the row (or of the firing timer).
    pub fn key(&self) -> &K {
        self.key
    }
    /// The row's event timestamp (the timer's, in `on_timer`), if it has one.
    pub fn timestamp(&self) -> Option<Timestamp> {
        (self.timestamp != NO_TIMESTAMP).then_some(self.timestamp)
    }
    /// The operator's current watermark.
    pub fn current_watermark(&self) -> Timestamp {
        self.watermark
    }
    /// The wall clock, in milliseconds since the epoch.
    pub fn current_processing_time(&self) -> Timestamp {
        now_millis()
    }
    /// Calls `on_timer` for the current key when the watermark reaches `time`.
    pub fn register_event_time_timer(&mut self, time: Timestamp) {
        self.requests.push((time, true, true));
    }
    /// Calls `on_timer` for the current key when the wall clock reaches `time`.
    pub fn register_processing_time_timer(&mut self, time: Timestamp) {
        self.requests.push((time, false, true));
    }
    /// Removes the current key's event-time timer at `time`, if any.
    pub fn delete_event_time_timer(&mut self, time: Timestamp) {
        self.requests.push((time, true, false));
    }
    /// Emits `row` to the side output `tag` (read with `.side_output(&tag)` after this
    /// operator in `flow!`); dropped when nothing reads that tag, as in Flink.
    pub fn output<T: 'static>(&mut self, tag: &crate::operator::window::OutputTag<T>, row: T) {
        let mut slot = Some(row);
        self.side.emit(tag.id(), &mut slot, self.timestamp);
    }
    /// Removes the current key's processing-time timer at `time`, if any.
    pub fn delete_processing_time_timer(&mut self, time: Timestamp) {
        self.requests.push((time, false, false));
    }
}

/// The side outputs of one operator: rows go by tag name to the collectors that read them.
pub trait SideOutputs {
    /// Emits the row in `slot` (an `Option<T>`) to `tag`, if a collector of that tag and row
    /// type reads it.
    fn emit(&mut self, tag: &str, slot: &mut dyn std::any::Any, ts: Timestamp);
    /// See [`Collector::flush`].
    ///
    /// # Errors
    /// As [`Collector::flush`].
    fn flush(&mut self) -> Result<()>;
    /// See [`Collector::watermark`].
    ///
    /// # Errors
    /// As [`Collector::watermark`].
    fn watermark(&mut self, watermark: Timestamp) -> Result<()>;
    /// See [`Collector::finish`].
    ///
    /// # Errors
    /// As [`Collector::finish`].
    fn finish(&mut self) -> Result<()>;
    /// See [`Collector::report`].
    fn report(&self, metrics: &mut TaskMetrics);
}

/// No side outputs: emitted rows are dropped.
pub struct NoSideOutputs;

impl SideOutputs for NoSideOutputs {
    fn emit(&mut self, _: &str, _: &mut dyn std::any::Any, _: Timestamp) {}
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn watermark(&mut self, _: Timestamp) -> Result<()> {
        Ok(())
    }
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
    fn report(&self, _: &mut TaskMetrics) {}
}

/// One side output (tag name and the chain reading it), then the others.
pub struct SideOutput<T, C, Rest> {
    tag: String,
    collector: C,
    rest: Rest,
    _rows: std::marker::PhantomData<fn(T)>,
}

impl<T, C, Rest> SideOutput<T, C, Rest> {
    /// `collector` reads tag `tag`; `rest` the other tags.
    pub fn new(tag: String, collector: C, rest: Rest) -> Self {
        SideOutput {
            tag,
            collector,
            rest,
            _rows: std::marker::PhantomData,
        }
    }
}

impl<T: 'static, C: Collector<T>, Rest: SideOutputs> SideOutputs for SideOutput<T, C, Rest> {
    fn emit(&mut self, tag: &str, slot: &mut dyn std::any::Any, ts: Timestamp) {
        if tag == self.tag {
            if let Some(row) = slot.downcast_mut::<Option<T>>().and_then(Option::take) {
                self.collector.collect(row, ts);
                return;
            }
        }
        self.rest.emit(tag, slot, ts);
    }
    fn flush(&mut self) -> Result<()> {
        self.collector.flush()?;
        self.rest.flush()
    }
    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.collector.watermark(watermark)?;
        self.rest.watermark(watermark)
    }
    fn finish(&mut self) -> Result<()> {
        self.collector.finish()?;
        self.rest.finish()
    }
    fn report(&self, metrics: &mut TaskMetrics) {
        self.collector.report(metrics);
        self.rest.report(metrics)
    }
}

/// A keyed process function: `#[process_function]` on an impl block implements it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot process rows of type `{In}` keyed by `{K}`",
    label = "a process function takes the stream's rows and a `ProcessContext` of its key type"
)]
pub trait KeyedProcessFunction<K, In>: Clone + Send + 'static {
    /// The output row type.
    type Out: Send + 'static;
    /// The per-key state (`#[state]` fields).
    type State: Default + Send + 'static;
    /// Called once per instance before the first row.
    fn open(&mut self, _ctx: &RuntimeContext) {}
    /// Handles one row.
    fn process_element(
        &mut self,
        row: In,
        state: &mut Self::State,
        ctx: &mut ProcessContext<'_, K>,
        out: &mut Vec<Self::Out>,
    );
    /// A timer of the current key fired at `timestamp`.
    fn on_timer(
        &mut self,
        _timestamp: Timestamp,
        _state: &mut Self::State,
        _ctx: &mut ProcessContext<'_, K>,
        _out: &mut Vec<Self::Out>,
    ) {
    }
    /// Called once per instance after the last row.
    fn close(&mut self) {}
}

/// Timers of one time domain, deduplicated per key and timestamp.
struct Timers<K> {
    by_time: BTreeMap<Timestamp, Vec<K>>,
    set: HashSet<(K, Timestamp), crate::hash::StableBuildHasher>,
}

impl<K: Hash + Eq + Clone> Timers<K> {
    fn new() -> Self {
        Timers {
            by_time: BTreeMap::new(),
            set: HashSet::default(),
        }
    }
    fn add(&mut self, key: &K, t: Timestamp) {
        if self.set.insert((key.clone(), t)) {
            self.by_time.entry(t).or_default().push(key.clone());
        }
    }
    fn delete(&mut self, key: &K, t: Timestamp) {
        // Removed lazily: `pop` skips timers no longer in the set.
        self.set.remove(&(key.clone(), t));
    }
    /// The next timer due at `time` or earlier.
    fn pop(&mut self, time: Timestamp) -> Option<(Timestamp, K)> {
        loop {
            let mut entry = self.by_time.first_entry()?;
            let t = *entry.key();
            if t > time {
                return None;
            }
            let key = entry.get_mut().pop();
            if entry.get().is_empty() {
                entry.remove();
            }
            if let Some(key) = key {
                if self.set.remove(&(key.clone(), t)) {
                    return Some((t, key));
                }
            }
        }
    }
}

/// The timers of a keyed operator (both time domains) and the registrations its function
/// made during the current call, applied to the call's key afterwards.
struct TimerService<K> {
    event: Timers<K>,
    processing: Timers<K>,
    /// (time, event-time, add) per `register_*`/`delete_*` call of the current function call.
    requests: Vec<(Timestamp, bool, bool)>,
    /// Whether the stream has watermarks, which event-time timers need.
    event_time: bool,
}

impl<K: Hash + Eq + Clone> TimerService<K> {
    fn new(event_time: bool) -> Self {
        TimerService {
            event: Timers::new(),
            processing: Timers::new(),
            requests: Vec::new(),
            event_time,
        }
    }

    /// Applies the current call's registrations to `key`; an event-time timer on a stream
    /// without watermarks records an error naming `operator` (it would never fire).
    fn apply(&mut self, key: &K, operator: &str, error: &mut Option<Error>) {
        for (t, event, add) in self.requests.drain(..) {
            if event && add && !self.event_time && error.is_none() {
                *error = Some(Error::Config(format!(
                    "`{operator}` registers an event-time timer, but its input has no watermarks: give the source a watermark strategy and `.timestamps(..)`"
                )));
            }
            let timers = if event {
                &mut self.event
            } else {
                &mut self.processing
            };
            if add {
                timers.add(key, t);
            } else {
                timers.delete(key, t);
            }
        }
    }

    /// The next timer of one domain due at `time`.
    fn pop(&mut self, event: bool, time: Timestamp) -> Option<(Timestamp, K)> {
        if event {
            self.event.pop(time)
        } else {
            self.processing.pop(time)
        }
    }

    fn has_processing_timers(&self) -> bool {
        !self.processing.set.is_empty()
    }
}

/// What the keyed process and co-process operators share: per-key state, timers, the
/// watermark, the function's output buffer and the side outputs. The operators add their key
/// selectors and call the function's own methods through it.
struct ProcessCore<K, S, O> {
    /// Side outputs: a dyn call per side-output row only (they are off the main path).
    side: Box<dyn SideOutputs>,
    state: KeyedState<K, S>,
    timers: TimerService<K>,
    watermark: Timestamp,
    out: Vec<O>,
    emitted: u64,
    error: Option<Error>,
    name: &'static str,
    node: u32,
}

impl<K: Hash + Eq + Clone, S: Default, O> ProcessCore<K, S, O> {
    fn new(name: &'static str, node: u32, event_time: bool, side: Box<dyn SideOutputs>) -> Self {
        ProcessCore {
            side,
            state: KeyedState::default(),
            timers: TimerService::new(event_time),
            watermark: MIN_WATERMARK,
            out: Vec::new(),
            emitted: 0,
            error: None,
            name,
            node,
        }
    }

    /// Calls the function (`body`) for `key` at `ts` (a row's timestamp, or a firing timer's),
    /// applies the timers it registered and emits its rows with timestamp `emit_ts`.
    #[inline]
    fn call<N: Collector<O>>(
        &mut self,
        key: K,
        ts: Timestamp,
        emit_ts: Timestamp,
        next: &mut N,
        body: impl FnOnce(&mut S, &mut ProcessContext<'_, K>, &mut Vec<O>),
    ) {
        let state = self.state.get_or_default(key.clone());
        let mut ctx = ProcessContext {
            key: &key,
            timestamp: ts,
            watermark: self.watermark,
            requests: &mut self.timers.requests,
            side: &mut *self.side,
        };
        let out = &mut self.out;
        user_call(self.name, || body(state, &mut ctx, out));
        if !self.timers.requests.is_empty() {
            self.timers.apply(&key, self.name, &mut self.error);
        }
        self.emitted += crate::collector::drain_into(&mut self.out, next, emit_ts);
    }

    /// Fires the timers of one domain due at `time`, in timestamp order.
    fn fire<N: Collector<O>>(
        &mut self,
        event: bool,
        time: Timestamp,
        next: &mut N,
        on_timer: &mut impl FnMut(Timestamp, &mut S, &mut ProcessContext<'_, K>, &mut Vec<O>),
    ) {
        while let Some((t, key)) = self.timers.pop(event, time) {
            let emit_ts = if event { t } else { NO_TIMESTAMP };
            self.call(key, t, emit_ts, next, |s, ctx, out| {
                on_timer(t, s, ctx, out)
            });
        }
    }

    /// After an input batch: a deferred error, then the processing-time timers now due.
    fn flush<N: Collector<O>>(
        &mut self,
        next: &mut N,
        mut on_timer: impl FnMut(Timestamp, &mut S, &mut ProcessContext<'_, K>, &mut Vec<O>),
    ) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.timers.has_processing_timers() {
            self.fire(false, now_millis(), next, &mut on_timer);
        }
        self.side.flush()?;
        next.flush()
    }

    /// The watermark advanced: the event-time timers it passed fire.
    fn watermark<N: Collector<O>>(
        &mut self,
        watermark: Timestamp,
        next: &mut N,
        mut on_timer: impl FnMut(Timestamp, &mut S, &mut ProcessContext<'_, K>, &mut Vec<O>),
    ) -> Result<()> {
        if watermark > self.watermark {
            self.watermark = watermark;
            self.fire(true, watermark, next, &mut on_timer);
        }
        self.side.watermark(watermark)?;
        next.watermark(watermark)
    }

    /// The end of input: every remaining timer fires (event-time ones already did with the
    /// final watermark, if the stream has event time). The function closes after this.
    fn fire_all<N: Collector<O>>(
        &mut self,
        next: &mut N,
        mut on_timer: impl FnMut(Timestamp, &mut S, &mut ProcessContext<'_, K>, &mut Vec<O>),
    ) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.fire(true, MAX_WATERMARK, next, &mut on_timer);
        self.fire(false, MAX_WATERMARK, next, &mut on_timer);
        Ok(())
    }

    /// After the function closed: the outputs end.
    fn finish<N: Collector<O>>(&mut self, next: &mut N) -> Result<()> {
        self.side.finish()?;
        next.finish()
    }

    fn report(&self, metrics: &mut TaskMetrics) {
        metrics.add_out(self.node, self.emitted);
        self.side.report(metrics);
    }
}

/// The keyed process operator.
pub struct KeyedProcess<KS, K, F: KeyedProcessFunction<K, In>, In, N> {
    core: ProcessCore<K, F::State, F::Out>,
    key: KS,
    f: F,
    next: N,
    _in: std::marker::PhantomData<fn(In)>,
}

impl<KS, K, F, In, N> KeyedProcess<KS, K, F, In, N>
where
    K: Hash + Eq + Clone,
    F: KeyedProcessFunction<K, In>,
    N: Collector<F::Out>,
{
    /// Opens `f`; `event_time` tells whether the stream has watermarks (event-time timers need
    /// them); `side` reads the side outputs.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        key: KS,
        mut f: F,
        node: u32,
        name: &'static str,
        ctx: &RuntimeContext,
        event_time: bool,
        next: N,
        side: Box<dyn SideOutputs>,
    ) -> Self {
        let ctx = ctx.for_operator(name);
        user_call(name, || f.open(&ctx));
        KeyedProcess {
            core: ProcessCore::new(name, node, event_time, side),
            key,
            f,
            next,
            _in: std::marker::PhantomData,
        }
    }
}

impl<In, KS, F, N> Collector<In> for KeyedProcess<KS, KS::Key, F, In, N>
where
    KS: KeySelector<In>,
    F: KeyedProcessFunction<KS::Key, In>,
    N: Collector<F::Out>,
{
    fn collect(&mut self, row: In, ts: Timestamp) {
        let key = self.key.key(&row);
        let f = &mut self.f;
        self.core.call(key, ts, ts, &mut self.next, |s, ctx, out| {
            f.process_element(row, s, ctx, out)
        });
    }
    fn flush(&mut self) -> Result<()> {
        let f = &mut self.f;
        self.core
            .flush(&mut self.next, |t, s, ctx, out| f.on_timer(t, s, ctx, out))
    }
    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        let f = &mut self.f;
        self.core
            .watermark(watermark, &mut self.next, |t, s, ctx, out| {
                f.on_timer(t, s, ctx, out)
            })
    }
    fn idle(&mut self, idle: bool) -> Result<()> {
        self.next.idle(idle)
    }
    /// Declines: the operator's state is not snapshot yet.
    fn barrier(&mut self, _: CheckpointId) -> Result<Snapshot> {
        Ok(Snapshot::Declined(self.core.name))
    }
    fn finish(&mut self) -> Result<()> {
        let f = &mut self.f;
        self.core
            .fire_all(&mut self.next, |t, s, ctx, out| f.on_timer(t, s, ctx, out))?;
        user_call(self.core.name, || self.f.close());
        self.core.finish(&mut self.next)
    }
    fn report(&self, metrics: &mut TaskMetrics) {
        self.core.report(metrics);
        self.next.report(metrics)
    }
}

/// A keyed process function over two connected keyed streams (Flink's
/// `KeyedCoProcessFunction`): both inputs share the key's state and timers.
/// `#[co_process_function]` on an impl block implements it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot process connected rows `{A}` and `{B}` keyed by `{K}`",
    label = "a co-process function takes both streams' rows and a `ProcessContext` of their key type"
)]
pub trait KeyedCoProcessFunction<K, A, B>: Clone + Send + 'static {
    /// The output row type.
    type Out: Send + 'static;
    /// The per-key state shared by both inputs (`#[state]` fields).
    type State: Default + Send + 'static;
    /// Called once per instance before the first row.
    fn open(&mut self, _ctx: &RuntimeContext) {}
    /// A row of the first input.
    fn process_element1(
        &mut self,
        row: A,
        state: &mut Self::State,
        ctx: &mut ProcessContext<'_, K>,
        out: &mut Vec<Self::Out>,
    );
    /// A row of the second input.
    fn process_element2(
        &mut self,
        row: B,
        state: &mut Self::State,
        ctx: &mut ProcessContext<'_, K>,
        out: &mut Vec<Self::Out>,
    );
    /// A timer of the current key fired at `timestamp`.
    fn on_timer(
        &mut self,
        _timestamp: Timestamp,
        _state: &mut Self::State,
        _ctx: &mut ProcessContext<'_, K>,
        _out: &mut Vec<Self::Out>,
    ) {
    }
    /// Called once per instance after the last row.
    fn close(&mut self) {}
}

/// The keyed co-process operator.
pub struct KeyedCoProcess<K1, K2, K, F: KeyedCoProcessFunction<K, A, B>, A, B, N> {
    core: ProcessCore<K, F::State, F::Out>,
    key_first: K1,
    key_second: K2,
    f: F,
    next: N,
    _in: std::marker::PhantomData<fn(A, B)>,
}

impl<K1, K2, K, F, A, B, N> KeyedCoProcess<K1, K2, K, F, A, B, N>
where
    K: Hash + Eq + Clone,
    F: KeyedCoProcessFunction<K, A, B>,
    N: Collector<F::Out>,
{
    /// Opens `f`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        key_first: K1,
        key_second: K2,
        mut f: F,
        node: u32,
        name: &'static str,
        ctx: &RuntimeContext,
        event_time: bool,
        next: N,
    ) -> Self {
        let ctx = ctx.for_operator(name);
        user_call(name, || f.open(&ctx));
        KeyedCoProcess {
            // A zero-sized box: no allocation.
            core: ProcessCore::new(name, node, event_time, Box::new(NoSideOutputs)),
            key_first,
            key_second,
            f,
            next,
            _in: std::marker::PhantomData,
        }
    }
}

impl<K1, K2, F, A, B, N> crate::operator::connect::TwoInput<A, B>
    for KeyedCoProcess<K1, K2, K1::Key, F, A, B, N>
where
    K1: KeySelector<A>,
    K2: KeySelector<B, Key = K1::Key>,
    F: KeyedCoProcessFunction<K1::Key, A, B>,
    N: Collector<F::Out>,
{
    fn collect_first(&mut self, row: A, ts: Timestamp) {
        let key = self.key_first.key(&row);
        let f = &mut self.f;
        self.core.call(key, ts, ts, &mut self.next, |s, ctx, out| {
            f.process_element1(row, s, ctx, out)
        });
    }
    fn collect_second(&mut self, row: B, ts: Timestamp) {
        let key = self.key_second.key(&row);
        let f = &mut self.f;
        self.core.call(key, ts, ts, &mut self.next, |s, ctx, out| {
            f.process_element2(row, s, ctx, out)
        });
    }
    fn flush(&mut self) -> Result<()> {
        let f = &mut self.f;
        self.core
            .flush(&mut self.next, |t, s, ctx, out| f.on_timer(t, s, ctx, out))
    }
    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        let f = &mut self.f;
        self.core
            .watermark(watermark, &mut self.next, |t, s, ctx, out| {
                f.on_timer(t, s, ctx, out)
            })
    }
    /// Declines: the operator's state and timers are not snapshot yet.
    fn barrier(&mut self, _: CheckpointId) -> Result<Snapshot> {
        Ok(Snapshot::Declined(self.core.name))
    }
    fn finish(&mut self) -> Result<()> {
        let f = &mut self.f;
        self.core
            .fire_all(&mut self.next, |t, s, ctx, out| f.on_timer(t, s, ctx, out))?;
        user_call(self.core.name, || self.f.close());
        self.core.finish(&mut self.next)
    }
    fn report(&self, metrics: &mut TaskMetrics) {
        self.core.report(metrics);
        self.next.report(metrics)
    }
}

/// Implemented by `#[process_function]` / `#[co_process_function]` for functions that do not
/// call `register_event_time_timer`: the only ones a stream without watermarks accepts.
#[diagnostic::on_unimplemented(
    message = "`{Self}` registers event-time timers, but this stream has no watermarks",
    label = "its timers would never fire",
    note = "give the source a watermark strategy such as `Watermarks::monotonous()` and `.timestamps(..)`, or use processing-time timers"
)]
pub trait WithoutEventTimers {}
