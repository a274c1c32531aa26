//! The open fixed windows (tumbling, sliding) of a window operator: one pane per window, in
//! firing order, each holding an accumulator per key.
//!
//! Rows mostly arrive in event-time order, so a key's row nearly always belongs to the newest
//! pane that key is in, or to a pane newer than any it is in. The panes are laid out for that:
//!
//! - a pane's accumulators are a `Vec` of `(key, acc)` in the order the keys first came (a new
//!   key is an append to memory just written, not an insert into a cold hash table), and a
//!   window fires by walking it;
//! - one map, as large as the number of keys, remembers each key's newest pane and its slot
//!   there: a row finds its accumulator with one probe of a map that stays in cache;
//! - a pane gets a key index of its own only when a key must be found in a pane that is not
//!   its newest (a row out of order across windows, sliding windows), once, then kept.
//!
//! The panes are sorted by `(end, start)` in a vector (a [`Queue`]): a row's window is nearly
//! always the last one, and windows fire from the front.
//!
//! With the disk state backend, the panes' accumulators in memory are bounded by the state
//! cache (`--state-cache-mb`): beyond it, whole panes move to the store, those that fire first
//! first (the newest, where the rows go, last). A row for a moved pane reads and writes its
//! accumulator in the store; a moved pane fires by reading its range of the store, in chunks.
//! The map of each key's newest pane stays in memory (one entry per key).

use super::{PaneStore, PaneStoreView};
use crate::context::RuntimeContext;
use crate::hash::FlowHashMap;
use crate::time::Timestamp;
use std::hash::Hash;

/// The emptied entry vectors [`Panes::dropped`] keeps however few panes were made.
const SPARE_MIN: usize = 16;

/// One window's accumulators.
pub(crate) struct Pane<K, A> {
    pub(crate) end: Timestamp,
    pub(crate) start: Timestamp,
    /// Whether it fired (it stays, to fire again, while within the allowed lateness).
    pub(crate) fired: bool,
    /// Each key's accumulator, in the order the keys came.
    pub(crate) entries: Vec<(K, A)>,
    /// Key to slot in `entries`; only built when needed (see the module).
    index: Option<FlowHashMap<K, u32>>,
    /// Restored only: the slots of keys that had not fired in their old subtask, in a pane
    /// another old subtask had fired (a restore at another parallelism merges them): they
    /// fire when the pane is due.
    pub(crate) unfired: Vec<u32>,
    /// Moved to the store (disk backend): `entries` is empty, and this many accumulators
    /// are there.
    stored: Option<usize>,
}

impl<K, A> Pane<K, A> {
    /// Whether its accumulators are in the store.
    pub(crate) fn is_stored(&self) -> bool {
        self.stored.is_some()
    }
}

impl<K: Hash + Eq + Clone, A> Pane<K, A> {
    /// The slot of `key`, building the index on first use.
    fn find(&mut self, key: &K) -> Option<usize> {
        let entries = &self.entries;
        let index = self.index.get_or_insert_with(|| {
            let mut index =
                FlowHashMap::with_capacity_and_hasher(entries.len(), Default::default());
            for (i, (k, _)) in entries.iter().enumerate() {
                index.insert(k.clone(), i as u32);
            }
            index
        });
        index.get(key).map(|&i| i as usize)
    }

    /// Adds `key`'s accumulator: its slot, and the accumulator.
    #[inline(always)]
    fn push(&mut self, key: K, acc: A) -> (usize, &mut A) {
        let slot = self.entries.len();
        if let Some(index) = &mut self.index {
            index.insert(key.clone(), slot as u32);
        }
        self.entries.push((key, acc));
        match self.entries.last_mut() {
            Some((_, acc)) => (slot, acc),
            None => unreachable!("an entry was just pushed"),
        }
    }
}

impl<K, A> Default for Pane<K, A> {
    /// An empty pane, without memory: what a pane taken out of the [`Queue`] leaves.
    fn default() -> Self {
        Pane {
            end: 0,
            start: 0,
            fired: false,
            entries: Vec::new(),
            index: None,
            unfired: Vec::new(),
            stored: None,
        }
    }
}

/// The open panes in firing order: a `Vec` whose first `front` slots are panes already
/// removed (emptied, their memory gone), dropped together once they are at least 16 and as
/// many as the open ones. The newest pane, where a row in order goes, is then the vector's
/// last: one address computation, where a `VecDeque`'s back was a wrap-around of its ring in
/// every row's path.
struct Queue<T> {
    items: Vec<T>,
    /// Removed slots at the start of `items`; `items` is empty when no pane is open, so its
    /// last item is the newest open one.
    front: usize,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            items: Vec::new(),
            front: 0,
        }
    }
}

impl<T> Queue<T> {
    fn len(&self) -> usize {
        self.items.len() - self.front
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.items.capacity()
    }

    #[inline(always)]
    fn back(&self) -> Option<&T> {
        self.items.last()
    }

    #[inline(always)]
    fn back_mut(&mut self) -> Option<&mut T> {
        self.items.last_mut()
    }

    fn get(&self, i: usize) -> Option<&T> {
        self.items.get(self.front + i)
    }

    fn open(&self) -> &[T] {
        &self.items[self.front..]
    }

    fn iter(&self) -> std::slice::Iter<'_, T> {
        self.open().iter()
    }

    fn iter_mut(&mut self) -> std::slice::IterMut<'_, T> {
        self.items[self.front..].iter_mut()
    }

    fn binary_search_by(&self, f: impl FnMut(&T) -> std::cmp::Ordering) -> Result<usize, usize> {
        self.open().binary_search_by(f)
    }

    fn partition_point(&self, f: impl FnMut(&T) -> bool) -> usize {
        self.open().partition_point(f)
    }

    fn insert(&mut self, i: usize, item: T) {
        self.items.insert(self.front + i, item);
    }
}

