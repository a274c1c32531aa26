//! Instances of one job sharing the work (`--instance-group NAME`), the way Kafka Streams
//! instances do: several processes run the same binary, Kafka's consumer-group protocol splits
//! the source partitions between them, and every `key_by` crosses instances through a Kafka
//! *repartition topic* (`<group>-<key_by uid>-repartition`) instead of the in-process exchange.
//!
//! The runtime knows edges, not brokers: a hash edge of a job in an instance group asks the
//! [`Transport`] (Kafka's, from `flow-connectors`) for one [`RemoteOut`] per upstream subtask,
//! which the stage's exchange writes its per-partition batches to, and one reader task per
//! downstream subtask, which feeds that subtask's input gate with the batches of the
//! repartition partitions the group assigned to it. Rows cross as bincode, typed again by a
//! [`RowCodec`] made for the edge's row type by the code `flow!` generates. Both keyed inputs
//! of a two-input operator (a keyed `connect`, a join) share one topic and one reader per
//! subtask, which feeds both through the first input's channel ([`Message::SecondRows`]; the
//! second input's channel stays idle until it ends with the first).

mod splits;

pub use crate::channel::{Batch, Message, Rows};
use crate::context::RuntimeContext;
use crate::exec::TaskMetrics;
pub use crate::snapshot::{Adopted, PartitionStore, Released};
use crate::time::Timestamp;
use crate::{Error, Result};
pub(crate) use splits::{register as register_source_splits, stage_split, StageSplits};
pub use splits::{source_splits, split_name, SourceSplits, SplitState, SplitWatermark};
use std::ops::RangeInclusive;
use std::time::Duration;

/// Where a reader of a repartition topic sends what it read: the downstream subtask's input.
///
/// The reader runs on a thread of its own and the subtask it feeds perhaps on a worker
/// ([`Scheduling::Workers`](crate::Scheduling::Workers)): each message sent wakes the job's
/// parked workers, so the subtask reads it at once, not after the worker's next look.
///
/// The reader of a two-input operator's topic feeds both inputs through the first input's
/// channel; the second's is idle from the start (it holds no watermark back) and ends when
/// the reader sends its end.
#[derive(Clone)]
pub struct Inbox {
    to: crossbeam_channel::Sender<Message>,
    second: Option<crossbeam_channel::Sender<Message>>,
}

impl Inbox {
    pub(crate) fn new(sender: crossbeam_channel::Sender<Message>) -> Self {
        Inbox {
            to: sender,
            second: None,
        }
    }

    /// This inbox of a two-input operator's first input, with `second`, its second input's:
    /// idle from now on, and ended with this one.
    pub(crate) fn with_second(mut self, second: Inbox) -> Self {
        let _ = second.to.send(Message::Idle(true));
        self.second = Some(second.to);
        self
    }

    /// Sends `message`, waiting for room in the channel; gives it back if the subtask is
    /// gone.
    pub fn send(&self, message: Message) -> std::result::Result<(), Message> {
        let end = matches!(message, Message::End);
        self.to.send(message).map_err(|e| e.0)?;
        if let (true, Some(second)) = (end, &self.second) {
            let _ = second.send(Message::End);
        }
        crate::exec::worker::progress();
        Ok(())
    }
}
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;

/// The repartition topic of a hash edge has this many partitions unless
/// `--repartition-partitions` says otherwise: one per key group, the most a keyed stage can
/// be split into.
pub const DEFAULT_REPARTITION_PARTITIONS: usize = crate::snapshot::KEY_GROUPS;

/// What `--instance-group` and its companion flags configure.
#[derive(Clone, Debug)]
pub struct InstanceConfig {
    /// The group's name: its members are the instances of one job. Names the consumer groups
    /// and the repartition topics.
    pub group: String,
    /// The Kafka brokers the repartition topics live on (`--instance-brokers`).
    pub brokers: String,
    /// Partitions of each repartition topic (`--repartition-partitions`, at most the key
    /// groups).
    pub partitions: usize,
    /// This instance's id (`--instance-id`): its consumers join their groups as static
    /// members named after it ([`InstanceConfig::static_member`]), so that the instance,
    /// restarted with the same id, gets its partitions back without a rebalance of the group.
    pub id: Option<String>,
    /// How long the group waits for a silent (crashed) instance's consumers before it deals
    /// their partitions to the others (`--session-timeout`); unset:
    /// [`InstanceConfig::session_timeout`]'s default.
    pub session_timeout: Option<std::time::Duration>,
    /// `--processing-guarantee exactly-once`: each Kafka source subtask writes its rows to the
    /// repartition topics in Kafka transactions that commit its consumed positions too. Needs
    /// an [`id`](InstanceConfig::id): the transactional ids are named after it, so that the
    /// instance started again fences its dead self's open transactions.
    pub exactly_once: bool,
    /// How long the instance rides out a broker that does not answer before it stops
    /// (`--max-broker-downtime`): its repartition readers' limit, the delivery timeout of
    /// its repartition records and transactions, and the limit of its Kafka sources that set
    /// none themselves (`KafkaSourceBuilder::max_broker_downtime`); unset:
    /// [`MAX_BROKER_DOWNTIME`].
    pub max_broker_downtime: Option<std::time::Duration>,
}

