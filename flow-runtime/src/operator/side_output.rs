//! `side_output(&tag)`: the rows an operator emits besides its main output, by tag (Flink's
//! `OutputTag`): a window's late rows (`side_output_late_data`), or what a process function
//! sends with `ctx.output(&tag, row)`. An operator's side outputs travel with it in its
//! [`Chained`](super::Chained) link, which passes watermarks, barriers and the end of input
//! on to them as to the main output.

use crate::chain::{Collector, Control, Discard};
use crate::time::Timestamp;
use std::any::Any;
use std::marker::PhantomData;

/// A typed name for a side output (Flink's `OutputTag`): rows of type `T` an operator emits
/// besides its main output, read with `.side_output(&tag)` in `flow!`.
///
/// # Examples
/// ```
/// use flow_runtime::OutputTag;
/// let late = OutputTag::<(String, i64)>::new("late-events");
/// assert_eq!(late.id(), "late-events");
/// ```
pub struct OutputTag<T> {
    id: String,
    _rows: PhantomData<fn() -> T>,
}

impl<T> OutputTag<T> {
    /// A tag named `id`.
    pub fn new(id: impl Into<String>) -> Self {
        OutputTag {
            id: id.into(),
            _rows: PhantomData,
        }
    }
    /// The tag's name.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl<T> Clone for OutputTag<T> {
    fn clone(&self) -> Self {
        OutputTag::new(self.id.clone())
    }
}

impl<T> std::fmt::Debug for OutputTag<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("OutputTag").field(&self.id).finish()
    }
}

/// The side outputs of one operator: rows go by tag name to the collectors that read them.
pub trait SideOutputs: Control {
    /// Emits the row in `slot` (an `Option<T>`) to `tag`, if a collector of that tag and row
    /// type reads it.
    fn emit(&mut self, tag: &str, slot: &mut dyn Any, ts: Timestamp);
}

/// No side outputs: emitted rows are dropped (the end of a chain, [`Discard`], is the empty
/// list of side outputs too).
pub use crate::chain::Discard as NoSideOutputs;

impl SideOutputs for Discard {
    fn emit(&mut self, _: &str, _: &mut dyn Any, _: Timestamp) {}
}

/// One side output (tag name and the chain reading it), then the others.
pub struct SideOutput<T, C, Rest> {
    tag: String,
    collector: C,
    rest: Rest,
    _rows: PhantomData<fn(T)>,
}

impl<T, C, Rest> SideOutput<T, C, Rest> {
    /// `collector` reads tag `tag`; `rest` the other tags.
    pub fn new(tag: &OutputTag<T>, collector: C, rest: Rest) -> Self {
        SideOutput {
            tag: tag.id().to_string(),
            collector,
            rest,
            _rows: PhantomData,
        }
    }
}

impl<T: 'static, C: Collector<T>, Rest: SideOutputs> SideOutputs for SideOutput<T, C, Rest> {
    fn emit(&mut self, tag: &str, slot: &mut dyn Any, ts: Timestamp) {
        if tag == self.tag {
            if let Some(row) = slot.downcast_mut::<Option<T>>().and_then(Option::take) {
                self.collector.collect(row, ts);
                return;
            }
        }
        self.rest.emit(tag, slot, ts);
    }
}

crate::chain::control_of_pair!(
    impl<T, C, Rest> Control for SideOutput<T, C, Rest> { collector, rest }
    where C: Control, Rest: Control
);

/// The port of `.side_output(&tag)`: a stream of the tag's row type.
pub fn side_output<T>(_tag: &OutputTag<T>) -> crate::port::Stream<T> {
    crate::port::Stream::new()
}

/// A side output's tag, kept for the operator that emits to it.
pub fn side_tag<T>(tag: &OutputTag<T>) -> OutputTag<T> {
    tag.clone()
}

/// The name of a side-output tag, for the operators that emit to it.
pub fn tag_id<T>(tag: &OutputTag<T>) -> String {
    tag.id().to_string()
}
