//! Tables: what the SQL inside `flow!` compiles to at run time.
//!
//! `flow!` plans SQL at build time into the same operators the DSL uses; a table's rows are
//! tuples of its columns (a nullable column is an `Option`). This module holds the few run-time
//! pieces that code needs: the kind of a changelog row ([`RowKind`], [`Changelog`], printed as
//! Flink prints a `Row`: `+I[1, a]`), the text of SQL values, the conversion of a DataStream's
//! rows into columns ([`IntoColumns`]) and of values into a sink's column types
//! ([`IntoColumn`]), and the SQL functions ([`func`]).

use crate::row::RowText;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of change a row of a changelog stream is (Flink's `RowKind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RowKind {
    /// `+I`: a new row.
    Insert,
    /// `-U`: the row as it was before an update (retracted).
    UpdateBefore,
    /// `+U`: the row as it is after an update.
    UpdateAfter,
    /// `-D`: a deleted row.
    Delete,
}

impl RowKind {
    /// `+I`, `-U`, `+U` or `-D`, as Flink prints it.
    pub fn short_string(self) -> &'static str {
        match self {
            RowKind::Insert => "+I",
            RowKind::UpdateBefore => "-U",
            RowKind::UpdateAfter => "+U",
            RowKind::Delete => "-D",
        }
    }

    /// Whether the row adds to the table (`+I`, `+U`) rather than retracts from it.
    pub fn is_accumulate(self) -> bool {
        matches!(self, RowKind::Insert | RowKind::UpdateAfter)
    }
}

impl fmt::Display for RowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_string())
    }
}

/// A row of a changelog stream: its kind and its columns. Its text form is Flink's
/// `Row.toString()`: `+I[1, a]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Changelog<T> {
    /// What the row does to the table.
    pub kind: RowKind,
    /// The columns.
    pub row: T,
}

impl<T> Changelog<T> {
    /// An inserted row (`+I`).
    pub fn insert(row: T) -> Self {
        Changelog {
            kind: RowKind::Insert,
            row,
        }
    }
}

impl<T: SqlRow> fmt::Display for Changelog<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[", self.kind)?;
        self.row.fmt_fields(f)?;
        f.write_str("]")
    }
}

impl<T: SqlRow> RowText for Changelog<T> {
    fn fmt_row(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A SQL value's text, as Flink prints it: numbers and strings as they are, `null` for NULL,
/// `DOUBLE`s as Java's `Double.toString` (`1.0`, `1.5E10`).
pub trait SqlValue {
    /// Writes the value's text.
    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

macro_rules! display_value {
    ($($t:ty),*) => {$(
        impl SqlValue for $t {
            fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }
    )*};
}
display_value!(i8, i16, i32, i64, u8, u16, u32, u64, bool, char, String, str);

impl SqlValue for f64 {
    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_java_double(*self, f)
    }
}

impl SqlValue for f32 {
    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Java's Float.toString: the shortest digits of the f32, in the double's layout.
        let shortest: f64 = self.to_string().parse().unwrap_or(f64::from(*self));
        fmt_java_double(shortest, f)
    }
}

/// Java's `Double.toString`: plain with at least one decimal in `[1e-3, 1e7)`, otherwise
/// `d.dddE±n`.
fn fmt_java_double(v: f64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if v.is_nan() {
        return f.write_str("NaN");
    }
    if v.is_infinite() {
        return f.write_str(if v > 0.0 { "Infinity" } else { "-Infinity" });
    }
    let a = v.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        let s = v.to_string();
        return if s.contains('.') {
            f.write_str(&s)
        } else {
            write!(f, "{s}.0")
        };
    }
    let s = format!("{v:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    if mantissa.contains('.') {
        write!(f, "{mantissa}E{exp}")
    } else {
        write!(f, "{mantissa}.0E{exp}")
    }
}

impl<T: SqlValue + ?Sized> SqlValue for &T {
    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt_sql(f)
    }
}

impl<T: SqlValue> SqlValue for Option<T> {
    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Some(v) => v.fmt_sql(f),
            None => f.write_str("null"),
        }
    }
}

/// The text of a SQL value (`CAST(x AS STRING)`).
pub fn to_sql_string<T: SqlValue + ?Sized>(v: &T) -> String {
    struct Text<'a, T: ?Sized>(&'a T);
    impl<T: SqlValue + ?Sized> fmt::Display for Text<'_, T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.fmt_sql(f)
        }
    }
    Text(v).to_string()
}