impl<T: Default> Queue<T> {
    /// Takes out item `i`: the first leaves an empty slot (dropped with the others later),
    /// any other is removed from the vector.
    fn remove(&mut self, i: usize) -> Option<T> {
        if i >= self.len() {
            return None;
        }
        if i > 0 {
            return Some(self.items.remove(self.front + i));
        }
        let item = std::mem::take(&mut self.items[self.front]);
        self.front += 1;
        if self.front == self.items.len() {
            self.items.clear();
            self.front = 0;
        } else if self.front >= 16 && self.front >= self.len() {
            self.items.drain(..self.front);
            self.front = 0;
        }
        Some(item)
    }
}

impl<T> std::ops::Index<usize> for Queue<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        &self.items[self.front + i]
    }
}

impl<T> std::ops::IndexMut<usize> for Queue<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.items[self.front + i]
    }
}

impl<'a, T> IntoIterator for &'a Queue<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The open panes of a window operator.
pub(crate) struct Panes<K, A> {
    /// Sorted by `(end, start)`.
    panes: Queue<Pane<K, A>>,
    /// Each key's newest pane, by its end, and its slot there. An entry may point to a pane
    /// that is gone (the oldest go first): it is checked before use and swept now and then.
    /// (The end alone, to keep the map small: windows of one operator have one size, but
    /// after a restore with another one two panes may end together, so a pane that ends as
    /// a key's newest may hold the key or not: it is looked up there.)
    newest: FlowHashMap<K, (Timestamp, u32)>,
    /// Emptied entry vectors, reused with their capacity: at most as many as panes were
    /// made between the operator's last two drops ([`Panes::dropped`]).
    spare: Vec<Vec<(K, A)>>,
    /// Panes made since the last [`Panes::dropped`].
    made: usize,
    /// The entries of all panes in memory.
    entries: usize,
    /// The accumulators of the panes in the store.
    stored: usize,
    /// The disk backend's store, where panes move when memory holds `budget` entries.
    disk: Option<Box<PaneStore<K, A>>>,
    budget: usize,
    /// The entries at which to make room: `budget`, or, after a `make_room` that could move
    /// nothing, more (one compare in a row's path).
    room_at: usize,
    /// The pane the last row not for the newest pane went to (see [`Panes::pane`]).
    hint: usize,
}

impl<K, A> Default for Panes<K, A> {
    fn default() -> Self {
        Panes {
            panes: Queue::default(),
            newest: FlowHashMap::default(),
            spare: Vec::new(),
            made: 0,
            entries: 0,
            stored: 0,
            disk: None,
            budget: usize::MAX,
            room_at: usize::MAX,
            hint: 0,
        }
    }
}

impl<K, A> Panes<K, A>
where
    K: serde::Serialize + serde::Deserialize<'static>,
    A: serde::Serialize + serde::Deserialize<'static>,
{
    /// Bounds the panes in memory by the job's disk backend, if it runs with one (else does
    /// nothing): called in the operator's `open`, before a restore or any row.
    ///
    /// # Errors
    /// The store cannot be opened.
    pub(crate) fn open(&mut self, ctx: &RuntimeContext) -> crate::Result<()> {
        if let Some(backend) = &ctx.state_backend {
            self.disk = Some(Box::new(backend.pane_store(ctx.task, ctx.operator_name())?));
            self.budget = self.budget_for(0);
            self.room_at = self.budget;
        }
        Ok(())
    }
}

impl<K, A> Panes<K, A> {
    /// Drops every pane (the keys moved to another instance of the group), those moved to
    /// the disk backend's store too.
    ///
    /// # Errors
    /// The store could not be written, or a row met an error before.
    pub(crate) fn clear(&mut self) -> crate::Result<()> {
        if let Some(disk) = self.disk.as_deref_mut() {
            disk.clear()?;
        }
        *self = Panes {
            disk: self.disk.take(),
            budget: self.budget,
            room_at: self.budget,
            ..Panes::default()
        };
        Ok(())
    }

    /// The disk backend's first error, if a row met one.
    pub(crate) fn check(&mut self) -> crate::Result<()> {
        match self.disk.as_deref_mut() {
            Some(disk) => disk.check(),
            None => Ok(()),
        }
    }

    /// How many entries fit in the state cache with `heap` bytes each beyond their inline
    /// size, counting half a vector's growth.
    fn budget_for(&self, heap: u64) -> usize {
        let Some(disk) = &self.disk else {
            return usize::MAX;
        };
        let entry = (std::mem::size_of::<(K, A)>() as u64 + heap) * 3 / 2;
        (disk.cache_bytes() / entry.max(1)).max(64) as usize
    }
}

impl<K: Hash + Eq + Clone, A> Panes<K, A> {
    /// Whether `[start, end)` is the newest pane: rows in order, checked in the row's path.
    #[inline]
    fn is_newest(&self, end: Timestamp, start: Timestamp) -> bool {
        matches!(self.panes.back(), Some(last) if (last.end, last.start) == (end, start))
    }

    /// The index of the pane `[start, end)`, made (empty) if there is none.
    #[inline]
    fn pane(&mut self, end: Timestamp, start: Timestamp) -> usize {
        match self.is_newest(end, start) {
            true => self.panes.len() - 1,
            false => self.other_pane(end, start),
        }
    }

