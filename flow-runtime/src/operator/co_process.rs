//! `connect(other).process(f)` of two keyed streams: a `#[co_process_function]` (Flink's
//! `KeyedCoProcessFunction`) with state and timers shared by both inputs per key.
//!
//! It is the keyed process operator over rows of either input ([`Either`]): [`CoProcess`]
//! turns the function into a keyed process function, [`EitherKey`] picks each row's key.

use super::keyed_process::{KeyedProcessFunction, ProcessContext};
use super::Either;
use crate::context::RuntimeContext;
use crate::function::{Key, KeySelector};
use crate::operator::connect::Connected;
use crate::port::Stream;
use crate::time::Timestamp;

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
    type State: crate::state::StateFields;
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

/// A co-process function as the keyed process function of its two inputs' rows: the keyed
/// co-process operator is the keyed process operator over `Either` rows.
#[derive(Clone)]
pub struct CoProcess<F>(pub F);

impl<K, A, B, F: KeyedCoProcessFunction<K, A, B>> KeyedProcessFunction<K, Either<A, B>>
    for CoProcess<F>
{
    type Out = F::Out;
    type State = F::State;
    fn open(&mut self, ctx: &RuntimeContext) {
        self.0.open(ctx);
    }
    #[inline]
    fn process_element(
        &mut self,
        row: Either<A, B>,
        state: &mut F::State,
        ctx: &mut ProcessContext<'_, K>,
        out: &mut Vec<F::Out>,
    ) {
        match row {
            Either::First(row) => self.0.process_element1(row, state, ctx, out),
            Either::Second(row) => self.0.process_element2(row, state, ctx, out),
        }
    }
    fn on_timer(
        &mut self,
        timestamp: Timestamp,
        state: &mut F::State,
        ctx: &mut ProcessContext<'_, K>,
        out: &mut Vec<F::Out>,
    ) {
        self.0.on_timer(timestamp, state, ctx, out);
    }
    fn close(&mut self) {
        self.0.close();
    }
}

/// The key of a row of either input: `first`'s selector on the first input's rows,
/// `second`'s on the second's (both give the same key type).
#[derive(Clone)]
pub struct EitherKey<K1, K2>(pub K1, pub K2);

impl<A, B, K1, K2> KeySelector<Either<A, B>> for EitherKey<K1, K2>
where
    K1: KeySelector<A>,
    K2: KeySelector<B, Key = K1::Key>,
{
    type Key = K1::Key;
    #[inline(always)]
    fn key(&self, row: &Either<A, B>) -> K1::Key {
        match row {
            Either::First(a) => self.0.key(a),
            Either::Second(b) => self.1.key(b),
        }
    }
}

impl<A: Send + 'static, B: Send + 'static, K: Key> Connected<A, B, K> {
    /// `process(f)` on two keyed streams: a keyed co-process function.
    pub fn co_process<F: KeyedCoProcessFunction<K, A, B>>(&self, f: F) -> (F, Stream<F::Out>) {
        (f, Stream::new())
    }
}