/// A table's row as columns: a tuple of [`SqlValue`]s, printed as Flink prints a row's fields
/// (`1, a`).
pub trait SqlRow {
    /// Writes the fields, separated by `, `.
    fn fmt_fields(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

/// A DataStream's row as a table's columns, in order (`from_data_stream(ds, "a, b")`): a tuple
/// is its own columns, a `#[derive(Row)]` struct its fields in declaration order, a single
/// value one column.
#[diagnostic::on_unimplemented(
    message = "a DataStream of `{Self}` cannot become a table with named columns",
    note = "a table's rows are tuples, `#[derive(Row)]` structs or single numbers, strings and booleans"
)]
pub trait IntoColumns {
    /// The columns: a tuple.
    type Columns;
    /// The row's columns.
    fn into_columns(self) -> Self::Columns;
}

macro_rules! tuples {
    ($(($($t:ident $i:tt),+))*) => {$(
        impl<$($t: SqlValue),+> SqlRow for ($($t,)+) {
            fn fmt_fields(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                $(
                    if $i > 0 {
                        f.write_str(", ")?;
                    }
                    self.$i.fmt_sql(f)?;
                )+
                Ok(())
            }
        }
        impl<$($t),+> IntoColumns for ($($t,)+) {
            type Columns = Self;
            #[inline]
            fn into_columns(self) -> Self {
                self
            }
        }
    )*};
}
tuples! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15)
}

macro_rules! scalar_columns {
    ($($t:ty),*) => {$(
        impl IntoColumns for $t {
            type Columns = ($t,);
            #[inline]
            fn into_columns(self) -> ($t,) {
                (self,)
            }
        }
    )*};
}
scalar_columns!(i8, i16, i32, i64, f32, f64, bool, String, &'static str);

/// A value going into a column of type `T`: the same type, into a nullable column of it, or an
/// integer into a wider one.
#[diagnostic::on_unimplemented(
    message = "a `{Self}` cannot go into a column of Rust type `{T}`",
    note = "a column takes its own type (`Option<T>` when nullable: a NOT NULL value goes into it too); an integer may go into a wider integer column"
)]
pub trait IntoColumn<T> {
    /// The value as the column's type.
    fn into_column(self) -> T;
}

macro_rules! into_column {
    ($($t:ty),*) => {$(
        impl IntoColumn<$t> for $t {
            #[inline]
            fn into_column(self) -> $t {
                self
            }
        }
        impl IntoColumn<Option<$t>> for $t {
            #[inline]
            fn into_column(self) -> Option<$t> {
                Some(self)
            }
        }
        impl IntoColumn<Option<$t>> for Option<$t> {
            #[inline]
            fn into_column(self) -> Option<$t> {
                self
            }
        }
    )*};
}
into_column!(i8, i16, i32, i64, f32, f64, bool, String);

macro_rules! widen {
    ($($from:ty => $($to:ty),+;)*) => {$($(
        impl IntoColumn<$to> for $from {
            #[inline]
            fn into_column(self) -> $to {
                <$to>::from(self)
            }
        }
        impl IntoColumn<Option<$to>> for $from {
            #[inline]
            fn into_column(self) -> Option<$to> {
                Some(<$to>::from(self))
            }
        }
        impl IntoColumn<Option<$to>> for Option<$from> {
            #[inline]
            fn into_column(self) -> Option<$to> {
                self.map(<$to>::from)
            }
        }
    )+)*};
}
widen! {
    i8 => i16, i32, i64, f64;
    i16 => i32, i64, f64;
    i32 => i64, f64;
    f32 => f64;
}

impl IntoColumn<String> for &str {
    #[inline]
    fn into_column(self) -> String {
        self.to_string()
    }
}

impl IntoColumn<Option<String>> for &str {
    #[inline]
    fn into_column(self) -> Option<String> {
        Some(self.to_string())
    }
}

/// A value as SQL operators read it: strings as `&str`, numbers and booleans as they are,
/// NULL-able values as `Option`s of that. The code `flow!` generates borrows columns whose
/// type it does not know (those of a DataStream's table) through it.
pub trait SqlRef {
    /// The borrowed form.
    type Ref<'a>
    where
        Self: 'a;
    /// Borrows the value.
    fn sql_ref(&self) -> Self::Ref<'_>;
}

