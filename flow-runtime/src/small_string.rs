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
#[derive(Clone)]
pub struct SmallString(Repr);

#[derive(Clone)]
enum Repr {
    /// `bytes[..len]` is valid UTF-8 (copied from a `str`) and every byte after it is zero;
    /// a text is inline exactly when it has [`INLINE`] bytes or fewer (`PartialEq` compares
    /// whole buffers and takes an inline and a heap string for different).
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
    Heap(Box<str>),
}

const _: () = assert!(std::mem::size_of::<SmallString>() == 24);

impl SmallString {
    /// The empty string.
    pub const fn new() -> Self {
        SmallString(Repr::Inline {
            len: 0,
            bytes: [0; INLINE],
        })
    }

    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, bytes } => {
                let bytes = &bytes[..*len as usize];
                // SAFETY: an inline string's first `len` bytes were copied from a `str`
                // (`From<&str>`), so they are valid UTF-8; nothing else writes them.
                unsafe { std::str::from_utf8_unchecked(bytes) }
            }
            Repr::Heap(s) => s,
        }
    }

    /// Whether it is kept inline (22 bytes or fewer).
    #[inline]
    pub fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline { .. })
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
            let mut bytes = [0; INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            SmallString(Repr::Inline {
                len: s.len() as u8,
                bytes,
            })
        } else {
            SmallString(Repr::Heap(s.into()))
        }
    }
}

impl From<String> for SmallString {
    /// Inline when short (the `String`'s buffer is freed), else it keeps the `String`'s buffer.
    fn from(s: String) -> Self {
        if s.len() <= INLINE {
            SmallString::from(s.as_str())
        } else {
            SmallString(Repr::Heap(s.into_boxed_str()))
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
        match s.0 {
            Repr::Heap(b) => b.into_string(),
            Repr::Inline { .. } => s.as_str().to_string(),
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
    /// Two inline strings compare as their fixed-size buffers, zero past the text (no
    /// `memcmp` call of a variable length: a key compare per row in a word count); a text is
    /// inline exactly when it is 22 bytes or fewer, so an inline and a heap string differ.
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Repr::Inline { len: a, bytes: x }, Repr::Inline { len: b, bytes: y }) => {
                a == b && x == y
            }
            (Repr::Heap(a), Repr::Heap(b)) => a == b,
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
