//! `a.key_by(..).window_join(b.key_by(..), windows).process(f)`: joins two keyed streams per
//! key and window (Flink's `join(..).where(..).equal_to(..).window(..)`): when a window fires,
//! `f(&first, &second, out)` runs for every pair of its rows of one key, or `f(&first, &second,
//! ctx, out)` with a [`JoinContext`] (the two rows' timestamps, side outputs). Tumbling and
//! sliding windows; results carry the window's last millisecond; rows behind the watermark are
//! late and dropped (counted).

use super::window::{TimeWindow, Windows};
use super::{Either, Operator, Output};
use crate::chain::Snapshot;
use crate::context::RuntimeContext;
use crate::exec::{CheckpointId, TaskMetrics};
use crate::function::{Key, KeySelector};
use crate::operator::interval_join::{JoinFunction, Joined};
use crate::port::Stream;
use crate::snapshot::{StateData, StateReader, StateWriter};
use crate::state::panes::Panes;
use crate::time::{now_millis, Timestamp, MAX_WATERMARK, MIN_WATERMARK, NO_TIMESTAMP};
use crate::{Error, Result};
use std::hash::Hash;
use std::sync::Arc;

/// One key's rows of both sides in one window, and their timestamps if the function reads
/// them (else empty): the window's "accumulator" in the window operator's panes
/// ([`Panes`]: in firing order, laid out for rows in order, and with the disk backend moved
/// to the store beyond the state cache).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Pane<A, B> {
    rows: (Vec<A>, Vec<B>),
    timestamps: (Vec<Timestamp>, Vec<Timestamp>),
}

impl<A, B> Default for Pane<A, B> {
    fn default() -> Self {
        Pane {
            rows: (Vec::new(), Vec::new()),
            timestamps: (Vec::new(), Vec::new()),
        }
    }
}

/// The window join of rows `A` and `B` with `f`, keyed by `key_first` and `key_second`.
pub struct WindowJoin<K1, K2, K, A, B, F, O> {
    key_first: K1,
    key_second: K2,
    windows: Windows,
    f: F,
    panes: Panes<K, Pane<A, B>>,
    assigned: Vec<TimeWindow>,
    watermark: Timestamp,
    buf: Vec<O>,
    late: u64,
}

impl<K1, K2, K, A, B, F, O> WindowJoin<K1, K2, K, A, B, F, O> {
    /// A join of rows of one key in the same window of `windows` (checked when it opens:
    /// tumbling or sliding, positive sizes).
    pub fn new(key_first: K1, key_second: K2, windows: Windows, f: F) -> Self {
        WindowJoin {
            key_first,
            key_second,
            windows,
            f,
            panes: Panes::default(),
            assigned: Vec::new(),
            watermark: MIN_WATERMARK,
            buf: Vec::new(),
            late: 0,
        }
    }
}

