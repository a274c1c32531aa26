//! `process(f)` on a keyed stream: a `#[process_function]` with keyed state and timers
//! (Flink's `KeyedProcessFunction`). Timers are per key and timestamp: registering the same
//! one twice fires it once. Event-time timers fire in timestamp order when the watermark
//! reaches them; processing-time timers when the wall clock does (checked after every input
//! batch and at least every 50 ms). At the end of input every remaining timer fires.
//!
//! `co_process` is this operator over the rows of two inputs.

use super::side_output::SideOutputs;
use super::{Operator, Output};
use crate::chain::Snapshot;
use crate::context::RuntimeContext;
use crate::exec::CheckpointId;
use crate::function::{Key, KeySelector, NotKeyed};
use crate::port::Stream;
use crate::snapshot::{StateData, StateReader, StateWriter};
use crate::state::timers::Timers;
use crate::state::KeyedState;
use crate::time::{now_millis, Timestamp, MAX_WATERMARK, MIN_WATERMARK, NO_TIMESTAMP};
use crate::{Error, Result};
use std::hash::Hash;

/// What a process function sees of its operator: the row's timestamp, the watermark, the
/// side outputs and, on a keyed stream (`K` is the key type), the current key and the timer
/// service. A process function on a stream that is not keyed takes a `ProcessContext<'_>`
/// (`K` is [`NotKeyed`]): it has no key and no timers, as in Flink.
pub struct ProcessContext<'a, K = NotKeyed> {
    key: &'a K,
    timestamp: Timestamp,
    watermark: Timestamp,
    requests: &'a mut Vec<(Timestamp, bool, bool)>,
    side: &'a mut dyn SideOutputs,
}

impl<'a, K> ProcessContext<'a, K> {
    /// A context for a call at `timestamp` (a row's or a timer's) with the operator's
    /// `watermark`; timer registrations go to `requests`, side rows to `side`.
    pub(crate) fn new(
        key: &'a K,
        timestamp: Timestamp,
        watermark: Timestamp,
        requests: &'a mut Vec<(Timestamp, bool, bool)>,
        side: &'a mut dyn SideOutputs,
    ) -> Self {
        ProcessContext {
            key,
            timestamp,
            watermark,
            requests,
            side,
        }
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
    /// Emits `row` to the side output `tag` (read with `.side_output(&tag)` after this
    /// operator in `flow!`); dropped when nothing reads that tag, as in Flink.
    pub fn output<T: 'static>(&mut self, tag: &super::side_output::OutputTag<T>, row: T) {
        let mut slot = Some(row);
        self.side.emit(tag.id(), &mut slot, self.timestamp);
    }
}

/// The key and the timers: on a keyed stream only ([`NotKeyed`] is no [`Key`]).
impl<K: Key> ProcessContext<'_, K> {
    /// The key of the row (or of the firing timer).
    pub fn key(&self) -> &K {
        self.key
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
    /// Removes the current key's processing-time timer at `time`, if any.
    pub fn delete_processing_time_timer(&mut self, time: Timestamp) {
        self.requests.push((time, false, false));
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
    type State: crate::state::StateFields;
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
            event: Timers::default(),
            processing: Timers::default(),
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
        self.processing.len() != 0
    }
}

/// The keyed process operator: `f` on a stream keyed by `key`, with its state and timers per
/// key.
pub struct KeyedProcess<KS, K, F: KeyedProcessFunction<K, In>, In> {
    key: KS,
    f: F,
    state: KeyedState<K, F::State>,
    timers: TimerService<K>,
    watermark: Timestamp,
    buf: Vec<F::Out>,
    error: Option<Error>,
    name: &'static str,
}

