//! [`SmallString`]: a string for row fields that keeps up to 22 bytes inline, so that short
//! strings (words, names, codes, ids) are made, cloned, hashed and dropped without touching
//! the allocator.
//!
//! A row that owns a `String` allocates when it is made and again at every clone (a `key_by`
//! that returns the word, a `reduce` that keeps one copy in state and emits the other), and at
//! parallelism above 1 the thread that frees it is often not the one that allocated it. A
//! `SmallString` of up to 22 bytes is 24 bytes copied; a longer one is a `Box<str>`.
//!
//! It behaves as a `str` wherever it matters to a job: it derefs to `str`, compares, orders
//! and hashes as its text (so routing and keyed state treat it as the same `String` would:
//! switching a row field between the two keeps its key groups), prints as its text, is
//! serialized as a string (a checkpoint's state of one reads as the other), and converts from
//! and into `String` and `&str`.

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::{Serialize, Serializer};
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::mem::MaybeUninit;
use std::num::NonZeroU64;
use std::ops::Deref;

/// The longest string kept inline.
const INLINE: usize = 22;

/// A string that keeps up to 22 bytes inline (no allocation) and longer ones on the heap; 24
/// bytes, as a `String`.
///
/// # Examples
/// Word count whose words are not allocated:
/// ```
/// use flow_runtime::SmallString;
/// let word = SmallString::from("stream");
/// assert!(word.is_inline());
/// assert_eq!(word, "stream");
/// assert_eq!(word.len(), 6);
/// let mut counts = std::collections::HashMap::new();
/// *counts.entry(word.clone()).or_insert(0) += 1;
/// assert_eq!(counts.get("stream"), Some(&1)); // looked up by `&str`
/// ```
//
// Three words, laid out so that an inline string is made, cloned, moved and compared as
// those words (register moves, no `memcpy` of a variable length whose bytes are then read
// back, which stalled W2s's source loop on every word; and whole-word fields, which the
// compiler copies as words where a 23-byte array was split into 8-, 8-, 4- and 3-byte moves):
// the first 23 bytes are the text, zero after it, and the last is its length plus one; a heap
// string keeps its `Box<str>`'s pointer and length in the first two words and [`HEAP`] in the
// last byte.
#[repr(C, align(8))]
pub struct SmallString {
    /// Inline: the text's first 16 bytes (valid UTF-8, copied from a `str`), zero after it.
    /// Heap: the `Box<str>`'s data pointer, then its length (`usize`), then zeros (on 32-bit
    /// targets). `MaybeUninit`, not `u64`: a copy of a `u64` would drop the pointer's
    /// provenance.
    lo: [MaybeUninit<u64>; 2],
    /// The bytes 16 to 23 in memory order: inline, the rest of the text (zero after it), then
    /// the tag: the text's length plus one (1 to 23); heap, zeros, then [`HEAP`]. Never zero
    /// (the tag), so that an `Option<SmallString>` is 24 bytes too.
    hi: NonZeroU64,
}

/// The tag of a heap string.
const HEAP: u8 = u8::MAX;

const _: () = assert!(std::mem::size_of::<SmallString>() == 24);
const _: () = assert!(std::mem::size_of::<Option<SmallString>>() == 24);
const _: () = assert!(2 * std::mem::size_of::<usize>() <= 16);

// `Send` and `Sync` come from the fields: a heap string's `Box<str>` is owned by it alone, as
// a `String`'s buffer is.

impl SmallString {
    /// The empty string.
    pub const fn new() -> Self {
        SmallString::from_words([0, 0, 1 << 56])
    }

    /// The string whose bytes are `words` as little-endian words (the tag in the top byte of
    /// the last): each stored so that its bytes lie in memory in text order.
    #[inline(always)]
    const fn from_words(words: [u64; 3]) -> Self {
        let Some(hi) = NonZeroU64::new(u64::from_ne_bytes(words[2].to_le_bytes())) else {
            panic!("a SmallString's tag is never zero")
        };
        SmallString {
            lo: [
                MaybeUninit::new(u64::from_ne_bytes(words[0].to_le_bytes())),
                MaybeUninit::new(u64::from_ne_bytes(words[1].to_le_bytes())),
            ],
            hi,
        }
    }

    /// The tag: the last byte.
    #[inline(always)]
    fn tag(&self) -> u8 {
        self.hi.get().to_ne_bytes()[7]
    }

