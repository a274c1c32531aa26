//! Hashing: a stable hash for routing keys between workers, and a fast hasher for state maps.
//!
//! `key_by` routes a row to `hash(key) % parallelism`. The hash must not change between runs,
//! machines or compiler versions, or keyed state restored from a checkpoint would land on the
//! wrong worker: std's `DefaultHasher` promises none of that. [`StableHasher`] fixes the seed,
//! the byte order and the width of `usize`.

use std::hash::{BuildHasher, Hash, Hasher};

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// FxHash's step, the one multiply per word both hashers are built on.
#[inline(always)]
fn fx_step(state: u64, word: u64) -> u64 {
    (state.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95)
}

/// Feeds `bytes` to `add` as little-endian 64-bit words; the last partial word is zero-padded
/// and, with `mark_len`, carries its length in its top byte (so `"a"` and `"a\0"` differ).
#[inline]
pub(crate) fn words(bytes: &[u8], mark_len: bool, mut add: impl FnMut(u64)) {
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        add(u64::from_le_bytes(c.try_into().expect("8-byte chunk")));
    }
    let rest = chunks.remainder().len();
    if rest > 0 {
        let len = if mark_len { (rest as u64) << 56 } else { 0 };
        add(tail_word(bytes, rest) ^ len);
    }
}

/// The last `rest` (1 to 7) bytes of `bytes` as a little-endian word, zero-padded: the value
/// of copying them into a zeroed `[u8; 8]`, read with at most two loads and no copy (the copy,
/// a `memcpy` call of a variable length read back as a word, stalled every short string key:
/// a quarter of W2's exchange).
#[inline(always)]
fn tail_word(bytes: &[u8], rest: usize) -> u64 {
    let n = bytes.len();
    debug_assert!(rest > 0 && rest == n % 8, "the tail of a slice");
    if n >= 8 {
        // The last 8 bytes, shifted down past those of the last whole word.
        let last = u64::from_le_bytes(bytes[n - 8..].try_into().expect("8 bytes"));
        return last >> (8 * (8 - rest));
    }
    // A short slice: two overlapping reads that cover it (the overlap ORs equal bytes).
    if rest >= 4 {
        let lo = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")) as u64;
        let hi = u32::from_le_bytes(bytes[n - 4..].try_into().expect("4 bytes")) as u64;
        lo | hi << (8 * (rest - 4))
    } else if rest >= 2 {
        let lo = u16::from_le_bytes(bytes[..2].try_into().expect("2 bytes")) as u64;
        let hi = u16::from_le_bytes(bytes[n - 2..].try_into().expect("2 bytes")) as u64;
        lo | hi << (8 * (rest - 2))
    } else {
        bytes[0] as u64
    }
}

/// The `Hasher` methods for integers of both hashers: each integer is one word.
macro_rules! integer_words {
    () => {
        #[inline(always)]
        fn write_u8(&mut self, i: u8) {
            self.add(i as u64);
        }
        #[inline(always)]
        fn write_u16(&mut self, i: u16) {
            self.add(i as u64);
        }
        #[inline(always)]
        fn write_u32(&mut self, i: u32) {
            self.add(i as u64);
        }
        #[inline(always)]
        fn write_u64(&mut self, i: u64) {
            self.add(i);
        }
        #[inline(always)]
        fn write_usize(&mut self, i: usize) {
            self.add(i as u64);
        }
    };
}

/// A seeded, endian- and width-independent 64-bit hasher (FxHash's multiply-rotate step with a
/// murmur3 finaliser, so low bits are usable for `% n`).
#[derive(Clone, Copy, Debug)]
pub struct StableHasher {
    state: u64,
}

impl Default for StableHasher {
    fn default() -> Self {
        StableHasher { state: SEED }
    }
}

impl StableHasher {
    #[inline(always)]
    fn add(&mut self, word: u64) {
        self.state = fx_step(self.state, word);
    }
}

impl Hasher for StableHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        words(bytes, true, |w| self.add(w));
    }
    integer_words!();
    #[inline(always)]
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }
    #[inline(always)]
    fn write_i64(&mut self, i: i64) {
        self.add(i as u64);
    }
    #[inline(always)]
    fn finish(&self) -> u64 {
        let mut h = self.state;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// Builds [`StableHasher`]s.
#[derive(Clone, Copy, Debug, Default)]
pub struct StableBuildHasher;

impl BuildHasher for StableBuildHasher {
    type Hasher = StableHasher;
    #[inline(always)]
    fn build_hasher(&self) -> StableHasher {
        StableHasher::default()
    }
}

/// The stable 64-bit hash of a key.
#[inline]
pub fn stable_hash<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut h = StableHasher::default();
    key.hash(&mut h);
    h.finish()
}

/// The worker (0-based) that owns `key` among `parallelism` workers.
#[inline]
pub fn key_to_subtask<K: Hash + ?Sized>(key: &K, parallelism: usize) -> usize {
    // By key group, as checkpoints split keyed state: a job restored at another parallelism
    // finds each key's state where its rows go. A multiply and a shift per row, no division.
    let group = crate::snapshot::key_group(stable_hash(key));
    crate::snapshot::subtask_of_group(group, parallelism)
}

