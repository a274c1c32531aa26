//! Moving rows between workers: the message enum every channel carries, the exchange that
//! partitions a stage's output, and the input gate that merges a stage's inputs.
//!
//! Channels are bounded (a slow consumer blocks its producers: backpressure, bounded memory)
//! and move `Vec`s of rows, never serialized bytes. A channel does not know its row type: a
//! batch travels as [`Rows`], typed again by the stage that reads it (the row types of both
//! ends were checked at compile time). So the channels, the input gate and the loops that
//! drive a stage are compiled once, in this crate, not once per row type in every job: one
//! box per batch of rows buys a third less generated code per job.
//!
//! A batch is [`BATCH_BYTES`] of rows (4096 rows of two `i64`s), not a number of rows: the
//! cost of a batch (a box, a channel operation, perhaps waking the receiver) is spread over
//! more small rows, and the memory a channel holds is bounded in bytes whatever the row type.

mod combine;
mod exchange;
mod fused;
mod gate;

pub use combine::Combine;
pub(crate) use exchange::flushing_all;
pub use exchange::{BroadcastExchange, Exchange, Partition};
pub use fused::FusedExchange;
pub(crate) use gate::Gate;
pub use gate::{GateEvent, InputGate};

use crate::time::Timestamp;
use crossbeam_channel::{bounded, Sender};
use std::any::Any;
use std::marker::PhantomData;

/// Rows a source reader emits per poll (between two looks at checkpoints, watermarks and
/// cancellation).
pub const BATCH_SIZE: usize = 1024;

/// Bytes of rows (with their timestamps) an exchange puts in a batch before it sends it.
pub const BATCH_BYTES: usize = 64 * 1024;

/// Batches a channel holds before the sender blocks: with [`BATCH_BYTES`], half a MiB of rows.
pub const CHANNEL_CAPACITY: usize = 8;

/// Rows per batch of rows `T` (with timestamps or not): [`BATCH_BYTES`] of them, at least 64
/// and at most 8192 (a few large rows still travel together; zero-sized rows are not
/// unbounded). Measured on two cores at parallelism 2 (`BENCHMARKS.md`): 4096 rows of 16 bytes
/// a batch ran W1 and W3 10-25 % faster than 1024, with fewer wake-ups of the receiver.
pub fn batch_rows<T>(timestamps: bool) -> usize {
    let row = std::mem::size_of::<T>() + if timestamps { 8 } else { 0 };
    (BATCH_BYTES / row.max(1)).clamp(64, 8192)
}

/// Rows in order, with their timestamps when the job has event time.
#[derive(Debug)]
pub struct Batch<T> {
    /// The rows.
    pub rows: Vec<T>,
    /// One timestamp per row, or empty when the job has no event time.
    pub timestamps: Vec<Timestamp>,
}

impl<T> Batch<T> {
    /// An empty batch with room for `rows` rows.
    pub fn with_capacity(rows: usize, timestamps: bool) -> Self {
        Batch {
            rows: Vec::with_capacity(rows),
            timestamps: if timestamps {
                Vec::with_capacity(rows)
            } else {
                Vec::new()
            },
        }
    }
}

/// A [`Batch`] of some row type, on its way between two stages.
pub struct Rows(Box<dyn Any + Send>);

impl Rows {
    /// `batch`, for a channel.
    pub fn new<T: Send + 'static>(batch: Batch<T>) -> Self {
        Rows(Box::new(batch))
    }

    /// The batch again, as the receiving stage's row type.
    ///
    /// # Panics
    /// If the batch holds another row type: the channels of an edge are created from the row
    /// type of its sending port, so this is a bug in the code `flow!` generated.
    pub fn into_batch<T: 'static>(self) -> Batch<T> {
        match self.0.downcast::<Batch<T>>() {
            Ok(batch) => *batch,
            Err(_) => wrong_row_type(std::any::type_name::<T>()),
        }
    }

    /// Hands the batch's rows, of type `T`, to `collect`, with their timestamps when they
    /// have them; returns how many.
    ///
    /// `collect` is called from one place only, so that it is inlined into the loop: with a
    /// loop per case (timestamps or not) the chain was a function called per row (measured:
    /// W1 and W3 at parallelism 2 spent a fifth of the receiving thread in that call's entry
    /// and exit).
    #[inline(always)]
    pub(crate) fn feed<T: 'static>(self, mut collect: impl FnMut(T, Timestamp)) -> u64 {
        let batch = self.into_batch::<T>();
        let n = batch.rows.len() as u64;
        debug_assert!(
            batch.timestamps.is_empty() || batch.timestamps.len() == batch.rows.len(),
            "a batch has a timestamp for every row or for none"
        );
        let mut timestamps = batch.timestamps.into_iter();
        for row in batch.rows {
            collect(row, timestamps.next().unwrap_or(crate::time::NO_TIMESTAMP));
        }
        n
    }
}