    /// The index of the pane `[start, end)` when it is not the newest, made (empty) if there
    /// is none.
    #[inline(never)]
    fn other_pane(&mut self, end: Timestamp, start: Timestamp) -> usize {
        let n = self.panes.len();
        // Rows of an input behind the others (at parallelism above 1 a stage's inputs are
        // seconds of event time apart, a batch at a time): at the pane the last such row
        // went to, or the next. Checked, since panes come and go at the front.
        let hint = self.hint;
        for i in [hint, hint + 1] {
            if let Some(p) = self.panes.get(i) {
                if (p.end, p.start) == (end, start) {
                    self.hint = i;
                    return i;
                }
            }
        }
        match self
            .panes
            .binary_search_by(|p| (p.end, p.start).cmp(&(end, start)))
        {
            Ok(i) => {
                self.hint = i;
                i
            }
            Err(i) => {
                // A new newest pane is found by the check above: the hint stays with the
                // input behind.
                if i < n {
                    self.hint = i;
                }
                // A new pane is sized as the newest one is: windows of one operator hold
                // about as many keys each, and a vector grown by doubling would copy its
                // entries over and over. Also a pane older than the newest: at parallelism
                // 2 an input behind the other makes every one of its windows that way
                // (`NumberSequence`'s halves); grown from empty instead, W4 at p2 ran
                // 15-20 % slower.
                self.made += 1;
                let entries = match self.spare.pop() {
                    Some(entries) => entries,
                    None => Vec::with_capacity(self.panes.back().map_or(0, |p| p.entries.len())),
                };
                self.panes.insert(
                    i,
                    Pane {
                        end,
                        start,
                        fired: false,
                        entries,
                        index: None,
                        unfired: Vec::new(),
                        stored: None,
                    },
                );
                i
            }
        }
    }

    /// `key`'s accumulator in the window `[start, end)`, made with `create` if it has none
    /// there; with whether the window already fired. `None` if the window's pane is in the
    /// store: [`Panes::stored_get`] and [`Panes::stored_put`] then.
    ///
    /// Inlined into the row's path (a window's row is this and an add): called, with the
    /// late refire's second call inlined too, W4 ran about a tenth slower (BENCHMARKS.md,
    /// session 42).
    #[inline(always)]
    pub(crate) fn get_or_insert(
        &mut self,
        end: Timestamp,
        start: Timestamp,
        key: &K,
        create: impl FnOnce() -> A,
    ) -> Option<(&mut A, bool)> {
        if self.entries >= self.room_at {
            self.make_room();
        }
        // The newest pane without its index computed twice, else found or made.
        let pane = match self.is_newest(end, start) {
            true => self.panes.back_mut().expect("the newest pane"),
            false => {
                let p = self.other_pane(end, start);
                &mut self.panes[p]
            }
        };
        if pane.stored.is_some() {
            return None;
        }
        let newest = self.newest.get_mut(key);
        let (slot, stale) = match newest.as_deref() {
            // The key's newest pane is this one.
            Some(&(e, slot))
                if e == end
                    && pane
                        .entries
                        .get(slot as usize)
                        .is_some_and(|(k, _)| k == key) =>
            {
                (Some(slot as usize), false)
            }
            // It is in a newer pane (or one that ends as this one, or this pane's slot is
            // stale): it may be here too.
            Some(&(e, _)) if e >= end => (pane.find(key), e == end),
            // Its newest pane is older, or it has none: it is not here.
            _ => (None, false),
        };
        let fired = pane.fired;
        let acc = match slot {
            Some(slot) => {
                // (A slot gone stale when its pane came back from the store.)
                if let (true, Some(n)) = (stale, newest) {
                    n.1 = slot as u32;
                }
                &mut pane.entries[slot].1
            }
            None => {
                // The accumulator as pushed, not indexed again.
                let (slot, acc) = pane.push(key.clone(), create());
                self.entries += 1;
                match newest {
                    Some(n) if n.0 <= end => *n = (end, slot as u32),
                    Some(_) => {}
                    None => {
                        self.newest.insert(key.clone(), (end, slot as u32));
                    }
                }
                acc
            }
        };
        Some((acc, fired))
    }

    /// Moves panes to the store, those that fire first first, until memory holds a quarter
    /// less than its budget. A restored pane with keys yet to fire stays.
    #[inline(never)]
    fn make_room(&mut self)
    where
        K: Clone,
    {
        let Some(disk) = self.disk.as_deref_mut() else {
            return;
        };
        let target = self.budget / 4 * 3;
        let mut moved = false;
        for pane in self.panes.iter_mut() {
            if self.entries <= target {
                break;
            }
            // A pane whose keys partly fired (after a restore) stays until it fires.
            if pane.stored.is_some()
                || pane.entries.is_empty()
                || (pane.fired && !pane.unfired.is_empty())
            {
                continue;
            }
            disk.move_out(pane.end, pane.start, &pane.entries);
            moved = true;
            // (None of its keys fired, or all did.)
            pane.unfired.clear();
            self.entries -= pane.entries.len();
            self.stored += pane.entries.len();
            pane.stored = Some(pane.entries.len());
            // Its memory goes back now.
            pane.entries = Vec::new();
            pane.index = None;
        }
        let inline = std::mem::size_of::<K>() + std::mem::size_of::<A>();
        let heap = disk.heap_per_entry(inline);
        self.budget = self.budget_for(heap);
        // Nothing could move (partly fired panes after a restore): not again on every row,
        // only after an eighth more, or a pane gone.
        self.room_at = match moved {
            true => self.budget,
            false => self.budget.max(self.entries + self.entries / 8 + 64),
        };
        // Emptied vectors hold the memory of the panes they were.
        self.spare.clear();
    }

    /// `key`'s accumulator in the stored pane `[start, end)`, if it has one there; with whether
    /// the pane fired.
    pub(crate) fn stored_get(
        &mut self,
        end: Timestamp,
        start: Timestamp,
        key: &K,
    ) -> (Option<A>, bool) {
        let fired = self
            .find_pane(end, start)
            .is_some_and(|p| self.panes[p].fired);
        let acc = self
            .disk
            .as_deref_mut()
            .and_then(|d| d.get(end, start, key));
        (acc, fired)
    }

