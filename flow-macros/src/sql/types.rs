//! SQL types and the Rust types a table's columns have.

use proc_macro2::TokenStream;
use quote::quote;
use sqlparser::ast::{self, DataType};

/// A column's SQL type. `Unknown`: a column of a DataStream's table named without a type, whose
/// Rust type only rustc knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqlType {
    Boolean,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Float,
    Double,
    String,
    /// `TIMESTAMP(3)`: milliseconds, no time zone.
    Timestamp,
    Unknown,
}

impl SqlType {
    /// The SQL type of a DDL column type.
    pub fn from_data_type(dt: &DataType) -> Result<SqlType, String> {
        Ok(match dt {
            DataType::Boolean | DataType::Bool => SqlType::Boolean,
            DataType::TinyInt(_) => SqlType::TinyInt,
            DataType::SmallInt(_) => SqlType::SmallInt,
            DataType::Int(_) | DataType::Integer(_) => SqlType::Int,
            DataType::BigInt(_) => SqlType::BigInt,
            DataType::Float(_) | DataType::Real => SqlType::Float,
            DataType::Double(_) | DataType::DoublePrecision => SqlType::Double,
            DataType::Varchar(_)
            | DataType::CharacterVarying(_)
            | DataType::CharVarying(_)
            | DataType::String(_)
            | DataType::Text
            | DataType::Char(_)
            | DataType::Character(_) => SqlType::String,
            DataType::Timestamp(
                p,
                ast::TimezoneInfo::None | ast::TimezoneInfo::WithoutTimeZone,
            ) if p.is_none_or(|p| p <= 3) => SqlType::Timestamp,
            other => {
                let later = match other {
                    DataType::Decimal(_) | DataType::Numeric(_) | DataType::Dec(_) => {
                        " (DECIMAL: use DOUBLE for now)"
                    }
                    DataType::Timestamp(..) => " (TIMESTAMP(3) without a time zone is)",
                    DataType::Date | DataType::Time(..) => " (TIMESTAMP(3) is)",
                    _ => "",
                };
                return Err(format!(
                    "the type `{other}` is not supported yet{later}: BOOLEAN, TINYINT, SMALLINT, INT, BIGINT, FLOAT, DOUBLE, VARCHAR/STRING, TIMESTAMP(3) are"
                ));
            }
        })
    }

    /// The type's SQL name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            SqlType::Boolean => "BOOLEAN",
            SqlType::TinyInt => "TINYINT",
            SqlType::SmallInt => "SMALLINT",
            SqlType::Int => "INT",
            SqlType::BigInt => "BIGINT",
            SqlType::Float => "FLOAT",
            SqlType::Double => "DOUBLE",
            SqlType::String => "STRING",
            SqlType::Timestamp => "TIMESTAMP(3)",
            SqlType::Unknown => "the DataStream's type",
        }
    }

    /// The Rust type of a NOT NULL value (`_` when unknown).
    pub fn rust(self) -> TokenStream {
        match self {
            SqlType::Boolean => quote!(bool),
            SqlType::TinyInt => quote!(i8),
            SqlType::SmallInt => quote!(i16),
            SqlType::Int => quote!(i32),
            SqlType::BigInt => quote!(i64),
            SqlType::Float => quote!(f32),
            SqlType::Double => quote!(f64),
            SqlType::String => quote!(::std::string::String),
            SqlType::Timestamp => quote!(::flow::table::SqlTimestamp),
            SqlType::Unknown => quote!(_),
        }
    }

    pub fn is_integer(self) -> bool {
        matches!(
            self,
            SqlType::TinyInt | SqlType::SmallInt | SqlType::Int | SqlType::BigInt
        )
    }

    pub fn is_numeric(self) -> bool {
        self.is_integer() || matches!(self, SqlType::Float | SqlType::Double)
    }

    /// The place of a numeric type in the widening order.
    fn rank(self) -> u8 {
        match self {
            SqlType::TinyInt => 1,
            SqlType::SmallInt => 2,
            SqlType::Int => 3,
            SqlType::BigInt => 4,
            SqlType::Float => 5,
            SqlType::Double => 6,
            _ => 0,
        }
    }

    /// The type two numeric types widen to.
    pub fn wider(a: SqlType, b: SqlType) -> SqlType {
        if a.rank() >= b.rank() {
            a
        } else {
            b
        }
    }

    /// Whether a value of type `self` goes into a column of type `to` without loss.
    pub fn widens_to(self, to: SqlType) -> bool {
        self == to
            || (self.is_numeric()
                && to.is_numeric()
                && self.rank() <= to.rank()
                && !(self == SqlType::BigInt && to == SqlType::Float))
    }
}

/// A value's type: its SQL type and whether it may be NULL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ty {
    pub sql: SqlType,
    pub nullable: bool,
}

impl Ty {
    pub const fn new(sql: SqlType, nullable: bool) -> Ty {
        Ty { sql, nullable }
    }

    /// The Rust type of a value: `Option<T>` when nullable.
    pub fn rust(self) -> TokenStream {
        let t = self.sql.rust();
        if self.nullable {
            quote!(::core::option::Option<#t>)
        } else {
            t
        }
    }

    /// `INT`, `INT NOT NULL`, for messages.
    pub fn describe(self) -> String {
        if self.nullable || self.sql == SqlType::Unknown {
            self.sql.name().to_string()
        } else {
            format!("{} NOT NULL", self.sql.name())
        }
    }
}
