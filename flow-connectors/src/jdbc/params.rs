//! Statement parameters: the typed binder's [`Params`], and the [`Value`]s a row's fields
//! become when the statement is derived from a `#[derive(Row)]` struct.

use serde::ser::{self, Serialize};
use std::error::Error as StdError;
use std::fmt;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

/// The parameters `$1`, `$2`, ... of one row's statement, in order (Flink's
/// `JdbcStatementBuilder` fills a `PreparedStatement` the same way).
///
/// Values are borrowed from the row: `p.add(&row.id)`. Any `ToSql` type of `tokio-postgres`
/// binds (`i16`/`i32`/`i64` for `SMALLINT`/`INT`/`BIGINT`, `f32`/`f64`, `String`/`&str` for
/// text, `bool`, `Vec<u8>` for `BYTEA`, `Option<_>` for `NULL`), and a [`Value`] converts to
/// the column's type.
pub struct Params<'a> {
    pub(crate) values: Vec<&'a (dyn ToSql + Sync)>,
}

impl<'a> Params<'a> {
    /// Binds the next parameter.
    #[inline]
    pub fn add(&mut self, value: &'a (dyn ToSql + Sync)) -> &mut Self {
        self.values.push(value);
        self
    }
}

/// One field's value, converted to whatever numeric, text, boolean or binary column type the
/// statement has for it (an integer that does not fit the column is an error naming both).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `NULL` (a `None`).
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i128),
    /// A float.
    Float(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
}

impl Value {
    /// What it is, for messages.
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
        }
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        fn int<T: TryFrom<i128> + ToSql>(
            v: i128,
            ty: &Type,
            out: &mut bytes::BytesMut,
        ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
            match T::try_from(v) {
                Ok(v) => v.to_sql(ty, out),
                Err(_) => Err(format!("{v} does not fit a column of type {ty}").into()),
            }
        }
        let text = matches!(
            *ty,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
        );
        match (self, ty.clone()) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Bool(b), Type::BOOL) => b.to_sql(ty, out),
            (Value::Int(v), Type::INT2) => int::<i16>(*v, ty, out),
            (Value::Int(v), Type::INT4) => int::<i32>(*v, ty, out),
            (Value::Int(v), Type::INT8) => int::<i64>(*v, ty, out),
            (Value::Int(v), Type::FLOAT4) => (*v as f32).to_sql(ty, out),
            (Value::Int(v), Type::FLOAT8) => (*v as f64).to_sql(ty, out),
            (Value::Float(v), Type::FLOAT4) => (*v as f32).to_sql(ty, out),
            (Value::Float(v), Type::FLOAT8) => v.to_sql(ty, out),
            // A text column takes any scalar in its text form.
            (Value::Bool(b), _) if text => b.to_string().as_str().to_sql(ty, out),
            (Value::Int(v), _) if text => v.to_string().as_str().to_sql(ty, out),
            (Value::Float(v), _) if text => v.to_string().as_str().to_sql(ty, out),
            (Value::Text(s), _) if text => s.as_str().to_sql(ty, out),
            (Value::Bytes(b), Type::BYTEA) => b.as_slice().to_sql(ty, out),
            (v, _) => Err(format!("{} cannot go into a column of type {ty}", v.kind()).into()),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::BOOL
                | Type::INT2
                | Type::INT4
                | Type::INT8
                | Type::FLOAT4
                | Type::FLOAT8
                | Type::TEXT
                | Type::VARCHAR
                | Type::BPCHAR
                | Type::NAME
                | Type::UNKNOWN
                | Type::BYTEA
        )
    }

    to_sql_checked!();
}

/// The values of a row's fields, in order, by serializing it.
pub(crate) fn values_of<T: Serialize>(row: &T, out: &mut Vec<Value>) -> Result<(), String> {
    out.clear();
    row.serialize(Fields(out)).map_err(|e| e.0)
}

#[derive(Debug)]
pub(crate) struct SerError(String);

impl fmt::Display for SerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for SerError {}

impl ser::Error for SerError {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        SerError(msg.to_string())
    }
}

/// The row: a struct or a tuple whose fields become values.
struct Fields<'a>(&'a mut Vec<Value>);

/// One field: a scalar becomes a value.
struct One<'a>(&'a mut Vec<Value>);

