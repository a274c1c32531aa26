//! State that follows the partitions of a repartition topic from one instance of a group to
//! another (`--instance-group` with `--checkpoint-dir`), as Kafka Streams' tasks move with
//! their partitions.
//!
//! A key's partition is a function of its key group (`subtask_of_group(group, partitions)`),
//! so the keyed state of a stage that reads a repartition topic splits by partition. When a
//! rebalance takes partitions from a reader, the stage it feeds saves its state
//! ([`Released`]); the reader writes each partition's share, at the position it commits for
//! the partition, to a file of shared storage, and only then commits. The instance that gets
//! the partition reads the committed position and adopts the file at that position
//! ([`Adopted`]) before it reads a row: its keys' state is what the rows before that position
//! made it, and every row after it is read once.
//!
//! ```text
//! DIR/instances/<repartition topic>/p7/1234.state   partition 7's state at offset 1234
//! ```

use super::storage::{decode_file, encode_file, write_atomically, Versioned};
use super::{subtask_of_group, KEY_GROUPS};
use super::{OperatorState, Section, SectionData, StateReader, StoredState, TaskState};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The state a stage gave up at a rebalance: every operator's, all its keys.
#[derive(Debug)]
pub struct Released {
    operators: Vec<(String, OperatorState)>,
}

impl Released {
    pub(crate) fn new(state: TaskState) -> Self {
        Released {
            operators: state.operators,
        }
    }
}

/// The state of the partitions a stage takes over, read from their files.
#[derive(Debug, Default)]
pub struct Adopted {
    /// Per operator uid, one entry per partition file that has state for it (kept for the
    /// process's lifetime: restored values may borrow from them).
    stored: HashMap<String, &'static [StoredState]>,
    /// The key groups of the partitions the files are of.
    groups: u128,
}

impl Adopted {
    /// Whether no partition had state to adopt.
    pub fn is_empty(&self) -> bool {
        self.stored.is_empty()
    }

    /// How many operators have state to adopt.
    pub fn operators(&self) -> usize {
        self.stored.len()
    }

    /// The reader of operator `uid`'s state in the adopted partitions, if they hold any.
    pub(crate) fn reader(&self, uid: &str) -> Option<StateReader> {
        let stored = self.stored.get(uid)?;
        Some(StateReader::of_groups(uid, stored, self.groups))
    }
}

/// One partition's share of a released state.
#[derive(Serialize, Deserialize)]
struct PartitionFile {
    /// The fingerprint of the job's plan that wrote it.
    plan: u64,
    partition: u32,
    partitions: u32,
    offset: i64,
    operators: Vec<(String, Vec<Section>)>,
}

impl Versioned for PartitionFile {}

/// The key groups of partition `partition` of `partitions` (bit `g` for group `g`).
fn groups_of(partition: usize, partitions: usize) -> u128 {
    (0..KEY_GROUPS)
        .filter(|&g| subtask_of_group(g, partitions) == partition)
        .fold(0, |mask, g| mask | 1 << g)
}

/// Section `section` with only the keyed entries of key groups `groups`.
fn only(section: &Section, groups: u128) -> Section {
    let data = match &section.data {
        SectionData::Keyed { groups: all } => SectionData::Keyed {
            groups: all
                .iter()
                .filter(|(g, _, _)| groups >> *g & 1 == 1)
                .cloned()
                .collect(),
        },
        list => list.clone(),
    };
    Section {
        name: section.name.clone(),
        types: section.types.clone(),
        schema: section.schema,
        data,
    }
}

/// Where the partition files of one repartition topic live.
#[derive(Clone, Debug)]
pub struct PartitionStore {
    dir: PathBuf,
    partitions: usize,
    /// The fingerprint of the job's plan: files of another plan (a crashed run of an older
    /// version of the job) are not adopted.
    plan: u64,
}

impl PartitionStore {
    /// The files of a topic of `partitions` partitions, under `dir`, of the plan with
    /// fingerprint `plan`.
    pub fn new(dir: PathBuf, partitions: usize, plan: u64) -> Self {
        PartitionStore {
            dir,
            partitions,
            plan,
        }
    }

    fn file(&self, partition: usize, offset: i64) -> PathBuf {
        self.dir
            .join(format!("p{partition}"))
            .join(format!("{offset}.state"))
    }

