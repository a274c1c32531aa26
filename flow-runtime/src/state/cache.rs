//! The disk backend's side of a [`KeyedState`](super::KeyedState): a bounded cache of hot
//! keys in front of the store, written back in batches.
//!
//! A row's key is found in the cache with one lookup, as in the memory backend; a miss reads
//! the store. When the cache is full, a sweep evicts a quarter of it, keys not used since the
//! last sweep first (a clock: every use sets a bit, a sweep clears it), and writes the changed
//! ones back in one batch. A checkpoint's barrier only encodes the changed keys into one batch
//! (they stay cached, now clean); the checkpoint writer commits it and takes an MVCC snapshot
//! of the store, which it reads on its own thread. The rows' next write to the store waits
//! for that (or does it, if the writer has not got to it), so that the snapshot holds exactly
//! the state at the barrier.
//!
//! Errors of the store (a full disk, a corrupt file) cannot be returned on the row path: the
//! first is kept, the row sees its key as new, and the operator fails the job with the error
//! after the batch ([`Cached::check`]).

use super::disk::{Store, StoreSnapshot};
use crate::hash::FlowHashMap;
use crate::{Error, Result};
use bincode::Options;
use serde::{Deserialize, Serialize};
use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock};

/// A cached key's state.
struct Slot<S> {
    state: S,
    /// Changed since it was read from or written to the store.
    dirty: bool,
    /// Used since the last sweep.
    used: bool,
    /// The store may have it (a removal must delete it there).
    stored: bool,
}

/// How a structure's keys and states become bytes and back (bincode), as plain function
/// pointers: taken where the serde bounds hold (at open), so that `KeyedState`'s own methods
/// need none.
pub(crate) struct Codec<K, S> {
    pub(super) key: fn(&K, &mut Vec<u8>) -> bincode::Result<()>,
    pub(super) state: fn(&S, &mut Vec<u8>) -> bincode::Result<()>,
    pub(super) read_key: fn(&[u8]) -> bincode::Result<K>,
    pub(super) read_state: fn(&[u8]) -> bincode::Result<S>,
}

impl<K, S> Clone for Codec<K, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, S> Copy for Codec<K, S> {}

/// bincode with variable-length integers, as checkpoints.
fn options() -> bincode::DefaultOptions {
    bincode::DefaultOptions::new()
}

fn write<T: Serialize>(t: &T, out: &mut Vec<u8>) -> bincode::Result<()> {
    options().serialize_into(out, t)
}

/// Decodes through a reader, so that nothing borrows from the store's bytes: a state that
/// would (a `&'static str`) fails to decode, with an error, instead.
fn read<T: Deserialize<'static>>(bytes: &[u8]) -> bincode::Result<T> {
    T::deserialize(&mut bincode::Deserializer::with_reader(bytes, options()))
}

impl<K, S> Codec<K, S> {
    /// A key's and its state's bytes, decoded.
    pub(super) fn read_entry(&self, key: &[u8], state: &[u8]) -> bincode::Result<(K, S)> {
        Ok(((self.read_key)(key)?, (self.read_state)(state)?))
    }
}

impl<K: Serialize + Deserialize<'static>, S: Serialize + Deserialize<'static>> Codec<K, S> {
    pub(crate) fn new() -> Self {
        Codec {
            key: write::<K>,
            state: write::<S>,
            read_key: read::<K>,
            read_state: read::<S>,
        }
    }
}

/// The cache of one keyed structure in front of its place in the store.
pub(crate) struct Cached<K, S> {
    store: Store,
    codec: Codec<K, S>,
    map: FlowHashMap<K, Slot<S>>,
    /// How many keys the cache holds at most.
    capacity: usize,
    cache_bytes: u64,
    /// Encoded keys and states written back so far, and their bytes: their average is the
    /// estimate of a state's heap memory beyond its inline size.
    written: u64,
    written_bytes: u64,
    /// A key's bytes (prefix first), and a write-back batch's.
    key: Vec<u8>,
    batch: Vec<u8>,
    puts: Vec<(usize, usize, usize)>,
    /// The first store error, reported by [`Cached::check`].
    error: Option<Error>,
    /// The last checkpoint's write-back, until it is committed.
    barrier: Option<Arc<Barrier>>,
}

