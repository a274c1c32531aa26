//! The timers of one time domain of a keyed process function: deduplicated per key and
//! timestamp, fired in timestamp order.
//!
//! In memory: a map from time to the keys with a timer then (deletions are lazy: a popped
//! timer that is no longer in the set is skipped), and the set of timers, copy-on-write
//! across checkpoints.
//!
//! With the disk state backend, the timers in memory are bounded by the state cache: beyond
//! it, the latest ones (whole timestamps, from the last) move to the store, keyed by time then
//! key, so that every timer at or after `boundary` is in the store and every one before it in
//! memory. A timer registered at or after the boundary goes to the store; when the memory has
//! none left and the boundary is due, the first timers of the store come back, a chunk of
//! whole timestamps at a time.

use super::{KeyedState, PaneStore};
use crate::context::RuntimeContext;
use crate::snapshot::{StateData, StateWriter};
use crate::time::Timestamp;
use std::collections::{BTreeMap, VecDeque};
use std::hash::Hash;

pub(crate) struct Timers<K> {
    by_time: BTreeMap<Timestamp, VecDeque<K>>,
    /// The timers of one timestamp fire in the order they were added (else the last first).
    fifo: bool,
    /// The timers in memory, copy-on-write across checkpoints (a barrier freezes it, the
    /// checkpoint writer encodes it).
    set: KeyedState<(K, Timestamp), ()>,
    /// How many timers there are, in memory and in the store.
    len: usize,
    /// How many are in memory.
    in_memory: usize,
    /// The disk backend's store of the latest timers, and the most memory holds.
    disk: Option<Box<PaneStore<K, ()>>>,
    budget: usize,
    /// With the disk backend, every timer at or after it is in the store, every one before it
    /// in memory (`Timestamp::MAX`: nothing is stored unless at that time).
    boundary: Timestamp,
}

impl<K> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            by_time: BTreeMap::new(),
            fifo: false,
            set: KeyedState::default(),
            len: 0,
            in_memory: 0,
            disk: None,
            budget: usize::MAX,
            boundary: Timestamp::MAX,
        }
    }
}

impl<K> Timers<K>
where
    K: serde::Serialize + serde::Deserialize<'static>,
{
    /// Bounds the timers in memory by the job's disk backend, if it runs with one (else does
    /// nothing): called in the operator's `open`, before a restore or any row.
    ///
    /// # Errors
    /// The store cannot be opened.
    pub(crate) fn open(&mut self, ctx: &RuntimeContext) -> crate::Result<()> {
        if let Some(backend) = &ctx.state_backend {
            let disk = backend.pane_store(ctx.task, ctx.operator_name())?;
            // A timer's key and time in the set, the time map and the set's slack.
            let timer = 3 * std::mem::size_of::<(K, Timestamp)>() as u64 + 16;
            self.budget = (disk.cache_bytes() / timer).max(64) as usize;
            self.disk = Some(Box::new(disk));
        }
        Ok(())
    }
}

impl<K> Timers<K> {
    /// Timers whose keys of one timestamp fire in the order they were added.
    pub(crate) fn fifo() -> Self {
        Timers {
            fifo: true,
            ..Timers::default()
        }
    }

    /// How many timers there are.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Drops every timer (the keys moved to another instance of the group), in the disk
    /// backend's store too.
    ///
    /// # Errors
    /// The store could not be written, or a timer met an error before.
    pub(crate) fn clear(&mut self) -> crate::Result<()> {
        if let Some(disk) = self.disk.as_deref_mut() {
            disk.clear()?;
        }
        *self = Timers {
            fifo: self.fifo,
            disk: self.disk.take(),
            budget: self.budget,
            ..Timers::default()
        };
        Ok(())
    }

    /// The disk backend's first error, if a timer met one.
    pub(crate) fn check(&mut self) -> crate::Result<()> {
        match self.disk.as_deref_mut() {
            Some(disk) => disk.check(),
            None => Ok(()),
        }
    }
}

impl<K: Hash + Eq + Clone> Timers<K> {
    pub(crate) fn add(&mut self, key: &K, t: Timestamp) {
        if self.disk.is_some() && t >= self.boundary {
            if let Some(disk) = self.disk.as_deref_mut() {
                if disk.get(t, 0, key).is_none() {
                    disk.put(t, 0, key, &());
                    self.len += 1;
                }
            }
            return;
        }
        if self.set.insert_new((key.clone(), t), ()) {
            self.len += 1;
            self.in_memory += 1;
            self.by_time.entry(t).or_default().push_back(key.clone());
            if self.in_memory > self.budget {
                self.move_latest();
            }
        }
    }

