//! `process(f)` on a stream that is not keyed: Flink's `ProcessFunction`. Each row may emit any
//! number of rows and send rows to side outputs by tag (`ctx.output(&tag, row)`); there is no
//! key, no keyed state and no timer (those need `key_by`, as in Flink).

use super::keyed_process::ProcessContext;
use super::{Operator, Output};
use crate::context::RuntimeContext;
use crate::function::NotKeyed;
use crate::port::{Checked, Stream};
use crate::time::{Timestamp, MIN_WATERMARK};
use crate::Result;
use std::marker::PhantomData;

/// A process function on a stream that is not keyed (Flink's `ProcessFunction`):
/// `#[process_function]` on an impl block whose `process` takes a `ProcessContext<'_>`, or a
/// closure `|row, ctx, out| ..` in `flow!`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot process rows of type `{In}` of a stream that is not keyed",
    label = "a process function takes `(row, &mut ProcessContext<'_>, &mut Vec<out>)`",
    note = "a process function with timers or keyed state (`ProcessContext<'_, Key>`) needs a keyed stream: add `key_by` before `process`"
)]
pub trait ProcessFunction<In>: Clone + Send + 'static {
    /// The output row type.
    type Out: Send + 'static;
    /// Called once per instance before the first row.
    fn open(&mut self, _ctx: &RuntimeContext) {}
    /// Handles one row.
    fn process_element(&mut self, row: In, ctx: &mut ProcessContext<'_>, out: &mut Vec<Self::Out>);
    /// Called once per instance after the last row.
    fn close(&mut self) {}
}

/// A closure `|row, ctx, out| ..` as a process function emitting rows `O`.
pub struct ProcessFn<F, O>(F, PhantomData<fn() -> O>);

impl<F: Clone, O> Clone for ProcessFn<F, O> {
    fn clone(&self) -> Self {
        ProcessFn(self.0.clone(), PhantomData)
    }
}

#[diagnostic::do_not_recommend]
impl<In, O, F> ProcessFunction<In> for ProcessFn<F, O>
where
    O: Send + 'static,
    F: FnMut(In, &mut ProcessContext<'_>, &mut Vec<O>) + Clone + Send + 'static,
{
    type Out = O;
    #[inline]
    fn process_element(&mut self, row: In, ctx: &mut ProcessContext<'_>, out: &mut Vec<O>) {
        (self.0)(row, ctx, out)
    }
}

/// The type check of `process` on a stream that is not keyed.
// The port types spell out how each function is checked (see `Checked`).
#[allow(clippy::type_complexity)]
impl<T: Send + 'static> Stream<T> {
    /// `process` with a process function.
    pub fn process<F: ProcessFunction<T>>(
        &self,
        f: F,
    ) -> (
        Checked<F::Out, F>,
        Stream<<Checked<F::Out, F> as ProcessFunction<T>>::Out>,
    ) {
        (f, Stream::new())
    }
    /// `process` with a closure `|row, ctx, out| ..`.
    pub fn process_closure<O, F>(
        &self,
        f: F,
    ) -> (
        Checked<O, ProcessFn<F, O>>,
        Stream<<Checked<O, ProcessFn<F, O>> as ProcessFunction<T>>::Out>,
    )
    where
        O: Send + 'static,
        F: FnMut(T, &mut ProcessContext<'_>, &mut Vec<O>) + Clone + Send + 'static,
    {
        (ProcessFn(f, PhantomData), Stream::new())
    }
}

/// The process operator: `f`, emitting rows `O`, with the watermark it has seen.
pub struct Process<F, O> {
    f: F,
    watermark: Timestamp,
    /// Stays empty: a `ProcessContext<'_>` has no timers.
    requests: Vec<(Timestamp, bool, bool)>,
    buf: Vec<O>,
}

impl<F, O> Process<F, O> {
    /// The operator of `f`.
    pub fn new(f: F) -> Self {
        Process {
            f,
            watermark: MIN_WATERMARK,
            requests: Vec::new(),
            buf: Vec::new(),
        }
    }
}

impl<In, F: ProcessFunction<In>> Operator<In> for Process<F, F::Out> {
    type Out = F::Out;

    #[inline]
    fn process(&mut self, row: In, ts: Timestamp, out: &mut impl Output<F::Out>) {
        let mut ctx = ProcessContext::new(
            NotKeyed::VALUE,
            ts,
            self.watermark,
            &mut self.requests,
            out.side_outputs(),
        );
        self.f.process_element(row, &mut ctx, &mut self.buf);
        out.emit_all(&mut self.buf, ts);
    }

    fn open(&mut self, ctx: &RuntimeContext) -> Result<()> {
        self.f.open(ctx);
        Ok(())
    }

    fn on_watermark(&mut self, watermark: Timestamp, _: &mut impl Output<F::Out>) -> Result<()> {
        self.watermark = watermark;
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        self.f.close();
        Ok(())
    }
}
