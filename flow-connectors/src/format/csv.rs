//! CSV: one record per line, fields into a serde row (the `csv` crate's deserializer).

use super::FormatError;
use serde::de::DeserializeOwned;
use std::fmt;
use std::marker::PhantomData;

/// Rows of type `T` as CSV records, one per line: a `#[derive(Row)]` struct takes the fields
/// in its field order, or by the names of a header line with [`Csv::has_header`].
///
/// Fields are split with the delimiter (`,` by default) and may be quoted (`"a, b"`, with `""`
/// for a quote inside); a quoted field cannot hold a line break (a record is one line).
/// Numbers, booleans and strings convert as the `csv` crate does; an empty field is `None`
/// for an `Option` field. A line with a field that does not convert, too few fields or an
/// unterminated quote is a bad record (the source's policy decides what happens to it).
///
/// # Examples
/// ```
/// use flow_connectors::file::LineFormat;
/// use flow_connectors::format::Csv;
///
/// let mut f = Csv::<(String, u32)>::new();
/// assert_eq!(f.decode(b"\"Smith, Ann\",42").unwrap(), ("Smith, Ann".to_string(), 42));
/// assert!(f.decode(b"Bo,forty").is_err());
/// ```
pub struct Csv<T> {
    pub(crate) has_header: bool,
    delimiter: u8,
    quote: u8,
    /// The header of the file being read, when it has one.
    pub(crate) names: Option<::csv::ByteRecord>,
    parser: csv_core::Reader,
    /// Scratch: the line with its terminator, the unquoted fields and their ends.
    line: Vec<u8>,
    fields: Vec<u8>,
    ends: Vec<usize>,
    record: ::csv::ByteRecord,
    row: PhantomData<fn() -> T>,
}

impl<T> Csv<T> {
    /// Comma-separated, `"`-quoted, no header.
    pub fn new() -> Self {
        Self::build(false, b',', b'"')
    }
    /// Whether the first line of each file is a header naming the fields: then a struct's
    /// fields are found by name, in any order (default: no header, fields in order).
    pub fn has_header(self, yes: bool) -> Self {
        Self::build(yes, self.delimiter, self.quote)
    }
    /// The field delimiter (default `,`).
    pub fn delimiter(self, delimiter: u8) -> Self {
        Self::build(self.has_header, delimiter, self.quote)
    }
    /// The quote character (default `"`).
    pub fn quote(self, quote: u8) -> Self {
        Self::build(self.has_header, self.delimiter, quote)
    }

    fn build(has_header: bool, delimiter: u8, quote: u8) -> Self {
        Csv {
            has_header,
            delimiter,
            quote,
            names: None,
            parser: Self::parser(delimiter, quote),
            line: Vec::new(),
            fields: Vec::new(),
            ends: Vec::new(),
            record: ::csv::ByteRecord::new(),
            row: PhantomData,
        }
    }

    fn parser(delimiter: u8, quote: u8) -> csv_core::Reader {
        // Only `\n` ends a record (a lone `\r` inside a line is data; `\r\n` was trimmed).
        csv_core::ReaderBuilder::new()
            .delimiter(delimiter)
            .quote(quote)
            .terminator(csv_core::Terminator::Any(b'\n'))
            .build()
    }

    /// Splits `line` into its fields.
    pub(crate) fn parse(&mut self, line: &[u8]) -> Result<::csv::ByteRecord, FormatError> {
        self.split(line)?;
        Ok(self.record.clone())
    }

    /// Splits `line` into `self.record`.
    fn split(&mut self, line: &[u8]) -> Result<(), FormatError> {
        self.line.clear();
        self.line.extend_from_slice(line);
        self.line.push(b'\n');
        // Unquoting never makes a field longer; a line has at most one field per byte, plus one.
        if self.fields.len() < self.line.len() {
            self.fields.resize(self.line.len(), 0);
        }
        if self.ends.len() < self.line.len() + 1 {
            self.ends.resize(self.line.len() + 1, 0);
        }
        let (result, consumed, _, n_ends) =
            self.parser
                .read_record(&self.line, &mut self.fields, &mut self.ends);
        if result != csv_core::ReadRecordResult::Record || consumed != self.line.len() {
            // An unterminated quote swallowed the line break: start afresh on the next line.
            self.parser = Self::parser(self.delimiter, self.quote);
            return Err(FormatError::new("csv", "unterminated quoted field"));
        }
        self.record.clear();
        let mut start = 0;
        for &end in &self.ends[..n_ends] {
            self.record.push_field(&self.fields[start..end]);
            start = end;
        }
        Ok(())
    }
}