    /// Writes `key`'s accumulator in the stored pane `[start, end)`; `new` if it had none there.
    pub(crate) fn stored_put(
        &mut self,
        end: Timestamp,
        start: Timestamp,
        key: &K,
        acc: &A,
        new: bool,
    ) where
        K: Clone,
    {
        let Some(disk) = self.disk.as_deref_mut() else {
            return;
        };
        disk.put(end, start, key, acc);
        if !new {
            return;
        }
        if let Some(p) = self.find_pane(end, start) {
            if let Some(n) = &mut self.panes[p].stored {
                *n += 1;
                self.stored += 1;
            }
        }
        // The key is in this pane now: its newest pane is this one or a newer one.
        match self.newest.get_mut(key) {
            Some(n) if n.0 >= end => {}
            Some(n) => *n = (end, u32::MAX),
            None => {
                self.newest.insert(key.clone(), (end, u32::MAX));
            }
        }
    }

    /// Applies `f` to `key`'s accumulator in the window `[start, end)` (made with `create` if
    /// it has none there), in memory or, if the pane is stored, read and written back.
    pub(crate) fn update(
        &mut self,
        end: Timestamp,
        start: Timestamp,
        key: &K,
        create: impl Fn() -> A,
        f: impl FnOnce(&mut A),
    ) {
        if let Some((acc, _)) = self.get_or_insert(end, start, key, &create) {
            return f(acc);
        }
        let (acc, _) = self.stored_get(end, start, key);
        let new = acc.is_none();
        let mut acc = acc.unwrap_or_else(create);
        f(&mut acc);
        self.stored_put(end, start, key, &acc, new);
    }

    /// Up to `max` accumulators of the stored pane `i` after the key `cursor` holds (from the
    /// first if it is empty), appended to `out`; whether there may be more.
    pub(crate) fn read_stored(
        &mut self,
        i: usize,
        cursor: &mut Vec<u8>,
        max: usize,
        out: &mut Vec<(K, A)>,
    ) -> bool {
        let (end, start) = (self.panes[i].end, self.panes[i].start);
        match self.disk.as_deref_mut() {
            Some(disk) => disk.read(end, start, cursor, max, out),
            None => false,
        }
    }

    /// Calls `f` with the owner and each accumulator of stored pane `i` of the panes `panes`
    /// finds in `owner`, read from the store a chunk at a time (so that `f` may use the
    /// owner: emit results, drop other state).
    pub(crate) fn for_each_stored<O>(
        owner: &mut O,
        panes: fn(&mut O) -> &mut Self,
        i: usize,
        mut f: impl FnMut(&mut O, K, A),
    ) {
        let (mut cursor, mut chunk) = (Vec::new(), Vec::new());
        loop {
            let more = panes(owner).read_stored(i, &mut cursor, 1024, &mut chunk);
            for (key, acc) in chunk.drain(..) {
                f(owner, key, acc);
            }
            if !more {
                break;
            }
        }
    }

    /// Moves stored pane `p` back to memory (a restore that finds it partly fired): if it had
    /// not fired, none of its keys had.
    fn move_in(&mut self, p: usize)
    where
        K: Clone,
    {
        let (end, start) = (self.panes[p].end, self.panes[p].start);
        let Some(disk) = self.disk.as_deref_mut() else {
            return;
        };
        let (mut entries, mut cursor) = (Vec::new(), Vec::new());
        while disk.read(end, start, &mut cursor, 4096, &mut entries) {}
        disk.remove(end, start);
        let pane = &mut self.panes[p];
        self.stored -= pane.stored.take().unwrap_or(0);
        self.entries += entries.len();
        if !pane.fired {
            pane.unfired = (0..entries.len() as u32).collect();
        }
        // Each key's slot, for those whose newest pane this is.
        for (i, (k, _)) in entries.iter().enumerate() {
            if let Some(n) = self.newest.get_mut(k) {
                if n.0 == end {
                    n.1 = i as u32;
                }
            }
        }
        pane.entries = entries;
        pane.index = None;
    }

    /// The panes as they are now, for a checkpoint: those in memory copied, those in the store
    /// as an MVCC view of it (read off the row path).
    pub(crate) fn snapshot(&self) -> PanesSnapshot<K, A>
    where
        K: Clone,
        A: Clone,
    {
        let mut memory = Vec::new();
        let mut stored = Vec::new();
        for pane in &self.panes {
            if pane.stored.is_some() {
                stored.push((pane.end, pane.start, pane.fired));
            } else if !pane.entries.is_empty() {
                let unfired = if pane.fired {
                    pane.unfired.clone()
                } else {
                    Vec::new()
                };
                memory.push((
                    pane.end,
                    pane.start,
                    pane.fired,
                    pane.entries.clone(),
                    unfired,
                ));
            }
        }
        let view = if stored.is_empty() {
            None
        } else {
            self.disk.as_deref().map(|d| d.snapshot())
        };
        PanesSnapshot {
            memory,
            stored,
            view,
        }
    }

    /// The index of the pane `[start, end)`, if it is open.
    fn find_pane(&self, end: Timestamp, start: Timestamp) -> Option<usize> {
        self.panes
            .binary_search_by(|p| (p.end, p.start).cmp(&(end, start)))
            .ok()
    }

    /// The number of open panes.
    pub(crate) fn len(&self) -> usize {
        self.panes.len()
    }

    /// Whether no pane is open.
    pub(crate) fn is_empty(&self) -> bool {
        self.panes.is_empty()
    }

    /// Pane `i` (0: the first to fire).
    pub(crate) fn get(&self, i: usize) -> &Pane<K, A> {
        &self.panes[i]
    }

    /// Pane `i`, to mark it fired or take its entries out while emitting them.
    pub(crate) fn get_mut(&mut self, i: usize) -> &mut Pane<K, A> {
        &mut self.panes[i]
    }