    /// An inline string of the text `bytes` (at most [`INLINE`] bytes), built in three
    /// words: the whole 8-byte chunks, then the rest read with at most two loads.
    #[inline(always)]
    fn inline(bytes: &[u8]) -> Self {
        let n = bytes.len();
        // Every caller checks the length first (so this costs nothing); a longer text would
        // break "inline exactly when 22 bytes or fewer", which `eq` relies on.
        assert!(n <= INLINE, "an inline string of {n} bytes");
        // The words the hashers read a text as: whole chunks, then the zero-padded rest.
        let mut words = [0u64; 3];
        let mut i = 0;
        crate::hash::words(bytes, false, |word| {
            words[i] = word;
            i += 1;
        });
        // The tag: the length plus one (1 to 23), so never zero. The first `n` bytes are the
        // text (valid UTF-8, from a `str` by the callers) and the others zero, as an inline
        // string's must be.
        words[2] |= (n as u64 + 1) << 56;
        SmallString::from_words(words)
    }

    /// A heap string that owns `text`.
    fn heap(text: Box<str>) -> Self {
        let len = text.len();
        let data = Box::into_raw(text) as *mut u8;
        let mut s = SmallString::from_words([0, 0, (HEAP as u64) << 56]);
        let words = s.lo.as_mut_ptr() as *mut u8;
        // SAFETY: `lo` is 8-aligned (first field of an `align(8)` struct) and holds a pointer
        // and a `usize` (asserted above); writing into `MaybeUninit` memory keeps the
        // pointer's provenance for `heap_parts`.
        unsafe {
            words.cast::<*mut u8>().write(data);
            words
                .add(std::mem::size_of::<usize>())
                .cast::<usize>()
                .write(len);
        }
        s
    }

    /// A heap string's pointer and length.
    #[inline]
    fn heap_parts(&self) -> (*mut u8, usize) {
        debug_assert!(!self.is_inline());
        let words = self.lo.as_ptr() as *const u8;
        // SAFETY: a heap string's pointer and length, written by `heap`.
        unsafe {
            (
                words.cast::<*mut u8>().read(),
                words
                    .add(std::mem::size_of::<usize>())
                    .cast::<usize>()
                    .read(),
            )
        }
    }

    /// A heap string's `Box<str>`, put back together.
    ///
    /// # Safety
    /// Called once per heap string, which is not used nor dropped after (the `Box` owns the
    /// text now).
    unsafe fn heap_box(&self) -> Box<str> {
        let (data, len) = self.heap_parts();
        // SAFETY: the `Box<str>` that `heap` took apart; the caller takes it back once.
        unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(data, len) as *mut str) }
    }

    /// An inline string's three words (all of its bytes, the tag in the last), native-endian.
    #[inline(always)]
    fn inline_words(&self) -> [u64; 3] {
        debug_assert!(self.is_inline());
        // SAFETY: every byte of an inline string is initialised (zero after the text) and none
        // is a pointer's.
        unsafe {
            [
                self.lo[0].assume_init(),
                self.lo[1].assume_init(),
                self.hi.get(),
            ]
        }
    }

    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        let (data, len) = match self.is_inline() {
            true => (self as *const Self as *const u8, (self.tag() - 1) as usize),
            false => {
                let (data, len) = self.heap_parts();
                (data as *const u8, len)
            }
        };
        // SAFETY: an inline string's first `len` bytes were copied from a `str` (they run on
        // from `lo` into `hi`, so the pointer is `self`'s, which covers all 24 bytes, not
        // `lo`'s), a heap string's are its `Box<str>`'s, alive as long as `self`: valid UTF-8
        // either way, and nothing writes them while `self` is borrowed.
        unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(data, len)) }
    }

    /// Whether it is kept inline (22 bytes or fewer).
    #[inline]
    pub fn is_inline(&self) -> bool {
        self.tag() != HEAP
    }
}

impl Drop for SmallString {
    #[inline]
    fn drop(&mut self) {
        if !self.is_inline() {
            // SAFETY: `self` is dropped, so its text is taken back once.
            drop(unsafe { self.heap_box() });
        }
    }
}

impl Clone for SmallString {
    /// An inline string is copied as its three words; a heap one clones its text.
    #[inline]
    fn clone(&self) -> Self {
        match self.is_inline() {
            // SAFETY: an inline string owns nothing outside its bytes, so its bitwise copy is
            // a string of its own.
            true => unsafe { std::ptr::read(self) },
            false => SmallString::heap(self.as_str().into()),
        }
    }
}

impl Default for SmallString {
    fn default() -> Self {
        SmallString::new()
    }
}

