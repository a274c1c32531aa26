//! Formats: how rows become bytes and bytes become rows (JSON, raw bytes, UTF-8 text, bincode).
//!
//! A format is a value handed to a connector (`KafkaSource::builder().format(Json::<Order>::new())`).
//! Its row type is an associated type, so the connector's row type is the format's and a
//! stream of the wrong rows does not compile. `#[derive(Row)]` structs are serde types, so
//! [`Json`] and [`Bincode`] take them as they are.
//!
//! | format | row type | bytes |
//! |---|---|---|
//! | [`Json<T>`] | any serde type `T` | one JSON value per record (an object for a struct) |
//! | [`Raw`] | `Vec<u8>` | the bytes as they are |
//! | [`Utf8`] | `String` | UTF-8 text; invalid UTF-8 is a bad record |
//! | [`Bincode<T>`] | any serde type `T` | bincode 1 (little-endian, fixed-width integers) |
//! | [`Csv<T>`] | any serde type `T` | one CSV record per line (files only: a [`LineFormat`](crate::file::LineFormat)) |
//!
//! Decoding never panics: malformed input, a wrong type or a missing field is a
//! [`FormatError`], which the source hands to its bad-record policy.

mod bincode;
mod csv;
mod json;
mod raw;

pub use self::bincode::Bincode;
pub use self::csv::{Csv, CsvLine};
pub use self::json::{Json, JsonColumns};
pub use self::raw::{Raw, Utf8};

use std::fmt;

/// A format: a value naming a row type and the bytes it is written as.
pub trait Format: Clone + Send + Sync + 'static {
    /// The rows this format reads or writes.
    type Row: Send + 'static;
    /// The format's name in errors and logs (`json`, `raw`, ...).
    fn name(&self) -> &'static str;
}

/// A format that reads rows from bytes.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot read rows",
    note = "a `Json<T>` or `Bincode<T>` row type must implement serde's `Deserialize`: add `#[derive(Row)]`"
)]
pub trait Decode: Format {
    /// Reads one row from one record's bytes.
    ///
    /// # Errors
    /// The bytes are not a valid encoding of a row: the error says why and where.
    fn decode(&self, bytes: &[u8]) -> Result<Self::Row, FormatError>;
}

/// A format that writes rows as bytes.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot write rows",
    note = "a `Json<T>` or `Bincode<T>` row type must implement serde's `Serialize`: add `#[derive(Row)]`"
)]
pub trait Encode: Format {
    /// Appends the encoding of `row` to `out` (which the caller clears between rows).
    ///
    /// # Errors
    /// The row cannot be encoded (a map with non-string keys in JSON, ...).
    fn encode(&self, row: &Self::Row, out: &mut Vec<u8>) -> Result<(), FormatError>;
}

/// Why bytes could not be read as a row, or a row written as bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatError {
    format: &'static str,
    message: String,
}

impl FormatError {
    /// An error of format `format`.
    pub fn new(format: &'static str, message: impl Into<String>) -> Self {
        FormatError {
            format,
            message: message.into(),
        }
    }
    /// The format's name.
    pub fn format(&self) -> &'static str {
        self.format
    }
    /// What went wrong, with the position in the input where the format knows it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.format, self.message)
    }
}

impl std::error::Error for FormatError {}

/// A row as the text line `format` writes (a SQL `filesystem` table's records).
///
/// # Panics
/// When the row cannot be encoded (the job fails, naming the operator and the error).
pub fn encode_line<F: Encode>(format: &F, row: &F::Row) -> String {
    let mut buf = Vec::new();
    if let Err(e) = format.encode(row, &mut buf) {
        panic!("a row could not be written: {e}");
    }
    String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}