impl<K, S> Cached<K, S> {
    /// The first store error since the last call.
    pub(crate) fn check(&mut self) -> Result<()> {
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
impl<K: Hash + Eq, S> Cached<K, S> {
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
    pub(crate) fn is_cached(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }
}

impl<K: Hash + Eq + Clone, S: Clone> Cached<K, S> {
    pub(crate) fn new(store: Store, codec: Codec<K, S>, cache_bytes: u64) -> Self {
        let mut cached = Cached {
            store,
            codec,
            map: FlowHashMap::default(),
            capacity: 0,
            cache_bytes,
            written: 0,
            written_bytes: 0,
            key: Vec::new(),
            batch: Vec::new(),
            puts: Vec::new(),
            error: None,
            barrier: None,
        };
        cached.capacity = cached.capacity_for(0);
        cached
    }

    /// How many keys fit in the cache's bytes with `heap` bytes per state beyond its inline
    /// size: the largest table of a power of two buckets (a hash table's size) that fits,
    /// filled to 7/8.
    fn capacity_for(&self, heap: u64) -> usize {
        let slot = (std::mem::size_of::<(K, Slot<S>)>() + 1) as u64 + heap;
        let buckets = (self.cache_bytes / slot.max(1)).max(64);
        let buckets = 1u64 << (63 - buckets.leading_zeros());
        (buckets / 8 * 7) as usize
    }

    fn fail(&mut self, e: Error) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// `key`'s bytes in `self.key`.
    fn encode_key(&mut self, key: &K) -> bool {
        self.store.key_buf(&mut self.key);
        match (self.codec.key)(key, &mut self.key) {
            Ok(()) => true,
            Err(e) => {
                let e = self.codec_error("encode a key", e);
                self.fail(e);
                false
            }
        }
    }

    fn codec_error(&self, what: &str, e: bincode::Error) -> Error {
        super::disk::store_error(self.store.operator(), self.store_dir(), what, e)
    }

    fn store_dir(&self) -> &std::path::Path {
        self.store.dir()
    }

    /// `key`'s state in the store.
    #[inline(never)]
    fn load(&mut self, key: &K) -> Option<S> {
        if !self.encode_key(key) {
            return None;
        }
        let r = self
            .store
            .get_decoded(&self.key, "decode a state", self.codec.read_state);
        r.unwrap_or_else(|e| {
            self.fail(e);
            None
        })
    }

    /// `key`'s slot, read from the store on a miss (then clean).
    #[inline]
    fn slot(&mut self, key: &K) -> Option<&mut Slot<S>> {
        if let Some(slot) = self.map.get_mut(key) {
            slot.used = true;
            let slot: *mut Slot<S> = slot;
            // SAFETY: the borrow of `self.map` ends here (as in `KeyedState::get_mut`).
            return Some(unsafe { &mut *slot });
        }
        let state = self.load(key)?;
        Some(self.add(key.clone(), state, false, true))
    }

    /// Adds a key that is not in the cache, making room first.
    fn add(&mut self, key: K, state: S, dirty: bool, stored: bool) -> &mut Slot<S> {
        if self.map.len() >= self.capacity {
            self.evict();
        }
        match self.map.entry(key) {
            Entry::Occupied(o) => {
                let slot = o.into_mut();
                *slot = Slot {
                    state,
                    dirty,
                    used: true,
                    stored: stored || slot.stored,
                };
                slot
            }
            Entry::Vacant(v) => v.insert(Slot {
                state,
                dirty,
                used: true,
                stored,
            }),
        }
    }

    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut S> {
        let slot = self.slot(key)?;
        slot.dirty = true;
        Some(&mut slot.state)
    }

    pub(crate) fn get(&mut self, key: &K) -> Option<&S> {
        self.slot(key).map(|s| &s.state)
    }

    #[inline]
    pub(crate) fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> S) -> &mut S {
        if let Some(slot) = self.map.get_mut(&key) {
            slot.used = true;
            slot.dirty = true;
            let state: *mut S = &mut slot.state;
            // SAFETY: as in `slot`.
            return unsafe { &mut *state };
        }
        let (state, stored) = match self.load(&key) {
            Some(state) => (state, true),
            None => (make(), false),
        };
        &mut self.add(key, state, true, stored).state
    }

    pub(crate) fn insert_new(&mut self, key: K, state: S) -> bool {
        if self.slot(&key).is_some() {
            return false;
        }
        self.add(key, state, true, false);
        true
    }

    pub(crate) fn insert(&mut self, key: K, state: S) {
        if let Some(slot) = self.map.get_mut(&key) {
            slot.state = state;
            slot.dirty = true;
            slot.used = true;
            return;
        }
        // Whether the store has it is unknown without a read: a removal will delete it there.
        self.add(key, state, true, true);
    }

    pub(crate) fn remove(&mut self, key: &K) -> bool {
        let (had, stored) = match self.map.remove(key) {
            Some(slot) => (true, slot.stored),
            None => (false, true),
        };
        if !stored || !self.encode_key(key) {
            return had;
        }
        self.settle();
        if !had {
            match self.store.contains(&self.key) {
                Ok(true) => {}
                Ok(false) => return false,
                Err(e) => {
                    self.fail(e);
                    return false;
                }
            }
        }
        if let Err(e) = self.store.remove(&self.key) {
            self.fail(e);
        }
        true
    }

    /// Evicts a quarter of the cache, keys unused since the last sweep first, and writes the
    /// changed ones back in one batch.
    #[inline(never)]
    fn evict(&mut self) {
        self.settle();
        let target = (self.capacity / 4).max(1);
        let keep = self
            .map
            .len()
            .saturating_sub(target)
            .min(self.capacity * 3 / 4);
        let mut batch = std::mem::take(&mut self.batch);
        let mut puts = std::mem::take(&mut self.puts);
        batch.clear();
        puts.clear();
        let mut error = None;
        // Two passes at most: the first clears the bits of the keys it keeps, so the second
        // finds enough unused ones.
        for _ in 0..2 {
            if self.map.len() <= keep {
                break;
            }
            let mut over = self.map.len() - keep;
            let (codec, store) = (self.codec, &self.store);
            self.map.retain(|k, slot| {
                if over == 0 {
                    return true;
                }
                if slot.used {
                    slot.used = false;
                    return true;
                }
                if slot.dirty {
                    if let Err(e) = encode(store, codec, k, &slot.state, &mut batch, &mut puts) {
                        error.get_or_insert(e);
                        return true;
                    }
                }
                over -= 1;
                false
            });
        }
        self.write_back(&batch, &puts);
        if let Some(e) = error {
            let e = self.codec_error("encode a state", e);
            self.fail(e);
        }
        self.batch = batch;
        self.puts = puts;
    }

    /// Writes a batch, and updates the estimate of the states' heap memory.
    fn write_back(&mut self, batch: &[u8], puts: &[(usize, usize, usize)]) {
        if puts.is_empty() {
            return;
        }
        self.store.trace();
        if let Err(e) = self.store.write(batch, puts) {
            self.fail(e);
        }
        self.written += puts.len() as u64;
        self.written_bytes += batch.len() as u64;
        let inline = (std::mem::size_of::<K>() + std::mem::size_of::<S>()) as u64;
        let heap = (self.written_bytes / self.written.max(1)).saturating_sub(inline);
        self.capacity = self.capacity_for(heap);
    }

    /// Every changed key's bytes in a new batch (they stay cached, now clean): what a
    /// checkpoint's barrier leaves for the store.
    fn encode_dirty(&mut self) -> Batch {
        let mut batch = Vec::new();
        let mut puts = Vec::new();
        let mut error = None;
        for (k, slot) in self.map.iter_mut() {
            if slot.dirty {
                match encode(
                    &self.store,
                    self.codec,
                    k,
                    &slot.state,
                    &mut batch,
                    &mut puts,
                ) {
                    Ok(()) => {
                        slot.dirty = false;
                        slot.stored = true;
                    }
                    Err(e) => {
                        error.get_or_insert(e);
                    }
                }
            }
        }
        if let Some(e) = error {
            let e = self.codec_error("encode a state", e);
            self.fail(e);
        }
        self.written += puts.len() as u64;
        self.written_bytes += batch.len() as u64;
        (batch, puts)
    }

    /// Every key's state as of now, for a checkpoint. On the row path only the changed keys
    /// are encoded (into one batch, they stay cached, now clean); the checkpoint writer
    /// commits the batch and takes the store's snapshot, off the row path, unless the rows
    /// need to write to the store first ([`Cached::settle`]).
    pub(crate) fn snapshot(&mut self) -> std::result::Result<StoreView<K, S>, String> {
        self.settle();
        let (batch, puts) = self.encode_dirty();
        if let Some(e) = &self.error {
            return Err(e.to_string());
        }
        let barrier = Arc::new(Barrier {
            batch: Mutex::new(Some((batch, puts))),
            snapshot: OnceLock::new(),
        });
        self.barrier = Some(barrier.clone());
        Ok(StoreView {
            store: self.store.clone(),
            barrier,
            codec: self.codec,
        })
    }

    /// Before the rows write to the store: the last barrier's batch committed and its
    /// snapshot taken (by the checkpoint writer, or here if it has not got to it), so that the
    /// snapshot holds nothing written after its barrier, and nothing the batch holds
    /// overwrites a newer write.
    fn settle(&mut self) {
        if let Some(barrier) = self.barrier.take() {
            if let Err(e) = barrier.complete(&self.store) {
                let e = Error::State {
                    operator: self.store.operator().into(),
                    file: None,
                    message: e.clone(),
                };
                self.fail(e);
            }
        }
    }

    /// Takes every key's state out (batch-mode final emission): read from a snapshot after a
    /// write-back, then deleted.
    pub(crate) fn drain(&mut self) -> Vec<(K, S)> {
        let view = match self.snapshot() {
            Ok(view) => view,
            Err(_) => return Vec::new(), // the error is reported by `check`
        };
        let mut all = Vec::new();
        self.settle();
        if let Err(e) = view.try_for_each(|k, s| {
            all.push((k.clone(), s.clone()));
            Ok(())
        }) {
            self.fail(e);
        }
        self.map.clear();
        for (k, _) in &all {
            if self.encode_key(k) {
                if let Err(e) = self.store.remove(&self.key) {
                    self.fail(e);
                    break;
                }
            }
        }
        all
    }

    /// Drops every key's state, cached and stored (the keys moved to another instance of a
    /// group): after the last checkpoint's write-back and snapshot (a release's snapshot
    /// reads the states as they were), the structure's every entry is deleted.
    ///
    /// # Errors
    /// The store's, or the first one a row met before.
    pub(crate) fn clear(&mut self) -> Result<()> {
        self.settle();
        self.check()?;
        self.map.clear();
        self.store.remove_every()
    }
}

/// Appends `key`'s and `state`'s bytes to `batch`, their ranges to `puts`.
fn encode<K, S>(
    store: &Store,
    codec: Codec<K, S>,
    key: &K,
    state: &S,
    batch: &mut Vec<u8>,
    puts: &mut Vec<(usize, usize, usize)>,
) -> bincode::Result<()> {
    let start = batch.len();
    batch.extend_from_slice(store.prefix());
    let r = (codec.key)(key, batch).and_then(|()| {
        let v = batch.len();
        (codec.state)(state, batch).map(|()| v)
    });
    match r {
        Ok(v) => {
            puts.push((start, v, batch.len()));
            Ok(())
        }
        Err(e) => {
            batch.truncate(start);
            Err(e)
        }
    }
}

/// A write-back batch: the encoded keys and states, and each entry's (key, state, end) offsets.
type Batch = (Vec<u8>, Vec<(usize, usize, usize)>);

/// A checkpoint barrier's write-back: the changed keys' batch, committed once, then the
/// store's snapshot (by whichever comes first: the checkpoint writer, or the rows' next write
/// to the store).
struct Barrier {
    batch: Mutex<Option<Batch>>,
    snapshot: OnceLock<std::result::Result<StoreSnapshot, String>>,
}

impl Barrier {
    fn complete(&self, store: &Store) -> std::result::Result<&StoreSnapshot, &String> {
        self.snapshot
            .get_or_init(|| {
                let batch = self.batch.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some((bytes, puts)) = batch {
                    store.write(&bytes, &puts).map_err(|e| e.to_string())?;
                }
                Ok(store.snapshot())
            })
            .as_ref()
    }
}

/// A structure's states at a checkpoint's barrier, read on the checkpoint writer's thread.
pub(crate) struct StoreView<K, S> {
    store: Store,
    barrier: Arc<Barrier>,
    codec: Codec<K, S>,
}

impl<K, S> Drop for StoreView<K, S> {
    /// A checkpoint declined or failed still writes its batch back: the cache holds those
    /// keys as clean.
    fn drop(&mut self) {
        let _ = self.barrier.complete(&self.store);
    }
}

impl<K, S> StoreView<K, S> {
    /// Every key's state, decoded, in the store's key order.
    pub(crate) fn try_for_each(&self, mut f: impl FnMut(&K, &S) -> Result<()>) -> Result<()> {
        let snapshot = self
            .barrier
            .complete(&self.store)
            .map_err(|e| Error::State {
                operator: self.store.operator().into(),
                file: None,
                message: e.clone(),
            })?;
        let (op, dir) = (snapshot.operator(), snapshot.dir());
        snapshot.try_for_each(|k, v| {
            let key = (self.codec.read_key)(k)
                .map_err(|e| super::disk::store_error(op, dir, "decode a key", e))?;
            let state = (self.codec.read_state)(v)
                .map_err(|e| super::disk::store_error(op, dir, "decode a state", e))?;
            f(&key, &state)
        })
    }
}
