//! The disk backend's side of a window operator's fixed panes ([`Panes`](super::panes::Panes)):
//! the panes moved out of memory when the open windows outgrow the state cache.
//!
//! A moved pane's accumulators are keyed by the window, then the key: the window's end and
//! start as big-endian bytes with the sign flipped (so that byte order is time order), then the
//! key's bincode. A window's accumulators are thus one range of the store, read in order when
//! it fires and deleted when it expires; a row for a moved pane reads and writes its one
//! accumulator (as Flink's RocksDB backend does for every row).
//!
//! The timers of a keyed process function use the same layout, with the timer's time as the
//! window's end and 0 as its start, and no value ([`PaneStore::take_first`]).
//!
//! Errors of the store cannot be returned on the row path: the first is kept and reported by
//! [`PaneStore::check`], as in [`Cached`](super::cache::Cached).

use super::cache::Codec;
use super::disk::{Store, StoreSnapshot};
use crate::time::Timestamp;
use crate::{Error, Result};
use std::ops::Bound;

/// The panes of one window operator moved to the store.
pub(crate) struct PaneStore<K, A> {
    store: Store,
    codec: Codec<K, A>,
    /// A key's bytes (prefix and window first).
    key: Vec<u8>,
    /// A batch's bytes, and its entries' ranges in them.
    batch: Vec<u8>,
    puts: Vec<(usize, usize, usize)>,
    /// Accumulators moved so far and their bytes: the estimate of an entry's heap memory.
    written: u64,
    written_bytes: u64,
    /// The state cache's size: the most bytes of panes memory holds.
    cache_bytes: u64,
    error: Option<Error>,
}

/// A window's bytes: its end, then its start, in time order.
fn window_bytes(end: Timestamp, start: Timestamp, out: &mut Vec<u8>) {
    for t in [end, start] {
        out.extend_from_slice(&((t as u64) ^ (1 << 63)).to_be_bytes());
    }
}

fn read_window(bytes: &[u8]) -> Option<(Timestamp, Timestamp, &[u8])> {
    let time = |b: &[u8]| (u64::from_be_bytes(b.try_into().expect("8 bytes")) ^ (1 << 63)) as i64;
    (bytes.len() >= 16).then(|| (time(&bytes[..8]), time(&bytes[8..16]), &bytes[16..]))
}

impl<K, A> PaneStore<K, A> {
    pub(crate) fn new(store: Store, codec: Codec<K, A>, cache_bytes: u64) -> Self {
        PaneStore {
            store,
            codec,
            key: Vec::new(),
            batch: Vec::new(),
            puts: Vec::new(),
            written: 0,
            written_bytes: 0,
            cache_bytes,
            error: None,
        }
    }

