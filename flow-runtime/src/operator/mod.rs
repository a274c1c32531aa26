//! The operators of a fused stage, one file per DSL word (the same names as
//! `flow-macros/src/ops/`). Each is a [`Collector`](crate::collector::Collector) wrapping the
//! next one, so a stage is one nested generic type the compiler inlines into a single loop.

pub mod connect;
pub mod filter;
pub mod flat_map;
pub mod key_by;
pub mod map;
pub mod process;
pub mod rebalance;
pub mod reduce;
pub mod sink;
pub mod source;
pub mod union;
pub mod window;

use crate::collector::{Collector, Snapshot};
use crate::exec::CheckpointId;
use std::cell::Cell;

thread_local! {
    static PANICKED_IN: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// Names the operator whose user function is running, for the job's error if it panics.
///
/// Created before a user call and forgotten after it, so its `Drop` runs only while unwinding:
/// no cost on the normal path.
pub(crate) struct PanicGuard(pub(crate) &'static str);

impl Drop for PanicGuard {
    fn drop(&mut self) {
        PANICKED_IN.with(|c| {
            if c.get().is_none() {
                c.set(Some(self.0));
            }
        });
    }
}

/// A checkpoint barrier at a keyed `map`/`filter`/`flat_map` whose per-key state is `S`:
/// passed on to `next` when `S` is zero-sized (the function keeps no state), declined
/// otherwise (keyed state is not snapshot yet).
pub(crate) fn keyed_barrier<S, T, N: Collector<T>>(
    next: &mut N,
    id: CheckpointId,
    operator: &'static str,
) -> crate::Result<Snapshot> {
    if std::mem::size_of::<S>() == 0 {
        next.barrier(id)
    } else {
        Ok(Snapshot::Declined(operator))
    }
}

/// Calls `f` as user code of `operator`.
#[inline(always)]
pub(crate) fn user_call<R>(operator: &'static str, f: impl FnOnce() -> R) -> R {
    let guard = PanicGuard(operator);
    let r = f();
    std::mem::forget(guard);
    r
}

/// The operator a panic on this thread unwound through first, if any; resets it.
pub(crate) fn take_panicked_operator() -> Option<&'static str> {
    PANICKED_IN.with(|c| c.take())
}