impl<K1, K2, K, A, B, F, O> WindowJoin<K1, K2, K, A, B, F, O>
where
    K: Hash + Eq + Clone,
    A: Clone,
    B: Clone,
    F: JoinFunction<A, B, O>,
{
    /// Adds a row to each of its windows, or counts it late.
    fn add(&mut self, key: K, ts: Timestamp, row: Either<A, B>) {
        let t = if self.windows.is_event_time() {
            ts
        } else {
            now_millis()
        };
        // The row's windows that are still open; the buffer is reused from row to row.
        let mut windows = std::mem::take(&mut self.assigned);
        windows.clear();
        self.windows.assign(t, &mut windows);
        if self.windows.is_event_time() {
            let watermark = self.watermark;
            windows.retain(|w| w.max_timestamp() > watermark);
        }
        // Cloned into every window but the last, which takes the row itself.
        if let Some((last, others)) = windows.split_last() {
            for w in others {
                self.place(key.clone(), w, row.clone(), ts);
            }
            self.place(key, last, row, ts);
        } else {
            self.late += 1;
        }
        self.assigned = windows;
    }

    /// Adds `row` (timestamp `ts`) to `key`'s rows of its input in window `w`.
    fn place(&mut self, key: K, w: &TimeWindow, row: Either<A, B>, ts: Timestamp) {
        self.panes
            .update(w.end, w.start, &key, Pane::default, |pane| {
                Self::push(pane, row, ts)
            });
    }

    fn push(pane: &mut Pane<A, B>, row: Either<A, B>, ts: Timestamp) {
        match row {
            Either::First(a) => {
                pane.rows.0.push(a);
                if F::TIMESTAMPS {
                    pane.timestamps.0.push(ts);
                }
            }
            Either::Second(b) => {
                pane.rows.1.push(b);
                if F::TIMESTAMPS {
                    pane.timestamps.1.push(ts);
                }
            }
        }
    }

    /// Joins and drops every window whose last millisecond is `time` or earlier.
    fn fire(&mut self, time: Timestamp, out: &mut impl Output<O>) {
        while !self.panes.is_empty() && self.panes.get(0).end - 1 <= time {
            let end = self.panes.get(0).end;
            if self.panes.get(0).is_stored() {
                Panes::for_each_stored(
                    self,
                    |j| &mut j.panes,
                    0,
                    |j, _, pane| j.join(&pane, end, out),
                );
            } else {
                let entries = std::mem::take(&mut self.panes.get_mut(0).entries);
                for (_, pane) in &entries {
                    self.join(pane, end, out);
                }
                // Back, for `remove` to count them out.
                self.panes.get_mut(0).entries = entries;
            }
            self.panes.remove(0);
        }
    }

    /// Every pair of one key's rows in the window ending at `end`.
    fn join(&mut self, pane: &Pane<A, B>, end: Timestamp, out: &mut impl Output<O>) {
        let ((firsts, seconds), (t1, t2)) = (&pane.rows, &pane.timestamps);
        for (i, a) in firsts.iter().enumerate() {
            for (j, b) in seconds.iter().enumerate() {
                let timestamps = if F::TIMESTAMPS {
                    (t1[i], t2[j])
                } else {
                    (NO_TIMESTAMP, NO_TIMESTAMP)
                };
                let side = out.side_outputs();
                self.f.join(a, b, timestamps, end - 1, side, &mut self.buf);
            }
        }
        out.emit_all(&mut self.buf, end - 1);
    }
}

