//! `connect(other).co_map(f1, f2)`: two streams of any row types into one output type, a
//! function per input (Flink's `CoMapFunction`). The stage after `connect` reads both inputs
//! through two input gates; its watermark is the minimum of the two.

use super::{Either, Operator, Output};
use crate::time::Timestamp;

/// `co_map(first, second)`.
pub struct CoMap<F1, F2> {
    first: F1,
    second: F2,
}

impl<F1, F2> CoMap<F1, F2> {
    /// `first` maps the first input's rows, `second` the second's.
    pub fn new(first: F1, second: F2) -> Self {
        CoMap { first, second }
    }
}

impl<A, B, O, F1, F2> Operator<Either<A, B>> for CoMap<F1, F2>
where
    F1: FnMut(A) -> O,
    F2: FnMut(B) -> O,
{
    type Out = O;
    const ONE_TO_ONE: bool = true;
    #[inline]
    fn process(&mut self, row: Either<A, B>, ts: Timestamp, out: &mut impl Output<O>) {
        let row = match row {
            Either::First(a) => (self.first)(a),
            Either::Second(b) => (self.second)(b),
        };
        out.emit(row, ts);
    }
}