/// A group's session timeout for instances without an id: a crashed instance's partitions
/// move after 10 s (librdkafka's own default is 45 s).
pub const SESSION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long an instance rides out a broker that does not answer, by default (a Kafka
/// source's own default too).
pub const MAX_BROKER_DOWNTIME: std::time::Duration = std::time::Duration::from_secs(60);

/// The seconds `--max-broker-downtime` allows: under 10 s a broker's restart stops every
/// instance.
pub const MAX_BROKER_DOWNTIME_SECS: RangeInclusive<u64> = 10..=3600;

/// The seconds `--session-timeout` allows (a Kafka broker's default bounds are 6 s and 30
/// min: `group.min.session.timeout.ms`, `group.max.session.timeout.ms`).
pub const SESSION_TIMEOUT_SECS: RangeInclusive<u64> = 6..=1800;

/// Whether `id` can be an instance id (`--instance-id`): it names consumer group members and
/// transactional ids.
pub fn check_instance_id(id: &str) -> std::result::Result<(), String> {
    if id.is_empty() || id.len() > 100 || !id.chars().all(kafka_name_char) {
        return Err(format!(
            "`{id}` is not an instance id: use 1 to 100 letters, digits, '.', '_' or '-'"
        ));
    }
    Ok(())
}

/// A group's session timeout for instances with an id (static members, Kafka Streams' way):
/// the time a crashed instance has to start again and get its partitions back before the
/// group deals them anew. A broker may take seconds to answer a returning static member
/// (tansu-main answers after half the session timeout, and 3 s later: ~9 s of 10), so 10 s
/// would be a race.
pub const STATIC_SESSION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl InstanceConfig {
    /// Instance group `group` with its repartition topics on `brokers`, the default number
    /// of repartition partitions, no instance id and the default session timeout.
    pub fn new(group: impl Into<String>, brokers: impl Into<String>) -> Self {
        InstanceConfig {
            group: group.into(),
            brokers: brokers.into(),
            partitions: DEFAULT_REPARTITION_PARTITIONS,
            id: None,
            session_timeout: None,
            exactly_once: false,
            max_broker_downtime: None,
        }
    }

    /// Whether the configuration is one a group can run with: within the bounds of the flags
    /// (`--session-timeout`, `--max-broker-downtime`, `--repartition-partitions`,
    /// `--instance-id`, `--processing-guarantee`), with a name and brokers. Set in code, it is
    /// checked when the job starts; the error names the field and its bounds.
    pub fn check(&self) -> std::result::Result<(), String> {
        let within =
            |what: &str, d: Option<std::time::Duration>, secs: &RangeInclusive<u64>| match d {
                Some(d)
                    if !(d >= Duration::from_secs(*secs.start())
                        && d <= Duration::from_secs(*secs.end())) =>
                {
                    Err(format!(
                        "instance group `{}`: {what} is {d:?}, where {} to {} s are allowed",
                        self.group,
                        secs.start(),
                        secs.end()
                    ))
                }
                _ => Ok(()),
            };
        within(
            "the session timeout (--session-timeout)",
            self.session_timeout,
            &SESSION_TIMEOUT_SECS,
        )?;
        within(
            "the max broker downtime (--max-broker-downtime)",
            self.max_broker_downtime,
            &MAX_BROKER_DOWNTIME_SECS,
        )?;
        if !(1..=crate::snapshot::KEY_GROUPS).contains(&self.partitions) {
            return Err(format!(
                "instance group `{}`: {} repartition partitions (--repartition-partitions), where 1 to {} (the key groups) are allowed",
                self.group,
                self.partitions,
                crate::snapshot::KEY_GROUPS
            ));
        }
        if self.group.is_empty() || self.brokers.is_empty() {
            return Err(
                "an instance group needs a name and its brokers (--instance-group, --instance-brokers)"
                    .to_string(),
            );
        }
        if let Some(id) = &self.id {
            check_instance_id(id)?;
        }
        if self.exactly_once && self.id.is_none() {
            return Err(format!(
                "instance group `{}`: exactly-once (--processing-guarantee) needs an instance id (--instance-id), which names its transactions",
                self.group
            ));
        }
        Ok(())
    }

    /// How long the instance's Kafka clients ride out a broker that does not answer: the
    /// one set, else [`MAX_BROKER_DOWNTIME`].
    pub fn max_broker_downtime(&self) -> std::time::Duration {
        self.max_broker_downtime.unwrap_or(MAX_BROKER_DOWNTIME)
    }

    /// The `session.timeout.ms` of the instance's group members: the one set, else
    /// [`STATIC_SESSION_TIMEOUT`] with an id and [`SESSION_TIMEOUT`] without.
    pub fn session_timeout(&self) -> std::time::Duration {
        self.session_timeout.unwrap_or(match self.id {
            Some(_) => STATIC_SESSION_TIMEOUT,
            None => SESSION_TIMEOUT,
        })
    }

    /// How long a group may take to re-form once a member of this instance left it (the
    /// bound its leaving readers wait by): a static member's group may wait for the
    /// member's session to expire (tansu-main does, although the member sent a
    /// LeaveGroup); a dynamic member's LeaveGroup re-forms it at once, bounded by
    /// [`SESSION_TIMEOUT`] whatever the session.
    pub fn regroup_bound(&self) -> std::time::Duration {
        match self.id {
            Some(_) => self.session_timeout(),
            None => SESSION_TIMEOUT,
        }
    }

    /// The `group.instance.id` of subtask `subtask` of this instance's consumer `what` (a
    /// source's topics, a repartition topic's reader): a static member of its group, when the
    /// instance has an id. Kafka takes the characters of topic names, at most 249 of them:
    /// others in `what` become `_` and the name gets a hash of `what` (so that `a,b` and
    /// `a_b` differ), and a `what` too long for that becomes its hash.
    pub fn static_member(&self, what: &str, subtask: usize) -> Option<String> {
        let id = self.id.as_ref()?;
        let hash = || format!("{:016x}", crate::hash::stable_hash(what));
        let mut name: String = what
            .chars()
            .map(|c| if kafka_name_char(c) { c } else { '_' })
            .collect();
        if !what.chars().all(kafka_name_char) {
            name = format!("{name}-{}", hash());
        }
        if id.len() + name.len() + 22 > 249 {
            name = hash();
        }
        Some(format!("{id}-{name}-{subtask}"))
    }

    /// The repartition topic of the hash edge into operator `uid`.
    pub fn topic(&self, uid: &str) -> String {
        format!("{}-{uid}-repartition", self.group)
    }
}

/// Whether Kafka takes `c` in a topic name or a `group.instance.id`: ASCII letters and
/// digits, `.`, `_`, `-`.
pub(crate) fn kafka_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// See [`RowCodec::encode`].
pub type EncodeFn = fn(Rows, usize, &mut dyn FnMut(&[u8])) -> Result<()>;

/// Encodes and decodes batches of one row type for the wire; built by
/// [`RowCodecProbe`] only for row types that serde can write.
#[derive(Clone, Copy)]
pub struct RowCodec {
    /// The row type's name, for errors.
    pub type_name: &'static str,
    /// Encodes the batch (timestamps and rows), handing `out` chunks of at most about
    /// `max_bytes` (a Kafka record has a size limit).
    pub encode: EncodeFn,
    /// A batch again from what `encode` wrote.
    pub decode: fn(&[u8]) -> Result<Rows>,
}

impl std::fmt::Debug for RowCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RowCodec({})", self.type_name)
    }
}

