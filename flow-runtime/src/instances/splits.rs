//! Per-split watermarks of a source task, for the repartition topics its chain writes.
//!
//! A writer's watermark is the smallest over the source partitions (splits) its subtask
//! reads. When the group deals a source partition to another instance, that instance's
//! watermark may already be past the partition's next rows (its other partitions ran ahead):
//! a writer's watermark never goes back, so with writers' watermarks alone those rows would
//! be late where they are read once the partition's old owner ended. So a source task in an
//! instance group also publishes each split's own watermark ([`SourceSplits`]), the
//! repartition writers at the end of its chain write it to the topic, and a reader holds each
//! partition of the topic at the smallest over the splits as well: a split's watermark
//! travels with the split, from the last one its old reader wrote until its new reader's
//! rows move it. (Flink needs none of this: a failure restarts every task from the
//! checkpoint, each watermark from the start.)
//!
//! The same holds for a second `key_by`: the stage a repartition reader feeds publishes the
//! reader's partitions as its splits ([`StageSplits`]), for the writers of the next
//! repartition topic at the end of its chain.

use crate::context::SubtaskKey;
use crate::time::Timestamp;
use std::sync::{Arc, Mutex, MutexGuard};

/// What one split of a source (a Kafka partition) last told of its event time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitWatermark {
    /// The split's name, the same in every instance of the group: its source stage's and
    /// its own (a Kafka partition's topic and number).
    pub id: u64,
    /// The split's own watermark: its rows to come are later ([`Timestamp::MIN`] before its
    /// first row).
    pub watermark: Timestamp,
    /// Whether it holds a watermark back.
    pub state: SplitState,
}

/// Whether a split holds a watermark back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitState {
    /// It does, at its watermark.
    Active,
    /// No row came for the idleness timeout (or it never held one back: a split that
    /// delivered no row and was not started): it does not.
    Idle,
    /// Its source reached its end, or ended reading it (a stop): it does not, until a
    /// reader says otherwise (one the group dealt it to next).
    Finished,
}

/// A source task's splits, as its watermark generator last published them (or a stage's a
/// repartition reader feeds: [`StageSplits`]); the repartition writers at the end of the
/// task's chain read them ([`source_splits`]). A split the task
/// gave up (the group dealt it to another reader) is not listed: what its reader said of it
/// last stays where it was written.
#[derive(Debug, Default)]
pub struct SourceSplits {
    inner: Mutex<Published>,
}

#[derive(Debug, Default)]
struct Published {
    /// Bumped on every change of `splits`.
    version: u64,
    splits: Vec<SplitWatermark>,
    /// An operator of the chain assigns timestamps and watermarks of its own
    /// (`assign_timestamps_and_watermarks`): the source's splits say nothing of them.
    regenerated: bool,
    /// The chain has an exchange that writes a repartition topic (which writes the splits).
    remote: bool,
    /// The chain has an in-process exchange: rows go on to writers in other tasks, which
    /// write no splits.
    local: bool,
}

impl SourceSplits {
    fn lock(&self) -> MutexGuard<'_, Published> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes `splits` (a new version if they changed).
    pub(crate) fn publish(&self, splits: &[SplitWatermark]) {
        let mut p = self.lock();
        if p.splits != splits {
            p.version += 1;
            p.splits.clear();
            p.splits.extend_from_slice(splits);
        }
    }

    /// An operator of the chain makes watermarks of its own: the splits' go unused.
    pub(crate) fn regenerated(&self) {
        self.lock().regenerated = true;
    }

    /// An exchange of the chain opened: one that writes a repartition topic (`remote`), or
    /// an in-process one.
    pub(crate) fn exchange_opened(&self, remote: bool) {
        let mut p = self.lock();
        if remote {
            p.remote = true;
        } else {
            p.local = true;
        }
    }

    /// Whether every repartition topic the task's rows reach is written from its own chain
    /// with the splits (no in-process exchange, no watermarks made in the chain): then the
    /// splits' watermarks, not the writers', hold the readers back wherever the group deals
    /// them (a source leaving its group need not keep its writers open until the others
    /// read its partitions on).
    pub fn cover_the_writers(&self) -> bool {
        let p = self.lock();
        p.remote && !p.local && !p.regenerated
    }

    /// Whether a repartition writer of the chain writes the splits: an exchange of the chain
    /// writes a repartition topic, and the chain makes no watermarks of its own. (A
    /// repartition reader sends the stage it feeds its partitions only then.)
    pub fn written(&self) -> bool {
        let p = self.lock();
        p.remote && !p.regenerated
    }

