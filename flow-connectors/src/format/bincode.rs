//! bincode: compact binary rows, for flow-to-flow topics.

use super::{Decode, Encode, Format, FormatError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::marker::PhantomData;

/// Rows of type `T` in bincode 1's default encoding (little-endian, fixed-width integers,
/// length-prefixed strings and sequences). Compact and fast, but not self-describing: the
/// reader must use the same row type as the writer. Trailing bytes are a bad record.
///
/// # Examples
/// ```
/// use flow_connectors::format::{Bincode, Decode, Encode};
///
/// let f = Bincode::<(u16, String)>::new();
/// let mut buf = Vec::new();
/// f.encode(&(7, "a".to_string()), &mut buf).unwrap();
/// assert_eq!(buf, [7, 0, 1, 0, 0, 0, 0, 0, 0, 0, b'a']);
/// assert_eq!(f.decode(&buf).unwrap(), (7, "a".to_string()));
/// assert!(f.decode(&buf[..3]).is_err());
/// ```
pub struct Bincode<T> {
    row: PhantomData<fn() -> T>,
}

impl<T> Bincode<T> {
    /// The bincode format for rows of type `T`.
    pub fn new() -> Self {
        Bincode { row: PhantomData }
    }
}

impl<T> Default for Bincode<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for Bincode<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Bincode<T> {}

impl<T> fmt::Debug for Bincode<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bincode<{}>", std::any::type_name::<T>())
    }
}

impl<T: Send + 'static> Format for Bincode<T> {
    type Row = T;
    fn name(&self) -> &'static str {
        "bincode"
    }
}

impl<T: DeserializeOwned + Send + 'static> Decode for Bincode<T> {
    #[inline]
    fn decode(&self, bytes: &[u8]) -> Result<T, FormatError> {
        use ::bincode::Options;
        // The options of `bincode::deserialize`, but rejecting trailing bytes and bounding
        // allocations by the input's size, so a corrupt length prefix cannot exhaust memory.
        ::bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .reject_trailing_bytes()
            .with_limit(bytes.len() as u64)
            .deserialize(bytes)
            .map_err(|e| FormatError::new("bincode", e.to_string()))
    }
}

impl<T: Serialize + Send + 'static> Encode for Bincode<T> {
    #[inline]
    fn encode(&self, row: &T, out: &mut Vec<u8>) -> Result<(), FormatError> {
        ::bincode::serialize_into(out, row).map_err(|e| FormatError::new("bincode", e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Event {
        id: i64,
        tags: Vec<String>,
    }

    #[test]
    fn round_trips_and_rejects_corruption() {
        let f = Bincode::<Event>::new();
        let e = Event {
            id: -5,
            tags: vec!["x".into(), "yz".into()],
        };
        let mut out = Vec::new();
        f.encode(&e, &mut out).unwrap();
        assert_eq!(f.decode(&out).unwrap(), e);
        // Truncated, trailing bytes, an absurd length prefix: errors, not panics or huge
        // allocations.
        assert!(f.decode(&out[..out.len() - 1]).is_err());
        let mut longer = out.clone();
        longer.push(0);
        assert!(f.decode(&longer).is_err());
        let mut huge = out.clone();
        huge[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        let err = f.decode(&huge).unwrap_err();
        assert_eq!(err.format(), "bincode");
    }
}