    /// The bytes the panes in memory take: every vector's and map's capacity, and the panes
    /// themselves (what a heap profiler would count, less the allocator's own overhead).
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(K, A)>();
        let panes: usize = self
            .panes
            .iter()
            .map(|p| {
                p.entries.capacity() * entry
                    + p.unfired.capacity() * 4
                    + p.index.as_ref().map_or(0, map_bytes)
            })
            .sum();
        let spare: usize = self.spare.iter().map(|v| v.capacity() * entry).sum();
        panes
            + spare
            + self.panes.capacity() * std::mem::size_of::<Pane<K, A>>()
            + self.spare.capacity() * std::mem::size_of::<Vec<(K, A)>>()
            + map_bytes(&self.newest)
    }

    /// Every pane, in firing order.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Pane<K, A>> {
        self.panes.iter()
    }

    /// Drops pane `i` and its accumulators (its vector is kept for the next pane).
    pub(crate) fn remove(&mut self, i: usize) {
        let Some(mut pane) = self.panes.remove(i) else {
            return;
        };
        self.room_at = self.budget;
        if let Some(n) = pane.stored {
            self.stored -= n;
            if let Some(disk) = self.disk.as_deref_mut() {
                disk.remove(pane.end, pane.start);
            }
        }
        self.entries -= pane.entries.len();
        pane.entries.clear();
        pane.unfired.clear();
        if pane.stored.is_none() {
            self.spare.push(pane.entries);
        }
        // Entries pointing to gone panes: swept when they outnumber the live ones. (A stored
        // pane's entries are kept: whether the key is there is not known in memory.)
        if self.newest.len() > 2 * (self.entries + self.stored) + 1024 {
            let panes = &self.panes;
            self.newest.retain(|k, &mut (end, slot)| {
                // Every pane that ends there (one, unless window sizes changed at a restore).
                let first = panes.partition_point(|p| p.end < end);
                (first..panes.len())
                    .take_while(|&i| panes[i].end == end)
                    .any(|i| {
                        panes[i].stored.is_some()
                            || panes[i]
                                .entries
                                .get(slot as usize)
                                .is_some_and(|(key, _)| key == k)
                    })
            });
        }
    }

    /// The window operator dropped the panes past their time: the emptied vectors kept for
    /// new panes are cut to as many as were made since the last time (at least
    /// [`SPARE_MIN`]). Rows in order make about as many panes between firings as fire at
    /// each, and their vectors are reused; after a burst (windows that stayed open while the
    /// watermark held still, all firing at once) the memory goes back to the allocator at
    /// the next firing, rather than staying with the operator until it ends.
    pub(crate) fn dropped(&mut self) {
        let keep = self.made.max(SPARE_MIN);
        if self.spare.len() > keep {
            self.spare.truncate(keep);
            self.spare.shrink_to_fit();
        }
        self.made = 0;
    }

    /// Adds a restored accumulator (a checkpoint's, of any order; a key appears once per
    /// window in a checkpoint, since its old subtasks held disjoint keys) and whether it
    /// fired. A pane counts as fired when any of its keys did; the keys that did not are
    /// remembered, to fire when it is due.
    pub(crate) fn restore(
        &mut self,
        end: Timestamp,
        start: Timestamp,
        fired: bool,
        key: K,
        acc: A,
    ) {
        if self.entries >= self.room_at {
            self.make_room();
        }
        let p = self.pane(end, start);
        if self.panes[p].stored.is_some() {
            if self.panes[p].fired == fired {
                // A pane moved out during the restore, whose keys all fired or none did.
                self.stored_put(end, start, &key, &acc, true);
                return;
            }
            // Some of its keys fired, some did not: back to memory, which remembers which.
            self.move_in(p);
        }
        let pane = &mut self.panes[p];
        self.entries += 1;
        let (slot, _) = pane.push(key.clone(), acc);
        pane.fired |= fired;
        if !fired {
            pane.unfired.push(slot as u32);
        }
        let newest = self.newest.entry(key).or_insert((end, slot as u32));
        if newest.0 <= end {
            *newest = (end, slot as u32);
        }
    }
}

/// A window's end, start, whether it fired, its accumulators, and the slots of those that
/// had not fired (in a fired pane, after a restore).
type PaneCopy<K, A> = (Timestamp, Timestamp, bool, Vec<(K, A)>, Vec<u32>);

/// The panes at a checkpoint's barrier ([`Panes::snapshot`]).
pub(crate) struct PanesSnapshot<K, A> {
    memory: Vec<PaneCopy<K, A>>,
    /// The stored panes' windows and whether each fired, sorted.
    stored: Vec<(Timestamp, Timestamp, bool)>,
    view: Option<PaneStoreView<K, A>>,
}

impl<K, A> PanesSnapshot<K, A> {
    /// Every accumulator, with its window's end and start, and whether it fired.
    pub(crate) fn try_for_each(
        &self,
        mut f: impl FnMut(&K, Timestamp, Timestamp, bool, &A) -> crate::Result<()>,
    ) -> crate::Result<()> {
        for (end, start, fired, entries, unfired) in &self.memory {
            for (i, (k, acc)) in entries.iter().enumerate() {
                let fired = *fired && unfired.binary_search(&(i as u32)).is_err();
                f(k, *end, *start, fired, acc)?;
            }
        }
        if let Some(view) = &self.view {
            let stored = &self.stored;
            view.try_for_each(|end, start, k, acc| {
                let fired = stored
                    .binary_search_by(|w| (w.0, w.1).cmp(&(end, start)))
                    .is_ok_and(|i| stored[i].2);
                f(&k, end, start, fired, &acc)
            })?;
        }
        Ok(())
    }
}