    /// The splits now; `None` when the chain's watermarks are not the source's.
    pub fn current(&self) -> Option<Vec<SplitWatermark>> {
        let p = self.lock();
        (!p.regenerated).then(|| p.splits.clone())
    }

    /// The splits and their version, when they changed since `version` (the first
    /// published ones: since `0`); `None` when they did not, or when the chain's watermarks
    /// are not the source's.
    pub fn changed_since(&self, version: u64) -> Option<(u64, Vec<SplitWatermark>)> {
        let p = self.lock();
        (!p.regenerated && p.version != version).then(|| (p.version, p.splits.clone()))
    }
}

/// The tasks of this process that publish their splits, by subtask: sources, and stages a
/// repartition reader feeds.
static TASKS: Mutex<Vec<(SubtaskKey, Arc<SourceSplits>)>> = Mutex::new(Vec::new());

/// The splits the task `key` publishes: a repartition writer in its chain (one with that
/// key) asks when it opens, and the repartition reader that feeds the stage (its task has
/// the key too) asks whether to send them. `None` for a task that is neither a source of an
/// instance group with event time nor a stage a repartition reader feeds.
pub fn source_splits(key: SubtaskKey) -> Option<Arc<SourceSplits>> {
    let tasks = TASKS.lock().unwrap_or_else(|e| e.into_inner());
    (tasks.iter())
        .find(|(k, _)| *k == key)
        .map(|(_, s)| s.clone())
}

/// A source task's entry in [`TASKS`] while it runs: removed when dropped.
pub(crate) struct Registered {
    key: SubtaskKey,
    pub(crate) splits: Arc<SourceSplits>,
}

/// Registers the task `key`'s splits, for its chain's writers to find.
pub(crate) fn register(key: SubtaskKey) -> Registered {
    let splits = Arc::new(SourceSplits::default());
    let mut tasks = TASKS.lock().unwrap_or_else(|e| e.into_inner());
    tasks.retain(|(k, _)| *k != key);
    tasks.push((key, splits.clone()));
    Registered { key, splits }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut tasks = TASKS.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|(k, s)| !(*k == self.key && Arc::ptr_eq(s, &self.splits)));
    }
}

/// The splits of a stage fed by a repartition reader in an instance group: the reader's
/// partitions ([`Handover::Splits`](crate::instances::Handover::Splits)), published for the
/// repartition writers of the stage's chain (a second `key_by`) as a source task publishes its
/// own. A partition's watermark is published no higher than the last watermark the chain was
/// given (its floor): an operator that holds rows (a window) emits them at that watermark or
/// later, but below a partition's own when the partition is ahead of the others.
///
/// Before the chain's first watermark, and after an adopt until the next (the adopted
/// windows fire at it, below it), the floor is `MIN` and every partition is published active
/// at it: the readers of the next topic then hold each at what was written of it before
/// (they keep the highest), where an idle or finished one, as the reader may see a moved
/// partition at its old commit, would hold nothing back.
pub(crate) struct StageSplits {
    registered: Registered,
    /// The reader's partitions, as it last sent them.
    partitions: Vec<SplitWatermark>,
    floor: Timestamp,
}

impl StageSplits {
    /// Registers the splits of `ctx`'s task when a repartition reader feeds it (before its
    /// chain opens: its writers look for them).
    pub(crate) fn register(ctx: &crate::RuntimeContext) -> Option<StageSplits> {
        (ctx.instance_group && ctx.fed_by_reader).then(|| StageSplits {
            registered: register(ctx.subtask_key()),
            partitions: Vec::new(),
            floor: Timestamp::MIN,
        })
    }

    /// The reader's partitions now.
    pub(crate) fn partitions(&mut self, partitions: Vec<SplitWatermark>) {
        self.partitions = partitions;
        self.publish();
    }

    /// The chain is given watermark `w` (published before the chain takes it in: its
    /// writers write the splits after the rows it fires).
    pub(crate) fn watermark(&mut self, w: Timestamp) {
        self.floor = w;
        if !self.partitions.is_empty() {
            self.publish();
        }
    }

    /// The chain adopted state.
    pub(crate) fn adopted(&mut self) {
        self.floor = Timestamp::MIN;
        self.publish();
    }

    fn publish(&self) {
        let floor = self.floor;
        let capped: Vec<SplitWatermark> = (self.partitions.iter())
            .map(|s| SplitWatermark {
                watermark: s.watermark.min(floor),
                state: if floor == Timestamp::MIN {
                    SplitState::Active
                } else {
                    s.state
                },
                ..*s
            })
            .collect();
        self.registered.splits.publish(&capped);
    }
}

