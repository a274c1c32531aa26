//! `flat_map`: one row in, any number out; with keyed state on a keyed stream.

use super::user_call;
use crate::collector::{Collector, Snapshot};
use crate::context::RuntimeContext;
use crate::exec::CheckpointId;
use crate::exec::TaskMetrics;
use crate::function::{FlatMapFunction, KeySelector, KeyedFlatMapFunction};
use crate::state::KeyedState;
use crate::time::Timestamp;
use crate::Result;
use std::marker::PhantomData;

/// A stateless flat-map. Output rows go through a buffer reused for every input row.
pub struct FlatMap<F: FlatMapFunction<In>, In, N> {
    _in: PhantomData<fn(In)>,
    f: F,
    buf: Vec<F::Out>,
    next: N,
    name: &'static str,
    node: u32,
    emitted: u64,
}

impl<F: FlatMapFunction<In>, In, N> FlatMap<F, In, N> {
    /// Opens `f` and chains it before `next`.
    pub fn new(mut f: F, node: u32, name: &'static str, ctx: &RuntimeContext, next: N) -> Self {
        let ctx = ctx.for_operator(name);
        user_call(name, || f.open(&ctx));
        FlatMap {
            _in: PhantomData,
            f,
            buf: Vec::new(),
            next,
            name,
            node,
            emitted: 0,
        }
    }
}

impl<In, F: FlatMapFunction<In>, N: Collector<F::Out>> Collector<In> for FlatMap<F, In, N> {
    #[inline(always)]
    fn collect(&mut self, row: In, ts: Timestamp) {
        let (f, buf) = (&mut self.f, &mut self.buf);
        user_call(self.name, || f.flat_map(row, buf));
        self.emitted += self.buf.len() as u64;
        for out in self.buf.drain(..) {
            self.next.collect(out, ts);
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
        metrics.add_out(self.node, self.emitted);
        self.next.report(metrics)
    }
}

/// A flat-map on a keyed stream with per-key state.
pub struct KeyedFlatMap<KS, K, F: KeyedFlatMapFunction<In>, In, N> {
    key: KS,
    f: F,
    state: KeyedState<K, F::State>,
    buf: Vec<F::Out>,
    next: N,
    name: &'static str,
    node: u32,
    emitted: u64,
}

impl<KS, K, F: KeyedFlatMapFunction<In>, In, N> KeyedFlatMap<KS, K, F, In, N> {
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
        KeyedFlatMap {
            key,
            f,
            state: KeyedState::default(),
            buf: Vec::new(),
            next,
            name,
            node,
            emitted: 0,
        }
    }
}

impl<In, KS, F, N> Collector<In> for KeyedFlatMap<KS, KS::Key, F, In, N>
where
    KS: KeySelector<In>,
    F: KeyedFlatMapFunction<In>,
    N: Collector<F::Out>,
{
    #[inline(always)]
    fn collect(&mut self, row: In, ts: Timestamp) {
        let state = self.state.get_or_default(self.key.key(&row));
        let (f, buf) = (&mut self.f, &mut self.buf);
        user_call(self.name, || f.flat_map(row, state, buf));
        self.emitted += self.buf.len() as u64;
        for out in self.buf.drain(..) {
            self.next.collect(out, ts);
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
        metrics.add_out(self.node, self.emitted);
        self.next.report(metrics)
    }
}