/// The bytes of a hash map's table: its buckets (a power of two, 8/7 of its capacity from 8
/// up) of one entry and one control byte each, and a group of control bytes more.
#[cfg(test)]
pub(crate) fn map_bytes<K, V, S>(map: &std::collections::HashMap<K, V, S>) -> usize {
    let buckets = match map.capacity() {
        0 => return 0,
        c if c < 8 => c + 1,
        c => c / 7 * 8,
    };
    buckets * (std::mem::size_of::<(K, V)>() + 1) + 16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::window::TimeWindow;

    /// Adds 1 to `key`'s count in the window ending at `end` (a tumbling window of 10).
    fn add(panes: &mut Panes<u32, u64>, end: i64, key: u32) {
        *panes
            .get_or_insert(end, end - 10, &key, || 0)
            .expect("in memory")
            .0 += 1;
    }

    fn contents(panes: &Panes<u32, u64>) -> Vec<(i64, Vec<(u32, u64)>)> {
        panes
            .iter()
            .map(|p| {
                let mut e = p.entries.clone();
                e.sort();
                (p.end, e)
            })
            .collect()
    }

    #[test]
    fn rows_in_order_and_out_of_order_count_in_their_windows() {
        let mut panes = Panes::default();
        // In order: keys 1, 2 in window 10, then 20.
        for (end, key) in [(10, 1), (10, 2), (10, 1), (20, 1), (20, 2), (20, 2)] {
            add(&mut panes, end, key);
        }
        // Out of order: back to window 10 (key 2's newest is 20), a new window 15 between,
        // a key new to an old window, and the newest again.
        for (end, key) in [(10, 2), (15, 1), (10, 3), (20, 1), (10, 1)] {
            add(&mut panes, end, key);
        }
        assert_eq!(
            contents(&panes),
            vec![
                (10, vec![(1, 3), (2, 2), (3, 1)]),
                (15, vec![(1, 1)]),
                (20, vec![(1, 2), (2, 2)]),
            ]
        );
        assert!(panes.get(0).index.is_some(), "the old pane was indexed");
        assert!(
            panes.get(2).index.is_none(),
            "the newest pane needs no index"
        );
    }

    #[test]
    fn open_windows_take_at_most_1_3x_the_bytes_of_their_counts_in_a_hash_map() {
        // W4's shape (DESIGN.md): 1 s windows of 1 ms events over 1000 keys, each key once a
        // window; at a watermark every 200 ms of processing time thousands are open (here
        // 300). And a sparser one: 20 of the keys, each a few times, in 50 windows.
        for (windows, keys, per_key) in [(300i64, 1000i64, 1), (50, 20, 3)] {
            let mut panes: Panes<i64, u64> = Panes::default();
            let mut counts: std::collections::HashMap<(i64, TimeWindow), u64> =
                std::collections::HashMap::new();
            for w in 0..windows {
                let window = TimeWindow {
                    start: w * 1000,
                    end: (w + 1) * 1000,
                };
                for _ in 0..per_key {
                    for k in 0..keys {
                        *panes
                            .get_or_insert(window.end, window.start, &k, || 0)
                            .expect("in memory")
                            .0 += 1;
                        *counts.entry((k, window)).or_insert(0) += 1;
                    }
                }
            }
            let (ours, map) = (panes.heap_bytes(), map_bytes(&counts));
            assert!(
                ours * 10 <= map * 13,
                "{windows} windows of {keys} keys: the panes take {ours} bytes, a hash map \
                 of the same counts {map}"
            );
        }
    }

    #[test]
    fn the_queue_of_panes_keeps_positions_across_removals_and_compaction() {
        let mut q: Queue<u32> = Queue::default();
        for n in 1..=40 {
            q.insert(q.len(), n);
        }
        // The first 20 leave empty slots at the front (compacted on the way, once at least 16
        // and as many as the open ones).
        for n in 1..=20 {
            assert_eq!(q.remove(0), Some(n));
        }
        assert_eq!((q.len(), q[0], q.back()), (20, 21, Some(&40)));
        // A removal behind the front, and an insertion at the front, count from it.
        assert_eq!(q.remove(3), Some(24));
        q.insert(0, 7);
        assert_eq!(
            q.iter().copied().take(5).collect::<Vec<_>>(),
            [7, 21, 22, 23, 25]
        );
        assert_eq!(q.binary_search_by(|n| n.cmp(&25)), Ok(4));
        assert_eq!(q.get(q.len()), None);
        // Emptied: no newest item, and new ones start afresh.
        while q.remove(0).is_some() {}
        assert!(q.is_empty() && q.back().is_none() && q.items.is_empty());
        q.insert(0, 99);
        assert_eq!((q.len(), q.back()), (1, Some(&99)));
        assert_eq!(q.remove(1), None);
    }

    /// Emptied vectors are kept for as many new panes as were made between the last two
    /// drops: reused while windows come and go in step, given back after a burst.
    #[test]
    fn spare_vectors_follow_how_many_panes_are_made() {
        let mut panes: Panes<u32, u64> = Panes::default();
        // A burst: 100 windows open at once (the watermark held still), then all dropped.
        for end in (1..=100).map(|w| w * 10) {
            for key in 0..50 {
                add(&mut panes, end, key);
            }
        }
        while !panes.is_empty() {
            panes.remove(0);
        }
        panes.dropped();
        assert_eq!(panes.spare.len(), 100, "kept: as many were made");
        let burst = panes.heap_bytes();
        // Then a window at a time: each reuses a vector, and the rest go back.
        for end in (101..=110).map(|w| w * 10) {
            for key in 0..50 {
                add(&mut panes, end, key);
            }
            panes.remove(0);
            panes.dropped();
            assert_eq!(panes.spare.len(), SPARE_MIN);
        }
        assert!(
            panes.heap_bytes() * 3 < burst,
            "{} bytes after, {burst} after the burst",
            panes.heap_bytes()
        );
        assert!(panes.spare.iter().all(|v| v.is_empty()));
    }

    #[test]
    fn panes_that_end_together_keep_their_keys_apart() {
        // A restore with another window size: [0, 10) of the old size and [5, 10) of the new
        // one end together; a key's newest pane, known by its end, may be either.
        // Key 1 sits at another slot in each.
        let mut panes: Panes<u32, u64> = Panes::default();
        panes.restore(10, 0, false, 2, 7);
        panes.restore(10, 0, false, 1, 5);
        for (end, start, key) in [
            (10, 5, 1),
            (10, 5, 1),
            (10, 0, 1),
            (10, 5, 2),
            (10, 0, 2),
            (15, 10, 1),
            (10, 5, 1),
            (10, 0, 1),
            (10, 5, 3),
        ] {
            *panes
                .get_or_insert(end, start, &key, || 0)
                .expect("in memory")
                .0 += 1;
        }
        type Pane = (i64, i64, Vec<(u32, u64)>);
        let got: Vec<Pane> = panes
            .iter()
            .map(|p| {
                let mut e = p.entries.clone();
                e.sort();
                (p.end, p.start, e)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (10, 0, vec![(1, 7), (2, 8)]),
                (10, 5, vec![(1, 3), (2, 1), (3, 1)]),
                (15, 10, vec![(1, 1)]),
            ]
        );
    }

    #[test]
    fn two_inputs_apart_in_event_time_count_in_their_own_windows() {
        // As a stage at parallelism 2 sees its inputs: each in order, a batch of a few windows
        // at a time, the second 25 windows ahead; the oldest pane goes now and then (panes
        // shift under the hint of the last pane used).
        let mut panes = Panes::default();
        let mut model = std::collections::BTreeMap::new();
        let (mut a, mut b) = (10i64, 260i64);
        let mut gone = 0;
        while a <= 500 {
            for (end, n) in [(&mut a, 3), (&mut b, 4)] {
                for _ in 0..n {
                    for key in 0..5u32 {
                        add(&mut panes, *end, key);
                        *model.entry((*end, key)).or_insert(0u64) += 1;
                    }
                    *end += 10;
                }
            }
            if panes.len() > 1 {
                let (end, entries) = contents(&panes).remove(0);
                for (key, count) in entries {
                    assert_eq!(
                        model.remove(&(end, key)),
                        Some(count),
                        "window {end} key {key}"
                    );
                }
                panes.remove(0);
                gone += 1;
            }
        }
        assert!(gone > 5);
        for (end, entries) in contents(&panes) {
            for (key, count) in entries {
                assert_eq!(
                    model.remove(&(end, key)),
                    Some(count),
                    "window {end} key {key}"
                );
            }
        }
        assert!(model.is_empty(), "rows lost: {model:?}");
    }

    #[test]
    fn fired_panes_go_and_their_keys_start_afresh() {
        let mut panes = Panes::default();
        for end in (10..=100).step_by(10) {
            for key in 0..3 {
                add(&mut panes, end, key);
                add(&mut panes, end, key);
            }
            // The oldest window fires and goes as the next opens (a watermark per window).
            if panes.len() > 1 {
                assert_eq!(panes.get(0).entries.len(), 3);
                panes.remove(0);
            }
        }
        assert_eq!(contents(&panes), vec![(100, vec![(0, 2), (1, 2), (2, 2)])]);
        // A pane made again for a window that went (processing time, a restore) starts empty.
        add(&mut panes, 10, 0);
        assert_eq!(contents(&panes)[0], (10, vec![(0, 1)]));
        assert_eq!(panes.entries, 4);
    }

    #[test]
    fn entries_of_gone_panes_are_swept() {
        let mut panes = Panes::default();
        // 2000 keys each once, in windows that go at once: the newest map does not keep them.
        for key in 0..2000 {
            add(&mut panes, 10 * (key as i64 + 1), key);
            panes.remove(0);
        }
        assert!(panes.newest.len() <= 1024 + 1, "{}", panes.newest.len());
    }

    #[test]
    fn restored_accumulators_are_found() {
        let mut panes = Panes::default();
        panes.restore(20, 10, false, 7, 5);
        panes.restore(10, 0, true, 7, 2);
        panes.restore(10, 0, false, 8, 1);
        assert!(
            panes.iter().all(|p| p.index.is_none()),
            "a restore builds no index"
        );
        add(&mut panes, 10, 7);
        add(&mut panes, 20, 7);
        add(&mut panes, 20, 8);
        assert_eq!(
            contents(&panes),
            vec![(10, vec![(7, 3), (8, 1)]), (20, vec![(7, 6), (8, 1)])]
        );
        assert!(panes.get(0).fired && !panes.get(1).fired);
        // Key 8 had not fired where it was (another old subtask): it fires when due.
        assert_eq!(panes.get(0).unfired, vec![1]);
    }
}

