//! The user-function traits operators call: closures implement the stateless ones, and
//! `#[map_function]` & co. implement them for fns and impl blocks.
//!
//! Stateless and keyed variants are separate traits so that a function with `#[state]` on a
//! stream that is not keyed is a type error pointing at the user's function, with a hint.

use crate::context::RuntimeContext;
use std::hash::Hash;

/// A one-row-in, one-row-out function without keyed state.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot map rows of type `{In}`",
    label = "expects other input rows, or uses keyed state",
    note = "a map function takes one row of the stream's type; a function with `#[state]` needs a keyed stream: add `key_by` before `map`"
)]
pub trait MapFunction<In>: Clone + Send + 'static {
    /// The output row type.
    type Out: Send + 'static;
    /// Called once per instance before the first row.
    fn open(&mut self, _ctx: &RuntimeContext) {}
    /// Maps one row.
    fn map(&mut self, row: In) -> Self::Out;
    /// Called once per instance after the last row.
    fn close(&mut self) {}
}

impl<In, Out: Send + 'static, F: FnMut(In) -> Out + Clone + Send + 'static> MapFunction<In> for F {
    type Out = Out;
    #[inline(always)]
    fn map(&mut self, row: In) -> Out {
        self(row)
    }
}

/// A map function on a keyed stream; `State` holds every `#[state]` of the function for one
/// key, so one lookup per row serves them all.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot map rows of type `{In}`",
    label = "expects other input rows"
)]
pub trait KeyedMapFunction<In>: Clone + Send + 'static {
    /// The output row type.
    type Out: Send + 'static;
    /// The per-key state.
    type State: Default + Send + 'static;
    /// Called once per instance before the first row.
    fn open(&mut self, _ctx: &RuntimeContext) {}
    /// Maps one row with its key's state.
    fn map(&mut self, row: In, state: &mut Self::State) -> Self::Out;
    /// Called once per instance after the last row.
    fn close(&mut self) {}
}

impl<In, Out: Send + 'static, F: FnMut(In) -> Out + Clone + Send + 'static> KeyedMapFunction<In>
    for F
{
    type Out = Out;
    type State = ();
    #[inline(always)]
    fn map(&mut self, row: In, _: &mut ()) -> Out {
        self(row)
    }
}

/// A predicate: keeps the rows for which it returns `true`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot filter rows of type `{In}`",
    label = "expects other input rows, or uses keyed state",
    note = "a filter takes `&row` and returns `bool`; a filter with `#[state]` needs a keyed stream: add `key_by` before `filter`"
)]
pub trait FilterFunction<In>: Clone + Send + 'static {
    /// Called once per instance before the first row.
    fn open(&mut self, _ctx: &RuntimeContext) {}
    /// Whether to keep `row`.
    fn filter(&mut self, row: &In) -> bool;
    /// Called once per instance after the last row.
    fn close(&mut self) {}
}

impl<In, F: FnMut(&In) -> bool + Clone + Send + 'static> FilterFunction<In> for F {
    #[inline(always)]
    fn filter(&mut self, row: &In) -> bool {
        self(row)
    }
}

/// A filter on a keyed stream, with per-key state.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot filter rows of type `{In}`",
    label = "expects other input rows"
)]
pub trait KeyedFilterFunction<In>: Clone + Send + 'static {
    /// The per-key state.
    type State: Default + Send + 'static;
    /// Called once per instance before the first row.
    fn open(&mut self, _ctx: &RuntimeContext) {}
    /// Whether to keep `row`.
    fn filter(&mut self, row: &In, state: &mut Self::State) -> bool;
    /// Called once per instance after the last row.
    fn close(&mut self) {}
}

impl<In, F: FnMut(&In) -> bool + Clone + Send + 'static> KeyedFilterFunction<In> for F {
    type State = ();
    #[inline(always)]
    fn filter(&mut self, row: &In, _: &mut ()) -> bool {
        self(row)
    }
}

/// A one-row-in, any-number-out function. It pushes its output rows into `out`, a buffer the
/// operator drains after each call (no allocation per row once it has grown).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot flat-map rows of type `{In}`",
    label = "expects other input rows, or uses keyed state",
    note = "a flat_map closure takes a row and returns an iterator (or takes `(row, out: &mut Vec<_>)`); with `#[state]` it needs a keyed stream: add `key_by` before `flat_map`"
)]
pub trait FlatMapFunction<In>: Clone + Send + 'static {
    /// The output row type.
    type Out: Send + 'static;
    /// Called once per instance before the first row.
    fn open(&mut self, _ctx: &RuntimeContext) {}
    /// Emits the rows for one input row into `out`.
    fn flat_map(&mut self, row: In, out: &mut Vec<Self::Out>);
    /// Called once per instance after the last row.
    fn close(&mut self) {}
}