impl From<&str> for SmallString {
    #[inline]
    fn from(s: &str) -> Self {
        if s.len() <= INLINE {
            SmallString::inline(s.as_bytes())
        } else {
            SmallString::heap(s.into())
        }
    }
}

impl From<String> for SmallString {
    /// Inline when short (the `String`'s buffer is freed), else it keeps the `String`'s buffer.
    fn from(s: String) -> Self {
        if s.len() <= INLINE {
            SmallString::from(s.as_str())
        } else {
            SmallString::heap(s.into_boxed_str())
        }
    }
}

impl From<&String> for SmallString {
    fn from(s: &String) -> Self {
        SmallString::from(s.as_str())
    }
}

impl From<char> for SmallString {
    fn from(c: char) -> Self {
        SmallString::from(c.encode_utf8(&mut [0; 4]) as &str)
    }
}

impl From<SmallString> for String {
    fn from(s: SmallString) -> Self {
        match s.is_inline() {
            true => s.as_str().to_string(),
            false => {
                // SAFETY: `s` is forgotten right after, so its text is taken back once.
                let text = unsafe { s.heap_box() };
                std::mem::forget(s);
                text.into_string()
            }
        }
    }
}

impl std::str::FromStr for SmallString {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(SmallString::from(s))
    }
}

impl<'a> FromIterator<&'a str> for SmallString {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        let mut s = String::new();
        s.extend(iter);
        SmallString::from(s)
    }
}

