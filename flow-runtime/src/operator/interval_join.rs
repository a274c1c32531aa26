//! `a.key_by(..).interval_join(b.key_by(..)).between(lower, upper).process(f)`: joins two keyed
//! streams on their key where the second row's timestamp lies in `[first + lower, first +
//! upper]` (both bounds inclusive, as in Flink). Each pair calls `f(&first, &second, out)`, or
//! `f(&first, &second, ctx, out)` with a [`JoinContext`] (the two rows' timestamps, side
//! outputs: Flink's `ProcessJoinFunction.Context`); results carry the larger of the two
//! timestamps. Rows are kept until the watermark says no
//! partner can come; rows behind the watermark are late and dropped (counted).

use super::side_output::{OutputTag, SideOutputs};
use super::{Either, Operator, Output};
use crate::chain::Snapshot;
use crate::context::RuntimeContext;
use crate::exec::{CheckpointId, TaskMetrics};
use crate::function::{Key, KeySelector};
use crate::port::Stream;
use crate::snapshot::{StateData, StateReader, StateWriter};
use crate::state::KeyedState;
use crate::time::{Timestamp, MIN_WATERMARK};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::hash::Hash;

/// What a join's function sees besides the pair (Flink's `ProcessJoinFunction.Context`): the
/// two rows' timestamps, the result's, and the side outputs.
pub struct JoinContext<'a> {
    left: Timestamp,
    right: Timestamp,
    result: Timestamp,
    side: &'a mut dyn SideOutputs,
}

impl JoinContext<'_> {
    /// The first (left) row's timestamp.
    pub fn left_timestamp(&self) -> Timestamp {
        self.left
    }
    /// The second (right) row's timestamp.
    pub fn right_timestamp(&self) -> Timestamp {
        self.right
    }
    /// The results' timestamp: in an interval join the larger of the two rows', in a window
    /// join the window's last millisecond (as in Flink).
    pub fn timestamp(&self) -> Timestamp {
        self.result
    }
    /// Emits `row` to the side output `tag` (read with `.side_output(&tag)` after the join in
    /// `flow!`), with the results' timestamp; dropped when nothing reads that tag.
    pub fn output<T: 'static>(&mut self, tag: &OutputTag<T>, row: T) {
        let mut slot = Some(row);
        let ts = self.timestamp();
        self.side.emit(tag.id(), &mut slot, ts);
    }
}

/// The function of a join's pairs: a closure `|first, second, out| ..`, or one with the
/// context, `|first, second, ctx, out| ..` (wrapped in [`WithContext`]).
pub trait JoinFunction<A, B, O> {
    /// Whether the function reads the rows' timestamps (a window join keeps them only then).
    const TIMESTAMPS: bool;
    /// Calls the function for the pair `a` and `b` at `timestamps` (first's, second's), whose
    /// results carry `result`.
    fn join(
        &mut self,
        a: &A,
        b: &B,
        timestamps: (Timestamp, Timestamp),
        result: Timestamp,
        side: &mut dyn SideOutputs,
        out: &mut Vec<O>,
    );
}

impl<A, B, O, F: FnMut(&A, &B, &mut Vec<O>)> JoinFunction<A, B, O> for F {
    const TIMESTAMPS: bool = false;
    #[inline(always)]
    fn join(
        &mut self,
        a: &A,
        b: &B,
        _: (Timestamp, Timestamp),
        _: Timestamp,
        _: &mut dyn SideOutputs,
        out: &mut Vec<O>,
    ) {
        self(a, b, out)
    }
}

/// A join function that takes a [`JoinContext`].
#[derive(Clone)]
pub struct WithContext<F>(pub F);