macro_rules! copy_ref {
    ($($t:ty),*) => {$(
        impl SqlRef for $t {
            type Ref<'a> = $t;
            #[inline]
            fn sql_ref(&self) -> $t {
                *self
            }
        }
    )*};
}
copy_ref!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, bool, char);

impl SqlRef for String {
    type Ref<'a> = &'a str;
    #[inline]
    fn sql_ref(&self) -> &str {
        self
    }
}

impl SqlRef for &str {
    type Ref<'a>
        = &'a str
    where
        Self: 'a;
    #[inline]
    fn sql_ref(&self) -> &str {
        self
    }
}

impl<T: SqlRef> SqlRef for Option<T> {
    type Ref<'a>
        = Option<T::Ref<'a>>
    where
        T: 'a;
    #[inline]
    fn sql_ref(&self) -> Self::Ref<'_> {
        self.as_ref().map(T::sql_ref)
    }
}

/// Whether a value of a DataStream's table is NULL (`x IS NULL`): a `None`; never a value of
/// a type that is not an `Option`.
pub fn is_null<T: SqlNull + ?Sized>(v: &T) -> bool {
    v.is_sql_null()
}

/// See [`is_null`].
pub trait SqlNull {
    /// Whether the value is NULL.
    fn is_sql_null(&self) -> bool;
}

impl<T> SqlNull for Option<T> {
    fn is_sql_null(&self) -> bool {
        self.is_none()
    }
}

macro_rules! never_null {
    ($($t:ty),*) => {$(
        impl SqlNull for $t {
            fn is_sql_null(&self) -> bool {
                false
            }
        }
    )*};
}
never_null!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, bool, char, String, str, &str);

