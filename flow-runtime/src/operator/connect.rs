//! `connect` + `co_map` / `co_flat_map`: two streams of different row types into one
//! operator (Flink's `ConnectedStreams`). The stage after `connect` reads both inputs through
//! two input gates; its watermark is the minimum of the two.

use super::user_call;
use crate::collector::{Collector, Snapshot};
use crate::context::RuntimeContext;
use crate::exec::CheckpointId;
use crate::exec::TaskMetrics;
use crate::time::Timestamp;
use crate::Result;

/// An operator with two inputs: what the two-input loop drives.
pub trait TwoInput<A, B> {
    /// A row of the first input.
    fn collect_first(&mut self, row: A, ts: Timestamp);
    /// A row of the second input.
    fn collect_second(&mut self, row: B, ts: Timestamp);
    /// After every input batch (see [`Collector::flush`]).
    ///
    /// # Errors
    /// As for [`Collector::flush`].
    fn flush(&mut self) -> Result<()>;
    /// The minimum watermark of both inputs advanced.
    ///
    /// # Errors
    /// As for [`Collector::watermark`].
    fn watermark(&mut self, watermark: Timestamp) -> Result<()>;
    /// Both inputs delivered checkpoint barrier `id` (see [`Collector::barrier`]).
    ///
    /// # Errors
    /// As for [`Collector::barrier`].
    fn barrier(&mut self, id: CheckpointId) -> Result<Snapshot>;
    /// Both inputs ended.
    ///
    /// # Errors
    /// As for [`Collector::finish`].
    fn finish(&mut self) -> Result<()>;
    /// Adds the counters of this operator and the ones after it.
    fn report(&self, metrics: &mut TaskMetrics);
}

/// `co_map(f1, f2)`: maps each input with its own function into one output type.
pub struct CoMap<F1, F2, N> {
    first: F1,
    second: F2,
    next: N,
    name: &'static str,
}

impl<F1, F2, N> CoMap<F1, F2, N> {
    /// Chains the two functions before `next`.
    pub fn new(first: F1, second: F2, name: &'static str, _ctx: &RuntimeContext, next: N) -> Self {
        CoMap {
            first,
            second,
            next,
            name,
        }
    }
}

impl<A, B, O, F1, F2, N> TwoInput<A, B> for CoMap<F1, F2, N>
where
    F1: FnMut(A) -> O,
    F2: FnMut(B) -> O,
    N: Collector<O>,
{
    #[inline]
    fn collect_first(&mut self, row: A, ts: Timestamp) {
        let out = user_call(self.name, || (self.first)(row));
        self.next.collect(out, ts);
    }
    #[inline]
    fn collect_second(&mut self, row: B, ts: Timestamp) {
        let out = user_call(self.name, || (self.second)(row));
        self.next.collect(out, ts);
    }
    fn flush(&mut self) -> Result<()> {
        self.next.flush()
    }
    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.next.watermark(watermark)
    }
    fn barrier(&mut self, id: CheckpointId) -> Result<Snapshot> {
        self.next.barrier(id)
    }
    fn finish(&mut self) -> Result<()> {
        self.next.finish()
    }
    fn report(&self, metrics: &mut TaskMetrics) {
        self.next.report(metrics)
    }
}

/// `co_flat_map(f1, f2)`: each input's function returns any number of rows (an iterator).
pub struct CoFlatMap<F1, F2, N> {
    first: F1,
    second: F2,
    next: N,
    name: &'static str,
    node: u32,
    emitted: u64,
}

impl<F1, F2, N> CoFlatMap<F1, F2, N> {
    /// Chains the two functions before `next`.
    pub fn new(
        first: F1,
        second: F2,
        node: u32,
        name: &'static str,
        _ctx: &RuntimeContext,
        next: N,
    ) -> Self {
        CoFlatMap {
            first,
            second,
            next,
            name,
            node,
            emitted: 0,
        }
    }
}

impl<A, B, I1, I2, O, F1, F2, N> TwoInput<A, B> for CoFlatMap<F1, F2, N>
where
    F1: FnMut(A) -> I1,
    F2: FnMut(B) -> I2,
    I1: IntoIterator<Item = O>,
    I2: IntoIterator<Item = O>,
    N: Collector<O>,
{
    fn collect_first(&mut self, row: A, ts: Timestamp) {
        let rows = user_call(self.name, || (self.first)(row));
        for out in rows {
            self.emitted += 1;
            self.next.collect(out, ts);
        }
    }
    fn collect_second(&mut self, row: B, ts: Timestamp) {
        let rows = user_call(self.name, || (self.second)(row));
        for out in rows {
            self.emitted += 1;
            self.next.collect(out, ts);
        }
    }
    fn flush(&mut self) -> Result<()> {
        self.next.flush()
    }
    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.next.watermark(watermark)
    }
    fn barrier(&mut self, id: CheckpointId) -> Result<Snapshot> {
        self.next.barrier(id)
    }
    fn finish(&mut self) -> Result<()> {
        self.next.finish()
    }
    fn report(&self, metrics: &mut TaskMetrics) {
        metrics.add_out(self.node, self.emitted);
        self.next.report(metrics)
    }
}