fn encode<T: Serialize + 'static>(
    rows: Rows,
    max_bytes: usize,
    out: &mut dyn FnMut(&[u8]),
) -> Result<()> {
    let batch: Batch<T> = rows.into_batch();
    encode_batch(
        batch.timestamps,
        batch.rows,
        max_bytes,
        &mut Vec::new(),
        out,
    )
}

/// Encodes `(timestamps, rows)` into chunks of at most about `max_bytes`, halving a batch
/// that is larger (a single row larger than that is one chunk of its own).
fn encode_batch<T: Serialize>(
    mut timestamps: Vec<Timestamp>,
    mut rows: Vec<T>,
    max_bytes: usize,
    buf: &mut Vec<u8>,
    out: &mut dyn FnMut(&[u8]),
) -> Result<()> {
    let failed = |e: bincode::Error| {
        Error::Config(format!(
            "cannot encode rows of type `{}` for a repartition topic: {e}",
            std::any::type_name::<T>()
        ))
    };
    let size = bincode::serialized_size(&(&timestamps, &rows)).map_err(failed)?;
    if size as usize > max_bytes && rows.len() > 1 {
        let half = rows.len() / 2;
        let rest = rows.split_off(half);
        let rest_ts = if timestamps.is_empty() {
            Vec::new()
        } else {
            timestamps.split_off(half)
        };
        encode_batch(timestamps, rows, max_bytes, buf, out)?;
        return encode_batch(rest_ts, rest, max_bytes, buf, out);
    }
    buf.clear();
    bincode::serialize_into(&mut *buf, &(&timestamps, &rows)).map_err(failed)?;
    out(buf);
    Ok(())
}

