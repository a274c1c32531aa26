//! `reduce` on a keyed stream: a rolling aggregate per key.
//!
//! Streaming mode emits the new aggregate after every row (Flink's rolling reduce); batch mode
//! emits only each key's final aggregate at the end of input, as Flink's BATCH runtime mode.

use super::user_call;
use crate::collector::Collector;
use crate::context::RuntimeContext;
use crate::env::RuntimeMode;
use crate::exec::TaskMetrics;
use crate::function::{KeySelector, ReduceFunction};
use crate::state::KeyedState;
use crate::time::Timestamp;
use crate::Result;

/// A keyed rolling reduce.
pub struct Reduce<KS, K, F, T, N> {
    key: KS,
    f: F,
    state: KeyedState<K, Option<T>>,
    batch: bool,
    next: N,
    name: &'static str,
    node: u32,
    emitted: u64,
}

impl<KS, K, F, T, N> Reduce<KS, K, F, T, N> {
    /// Opens `f` and chains it before `next`, keyed by `key`.
    pub fn new(
        key: KS,
        mut f: F,
        node: u32,
        name: &'static str,
        ctx: &RuntimeContext,
        next: N,
    ) -> Self
    where
        F: ReduceFunction<T>,
    {
        let batch = ctx.mode() == RuntimeMode::Batch;
        let ctx = ctx.for_operator(name);
        user_call(name, || f.open(&ctx));
        Reduce {
            key,
            f,
            state: KeyedState::default(),
            batch,
            next,
            name,
            node,
            emitted: 0,
        }
    }
}

impl<T, KS, F, N> Collector<T> for Reduce<KS, KS::Key, F, T, N>
where
    T: Clone,
    KS: KeySelector<T>,
    F: ReduceFunction<T>,
    N: Collector<T>,
{
    #[inline(always)]
    fn collect(&mut self, row: T) {
        let acc = self.state.get_or_default(self.key.key(&row));
        let f = &mut self.f;
        let new = match acc.take() {
            Some(prev) => user_call(self.name, || f.reduce(prev, row)),
            None => row,
        };
        if self.batch {
            *acc = Some(new);
        } else {
            *acc = Some(new.clone());
            self.emitted += 1;
            self.next.collect(new);
        }
    }
    #[inline]
    fn flush(&mut self) -> Result<()> {
        self.next.flush()
    }
    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.next.watermark(watermark)
    }
    fn finish(&mut self) -> Result<()> {
        if self.batch {
            let mut n = 0;
            for (_, acc) in self.state.drain() {
                if let Some(row) = acc {
                    n += 1;
                    self.next.collect(row);
                }
            }
            self.emitted += n;
        }
        user_call(self.name, || self.f.close());
        self.next.finish()
    }
    fn report(&self, metrics: &mut TaskMetrics) {
        metrics.add_out(self.node, self.emitted);
        self.next.report(metrics)
    }
}