#[cold]
#[inline(never)]
fn wrong_row_type(expected: &str) -> ! {
    panic!("a channel delivered rows of another type than `{expected}`: a bug in flow's generated code")
}

impl std::fmt::Debug for Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rows(..)")
    }
}

/// The receiving end of a channel.
pub type Receiver = crossbeam_channel::Receiver<Message>;

/// What travels on every channel between two workers.
#[derive(Debug)]
pub enum Message {
    /// A batch of rows, in order.
    Rows(Rows),
    /// A batch of rows of a two-input operator's second input, on its first input's channel:
    /// the repartition reader of an instance group feeds both inputs through one channel, so
    /// that a handover of state stays in order with the rows of both.
    SecondRows(Rows),
    /// The sender's event-time clock reached this watermark.
    Watermark(Timestamp),
    /// Messages of one sender in order, sent as one: rows and the watermarks between them
    /// when watermarks come faster than an exchange flushes (a zero watermark interval, one
    /// after every row). Holds rows and watermarks only.
    Many(Vec<Message>),
    /// The sender turned idle (`true`) or active again (`false`).
    Idle(bool),
    /// A checkpoint barrier (aligned snapshots; carried, not yet produced).
    Barrier(u64),
    /// The sender finished; nothing follows.
    End,
    /// A repartition reader's request to the stage it feeds: its partitions were taken away,
    /// or it got some (state following partitions between instances of a group).
    Handover(crate::instances::Handover),
}

/// Where one upstream subtask's exchange sends: a channel per downstream subtask, or, on an
/// edge that crosses instances of the job, a [`RemoteOut`](crate::instances::RemoteOut)
/// writing a repartition topic.
#[derive(Default)]
pub struct Outlets {
    pub(crate) senders: Vec<Sender<Message>>,
    pub(crate) remote: Option<Box<dyn crate::instances::RemoteOut>>,
    /// With `remote`: the topic's partitions, which the exchange routes rows among.
    pub(crate) partitions: usize,
}

impl Outlets {
    /// Sends over `senders`, one per downstream subtask.
    pub fn local(senders: Vec<Sender<Message>>) -> Self {
        Outlets {
            senders,
            remote: None,
            partitions: 0,
        }
    }

    /// How many targets the exchange routes among.
    pub(crate) fn len(&self) -> usize {
        if self.remote.is_some() {
            self.partitions
        } else {
            self.senders.len()
        }
    }
}

/// The channels of one edge between two stages, carrying rows of type `T`:
/// `senders[up]` (to every downstream subtask), `receivers[down][up]`.
pub struct EdgeChannels<T> {
    /// Per upstream subtask, where it sends.
    pub senders: Vec<Outlets>,
    /// Per downstream subtask, one receiver per upstream subtask.
    pub receivers: Vec<Vec<Receiver>>,
    _rows: PhantomData<fn(T)>,
}

impl<T> EdgeChannels<T> {
    /// All-to-all channels between `up` and `down` subtasks; with `pointwise` and `up == down`,
    /// only subtask `i` to subtask `i` (a forward edge).
    pub fn new(up: usize, down: usize, pointwise: bool) -> Self {
        let (senders, receivers) = channels(up, down, pointwise);
        EdgeChannels {
            senders: senders.into_iter().map(Outlets::local).collect(),
            receivers,
            _rows: PhantomData,
        }
    }
}

impl<T> EdgeChannels<T> {
    /// An edge from its ends.
    pub(crate) fn from_parts(senders: Vec<Outlets>, receivers: Vec<Vec<Receiver>>) -> Self {
        EdgeChannels {
            senders,
            receivers,
            _rows: PhantomData,
        }
    }
}

/// The channels of [`EdgeChannels::new`], whatever the row type.
#[allow(clippy::type_complexity)]
fn channels(
    up: usize,
    down: usize,
    pointwise: bool,
) -> (Vec<Vec<Sender<Message>>>, Vec<Vec<Receiver>>) {
    let mut senders: Vec<Vec<_>> = (0..up).map(|_| Vec::new()).collect();
    let mut receivers: Vec<Vec<_>> = (0..down).map(|_| Vec::new()).collect();
    for (u, sends) in senders.iter_mut().enumerate() {
        for (d, recvs) in receivers.iter_mut().enumerate() {
            if pointwise && up == down && u != d {
                continue;
            }
            let (s, r) = bounded(CHANNEL_CAPACITY);
            sends.push(s);
            recvs.push(r);
        }
    }
    (senders, receivers)
}
