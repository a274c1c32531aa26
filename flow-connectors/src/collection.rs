//! `from_collection` / `from_iter`: the elements of any `IntoIterator`, in order, from one
//! subtask (Flink's collection source is non-parallel too).

use flow_runtime::snapshot::{StateReader, StateWriter};
use flow_runtime::{
    CheckpointId, Poll, Result, Snapshot, Source, SourceOutput, SourceReader, Watermarks,
};

/// A bounded source over an iterator's elements.
pub struct CollectionSource<I> {
    iter: I,
}

impl<I> CollectionSource<I> {
    /// A source of `items`' elements.
    pub fn new<C: IntoIterator<IntoIter = I>>(items: C) -> Self {
        CollectionSource {
            iter: items.into_iter(),
        }
    }
}

/// [`CollectionSource::new`] for the code `flow!` generates (`from_collection`, `from_iter`):
/// when `items` is not a collection, the source's type is left unknown, so that only that
/// error is reported, on the user's argument.
#[doc(hidden)]
pub fn from_collection<C: IntoIterator>(
    items: C,
) -> flow_runtime::__private::Checked<C::Item, CollectionSource<C::IntoIter>> {
    CollectionSource::new(items)
}

/// The reader of a [`CollectionSource`].
pub struct CollectionReader<I> {
    iter: Option<I>,
    /// Elements emitted so far: the position checkpoints save.
    emitted: u64,
    /// How many elements the collection has, when its iterator knows exactly.
    len: Option<u64>,
}

impl<I> Source for CollectionSource<I>
where
    I: Iterator + Send + 'static,
    I::Item: Send + 'static,
{
    type Row = I::Item;
    type Reader = CollectionReader<I>;

    fn is_bounded(&self) -> bool {
        true
    }
    fn max_parallelism(&self) -> Option<usize> {
        Some(1)
    }
    fn into_readers(self, parallelism: usize, _: &Watermarks) -> Result<Vec<Self::Reader>> {
        let len = match self.iter.size_hint() {
            (lo, Some(hi)) if lo == hi => Some(lo as u64),
            _ => None,
        };
        let mut readers = vec![CollectionReader {
            iter: Some(self.iter),
            emitted: 0,
            len,
        }];
        readers.extend((1..parallelism).map(|_| CollectionReader {
            iter: None,
            emitted: 0,
            len: Some(0),
        }));
        Ok(readers)
    }
}

impl<I> SourceReader for CollectionReader<I>
where
    I: Iterator + Send + 'static,
    I::Item: Send + 'static,
{
    type Row = I::Item;

    fn poll<O: SourceOutput<I::Item>>(&mut self, out: &mut O, max_rows: usize) -> Result<Poll> {
        let Some(iter) = self.iter.as_mut() else {
            return Ok(Poll::Finished);
        };
        for _ in 0..max_rows {
            match iter.next() {
                Some(row) => {
                    self.emitted += 1;
                    out.collect(row)
                }
                None => {
                    self.iter = None;
                    return Ok(Poll::Finished);
                }
            }
        }
        Ok(Poll::Ready)
    }

    /// Elements emitted of the collection's length (a vector's, say; none for an iterator
    /// that does not know its length).
    fn progress(&self) -> Option<(u64, u64)> {
        self.len.map(|len| (self.emitted.min(len), len))
    }

    /// How many elements were emitted: the program builds the same collection again.
    fn snapshot(&mut self, _: CheckpointId, state: &mut StateWriter) -> Result<Snapshot> {
        state.list("emitted", [&self.emitted])?;
        Ok(Snapshot::Taken)
    }

    /// Skips the elements emitted before the checkpoint.
    fn restore(&mut self, state: &StateReader) -> Result<()> {
        let skip: u64 = state.union::<u64>("emitted")?.into_iter().sum();
        if let Some(iter) = self.iter.as_mut() {
            for _ in 0..skip {
                if iter.next().is_none() {
                    self.iter = None;
                    break;
                }
            }
        }
        self.emitted = skip;
        Ok(())
    }
}