impl<KS, K, F, In> KeyedProcess<KS, K, F, In>
where
    K: Hash + Eq + Clone,
    F: KeyedProcessFunction<K, In>,
{
    /// `f` per key of `key`; `event_time` tells whether the stream has watermarks (event-time
    /// timers need them).
    pub fn new(key: KS, f: F, event_time: bool) -> Self {
        KeyedProcess {
            key,
            f,
            state: KeyedState::default(),
            timers: TimerService::new(event_time),
            watermark: MIN_WATERMARK,
            buf: Vec::new(),
            error: None,
            name: "process",
        }
    }

    /// Calls `body` (the function's `process_element` or `on_timer`) for `key` at `ts` (a
    /// row's timestamp, or a firing timer's), applies the timers it registered and emits its
    /// rows with timestamp `emit_ts`.
    #[inline]
    fn call(
        &mut self,
        key: K,
        ts: Timestamp,
        emit_ts: Timestamp,
        out: &mut impl Output<F::Out>,
        body: impl FnOnce(&mut F, &mut F::State, &mut ProcessContext<'_, K>, &mut Vec<F::Out>),
    ) {
        let state = self.state.get_or_default(key.clone());
        if <F::State as crate::state::StateFields>::TTL {
            crate::state::StateFields::expire(state, now_millis());
        }
        let mut ctx = ProcessContext::new(
            &key,
            ts,
            self.watermark,
            &mut self.timers.requests,
            out.side_outputs(),
        );
        body(&mut self.f, state, &mut ctx, &mut self.buf);
        if !self.timers.requests.is_empty() {
            self.timers.apply(&key, self.name, &mut self.error);
        }
        out.emit_all(&mut self.buf, emit_ts);
    }

    /// The disk backend's first error, if a row or a timer met one.
    fn check_state(&mut self) -> Result<()> {
        self.state.check()?;
        self.timers.event.check()?;
        self.timers.processing.check()
    }

    /// Fires the timers of one domain due at `time`, in timestamp order.
    fn fire(&mut self, event: bool, time: Timestamp, out: &mut impl Output<F::Out>) {
        while let Some((t, key)) = self.timers.pop(event, time) {
            let emit_ts = if event { t } else { NO_TIMESTAMP };
            self.call(key, t, emit_ts, out, |f, s, ctx, buf| {
                f.on_timer(t, s, ctx, buf)
            });
        }
    }
}

impl<In, Old, KS, F> super::migrate_state::MigrateFrom<In, Old> for KeyedProcess<KS, KS::Key, F, In>
where
    Old: StateData,
    KS: KeySelector<In>,
    KS::Key: StateData,
    F: KeyedProcessFunction<KS::Key, In>,
    F::State: StateData + Clone + Sync,
    KS::Key: Sync,
{
    type Value = F::State;
    const MIGRATED_SCHEMA: u64 = super::migrate_state::per_key_schema(
        "keyed_process",
        <KS::Key as crate::snapshot::StateSchema>::FINGERPRINT,
        Old::FINGERPRINT,
    );
}

impl<In, KS, F> Operator<In> for KeyedProcess<KS, KS::Key, F, In>
where
    KS: KeySelector<In>,
    KS::Key: StateData,
    F: KeyedProcessFunction<KS::Key, In>,
    F::State: StateData + Clone + Sync,
    KS::Key: Sync,
{
    type Out = F::Out;
    const STATE_SCHEMA: u64 = super::migrate_state::per_key_schema(
        "keyed_process",
        <KS::Key as crate::snapshot::StateSchema>::FINGERPRINT,
        <F::State as crate::snapshot::StateSchema>::FINGERPRINT,
    );

    fn process(&mut self, row: In, ts: Timestamp, out: &mut impl Output<F::Out>) {
        let key = self.key.key(&row);
        self.call(key, ts, ts, out, |f, s, ctx, buf| {
            f.process_element(row, s, ctx, buf)
        });
    }

    fn open(&mut self, ctx: &RuntimeContext) -> Result<()> {
        self.name = ctx.operator_name();
        if std::mem::size_of::<F::State>() != 0 {
            self.state.open(ctx)?;
        }
        self.timers.event.open(ctx)?;
        self.timers.processing.open(ctx)?;
        self.f.open(ctx);
        Ok(())
    }

    /// A deferred error, then the processing-time timers now due.
    fn on_tick(&mut self, out: &mut impl Output<F::Out>) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.check_state()?;
        if self.timers.has_processing_timers() {
            self.fire(false, now_millis(), out);
        }
        Ok(())
    }

    /// The event-time timers the watermark passed fire.
    fn on_watermark(&mut self, watermark: Timestamp, out: &mut impl Output<F::Out>) -> Result<()> {
        if watermark > self.watermark {
            self.watermark = watermark;
            self.fire(true, watermark, out);
        }
        Ok(())
    }

    /// Every key's state and timers (frozen now, copy-on-write, encoded off the row path),
    /// and the watermark the function has seen.
    fn snapshot(&mut self, _: CheckpointId, state: &mut StateWriter) -> Result<Snapshot> {
        self.check_state()?;
        if std::mem::size_of::<F::State>() != 0 {
            self.state.write("state", state);
        }
        self.timers.event.write("event_timers", state);
        self.timers.processing.write("processing_timers", state);
        state.list("watermark", [&self.watermark])?;
        Ok(Snapshot::Taken)
    }

    fn restore(&mut self, state: &StateReader) -> Result<()> {
        state.keyed("state", |k, s| self.state.insert(k, s))?;
        state.keyed("event_timers", |k, t| self.timers.event.add(&k, t))?;
        state.keyed("processing_timers", |k, t| {
            self.timers.processing.add(&k, t)
        })?;
        // At another parallelism a subtask's keys come from several old ones: the earliest
        // of their watermarks fires nothing twice.
        if let Some(w) = state.union::<Timestamp>("watermark")?.into_iter().min() {
            self.watermark = w;
        }
        Ok(())
    }

    /// Every key's state and timers, and the watermark: as when the operator opened.
    fn clear_state(&mut self) -> Result<bool> {
        self.check_state()?;
        self.state.clear()?;
        self.timers.event.clear()?;
        self.timers.processing.clear()?;
        self.watermark = MIN_WATERMARK;
        Ok(true)
    }

    /// Every remaining timer fires (event-time ones already did with the final watermark, if
    /// the stream has event time).
    fn end_of_input(&mut self, out: &mut impl Output<F::Out>) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.fire(true, MAX_WATERMARK, out);
        self.fire(false, MAX_WATERMARK, out);
        self.check_state()
    }

    fn close(&mut self) -> Result<()> {
        self.f.close();
        Ok(())
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

impl<T: Send + 'static, K: Key> Stream<T, K> {
    /// `process` on a keyed stream: a keyed process function (timers, keyed state).
    pub fn keyed_process<F: KeyedProcessFunction<K, T>>(&self, f: F) -> (F, Stream<F::Out>) {
        (f, Stream::new())
    }
}

/// Checks that a process function on a stream without watermarks uses no event-time timers.
pub fn without_event_timers<F: WithoutEventTimers>(_f: &F) {}
