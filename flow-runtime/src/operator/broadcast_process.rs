//! `a.connect(b.broadcast()).process(f)`: every subtask receives every row of the broadcast
//! input and keeps state from it (rules, thresholds, ...) that the other input's rows read
//! (Flink's `BroadcastProcessFunction`). As in Flink, the broadcast input is not ordered
//! against the other one.

use super::{Either, Operator, Output};
use crate::chain::Snapshot;
use crate::exec::CheckpointId;
use crate::operator::connect::Connected;
use crate::port::Stream;
use crate::snapshot::{StateData, StateReader, StateWriter};
use crate::time::Timestamp;
use crate::Result;

/// The function of `a.connect(b.broadcast()).process(f)` (Flink's `BroadcastProcessFunction`):
/// every subtask receives every row of the broadcast input and keeps `State` from them (rules,
/// thresholds, ...), which the rows of the other input read.
pub trait BroadcastProcessFunction<A, B>: Clone + Send + 'static {
    /// The broadcast state of one subtask.
    type State: Default + Send + 'static;
    /// The output row type.
    type Out: Send + 'static;
    /// A row of the first (non-broadcast) input, with read access to the broadcast state.
    fn process_element(&mut self, row: A, state: &Self::State, out: &mut Vec<Self::Out>);
    /// A row of the broadcast input, updating the broadcast state.
    fn process_broadcast_element(
        &mut self,
        row: B,
        state: &mut Self::State,
        out: &mut Vec<Self::Out>,
    );
}

/// The broadcast-process operator: `f` with one broadcast state per subtask.
pub struct BroadcastProcess<F: BroadcastProcessFunction<A, B>, A, B> {
    f: F,
    state: F::State,
    buf: Vec<F::Out>,
    _in: std::marker::PhantomData<fn(A, B)>,
}

impl<F: BroadcastProcessFunction<A, B>, A, B> BroadcastProcess<F, A, B> {
    /// `f`, with an empty broadcast state.
    pub fn new(f: F) -> Self {
        BroadcastProcess {
            f,
            state: F::State::default(),
            buf: Vec::new(),
            _in: std::marker::PhantomData,
        }
    }
}

impl<F, A, B> Operator<Either<A, B>> for BroadcastProcess<F, A, B>
where
    F: BroadcastProcessFunction<A, B>,
    F::State: StateData,
{
    type Out = F::Out;
    const STATE_SCHEMA: u64 = crate::snapshot::record(&[
        crate::snapshot::fingerprint("broadcast_process"),
        <F::State as crate::snapshot::StateSchema>::FINGERPRINT,
    ]);

    fn process(&mut self, row: Either<A, B>, ts: Timestamp, out: &mut impl Output<F::Out>) {
        match row {
            Either::First(a) => self.f.process_element(a, &self.state, &mut self.buf),
            Either::Second(b) => {
                self.f
                    .process_broadcast_element(b, &mut self.state, &mut self.buf)
            }
        }
        out.emit_all(&mut self.buf, ts);
    }

    /// The broadcast state (the same on every subtask: each saves its copy, as Flink's).
    fn snapshot(&mut self, _: CheckpointId, state: &mut StateWriter) -> Result<Snapshot> {
        state.list("broadcast", [&self.state])?;
        Ok(Snapshot::Taken)
    }

    /// Any subtask's copy: every one saw the same broadcast rows.
    fn restore(&mut self, state: &StateReader) -> Result<()> {
        if let Some(s) = state.union::<F::State>("broadcast")?.into_iter().next() {
            self.state = s;
        }
        Ok(())
    }
}

impl<A: Send + 'static, B: Send + 'static> Connected<A, B> {
    /// `process(f)` after `connect(b.broadcast())`: a broadcast process function.
    pub fn broadcast_process<F: BroadcastProcessFunction<A, B>>(
        &self,
        f: F,
    ) -> (F, Stream<F::Out>) {
        (f, Stream::new())
    }
}