fn decode<T: DeserializeOwned + Send + 'static>(bytes: &[u8]) -> Result<Rows> {
    let (timestamps, rows): (Vec<Timestamp>, Vec<T>) =
        bincode::deserialize(bytes).map_err(|e| {
            Error::Config(format!(
                "does not decode as rows of type `{}`: {e} (was it written by another version of the job?)",
                std::any::type_name::<T>()
            ))
        })?;
    // Each row has its timestamp, or none has one (what `encode_batch` writes): a record
    // with any other count is not a batch of this job's.
    if !timestamps.is_empty() && timestamps.len() != rows.len() {
        return Err(Error::Config(format!(
            "holds {} rows of type `{}` but {} timestamps (was it written by another version of the job?)",
            rows.len(),
            std::any::type_name::<T>(),
            timestamps.len()
        )));
    }
    Ok(Rows::new(Batch { rows, timestamps }))
}

/// A row type that can cross instances: serde writes and reads it, owning its data. Rows of
/// `#[derive(Row)]` structs are, and so are numbers, `bool`, `char`, `String`,
/// [`SmallString`](crate::SmallString), and `Option`s, `Vec`s, `Box`es and tuples (up to 12)
/// of them. A borrowed `&str` is not.
pub trait WireRow: Serialize + DeserializeOwned {}

macro_rules! wire_rows {
    ($($t:ty)*) => {$( impl WireRow for $t {} )*};
}
wire_rows!(i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize f32 f64 bool char String);
impl WireRow for () {}
impl WireRow for crate::SmallString {}
impl<T: WireRow> WireRow for Option<T> {}
impl<T: WireRow> WireRow for Vec<T> {}
impl<T: WireRow> WireRow for Box<T> {}

macro_rules! wire_tuples {
    ($(($($t:ident),+))*) => {$( impl<$($t: WireRow),+> WireRow for ($($t,)+) {} )*};
}
wire_tuples! {
    (A) (A, B) (A, B, C) (A, B, C, D) (A, B, C, D, E) (A, B, C, D, E, F) (A, B, C, D, E, F, G)
    (A, B, C, D, E, F, G, H) (A, B, C, D, E, F, G, H, I) (A, B, C, D, E, F, G, H, I, J)
    (A, B, C, D, E, F, G, H, I, J, K) (A, B, C, D, E, F, G, H, I, J, K, L)
}

/// The codec of an edge's row type `T`, if it is a [`WireRow`]: `flow!` calls
/// `(&&RowCodecProbe::<T>::new()).row_codec()`, which picks [`SerdeRows`] for a `WireRow`
/// and [`NoCodec`] otherwise (autoref specialization), so a job whose rows cannot cross
/// instances still builds and runs in one process. (The probe asks for `WireRow`, a trait of
/// listed types, rather than serde's traits: whether a type deserializes for every lifetime
/// is not known when the probe is resolved, so `(&str, i64)` would pick the serde codec and
/// then fail to build.)
pub struct RowCodecProbe<T>(PhantomData<fn() -> T>);

impl<T> RowCodecProbe<T> {
    /// The probe of `T`.
    pub fn new() -> Self {
        RowCodecProbe(PhantomData)
    }
}

