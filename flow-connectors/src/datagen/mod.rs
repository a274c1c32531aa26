//! Generated data: [`DataGeneratorSource`] (Flink's `DataGeneratorSource`: a function of the
//! row's index, a count, a rate limit) and [`RowGenerator`], which fills any serde row type
//! (a `#[derive(Row)]` struct) field by field with random or sequential values, as the SQL
//! `datagen` connector does.
//!
//! Both are reproducible: row `i` is the same whatever the parallelism, the rate or a restore
//! from a checkpoint (a [`RowGenerator`]'s random values are a hash of its seed, the field and
//! the index).

mod rows;

pub use rows::{FieldGen, Number, RowGenerator};

use crate::sequence::{NumberSequence, SequenceReader};
use flow_runtime::snapshot::{StateReader, StateWriter};
use flow_runtime::{
    CheckpointId, Poll, Result, RuntimeContext, Snapshot, Source, SourceOutput, SourceReader,
    Timestamp, Watermarks,
};
use std::sync::Arc;
use std::time::Instant;

/// What a [`DataGeneratorSource`] makes rows with: a function of the index (`|i: u64| ..`) or
/// a [`RowGenerator`].
pub trait Generator: Send + Sync + 'static {
    /// The rows.
    type Row: Send + 'static;
    /// Row `index`.
    fn generate(&self, index: u64) -> Self::Row;
    /// Checks, before the job starts, that `count` rows can be generated.
    ///
    /// # Errors
    /// Why not, for the job's error.
    fn check(&self, count: u64) -> std::result::Result<(), String> {
        let _ = count;
        Ok(())
    }
}

impl<T: Send + 'static, F: Fn(u64) -> T + Send + Sync + 'static> Generator for F {
    type Row = T;
    #[inline(always)]
    fn generate(&self, index: u64) -> T {
        self(index)
    }
}

impl<T: serde::de::DeserializeOwned + Send + 'static> Generator for RowGenerator<T> {
    type Row = T;
    fn generate(&self, index: u64) -> T {
        RowGenerator::generate(self, index)
    }
    fn check(&self, count: u64) -> std::result::Result<(), String> {
        RowGenerator::check(self, count)
    }
}

/// Rows made by a function of their index `0..count`, split into one contiguous range of
/// indices per reader, optionally at a limited rate.
///
/// # Examples
/// ```
/// use flow_connectors::datagen::DataGeneratorSource;
///
/// // 1,000 orders, at most 100 per second over all readers.
/// let orders = DataGeneratorSource::new(|i| (i, format!("item-{}", i % 7)), 1_000)
///     .rows_per_second(100.0);
/// ```
///
/// With a [`RowGenerator`], any `#[derive(Row)]` struct:
/// ```
/// use flow_connectors::datagen::{DataGeneratorSource, FieldGen, RowGenerator};
///
/// #[derive(serde::Deserialize)]
/// struct Order { id: i64, item: String }
///
/// let orders = DataGeneratorSource::new(
///     RowGenerator::<Order>::new(42).field("id", FieldGen::sequence(1, 10)),
///     10,
/// );
/// ```
pub struct DataGeneratorSource<G> {
    generator: Arc<G>,
    /// The indices `0..=last`.
    last: i64,
    bounded: bool,
    rate: Option<f64>,
}

impl<G: Generator> DataGeneratorSource<G> {
    /// `count` rows: `generator(0)`, `generator(1)`, ... `generator(count - 1)`. Bounded.
    pub fn new(generator: G, count: u64) -> Self {
        DataGeneratorSource {
            generator: Arc::new(generator),
            last: count.min(i64::MAX as u64) as i64 - 1,
            bounded: true,
            rate: None,
        }
    }

    /// Rows `generator(0)`, `generator(1)`, ... without end: an unbounded source (use a rate
    /// limit, or a job that stops it some other way).
    pub fn unbounded(generator: G) -> Self {
        DataGeneratorSource {
            generator: Arc::new(generator),
            last: i64::MAX,
            bounded: false,
            rate: None,
        }
    }

    /// At most `rows` rows per second over all readers (Flink's
    /// `RateLimiterStrategy.perSecond`), each reader taking its share.
    pub fn rows_per_second(mut self, rows: f64) -> Self {
        self.rate = Some(rows);
        self
    }
}

impl<G: Generator> Source for DataGeneratorSource<G> {
    type Row = G::Row;
    type Reader = DataGeneratorReader<G>;

    fn is_bounded(&self) -> bool {
        self.bounded
    }