/// `interval_join(other).between(lower, upper).process(f)`: joins two keyed streams on their
/// key where the second row's timestamp lies in `[first + lower, first + upper]` (both bounds
/// inclusive, as in Flink). Each pair calls `f(&first, &second, out)`; results carry the larger
/// of the two timestamps. Rows are kept until the watermark says no partner can come; rows
/// behind the watermark are late and dropped (counted).
pub struct IntervalJoin<K1, K2, K, A, B, F, O, N> {
    key_first: K1,
    key_second: K2,
    lower: i64,
    upper: i64,
    f: F,
    firsts: crate::hash::FlowHashMap<K, Vec<(Timestamp, A)>>,
    seconds: crate::hash::FlowHashMap<K, Vec<(Timestamp, B)>>,
    watermark: Timestamp,
    out: Vec<O>,
    next: N,
    name: &'static str,
    node: u32,
    emitted: u64,
    late: u64,
}

impl<K1, K2, K, A, B, F, O, N> IntervalJoin<K1, K2, K, A, B, F, O, N> {
    /// A join of rows whose timestamps differ by `lower..=upper` milliseconds (second minus
    /// first).
    ///
    /// # Errors
    /// `lower > upper`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        key_first: K1,
        key_second: K2,
        (lower, upper): (i64, i64),
        f: F,
        node: u32,
        name: &'static str,
        _ctx: &RuntimeContext,
        next: N,
    ) -> Result<Self> {
        if lower > upper {
            return Err(crate::Error::Config(format!(
                "`{name}`: the lower bound ({lower} ms) is above the upper bound ({upper} ms)"
            )));
        }
        Ok(IntervalJoin {
            key_first,
            key_second,
            lower,
            upper,
            f,
            firsts: Default::default(),
            seconds: Default::default(),
            watermark: crate::time::MIN_WATERMARK,
            out: Vec::new(),
            next,
            name,
            node,
            emitted: 0,
            late: 0,
        })
    }
}

impl<K1, K2, K, A, B, F, O, N> TwoInput<A, B> for IntervalJoin<K1, K2, K, A, B, F, O, N>
where
    K1: crate::function::KeySelector<A, Key = K>,
    K2: crate::function::KeySelector<B, Key = K>,
    K: std::hash::Hash + Eq + Clone,
    F: FnMut(&A, &B, &mut Vec<O>),
    N: Collector<O>,
{
    fn collect_first(&mut self, row: A, ts: Timestamp) {
        if ts < self.watermark {
            self.late += 1;
            return;
        }
        let key = self.key_first.key(&row);
        if let Some(seconds) = self.seconds.get(&key) {
            for (t2, b) in seconds {
                if *t2 >= ts.saturating_add(self.lower) && *t2 <= ts.saturating_add(self.upper) {
                    let (f, out) = (&mut self.f, &mut self.out);
                    user_call(self.name, || f(&row, b, out));
                    let at = ts.max(*t2);
                    self.emitted += crate::collector::drain_into(&mut self.out, &mut self.next, at);
                }
            }
        }
        self.firsts.entry(key).or_default().push((ts, row));
    }
    fn collect_second(&mut self, row: B, ts: Timestamp) {
        if ts < self.watermark {
            self.late += 1;
            return;
        }
        let key = self.key_second.key(&row);
        if let Some(firsts) = self.firsts.get(&key) {
            for (t1, a) in firsts {
                if ts >= t1.saturating_add(self.lower) && ts <= t1.saturating_add(self.upper) {
                    let (f, out) = (&mut self.f, &mut self.out);
                    user_call(self.name, || f(a, &row, out));
                    let at = ts.max(*t1);
                    self.emitted += crate::collector::drain_into(&mut self.out, &mut self.next, at);
                }
            }
        }
        self.seconds.entry(key).or_default().push((ts, row));
    }
    fn flush(&mut self) -> Result<()> {
        self.next.flush()
    }
    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.watermark = watermark;
        // A first row can still meet seconds at or after the watermark only if
        // ts + upper >= watermark; a second row only firsts with ts - lower >= watermark.
        let (lower, upper) = (self.lower, self.upper);
        self.firsts.retain(|_, rows| {
            rows.retain(|(t, _)| t.saturating_add(upper) >= watermark);
            !rows.is_empty()
        });
        self.seconds.retain(|_, rows| {
            rows.retain(|(t, _)| t.saturating_sub(lower) >= watermark);
            !rows.is_empty()
        });
        self.next.watermark(watermark)
    }
    /// Declines: the operator's state is not snapshot yet.
    fn barrier(&mut self, _: CheckpointId) -> Result<Snapshot> {
        Ok(Snapshot::Declined(self.name))
    }
    fn finish(&mut self) -> Result<()> {
        self.next.finish()
    }
    fn report(&self, metrics: &mut TaskMetrics) {
        metrics.add_out(self.node, self.emitted);
        metrics.add_late(self.node, self.late);
        self.next.report(metrics)
    }
}

