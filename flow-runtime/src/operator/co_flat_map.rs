//! `connect(other).co_flat_map(f1, f2)`: two streams of any row types, a function per input
//! returning any number of rows (an iterator) of one output type (Flink's
//! `CoFlatMapFunction`).

use super::{Either, Operator, Output};
use crate::operator::connect::Connected;
use crate::port::Stream;
use crate::time::Timestamp;

/// `co_flat_map(first, second)`.
pub struct CoFlatMap<F1, F2> {
    first: F1,
    second: F2,
}

impl<F1, F2> CoFlatMap<F1, F2> {
    /// `first` handles the first input's rows, `second` the second's.
    pub fn new(first: F1, second: F2) -> Self {
        CoFlatMap { first, second }
    }
}

impl<A, B, O, I1, I2, F1, F2> Operator<Either<A, B>> for CoFlatMap<F1, F2>
where
    F1: FnMut(A) -> I1,
    F2: FnMut(B) -> I2,
    I1: IntoIterator<Item = O>,
    I2: IntoIterator<Item = O>,
{
    type Out = O;
    #[inline]
    fn process(&mut self, row: Either<A, B>, ts: Timestamp, out: &mut impl Output<O>) {
        match row {
            Either::First(a) => (self.first)(a).into_iter().for_each(|r| out.emit(r, ts)),
            Either::Second(b) => (self.second)(b).into_iter().for_each(|r| out.emit(r, ts)),
        }
    }
}

impl<A: Send + 'static, B: Send + 'static, K> Connected<A, B, K> {
    /// `co_flat_map(f1, f2)`, each returning an iterator.
    pub fn co_flat_map<O: Send + 'static, I1, I2, F1, F2>(
        &self,
        f1: F1,
        f2: F2,
    ) -> ((F1, F2), Stream<O>)
    where
        I1: IntoIterator<Item = O>,
        I2: IntoIterator<Item = O>,
        F1: FnMut(A) -> I1 + Clone + Send + 'static,
        F2: FnMut(B) -> I2 + Clone + Send + 'static,
    {
        ((f1, f2), Stream::new())
    }
}
