//! [`KeyedState`]: one keyed map that a checkpoint freezes instead of copying. Every structure
//! an operator keeps by key (`#[state]` structs, reduce values, session windows, join buffers,
//! timers) lives in one, so that no barrier stops the rows for longer than a pointer swap.

use super::{Cached, StoreView};
use crate::context::RuntimeContext;
use crate::hash::FlowHashMap;
use crate::snapshot::{KeyedEncoder, StateSchema, StateWriter};
use serde::{Deserialize, Serialize};
use std::hash::Hash;
use std::sync::{Arc, Mutex, Weak};

/// One table of per-key states.
type Table<K, S> = FlowHashMap<K, S>;

/// What one checkpoint interval changed: the states of the keys it touched, and the keys it
/// removed that older layers may still have (a key in both was inserted again after its
/// removal: its state is the one in `table`).
pub struct Layer<K, S> {
    table: Table<K, S>,
    removed: FlowHashMap<K, ()>,
}

impl<K, S> Layer<K, S> {
    /// Every key's state.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &S)> {
        self.table.iter()
    }
    /// How many keys have state.
    pub fn len(&self) -> usize {
        self.table.len()
    }
    /// Whether no key has state.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

/// The per-key state of one keyed operator instance, copy-on-write across checkpoints.
///
/// Between checkpoints every key's state lives in one hash map, found with one lookup per row.
/// A checkpoint freezes that map as it is (it moves behind an `Arc`: no copy, whatever its
/// size) and gives the frozen layers to the checkpoint writer; a new map takes the keys the
/// rows after the barrier touch, each copied out of the frozen layers on its first touch
/// (Flink's copy-on-write state map, by key). A key removed after a checkpoint leaves a
/// tombstone that hides its frozen state. The writer merges the frozen layers into one, off
/// the row path, and leaves the merge for the state to take at its next checkpoint.
///
/// With the disk backend ([`KeyedState::open`] in a job run with `--state-backend disk`), the
/// states live in the store instead, behind a bounded cache (see `cache.rs`).
pub struct KeyedState<K, S> {
    /// The keys touched since the last checkpoint (every key, before the first).
    live: Table<K, S>,
    /// Keys removed since the last checkpoint whose state a frozen layer still has.
    removed: FlowHashMap<K, ()>,
    /// The layers frozen at checkpoints, oldest first: a key not in `live` nor `removed` has
    /// its state in the newest layer that has it, unless a newer layer removed it.
    frozen: Vec<Arc<Layer<K, S>>>,
    /// Where a checkpoint writer leaves its merge of frozen layers.
    merged: Arc<Mutex<Option<Merged<K, S>>>>,
    /// With the disk backend, the cache and store that hold the states instead (the fields
    /// above stay empty).
    disk: Option<Box<Cached<K, S>>>,
}

/// What a checkpoint writer leaves for the state: the frozen layers up to and including
/// `upto` merged into one (`upto` is a `Weak`, so that its address is not reused while the
/// merge waits), and an empty map with room for as many keys as `upto` has, to take the keys
/// of the next interval.
struct Merged<K, S> {
    layer: Arc<Layer<K, S>>,
    upto: Weak<Layer<K, S>>,
    next: Table<K, S>,
}

impl<K, S> Default for KeyedState<K, S> {
    fn default() -> Self {
        KeyedState {
            live: Table::default(),
            removed: FlowHashMap::default(),
            frozen: Vec::new(),
            merged: Arc::default(),
            disk: None,
        }
    }
}

impl<K, S> KeyedState<K, S> {
    /// Whether the states live in the disk backend's store.
    pub fn on_disk(&self) -> bool {
        self.disk.is_some()
    }

    /// The first error of the disk backend's store since the last call (never one in
    /// memory): an operator reports it after the batch whose row met it, which saw its key
    /// as new.
    ///
    /// # Errors
    /// The store could not be read or written (a full disk, a corrupt file).
    #[inline]
    pub fn check(&mut self) -> crate::Result<()> {
        match self.disk.as_deref_mut() {
            Some(disk) => disk.check(),
            None => Ok(()),
        }
    }
}