#[cfg(all(test, feature = "disk"))]
mod disk_tests {
    use super::*;
    use crate::state::keyed::disk_tests::disk;

    type Contents = Vec<(i64, i64, bool, u32, u64)>;

    /// Every accumulator, as a checkpoint reads them: (end, start, fired, key, count), sorted.
    fn contents(panes: &Panes<u32, u64>) -> Contents {
        read(&panes.snapshot())
    }

    /// Every accumulator of a snapshot, sorted as [`contents`].
    fn read(snapshot: &PanesSnapshot<u32, u64>) -> Contents {
        let mut all = Vec::new();
        snapshot
            .try_for_each(|k, end, start, fired, acc| {
                all.push((end, start, fired, *k, *acc));
                Ok(())
            })
            .expect("store readable");
        all.sort();
        all
    }

    /// Adds 1 to `key`'s count in the tumbling window of 10 ending at `end`, in memory or in
    /// the store, as the window operator does.
    fn add(panes: &mut Panes<u32, u64>, end: i64, key: u32) {
        panes.update(end, end - 10, &key, || 0, |acc| *acc += 1);
    }

    /// Pane `i`'s accumulators, in memory or read from the store in chunks of 7.
    fn pane(panes: &mut Panes<u32, u64>, i: usize) -> Vec<(u32, u64)> {
        let mut all = if panes.get(i).is_stored() {
            let (mut cursor, mut all) = (Vec::new(), Vec::new());
            while panes.read_stored(i, &mut cursor, 7, &mut all) {}
            all
        } else {
            panes.get(i).entries.clone()
        };
        all.sort();
        all
    }

