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
//! The panes are a `VecDeque` sorted by `(end, start)`: a row's window is nearly always the
//! last one, and windows fire from the front.

use crate::hash::FlowHashMap;
use crate::time::Timestamp;
use std::collections::VecDeque;
use std::hash::Hash;

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

    fn push(&mut self, key: K, acc: A) -> usize {
        let slot = self.entries.len();
        if let Some(index) = &mut self.index {
            index.insert(key.clone(), slot as u32);
        }
        self.entries.push((key, acc));
        slot
    }
}

/// The open panes of a window operator.
pub(crate) struct Panes<K, A> {
    /// Sorted by `(end, start)`.
    panes: VecDeque<Pane<K, A>>,
    /// Each key's newest pane `(end, start)` and its slot there. An entry may point to a pane
    /// that is gone (the oldest go first): it is checked before use and swept now and then.
    newest: FlowHashMap<K, (Timestamp, Timestamp, u32)>,
    /// Emptied entry vectors, reused with their capacity.
    spare: Vec<Vec<(K, A)>>,
    /// The entries of all panes.
    entries: usize,
}

impl<K, A> Default for Panes<K, A> {
    fn default() -> Self {
        Panes {
            panes: VecDeque::new(),
            newest: FlowHashMap::default(),
            spare: Vec::new(),
            entries: 0,
        }
    }
}

impl<K: Hash + Eq + Clone, A> Panes<K, A> {
    /// The index of the pane `[start, end)`, made (empty) if there is none.
    #[inline]
    fn pane(&mut self, end: Timestamp, start: Timestamp) -> usize {
        let n = self.panes.len();
        if let Some(last) = self.panes.back() {
            if (last.end, last.start) == (end, start) {
                return n - 1;
            }
        }
        match self
            .panes
            .binary_search_by(|p| (p.end, p.start).cmp(&(end, start)))
        {
            Ok(i) => i,
            Err(i) => {
                let entries = self.spare.pop().unwrap_or_default();
                self.panes.insert(
                    i,
                    Pane {
                        end,
                        start,
                        fired: false,
                        entries,
                        index: None,
                        unfired: Vec::new(),
                    },
                );
                i
            }
        }
    }

    /// `key`'s accumulator in the window `[start, end)`, made with `create` if it has none
    /// there; with whether the window already fired.
    #[inline]
    pub(crate) fn get_or_insert(
        &mut self,
        end: Timestamp,
        start: Timestamp,
        key: &K,
        create: impl FnOnce() -> A,
    ) -> (&mut A, bool) {
        let p = self.pane(end, start);
        let pane = &mut self.panes[p];
        let newest = self.newest.get_mut(key);
        let slot = match newest.as_deref() {
            // The key's newest pane is this one.
            Some(&(e, s, slot))
                if (e, s) == (end, start)
                    && pane
                        .entries
                        .get(slot as usize)
                        .is_some_and(|(k, _)| k == key) =>
            {
                Some(slot as usize)
            }
            // It is in a newer pane (or this pane's slot is stale): it may be here too.
            Some(&(e, s, _)) if (e, s) >= (end, start) => pane.find(key),
            // Its newest pane is older, or it has none: it is not here.
            _ => None,
        };
        let slot = match slot {
            Some(slot) => slot,
            None => {
                let slot = pane.push(key.clone(), create());
                self.entries += 1;
                match newest {
                    Some(n) if (n.0, n.1) <= (end, start) => *n = (end, start, slot as u32),
                    Some(_) => {}
                    None => {
                        self.newest.insert(key.clone(), (end, start, slot as u32));
                    }
                }
                slot
            }
        };
        let pane = &mut self.panes[p];
        (&mut pane.entries[slot].1, pane.fired)
    }

    /// The number of open panes.
    pub(crate) fn len(&self) -> usize {
        self.panes.len()
    }

    /// Pane `i` (0: the first to fire).
    pub(crate) fn get(&self, i: usize) -> &Pane<K, A> {
        &self.panes[i]
    }

    /// Pane `i`, to mark it fired or take its entries out while emitting them.
    pub(crate) fn get_mut(&mut self, i: usize) -> &mut Pane<K, A> {
        &mut self.panes[i]
    }

    /// Every pane, in firing order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Pane<K, A>> {
        self.panes.iter()
    }

    /// Drops pane `i` and its accumulators (its vector is kept for the next pane).
    pub(crate) fn remove(&mut self, i: usize) {
        let Some(mut pane) = self.panes.remove(i) else {
            return;
        };
        self.entries -= pane.entries.len();
        pane.entries.clear();
        pane.unfired.clear();
        self.spare.push(pane.entries);
        // Entries pointing to gone panes: swept when they outnumber the live ones.
        if self.newest.len() > 2 * self.entries + 1024 {
            let panes = &self.panes;
            self.newest.retain(|k, &mut (end, start, slot)| {
                panes
                    .binary_search_by(|p| (p.end, p.start).cmp(&(end, start)))
                    .is_ok_and(|i| {
                        panes[i]
                            .entries
                            .get(slot as usize)
                            .is_some_and(|(key, _)| key == k)
                    })
            });
        }
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
        let p = self.pane(end, start);
        let pane = &mut self.panes[p];
        self.entries += 1;
        let slot = pane.push(key.clone(), acc);
        pane.fired |= fired;
        if !fired {
            pane.unfired.push(slot as u32);
        }
        let newest = self.newest.entry(key).or_insert((end, start, slot as u32));
        if (newest.0, newest.1) <= (end, start) {
            *newest = (end, start, slot as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adds 1 to `key`'s count in the window ending at `end` (a tumbling window of 10).
    fn add(panes: &mut Panes<u32, u64>, end: i64, key: u32) {
        *panes.get_or_insert(end, end - 10, &key, || 0).0 += 1;
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