/// The hasher of keyed-state maps: FxHash's multiply-rotate step, finished with a rotation so
/// that hashbrown's bucket index (low bits) and tag (top 7 bits) both come from well-mixed
/// bits (rustc-hash 2's choice).
///
/// It runs once per row on every keyed operator, so it is one multiply per word, not
/// [`StableHasher`]'s three: a state map needs no stability, since routing and checkpoint key
/// groups use [`stable_hash`] and the map is never iterated in an order anyone relies on.
#[derive(Clone, Copy, Debug, Default)]
pub struct StateHasher {
    state: u64,
}

impl StateHasher {
    #[inline(always)]
    fn add(&mut self, word: u64) {
        self.state = fx_step(self.state, word);
    }
}

impl Hasher for StateHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        words(bytes, false, |w| self.add(w));
    }
    integer_words!();
    #[inline(always)]
    fn finish(&self) -> u64 {
        self.state.rotate_left(26)
    }
}

/// Builds [`StateHasher`]s; the hasher of every keyed-state map.
#[derive(Clone, Copy, Debug, Default)]
pub struct StateBuildHasher;

impl BuildHasher for StateBuildHasher {
    type Hasher = StateHasher;
    #[inline(always)]
    fn build_hasher(&self) -> StateHasher {
        StateHasher::default()
    }
}

/// A `HashMap` with the state hasher: keyed state and `MapState`.
pub type FlowHashMap<K, V> = std::collections::HashMap<K, V, StateBuildHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_independent_of_the_key_s_container() {
        assert_eq!(stable_hash(&0i64), stable_hash(&0u64));
        assert_eq!(stable_hash("aaa"), stable_hash(&String::from("aaa")));
    }

    #[test]
    fn hash_and_routing_are_pinned() {
        // If these change, keys move to other workers between versions, and keyed state
        // restored from a checkpoint would land on the wrong one.
        assert_eq!(stable_hash(&42i64), 17805546222819005142);
        assert_eq!(stable_hash("aaa"), 7734505599875226699);
        let routed: Vec<usize> = (0..8i64).map(|k| key_to_subtask(&k, 4)).collect();
        assert_eq!(routed, [3, 3, 1, 0, 0, 0, 3, 2]);
        // Strings of 1 to 24 bytes (every length of a last partial word, after 0 to 2 whole
        // words), as computed before the partial word was read without a copy (ad26943).
        let text = "abcdefghijklmnopqrstuvwx";
        let hashes: Vec<u64> = (1..=24).map(|n| stable_hash(&text[..n])).collect();
        assert_eq!(
            hashes,
            [
                8840491949981588021,
                6674514439250914185,
                13223131193376144321,
                6539519812026847660,
                6104430966068543284,
                812525617123401011,
                2589181427489456947,
                6359405296523264533,
                17022389247507857108,
                6194582913961455982,
                5234627234257747464,
                10466175180679260612,
                14576370177553183670,
                7138157882300120169,
                15405741157568088427,
                277469001817672869,
                8251213439310752615,
                5614915898771766935,
                13701057678609949,
                1391326427477182476,
                5579682262736932769,
                524546019081771697,
                1060650376380515520,
                2785241243171496538,
            ]
        );
    }

    #[test]
    fn the_last_partial_word_is_the_zero_padded_bytes() {
        // What `words` computed with a copy into a zeroed buffer, for every length of tail
        // after 0 to 4 whole words: routing and checkpoint key groups depend on it.
        let bytes: Vec<u8> = (0..40u32).map(|i| (i * 37 + 11) as u8 | 0x80).collect();
        for n in 1..bytes.len() {
            let rest = n % 8;
            if rest == 0 {
                continue;
            }
            let mut buf = [0u8; 8];
            buf[..rest].copy_from_slice(&bytes[n - rest..n]);
            assert_eq!(
                tail_word(&bytes[..n], rest),
                u64::from_le_bytes(buf),
                "length {n}"
            );
        }
    }

    #[test]
    fn routing_spreads_keys() {
        let mut counts = [0usize; 4];
        for k in 0..10_000i64 {
            counts[key_to_subtask(&k, 4)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (2_000..3_000).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn state_hash_spreads_keys_with_equal_low_bits() {
        // Keys that differ only in high bits must still reach different buckets (low bits of
        // the hash) and tags (top 7 bits), or a map of such keys degrades to a list.
        let hash = |k: i64| StateBuildHasher.hash_one(k << 20);
        let buckets: std::collections::HashSet<u64> = (0..1024).map(|k| hash(k) & 1023).collect();
        let tags: std::collections::HashSet<u64> = (0..1024).map(|k| hash(k) >> 57).collect();
        assert!(buckets.len() > 500, "{} buckets", buckets.len());
        assert!(tags.len() > 100, "{} tags", tags.len());
    }
}