impl<K, S> KeyedState<K, S>
where
    K: Hash + Eq + Clone + Serialize + Deserialize<'static>,
    S: Clone + Serialize + Deserialize<'static>,
{
    /// Moves the states to the job's disk backend, if it runs with one (else does nothing):
    /// called in the operator's `open`, before a restore or any row.
    ///
    /// # Errors
    /// The store cannot be opened.
    pub fn open(&mut self, ctx: &RuntimeContext) -> crate::Result<()> {
        if let Some(backend) = &ctx.state_backend {
            debug_assert!(self.live.is_empty() && self.frozen.is_empty());
            self.disk = Some(Box::new(backend.cached(ctx.task, ctx.operator_name())?));
        }
        Ok(())
    }
}

impl<K: Hash + Eq + Clone, S: Clone> KeyedState<K, S> {
    /// Drops every key's state: the keys moved to another instance of the group
    /// ([`Operator::clear_state`](crate::operator::Operator::clear_state)). With the disk
    /// backend, the store's entries too, once the last snapshot's were written back.
    ///
    /// # Errors
    /// The disk backend's store could not be written.
    pub fn clear(&mut self) -> crate::Result<()> {
        match self.disk.as_deref_mut() {
            Some(disk) => disk.clear(),
            None => {
                *self = KeyedState::default();
                Ok(())
            }
        }
    }

    /// The state of `key`, if it has any.
    #[inline(always)]
    pub fn get_mut(&mut self, key: &K) -> Option<&mut S> {
        if let Some(disk) = self.disk.as_deref_mut() {
            return disk.get_mut(key);
        }
        if let Some(state) = self.live.get_mut(key) {
            let state: *mut S = state;
            // SAFETY: the borrow of `self.live` from `get_mut` ends here (rustc's borrow
            // checker cannot see that the early return does not overlap the insert below).
            return Some(unsafe { &mut *state });
        }
        if self.frozen.is_empty() {
            return None;
        }
        let state = frozen_state(&self.removed, &self.frozen, key)?.clone();
        Some(self.live.entry(key.clone()).or_insert(state))
    }

    /// The state of `key`, if it has any, to read (no copy out of a frozen layer; the disk
    /// backend caches it).
    #[inline]
    pub fn get(&mut self, key: &K) -> Option<&S> {
        if let Some(disk) = self.disk.as_deref_mut() {
            return disk.get(key);
        }
        match self.live.get(key) {
            Some(state) => Some(state),
            None if self.frozen.is_empty() => None,
            None => frozen_state(&self.removed, &self.frozen, key),
        }
    }

    /// Whether `key` has state.
    #[inline]
    pub fn contains_key(&mut self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// The state of `key`, made by `make` on first use.
    #[inline(always)]
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> S) -> &mut S {
        if let Some(disk) = self.disk.as_deref_mut() {
            return disk.get_or_insert_with(key, make);
        }
        // Probe first: `entry` reserves and takes a slower path even when the key exists,
        // which is almost every row (measured at half the speed of this in W1's loop).
        if let Some(state) = self.live.get_mut(&key) {
            let state: *mut S = state;
            // SAFETY: as in `get_mut`.
            return unsafe { &mut *state };
        }
        let state = match self.frozen.is_empty() {
            true => None,
            false => frozen_state(&self.removed, &self.frozen, &key).cloned(),
        };
        self.live
            .entry(key)
            .or_insert_with(|| state.unwrap_or_else(make))
    }

    /// Sets the state of `key` unless it has one; whether it set it (one probe when the key
    /// is new and nothing is frozen).
    #[inline]
    pub fn insert_new(&mut self, key: K, state: S) -> bool {
        use std::collections::hash_map::Entry;
        if let Some(disk) = self.disk.as_deref_mut() {
            return disk.insert_new(key, state);
        }
        let frozen = !self.frozen.is_empty();
        match self.live.entry(key) {
            Entry::Occupied(_) => false,
            Entry::Vacant(v)
                if frozen && frozen_state(&self.removed, &self.frozen, v.key()).is_some() =>
            {
                false
            }
            Entry::Vacant(v) => {
                v.insert(state);
                true
            }
        }
    }

    /// Sets the state of `key`.
    #[inline]
    pub fn insert(&mut self, key: K, state: S) {
        if let Some(disk) = self.disk.as_deref_mut() {
            return disk.insert(key, state);
        }
        self.live.insert(key, state);
    }

