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

/// Rows of a SQL table as JSON objects, its columns by name (Flink's `json` format of a table):
/// the row is a tuple of the columns, in order. Reading, a missing field or `null` is NULL
/// (a bad record for a NOT NULL column) and other fields are ignored; writing, every column is
/// a field.
///
/// # Examples
/// ```
/// use flow_connectors::format::{Decode, Encode, JsonColumns};
///
/// let f = JsonColumns::<(i32, Option<String>)>::new(&["id", "name"]);
/// assert_eq!(f.decode(br#"{"name": "a", "id": 1, "x": true}"#).unwrap(), (1, Some("a".to_string())));
/// assert_eq!(f.decode(br#"{"id": 2}"#).unwrap(), (2, None));
/// assert!(f.decode(br#"{"name": "a"}"#).is_err(), "id is NOT NULL");
/// let mut buf = Vec::new();
/// f.encode(&(3, None), &mut buf).unwrap();
/// assert_eq!(buf, br#"{"id":3,"name":null}"#);
/// let g = JsonColumns::<(i32, i32)>::new(&["z", "a"]);
/// buf.clear();
/// g.encode(&(1, 2), &mut buf).unwrap();
/// assert_eq!(buf, br#"{"z":1,"a":2}"#, "the columns in the table's order");
/// ```
pub struct JsonColumns<T> {
    names: std::sync::Arc<[String]>,
    row: PhantomData<fn() -> T>,
}

impl<T> JsonColumns<T> {
    /// The format of a table with the columns `names`, in the row's order.
    pub fn new(names: &[&str]) -> Self {
        JsonColumns {
            names: names.iter().map(|n| n.to_string()).collect(),
            row: PhantomData,
        }
    }
}

impl<T> Clone for JsonColumns<T> {
    fn clone(&self) -> Self {
        JsonColumns {
            names: self.names.clone(),
            row: PhantomData,
        }
    }
}

impl<T> fmt::Debug for JsonColumns<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonColumns")
            .field("names", &self.names)
            .finish()
    }
}

impl<T: Send + 'static> Format for JsonColumns<T> {
    type Row = T;
    fn name(&self) -> &'static str {
        "json"
    }
}

impl<T: DeserializeOwned + Send + 'static> Decode for JsonColumns<T> {
    fn decode(&self, bytes: &[u8]) -> Result<T, FormatError> {
        let err = |m: String| FormatError::new("json", m);
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| err(e.to_string()))?;
        let serde_json::Value::Object(mut fields) = value else {
            return Err(err("expected a JSON object".into()));
        };
        let columns: Vec<serde_json::Value> = self
            .names
            .iter()
            .map(|n| fields.remove(n).unwrap_or(serde_json::Value::Null))
            .collect();
        serde_json::from_value(serde_json::Value::Array(columns)).map_err(|e| {
            // serde names the tuple position: name the column.
            let m = e.to_string();
            match (0..self.names.len()).find(|i| m.contains(&format!("at index {i}"))) {
                Some(i) => err(format!("column `{}`: {m}", self.names[i])),
                None => err(m),
            }
        })
    }
}

impl<T: Serialize + Send + 'static> Encode for JsonColumns<T> {
    fn encode(&self, row: &T, out: &mut Vec<u8>) -> Result<(), FormatError> {
        let err = |m: String| FormatError::new("json", m);
        let value = serde_json::to_value(row).map_err(|e| err(e.to_string()))?;
        let serde_json::Value::Array(columns) = value else {
            return Err(err("a table's row is a tuple of its columns".into()));
        };
        // Written field by field: the columns in the table's order.
        out.push(b'{');
        for (i, (name, value)) in self.names.iter().zip(&columns).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, name).map_err(|e| err(e.to_string()))?;
            out.push(b':');
            serde_json::to_writer(&mut *out, value).map_err(|e| err(e.to_string()))?;
        }
        out.push(b'}');
        Ok(())
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
