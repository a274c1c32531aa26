//! Sources: split into one reader per parallel subtask; each reader pushes rows into its
//! stage's fused chain, a batch per poll.

use crate::chain::Snapshot;
use crate::context::RuntimeContext;
use crate::exec::CheckpointId;
use crate::exec::JobBuilder;
use crate::port::{Checked, Stream};
use crate::snapshot::{StateReader, StateWriter};
use crate::time::{Timestamp, Watermarks};
use crate::Result;
use crate::StreamEnv;

/// What a reader's poll found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    /// Rows were emitted; poll again.
    Ready,
    /// Nothing available now (an unbounded source waiting for data).
    Idle,
    /// Nothing to emit, and not idle either: the source's watermark stays where it is, holding
    /// back what it holds back, however long the source waits (no idleness timeout applies).
    /// A Kafka source leaving its instance group returns it until the others took its
    /// partitions over.
    Hold,
    /// The reader's splits are exhausted.
    Finished,
}

/// One partition a source reader reads, and how far behind its end the reader is (what
/// [`SourceReader::partition_lag`] reports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionLag {
    /// The topic (or stream, or file) the partition belongs to.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset of the next record the reader hands to the job.
    pub offset: i64,
    /// Records after it, up to the partition's end as the reader last learned it (its high
    /// watermark; the last stable offset when reading committed transactions only).
    pub lag: i64,
}

/// A source of rows (Flink's unified `Source`): it splits into readers, one per subtask.
///
/// # Examples
/// `n` copies of a word, split over the subtasks:
/// ```
/// use flow_runtime::{Poll, Result, Source, SourceOutput, SourceReader, Watermarks};
///
/// struct Repeat(&'static str, usize);
/// struct RepeatReader(&'static str, usize);
///
/// impl Source for Repeat {
///     type Row = &'static str;
///     type Reader = RepeatReader;
///     fn is_bounded(&self) -> bool {
///         true
///     }
///     fn into_readers(self, parallelism: usize, _: &Watermarks) -> Result<Vec<RepeatReader>> {
///         // Reader i gets the copies i, i + p, i + 2p, ...
///         Ok((0..parallelism)
///             .map(|i| RepeatReader(self.0, (self.1 + parallelism - 1 - i) / parallelism))
///             .collect())
///     }
/// }
///
/// impl SourceReader for RepeatReader {
///     type Row = &'static str;
///     fn poll<O: SourceOutput<&'static str>>(&mut self, out: &mut O, max_rows: usize) -> Result<Poll> {
///         let n = self.1.min(max_rows);
///         for _ in 0..n {
///             out.collect(self.0);
///         }
///         self.1 -= n;
///         Ok(if self.1 == 0 { Poll::Finished } else { Poll::Ready })
///     }
/// }
///
/// let readers = Repeat("hi", 5).into_readers(2, &Watermarks::no_watermarks())?;
/// assert_eq!(readers.iter().map(|r| r.1).sum::<usize>(), 5);
/// # Ok::<(), flow_runtime::Error>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a flow source",
    label = "expected a source such as `NumberSequence::new(1, 100)`",
    note = "for a collection or iterator use `from_collection(..)` or `from_iter(..)`"
)]
pub trait Source: Send + 'static {
    /// The row type it produces.
    type Row: Send + 'static;
    /// The per-subtask reader.
    type Reader: SourceReader<Row = Self::Row>;
    /// Whether the source ends by itself (`auto` mode picks batch when every source does).
    fn is_bounded(&self) -> bool;
    /// The largest parallelism the source supports (`None`: any).
    fn max_parallelism(&self) -> Option<usize> {
        None
    }
    /// The job runs in the instance group `instances` configures (`--instance-group`): the
    /// source must read only this instance's share of its input, the rest going to the other
    /// instances (a Kafka source joins a consumer group, as a static member when the instance
    /// has an id). The default refuses: most sources would read everything in every instance.
    ///
    /// # Errors
    /// The source cannot be divided among instances.
    fn join_instance_group(&mut self, instances: &crate::instances::InstanceConfig) -> Result<()> {
        Err(crate::Error::Config(format!(
            "{} cannot be divided among the instances of group `{}`: every instance would read all of it (in an instance group, read from Kafka)",
            std::any::type_name::<Self>(),
            instances.group
        )))
    }
    /// Splits the source into `parallelism` readers.
    ///
    /// # Errors
    /// The source cannot be opened (missing file, unreachable broker, ...).
    fn into_readers(self, parallelism: usize, watermarks: &Watermarks)
        -> Result<Vec<Self::Reader>>;
}

