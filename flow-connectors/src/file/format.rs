//! How a [`FileSource`](super::FileSource) turns the lines of a file into rows.

use crate::format::{Csv, FormatError, Json, Raw, Utf8};
use serde::de::DeserializeOwned;

/// A format of line-oriented files (Flink's `StreamFormat`): every line is one record.
///
/// | format | row | a line is | blank lines |
/// |---|---|---|---|
/// | [`Utf8`] (`FileSource::text_lines`) | `String` | the text (Flink's `TextLineInputFormat`) | rows (`""`) |
/// | [`Raw`] | `Vec<u8>` | the bytes | rows |
/// | [`Json<T>`] | `T` | one JSON value (JSON lines) | skipped |
/// | [`Csv<T>`] | `T` | one CSV record, optionally after a header line | skipped |
///
/// The line break (`\n` or `\r\n`) is not part of the line. A reader owns its own copy of the
/// format, so a format may keep per-file state (the header of the file it reads).
pub trait LineFormat: Clone + Send + 'static {
    /// The rows it reads.
    type Row: Send + 'static;
    /// Whether blank lines are skipped rather than read as records.
    const SKIPS_BLANK_LINES: bool;
    /// The format's name in errors and logs.
    fn name(&self) -> &'static str;
    /// Whether the first line of every file is a header, not a record.
    fn has_header(&self) -> bool {
        false
    }
    /// The header line of the file whose lines follow (only when [`LineFormat::has_header`]).
    ///
    /// # Errors
    /// The header cannot be read: the file fails as a whole.
    fn header(&mut self, line: &[u8]) -> Result<(), FormatError> {
        let _ = line;
        Ok(())
    }
    /// Reads one line as a row.
    ///
    /// # Errors
    /// The line is not a valid record: the source's bad-record policy decides.
    fn decode(&mut self, line: &[u8]) -> Result<Self::Row, FormatError>;
}

impl LineFormat for Utf8 {
    type Row = String;
    const SKIPS_BLANK_LINES: bool = false;
    fn name(&self) -> &'static str {
        "text"
    }
    #[inline]
    fn decode(&mut self, line: &[u8]) -> Result<String, FormatError> {
        match std::str::from_utf8(line) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(FormatError::new("text", format!("invalid UTF-8: {e}"))),
        }
    }
}

impl LineFormat for Raw {
    type Row = Vec<u8>;
    const SKIPS_BLANK_LINES: bool = false;
    fn name(&self) -> &'static str {
        "raw"
    }
    #[inline]
    fn decode(&mut self, line: &[u8]) -> Result<Vec<u8>, FormatError> {
        Ok(line.to_vec())
    }
}

impl<T: DeserializeOwned + Send + 'static> LineFormat for Json<T> {
    type Row = T;
    const SKIPS_BLANK_LINES: bool = true;
    fn name(&self) -> &'static str {
        "json"
    }
    #[inline]
    fn decode(&mut self, line: &[u8]) -> Result<T, FormatError> {
        crate::format::Decode::decode(self, line)
    }
}

impl<T: DeserializeOwned + Send + 'static> LineFormat for crate::format::JsonColumns<T> {
    type Row = T;
    const SKIPS_BLANK_LINES: bool = true;
    fn name(&self) -> &'static str {
        "json"
    }
    #[inline]
    fn decode(&mut self, line: &[u8]) -> Result<T, FormatError> {
        crate::format::Decode::decode(self, line)
    }
}

impl<T: DeserializeOwned + Send + 'static> LineFormat for Csv<T> {
    type Row = T;
    const SKIPS_BLANK_LINES: bool = true;
    fn name(&self) -> &'static str {
        "csv"
    }
    fn has_header(&self) -> bool {
        self.has_header
    }
    fn header(&mut self, line: &[u8]) -> Result<(), FormatError> {
        let header = self.parse(line)?;
        self.names = Some(header);
        Ok(())
    }
    #[inline]
    fn decode(&mut self, line: &[u8]) -> Result<T, FormatError> {
        self.read(line)
    }
}
