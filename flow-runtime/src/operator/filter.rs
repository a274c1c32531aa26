//! `filter`: keeps the rows a predicate accepts; with keyed state on a keyed stream.

use super::user_call;
use crate::collector::{Collector, Snapshot};
use crate::context::RuntimeContext;
use crate::exec::CheckpointId;
use crate::exec::TaskMetrics;
use crate::function::{FilterFunction, KeySelector, KeyedFilterFunction};
use crate::state::KeyedState;
use crate::time::Timestamp;
use crate::Result;
use std::marker::PhantomData;

/// A stateless filter.
pub struct Filter<F, In, N> {
    _in: PhantomData<fn(In)>,
    f: F,
    next: N,
    name: &'static str,
    node: u32,
    kept: u64,
}

impl<F: FilterFunction<In>, In, N> Filter<F, In, N> {
    /// Opens `f` and chains it before `next`.
    pub fn new(mut f: F, node: u32, name: &'static str, ctx: &RuntimeContext, next: N) -> Self {
        let ctx = ctx.for_operator(name);
        user_call(name, || f.open(&ctx));
        Filter {
            _in: PhantomData,
            f,
            next,
            name,
            node,
            kept: 0,
        }
    }
}

impl<In, F: FilterFunction<In>, N: Collector<In>> Collector<In> for Filter<F, In, N> {
    #[inline(always)]
    fn collect(&mut self, row: In, ts: Timestamp) {
        if user_call(self.name, || self.f.filter(&row)) {
            self.kept += 1;
            self.next.collect(row, ts);
        }
    }
    #[inline]
    fn flush(&mut self) -> Result<()> {
        self.next.flush()
    }
    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.next.watermark(watermark)
    }
    fn idle(&mut self, idle: bool) -> Result<()> {
        self.next.idle(idle)
    }
    fn barrier(&mut self, id: CheckpointId) -> Result<Snapshot> {
        self.next.barrier(id)
    }
    fn finish(&mut self) -> Result<()> {
        user_call(self.name, || self.f.close());
        self.next.finish()
    }
    fn report(&self, metrics: &mut TaskMetrics) {
        metrics.add_out(self.node, self.kept);
        self.next.report(metrics)
    }
}

/// A filter on a keyed stream with per-key state.
pub struct KeyedFilter<KS, K, F: KeyedFilterFunction<In>, In, N> {
    key: KS,
    f: F,
    state: KeyedState<K, F::State>,
    next: N,
    name: &'static str,
    node: u32,
    kept: u64,
}

impl<KS, K, F: KeyedFilterFunction<In>, In, N> KeyedFilter<KS, K, F, In, N> {
    /// Opens `f` and chains it before `next`, keyed by `key`.
    pub fn new(
        key: KS,
        mut f: F,
        node: u32,
        name: &'static str,
        ctx: &RuntimeContext,
        next: N,
    ) -> Self {
        let ctx = ctx.for_operator(name);
        user_call(name, || f.open(&ctx));
        KeyedFilter {
            key,
            f,
            state: KeyedState::default(),
            next,
            name,
            node,
            kept: 0,
        }
    }
}

impl<In, KS, F, N> Collector<In> for KeyedFilter<KS, KS::Key, F, In, N>
where
    KS: KeySelector<In>,
    F: KeyedFilterFunction<In>,
    N: Collector<In>,
{
    #[inline(always)]
    fn collect(&mut self, row: In, ts: Timestamp) {
        let state = self.state.get_or_default(self.key.key(&row));
        let f = &mut self.f;
        if user_call(self.name, || f.filter(&row, state)) {
            self.kept += 1;
            self.next.collect(row, ts);
        }
    }
    #[inline]
    fn flush(&mut self) -> Result<()> {
        self.next.flush()
    }
    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.next.watermark(watermark)
    }
    fn idle(&mut self, idle: bool) -> Result<()> {
        self.next.idle(idle)
    }
    fn barrier(&mut self, id: CheckpointId) -> Result<Snapshot> {
        super::keyed_barrier::<F::State, _, _>(&mut self.next, id, self.name)
    }
    fn finish(&mut self) -> Result<()> {
        user_call(self.name, || self.f.close());
        self.next.finish()
    }
    fn report(&self, metrics: &mut TaskMetrics) {
        metrics.add_out(self.node, self.kept);
        self.next.report(metrics)
    }
}