/// A stable name for split `split` of the source of stage `stage` (a Kafka partition's:
/// see [`split_name`]): the same in every instance of the group.
pub(crate) fn stage_split(stage: usize, split: u64) -> u64 {
    split ^ (stage as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A stable name for partition `partition` of `topic` (FNV-1a), for
/// [`SourceOutput::split_identified`](crate::SourceOutput::split_identified).
pub fn split_name(topic: &str, partition: i32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in topic.bytes().chain(partition.to_be_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuntimeContext;

    fn key(stage: usize) -> SubtaskKey {
        SubtaskKey {
            run: u64::MAX - 7,
            graph: 0,
            stage,
            subtask: 0,
        }
    }

    #[test]
    fn a_writer_finds_its_task_s_splits_while_the_task_runs() {
        let registered = register(key(1));
        assert!(source_splits(key(2)).is_none());
        let found = source_splits(key(1)).expect("registered");
        let split = SplitWatermark {
            id: 9,
            watermark: 100,
            state: SplitState::Active,
        };
        assert_eq!(found.changed_since(0), None, "nothing published yet");
        registered.splits.publish(&[split]);
        let (v, splits) = found.changed_since(0).expect("published");
        assert_eq!(splits, vec![split]);
        assert_eq!(found.changed_since(v), None);
        registered.splits.publish(&[split]);
        assert_eq!(
            found.changed_since(v),
            None,
            "the same splits: no new version"
        );
        assert!(
            !found.cover_the_writers(),
            "no repartition topic written yet"
        );
        found.exchange_opened(true);
        assert!(found.cover_the_writers());
        found.regenerated();
        assert!(!found.cover_the_writers());
        registered.splits.publish(&[]);
        assert_eq!(found.changed_since(v), None, "watermarks made in the chain");
        drop(registered);
        assert!(source_splits(key(1)).is_none());
    }

    #[test]
    fn a_stage_publishes_its_reader_s_partitions_no_higher_than_its_chain_s_watermark() {
        let ctx = RuntimeContext {
            instance_group: true,
            fed_by_reader: true,
            ..RuntimeContext::standalone("stage", 0, 1)
        };
        let mut stage = StageSplits::register(&ctx).expect("fed by a reader");
        let found = source_splits(ctx.subtask_key()).expect("registered");
        let partition = |id, watermark, state| SplitWatermark {
            id,
            watermark,
            state,
        };
        let published = || found.current().expect("not regenerated");
        stage.partitions(vec![
            partition(1, 500, SplitState::Active),
            partition(2, 100, SplitState::Idle),
        ]);
        assert_eq!(
            published(),
            vec![
                partition(1, Timestamp::MIN, SplitState::Active),
                partition(2, Timestamp::MIN, SplitState::Active),
            ],
            "no watermark given to the chain yet: each holds at what was written of it"
        );
        stage.watermark(300);
        assert_eq!(
            published(),
            vec![
                partition(1, 300, SplitState::Active),
                partition(2, 100, SplitState::Idle),
            ]
        );
        stage.adopted();
        assert_eq!(
            published(),
            vec![
                partition(1, Timestamp::MIN, SplitState::Active),
                partition(2, Timestamp::MIN, SplitState::Active),
            ],
            "adopted windows fire at the next watermark, below any"
        );
        stage.watermark(600);
        stage.partitions(vec![partition(2, 700, SplitState::Active)]);
        assert_eq!(
            published(),
            vec![partition(2, 600, SplitState::Active)],
            "the list replaces the last"
        );
        let standalone = RuntimeContext {
            instance_group: true,
            ..RuntimeContext::standalone("stage", 0, 1)
        };
        assert!(
            StageSplits::register(&standalone).is_none(),
            "no reader feeds it"
        );
    }

    #[test]
    fn an_in_process_exchange_in_the_chain_leaves_writers_the_splits_do_not_cover() {
        let splits = SourceSplits::default();
        splits.exchange_opened(true);
        splits.exchange_opened(false);
        assert!(!splits.cover_the_writers());
    }

    #[test]
    fn split_names_differ_by_topic_partition_and_stage() {
        let a = split_name("lines", 1);
        assert_eq!(a, split_name("lines", 1));
        assert_ne!(a, split_name("lines", 2));
        assert_ne!(a, split_name("lines2", 1));
        assert_ne!(stage_split(0, a), stage_split(1, a));
    }
}