impl<T: DeserializeOwned> Csv<T> {
    /// Reads one line (without its line break) as a row.
    pub(crate) fn read(&mut self, line: &[u8]) -> Result<T, FormatError> {
        self.split(line)?;
        self.record
            .deserialize(self.names.as_ref())
            .map_err(|e| FormatError::new("csv", deserialize_error(&e, self.names.as_ref())))
    }
}

/// What went wrong, with the field's position (from 1) and its header name when known; the
/// csv crate's own record and byte positions mean nothing for a single line.
fn deserialize_error(e: &::csv::Error, names: Option<&::csv::ByteRecord>) -> String {
    if let ::csv::ErrorKind::Deserialize { err, .. } = e.kind() {
        if let Some(i) = err.field() {
            let name = names
                .and_then(|n| n.get(i as usize))
                .map(|n| format!(" (`{}`)", String::from_utf8_lossy(n)))
                .unwrap_or_default();
            return format!("field {}{name}: {}", i + 1, err.kind());
        }
        return err.kind().to_string();
    }
    e.to_string()
}

impl<T> Default for Csv<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for Csv<T> {
    fn clone(&self) -> Self {
        let mut c = Self::build(self.has_header, self.delimiter, self.quote);
        c.names = self.names.clone();
        c
    }
}

impl<T> fmt::Debug for Csv<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Csv")
            .field("row", &std::any::type_name::<T>())
            .field("has_header", &self.has_header)
            .field("delimiter", &(self.delimiter as char))
            .field("quote", &(self.quote as char))
            .finish()
    }
}

/// Rows of type `T` written as CSV lines (the fields in order, quoted where needed, no line
/// break): what a SQL `filesystem` table with `'format' = 'csv'` writes.
///
/// # Examples
/// ```
/// use flow_connectors::format::{CsvLine, Encode};
///
/// let mut buf = Vec::new();
/// CsvLine::<(i32, String, Option<f64>)>::new().encode(&(1, "a, b".into(), None), &mut buf).unwrap();
/// assert_eq!(buf, b"1,\"a, b\",");
/// ```
pub struct CsvLine<T> {
    row: PhantomData<fn() -> T>,
}

impl<T> CsvLine<T> {
    /// Comma-separated, `"`-quoted.
    pub fn new() -> Self {
        CsvLine { row: PhantomData }
    }
}

impl<T> Default for CsvLine<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for CsvLine<T> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for CsvLine<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CsvLine<{}>", std::any::type_name::<T>())
    }
}

impl<T: Send + 'static> super::Format for CsvLine<T> {
    type Row = T;
    fn name(&self) -> &'static str {
        "csv"
    }
}

impl<T: serde::Serialize + Send + 'static> super::Encode for CsvLine<T> {
    fn encode(&self, row: &T, out: &mut Vec<u8>) -> Result<(), FormatError> {
        let err = |e: ::csv::Error| FormatError::new("csv", e.to_string());
        let mut w = ::csv::WriterBuilder::new()
            .has_headers(false)
            .terminator(::csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        w.serialize(row).map_err(err)?;
        let mut line = w
            .into_inner()
            .map_err(|e| FormatError::new("csv", e.to_string()))?;
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        out.extend_from_slice(&line);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::LineFormat;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Person {
        name: String,
        age: u32,
        city: Option<String>,
    }

    #[test]
    fn fields_in_order_or_by_header_name() {
        let mut f = Csv::<Person>::new();
        assert_eq!(
            f.decode(b"ann,41,").unwrap(),
            Person {
                name: "ann".into(),
                age: 41,
                city: None
            }
        );
        let mut f = Csv::<Person>::new().has_header(true).delimiter(b';');
        f.header(b"city;age;name").unwrap();
        assert_eq!(
            f.decode(b"Oslo;7;\"bo; jr\"").unwrap(),
            Person {
                name: "bo; jr".into(),
                age: 7,
                city: Some("Oslo".into())
            }
        );
    }

    #[test]
    fn bad_lines_say_which_field() {
        let mut f = Csv::<Person>::new().has_header(true);
        f.header(b"name,age,city").unwrap();
        let e = f.decode(b"ann,old,x").unwrap_err();
        assert_eq!(e.format(), "csv");
        assert!(e.message().starts_with("field 2 (`age`): "), "{e}");
        let e = f.decode(b"\"ann,4").unwrap_err();
        assert!(e.message().contains("unterminated"), "{e}");
        // The parser starts afresh after an unterminated quote.
        assert_eq!(f.decode(b"cy,3,z").unwrap().age, 3);
        // A lone carriage return is data, not the end of the record.
        assert_eq!(f.decode(b"d\re,4,z").unwrap().name, "d\re");
        assert!(f.decode(b"ann").is_err(), "too few fields");
    }
}