impl<T> Default for RowCodecProbe<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The probe's choice for serde rows.
pub trait SerdeRows {
    /// The codec.
    fn row_codec(&self) -> Option<RowCodec>;
}

impl<T: WireRow + Send + 'static> SerdeRows for &RowCodecProbe<T> {
    fn row_codec(&self) -> Option<RowCodec> {
        Some(RowCodec {
            type_name: std::any::type_name::<T>(),
            encode: encode::<T>,
            decode: decode::<T>,
        })
    }
}

/// The probe's choice for other rows: none.
pub trait NoCodec {
    /// No codec.
    fn row_codec(&self) -> Option<RowCodec>;
}

impl<T> NoCodec for RowCodecProbe<T> {
    fn row_codec(&self) -> Option<RowCodec> {
        None
    }
}

/// One hash edge that crosses instances, as the transport sees it.
#[derive(Clone, Debug)]
pub struct RemoteEdge {
    /// The group's configuration.
    pub config: InstanceConfig,
    /// The repartition topic.
    pub topic: String,
    /// The consumer group of the topic's readers.
    pub consumer_group: String,
    /// The operator the edge leads into, for errors.
    pub operator: &'static str,
    /// The codec of each input's rows of the operator the edge leads into: one, or two for a
    /// two-input operator (`connect` of keyed streams, a join). Both inputs of one share its
    /// topic, their records tagged by input: a key's rows of either input are in one
    /// partition, read by one reader, which feeds both through one channel
    /// ([`Message::SecondRows`]), so that a handover of their state is in order with both.
    pub codecs: Vec<RowCodec>,
    /// Which of them this end writes: the upstream stage's input of the operator (readers
    /// read all).
    pub input: usize,
    /// The fingerprint of the job's plan: every writer stamps it on its records, and a
    /// reader refuses records of another plan.
    pub fingerprint: u64,
    /// The plan as text, written once by every writer so a reader can say what differs.
    pub plan: String,
    /// With `--checkpoint-dir`: where a reader saves the state of the partitions it gives up
    /// and finds that of the partitions it gets (state follows partitions). Without, the
    /// state of a key starts afresh where its partition lands.
    pub partition_state: Option<PartitionStore>,
    /// How many writers this instance has to the topic (the upstream subtasks of every
    /// input): its readers count them on every partition from the start.
    pub writers: usize,
}

/// The sending end of a hash edge in one upstream subtask: batches for repartition
/// partitions, and the stage's watermarks, idleness and end.
pub trait RemoteOut: Send {
    /// Connects (on the task's thread, when the task opens).
    fn open(&mut self, ctx: &RuntimeContext) -> Result<()>;
    /// A batch of rows for `partition`.
    fn rows(&mut self, partition: usize, rows: Rows) -> Result<()>;
    /// A watermark, an idleness change or the end (a checkpoint barrier is refused for now).
    fn event(&mut self, message: &Message) -> Result<()>;
    /// Hands buffered records to the broker (called every few milliseconds).
    fn flush(&mut self) -> Result<()>;
    /// The stage's source or reader commits its positions next
    /// ([`Control::commit_output`](crate::chain::Control::commit_output)): every record
    /// handed over so far is written (at least once: acknowledged by the broker;
    /// exactly-once: in the transaction that commits with them).
    fn durable(&mut self) -> Result<()>;
}

/// What a reader of a repartition topic asks of the stage it feeds when the group moves
/// partitions (with a checkpoint directory: state follows partitions, see
/// [`PartitionStore`]) or when it commits; an in-process exchange asks the next stage's
/// subtasks a [`Handover::Flush`] before its own stage's commit. It travels in order with
/// the rows.
pub enum Handover {
    /// The reader's partitions were taken away: every operator saves its state, sends it
    /// here, and drops it (its keys are read elsewhere now). A stage that fails drops the
    /// sender instead.
    Release(crossbeam_channel::Sender<Released>, Option<Hold>),
    /// The reader commits its positions (caught up, or now and then): every operator saves
    /// its state and sends it here, keeping it.
    Save(crossbeam_channel::Sender<Released>, Option<Hold>),
    /// The reader got partitions: their saved state, to add before their first row.
    Adopt(Adopted),
    /// The reader commits its positions and wants no state (no checkpoint directory, or,
    /// exactly-once, every partition ended), or an upstream stage of the instance commits
    /// (from an in-process exchange): the stage makes its output of the rows before
    /// durable (as for the others: [`Control::commit_output`](crate::chain::Control)),
    /// answers (no state) and, exactly-once, holds ([`Hold`]).
    Flush(crossbeam_channel::Sender<Released>, Option<Hold>),
    /// Where the reader's partitions stand, each as a split of the stage (each list replaces
    /// the last: one left out was given up): the repartition writers of the stage's chain
    /// write them, so that a second `key_by`'s readers hold each partition's rows back at
    /// its own watermark wherever the group deals it ([`SourceSplits`], as for a source's
    /// splits).
    Splits(Vec<SplitWatermark>),
}