    fn into_readers(self, parallelism: usize, w: &Watermarks) -> Result<Vec<Self::Reader>> {
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(flow_runtime::Error::Config(format!(
                    "DataGeneratorSource: the rate must be a positive number of rows per second, not {rate}"
                )));
            }
        }
        let count = if self.bounded {
            (self.last + 1) as u64
        } else {
            u64::MAX
        };
        self.generator.check(count).map_err(|e| {
            flow_runtime::Error::Config(format!(
                "DataGeneratorSource<{}>: {e}",
                std::any::type_name::<G::Row>()
            ))
        })?;
        let p = parallelism.max(1);
        Ok(NumberSequence::new(0, self.last)
            .into_readers(p, w)?
            .into_iter()
            .map(|indices| DataGeneratorReader {
                generator: self.generator.clone(),
                indices,
                rate: self.rate.map(|r| r / p as f64),
                started: None,
                emitted: 0,
                bounded: self.bounded,
            })
            .collect())
    }
}

/// One reader's range of a [`DataGeneratorSource`]'s indices.
pub struct DataGeneratorReader<G> {
    generator: Arc<G>,
    indices: SequenceReader,
    /// This reader's share of the rate limit, rows per second.
    rate: Option<f64>,
    started: Option<Instant>,
    /// Rows emitted since `started`.
    emitted: u64,
    /// Whether the source ends (an unbounded one has no progress to show).
    bounded: bool,
}

/// Turns the indices a [`SequenceReader`] emits into generated rows.
struct Generate<'a, O, G> {
    out: &'a mut O,
    generator: &'a G,
}

impl<O: SourceOutput<G::Row>, G: Generator> SourceOutput<i64> for Generate<'_, O, G> {
    #[inline]
    fn collect(&mut self, index: i64) {
        self.out.collect(self.generator.generate(index as u64));
    }
    fn collect_with_timestamp(&mut self, index: i64, ts: Timestamp) {
        self.out
            .collect_with_timestamp(self.generator.generate(index as u64), ts);
    }
}

impl<G: Generator> SourceReader for DataGeneratorReader<G> {
    type Row = G::Row;

    fn open(&mut self, _: &RuntimeContext) -> Result<()> {
        self.started = Some(Instant::now());
        Ok(())
    }

    #[inline]
    fn poll<O: SourceOutput<G::Row>>(&mut self, out: &mut O, max_rows: usize) -> Result<Poll> {
        let mut max = max_rows;
        if let Some(rate) = self.rate {
            // As many rows as the time since the start allows, in total; after a stall
            // (backpressure) at most one second's worth at once, as Flink's (Guava's) limiter.
            let started = *self.started.get_or_insert_with(Instant::now);
            let allowed = (started.elapsed().as_secs_f64() * rate) as u64;
            let burst = (rate as u64).max(1);
            if allowed.saturating_sub(self.emitted) > burst {
                self.emitted = allowed - burst;
            }
            max = max.min(allowed.saturating_sub(self.emitted) as usize);
            if max == 0 {
                return Ok(Poll::Idle);
            }
            self.emitted += max as u64;
        }
        let mut generate = Generate {
            out,
            generator: &*self.generator,
        };
        self.indices.poll(&mut generate, max)
    }

    /// The indices still to generate.
    fn snapshot(&mut self, id: CheckpointId, state: &mut StateWriter) -> Result<Snapshot> {
        self.indices.snapshot(id, state)
    }

    fn restore(&mut self, state: &StateReader) -> Result<()> {
        self.indices.restore(state)
    }

    /// Rows generated of this reader's share of `count`.
    fn progress(&self) -> Option<(u64, u64)> {
        self.bounded.then(|| self.indices.progress()).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    struct Count(u64);
    impl SourceOutput<u64> for Count {
        fn collect(&mut self, _: u64) {
            self.0 += 1;
        }
        fn collect_with_timestamp(&mut self, _: u64, _: Timestamp) {
            self.0 += 1;
        }
    }

    #[test]
    fn a_stall_allows_at_most_one_second_of_rows_at_once() {
        let mut readers = DataGeneratorSource::new(|i| i, 1_000_000)
            .rows_per_second(100.0)
            .into_readers(1, &Watermarks::no_watermarks())
            .unwrap();
        let r = &mut readers[0];
        // As if the reader had been held up for 10 s since its start.
        r.started = Some(Instant::now() - Duration::from_secs(10));
        let mut out = Count(0);
        r.poll(&mut out, 100_000).unwrap();
        assert!(
            (100..=101).contains(&out.0),
            "{} rows after a 10 s stall at 100 rows/s",
            out.0
        );
    }
}