/// `window_join(other, windows).process(f)`: joins two keyed streams per key and window
/// (Flink's `join(..).where(..).equal_to(..).window(..)`): when a window fires, `f(&first,
/// &second, out)` runs for every pair of its rows of one key. Tumbling and sliding windows;
/// results carry the window's last millisecond; rows behind the watermark are late and
/// dropped (counted).
pub struct WindowJoin<K1, K2, K, A, B, F, O, N> {
    key_first: K1,
    key_second: K2,
    windows: crate::operator::window::Windows,
    f: F,
    #[allow(clippy::type_complexity)]
    panes: std::collections::BTreeMap<
        (Timestamp, Timestamp),
        crate::hash::FlowHashMap<K, (Vec<A>, Vec<B>)>,
    >,
    assigned: Vec<crate::operator::window::TimeWindow>,
    watermark: Timestamp,
    out: Vec<O>,
    next: N,
    name: &'static str,
    node: u32,
    emitted: u64,
    late: u64,
}

impl<K1, K2, K, A, B, F, O, N> WindowJoin<K1, K2, K, A, B, F, O, N> {
    /// A join of rows of one key in the same window of `windows`.
    ///
    /// # Errors
    /// Session or count windows, or a size or slide that is not positive.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        key_first: K1,
        key_second: K2,
        windows: crate::operator::window::Windows,
        f: F,
        node: u32,
        name: &'static str,
        _ctx: &RuntimeContext,
        next: N,
    ) -> Result<Self> {
        use crate::operator::window::Windows;
        windows.validate(name)?;
        if matches!(windows, Windows::Session { .. } | Windows::Count { .. }) {
            return Err(crate::Error::Config(format!(
                "`{name}`: a window join takes tumbling or sliding windows"
            )));
        }
        Ok(WindowJoin {
            key_first,
            key_second,
            windows,
            f,
            panes: Default::default(),
            assigned: Vec::new(),
            watermark: crate::time::MIN_WATERMARK,
            out: Vec::new(),
            next,
            name,
            node,
            emitted: 0,
            late: 0,
        })
    }
}

impl<K1, K2, K, A, B, F, O, N> WindowJoin<K1, K2, K, A, B, F, O, N>
where
    K: std::hash::Hash + Eq + Clone,
    A: Clone,
    B: Clone,
    F: FnMut(&A, &B, &mut Vec<O>),
    N: Collector<O>,
{
    fn time(&self, ts: Timestamp) -> Timestamp {
        if self.windows.is_event_time() {
            ts
        } else {
            crate::time::now_millis()
        }
    }

    /// Adds a row to each of its windows; `first` picks the side. Returns whether it was late.
    fn add(&mut self, key: K, ts: Timestamp, first: Option<A>, second: Option<B>) {
        let t = self.time(ts);
        self.assigned.clear();
        self.windows.assign(t, &mut self.assigned);
        let mut placed = false;
        for w in std::mem::take(&mut self.assigned) {
            if self.windows.is_event_time() && w.max_timestamp() <= self.watermark {
                continue;
            }
            placed = true;
            let pane = self.panes.entry((w.end, w.start)).or_default();
            let (firsts, seconds) = pane.entry(key.clone()).or_default();
            if let Some(a) = &first {
                firsts.push(a.clone());
            }
            if let Some(b) = &second {
                seconds.push(b.clone());
            }
        }
        if !placed {
            self.late += 1;
        }
    }

    fn fire(&mut self, time: Timestamp) {
        while let Some(entry) = self.panes.first_entry() {
            let (end, start) = *entry.key();
            if end - 1 > time {
                break;
            }
            let keys = entry.remove();
            let at = end - 1;
            let _ = start;
            for (_, (firsts, seconds)) in keys {
                for a in &firsts {
                    for b in &seconds {
                        let (f, out) = (&mut self.f, &mut self.out);
                        user_call(self.name, || f(a, b, out));
                    }
                }
                self.emitted += crate::collector::drain_into(&mut self.out, &mut self.next, at);
            }
        }
    }
}

