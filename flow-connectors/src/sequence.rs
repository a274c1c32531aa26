//! `NumberSequence`: the numbers `from..=to` as `i64`, split into one contiguous range per
//! subtask (Flink's `NumberSequenceSource`).

use flow_runtime::snapshot::{StateReader, StateWriter};
use flow_runtime::{
    CheckpointId, Poll, Result, Snapshot, Source, SourceOutput, SourceReader, Watermarks,
};

/// The numbers `from..=to`, bounded.
///
/// # Examples
/// ```
/// use flow_connectors::NumberSequence;
/// use flow_runtime::{Source, Watermarks};
/// let readers = NumberSequence::new(1, 10).into_readers(3, &Watermarks::no_watermarks()).unwrap();
/// assert_eq!(readers.len(), 3);
/// ```
#[derive(Clone, Debug)]
pub struct NumberSequence {
    from: i64,
    to: i64,
}

impl NumberSequence {
    /// The numbers `from..=to` (empty when `from > to`).
    pub fn new(from: i64, to: i64) -> Self {
        NumberSequence { from, to }
    }
}

/// One subtask's range of a [`NumberSequence`].
#[derive(Debug)]
pub struct SequenceReader {
    next: i64,
    /// Exclusive end, as i128 so that `to = i64::MAX` fits.
    end: i128,
    /// Ranges `[next, end)` still to read after this one, last first: a reader restored at a
    /// parallelism below the checkpoint's continues several old readers' ranges.
    queued: Vec<(i64, i128)>,
    /// The numbers this reader had to read when it started (or was restored): its progress.
    total: u64,
}

impl SequenceReader {
    /// The numbers still to read.
    fn remaining(&self) -> u64 {
        let ranges = std::iter::once((self.next, self.end)).chain(self.queued.iter().copied());
        ranges
            .map(|(next, end)| (end - next as i128).max(0) as u64)
            .sum()
    }
}

impl Source for NumberSequence {
    type Row = i64;
    type Reader = SequenceReader;

    fn is_bounded(&self) -> bool {
        true
    }

    fn into_readers(self, parallelism: usize, _: &Watermarks) -> Result<Vec<SequenceReader>> {
        let start = self.from as i128;
        let count = (self.to as i128 - start + 1).max(0);
        let p = parallelism.max(1) as i128;
        Ok((0..p)
            .map(|i| {
                let lo = start + count * i / p;
                let hi = start + count * (i + 1) / p;
                SequenceReader {
                    next: lo as i64,
                    end: hi,
                    queued: Vec::new(),
                    total: (hi - lo) as u64,
                }
            })
            .collect())
    }
}

impl SourceReader for SequenceReader {
    type Row = i64;

    #[inline]
    fn poll<O: SourceOutput<i64>>(&mut self, out: &mut O, max_rows: usize) -> Result<Poll> {
        let remaining = self.end - self.next as i128;
        let n = remaining.min(max_rows as i128) as i64;
        let start = self.next;
        match start.checked_add(n) {
            // The hot path: a plain exclusive range the compiler turns into a counted loop.
            Some(end) => {
                if start >= 0 {
                    // The same loop, where the compiler knows the numbers are not negative:
                    // a user's `n % k` is then a mask or one multiply, not a signed division.
                    for v in start..end {
                        out.collect(v);
                    }
                } else {
                    for v in start..end {
                        out.collect(v);
                    }
                }
                self.next = end;
            }
            // The last batch of a sequence ending at `i64::MAX`.
            None => {
                for v in start..=i64::MAX {
                    out.collect(v);
                }
                self.next = i64::MAX;
                self.end = i64::MAX as i128;
            }
        }
        if (self.next as i128) < self.end {
            return Ok(Poll::Ready);
        }
        Ok(match self.queued.pop() {
            Some((next, end)) => {
                (self.next, self.end) = (next, end);
                Poll::Ready
            }
            None => Poll::Finished,
        })
    }

    /// The ranges still to read.
    fn snapshot(&mut self, _: CheckpointId, state: &mut StateWriter) -> Result<Snapshot> {
        let current = (self.next, self.end);
        state.list(
            "ranges",
            std::iter::once(&current).chain(self.queued.iter().rev()),
        )?;
        Ok(Snapshot::Taken)
    }

    /// Reads the ranges the checkpoint left to this subtask instead of its own split.
    fn restore(&mut self, state: &StateReader) -> Result<()> {
        let mut ranges = state.list::<(i64, i128)>("ranges")?;
        ranges.reverse();
        (self.next, self.end) = ranges.pop().unwrap_or((0, 0));
        self.queued = ranges;
        self.total = self.remaining();
        Ok(())
    }

    /// Numbers read of those this reader started with.
    fn progress(&self) -> Option<(u64, u64)> {
        Some((self.total - self.remaining().min(self.total), self.total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Sink(Vec<i64>);
    impl SourceOutput<i64> for Sink {
        fn collect(&mut self, row: i64) {
            self.0.push(row)
        }
        fn collect_with_timestamp(&mut self, row: i64, _: i64) {
            self.0.push(row)
        }
    }

    fn drain(r: &mut SequenceReader) -> Vec<i64> {
        let mut s = Sink(Vec::new());
        while r.poll(&mut s, 3).unwrap() == Poll::Ready {}
        s.0
    }

    #[test]
    fn splits_cover_the_range_exactly_once() {
        for p in 1..6 {
            let mut all = Vec::new();
            for mut r in NumberSequence::new(1, 10)
                .into_readers(p, &Watermarks::no_watermarks())
                .unwrap()
            {
                all.extend(drain(&mut r));
            }
            assert_eq!(all, (1..=10).collect::<Vec<_>>(), "parallelism {p}");
        }
    }

    /// Batches that start below zero, at zero and above (the reader's loop for numbers not
    /// negative is a second copy).
    #[test]
    fn a_range_across_zero_comes_whole_and_in_order() {
        for p in 1..4 {
            let mut all = Vec::new();
            for mut r in NumberSequence::new(-7, 7)
                .into_readers(p, &Watermarks::no_watermarks())
                .unwrap()
            {
                all.extend(drain(&mut r));
            }
            assert_eq!(all, (-7..=7).collect::<Vec<_>>(), "parallelism {p}");
        }
        let mut r = NumberSequence::new(i64::MIN, i64::MIN + 2)
            .into_readers(1, &Watermarks::no_watermarks())
            .unwrap();
        assert_eq!(drain(&mut r[0]), vec![i64::MIN, i64::MIN + 1, i64::MIN + 2]);
    }

    #[test]
    fn extreme_bounds_do_not_overflow() {
        let mut r = NumberSequence::new(i64::MAX - 2, i64::MAX)
            .into_readers(1, &Watermarks::no_watermarks())
            .unwrap();
        assert_eq!(drain(&mut r[0]), vec![i64::MAX - 2, i64::MAX - 1, i64::MAX]);
        let empty = NumberSequence::new(5, 1)
            .into_readers(2, &Watermarks::no_watermarks())
            .unwrap();
        assert!(empty.into_iter().all(|mut r| drain(&mut r).is_empty()));
    }
}