    pub(crate) fn delete(&mut self, key: &K, t: Timestamp) {
        if self.disk.is_some() && t >= self.boundary {
            if let Some(disk) = self.disk.as_deref_mut() {
                if disk.get(t, 0, key).is_some() {
                    disk.remove_entry(t, 0, key);
                    self.len -= 1;
                }
            }
            return;
        }
        // Removed lazily from `by_time`: `pop` skips timers no longer in the set.
        if self.set.remove(&(key.clone(), t)) {
            self.len -= 1;
            self.in_memory -= 1;
        }
    }

    /// The next timer due at `time` or earlier.
    pub(crate) fn pop(&mut self, time: Timestamp) -> Option<(Timestamp, K)> {
        loop {
            if self.by_time.is_empty() && !self.load(time) {
                return None;
            }
            let mut entry = self.by_time.first_entry()?;
            let t = *entry.key();
            if t > time {
                return None;
            }
            let key = if self.fifo {
                entry.get_mut().pop_front()
            } else {
                entry.get_mut().pop_back()
            };
            if entry.get().is_empty() {
                entry.remove();
            }
            if let Some(key) = key {
                if self.set.remove(&(key.clone(), t)) {
                    self.len -= 1;
                    self.in_memory -= 1;
                    return Some((t, key));
                }
            }
        }
    }

    /// Moves the latest timers to the store, whole timestamps from the last, until memory
    /// holds a quarter less than its budget.
    #[inline(never)]
    fn move_latest(&mut self) {
        let Some(disk) = self.disk.as_deref_mut() else {
            return;
        };
        let mut moved = Vec::new();
        while self.in_memory > self.budget / 4 * 3 {
            let Some(entry) = self.by_time.last_entry() else {
                break;
            };
            let t = *entry.key();
            moved.clear();
            for key in entry.remove() {
                if self.set.remove(&(key.clone(), t)) {
                    moved.push((key, ()));
                }
            }
            self.in_memory -= moved.len();
            disk.move_out(t, 0, &moved);
            self.boundary = t;
        }
    }

    /// Brings the first timers of the store back to memory if the first is due by `time`;
    /// whether any came.
    #[inline(never)]
    fn load(&mut self, time: Timestamp) -> bool {
        if self.boundary > time {
            return false;
        }
        let Some(disk) = self.disk.as_deref_mut() else {
            return false;
        };
        let mut first = Vec::new();
        let next = disk.take_first(self.boundary, (self.budget / 2).max(1), &mut first);
        if first.is_empty() {
            // An error (reported by `check`), or nothing left: no timer is in the store.
            self.boundary = Timestamp::MAX;
            return false;
        }
        self.boundary = next.unwrap_or(Timestamp::MAX);
        for (t, _, key, ()) in first {
            self.set.insert((key.clone(), t), ());
            self.in_memory += 1;
            self.by_time.entry(t).or_default().push_back(key);
        }
        true
    }
}

impl<K: crate::function::Key + Sync + StateData> Timers<K> {
    /// Writes every timer as the keyed section `name` (key, time): the memory's frozen now,
    /// the store's as an MVCC view taken now, both encoded on the checkpoint writer's thread.
    pub(crate) fn write(&mut self, name: &str, state: &mut StateWriter) {
        let copy = (
            self.set.snapshot(),
            self.disk.as_deref().map(|d| d.snapshot()),
        );
        state.keyed_deferred::<K, Timestamp, _>(name, copy, |(mut memory, stored), out| {
            memory.try_for_each(|(k, t), ()| out.entry(k, t))?;
            if let Some(stored) = stored {
                stored.try_for_each(|t, _, k, ()| out.entry(&k, t))?;
            }
            Ok(())
        });
    }
}

#[cfg(all(test, feature = "disk"))]
mod disk_tests {
    use super::*;
    use crate::state::keyed::disk_tests::disk;

    /// Timers of keys `n % 50` at times spread over `n`, some twice, some deleted.
    fn fill(timers: &mut Timers<u32>) {
        for n in 0..3000u32 {
            let t = i64::from((n * 7919) % 1000);
            timers.add(&(n % 50), t);
            if n % 5 == 0 {
                timers.add(&(n % 50), t);
            }
            if n % 11 == 0 {
                timers.delete(&(n % 50), t);
            }
        }
    }