/// Where the stage's answer to a [`Handover`] arrives (nothing arrives when it failed).
pub type Answer = crossbeam_channel::Receiver<Released>;

/// Exactly-once (`--processing-guarantee exactly-once`): before it answers a [`Handover`],
/// the stage flushes its chain, so that its sinks' and repartition writers' records of every
/// row before the handover are in the reader's transaction; then it takes no input until
/// the reader committed that transaction and dropped its [`Resume`].
pub struct Hold(crossbeam_channel::Receiver<()>);

/// The reader's end of a [`Hold`]: dropping it lets the stage go on.
pub struct Resume(#[allow(dead_code)] crossbeam_channel::Sender<()>);

impl Hold {
    /// Waits until the reader dropped its [`Resume`] (`true`), or `cancelled` says the job
    /// stops (`false`, asked every 200 ms). On a worker the worker's other tasks run
    /// meanwhile (a transaction's commit takes a round trip to the broker or more).
    pub fn wait(&self, cancelled: impl Fn() -> bool) -> bool {
        !matches!(await_answer(&self.0, cancelled), Awaited::Cancelled)
    }
}

/// What [`await_answer`] got.
pub enum Awaited<T> {
    /// The answer.
    Answered(T),
    /// The sending side went away without an answer (it failed, or, for a [`Hold`], the
    /// reader resumed the stage).
    Gone,
    /// `cancelled` said the job stops.
    Cancelled,
}

/// Waits for `answer`'s one message while `cancelled` (asked every 200 ms) says the job goes
/// on: a stage's answer to a [`Handover`], a [`Hold`]'s end. On a worker its other tasks run
/// meanwhile (the one that answers may be among them); elsewhere the thread blocks.
pub fn await_answer<T>(
    answer: &crossbeam_channel::Receiver<T>,
    cancelled: impl Fn() -> bool,
) -> Awaited<T> {
    const ASK: Duration = Duration::from_millis(200);
    if !crate::exec::worker::cooperative() {
        loop {
            match answer.recv_timeout(ASK) {
                Ok(t) => return Awaited::Answered(t),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) if cancelled() => {
                    return Awaited::Cancelled
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return Awaited::Gone,
            }
        }
    }
    let mut asked = std::time::Instant::now();
    loop {
        match answer.try_recv() {
            Ok(t) => return Awaited::Answered(t),
            Err(crossbeam_channel::TryRecvError::Empty) => {
                if asked.elapsed() >= ASK {
                    if cancelled() {
                        return Awaited::Cancelled;
                    }
                    asked = std::time::Instant::now();
                }
                crate::exec::worker::sleep(Duration::from_millis(1));
            }
            Err(crossbeam_channel::TryRecvError::Disconnected) => return Awaited::Gone,
        }
    }
}

impl Handover {
    /// A release request, and where the stage's answer arrives (nothing arrives when the
    /// stage failed).
    pub fn release() -> (Handover, Answer) {
        let (reply, answer) = crossbeam_channel::bounded(1);
        (Handover::Release(reply, None), answer)
    }

    /// A save request, and where the stage's answer arrives.
    pub fn save() -> (Handover, Answer) {
        let (reply, answer) = crossbeam_channel::bounded(1);
        (Handover::Save(reply, None), answer)
    }

    /// A flush request (the stage's output made durable, no state), and where the stage's
    /// answer arrives.
    pub fn flush() -> (Handover, Answer) {
        let (reply, answer) = crossbeam_channel::bounded(1);
        (Handover::Flush(reply, None), answer)
    }

    /// A request that holds the stage until the reader drops the [`Resume`] (see
    /// [`Hold`]): a release (`Some(true)`), a save (`Some(false)`), or a flush alone (`None`).
    pub fn held(release: Option<bool>) -> (Handover, Answer, Resume) {
        let (reply, answer) = crossbeam_channel::bounded(1);
        let (resume, hold) = crossbeam_channel::bounded(0);
        let hold = Hold(hold);
        let handover = match release {
            Some(true) => Handover::Release(reply, Some(hold)),
            Some(false) => Handover::Save(reply, Some(hold)),
            None => Handover::Flush(reply, Some(hold)),
        };
        (handover, answer, Resume(resume))
    }
}

impl std::fmt::Debug for Handover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Handover::Release(..) => f.write_str("Release"),
            Handover::Save(..) => f.write_str("Save"),
            Handover::Adopt(a) => write!(f, "Adopt({} operators)", a.operators()),
            Handover::Flush(..) => f.write_str("Flush"),
            Handover::Splits(s) => write!(f, "Splits({} partitions)", s.len()),
        }
    }
}