impl<K1, K2, K, A, B, F, O, N> TwoInput<A, B> for WindowJoin<K1, K2, K, A, B, F, O, N>
where
    K1: crate::function::KeySelector<A, Key = K>,
    K2: crate::function::KeySelector<B, Key = K>,
    K: std::hash::Hash + Eq + Clone,
    A: Clone,
    B: Clone,
    F: FnMut(&A, &B, &mut Vec<O>),
    N: Collector<O>,
{
    fn collect_first(&mut self, row: A, ts: Timestamp) {
        let key = self.key_first.key(&row);
        self.add(key, ts, Some(row), None);
    }
    fn collect_second(&mut self, row: B, ts: Timestamp) {
        let key = self.key_second.key(&row);
        self.add(key, ts, None, Some(row));
    }
    fn flush(&mut self) -> Result<()> {
        if !self.windows.is_event_time() {
            self.fire(crate::time::now_millis());
        }
        self.next.flush()
    }
    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        if watermark > self.watermark {
            self.watermark = watermark;
            if self.windows.is_event_time() {
                self.fire(watermark);
            }
        }
        self.next.watermark(watermark)
    }
    /// Declines: the operator's state is not snapshot yet.
    fn barrier(&mut self, _: CheckpointId) -> Result<Snapshot> {
        Ok(Snapshot::Declined(self.name))
    }
    fn finish(&mut self) -> Result<()> {
        self.fire(crate::time::MAX_WATERMARK);
        self.next.finish()
    }
    fn report(&self, metrics: &mut TaskMetrics) {
        metrics.add_out(self.node, self.emitted);
        metrics.add_late(self.node, self.late);
        self.next.report(metrics)
    }
}

/// The function of `a.connect(b.broadcast()).process(f)` (Flink's `BroadcastProcessFunction`):
/// every subtask receives every row of the broadcast input and keeps `State` from them (rules,
/// thresholds, ...), which the rows of the other input read.
pub trait BroadcastProcessFunction<A, B>: Clone + Send + 'static {
    /// The broadcast state of one subtask.
    type State: Default + Send + 'static;
    /// The output row type.
    type Out: Send + 'static;
    /// A row of the first (non-broadcast) input, with read access to the broadcast state.
    fn process_element(&mut self, row: A, state: &Self::State, out: &mut Vec<Self::Out>);
    /// A row of the broadcast input, updating the broadcast state.
    fn process_broadcast_element(
        &mut self,
        row: B,
        state: &mut Self::State,
        out: &mut Vec<Self::Out>,
    );
}

/// The broadcast-process operator.
pub struct BroadcastProcess<F: BroadcastProcessFunction<A, B>, A, B, N> {
    f: F,
    state: F::State,
    out: Vec<F::Out>,
    next: N,
    name: &'static str,
    node: u32,
    emitted: u64,
    _in: std::marker::PhantomData<fn(A, B)>,
}

impl<F: BroadcastProcessFunction<A, B>, A, B, N> BroadcastProcess<F, A, B, N> {
    /// Chains `f` before `next`.
    pub fn new(f: F, node: u32, name: &'static str, _ctx: &RuntimeContext, next: N) -> Self {
        BroadcastProcess {
            f,
            state: F::State::default(),
            out: Vec::new(),
            next,
            name,
            node,
            emitted: 0,
            _in: std::marker::PhantomData,
        }
    }
}

impl<F, A, B, N> TwoInput<A, B> for BroadcastProcess<F, A, B, N>
where
    F: BroadcastProcessFunction<A, B>,
    N: Collector<F::Out>,
{
    fn collect_first(&mut self, row: A, ts: Timestamp) {
        let (f, state, out) = (&mut self.f, &self.state, &mut self.out);
        user_call(self.name, || f.process_element(row, state, out));
        self.emitted += crate::collector::drain_into(&mut self.out, &mut self.next, ts);
    }
    fn collect_second(&mut self, row: B, ts: Timestamp) {
        let (f, state, out) = (&mut self.f, &mut self.state, &mut self.out);
        user_call(self.name, || f.process_broadcast_element(row, state, out));
        self.emitted += crate::collector::drain_into(&mut self.out, &mut self.next, ts);
    }
    fn flush(&mut self) -> Result<()> {
        self.next.flush()
    }
    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.next.watermark(watermark)
    }
    /// Declines: the operator's state is not snapshot yet.
    fn barrier(&mut self, _: CheckpointId) -> Result<Snapshot> {
        Ok(Snapshot::Declined(self.name))
    }
    fn finish(&mut self) -> Result<()> {
        self.next.finish()
    }
    fn report(&self, metrics: &mut TaskMetrics) {
        metrics.add_out(self.node, self.emitted);
        self.next.report(metrics)
    }
}