    fn drain(timers: &mut Timers<u32>, until: Timestamp) -> Vec<(Timestamp, u32)> {
        let mut all = Vec::new();
        while let Some((t, k)) = timers.pop(until) {
            all.push((t, k));
        }
        all
    }

    #[test]
    fn timers_beyond_the_cache_fire_from_the_store_in_order() {
        let (_dir, ctx) = disk(1);
        let mut on_disk = Timers::default();
        on_disk.open(&ctx).expect("store opens");
        let mut memory = Timers::default();
        fill(&mut on_disk);
        fill(&mut memory);
        assert!(on_disk.check().is_ok());
        assert!(on_disk.in_memory <= on_disk.budget, "{}", on_disk.in_memory);
        assert!(on_disk.boundary < 1000, "timers moved to the store");
        assert_eq!(on_disk.len(), memory.len());
        // Fired in time order (keys of one time in any order), the same timers.
        let (mut a, mut b) = (drain(&mut on_disk, 499), drain(&mut memory, 499));
        assert!(a.windows(2).all(|w| w[0].0 <= w[1].0));
        a.sort();
        b.sort();
        assert_eq!(a, b);
        // Timers added and deleted after some fired, before and after the boundary.
        for timers in [&mut on_disk, &mut memory] {
            timers.add(&7, 600);
            timers.add(&7, 999);
            timers.delete(&7, 999);
            timers.add(&8, 2000);
        }
        let (mut a, mut b) = (drain(&mut on_disk, 5000), drain(&mut memory, 5000));
        assert!(a.windows(2).all(|w| w[0].0 <= w[1].0));
        a.sort();
        b.sort();
        assert_eq!(a, b);
        assert_eq!((on_disk.len(), memory.len()), (0, 0));
        assert!(on_disk.check().is_ok());
    }

    #[test]
    fn cleared_timers_leave_nothing_in_the_store_and_fill_it_again() {
        let (_dir, ctx) = disk(1);
        let mut timers = Timers::default();
        timers.open(&ctx).expect("store opens");
        fill(&mut timers);
        let stored = timers.disk.as_deref().expect("on disk").snapshot();
        assert!(stored.len() > 0, "timers moved to the store");
        // As a release does: the view taken before the clear still reads them.
        timers.clear().expect("cleared");
        assert_eq!(timers.len(), 0);
        assert_eq!(drain(&mut timers, 5000), vec![]);
        assert_eq!(timers.disk.as_deref().unwrap().snapshot().len(), 0);
        assert!(stored.len() > 0);
        // The same timers again (adopted ones, say) move to the store as before.
        let mut memory = Timers::default();
        fill(&mut timers);
        fill(&mut memory);
        assert!(timers.boundary < 1000, "timers moved to the store again");
        let (mut a, mut b) = (drain(&mut timers, 5000), drain(&mut memory, 5000));
        a.sort();
        b.sort();
        assert_eq!(a, b);
        assert!(timers.check().is_ok());
    }

    #[test]
    fn a_checkpoint_holds_the_timers_in_memory_and_in_the_store() {
        let (_dir, ctx) = disk(1);
        let mut timers = Timers::default();
        timers.open(&ctx).expect("store opens");
        fill(&mut timers);
        let mut expected: Vec<(u32, Timestamp)> = Vec::new();
        let mut all = Timers::default();
        fill(&mut all);
        while let Some((t, k)) = all.pop(Timestamp::MAX) {
            expected.push((k, t));
        }
        expected.sort();
        let mut writer = crate::snapshot::StateWriter::detached();
        timers.write("timers", &mut writer);
        // Changes after the barrier are not in it.
        timers.add(&1, 5000);
        drain(&mut timers, 100);
        let reader = crate::snapshot::StateReader::detached(writer, 0, 1);
        let mut got: Vec<(u32, Timestamp)> = Vec::new();
        reader
            .keyed("timers", |k, t| got.push((k, t)))
            .expect("readable");
        got.sort();
        assert_eq!(got, expected);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timer_at_the_end_of_time_fires_at_the_end_of_input() {
        let mut timers = Timers::default();
        timers.add(&1u32, Timestamp::MAX);
        timers.add(&2u32, 5);
        assert_eq!(timers.len(), 2);
        assert_eq!(timers.pop(Timestamp::MAX - 1), Some((5, 2)));
        assert_eq!(timers.pop(Timestamp::MAX - 1), None);
        assert_eq!(timers.pop(Timestamp::MAX), Some((Timestamp::MAX, 1)));
        assert_eq!(timers.len(), 0);
    }
}