/// This instance's membership of its group while the job runs (dropped at the end).
pub type Membership = Box<dyn std::any::Any + Send>;

/// Moves rows between instances; Kafka's lives in `flow-connectors` (feature `kafka`).
pub trait Transport: Send + Sync {
    /// Joins `config`'s group with the job's plan (`describe`d, and its `fingerprint`)
    /// before the job runs: refuses to when a live instance of the group runs another plan.
    fn join(&self, config: &InstanceConfig, fingerprint: u64, plan: &str) -> Result<Membership>;
    /// Creates the edge's topic unless it exists; called once per edge before the job runs.
    fn prepare(&self, edge: &RemoteEdge) -> Result<()>;
    /// Before the job's tasks start (once per job): prepares what its source subtasks
    /// `sources` and the subtasks of stages fed by repartition readers `readers` (block,
    /// stage, subtask) of job run `run` ([`crate::SubtaskKey::run`]) write through. An
    /// exactly-once group's transactions are initialised here, which aborts what a dead
    /// predecessor of this instance left open before any of its readers reads. The default
    /// prepares nothing.
    fn prepare_origins(
        &self,
        config: &InstanceConfig,
        run: u64,
        sources: &[(usize, usize, usize)],
        readers: &[(usize, usize, usize)],
    ) -> Result<()> {
        let _ = (config, run, sources, readers);
        Ok(())
    }
    /// Job run `run` ended (or failed to start): forgets what the transport kept for it
    /// (what [`Transport::prepare_origins`] prepared and no task took, its writers).
    fn end_run(&self, run: u64) {
        let _ = run;
    }
    /// The sending end of `edge` in upstream subtask `subtask`.
    fn output(&self, edge: &RemoteEdge, subtask: usize) -> Result<Box<dyn RemoteOut>>;
    /// Reads the partitions the group assigns to downstream subtask `subtask` and sends their
    /// batches, watermarks and end to `to` until the edge ends or the receiver is gone.
    fn read(
        &self,
        edge: &RemoteEdge,
        subtask: usize,
        ctx: &RuntimeContext,
        to: Inbox,
    ) -> Result<TaskMetrics>;
}

/// Whether this instance was asked to leave its group: SIGTERM or SIGINT (or
/// [`request_stop`](crate::request_stop)) in a job with `--instance-group`. Its sources stop
/// reading (their positions committed once what they read was written on) and its readers of
/// repartition topics hand every partition over, as in a rebalance (position committed,
/// keyed state saved there and dropped by the stage); then the job ends and the group deals
/// the instance's partitions to the others. A second signal exits at once, as a crash.
pub fn leave_requested() -> bool {
    crate::exec::stop_requested()
}

