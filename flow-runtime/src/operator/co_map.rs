//! `connect(other).co_map(f1, f2)`: two streams of any row types into one output type, a
//! function per input (Flink's `CoMapFunction`). The stage after `connect` reads both inputs
//! through two input gates; its watermark is the minimum of the two.

use super::{Either, Operator, Output};
use crate::operator::connect::Connected;
use crate::port::Stream;
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

impl<A: Send + 'static, B: Send + 'static, K> Connected<A, B, K> {
    /// `co_map(f1, f2)`.
    pub fn co_map<O: Send + 'static, F1, F2>(&self, f1: F1, f2: F2) -> ((F1, F2), Stream<O>)
    where
        F1: FnMut(A) -> O + Clone + Send + 'static,
        F2: FnMut(B) -> O + Clone + Send + 'static,
    {
        ((f1, f2), Stream::new())
    }
}
