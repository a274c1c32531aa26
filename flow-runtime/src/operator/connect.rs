//! `connect` + `co_map` / `co_flat_map`: two streams of different row types into one
//! operator (Flink's `ConnectedStreams`). The stage after `connect` reads both inputs through
//! two input gates; its watermark is the minimum of the two.

use super::user_call;
use crate::collector::Collector;
use crate::context::RuntimeContext;
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
    fn finish(&mut self) -> Result<()> {
        self.next.finish()
    }
    fn report(&self, metrics: &mut TaskMetrics) {
        metrics.add_out(self.node, self.emitted);
        self.next.report(metrics)
    }
}