    /// Removes the state of `key`; whether it had any.
    #[inline]
    pub fn remove(&mut self, key: &K) -> bool {
        if let Some(disk) = self.disk.as_deref_mut() {
            return disk.remove(key);
        }
        let live = self.live.remove(key).is_some();
        if self.frozen.is_empty() {
            return live;
        }
        // A frozen layer still has it: hide it there until the next checkpoint.
        let frozen = frozen_state(&self.removed, &self.frozen, key).is_some();
        if frozen {
            self.removed.insert(key.clone(), ());
        }
        live || frozen
    }

    /// Takes every key's state out (batch-mode final emission).
    pub fn drain(&mut self) -> impl Iterator<Item = (K, S)> + '_ {
        let disk = match self.disk.as_deref_mut() {
            Some(disk) => disk.drain(),
            None => Vec::new(),
        };
        self.thaw();
        disk.into_iter().chain(self.live.drain())
    }

    /// Moves every frozen key's state back into `live`, newest layer first (a key already
    /// there, or removed by a newer layer, keeps what it has).
    fn thaw(&mut self) {
        let mut hidden = std::mem::take(&mut self.removed);
        for layer in self.frozen.drain(..).rev() {
            match Arc::try_unwrap(layer) {
                Ok(layer) => {
                    for (k, s) in layer.table {
                        if !hidden.contains_key(&k) {
                            self.live.entry(k).or_insert(s);
                        }
                    }
                    hidden.extend(layer.removed);
                }
                Err(layer) => {
                    for (k, s) in layer.table.iter() {
                        if !hidden.contains_key(k) && !self.live.contains_key(k) {
                            self.live.insert(k.clone(), s.clone());
                        }
                    }
                    hidden.extend(layer.removed.keys().map(|k| (k.clone(), ())));
                }
            }
        }
    }

    /// Freezes every key's state as it is now, for a checkpoint: no copy on the row path.
    /// First takes in the merge a writer left, if any; the layers it replaces go with the
    /// snapshot, to be freed on the writer's thread too.
    pub fn snapshot(&mut self) -> KeyedSnapshot<K, S> {
        if let Some(disk) = self.disk.as_deref_mut() {
            return KeyedSnapshot {
                layers: Vec::new(),
                merged: self.merged.clone(),
                retired: Vec::new(),
                done: true,
                disk: Some(disk.snapshot()),
            };
        }
        let merged = self.merged.lock().unwrap_or_else(|e| e.into_inner()).take();
        let mut retired = Vec::new();
        let mut room = None;
        if let Some(Merged { layer, upto, next }) = merged {
            if let Some(i) = self
                .frozen
                .iter()
                .position(|t| Arc::as_ptr(t) == upto.as_ptr())
            {
                retired.extend(self.frozen.splice(..=i, [layer]));
            }
            room = Some(next);
        }
        if !self.live.is_empty() || !self.removed.is_empty() || self.frozen.is_empty() {
            // A map with room for as many keys as the last interval touched (the next one
            // likely touches as many; growing would rehash on the row path), allocated by the
            // writer if it could.
            let room = room
                .filter(|r| r.capacity() >= self.live.len())
                .unwrap_or_else(|| {
                    Table::with_capacity_and_hasher(self.live.len(), Default::default())
                });
            self.frozen.push(Arc::new(Layer {
                table: std::mem::replace(&mut self.live, room),
                removed: std::mem::take(&mut self.removed),
            }));
        }
        KeyedSnapshot {
            layers: self.frozen.clone(),
            merged: self.merged.clone(),
            retired,
            done: false,
            disk: None,
        }
    }
}

/// `key`'s state in `frozen` (oldest first), unless `removed` (the live interval's removals)
/// or a layer newer than the one that has it removed it.
#[inline(never)]
fn frozen_state<'a, K: Hash + Eq, S>(
    removed: &FlowHashMap<K, ()>,
    frozen: &'a [Arc<Layer<K, S>>],
    key: &K,
) -> Option<&'a S> {
    if removed.contains_key(key) {
        return None;
    }
    for layer in frozen.iter().rev() {
        if let Some(state) = layer.table.get(key) {
            return Some(state);
        }
        if layer.removed.contains_key(key) {
            return None;
        }
    }
    None
}

