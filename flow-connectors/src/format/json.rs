//! JSON: one serde value per record, with serde_json.

use super::{Decode, Encode, Format, FormatError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::marker::PhantomData;

/// Rows of type `T` as JSON: a `#[derive(Row)]` struct is one JSON object, its fields by name.
///
/// Reading is strict about types and required fields (`{"id": "7"}` for an `i32` field is a
/// bad record) and ignores unknown fields, as Flink's JSON format does by default.
///
/// # Examples
/// ```
/// use flow_connectors::format::{Decode, Encode, Json};
///
/// let f = Json::<(i32, String)>::new();
/// let mut buf = Vec::new();
/// f.encode(&(1, "a".to_string()), &mut buf).unwrap();
/// assert_eq!(buf, br#"[1,"a"]"#);
/// assert_eq!(f.decode(&buf).unwrap(), (1, "a".to_string()));
/// assert!(f.decode(b"[1,").is_err());
/// ```
pub struct Json<T> {
    row: PhantomData<fn() -> T>,
}

impl<T> Json<T> {
    /// The JSON format for rows of type `T`.
    pub fn new() -> Self {
        Json { row: PhantomData }
    }
}

impl<T> Default for Json<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for Json<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Json<T> {}

impl<T> fmt::Debug for Json<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Json<{}>", std::any::type_name::<T>())
    }
}

impl<T: Send + 'static> Format for Json<T> {
    type Row = T;
    fn name(&self) -> &'static str {
        "json"
    }
}

impl<T: DeserializeOwned + Send + 'static> Decode for Json<T> {
    #[inline]
    fn decode(&self, bytes: &[u8]) -> Result<T, FormatError> {
        serde_json::from_slice(bytes).map_err(|e| FormatError::new("json", e.to_string()))
    }
}

impl<T: Serialize + Send + 'static> Encode for Json<T> {
    #[inline]
    fn encode(&self, row: &T, out: &mut Vec<u8>) -> Result<(), FormatError> {
        serde_json::to_writer(out, row).map_err(|e| FormatError::new("json", e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Person {
        id: i32,
        name: String,
    }

    #[test]
    fn a_struct_is_one_object() {
        let f = Json::<Person>::new();
        let mut out = Vec::new();
        let p = Person {
            id: 7,
            name: "ann".into(),
        };
        f.encode(&p, &mut out).unwrap();
        assert_eq!(out, br#"{"id":7,"name":"ann"}"#);
        assert_eq!(f.decode(&out).unwrap(), p);
        // Field order and unknown fields do not matter.
        let p2 = f.decode(br#"{"name":"bo","extra":[1],"id":-1}"#).unwrap();
        assert_eq!(
            p2,
            Person {
                id: -1,
                name: "bo".into()
            }
        );
    }

    #[test]
    fn bad_records_are_errors_with_a_reason() {
        let f = Json::<Person>::new();
        let cases: [(&[u8], &str); 5] = [
            (br#"{"id":1,"#, "EOF while parsing"),
            (
                br#"{"id":"1","name":"a"}"#,
                "invalid type: string \"1\", expected i32",
            ),
            (br#"{"id":1}"#, "missing field `name`"),
            (b"\xff\xfe", "expected value"),
            (b"", "EOF while parsing"),
        ];
        for (input, expected) in cases {
            let e = f.decode(input).unwrap_err();
            assert_eq!(e.format(), "json");
            assert!(e.message().contains(expected), "{input:?}: {e}");
            assert!(e.to_string().starts_with("json: "));
        }
        let e = f.decode(br#"{"id":3000000000,"name":"a"}"#).unwrap_err();
        assert!(e.message().contains("expected i32"), "{e}");
    }
}