impl<K1, K2, K, A, B, F, O> Operator<Either<A, B>> for WindowJoin<K1, K2, K, A, B, F, O>
where
    K1: KeySelector<A, Key = K>,
    K2: KeySelector<B, Key = K>,
    K: Key + Sync,
    A: Clone + Send + Sync + StateData,
    B: Clone + Send + Sync + StateData,
    F: JoinFunction<A, B, O>,
{
    type Out = O;
    /// With the rows' timestamps only when the function reads them, so that joins without
    /// keep the schema they always had.
    const STATE_SCHEMA: u64 = {
        let rows = crate::snapshot::record(&[
            crate::snapshot::fingerprint("window_join"),
            <K as crate::snapshot::StateSchema>::FINGERPRINT,
            <A as crate::snapshot::StateSchema>::FINGERPRINT,
            <B as crate::snapshot::StateSchema>::FINGERPRINT,
        ]);
        if F::TIMESTAMPS {
            crate::snapshot::record(&[rows, crate::snapshot::fingerprint("timestamps")])
        } else {
            rows
        }
    };

    fn process(&mut self, row: Either<A, B>, ts: Timestamp, _: &mut impl Output<O>) {
        let key = match &row {
            Either::First(a) => self.key_first.key(a),
            Either::Second(b) => self.key_second.key(b),
        };
        self.add(key, ts, row);
    }

    fn open(&mut self, ctx: &RuntimeContext) -> Result<()> {
        let name = ctx.operator_name();
        self.windows.validate(name)?;
        if matches!(
            self.windows,
            Windows::Session { .. } | Windows::Count { .. }
        ) {
            return Err(Error::Config(format!(
                "`{name}`: a window join takes tumbling or sliding windows"
            )));
        }
        self.panes.open(ctx)
    }

    fn on_tick(&mut self, out: &mut impl Output<O>) -> Result<()> {
        self.panes.check()?;
        if !self.windows.is_event_time() {
            self.fire(now_millis(), out);
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: Timestamp, out: &mut impl Output<O>) -> Result<()> {
        if watermark > self.watermark {
            self.watermark = watermark;
            if self.windows.is_event_time() {
                self.fire(watermark, out);
            }
        }
        Ok(())
    }

    /// Every open window's rows of both sides, by key (frozen now, encoded off the row
    /// path), and the watermark.
    fn snapshot(&mut self, _: CheckpointId, state: &mut StateWriter) -> Result<Snapshot> {
        self.panes.check()?;
        // Copied now (stored panes: an MVCC view of the store), encoded off the row path;
        // both sections read the same copy.
        let panes = Arc::new(self.panes.snapshot());
        let shared = panes.clone();
        state.keyed_deferred::<K, (Timestamp, Timestamp, (Vec<A>, Vec<B>)), _>(
            "panes",
            panes,
            move |panes, out| {
                panes.try_for_each(|k, end, start, _, p| out.entry(k, (end, start, &p.rows)))
            },
        );
        if F::TIMESTAMPS {
            state.keyed_deferred::<K, (Timestamp, Timestamp, (Vec<Timestamp>, Vec<Timestamp>)), _>(
                "timestamps",
                shared,
                |panes, out| {
                    panes.try_for_each(|k, end, start, _, p| {
                        out.entry(k, (end, start, &p.timestamps))
                    })
                },
            );
        }
        state.list("watermark", [&self.watermark])?;
        Ok(Snapshot::Taken)
    }

    fn restore(&mut self, state: &StateReader) -> Result<()> {
        // A key appears once per window in a checkpoint (its old subtasks held disjoint
        // keys); its timestamps, in their own section, join its rows. (Restored as fired: a
        // join's panes have no firing to remember, and so keep no list of keys yet to fire.)
        state.keyed(
            "panes",
            |k, (end, start, rows): (Timestamp, Timestamp, (Vec<A>, Vec<B>))| {
                let pane = Pane {
                    rows,
                    timestamps: Default::default(),
                };
                self.panes.restore(end, start, true, k, pane);
            },
        )?;
        if F::TIMESTAMPS {
            state.keyed(
                "timestamps",
                |k, (end, start, t): (Timestamp, Timestamp, (Vec<Timestamp>, Vec<Timestamp>))| {
                    self.panes
                        .update(end, start, &k, Pane::default, |pane| pane.timestamps = t);
                },
            )?;
        }
        self.panes.check()?;
        if let Some(w) = state.union::<Timestamp>("watermark")?.into_iter().min() {
            self.watermark = w;
        }
        Ok(())
    }

    /// Every open window of every key, and the watermark: as when the operator opened (the
    /// keys moved to another instance of the group).
    fn clear_state(&mut self) -> Result<bool> {
        self.panes.check()?;
        self.panes.clear()?;
        self.watermark = MIN_WATERMARK;
        Ok(true)
    }

    fn end_of_input(&mut self, out: &mut impl Output<O>) -> Result<()> {
        self.fire(MAX_WATERMARK, out);
        self.panes.check()
    }

    fn report(&self, node: u32, metrics: &mut TaskMetrics) {
        metrics.add_late(node, self.late);
    }
}

impl<A: Send + 'static, K: Key> Stream<A, K> {
    /// `window_join(other, windows)`: both streams keyed by the same key type.
    pub fn window_join<B>(
        &self,
        _other: &Stream<B, K>,
        windows: Windows,
    ) -> (Windows, Joined<A, B>) {
        (windows, Joined::new())
    }
}