    /// The first store error since the last call.
    pub(crate) fn check(&mut self) -> Result<()> {
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn fail(&mut self, e: Error) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    fn codec_error(&self, what: &str, e: bincode::Error) -> Error {
        super::disk::store_error(self.store.operator(), self.store.dir(), what, e)
    }

    /// The state cache's size: the most bytes of panes memory holds.
    pub(crate) fn cache_bytes(&self) -> u64 {
        self.cache_bytes
    }

    /// The average bytes of a moved entry beyond `inline` (its size in memory without heap).
    pub(crate) fn heap_per_entry(&self, inline: usize) -> u64 {
        (self.written_bytes / self.written.max(1)).saturating_sub(inline as u64)
    }

    /// `self.key` set to the window's prefix.
    fn window_key(&mut self, end: Timestamp, start: Timestamp) {
        self.store.key_buf(&mut self.key);
        window_bytes(end, start, &mut self.key);
    }

    /// `self.key` set to `key`'s in the window.
    fn entry_key(&mut self, end: Timestamp, start: Timestamp, key: &K) -> bool {
        self.window_key(end, start);
        match (self.codec.key)(key, &mut self.key) {
            Ok(()) => true,
            Err(e) => {
                let e = self.codec_error("encode a key", e);
                self.fail(e);
                false
            }
        }
    }

    /// Writes a window's accumulators to the store, in one batch.
    pub(crate) fn move_out<'a>(
        &mut self,
        end: Timestamp,
        start: Timestamp,
        entries: impl IntoIterator<Item = &'a (K, A)>,
    ) where
        K: 'a,
        A: 'a,
    {
        let (mut batch, mut puts) = (
            std::mem::take(&mut self.batch),
            std::mem::take(&mut self.puts),
        );
        batch.clear();
        puts.clear();
        let mut error = None;
        for (key, acc) in entries {
            let k = batch.len();
            batch.extend_from_slice(self.store.prefix());
            window_bytes(end, start, &mut batch);
            let r = (self.codec.key)(key, &mut batch).and_then(|()| {
                let v = batch.len();
                (self.codec.state)(acc, &mut batch).map(|()| v)
            });
            match r {
                Ok(v) => puts.push((k, v, batch.len())),
                Err(e) => {
                    batch.truncate(k);
                    error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = error {
            let e = self.codec_error("encode a window's accumulator", e);
            self.fail(e);
        }
        self.store.trace();
        if let Err(e) = self.store.write(&batch, &puts) {
            self.fail(e);
        }
        self.written += puts.len() as u64;
        // The key's and accumulator's bytes, without the prefix and window.
        self.written_bytes += (batch.len() - puts.len() * (self.store.prefix().len() + 16)) as u64;
        (self.batch, self.puts) = (batch, puts);
    }

    /// `key`'s accumulator in the window, if it has one.
    pub(crate) fn get(&mut self, end: Timestamp, start: Timestamp, key: &K) -> Option<A> {
        if !self.entry_key(end, start, key) {
            return None;
        }
        let r = self.store.get_decoded(
            &self.key,
            "decode a window's accumulator",
            self.codec.read_state,
        );
        r.unwrap_or_else(|e| {
            self.fail(e);
            None
        })
    }

    /// Writes `key`'s accumulator in the window.
    pub(crate) fn put(&mut self, end: Timestamp, start: Timestamp, key: &K, acc: &A) {
        if !self.entry_key(end, start, key) {
            return;
        }
        let v = self.key.len();
        if let Err(e) = (self.codec.state)(acc, &mut self.key) {
            let e = self.codec_error("encode a window's accumulator", e);
            self.fail(e);
            return;
        }
        if let Err(e) = self.store.write(&self.key, &[(0, v, self.key.len())]) {
            self.fail(e);
        }
    }

    /// Up to `max` of the window's accumulators, in key order, after the key `cursor` holds
    /// (from the first if it is empty), appended to `out`; `cursor` is left at the last one
    /// read. Whether there may be more.
    pub(crate) fn read(
        &mut self,
        end: Timestamp,
        start: Timestamp,
        cursor: &mut Vec<u8>,
        max: usize,
        out: &mut Vec<(K, A)>,
    ) -> bool {
        self.window_key(end, start);
        let (prefix, codec) = (std::mem::take(&mut self.key), self.codec);
        let after = cursor.clone();
        let from = if after.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Excluded(after.as_slice())
        };
        let (mut n, mut error) = (0, None);
        let r = self.store.scan(&prefix, from, |k, v| {
            match codec.read_entry(&k[prefix.len()..], v) {
                Ok(entry) => out.push(entry),
                Err(e) => {
                    error = Some(e);
                    return false;
                }
            }
            cursor.clear();
            cursor.extend_from_slice(k);
            n += 1;
            n < max
        });
        self.key = prefix;
        if let Some(e) = error {
            let e = self.codec_error("decode a window's accumulator", e);
            self.fail(e);
            return false;
        }
        if let Err(e) = r {
            self.fail(e);
            return false;
        }
        n == max
    }

    /// Deletes the window's accumulators.
    pub(crate) fn remove(&mut self, end: Timestamp, start: Timestamp) {
        self.window_key(end, start);
        let mut keys = std::mem::take(&mut self.batch);
        if let Err(e) = self.store.remove_prefixed(&self.key, &mut keys) {
            self.fail(e);
        }
        self.batch = keys;
    }

    /// Deletes every window's accumulators (the keys moved to another instance of a group).
    ///
    /// # Errors
    /// The store's, or the first one a row met before.
    pub(crate) fn clear(&mut self) -> Result<()> {
        self.check()?;
        self.store.remove_every()
    }

    /// Deletes `key`'s accumulator in the window.
    pub(crate) fn remove_entry(&mut self, end: Timestamp, start: Timestamp, key: &K) {
        if !self.entry_key(end, start, key) {
            return;
        }
        if let Err(e) = self.store.remove(&self.key) {
            self.fail(e);
        }
    }

    /// Takes the first entries out of the store, in (end, start, key) order, from the window
    /// ending at `from` (there are none before it: the scan skips what earlier takes
    /// deleted): `max` at least, and then the rest of the last window read, appended to
    /// `out`. The end of the next entry left, if there is one.
    pub(crate) fn take_first(
        &mut self,
        from: Timestamp,
        max: usize,
        out: &mut Vec<(Timestamp, Timestamp, K, A)>,
    ) -> Option<Timestamp> {
        let (codec, prefix) = (self.codec, self.store.prefix().to_vec());
        let mut start = prefix.clone();
        window_bytes(from, Timestamp::MIN, &mut start);
        let (mut keys, mut ranges, mut next, mut error) =
            (std::mem::take(&mut self.batch), Vec::new(), None, None);
        keys.clear();
        let mut last = None;
        let r = self
            .store
            .scan(&prefix, Bound::Included(start.as_slice()), |k, v| {
                let Some((end, start, key)) = read_window(&k[prefix.len()..]) else {
                    error = Some("a key too short for its window".to_string());
                    return false;
                };
                if ranges.len() >= max && last != Some((end, start)) {
                    next = Some(end);
                    return false;
                }
                match codec.read_entry(key, v) {
                    Ok((key, acc)) => out.push((end, start, key, acc)),
                    Err(e) => {
                        error = Some(e.to_string());
                        return false;
                    }
                }
                last = Some((end, start));
                ranges.push((keys.len(), keys.len() + k.len()));
                keys.extend_from_slice(k);
                true
            });
        let r = r.and_then(|()| match error {
            Some(e) => Err(super::disk::store_error(
                self.store.operator(),
                self.store.dir(),
                "decode an entry",
                e,
            )),
            None => self.store.remove_all(&keys, &ranges),
        });
        self.batch = keys;
        if let Err(e) = r {
            self.fail(e);
            return None;
        }
        next
    }

    /// The moved panes as they are now, for a checkpoint (read off the row path).
    pub(crate) fn snapshot(&self) -> PaneStoreView<K, A> {
        PaneStoreView {
            snapshot: self.store.snapshot(),
            codec: self.codec,
        }
    }
}

/// The moved panes at a checkpoint's barrier.
pub(crate) struct PaneStoreView<K, A> {
    snapshot: StoreSnapshot,
    codec: Codec<K, A>,
}

impl<K, A> PaneStoreView<K, A> {
    /// Every moved accumulator with its window's end and start, in the store's order.
    pub(crate) fn try_for_each(
        &self,
        mut f: impl FnMut(Timestamp, Timestamp, K, A) -> Result<()>,
    ) -> Result<()> {
        let (op, dir) = (self.snapshot.operator(), self.snapshot.dir());
        self.snapshot.try_for_each(|k, v| {
            let (end, start, key) = read_window(k)
                .ok_or_else(|| super::disk::store_error(op, dir, "decode a window", "too short"))?;
            let key = (self.codec.read_key)(key)
                .map_err(|e| super::disk::store_error(op, dir, "decode a key", e))?;
            let acc = (self.codec.read_state)(v).map_err(|e| {
                super::disk::store_error(op, dir, "decode a window's accumulator", e)
            })?;
            f(end, start, key, acc)
        })
    }

    /// How many accumulators (or timers) it holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let mut n = 0;
        self.try_for_each(|_, _, _, _| {
            n += 1;
            Ok(())
        })
        .expect("store readable");
        n
    }
}

impl super::DiskBackend {
    /// The store place of a window operator's moved panes, in task `task`.
    pub(crate) fn pane_store<K, A>(&self, task: usize, operator: &str) -> Result<PaneStore<K, A>>
    where
        K: serde::Serialize + serde::Deserialize<'static>,
        A: serde::Serialize + serde::Deserialize<'static>,
    {
        Ok(PaneStore::new(
            self.structure(task, operator)?,
            Codec::new(),
            self.cache_bytes,
        ))
    }
}