impl<K: Hash + Eq + Clone, S: Default + Clone> KeyedState<K, S> {
    /// The state of `key`, created empty on first use.
    #[inline(always)]
    pub fn get_or_default(&mut self, key: K) -> &mut S {
        self.get_or_insert_with(key, S::default)
    }
}

impl<K, S> KeyedState<K, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    S: Clone + Send + Sync + 'static,
{
    /// Writes the keyed section `name` (read back as keys `SK` and values `SV`) from every
    /// key's state: frozen now, merged and encoded on the checkpoint writer's thread, where
    /// `entry` adds each key's entries.
    pub fn write_entries<SK: StateSchema + 'static, SV: StateSchema + 'static>(
        &mut self,
        name: &str,
        state: &mut StateWriter,
        entry: impl Fn(&K, &S, &mut KeyedEncoder) -> crate::Result<()> + Send + 'static,
    ) {
        state.keyed_deferred::<SK, SV, _>(name, self.snapshot(), move |mut snapshot, out| {
            snapshot.try_for_each(|k, s| entry(k, s, out))
        });
    }
}

impl<K, S> KeyedState<K, S>
where
    K: crate::function::Key + Sync,
    S: Clone + Send + Sync + Serialize + StateSchema + 'static,
{
    /// Writes every key's state as the keyed section `name`: frozen now, merged and encoded
    /// on the checkpoint writer's thread.
    pub fn write(&mut self, name: &str, state: &mut StateWriter) {
        self.write_entries::<K, S>(name, state, |k, s, out| out.entry(k, s));
    }
}

/// Every key's state at a checkpoint: the frozen layers of a [`KeyedState`].
pub struct KeyedSnapshot<K: Hash + Eq + Clone, S: Clone> {
    /// Oldest first, as in the state.
    layers: Vec<Arc<Layer<K, S>>>,
    merged: Arc<Mutex<Option<Merged<K, S>>>>,
    /// Layers the state no longer needs (freed with the snapshot, off the row path).
    retired: Vec<Arc<Layer<K, S>>>,
    /// Whether the merge was left for the state.
    done: bool,
    /// With the disk backend: the store's snapshot (no layers), or why none could be taken.
    disk: Option<Result<StoreView<K, S>, String>>,
}

impl<K: Hash + Eq + Clone, S: Clone> KeyedSnapshot<K, S> {
    /// Every key's state at the barrier, on the caller's thread (the checkpoint writer's):
    /// the frozen layers merged once (and left for the state to take in their place), or the
    /// disk backend's store read from its snapshot. May be called again: the same entries.
    ///
    /// # Errors
    /// `f`'s, or the store's (it could not write back or read its states).
    pub fn try_for_each(
        &mut self,
        mut f: impl FnMut(&K, &S) -> crate::Result<()>,
    ) -> crate::Result<()> {
        match &self.disk {
            Some(Ok(view)) => view.try_for_each(f),
            Some(Err(e)) => Err(crate::Error::State {
                operator: String::new(),
                file: None,
                message: e.clone(),
            }),
            None => {
                self.merge_layers();
                self.layers[0].iter().try_for_each(|(k, s)| f(k, s))
            }
        }
    }

    fn merge_layers(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        // Freed here, on the writer's thread: unmapping a big table takes milliseconds.
        self.retired.clear();
        let newest = self
            .layers
            .last()
            .expect("a snapshot freezes a layer")
            .clone();
        if self.layers.len() > 1 {
            // The oldest layer's removals hide nothing older: its table is the base.
            let mut table = Table::clone(&self.layers[0].table);
            for newer in &self.layers[1..] {
                for k in newer.removed.keys() {
                    table.remove(k);
                }
                table.extend(newer.table.iter().map(|(k, s)| (k.clone(), s.clone())));
            }
            self.layers = vec![Arc::new(Layer {
                table,
                removed: FlowHashMap::default(),
            })];
        }
        let merged = Merged {
            layer: self.layers[0].clone(),
            upto: Arc::downgrade(&newest),
            next: Table::with_capacity_and_hasher(newest.table.len(), Default::default()),
        };
        *self.merged.lock().unwrap_or_else(|e| e.into_inner()) = Some(merged);
    }
}

