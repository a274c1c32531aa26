//! Raw bytes and UTF-8 text: records taken as they are.

use super::{Decode, Encode, Format, FormatError};

/// Records as their bytes, unchanged: rows of type `Vec<u8>`. Never a bad record.
///
/// # Examples
/// ```
/// use flow_connectors::format::{Decode, Raw};
///
/// assert_eq!(Raw.decode(b"\xff\x00").unwrap(), vec![0xff, 0]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Raw;

impl Format for Raw {
    type Row = Vec<u8>;
    fn name(&self) -> &'static str {
        "raw"
    }
}

impl Decode for Raw {
    #[inline]
    fn decode(&self, bytes: &[u8]) -> Result<Vec<u8>, FormatError> {
        Ok(bytes.to_vec())
    }
}

impl Encode for Raw {
    #[inline]
    fn encode(&self, row: &Vec<u8>, out: &mut Vec<u8>) -> Result<(), FormatError> {
        out.extend_from_slice(row);
        Ok(())
    }
}

/// Records as UTF-8 text: rows of type `String`. Bytes that are not UTF-8 are a bad record.
///
/// # Examples
/// ```
/// use flow_connectors::format::{Decode, Utf8};
///
/// assert_eq!(Utf8.decode("héllo".as_bytes()).unwrap(), "héllo");
/// let e = Utf8.decode(b"ab\xff").unwrap_err();
/// assert_eq!(e.to_string(), "utf8: invalid utf-8 sequence of 1 bytes from index 2");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Utf8;

impl Format for Utf8 {
    type Row = String;
    fn name(&self) -> &'static str {
        "utf8"
    }
}

impl Decode for Utf8 {
    #[inline]
    fn decode(&self, bytes: &[u8]) -> Result<String, FormatError> {
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(FormatError::new("utf8", e.to_string())),
        }
    }
}

impl Encode for Utf8 {
    #[inline]
    fn encode(&self, row: &String, out: &mut Vec<u8>) -> Result<(), FormatError> {
        out.extend_from_slice(row.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_round_trips_any_bytes() {
        let bytes: Vec<u8> = (0..=255).collect();
        let mut out = Vec::new();
        Raw.encode(&bytes, &mut out).unwrap();
        assert_eq!(out, bytes);
        assert_eq!(Raw.decode(&out).unwrap(), bytes);
        assert_eq!(Raw.decode(b"").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn utf8_rejects_invalid_text() {
        let mut out = Vec::new();
        Utf8.encode(&"ünïcode".to_string(), &mut out).unwrap();
        assert_eq!(Utf8.decode(&out).unwrap(), "ünïcode");
        let e = Utf8.decode(b"\xc3\x28").unwrap_err();
        assert_eq!(e.format(), "utf8");
        assert!(e.message().contains("index 0"), "{e}");
    }
}
