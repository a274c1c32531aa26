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
    label = "this function takes other rows, or keeps keyed state",
    note = "a map function takes one row of the stream's type",
    note = "a function with `#[state]` keeps state per key, so it needs a keyed stream: add `key_by` before `map`"
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

#[diagnostic::do_not_recommend]
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
    label = "this function takes other rows",
    note = "a map function takes one row of the stream's type"
)]
pub trait KeyedMapFunction<In>: Clone + Send + 'static {
    /// The output row type.
    type Out: Send + 'static;
    /// The per-key state.
    type State: crate::state::StateFields;
    /// Called once per instance before the first row.
    fn open(&mut self, _ctx: &RuntimeContext) {}
    /// Maps one row with its key's state.
    fn map(&mut self, row: In, state: &mut Self::State) -> Self::Out;
    /// Called once per instance after the last row.
    fn close(&mut self) {}
}

#[diagnostic::do_not_recommend]
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
    label = "this function takes other rows, or keeps keyed state",
    note = "a filter takes `&row` of the stream's type and returns `bool`",
    note = "a function with `#[state]` keeps state per key, so it needs a keyed stream: add `key_by` before `filter`"
)]
pub trait FilterFunction<In>: Clone + Send + 'static {
    /// What [`filter`](Self::filter) returns: `bool`. The code `flow!` generates reads it to
    /// report a function that does not fit its stream once, where it is used.
    type Out;
    /// Called once per instance before the first row.
    fn open(&mut self, _ctx: &RuntimeContext) {}
    /// Whether to keep `row`.
    fn filter(&mut self, row: &In) -> bool;
    /// Called once per instance after the last row.
    fn close(&mut self) {}
}

// `Out` comes from the closure's signature, not from the trait's, so that it is unknown for a
// value that is not such a closure (see `__private::Checked`).
#[diagnostic::do_not_recommend]
impl<In, O: Is<bool>, F: FnMut(&In) -> O + Clone + Send + 'static> FilterFunction<In> for F {
    type Out = O;
    #[inline(always)]
    fn filter(&mut self, row: &In) -> bool {
        self(row).is()
    }
}

/// A filter on a keyed stream, with per-key state.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot filter rows of type `{In}`",
    label = "this function takes other rows",
    note = "a filter takes `&row` of the stream's type and returns `bool`"
)]
pub trait KeyedFilterFunction<In>: Clone + Send + 'static {
    /// The per-key state.
    type State: crate::state::StateFields;
    /// Called once per instance before the first row.
    fn open(&mut self, _ctx: &RuntimeContext) {}
    /// Whether to keep `row`.
    fn filter(&mut self, row: &In, state: &mut Self::State) -> bool;
    /// Called once per instance after the last row.
    fn close(&mut self) {}
}

// `State` comes from the closure's signature (see `FilterFunction`'s impl): `()`.
#[diagnostic::do_not_recommend]
impl<In, O: Is<bool>, F: FnMut(&In) -> O + Clone + Send + 'static> KeyedFilterFunction<In> for F {
    type State = <O as Is<bool>>::Unit;
    #[inline(always)]
    fn filter(&mut self, row: &In, _: &mut Self::State) -> bool {
        self(row).is()
    }
}

/// A one-row-in, any-number-out function. It pushes its output rows into `out`, a buffer the
/// operator drains after each call (no allocation per row once it has grown).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot flat-map rows of type `{In}`",
    label = "this function takes other rows, or keeps keyed state",
    note = "a flat-map function takes one row of the stream's type (and `out: &mut Vec<_>`); a closure may return an iterator instead",
    note = "a function with `#[state]` keeps state per key, so it needs a keyed stream: add `key_by` before `flat_map`"
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
    label = "this function takes other rows",
    note = "a flat-map function takes one row of the stream's type (and `out: &mut Vec<_>`)"
)]
pub trait KeyedFlatMapFunction<In>: Clone + Send + 'static {
    /// The output row type.
    type Out: Send + 'static;
    /// The per-key state.
    type State: crate::state::StateFields;
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
    label = "this function takes other rows",
    note = "a reduce function takes two rows of the stream's type and returns one of that type"
)]
pub trait ReduceFunction<T>: Clone + Send + 'static {
    /// What [`reduce`](Self::reduce) returns: `T`. The code `flow!` generates reads it to
    /// report a function that does not fit its stream once, where it is used.
    type Out;
    /// Called once per instance before the first row.
    fn open(&mut self, _ctx: &RuntimeContext) {}
    /// Combines the accumulated row with a new one.
    fn reduce(&mut self, acc: T, row: T) -> T;
    /// Called once per instance after the last row.
    fn close(&mut self) {}
}

// `Out` comes from the closure's signature (see `FilterFunction`'s impl).
#[diagnostic::do_not_recommend]
impl<T, O: Is<T>, F: FnMut(T, T) -> O + Clone + Send + 'static> ReduceFunction<T> for F {
    type Out = O;
    #[inline(always)]
    fn reduce(&mut self, acc: T, row: T) -> T {
        self(acc, row).is()
    }
}

/// What a key is: a value `key_by` selects, hashed to pick a subtask and to find the key's
/// state. Timers and the current key are for keys only: a
/// [`ProcessContext`](crate::ProcessContext) on a stream that is not keyed has neither.
pub trait Key: Hash + Eq + Clone + Send + crate::snapshot::StateData {}
impl<K: Hash + Eq + Clone + Send + crate::snapshot::StateData> Key for K {}

/// The key type of a stream that is not keyed (of its [`Stream`](crate::port::Stream) port and
/// its [`ProcessContext`](crate::ProcessContext)): there is no key, and no timers.
#[derive(Clone, Copy, Debug, Default)]
pub struct NotKeyed(pub(crate) ());

impl NotKeyed {
    /// The one value.
    pub(crate) const VALUE: &'static NotKeyed = &NotKeyed(());
}

/// Extracts the key of a row: the argument of `key_by`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot select a key from rows of type `{In}`",
    label = "a key selector takes `&row` and returns a hashable key"
)]
pub trait KeySelector<In>: Clone + Send + 'static {
    /// The key type.
    type Key: Key;
    /// The key of `row`.
    fn key(&self, row: &In) -> Self::Key;
}

#[diagnostic::do_not_recommend]
impl<In, K, F> KeySelector<In> for F
where
    K: Key,
    F: Fn(&In) -> K + Clone + Send + 'static,
{
    type Key = K;
    #[inline(always)]
    fn key(&self, row: &In) -> K {
        self(row)
    }
}

/// `Self` is `T`: the return type of a closure that implements a function trait through its
/// blanket impl (`bool` for a filter, the row for a reduce).
#[doc(hidden)]
pub trait Is<T> {
    /// `()`.
    type Unit: crate::state::StateFields;
    /// `self`.
    fn is(self) -> T;
}

impl<T> Is<T> for T {
    type Unit = ();
    #[inline(always)]
    fn is(self) -> T {
        self
    }
}