impl<K: Hash + Eq + Clone, S: Clone> Drop for KeyedSnapshot<K, S> {
    /// A snapshot dropped unwritten (its checkpoint was declined or failed) merges all the
    /// same, so that frozen layers do not pile up in the state.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.merge_layers();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut snapshot: KeyedSnapshot<u32, u64>) -> Vec<(u32, u64)> {
        let mut v = Vec::new();
        snapshot
            .try_for_each(|k, s| {
                v.push((*k, *s));
                Ok(())
            })
            .expect("in memory");
        v.sort();
        v
    }

    #[test]
    fn a_snapshot_keeps_the_values_of_its_barrier_while_rows_change_them() {
        let mut state = KeyedState::<u32, u64>::default();
        for k in 0..4 {
            *state.get_or_default(k) = 10 + k as u64;
        }
        let snapshot = state.snapshot();
        *state.get_or_default(1) += 100; // copied out of the frozen table, then changed
        *state.get_or_default(9) = 9; // a new key
        *state.get_mut(&2).expect("key 2 has state") = 0;
        assert_eq!(state.get_mut(&7), None);
        assert_eq!(sorted(snapshot), [(0, 10), (1, 11), (2, 12), (3, 13)]);
        assert_eq!(*state.get_or_default(1), 111);
        assert_eq!(*state.get_or_default(3), 13);
        let mut now: Vec<_> = state.drain().collect();
        now.sort();
        assert_eq!(now, [(0, 10), (1, 111), (2, 0), (3, 13), (9, 9)]);
    }

    #[test]
    fn snapshots_stack_until_a_merge_is_taken_in() {
        let mut state = KeyedState::<u32, u64>::default();
        *state.get_or_default(1) = 1;
        let first = state.snapshot();
        *state.get_or_default(2) = 2;
        let second = state.snapshot(); // the first was not merged yet: two frozen layers
        assert_eq!(state.frozen.len(), 2);
        *state.get_or_default(1) = 3;
        assert_eq!(sorted(first), [(1, 1)]);
        assert_eq!(sorted(second), [(1, 1), (2, 2)]);
        let third = state.snapshot(); // takes in the second's merge, freezes key 1's change
        assert_eq!(state.frozen.len(), 2);
        assert_eq!(sorted(third), [(1, 3), (2, 2)]);
        state.snapshot(); // nothing changed: the merge is the one layer
        assert_eq!(state.frozen.len(), 1);
        assert_eq!(*state.get_or_default(2), 2);
    }

    #[test]
    fn a_snapshot_dropped_unwritten_still_merges() {
        let mut state = KeyedState::<u32, u64>::default();
        *state.get_or_default(1) = 1;
        drop(state.snapshot());
        *state.get_or_default(2) = 2;
        drop(state.snapshot());
        *state.get_or_default(3) = 3;
        let last = state.snapshot();
        assert_eq!(
            state.frozen.len(),
            2,
            "the dropped snapshots' merge was taken in"
        );
        assert_eq!(sorted(last), [(1, 1), (2, 2), (3, 3)]);
    }

    #[test]
    fn a_removed_key_is_gone_now_and_from_later_snapshots_but_not_earlier_ones() {
        let mut state = KeyedState::<u32, u64>::default();
        for k in 0..4 {
            state.insert(k, k as u64);
        }
        assert!(
            state.remove(&3),
            "before any checkpoint: removed from the map"
        );
        assert!(!state.remove(&3));
        let first = state.snapshot();
        assert!(state.remove(&0), "frozen only: hidden by a tombstone");
        assert_eq!(state.get(&0), None);
        assert_eq!(state.get_mut(&0), None);
        *state.get_or_default(1) += 10; // copied, changed, then removed: both hidden
        assert!(state.remove(&1));
        assert!(!state.contains_key(&1));
        assert!(!state.remove(&7), "a key that never had state");
        state.insert(2, 20);
        assert!(state.remove(&2));
        assert_eq!(
            *state.get_or_default(2),
            0,
            "a removed key starts again empty"
        );
        *state.get_or_default(2) = 22;
        assert_eq!(sorted(first), [(0, 0), (1, 1), (2, 2)]);
        let second = state.snapshot();
        assert_eq!(
            state.get(&0),
            None,
            "removed in a frozen layer: still hidden"
        );
        assert_eq!(state.get(&2), Some(&22));
        state.insert(0, 100); // back again after its removal was frozen
        let third = state.snapshot();
        assert_eq!(sorted(second), [(2, 22)]);
        assert_eq!(sorted(third), [(0, 100), (2, 22)]);
        assert!(state.remove(&2));
        let mut now: Vec<_> = state.drain().collect();
        now.sort();
        assert_eq!(now, [(0, 100)]);
    }

    #[test]
    fn insert_new_sets_only_keys_without_state() {
        let mut state = KeyedState::<u32, u64>::default();
        assert!(state.insert_new(1, 1));
        assert!(!state.insert_new(1, 2), "live");
        let _snapshot = state.snapshot();
        assert!(!state.insert_new(1, 3), "frozen");
        assert!(state.remove(&1));
        assert!(state.insert_new(1, 4), "removed since the freeze");
        assert_eq!(state.get(&1), Some(&4));
    }

    #[test]
    fn removals_in_layers_not_yet_merged_hide_older_ones() {
        let mut state = KeyedState::<u32, u64>::default();
        state.insert(1, 1);
        state.insert(2, 2);
        let first = state.snapshot();
        assert!(state.remove(&1));
        let second = state.snapshot(); // two layers: {1, 2} and a removal of 1
        assert_eq!(state.frozen.len(), 2);
        assert_eq!(state.get(&1), None);
        assert!(
            !state.remove(&1),
            "its removal is frozen: nothing to remove"
        );
        assert_eq!(state.get(&2), Some(&2));
        let mut thawed: Vec<_> = {
            let mut copy = KeyedState::<u32, u64> {
                frozen: state.frozen.clone(),
                ..Default::default()
            };
            copy.drain().collect()
        };
        thawed.sort();
        assert_eq!(
            thawed,
            [(2, 2)],
            "thawing applies the newer layer's removal"
        );
        drop(first);
        assert_eq!(sorted(second), [(2, 2)]);
    }
}