    /// Writes each partition's share of `released`, at the offset given with it, each file
    /// complete or absent (a temporary file renamed, synced).
    ///
    /// # Errors
    /// A state that does not encode, or a file that cannot be written.
    pub fn save(&self, released: Released, at: &[(usize, i64)]) -> Result<()> {
        let operators = released
            .operators
            .into_iter()
            .map(|(uid, state)| Ok((uid, state.materialize()?)))
            .collect::<Result<Vec<_>>>()?;
        for &(partition, offset) in at {
            let groups = groups_of(partition, self.partitions);
            let file = PartitionFile {
                plan: self.plan,
                partition: partition as u32,
                partitions: self.partitions as u32,
                offset,
                operators: operators
                    .iter()
                    .map(|(uid, sections)| {
                        (
                            uid.clone(),
                            sections.iter().map(|s| only(s, groups)).collect(),
                        )
                    })
                    .collect(),
            };
            let path = self.file(partition, offset);
            let parent = path.parent().expect("a partition file is in a folder");
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io("instance group state", "create", parent, e))?;
            write_atomically(&path, &encode_file(&file)?)?;
        }
        Ok(())
    }

    /// The state saved for each partition at the offset given with it, if any.
    ///
    /// # Errors
    /// A file that cannot be read, is corrupt, or is of another partition or topic.
    pub fn load(&self, at: &[(usize, i64)]) -> Result<Adopted> {
        let mut stored: HashMap<String, Vec<StoredState>> = HashMap::new();
        let mut groups = 0;
        for (i, &(partition, offset)) in at.iter().enumerate() {
            let path = self.file(partition, offset);
            if !path.exists() {
                self.note_saved_elsewhere(partition, offset);
                continue;
            }
            let file: PartitionFile = decode_file(&path, "instance group")?;
            if file.plan != self.plan {
                tracing::warn!(
                    file = %path.display(),
                    "state of another plan of the job (fingerprint {:016x}, this one {:016x}): not adopted, its keys start afresh",
                    file.plan,
                    self.plan
                );
                continue;
            }
            if (file.partition, file.partitions, file.offset)
                != (partition as u32, self.partitions as u32, offset)
            {
                return Err(Error::State {
                    operator: "instance group".into(),
                    file: Some(path),
                    message: format!(
                        "holds partition {} of {} at offset {}, where partition {partition} of {} at offset {offset} was expected",
                        file.partition, file.partitions, file.offset, self.partitions
                    ),
                });
            }
            groups |= groups_of(partition, self.partitions);
            for (uid, sections) in file.operators {
                stored.entry(uid).or_default().push(StoredState {
                    file: path.clone(),
                    subtask: i,
                    sections,
                });
            }
        }
        Ok(Adopted {
            stored: stored
                .into_iter()
                .map(|(uid, states)| (uid, &*states.leak()))
                .collect(),
            groups,
        })
    }

    /// A committed position without a file: the partition's readers committed without
    /// saving state (the topic ended: its last owner fires what its keys hold), or a state
    /// was lost. With files of other offsets there, said (the keys start afresh), for the
    /// log of a group whose counts came out wrong.
    fn note_saved_elsewhere(&self, partition: usize, offset: i64) {
        let Ok(entries) = std::fs::read_dir(self.dir.join(format!("p{partition}"))) else {
            return;
        };
        let others: Vec<String> = (entries.flatten())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        if !others.is_empty() {
            tracing::info!(
                folder = %self.dir.display(),
                partition,
                offset,
                files = ?others,
                "no state saved at the committed position of a partition taken over, but at others: its keys start afresh"
            );
        }
    }

    /// Removes partition `partition`'s files of offsets before `offset` (all of them with
    /// `i64::MAX`): states no reader will start from again, and what an instance killed while
    /// it wrote one left (`<offset>.tmp`: the file is written through it, then renamed).
    ///
    /// # Errors
    /// A file that cannot be removed.
    pub fn remove_before(&self, partition: usize, offset: i64) -> Result<()> {
        let dir = self.dir.join(format!("p{partition}"));
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let older = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".state").or_else(|| n.strip_suffix(".tmp")))
                .and_then(|n| n.parse::<i64>().ok())
                .is_some_and(|o| o < offset);
            if older {
                remove(&path)?;
            }
        }
        Ok(())
    }
}

fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io("instance group state", "remove", path, e))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::StateWriter;

    fn released(entries: &[(String, u32)], watermark: i64) -> Released {
        let mut w = StateWriter::new("count");
        w.keyed("counts", entries.iter().map(|(k, v)| (k, v)))
            .unwrap();
        w.list("watermark", [&watermark]).unwrap();
        let mut state = TaskState::new(true, None, 0);
        let _ = state.add(3, "count", w);
        Released::new(state)
    }

    fn counts(adopted: &Adopted) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        adopted
            .reader("count-3")
            .expect("state of count-3")
            .keyed("counts", |k: String, v: u32| out.push((k, v)))
            .unwrap();
        out.sort();
        out
    }

    #[test]
    fn each_partition_gets_the_state_of_its_keys_at_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let store = PartitionStore::new(dir.path().to_path_buf(), 4, 7);
        let words: Vec<String> = (0..64).map(|i| format!("w{i}")).collect();
        let entries: Vec<(String, u32)> = words.iter().map(|w| (w.clone(), 1)).collect();
        store
            .save(
                released(&entries, 70),
                &[(0, 10), (1, 11), (2, 12), (3, 13)],
            )
            .unwrap();
        let partition_of = |k: &String| crate::hash::key_to_subtask(k, 4);
        let mut all = Vec::new();
        for (p, offset) in [(0, 10), (1, 11), (2, 12), (3, 13)] {
            let adopted = store.load(&[(p, offset)]).unwrap();
            let got = counts(&adopted);
            assert!(!got.is_empty(), "partition {p} has keys");
            assert!(got.iter().all(|(k, _)| partition_of(k) == p));
            let wm: Vec<i64> = adopted
                .reader("count-3")
                .unwrap()
                .union("watermark")
                .unwrap();
            assert_eq!(wm, vec![70]);
            all.extend(got);
        }
        all.sort();
        let mut expected = entries.clone();
        expected.sort();
        assert_eq!(all, expected);
        // Another offset has no file: nothing to adopt.
        assert!(store.load(&[(0, 9)]).unwrap().is_empty());
        // Two partitions adopted at once: both shares, and the lowest watermark.
        store.save(released(&entries, 50), &[(1, 20)]).unwrap();
        let both = store.load(&[(0, 10), (1, 20)]).unwrap();
        assert_eq!(
            counts(&both).len(),
            entries.iter().filter(|(k, _)| partition_of(k) < 2).count()
        );
        let wm: Vec<i64> = both.reader("count-3").unwrap().union("watermark").unwrap();
        assert_eq!(wm.into_iter().min(), Some(50));
    }

    #[test]
    fn older_files_are_removed_and_a_misplaced_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = PartitionStore::new(dir.path().to_path_buf(), 2, 7);
        for offset in [5, 9, 12] {
            store
                .save(released(&[("a".to_string(), 1)], 0), &[(1, offset)])
                .unwrap();
        }
        // What an instance killed while it wrote a file left.
        std::fs::write(dir.path().join("p1/7.tmp"), b"half a state").unwrap();
        std::fs::write(dir.path().join("p1/13.tmp"), b"a write under way").unwrap();
        store.remove_before(1, 12).unwrap();
        std::fs::remove_file(dir.path().join("p1/13.tmp")).expect("a newer write is left alone");
        let left: Vec<_> = std::fs::read_dir(dir.path().join("p1"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, vec!["12.state".to_string()]);
        std::fs::create_dir_all(dir.path().join("p0")).unwrap();
        std::fs::copy(
            dir.path().join("p1/12.state"),
            dir.path().join("p0/12.state"),
        )
        .unwrap();
        let e = store.load(&[(0, 12)]).unwrap_err().to_string();
        assert!(e.contains("holds partition 1 of 2"), "{e}");
        // Another plan's files are not adopted.
        let other = PartitionStore::new(dir.path().to_path_buf(), 2, 8);
        assert!(other.load(&[(1, 12)]).unwrap().is_empty());
        assert!(!store.load(&[(1, 12)]).unwrap().is_empty());
    }
}

/// A keyed stage giving its state up at a rebalance of an instance group and another one
/// adopting it ([`Control::release`](crate::chain::Control::release),
/// [`Control::adopt`](crate::chain::Control::adopt)), through a chain as a task drives it,
/// without Kafka.
#[cfg(test)]
mod handover {
    use crate::chain::{Collector, Control, Discard};
    use crate::context::RuntimeContext;
    use crate::operator::reduce::Reduce;
    use crate::operator::Chained;
    use crate::snapshot::{PartitionStore, Released};
    use crate::time::Timestamp;
    use std::sync::{Arc, Mutex};

    /// The end of a chain that keeps what reaches it.
    #[derive(Clone, Default)]
    struct Kept(Arc<Mutex<Vec<(String, u64)>>>);