impl<A, B, O, F> JoinFunction<A, B, O> for WithContext<F>
where
    F: FnMut(&A, &B, &mut JoinContext<'_>, &mut Vec<O>),
{
    const TIMESTAMPS: bool = true;
    #[inline(always)]
    fn join(
        &mut self,
        a: &A,
        b: &B,
        (left, right): (Timestamp, Timestamp),
        result: Timestamp,
        side: &mut dyn SideOutputs,
        out: &mut Vec<O>,
    ) {
        let mut ctx = JoinContext {
            left,
            right,
            result,
            side,
        };
        (self.0)(a, b, &mut ctx, out)
    }
}

/// The interval join of rows `A` and `B` with `f`, keyed by `key_first` and `key_second`.
pub struct IntervalJoin<K1, K2, K, A, B, F, O> {
    key_first: K1,
    key_second: K2,
    lower: i64,
    upper: i64,
    f: F,
    firsts: Side<K, A>,
    seconds: Side<K, B>,
    watermark: Timestamp,
    buf: Vec<O>,
    late: u64,
}

impl<K1, K2, K, A, B, F, O> IntervalJoin<K1, K2, K, A, B, F, O> {
    /// A join of rows whose timestamps differ by `lower..=upper` milliseconds (second minus
    /// first); the bounds are checked when it opens.
    pub fn new(key_first: K1, key_second: K2, (lower, upper): (i64, i64), f: F) -> Self {
        IntervalJoin {
            key_first,
            key_second,
            lower,
            upper,
            f,
            // A first row meets seconds up to `upper` after it; a second row firsts up to
            // `-lower` after it.
            firsts: Side::new(upper),
            seconds: Side::new(lower.saturating_neg()),
            watermark: MIN_WATERMARK,
            buf: Vec::new(),
            late: 0,
        }
    }
}

/// One side's rows waiting for partners, by key (copy-on-write across checkpoints), and when
/// each key's rows are next looked at for expiry.
struct Side<K, T> {
    rows: KeyedState<K, Vec<(Timestamp, T)>>,
    /// Keys by the time (a row's timestamp plus `keep`) after which the row that scheduled
    /// them can meet no partner: a key is listed once while it has rows, so a watermark
    /// visits only the keys with something to drop, not every key.
    expiry: BTreeMap<Timestamp, Vec<K>>,
    /// How long after its timestamp a row can still meet a partner.
    keep: i64,
}

impl<K, T> Side<K, T> {
    fn new(keep: i64) -> Self {
        Side {
            rows: KeyedState::default(),
            expiry: BTreeMap::new(),
            keep,
        }
    }
}

impl<K: Hash + Eq + Clone, T: Clone> Side<K, T> {
    /// The rows of `key`.
    fn of(&mut self, key: &K) -> impl Iterator<Item = &(Timestamp, T)> {
        self.rows.get(key).into_iter().flatten()
    }

    fn push(&mut self, key: K, ts: Timestamp, row: T) {
        match self.rows.get_mut(&key) {
            Some(rows) => rows.push((ts, row)),
            None => {
                self.schedule(key.clone(), ts);
                self.rows.insert(key, vec![(ts, row)]);
            }
        }
    }

    /// Drops every key's rows.
    fn clear(&mut self) -> Result<()> {
        self.rows.clear()?;
        self.expiry.clear();
        Ok(())
    }

    /// Restores `key`'s rows.
    fn extend(&mut self, key: K, rows: Vec<(Timestamp, T)>) {
        let Some(earliest) = rows.iter().map(|(t, _)| *t).min() else {
            return;
        };
        if !self.rows.contains_key(&key) {
            self.schedule(key.clone(), earliest);
        }
        self.rows.get_or_insert_with(key, Vec::new).extend(rows);
    }

    fn schedule(&mut self, key: K, ts: Timestamp) {
        self.expiry
            .entry(ts.saturating_add(self.keep))
            .or_default()
            .push(key);
    }

    /// Drops the rows the watermark leaves without partners: a row whose timestamp plus
    /// `keep` is behind it. A key whose scheduling row went but others stay is scheduled
    /// again by its earliest one (a row that came out of order may stay a little past its
    /// time; it cannot meet a row at or after the watermark, so no pair changes).
    fn expire(&mut self, watermark: Timestamp) {
        let keep = self.keep;
        while let Some(entry) = self.expiry.first_entry() {
            if *entry.key() >= watermark {
                break;
            }
            for key in entry.remove() {
                let Some(rows) = self.rows.get_mut(&key) else {
                    continue;
                };
                rows.retain(|(t, _)| t.saturating_add(keep) >= watermark);
                match rows.iter().map(|(t, _)| *t).min() {
                    Some(earliest) => self.schedule(key, earliest),
                    None => {
                        self.rows.remove(&key);
                    }
                }
            }
        }
    }
}

impl<K1, K2, K, A, B, F, O> Operator<Either<A, B>> for IntervalJoin<K1, K2, K, A, B, F, O>
where
    K1: KeySelector<A, Key = K>,
    K2: KeySelector<B, Key = K>,
    K: Key + Sync,
    A: Clone + Send + Sync + StateData,
    B: Clone + Send + Sync + StateData,
    F: JoinFunction<A, B, O>,
{
    type Out = O;
    const STATE_SCHEMA: u64 = crate::snapshot::record(&[
        crate::snapshot::fingerprint("interval_join"),
        <K as crate::snapshot::StateSchema>::FINGERPRINT,
        <A as crate::snapshot::StateSchema>::FINGERPRINT,
        <B as crate::snapshot::StateSchema>::FINGERPRINT,
    ]);

    fn process(&mut self, row: Either<A, B>, ts: Timestamp, out: &mut impl Output<O>) {
        if ts < self.watermark {
            self.late += 1;
            return;
        }
        let (lower, upper) = (self.lower, self.upper);
        match row {
            Either::First(a) => {
                let key = self.key_first.key(&a);
                for (t2, b) in self.seconds.of(&key) {
                    if *t2 >= ts.saturating_add(lower) && *t2 <= ts.saturating_add(upper) {
                        self.f.join(
                            &a,
                            b,
                            (ts, *t2),
                            ts.max(*t2),
                            out.side_outputs(),
                            &mut self.buf,
                        );
                        out.emit_all(&mut self.buf, ts.max(*t2));
                    }
                }
                self.firsts.push(key, ts, a);
            }
            Either::Second(b) => {
                let key = self.key_second.key(&b);
                for (t1, a) in self.firsts.of(&key) {
                    if ts >= t1.saturating_add(lower) && ts <= t1.saturating_add(upper) {
                        self.f.join(
                            a,
                            &b,
                            (*t1, ts),
                            ts.max(*t1),
                            out.side_outputs(),
                            &mut self.buf,
                        );
                        out.emit_all(&mut self.buf, ts.max(*t1));
                    }
                }
                self.seconds.push(key, ts, b);
            }
        }
    }

    fn open(&mut self, ctx: &RuntimeContext) -> Result<()> {
        if self.lower > self.upper {
            return Err(Error::Config(format!(
                "`{}`: the lower bound ({} ms) is above the upper bound ({} ms)",
                ctx.operator_name(),
                self.lower,
                self.upper
            )));
        }
        self.firsts.rows.open(ctx)?;
        self.seconds.rows.open(ctx)
    }

    /// The disk state backend's error, if a row of the batch met one.
    fn on_tick(&mut self, _: &mut impl Output<O>) -> Result<()> {
        self.firsts.rows.check()?;
        self.seconds.rows.check()
    }

    fn end_of_input(&mut self, _: &mut impl Output<O>) -> Result<()> {
        self.firsts.rows.check()?;
        self.seconds.rows.check()
    }

    fn on_watermark(&mut self, watermark: Timestamp, _: &mut impl Output<O>) -> Result<()> {
        self.watermark = watermark;
        // A first row can still meet seconds at or after the watermark only if
        // ts + upper >= watermark; a second row only firsts with ts - lower >= watermark.
        self.firsts.expire(watermark);
        self.seconds.expire(watermark);
        Ok(())
    }

    /// The rows of both sides still waiting for a partner, by key (frozen now, encoded off
    /// the row path), and the watermark.
    fn snapshot(&mut self, _: CheckpointId, state: &mut StateWriter) -> Result<Snapshot> {
        self.firsts.rows.check()?;
        self.seconds.rows.check()?;
        self.firsts.rows.write("firsts", state);
        self.seconds.rows.write("seconds", state);
        state.list("watermark", [&self.watermark])?;
        Ok(Snapshot::Taken)
    }

    fn restore(&mut self, state: &StateReader) -> Result<()> {
        state.keyed("firsts", |k, rows| self.firsts.extend(k, rows))?;
        state.keyed("seconds", |k, rows| self.seconds.extend(k, rows))?;
        if let Some(w) = state.union::<Timestamp>("watermark")?.into_iter().min() {
            self.watermark = w;
        }
        Ok(())
    }

    /// Both sides' rows and the watermark: as when the operator opened (the keys moved to
    /// another instance of the group).
    fn clear_state(&mut self) -> Result<bool> {
        self.firsts.clear()?;
        self.seconds.clear()?;
        self.watermark = MIN_WATERMARK;
        Ok(true)
    }

    fn report(&self, node: u32, metrics: &mut TaskMetrics) {
        metrics.add_late(node, self.late);
    }
}

/// The port of two keyed streams joined by `interval_join(..).between(..)` or `window_join`,
/// waiting for the function of each pair.
pub struct Joined<A, B>(std::marker::PhantomData<fn() -> (A, B)>);

impl<A, B> Joined<A, B> {
    pub(crate) fn new() -> Self {
        Joined(std::marker::PhantomData)
    }
}

impl<A: Send + 'static, K: Key> Stream<A, K> {
    /// `interval_join(other)`: both streams keyed by the same key type.
    pub fn interval_join<B>(&self, _other: &Stream<B, K>) -> Joined<A, B> {
        Joined::new()
    }
}

impl<A: Send + 'static, B: Send + 'static> Joined<A, B> {
    /// `process(|first, second, out| ..)` for each joined pair.
    pub fn process_closure<O: Send + 'static, F>(&self, f: F) -> (F, Stream<O>)
    where
        F: FnMut(&A, &B, &mut Vec<O>) + Clone + Send + 'static,
    {
        (f, Stream::new())
    }
    /// `process(|first, second, ctx, out| ..)` for each pair of an interval join, with its
    /// [`JoinContext`].
    pub fn process_with_context_closure<O: Send + 'static, F>(
        &self,
        f: F,
    ) -> (WithContext<F>, Stream<O>)
    where
        F: FnMut(&A, &B, &mut JoinContext<'_>, &mut Vec<O>) + Clone + Send + 'static,
    {
        (WithContext(f), Stream::new())
    }
}