    #[test]
    fn panes_beyond_the_cache_move_to_the_store_and_keep_their_counts() {
        let (_dir, ctx) = disk(4096);
        let mut on_disk = Panes::default();
        on_disk.open(&ctx).expect("store opens");
        let mut memory = Panes::default();
        // 30 windows of 50 keys in order, and now and then a row for an old window.
        for end in (10..=300).step_by(10) {
            for key in 0..50 {
                for panes in [&mut on_disk, &mut memory] {
                    add(panes, end, key);
                    if key % 10 == 0 && end > 50 {
                        add(panes, end - 40, key + 1000);
                        add(panes, end - 40, key);
                    }
                }
            }
        }
        assert!(on_disk.check().is_ok());
        assert!(
            on_disk.entries <= on_disk.budget && on_disk.budget < 1000,
            "{} entries in memory, budget {}",
            on_disk.entries,
            on_disk.budget
        );
        assert!(on_disk.get(0).is_stored() && !on_disk.get(29).is_stored());
        assert_eq!(contents(&on_disk), contents(&memory));
        for i in [0, 5, 29] {
            assert_eq!(pane(&mut on_disk, i), pane(&mut memory, i), "pane {i}");
        }
        // A stored pane that goes leaves nothing in the store.
        for panes in [&mut on_disk, &mut memory] {
            panes.remove(0);
            panes.remove(0);
        }
        assert!(on_disk.check().is_ok());
        assert_eq!(contents(&on_disk), contents(&memory));
        assert_eq!(on_disk.stored + on_disk.entries, memory.entries);
    }

    #[test]
    fn a_pane_back_from_the_store_keeps_its_keys_found_after_a_sweep() {
        let (_dir, ctx) = disk(4096);
        let mut panes = Panes::default();
        panes.open(&ctx).expect("store opens");
        // An old window of 2000 keys, fired; then window 20 of 300 keys not fired in one old
        // subtask and one key fired in another: back to memory, partly fired.
        for key in 1000..3000u32 {
            panes.restore(10, 0, true, key, 1);
        }
        for key in 0..300u32 {
            panes.restore(20, 10, false, key, 1);
        }
        panes.restore(20, 10, true, 300, 1);
        assert!(panes.check().is_ok());
        let w = panes.len() - 1;
        assert!(!panes.get(w).is_stored() && panes.get(w).fired);
        // The old window goes: the map of newest panes is swept (it holds 2301 keys).
        panes.remove(0);
        assert!(panes.newest.len() <= 301, "{}", panes.newest.len());
        // Every key of window 20 is still found there, not added a second time.
        for key in 0..=300u32 {
            add(&mut panes, 20, key);
        }
        assert_eq!(panes.get(0).entries.len(), 301);
        assert!(panes.get(0).entries.iter().all(|&(_, n)| n == 2));
    }

    #[test]
    fn cleared_panes_leave_nothing_in_the_store_and_move_there_again() {
        let (_dir, ctx) = disk(4096);
        let mut panes = Panes::default();
        panes.open(&ctx).expect("store opens");
        let fill = |panes: &mut Panes<u32, u64>| {
            for end in (10..=200).step_by(10) {
                for key in 0..40 {
                    add(panes, end, key);
                }
            }
        };
        fill(&mut panes);
        assert!(panes.get(0).is_stored());
        // As a release does: a snapshot, then the clear; the snapshot still reads them all.
        let snapshot = panes.snapshot();
        let before = contents(&panes);
        panes.clear().expect("cleared");
        assert_eq!((panes.len(), panes.entries, panes.stored), (0, 0, 0));
        // Nothing left in the store (`contents` reads it only for panes marked stored).
        let left = panes.disk.as_deref().expect("on disk").snapshot().len();
        assert_eq!(left, 0, "accumulators left in the store");
        assert_eq!(read(&snapshot), before);
        // Panes made again (adopted ones, say) move to the store as before, with the same
        // counts: nothing of the cleared ones is left to add to them.
        fill(&mut panes);
        assert!(panes.get(0).is_stored());
        assert_eq!(contents(&panes), before);
        assert!(panes.check().is_ok());
    }

    #[test]
    fn a_checkpoint_of_stored_panes_holds_them_as_at_its_barrier() {
        let (_dir, ctx) = disk(4096);
        let mut panes = Panes::default();
        panes.open(&ctx).expect("store opens");
        for end in (10..=200).step_by(10) {
            for key in 0..40 {
                add(&mut panes, end, key);
            }
        }
        assert!(panes.get(0).is_stored());
        let snapshot = panes.snapshot();
        let before = contents(&panes);
        // Changes after the barrier: a stored pane written and one gone.
        add(&mut panes, 20, 7);
        panes.remove(0);
        assert_eq!(read(&snapshot), before);
        assert_ne!(contents(&panes), before);
    }

    #[test]
    fn a_restore_into_stored_panes_keeps_which_keys_fired() {
        let (_dir, ctx) = disk(4096);
        let mut panes = Panes::default();
        panes.open(&ctx).expect("store opens");
        // A checkpoint of two old subtasks: window 10 fired in one (keys 0..200) and not in
        // the other (keys 200..400); the others fired in neither.
        for key in 0..400u32 {
            panes.restore(10, 0, key < 200, key, 1);
        }
        for end in (20..=100).step_by(10) {
            for key in 0..100u32 {
                panes.restore(end, end - 10, false, key, 2);
            }
        }
        assert!(panes.check().is_ok());
        let first = panes.get(0);
        assert!(
            first.fired && !first.is_stored(),
            "a partly fired pane stays in memory"
        );
        let unfired: Vec<u32> = first
            .unfired
            .iter()
            .map(|&i| first.entries[i as usize].0)
            .collect();
        assert_eq!(unfired.len(), 200);
        assert!(unfired.iter().all(|&k| k >= 200));
        assert!(
            (1..panes.len()).any(|i| panes.get(i).is_stored()),
            "the restore moved panes to the store"
        );
        let all = contents(&panes);
        assert_eq!(all.len(), 400 + 9 * 100);
        assert!(all
            .iter()
            .all(|&(end, _, fired, key, _)| fired == (end == 10 && key < 200)));
    }
}