fn unsupported<T>(what: &str) -> Result<T, SerError> {
    Err(SerError(format!(
        "a {what} cannot be a statement parameter (numbers, text, bool, bytes and Option of them can)"
    )))
}

macro_rules! scalars {
    ($($method:ident $t:ty => $v:expr),* $(,)?) => {$(
        fn $method(self, v: $t) -> Result<(), SerError> {
            #[allow(clippy::redundant_closure_call)]
            self.0.push(($v)(v));
            Ok(())
        }
    )*};
}

impl ser::Serializer for One<'_> {
    type Ok = ();
    type Error = SerError;
    type SerializeSeq = ser::Impossible<(), SerError>;
    type SerializeTuple = ser::Impossible<(), SerError>;
    type SerializeTupleStruct = ser::Impossible<(), SerError>;
    type SerializeTupleVariant = ser::Impossible<(), SerError>;
    type SerializeMap = ser::Impossible<(), SerError>;
    type SerializeStruct = ser::Impossible<(), SerError>;
    type SerializeStructVariant = ser::Impossible<(), SerError>;

    scalars! {
        serialize_bool bool => Value::Bool,
        serialize_i8 i8 => |v| Value::Int(v as i128),
        serialize_i16 i16 => |v| Value::Int(v as i128),
        serialize_i32 i32 => |v| Value::Int(v as i128),
        serialize_i64 i64 => |v| Value::Int(v as i128),
        serialize_i128 i128 => Value::Int,
        serialize_u8 u8 => |v| Value::Int(v as i128),
        serialize_u16 u16 => |v| Value::Int(v as i128),
        serialize_u32 u32 => |v| Value::Int(v as i128),
        serialize_u64 u64 => |v| Value::Int(v as i128),
        serialize_f32 f32 => |v| Value::Float(v as f64),
        serialize_f64 f64 => Value::Float,
        serialize_char char => |v: char| Value::Text(v.to_string()),
        serialize_str &str => |v: &str| Value::Text(v.to_string()),
        serialize_bytes &[u8] => |v: &[u8]| Value::Bytes(v.to_vec()),
    }

    fn serialize_none(self) -> Result<(), SerError> {
        self.0.push(Value::Null);
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<(), SerError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), SerError> {
        self.0.push(Value::Null);
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), SerError> {
        unsupported("unit struct")
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        v: &'static str,
    ) -> Result<(), SerError> {
        // A field-less enum is its variant's name, as serde's text formats write it.
        self.0.push(Value::Text(v.to_string()));
        Ok(())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), SerError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), SerError> {
        unsupported("enum with data")
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, SerError> {
        unsupported("sequence")
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, SerError> {
        unsupported("nested tuple")
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, SerError> {
        unsupported("tuple struct")
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, SerError> {
        unsupported("enum with data")
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, SerError> {
        unsupported("map")
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, SerError> {
        unsupported("nested struct")
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, SerError> {
        unsupported("enum with data")
    }
}

impl<'a> ser::Serializer for Fields<'a> {
    type Ok = ();
    type Error = SerError;
    type SerializeSeq = ser::Impossible<(), SerError>;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = ser::Impossible<(), SerError>;
    type SerializeMap = ser::Impossible<(), SerError>;
    type SerializeStruct = Self;
    type SerializeStructVariant = ser::Impossible<(), SerError>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, SerError> {
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, SerError> {
        Ok(self)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, SerError> {
        Ok(self)
    }

    // A scalar row is one parameter.
    fn serialize_bool(self, v: bool) -> Result<(), SerError> {
        One(self.0).serialize_bool(v)
    }
    fn serialize_i8(self, v: i8) -> Result<(), SerError> {
        One(self.0).serialize_i8(v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), SerError> {
        One(self.0).serialize_i16(v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), SerError> {
        One(self.0).serialize_i32(v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), SerError> {
        One(self.0).serialize_i64(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), SerError> {
        One(self.0).serialize_u8(v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), SerError> {
        One(self.0).serialize_u16(v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), SerError> {
        One(self.0).serialize_u32(v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), SerError> {
        One(self.0).serialize_u64(v)
    }
    fn serialize_f32(self, v: f32) -> Result<(), SerError> {
        One(self.0).serialize_f32(v)
    }
    fn serialize_f64(self, v: f64) -> Result<(), SerError> {
        One(self.0).serialize_f64(v)
    }
    fn serialize_char(self, v: char) -> Result<(), SerError> {
        One(self.0).serialize_char(v)
    }
    fn serialize_str(self, v: &str) -> Result<(), SerError> {
        One(self.0).serialize_str(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), SerError> {
        One(self.0).serialize_bytes(v)
    }
    fn serialize_none(self) -> Result<(), SerError> {
        One(self.0).serialize_none()
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<(), SerError> {
        One(self.0).serialize_some(v)
    }
    fn serialize_unit(self) -> Result<(), SerError> {
        unsupported("unit row")
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), SerError> {
        unsupported("unit struct")
    }
    fn serialize_unit_variant(
        self,
        n: &'static str,
        i: u32,
        v: &'static str,
    ) -> Result<(), SerError> {
        One(self.0).serialize_unit_variant(n, i, v)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), SerError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), SerError> {
        unsupported("enum with data")
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, SerError> {
        unsupported("sequence")
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, SerError> {
        unsupported("enum with data")
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, SerError> {
        unsupported("map")
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, SerError> {
        unsupported("enum with data")
    }
}

impl ser::SerializeStruct for Fields<'_> {
    type Ok = ();
    type Error = SerError;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        name: &'static str,
        v: &T,
    ) -> Result<(), SerError> {
        v.serialize(One(self.0))
            .map_err(|e| SerError(format!("field `{name}`: {}", e.0)))
    }
    fn end(self) -> Result<(), SerError> {
        Ok(())
    }
}

impl ser::SerializeTuple for Fields<'_> {
    type Ok = ();
    type Error = SerError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), SerError> {
        let i = self.0.len();
        v.serialize(One(self.0))
            .map_err(|e| SerError(format!("field {i}: {}", e.0)))
    }
    fn end(self) -> Result<(), SerError> {
        Ok(())
    }
}

impl ser::SerializeTupleStruct for Fields<'_> {
    type Ok = ();
    type Error = SerError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), SerError> {
        ser::SerializeTuple::serialize_element(self, v)
    }
    fn end(self) -> Result<(), SerError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Book {
        id: u32,
        title: String,
        price: Option<f64>,
        tags: Vec<String>,
    }

    #[test]
    fn fields_become_values_in_order() {
        let mut out = Vec::new();
        values_of(&(7u8, "a", None::<i32>, true), &mut out).unwrap();
        assert_eq!(
            out,
            vec![
                Value::Int(7),
                Value::Text("a".into()),
                Value::Null,
                Value::Bool(true)
            ]
        );
        let e = values_of(
            &Book {
                id: 1,
                title: "t".into(),
                price: Some(2.5),
                tags: vec![],
            },
            &mut out,
        )
        .unwrap_err();
        assert!(e.starts_with("field `tags`: a sequence cannot be"), "{e}");
    }

    #[test]
    fn integers_convert_to_the_column_type_or_say_why_not() {
        let mut out = bytes::BytesMut::new();
        assert!(Value::Int(70_000).to_sql(&Type::INT8, &mut out).is_ok());
        let Err(e) = Value::Int(70_000).to_sql(&Type::INT2, &mut out) else {
            panic!("70000 fits no int2")
        };
        assert_eq!(e.to_string(), "70000 does not fit a column of type int2");
        assert!(Value::Float(1.5).to_sql(&Type::FLOAT4, &mut out).is_ok());
        // No value goes into a column whose binary form it does not have.
        for (v, ty, msg) in [
            (
                Value::Text("1234".into()),
                Type::INT4,
                "text cannot go into a column of type int4",
            ),
            (
                Value::Float(1.0),
                Type::INT4,
                "a float cannot go into a column of type int4",
            ),
            (
                Value::Int(0),
                Type::BOOL,
                "an integer cannot go into a column of type bool",
            ),
            (
                Value::Text("f".into()),
                Type::BOOL,
                "text cannot go into a column of type bool",
            ),
        ] {
            let Err(e) = v.to_sql(&ty, &mut out) else {
                panic!("{v:?} into {ty}")
            };
            assert_eq!(e.to_string(), msg);
        }
        assert!(Value::Int(7).to_sql(&Type::TEXT, &mut out).is_ok());
        assert!(Value::accepts(&Type::VARCHAR) && !Value::accepts(&Type::JSONB));
    }
}
