//! Tables: what the SQL inside `flow!` compiles to at run time.
//!
//! `flow!` plans SQL at build time into the same operators the DSL uses; a table's rows are
//! tuples of its columns (a nullable column is an `Option`). This module holds the few run-time
//! pieces that code needs: the kind of a changelog row ([`RowKind`], [`Changelog`], printed as
//! Flink prints a `Row`: `+I[1, a]`), the text of SQL values, the conversion of a DataStream's
//! rows into columns ([`IntoColumns`]) and of values into a sink's column types
//! ([`IntoColumn`]), and the SQL functions ([`func`]).

use crate::operator::keyed_process::{KeyedProcessFunction, ProcessContext};
use crate::row::RowText;
use crate::snapshot::{combine, fingerprint, StateSchema};
use crate::state::StateFields;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::marker::PhantomData;

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

/// A `TIMESTAMP(3)` value: milliseconds since 1970-01-01 00:00:00, without a time zone (Flink's
/// `TIMESTAMP`). Printed as Flink prints one: `2026-12-02 07:30:00.000`.
///
/// In state and checkpoints it is its milliseconds; in text formats (JSON, CSV) its text, and
/// read from its text (`2026-12-02 07:30:00.000`, `T` between date and time, seconds and
/// fractions optional) or from a number of milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SqlTimestamp(pub i64);

impl Serialize for SqlTimestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for SqlTimestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = SqlTimestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a timestamp `YYYY-MM-DD HH:MM:SS.sss` or milliseconds")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<SqlTimestamp, E> {
                Ok(SqlTimestamp(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<SqlTimestamp, E> {
                i64::try_from(v).map(SqlTimestamp).map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SqlTimestamp, E> {
                v.parse().map_err(E::custom)
            }
        }
        if d.is_human_readable() {
            d.deserialize_any(V)
        } else {
            d.deserialize_i64(V)
        }
    }
}

impl std::str::FromStr for SqlTimestamp {
    type Err = String;
    /// `YYYY-MM-DD[ |T]HH:MM[:SS[.fff]]` or `YYYY-MM-DD`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a timestamp `YYYY-MM-DD HH:MM:SS.sss`");
        let t = s.trim();
        let (date, time) = match t.split_once([' ', 'T']) {
            Some((d, t)) => (d, t),
            None => (t, "00:00"),
        };
        let mut d = date.splitn(3, '-');
        let num = |p: Option<&str>| p.and_then(|x| x.parse::<i64>().ok()).ok_or_else(bad);
        let (y, m, day) = (num(d.next())?, num(d.next())?, num(d.next())?);
        let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
        let mut h = hms.splitn(3, ':');
        let (hh, mm) = (num(h.next())?, num(h.next())?);
        let ss = match h.next() {
            Some(x) => num(Some(x))?,
            None => 0,
        };
        let ms = if frac.is_empty() {
            0
        } else {
            let digits: String = frac.chars().chain("000".chars()).take(3).collect();
            num(Some(&digits))?
        };
        if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
            return Err(bad());
        }
        let days = days_from_civil(y, m as u32, day as u32);
        Ok(SqlTimestamp(
            ((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + ms,
        ))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl SqlTimestamp {
    /// Its milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }
}

impl StateSchema for SqlTimestamp {
    const FINGERPRINT: u64 = combine(fingerprint("sql-timestamp"), i64::FINGERPRINT);
}

impl fmt::Display for SqlTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.rem_euclid(1000);
        let secs = self.0.div_euclid(1000);
        let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{ms:03}",
            rest / 3600,
            rest % 3600 / 60,
            rest % 60
        )
    }
}