    impl Kept {
        fn take(&self) -> Vec<(String, u64)> {
            std::mem::take(&mut self.0.lock().unwrap())
        }
    }

    impl Collector<(String, u64)> for Kept {
        fn collect(&mut self, row: (String, u64), _: Timestamp) {
            self.0.lock().unwrap().push(row);
        }
    }

    crate::chain::control_of_end!(Kept);

    type Sum = fn((String, u64), (String, u64)) -> (String, u64);
    type Key = fn(&(String, u64)) -> String;

    fn sum(a: (String, u64), b: (String, u64)) -> (String, u64) {
        (a.0, a.1 + b.1)
    }

    fn word(row: &(String, u64)) -> String {
        row.0.clone()
    }

    /// The chain of a stage with a rolling sum per word.
    type SumStage = Chained<(String, u64), Reduce<Key, String, Sum, (String, u64)>, Kept, Discard>;

    /// A stage with a rolling sum per word (plan node 1, `sum`), opened.
    fn stage(ctx: &RuntimeContext) -> (SumStage, Kept) {
        let kept = Kept::default();
        let mut chain = Chained::new(Reduce::new(word as Key, sum as Sum), 1, "sum", kept.clone());
        chain.open(ctx).unwrap();
        (chain, kept)
    }

    fn feed(chain: &mut impl Collector<(String, u64)>, words: &[&str]) {
        for w in words {
            chain.collect((w.to_string(), 1), 0);
        }
    }

    #[test]
    fn a_released_stage_starts_afresh_and_the_adopting_one_goes_on_from_its_state() {
        let ctx = RuntimeContext::standalone("sum", 0, 1);
        released_and_adopted(&ctx, &ctx);
    }

    /// The same with the disk backend on both sides (two instances, two stores), with the
    /// smallest cache (56 states of the 200): most states are in the store when they are
    /// released, dropped there, and adopted into the other store.
    #[cfg(feature = "disk")]
    #[test]
    fn a_stage_on_disk_gives_its_stored_state_up_and_another_on_disk_adopts_it() {
        let on_disk = || {
            let (dir, mut ctx) = crate::state::keyed::disk_tests::disk(1);
            // The operator's name, which a standalone context's state ids are made of.
            ctx.operator = "sum";
            (dir, ctx)
        };
        let ((_a_dir, a), (_b_dir, b)) = (on_disk(), on_disk());
        released_and_adopted(&a, &b);
    }

    /// A stage run in `a_ctx` releases its state, which a stage run in `b_ctx` adopts in part.
    fn released_and_adopted(a_ctx: &RuntimeContext, b_ctx: &RuntimeContext) {
        let dir = tempfile::tempdir().unwrap();
        let store = PartitionStore::new(dir.path().to_path_buf(), 4, 7);
        let words: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();

        let (mut a, a_out) = stage(a_ctx);
        feed(&mut a, &words);
        feed(&mut a, &words);
        a_out.take();
        // A save keeps the state; a release drops it.
        let mut saved = a_ctx.released_state();
        a.release(&mut saved, false).unwrap();
        feed(&mut a, &words[..1]);
        assert_eq!(a_out.take(), vec![(words[0].to_string(), 3)]);
        let mut released = a_ctx.released_state();
        a.release(&mut released, true).unwrap();
        let all: Vec<(usize, i64)> = (0..4).map(|p| (p, 100 + p as i64)).collect();
        store.save(Released::new(released), &all).unwrap();
        feed(&mut a, &words);
        let afresh: Vec<(String, u64)> = words.iter().map(|w| (w.to_string(), 1)).collect();
        assert_eq!(a_out.take(), afresh, "released: afresh");

        // Another stage adopts two of the four partitions: their words go on from their sums,
        // the others' start afresh.
        let (mut b, b_out) = stage(b_ctx);
        b.adopt(b_ctx, &store.load(&all[..2]).unwrap()).unwrap();
        feed(&mut b, &words);
        let partition = |w: &str| crate::hash::key_to_subtask(&w.to_string(), 4);
        assert!(words.iter().any(|w| partition(w) < 2) && words.iter().any(|w| partition(w) >= 2));
        for (w, n) in b_out.take() {
            // Released at 2 per word, 3 for the first (fed once more after the save).
            let released = if w == words[0] { 3 } else { 2 };
            let expected = if partition(&w) < 2 { released + 1 } else { 1 };
            assert_eq!(n, expected, "{w} of partition {}", partition(&w));
        }
    }
}