/// The error of a job in an instance group whose `key_by` rows serde cannot write.
pub(crate) fn no_codec(operator: &str, row_type: &str) -> Error {
    Error::Config(format!(
        "`{operator}` crosses instances of the group through a Kafka topic, but its rows (`{row_type}`) are not serde: make them a `#[derive(Row)]` struct, or owned types (`String`, not `&str`) that implement `flow::instances::WireRow`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_max_broker_downtime_flag_sets_the_instances_limit() {
        let env = |args: &[&str]| {
            let m = crate::env::StreamEnv::command("job")
                .try_get_matches_from(["job", "--instance-group", "g"].iter().chain(args))
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(crate::env::StreamEnv::from_matches(&m))
        };
        let limit = |args: &[&str]| {
            let env = env(&[&["--instance-brokers", "b:9092"], args].concat()).unwrap();
            env.instances().unwrap().max_broker_downtime()
        };
        assert_eq!(limit(&[]), MAX_BROKER_DOWNTIME);
        assert_eq!(
            limit(&["--max-broker-downtime", "15"]),
            std::time::Duration::from_secs(15)
        );
        let e = env(&["--instance-brokers", "b", "--max-broker-downtime", "5"])
            .err()
            .expect("5 s is refused");
        assert!(e.contains("5 is not in 10..=3600"), "{e}");
    }

    #[test]
    fn a_configuration_set_in_code_is_held_to_the_flags_bounds() {
        let base = || InstanceConfig::new("g", "b:9092");
        assert_eq!(base().check(), Ok(()));
        let refused = |config: InstanceConfig, says: &str| {
            let e = config.check().expect_err(says);
            assert!(e.contains(says) && e.contains("`g`"), "{says}: {e}");
        };
        let secs = |s: f64| Some(Duration::from_secs_f64(s));
        refused(
            InstanceConfig {
                max_broker_downtime: secs(9.5),
                ..base()
            },
            "max broker downtime (--max-broker-downtime) is 9.5s, where 10 to 3600 s",
        );
        refused(
            InstanceConfig {
                max_broker_downtime: secs(3601.0),
                ..base()
            },
            "where 10 to 3600 s",
        );
        for ok in [10.0, 3600.0] {
            let config = InstanceConfig {
                max_broker_downtime: secs(ok),
                ..base()
            };
            assert_eq!(config.check(), Ok(()), "{ok} s");
        }
        refused(
            InstanceConfig {
                session_timeout: secs(1.0),
                ..base()
            },
            "session timeout (--session-timeout) is 1s, where 6 to 1800 s",
        );
        refused(
            InstanceConfig {
                partitions: 0,
                ..base()
            },
            "0 repartition partitions",
        );
        refused(
            InstanceConfig {
                partitions: crate::snapshot::KEY_GROUPS + 1,
                ..base()
            },
            "(the key groups)",
        );
        refused(
            InstanceConfig {
                exactly_once: true,
                ..base()
            },
            "needs an instance id",
        );
        let e = InstanceConfig {
            id: Some("a b".into()),
            ..base()
        }
        .check()
        .unwrap_err();
        assert!(e.contains("`a b` is not an instance id"), "{e}");
    }

    #[test]
    fn static_member_ids_use_only_characters_kafka_takes() {
        let mut config = InstanceConfig::new("wc", "");
        assert_eq!(
            config.static_member("lines", 0),
            None,
            "no id, no static member"
        );
        config.id = Some("wc-1".into());
        assert_eq!(config.static_member("reader", 1).unwrap(), "wc-1-reader-1");
        // A pattern of topics: its other characters become `_`, and a hash tells it from
        // names that differ only there.
        let pattern = config.static_member("^(?:in-.*)$", 0).unwrap();
        assert!(pattern.starts_with("wc-1-____in-.___-"), "{pattern}");
        assert_ne!(pattern, config.static_member("^(?:in-.+)$", 0).unwrap());
        assert_ne!(
            config.static_member("a,b", 0).unwrap(),
            config.static_member("a_b", 0).unwrap()
        );
        assert_eq!(config.static_member("a_b", 0).unwrap(), "wc-1-a_b-0");
        let long = "t".repeat(300);
        let member = config.static_member(&long, 3).unwrap();
        assert!(member.len() <= 249, "{member}");
        assert!(
            member.starts_with("wc-1-") && member.ends_with("-3"),
            "{member}"
        );
        assert_ne!(member, config.static_member(&"u".repeat(300), 3).unwrap());
    }

    #[test]
    fn a_record_with_other_counts_of_rows_and_timestamps_is_refused() {
        let good = bincode::serialize(&(vec![1i64, 2], vec![10i64, 20])).unwrap();
        let batch = decode::<i64>(&good).unwrap().into_batch::<i64>();
        assert_eq!((batch.rows, batch.timestamps), (vec![10, 20], vec![1, 2]));
        let untimed = bincode::serialize(&(Vec::<i64>::new(), vec![10i64, 20])).unwrap();
        assert_eq!(
            decode::<i64>(&untimed).unwrap().into_batch::<i64>().rows,
            [10, 20]
        );

        let bad = bincode::serialize(&(vec![1i64], vec![10i64, 20])).unwrap();
        let err = decode::<i64>(&bad).expect_err("refused").to_string();
        assert!(
            err.contains("2 rows of type `i64` but 1 timestamps"),
            "{err}"
        );
    }
}