impl SqlValue for SqlTimestamp {
    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl RowText for SqlTimestamp {
    fn fmt_row(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
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
into_column!(i8, i16, i32, i64, f32, f64, bool, String, SqlTimestamp);

impl IntoColumn<SqlTimestamp> for i64 {
    #[inline]
    fn into_column(self) -> SqlTimestamp {
        SqlTimestamp(self)
    }
}

impl IntoColumn<Option<SqlTimestamp>> for i64 {
    #[inline]
    fn into_column(self) -> Option<SqlTimestamp> {
        Some(SqlTimestamp(self))
    }
}

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
copy_ref!(
    i8,
    i16,
    i32,
    i64,
    u8,
    u16,
    u32,
    u64,
    f32,
    f64,
    bool,
    char,
    SqlTimestamp
);

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

/// The per-key state of an unbounded `GROUP BY`: the group's accumulator, none before its
/// first row.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupState<A>(pub Option<A>);

impl<A> Default for GroupState<A> {
    fn default() -> Self {
        GroupState(None)
    }
}

#[diagnostic::do_not_recommend]
impl<A: Clone + Send + Sync + 'static> StateFields for GroupState<A> {}

impl<A: StateSchema> StateSchema for GroupState<A> {
    const FINGERPRINT: u64 = combine(fingerprint("sql-group"), A::FINGERPRINT);
}

/// An unbounded `GROUP BY` (Flink's group aggregate): per key, `add` folds each row into the
/// group's accumulator and `result` gives the group's row (`None` when `HAVING` rejects it).
/// Each row emits the change of its group: `+I` for a new group, `-U` of the old row and `+U`
/// of the new one for an update (nothing when the row is unchanged), `-D` when `HAVING` drops a
/// group that passed before.
pub struct GroupAggregate<Acc, Out, A, R> {
    add: A,
    result: R,
    types: PhantomData<fn() -> (Acc, Out)>,
}

impl<Acc, Out, A: Clone, R: Clone> Clone for GroupAggregate<Acc, Out, A, R> {
    fn clone(&self) -> Self {
        GroupAggregate {
            add: self.add.clone(),
            result: self.result.clone(),
            types: PhantomData,
        }
    }
}

impl<Acc, Out, A, R> GroupAggregate<Acc, Out, A, R> {
    /// The aggregate of `add(acc, row)` and `result(key, acc)` for keys `K` and rows `In`.
    pub fn new<K, In>(add: A, result: R) -> Self
    where
        A: Fn(&mut Acc, In),
        R: Fn(&K, &Acc) -> Option<Out>,
    {
        GroupAggregate {
            add,
            result,
            types: PhantomData,
        }
    }
}

impl<K, In, Acc, Out, A, R> KeyedProcessFunction<K, In> for GroupAggregate<Acc, Out, A, R>
where
    K: crate::function::Key,
    Acc: Default + Clone + Send + Sync + 'static,
    Out: PartialEq + Send + 'static,
    A: Fn(&mut Acc, In) + Clone + Send + 'static,
    R: Fn(&K, &Acc) -> Option<Out> + Clone + Send + 'static,
{
    type Out = Changelog<Out>;
    type State = GroupState<Acc>;

    fn process_element(
        &mut self,
        row: In,
        state: &mut GroupState<Acc>,
        ctx: &mut ProcessContext<'_, K>,
        out: &mut Vec<Changelog<Out>>,
    ) {
        let key = ctx.key();
        let old = state.0.as_ref().and_then(|acc| (self.result)(key, acc));
        let acc = state.0.get_or_insert_with(Acc::default);
        (self.add)(acc, row);
        let new = (self.result)(key, acc);
        let change = |kind, row| Changelog { kind, row };
        match (old, new) {
            (None, Some(new)) => out.push(change(RowKind::Insert, new)),
            (Some(old), Some(new)) if old != new => {
                out.push(change(RowKind::UpdateBefore, old));
                out.push(change(RowKind::UpdateAfter, new));
            }
            (Some(old), None) => out.push(change(RowKind::Delete, old)),
            _ => {}
        }
    }
}

/// A group aggregate sets no timers: it runs on streams without watermarks too.
#[diagnostic::do_not_recommend]
impl<Acc, Out, A, R> crate::operator::keyed_process::WithoutEventTimers
    for GroupAggregate<Acc, Out, A, R>
{
}

/// The per-key state of a SQL join: the rows of each side with the key so far.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JoinState<L, R> {
    /// The left side's rows.
    pub left: Vec<L>,
    /// The right side's rows.
    pub right: Vec<R>,
}

impl<L, R> Default for JoinState<L, R> {
    fn default() -> Self {
        JoinState {
            left: Vec::new(),
            right: Vec::new(),
        }
    }
}

#[diagnostic::do_not_recommend]
impl<L: Clone + Send + Sync + 'static, R: Clone + Send + Sync + 'static> StateFields
    for JoinState<L, R>
{
}

impl<L: StateSchema, R: StateSchema> StateSchema for JoinState<L, R> {
    const FINGERPRINT: u64 = combine(
        combine(fingerprint("sql-join"), L::FINGERPRINT),
        R::FINGERPRINT,
    );
}

/// An inner equi-join (Flink's regular join) of two keyed streams of `(key, row)`: each row is
/// kept in its key's state and paired with every row of the other side with that key so far,
/// so each matching pair is emitted once, when its later row arrives. The state grows with
/// both inputs.
pub struct SqlJoin<L, R>(PhantomData<fn() -> (L, R)>);

impl<L, R> SqlJoin<L, R> {
    /// The join.
    pub fn new() -> Self {
        SqlJoin(PhantomData)
    }
}

impl<L, R> Default for SqlJoin<L, R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<L, R> Clone for SqlJoin<L, R> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

#[diagnostic::do_not_recommend]
impl<L, R> crate::operator::keyed_process::WithoutEventTimers for SqlJoin<L, R> {}

impl<K, L, R> crate::operator::co_process::KeyedCoProcessFunction<K, (K, L), (K, R)>
    for SqlJoin<L, R>
where
    K: crate::function::Key,
    L: Clone + Send + Sync + 'static,
    R: Clone + Send + Sync + 'static,
{
    type Out = (L, R);
    type State = JoinState<L, R>;

    fn process_element1(
        &mut self,
        row: (K, L),
        state: &mut JoinState<L, R>,
        _ctx: &mut ProcessContext<'_, K>,
        out: &mut Vec<(L, R)>,
    ) {
        out.extend(state.right.iter().map(|r| (row.1.clone(), r.clone())));
        state.left.push(row.1);
    }

    fn process_element2(
        &mut self,
        row: (K, R),
        state: &mut JoinState<L, R>,
        _ctx: &mut ProcessContext<'_, K>,
        out: &mut Vec<(L, R)>,
    ) {
        out.extend(state.left.iter().map(|l| (l.clone(), row.1.clone())));
        state.right.push(row.1);
    }
}

/// A SQL join of two tables of which one or both are updated (their rows come with whether
/// they add to the table or retract from it, `(key, row, adds)`): a row that adds is kept and
/// joined as [`SqlJoin`] does, each pair emitted as `+I`; a row that retracts removes one equal
/// row from its side's state and retracts each pair it made (`-D`). The output is a changelog.
pub struct RetractJoin<L, R>(PhantomData<fn() -> (L, R)>);

impl<L, R> RetractJoin<L, R> {
    /// The join.
    pub fn new() -> Self {
        RetractJoin(PhantomData)
    }
}

impl<L, R> Default for RetractJoin<L, R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<L, R> Clone for RetractJoin<L, R> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

#[diagnostic::do_not_recommend]
impl<L, R> crate::operator::keyed_process::WithoutEventTimers for RetractJoin<L, R> {}

/// Removes one row equal to `row` from `rows`; whether there was one.
fn remove_one<T: PartialEq>(rows: &mut Vec<T>, row: &T) -> bool {
    match rows.iter().position(|r| r == row) {
        Some(i) => {
            rows.swap_remove(i);
            true
        }
        None => false,
    }
}

impl<K, L, R> crate::operator::co_process::KeyedCoProcessFunction<K, (K, L, bool), (K, R, bool)>
    for RetractJoin<L, R>
where
    K: crate::function::Key,
    L: Clone + PartialEq + Send + Sync + 'static,
    R: Clone + PartialEq + Send + Sync + 'static,
{
    type Out = Changelog<(L, R)>;
    type State = JoinState<L, R>;

    fn process_element1(
        &mut self,
        (_, row, adds): (K, L, bool),
        state: &mut JoinState<L, R>,
        _ctx: &mut ProcessContext<'_, K>,
        out: &mut Vec<Changelog<(L, R)>>,
    ) {
        if !adds && !remove_one(&mut state.left, &row) {
            return; // a retraction of a row never added: nothing to retract
        }
        let kind = if adds {
            RowKind::Insert
        } else {
            RowKind::Delete
        };
        out.extend(state.right.iter().map(|r| Changelog {
            kind,
            row: (row.clone(), r.clone()),
        }));
        if adds {
            state.left.push(row);
        }
    }

    fn process_element2(
        &mut self,
        (_, row, adds): (K, R, bool),
        state: &mut JoinState<L, R>,
        _ctx: &mut ProcessContext<'_, K>,
        out: &mut Vec<Changelog<(L, R)>>,
    ) {
        if !adds && !remove_one(&mut state.right, &row) {
            return;
        }
        let kind = if adds {
            RowKind::Insert
        } else {
            RowKind::Delete
        };
        out.extend(state.left.iter().map(|l| Changelog {
            kind,
            row: (l.clone(), row.clone()),
        }));
        if adds {
            state.right.push(row);
        }
    }
}

/// A windowed `GROUP BY`'s aggregate (the window's rows folded as they come): `add` folds a
/// row into the accumulator, `merge` joins two (session windows); the window function makes
/// the result row.
pub struct SqlAggregate<Acc, In, A, M> {
    add: A,
    merge: M,
    types: PhantomData<fn(In) -> Acc>,
}

impl<Acc, In, A: Clone, M: Clone> Clone for SqlAggregate<Acc, In, A, M> {
    fn clone(&self) -> Self {
        SqlAggregate {
            add: self.add.clone(),
            merge: self.merge.clone(),
            types: PhantomData,
        }
    }
}

impl<Acc, In, A, M> SqlAggregate<Acc, In, A, M> {
    /// The aggregate of `add(acc, row)` and `merge(a, b)`.
    pub fn new(add: A, merge: M) -> Self
    where
        A: Fn(&mut Acc, In),
        M: Fn(Acc, Acc) -> Acc,
    {
        SqlAggregate {
            add,
            merge,
            types: PhantomData,
        }
    }
}

impl<Acc, In, A, M> crate::window::AggregateFunction<In> for SqlAggregate<Acc, In, A, M>
where
    Acc: Default + Clone + Send + 'static,
    In: 'static,
    A: Fn(&mut Acc, In) + Clone + Send + 'static,
    M: Fn(Acc, Acc) -> Acc + Clone + Send + 'static,
{
    type Acc = Acc;
    type Out = Acc;
    fn create_accumulator(&mut self) -> Acc {
        Acc::default()
    }
    fn add(&mut self, value: In, acc: &mut Acc) {
        (self.add)(acc, value)
    }
    fn get_result(&mut self, acc: &Acc) -> Acc {
        acc.clone()
    }
    fn merge(&mut self, a: Acc, b: Acc) -> Acc {
        (self.merge)(a, b)
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
never_null!(
    i8,
    i16,
    i32,
    i64,
    u8,
    u16,
    u32,
    u64,
    f32,
    f64,
    bool,
    char,
    String,
    str,
    &str,
    SqlTimestamp
);

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
        assert_eq!(SqlTimestamp(0).to_string(), "1970-01-01 00:00:00.000");
        assert_eq!(
            SqlTimestamp(1_796_196_600_123).to_string(),
            "2026-12-02 07:30:00.123"
        );
        assert_eq!(SqlTimestamp(-1).to_string(), "1969-12-31 23:59:59.999");
        assert_eq!(
            SqlTimestamp(951_782_400_000).to_string(),
            "2000-02-29 00:00:00.000"
        );
        for ms in [
            0,
            1_796_196_600_123,
            -1,
            951_782_400_000,
            -62_135_596_800_000,
        ] {
            let t = SqlTimestamp(ms);
            assert_eq!(t.to_string().parse::<SqlTimestamp>(), Ok(t), "{t}");
        }
        assert_eq!(
            "2026-12-02T07:30".parse::<SqlTimestamp>(),
            Ok(SqlTimestamp(1_796_196_600_000))
        );
        assert!("2026-13-02 07:30".parse::<SqlTimestamp>().is_err());
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