#[cfg(all(test, feature = "disk"))]
pub(crate) mod disk_tests {
    use super::*;
    use crate::state::{DiskBackend, StateBackendConfig, StateBackendKind};

    /// A context whose job runs with the disk backend in a new directory, with `cache_bytes`
    /// of cache per structure.
    pub(crate) fn disk(cache_bytes: u64) -> (tempfile::TempDir, RuntimeContext) {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = StateBackendConfig {
            kind: StateBackendKind::Disk,
            dir: Some(dir.path().into()),
            cache_bytes,
        };
        let backend = DiskBackend::for_job(&config, "test")
            .expect("backend")
            .expect("disk");
        let mut ctx = RuntimeContext::standalone("test", 0, 1);
        ctx.state_backend = Some(Arc::new(backend));
        (dir, ctx)
    }

    fn all(mut snapshot: KeyedSnapshot<u32, u64>) -> Vec<(u32, u64)> {
        let mut v = Vec::new();
        snapshot
            .try_for_each(|k, s| {
                v.push((*k, *s));
                Ok(())
            })
            .expect("store readable");
        v.sort();
        v
    }

    #[test]
    fn more_keys_than_the_cache_holds_keep_every_state() {
        let (_dir, ctx) = disk(64 << 10);
        let mut state = KeyedState::<u32, u64>::default();
        state.open(&ctx).expect("store opens");
        assert!(state.on_disk());
        let keys = 50_000u32;
        for round in 0..3u64 {
            for k in 0..keys {
                *state.get_or_default(k) += u64::from(k) + round;
            }
        }
        let cached = state.disk.as_ref().expect("on disk").len();
        assert!(cached < 5_000, "the cache holds {cached} keys");
        for k in (0..keys).step_by(997) {
            assert_eq!(state.get(&k), Some(&(3 * u64::from(k) + 3)));
        }
        assert_eq!(state.get(&keys), None);
        assert!(state.remove(&7));
        assert!(!state.remove(&7));
        assert!(!state.contains_key(&7));
        let before = state.snapshot();
        // After the barrier, not in the snapshot: changes that evictions write to the store
        // before the snapshot is read.
        for k in (0..10_000).filter(|&k| k != 7) {
            *state.get_or_default(k) += 1_000;
        }
        *state.get_or_default(8) = 0;
        state.insert(keys + 1, 1);
        let saved = all(before);
        assert_eq!(saved.len(), keys as usize - 1);
        assert!(saved
            .iter()
            .all(|&(k, s)| k != 7 && s == 3 * u64::from(k) + 3));
        state.check().expect("no store error");
        let mut drained: Vec<_> = state.drain().collect();
        drained.sort();
        assert_eq!(drained.len(), keys as usize);
        assert_eq!(drained[7], (8, 0));
        assert_eq!(drained[8], (9, 3 * 9 + 3 + 1_000));
        assert_eq!(drained[20_000], (20_001, 3 * 20_001 + 3));
        assert_eq!(drained.last(), Some(&(keys + 1, 1)));
        assert_eq!(state.get(&9), None, "drained");
    }

