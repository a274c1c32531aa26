//! `map`: one row in, one row out; with keyed state on a keyed stream.

use super::user_call;
use crate::collector::{Collector, Snapshot};
use crate::context::RuntimeContext;
use crate::exec::CheckpointId;
use crate::exec::TaskMetrics;
use crate::function::{KeySelector, KeyedMapFunction, MapFunction};
use crate::state::KeyedState;
use crate::time::Timestamp;
use crate::Result;
use std::marker::PhantomData;

/// A stateless map.
pub struct Map<F, In, N> {
    f: F,
    next: N,
    name: &'static str,
    _in: PhantomData<fn(In)>,
}

impl<F: MapFunction<In>, In, N> Map<F, In, N> {
    /// Opens `f` and chains it before `next`.
    pub fn new(mut f: F, name: &'static str, ctx: &RuntimeContext, next: N) -> Self {
        let ctx = ctx.for_operator(name);
        user_call(name, || f.open(&ctx));
        Map {
            f,
            next,
            name,
            _in: PhantomData,
        }
    }
}

impl<In, F: MapFunction<In>, N: Collector<F::Out>> Collector<In> for Map<F, In, N> {
    #[inline(always)]
    fn collect(&mut self, row: In, ts: Timestamp) {
        let out = user_call(self.name, || self.f.map(row));
        self.next.collect(out, ts);
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
        self.next.report(metrics)
    }
}

/// A map on a keyed stream: looks up the row's key once and passes the function its state.
pub struct KeyedMap<KS, K, F: KeyedMapFunction<In>, In, N> {
    key: KS,
    f: F,
    state: KeyedState<K, F::State>,
    next: N,
    name: &'static str,
}

impl<KS, K, F: KeyedMapFunction<In>, In, N> KeyedMap<KS, K, F, In, N> {
    /// Opens `f` and chains it before `next`, keyed by `key`.
    pub fn new(key: KS, mut f: F, name: &'static str, ctx: &RuntimeContext, next: N) -> Self {
        let ctx = ctx.for_operator(name);
        user_call(name, || f.open(&ctx));
        KeyedMap {
            key,
            f,
            state: KeyedState::default(),
            next,
            name,
        }
    }
}

impl<In, KS, F, N> Collector<In> for KeyedMap<KS, KS::Key, F, In, N>
where
    KS: KeySelector<In>,
    F: KeyedMapFunction<In>,
    N: Collector<F::Out>,
{
    #[inline(always)]
    fn collect(&mut self, row: In, ts: Timestamp) {
        let state = self.state.get_or_default(self.key.key(&row));
        let f = &mut self.f;
        let out = user_call(self.name, || f.map(row, state));
        self.next.collect(out, ts);
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
        self.next.report(metrics)
    }
}