/// A source that could not be built is one that fails the job when it starts, with the error
/// it was built with (the sources of SQL tables, which `flow!` builds, report a configuration
/// error so).
#[diagnostic::do_not_recommend]
impl<S: Source> Source for std::result::Result<S, crate::Error> {
    type Row = S::Row;
    type Reader = S::Reader;
    fn is_bounded(&self) -> bool {
        self.as_ref().map_or(true, S::is_bounded)
    }
    fn max_parallelism(&self) -> Option<usize> {
        self.as_ref().ok().and_then(S::max_parallelism)
    }
    fn join_instance_group(&mut self, instances: &crate::instances::InstanceConfig) -> Result<()> {
        match self {
            Ok(s) => s.join_instance_group(instances),
            // The build error is reported by `into_readers`.
            Err(_) => Ok(()),
        }
    }
    fn into_readers(self, parallelism: usize, watermarks: &Watermarks) -> Result<Vec<S::Reader>> {
        self?.into_readers(parallelism, watermarks)
    }
}

/// Where a source reader pushes its rows: the run loop assigns timestamps, generates the
/// split's watermarks and feeds the stage's chain.
pub trait SourceOutput<T> {
    /// A row without a timestamp of its own.
    fn collect(&mut self, row: T);
    /// A row with the timestamp the source knows for it (a Kafka message's timestamp).
    fn collect_with_timestamp(&mut self, row: T, timestamp: Timestamp);
    /// A row of the reader's split `split` (0, 1, ...: a Kafka partition), with its timestamp
    /// ([`NO_TIMESTAMP`](crate::time::NO_TIMESTAMP) if none). With event time each split gets
    /// its own watermark clock and the reader's watermark follows the slowest split that is
    /// not idle (Flink's per-split watermarks), so rows of a partition that lags behind the
    /// others are not late.
    fn collect_in_split(&mut self, split: usize, row: T, timestamp: Timestamp) {
        let _ = split;
        self.collect_with_timestamp(row, timestamp);
    }
    /// The reader reads split `split`: with event time it holds the reader's watermark back
    /// from now on (until it ends or, with idleness, goes quiet), even before its first row.
    /// A split that delivers a row without having been started starts then.
    fn split_started(&mut self, split: usize) {
        let _ = split;
    }
    /// Split `split` has no more rows (a bounded partition reached its end): it no longer
    /// holds the reader's watermark back.
    fn split_finished(&mut self, split: usize) {
        let _ = split;
    }
    /// Split `split` moved to another reader (a Kafka partition revoked from a consumer-group
    /// member): it no longer holds the watermark back, until it comes back.
    fn split_released(&mut self, split: usize) {
        self.split_finished(split);
    }
    /// Split `split`, released before, is this reader's again: it holds the watermark back
    /// from now on, as a started one.
    fn split_reacquired(&mut self, split: usize) {
        self.split_started(split);
    }
    /// Split `split` is `id` wherever it is read (a Kafka partition:
    /// [`split_name`](crate::instances::split_name) of its topic and number). In an instance
    /// group each named split's own watermark goes to the repartition topics the stage
    /// writes, and moves with the split to the instance that reads it next.
    fn split_identified(&mut self, split: usize, id: u64) {
        let _ = (split, id);
    }
}