/// The SQL functions and operators that are more than one Rust operator.
pub mod func {
    /// `a AND b` with SQL's three-valued logic.
    #[inline]
    pub fn and(a: Option<bool>, b: Option<bool>) -> Option<bool> {
        match (a, b) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        }
    }

    /// `a OR b` with SQL's three-valued logic.
    #[inline]
    pub fn or(a: Option<bool>, b: Option<bool>) -> Option<bool> {
        match (a, b) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        }
    }

    /// `a || b`, `CONCAT(a, b, ..)`.
    pub fn concat(parts: &[&str]) -> String {
        parts.concat()
    }

    /// `UPPER(s)`.
    pub fn upper(s: &str) -> String {
        s.to_uppercase()
    }

    /// `LOWER(s)`.
    pub fn lower(s: &str) -> String {
        s.to_lowercase()
    }

    /// `CHAR_LENGTH(s)`: in characters.
    pub fn char_length(s: &str) -> i32 {
        s.chars().count() as i32
    }

    /// `TRIM(s)`: spaces on both sides (`LEADING`/`TRAILING` with `both = false`).
    pub fn trim(s: &str, leading: bool, trailing: bool) -> String {
        let s = if leading {
            s.trim_start_matches(' ')
        } else {
            s
        };
        let s = if trailing { s.trim_end_matches(' ') } else { s };
        s.to_string()
    }

    /// `SUBSTRING(s FROM start [FOR len])`: 1-based, in characters; a start before 1 counts the
    /// characters before the string (SQL's rule).
    pub fn substring(s: &str, start: i64, len: Option<i64>) -> String {
        let end = len.map(|l| start.saturating_add(l.max(0))); // exclusive
        s.chars()
            .zip(1i64..)
            .filter(|&(_, p)| p >= start && end.is_none_or(|e| p < e))
            .map(|(c, _)| c)
            .collect()
    }

    /// `REPLACE(s, from, to)`.
    pub fn replace(s: &str, from: &str, to: &str) -> String {
        if from.is_empty() {
            return s.to_string();
        }
        s.replace(from, to)
    }

    /// `POSITION(needle IN s)`: 1-based, in characters; 0 when absent.
    pub fn position(needle: &str, s: &str) -> i32 {
        match s.find(needle) {
            Some(b) => s[..b].chars().count() as i32 + 1,
            None => 0,
        }
    }

    /// `s LIKE pattern`: `%` any characters, `_` one character, `escape` before a literal one.
    pub fn like(s: &str, pattern: &str, escape: Option<char>) -> bool {
        let s: Vec<char> = s.chars().collect();
        let mut p: Vec<(char, bool)> = Vec::new(); // (char, is a wildcard)
        let mut it = pattern.chars();
        while let Some(c) = it.next() {
            if Some(c) == escape {
                if let Some(n) = it.next() {
                    p.push((n, false));
                }
            } else {
                p.push((c, c == '%' || c == '_'));
            }
        }
        // Iterative matching with backtracking to the last `%`.
        let (mut si, mut pi) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while si < s.len() {
            if pi < p.len() && p[pi] == ('%', true) {
                star = Some((pi, si));
                pi += 1;
            } else if pi < p.len() && (p[pi] == ('_', true) || (!p[pi].1 && p[pi].0 == s[si])) {
                si += 1;
                pi += 1;
            } else if let Some((sp, ss)) = star {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            } else {
                return false;
            }
        }
        while pi < p.len() && p[pi] == ('%', true) {
            pi += 1;
        }
        pi == p.len()
    }

    /// `CAST(s AS <number or boolean>)`: fails the job, naming the value, when `s` is not one
    /// (as Flink's `CAST` does; `TRY_CAST` gives NULL instead).
    pub fn parse<T: std::str::FromStr>(s: &str, sql_type: &str) -> T {
        match try_parse(s) {
            Some(v) => v,
            None => panic!("CAST('{s}' AS {sql_type}): not a valid {sql_type}"),
        }
    }

    /// `TRY_CAST(s AS <number or boolean>)`: NULL when `s` is not one.
    pub fn try_parse<T: std::str::FromStr>(s: &str) -> Option<T> {
        let t = s.trim();
        t.parse()
            .ok()
            .or_else(|| t.to_ascii_lowercase().parse().ok())
    }

    /// `MOD(a, b)` and `a % b` on integers (the sign of `a`, as Java's `%`).
    #[inline]
    pub fn modulo<T: std::ops::Rem<Output = T>>(a: T, b: T) -> T {
        a % b
    }

    /// `ROUND(x)` on a `DOUBLE`: half away from zero.
    #[inline]
    pub fn round(x: f64) -> f64 {
        x.round()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Show<T>(T);
    impl<T: SqlValue> fmt::Display for Show<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.fmt_sql(f)
        }
    }

    #[test]
    fn values_print_as_flink_prints_them() {
        assert_eq!(Show(1.0f64).to_string(), "1.0");
        assert_eq!(Show(1.5f64).to_string(), "1.5");
        assert_eq!(Show(1.5e10f64).to_string(), "1.5E10");
        assert_eq!(Show(1e7f64).to_string(), "1.0E7");
        assert_eq!(Show(0.0001f64).to_string(), "1.0E-4");
        assert_eq!(Show(-0.25f64).to_string(), "-0.25");
        assert_eq!(Show(0.1f32).to_string(), "0.1");
        assert_eq!(Show(None::<i32>).to_string(), "null");
        let row = Changelog {
            kind: RowKind::UpdateBefore,
            row: (Some(1), Some("a".to_string()), None::<bool>),
        };
        assert_eq!(row.to_string(), "-U[1, a, null]");
    }

    #[test]
    fn like_and_substring_follow_sql() {
        use func::*;
        assert!(like("hello", "h%o", None));
        assert!(like("hello", "_ello", None));
        assert!(!like("hello", "h_o", None));
        assert!(like("50%", "50!%", Some('!')));
        assert!(!like("500", "50!%", Some('!')));
        assert!(like("", "%", None));
        assert!(like("abcabc", "%bc", None));
        assert_eq!(substring("hello", 2, Some(3)), "ell");
        assert_eq!(substring("hello", 2, None), "ello");
        assert_eq!(substring("hello", 0, Some(2)), "h");
        assert_eq!(substring("hello", 4, Some(10)), "lo");
        assert_eq!(position("l", "hello"), 3);
        assert_eq!(position("z", "hello"), 0);
        assert_eq!(trim("  a  ", true, false), "a  ");
    }

    #[test]
    fn three_valued_logic() {
        use func::*;
        assert_eq!(and(None, Some(false)), Some(false));
        assert_eq!(and(None, Some(true)), None);
        assert_eq!(or(None, Some(true)), Some(true));
        assert_eq!(or(None, Some(false)), None);
    }
}