/// A flat-map function on a keyed stream, with per-key state.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot flat-map rows of type `{In}`",
    label = "expects other input rows"
)]
pub trait KeyedFlatMapFunction<In>: Clone + Send + 'static {
    /// The output row type.
    type Out: Send + 'static;
    /// The per-key state.
    type State: Default + Send + 'static;
    /// Called once per instance before the first row.
    fn open(&mut self, _ctx: &RuntimeContext) {}
    /// Emits the rows for one input row into `out`.
    fn flat_map(&mut self, row: In, state: &mut Self::State, out: &mut Vec<Self::Out>);
    /// Called once per instance after the last row.
    fn close(&mut self) {}
}

/// A flat-map closure returning an iterator: `|line| line.split(' ')...`.
#[derive(Clone)]
pub struct IterFn<F>(pub F);

impl<In, I, F> FlatMapFunction<In> for IterFn<F>
where
    I: IntoIterator,
    I::Item: Send + 'static,
    F: FnMut(In) -> I + Clone + Send + 'static,
{
    type Out = I::Item;
    #[inline(always)]
    fn flat_map(&mut self, row: In, out: &mut Vec<I::Item>) {
        out.extend((self.0)(row));
    }
}

impl<In, I, F> KeyedFlatMapFunction<In> for IterFn<F>
where
    I: IntoIterator,
    I::Item: Send + 'static,
    F: FnMut(In) -> I + Clone + Send + 'static,
{
    type Out = I::Item;
    type State = ();
    #[inline(always)]
    fn flat_map(&mut self, row: In, _: &mut (), out: &mut Vec<I::Item>) {
        out.extend((self.0)(row));
    }
}

/// A flat-map closure that pushes into the output buffer: `|line, out| out.push(...)`.
pub struct PushFn<F, Out>(pub F, pub std::marker::PhantomData<fn() -> Out>);

impl<F: Clone, Out> Clone for PushFn<F, Out> {
    fn clone(&self) -> Self {
        PushFn(self.0.clone(), std::marker::PhantomData)
    }
}

impl<In, Out: Send + 'static, F> FlatMapFunction<In> for PushFn<F, Out>
where
    F: FnMut(In, &mut Vec<Out>) + Clone + Send + 'static,
{
    type Out = Out;
    #[inline(always)]
    fn flat_map(&mut self, row: In, out: &mut Vec<Out>) {
        (self.0)(row, out)
    }
}

impl<In, Out: Send + 'static, F> KeyedFlatMapFunction<In> for PushFn<F, Out>
where
    F: FnMut(In, &mut Vec<Out>) + Clone + Send + 'static,
{
    type Out = Out;
    type State = ();
    #[inline(always)]
    fn flat_map(&mut self, row: In, _: &mut (), out: &mut Vec<Out>) {
        (self.0)(row, out)
    }
}

/// Combines two rows of the same key into one: the rolling `reduce` of a keyed stream.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot reduce rows of type `{T}`",
    label = "a reduce function takes two rows of the stream's type and returns one"
)]
pub trait ReduceFunction<T>: Clone + Send + 'static {
    /// Called once per instance before the first row.
    fn open(&mut self, _ctx: &RuntimeContext) {}
    /// Combines the accumulated row with a new one.
    fn reduce(&mut self, acc: T, row: T) -> T;
    /// Called once per instance after the last row.
    fn close(&mut self) {}
}

impl<T, F: FnMut(T, T) -> T + Clone + Send + 'static> ReduceFunction<T> for F {
    #[inline(always)]
    fn reduce(&mut self, acc: T, row: T) -> T {
        self(acc, row)
    }
}

/// Extracts the key of a row: the argument of `key_by`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot select a key from rows of type `{In}`",
    label = "a key selector takes `&row` and returns a hashable key"
)]
pub trait KeySelector<In>: Clone + Send + 'static {
    /// The key type.
    type Key: Hash + Eq + Clone + Send + 'static;
    /// The key of `row`.
    fn key(&self, row: &In) -> Self::Key;
}

impl<In, K, F> KeySelector<In> for F
where
    K: Hash + Eq + Clone + Send + 'static,
    F: Fn(&In) -> K + Clone + Send + 'static,
{
    type Key = K;
    #[inline(always)]
    fn key(&self, row: &In) -> K {
        self(row)
    }
}