/// One subtask's share of a source.
pub trait SourceReader: Send + 'static {
    /// The row type.
    type Row;
    /// Called in the worker thread before the first poll.
    ///
    /// # Errors
    /// The reader cannot start.
    fn open(&mut self, _ctx: &RuntimeContext) -> Result<()> {
        Ok(())
    }
    /// Pushes up to `max_rows` rows into `out`.
    ///
    /// # Errors
    /// Reading failed in a way the source's bad-record policy does not cover.
    fn poll<O: SourceOutput<Self::Row>>(&mut self, out: &mut O, max_rows: usize) -> Result<Poll>;

    /// Records the reader's position for checkpoint `id`: every row polled so far comes before
    /// the checkpoint's barrier. A reader writes its position to `state` (saved with the
    /// checkpoint, read back by [`SourceReader::restore`]) and may keep it to commit when
    /// [`SourceReader::checkpoint_complete`] reports the checkpoint complete. Called after the
    /// last poll too, with [`FINAL_CHECKPOINT`](crate::exec::FINAL_CHECKPOINT): a job restored
    /// from a later checkpoint does not read a finished reader's rows again.
    ///
    /// The default records nothing: the source is read again from its start after a restore.
    ///
    /// # Errors
    /// The reader cannot record its position (a dead-letter output it cannot flush).
    fn snapshot(&mut self, _id: CheckpointId, _state: &mut StateWriter) -> Result<Snapshot> {
        Ok(Snapshot::Taken)
    }

    /// The job restarts from a checkpoint holding positions of this source: continue from
    /// them. Called after [`open`](SourceReader::open), before the first poll, only when the
    /// checkpoint has state for the source. At the same parallelism
    /// [`StateReader::list`] gives each reader its own positions back; at another, a reader
    /// gets those of the old readers `j` with `j % parallelism == subtask` and reads them
    /// instead of the split it was created with.
    ///
    /// # Errors
    /// The positions do not decode, or the source cannot seek to them.
    fn restore(&mut self, state: &StateReader) -> Result<()> {
        let _ = state;
        Err(crate::Error::State {
            operator: String::new(),
            file: None,
            message: "the checkpoint holds positions for this source, which cannot restore them"
                .into(),
        })
    }

    /// Checkpoint `id` completed: every row before its barrier reached the sinks' durable
    /// output, so the positions recorded for it (or for the newest earlier one) can be
    /// committed. [`FINAL_CHECKPOINT`](crate::exec::FINAL_CHECKPOINT) follows the end of
    /// input once the whole job ended successfully.
    ///
    /// # Errors
    /// Committing the final positions failed; a failed periodic commit is only logged (the
    /// next one covers it).
    fn checkpoint_complete(&mut self, _id: CheckpointId) -> Result<()> {
        Ok(())
    }

    /// Whether the reader wants a *commit point* now: a moment when every row it polled has
    /// left the task's chain (each exchange in it sent its buffered rows on, a repartition
    /// topic's writer had them acknowledged, each sink made its output durable:
    /// [`Control::commit_output`](crate::chain::Control::commit_output)), at which the task
    /// calls [`SourceReader::commit_point`]. Asked after every poll; the default never wants
    /// one.
    fn wants_commit_point(&self) -> bool {
        false
    }

    /// Every row polled so far has left the task's chain, and its output is durable: a Kafka
    /// source of an instance group commits its positions here (exactly-once: its Kafka
    /// transaction, with the rows its chain wrote to the repartition topics).
    ///
    /// # Errors
    /// The commit failed: the job fails (its restart resumes from the last commit).
    fn commit_point(&mut self) -> Result<()> {
        Ok(())
    }

    /// The job drains (SIGUSR1, [`request_drain`](crate::request_drain); Flink's `stop
    /// --drain`): the reader ends where it is, as at the end of its input. Called once, between
    /// polls. Returns whether the reader ends by itself: it then ends what it must (a Kafka
    /// source commits its positions, or waits for a rebalance under way) and returns
    /// [`Poll::Finished`] from a later poll. The default returns `false`: the run loop ends
    /// the reader at once, as if its last poll had returned `Poll::Finished`, and its final
    /// [`snapshot`](SourceReader::snapshot) records the position reached.
    fn drain(&mut self) -> bool {
        false
    }

    /// How far a bounded reader is, as `(done, total)` in a unit of its choosing (rows of a
    /// sequence or a collection, bytes of files): what the progress bar of a bounded job shows.
    /// `None` (the default): it cannot tell.
    fn progress(&self) -> Option<(u64, u64)> {
        None
    }

    /// How far behind its partitions' ends the reader is, one entry per partition it reads (a
    /// Kafka reader: its consumer lag), for the metrics of a running job. Called at most every
    /// 100 ms while the job is watched, never on the row path. The default tells nothing.
    fn partition_lag(&self, _lag: &mut Vec<PartitionLag>) {}

    /// Adds the reader's counters (bad records skipped or dead-lettered) to `metrics` under
    /// the source's plan node `node`; called when the reader finished.
    fn report(&self, _metrics: &mut crate::exec::TaskMetrics, _node: u32) {}
}

/// A source with its watermark strategy, until it is split into readers.
pub struct SourceSpec<S> {
    source: Option<S>,
    watermarks: Watermarks,
}

/// The source node: `source(expr, watermarks)`.
#[allow(clippy::type_complexity)]
pub fn source<S: Source>(
    source: S,
    watermarks: Watermarks,
) -> (Checked<S::Reader, SourceSpec<S>>, Stream<S::Row>) {
    (
        SourceSpec {
            source: Some(source),
            watermarks,
        },
        Stream::new(),
    )
}

impl<S: Source> SourceSpec<S> {
    /// Whether the source is bounded.
    pub fn is_bounded(&self) -> bool {
        self.source.as_ref().is_none_or(|s| s.is_bounded())
    }
    /// Whether the stream carries watermarks.
    pub fn has_watermarks(&self) -> bool {
        self.watermarks.has_event_time()
    }
    /// The source's watermark strategy, for its split tasks.
    pub fn watermarks(&self) -> Watermarks {
        self.watermarks.clone()
    }
    /// The stage parallelism: `declared` or the env's, capped by the source.
    pub fn parallelism(&self, env: &StreamEnv, declared: Option<usize>) -> usize {
        let p = declared.unwrap_or(env.parallelism());
        match self.source.as_ref().and_then(|s| s.max_parallelism()) {
            Some(max) => p.min(max).max(1),
            None => p,
        }
    }
    /// Splits into `parallelism` readers; on error records it in `job` and returns none.
    pub fn readers(&mut self, parallelism: usize, job: &mut JobBuilder) -> Vec<S::Reader> {
        let Some(mut source) = self.source.take() else {
            return Vec::new();
        };
        if let Some(instances) = job.instances() {
            if let Err(e) = source.join_instance_group(instances) {
                job.fail(e);
                return Vec::new();
            }
        }
        match source.into_readers(parallelism, &self.watermarks) {
            Ok(r) => r,
            Err(e) => {
                job.fail(e);
                Vec::new()
            }
        }
    }
}
