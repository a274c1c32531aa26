//! Ports: how `flow!` type-checks a pipeline, on the user's tokens.
//!
//! The code `flow!` generates first walks the job graph with typed *ports*, values that carry
//! nothing at run time but the row type of a stream at one point of the graph (and its key
//! type, if it is keyed). Each operator word becomes a call of the port method of its name:
//!
//! ```text
//! let (__f1, __t1) = __t0.map(count_first_two);      // __t0: Stream<i64>
//! //   ^ the checked function   ^ Stream<KeyCount>
//! ```
//!
//! rustc infers every row type along the way and checks every function against the rows it
//! receives, exactly as it would in a plain Rust program. Closures keep their own spans, and
//! any other argument is bound to a variable spanned at the user's argument, so a mistake is
//! reported where the user wrote it. The runtime operators are built afterwards from the
//! checked values; they are never the first to see a type.
//!
//! A port method returns the function it checked as [`Checked`]: when the check fails, the
//! function's type is left unknown, so the operators built from it raise no second error (see
//! [`Checked`]). The method that checks an operator lives in that operator's file, with the
//! operator: one file says how an operator runs and how it is checked.
//!
//! Ports are public so that this documentation is; a program has no reason to call them.

use crate::channel::{EdgeChannels, InputGate, Receiver};
use crate::function::NotKeyed;
use std::marker::PhantomData;

/// The port of a stream of rows `T`, keyed by key type `K` after `key_by` ([`NotKeyed`]
/// otherwise). The methods of a keyed stream are those of a stream plus the keyed ones
/// (`reduce`, `window`, a keyed `process`, ...): one type, so no method is written twice.
pub struct Stream<T, K = NotKeyed>(PhantomData<fn() -> (T, K)>);

impl<T, K> Stream<T, K> {
    /// The port of another stream: what a port method returns.
    pub(crate) fn new() -> Self {
        Stream(PhantomData)
    }
}

/// `F`, once `O` is known. A port method returns its function as `Checked<O, F>`, where `O` is
/// an associated type of the trait the function must implement: if the function does not fit
/// the stream, `O` stays unknown, so does the function's type, and the chain built from it
/// raises no second error. Only the port's error, on the user's tokens, is reported.
///
/// The output port's row type is then read from the checked function
/// (`<Checked<F::Out, F> as MapFunction<T>>::Out`), not from `F::Out` itself: a later operator
/// that fixes the row type (`union`, a typed sink) must not make the function known again.
pub type Checked<O, F> = <O as Pass<F>>::Is;

/// See [`Checked`].
pub trait Pass<F> {
    /// `F`.
    type Is;
}
impl<O: ?Sized, F> Pass<F> for O {
    type Is = F;
}

/// The row type an impl-block function was written for: its stateless trait impls take any
/// row `T: Same<Row>`, so that a function used on the wrong stream is reported as one error
/// on the user's argument.
#[diagnostic::on_unimplemented(
    message = "this function takes rows of type `{T}`, but the stream's rows are `{Self}`",
    label = "row type mismatch"
)]
pub trait Same<T> {
    /// The row, as the function's type.
    fn same(self) -> T;
    /// A reference to the row, as the function's type.
    fn same_ref(&self) -> &T;
}
impl<T> Same<T> for T {
    #[inline(always)]
    fn same(self) -> T {
        self
    }
    #[inline(always)]
    fn same_ref(&self) -> &T {
        self
    }
}

impl<T: Send + 'static, K> Stream<T, K> {
    /// The channels of an edge carrying this stream's rows from `up` to `down` subtasks.
    pub fn channels(&self, up: usize, down: usize, pointwise: bool) -> EdgeChannels<T> {
        EdgeChannels::new(up, down, pointwise)
    }
    /// The channels of a hash edge (`key_by`) into input `input` of node `node`: in-process,
    /// or through a repartition topic when the job runs in an instance group (`codec`
    /// encodes its rows, when serde can).
    pub fn hash_channels(
        &self,
        job: &mut crate::exec::JobBuilder,
        node: u32,
        input: usize,
        codec: Option<crate::instances::RowCodec>,
        up: usize,
        down: usize,
    ) -> EdgeChannels<T> {
        job.hash_channels(node, input, codec, std::any::type_name::<T>(), up, down)
    }
    /// The probe that finds this stream's row codec (see
    /// [`RowCodecProbe`](crate::instances::RowCodecProbe)).
    pub fn codec_probe(&self) -> crate::instances::RowCodecProbe<T> {
        crate::instances::RowCodecProbe::new()
    }
    /// The input gate of a stage reading this stream's rows from `inputs`.
    pub fn gate(&self, inputs: Vec<Receiver>) -> InputGate<T> {
        InputGate::new(inputs)
    }
}