    #[test]
    fn hot_keys_stay_cached_while_cold_ones_pass_through() {
        let (_dir, ctx) = disk(64 << 10);
        let mut state = KeyedState::<u32, u64>::default();
        state.open(&ctx).expect("store opens");
        let capacity = state.disk.as_ref().expect("on disk").capacity();
        // Every other row is one of 100 hot keys; the rest are 100k cold ones, seen once.
        for i in 0..200_000u32 {
            let k = if i % 2 == 0 { i % 200 } else { 1_000 + i };
            *state.get_or_default(k) += 1;
        }
        let disk = state.disk.as_ref().expect("on disk");
        let hot = (0..200).step_by(2).filter(|k| disk.is_cached(k)).count();
        assert!(
            hot >= 95,
            "{hot} of 100 hot keys cached (capacity {capacity})"
        );
        assert_eq!(state.get(&0), Some(&1_000));
    }
}

#[cfg(all(test, feature = "disk"))]
mod corrupt_tests {
    use super::*;
    use crate::state::{DiskBackend, StateBackendConfig, StateBackendKind};

    /// Every file under `dir`, recursively.
    fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                files(&path, out);
            } else {
                out.push(path);
            }
        }
    }

    #[test]
    fn a_corrupt_table_file_is_an_error_naming_the_store_not_a_reset() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = StateBackendConfig {
            kind: StateBackendKind::Disk,
            dir: Some(dir.path().into()),
            cache_bytes: 64 << 10,
        };
        let backend = DiskBackend::for_job(&config, "corrupt")
            .expect("backend")
            .expect("disk");
        let mut ctx = RuntimeContext::standalone("counts", 0, 1);
        ctx.state_backend = Some(Arc::new(backend));
        let mut state = KeyedState::<u64, u64>::default();
        state.open(&ctx).expect("store opens");
        let keys = 50_000u64;
        for k in 0..keys {
            state.insert(k, k);
        }
        drop(state.snapshot()); // every key written back
        state
            .disk
            .as_ref()
            .expect("on disk")
            .store()
            .flush_to_disk();
        // Garbage over the middle of every table file (not the journal: it was flushed).
        let mut all = Vec::new();
        files(dir.path(), &mut all);
        let mut corrupted = 0;
        for path in all
            .iter()
            .filter(|p| p.components().any(|c| c.as_os_str() == "tables"))
        {
            let mut bytes = std::fs::read(path).expect("readable");
            if bytes.len() > 4096 {
                let mid = bytes.len() / 3;
                bytes[mid..mid + 2048].fill(0xa5);
                std::fs::write(path, bytes).expect("writable");
                corrupted += 1;
            }
        }
        assert!(corrupted > 0, "no table file to corrupt in {all:?}");
        // Keys the cache no longer holds are read from the corrupt file.
        let mut missing = 0;
        for k in 0..keys {
            if state.get(&k).is_none() {
                missing += 1;
            }
        }
        let e = state.check().expect_err("a corrupt store is an error");
        let msg = e.to_string();
        assert!(msg.contains("state store"), "{msg}");
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
        assert!(msg.contains("counts"), "names the operator: {msg}");
        assert!(missing > 0);
    }
}
