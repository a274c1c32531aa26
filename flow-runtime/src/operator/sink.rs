//! Sinks: one writer per parallel subtask, the last collector of its stage's chain.

use crate::collector::Collector;
use crate::context::RuntimeContext;
use crate::Result;

/// Where a stream's rows end up (Flink's `Sink`): it creates one writer per subtask.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot write rows of type `{T}`",
    label = "this sink does not accept the stream's rows",
    note = "check the row type the sink was built for against the stream's row type"
)]
pub trait Sink<T>: Send + Sync + 'static {
    /// The per-subtask writer.
    type Writer: Collector<T>;
    /// The parallelism the sink insists on (`None`: the stream's).
    fn parallelism(&self) -> Option<usize> {
        None
    }
    /// Opens the writer of subtask `ctx.subtask_index()`.
    ///
    /// # Errors
    /// The sink cannot be opened (directory not creatable, ...).
    fn create_writer(&self, ctx: &RuntimeContext, node: u32) -> Result<Self::Writer>;
}