impl Deref for SmallString {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SmallString {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for SmallString {
    fn as_ref(&self) -> &[u8] {
        self.as_str().as_bytes()
    }
}

impl Borrow<str> for SmallString {
    #[inline]
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for SmallString {
    /// Two inline strings compare as their three words (zero past the text, the length in the
    /// last: no `memcmp` call of a variable length, a key compare per row in a word count); a
    /// text is inline exactly when it is 22 bytes or fewer, so an inline and a heap string
    /// differ.
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        match (self.is_inline(), other.is_inline()) {
            (true, true) => self.inline_words() == other.inline_words(),
            (false, false) => self.as_str() == other.as_str(),
            _ => false,
        }
    }
}

impl Eq for SmallString {}

impl PartialEq<str> for SmallString {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SmallString {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for SmallString {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<SmallString> for str {
    fn eq(&self, other: &SmallString) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<SmallString> for &str {
    fn eq(&self, other: &SmallString) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<SmallString> for String {
    fn eq(&self, other: &SmallString) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialOrd for SmallString {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SmallString {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for SmallString {
    /// As its text (`str`'s hash): equal to a `String` of the same text's.
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Debug for SmallString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SmallString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Write for SmallString {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if s.is_empty() {
            return Ok(());
        }
        let mut text = String::with_capacity(self.len() + s.len());
        text.push_str(self.as_str());
        text.push_str(s);
        *self = SmallString::from(text);
        Ok(())
    }
}

impl Serialize for SmallString {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SmallString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl Visitor<'_> for Text {
            type Value = SmallString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SmallString, E> {
                Ok(SmallString::from(v))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<SmallString, E> {
                Ok(SmallString::from(v))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<SmallString, E> {
                std::str::from_utf8(v)
                    .map(SmallString::from)
                    .map_err(|_| E::invalid_value(de::Unexpected::Bytes(v), &self))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

impl crate::snapshot::StateSchema for SmallString {
    /// A string, as `String`'s: state saved with one restores into the other.
    const FINGERPRINT: u64 = <String as crate::snapshot::StateSchema>::FINGERPRINT;
}

impl crate::row::RowText for SmallString {
    #[inline]
    fn fmt_row(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn hash<T: Hash + ?Sized>(v: &T) -> u64 {
        let mut h = DefaultHasher::new();
        v.hash(&mut h);
        h.finish()
    }

    #[test]
    fn short_strings_are_inline_and_long_ones_on_the_heap() {
        for text in [
            "",
            "a",
            "stream",
            "é-ü-文字",
            "exactly twenty-two b",
            "twenty-two bytes long!",
        ] {
            let s = SmallString::from(text);
            assert_eq!(s.len() <= INLINE, s.is_inline(), "{text}");
            assert_eq!(s.as_str(), text);
            assert_eq!(s.clone(), text);
            assert_eq!(String::from(s.clone()), text);
            assert_eq!(SmallString::from(text.to_string()), s);
        }
        let long = "twenty-three bytes long";
        assert_eq!(long.len(), 23);
        let s = SmallString::from(long);
        assert!(!s.is_inline());
        assert_eq!(&*s, long);
        assert_eq!(s.clone(), SmallString::from(long.to_string()));
    }

    #[test]
    #[allow(clippy::cmp_owned)] // the three-word compare of two `SmallString`s is under test
    fn an_inline_string_is_its_text_zero_padded_and_its_length() {
        // Distinct bytes at every length, from a slice of a longer buffer (the bytes after
        // the slice must not leak in): the three words are the text, zeros, and the length
        // plus one in the last byte, whatever the byte order.
        let source: Vec<u8> = (1..=40).collect();
        let text = std::str::from_utf8(&source).unwrap();
        for n in 0..=INLINE {
            let s = SmallString::from(&text[..n]);
            let mut want = [0u8; 24];
            want[..n].copy_from_slice(&source[..n]);
            want[23] = n as u8 + 1;
            let want: Vec<u64> = want
                .chunks(8)
                .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
                .collect();
            assert_eq!(s.inline_words().to_vec(), want, "{n} bytes");
            assert_eq!(s.as_str(), &text[..n]);
            if n > 0 {
                assert_ne!(SmallString::from(&text[1..n + 1]), s, "{n} bytes, shifted");
            }
        }
        let (empty, abc) = (SmallString::new(), SmallString::from(&"abcXYZ"[..3]));
        assert!(empty == SmallString::default() && empty == SmallString::from(""));
        assert!(abc == SmallString::from(&"abcQRS"[..3]));
    }

    #[test]
    fn a_heap_string_is_owned_once() {
        // Clones own their own text, dropping one leaves the other intact, and `String::from`
        // takes the text over (glibc often, not always, aborts on a double free).
        let text = "a much longer word than inline, on the heap";
        let a = SmallString::from(text);
        let b = a.clone();
        assert!(!a.is_inline() && !b.is_inline());
        assert_ne!(a.as_ptr(), b.as_ptr(), "a clone has its own text");
        drop(a);
        assert_eq!(b, text);
        let mut c = b.clone();
        assert_eq!(String::from(b), text);
        std::fmt::Write::write_str(&mut c, "!").unwrap();
        assert_eq!(c, format!("{text}!"));
        let short: Option<SmallString> = Some("inline".into());
        assert_eq!(short.as_deref(), Some("inline"));
    }

    #[test]
    fn it_hashes_orders_and_compares_as_its_text() {
        let words = ["b", "a", "a much longer word than inline", "ab", ""];
        for w in words {
            assert_eq!(hash(&SmallString::from(w)), hash(w));
            assert_eq!(hash(&SmallString::from(w)), hash(&w.to_string()));
            assert_eq!(
                crate::hash::stable_hash(&SmallString::from(w)),
                crate::hash::stable_hash(&w.to_string()),
                "routes as a String"
            );
        }
        let mut small: Vec<SmallString> = words.iter().map(|&w| w.into()).collect();
        let mut text: Vec<&str> = words.to_vec();
        small.sort();
        text.sort();
        assert_eq!(small, text);
    }

    #[test]
    fn equal_texts_are_equal_however_made() {
        // Lengths around the inline limit, made by every constructor: equal exactly when the
        // texts are (the fast compare reads the whole inline buffer).
        let texts: Vec<String> = (0..26).map(|n| "x".repeat(n)).collect();
        for a in &texts {
            for b in &texts {
                let made = [
                    SmallString::from(a.as_str()),
                    SmallString::from(a.clone()),
                    a.parse().unwrap(),
                    a.chars()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .iter()
                        .map(|s| s.as_str())
                        .collect(),
                ];
                let others = [SmallString::from(b.as_str()), SmallString::from(b.clone())];
                for x in &made {
                    for y in &others {
                        assert_eq!(x == y, a == b, "{a:?} vs {b:?}");
                    }
                }
            }
        }
        assert_ne!(SmallString::from("ab"), SmallString::from("ac"));
        assert_ne!(SmallString::from("a"), SmallString::from("a\0"));
    }

    #[test]
    fn it_is_saved_as_a_string() {
        use bincode::Options;
        let options = bincode::DefaultOptions::new();
        for w in ["word", "a much longer word than inline"] {
            let bytes = options.serialize(&SmallString::from(w)).unwrap();
            assert_eq!(bytes, options.serialize(&w.to_string()).unwrap());
            let back: SmallString = options.deserialize(&bytes).unwrap();
            assert_eq!(back, w);
            let owned: String = options.deserialize(&bytes).unwrap();
            assert_eq!(owned, w);
        }
    }
}
