//! Rows: the values that flow between operators, their text form and their schema.

use std::fmt;

/// A field of a row's schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// The field's name (`f0`, `f1`, ... for tuples).
    pub name: &'static str,
    /// The field's Rust type, as written in the struct.
    pub type_name: &'static str,
}

/// The static schema of a row type: its fields in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schema {
    /// The row type's name.
    pub name: &'static str,
    /// The fields, in declaration order.
    pub fields: &'static [Field],
}

/// A row type with a field-named schema: `#[derive(Row)]` structs.
///
/// Formats, connectors and the table layer read the schema; the derive also gives the serde
/// impls and the text form (`Display`: the fields separated by one space).
pub trait Row: Send + 'static {
    /// The row's schema.
    const SCHEMA: Schema;
}

/// The text form of a row, as `print` and `FileSink`'s row format write it.
///
/// `Display` types write themselves; tuples write `(a, b)` from their fields' text forms.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no text form to print or write",
    label = "this sink writes each row's text form",
    note = "add `#[derive(Row)]` to the row struct (its text form is its fields separated by spaces), or implement `RowText` for it"
)]
pub trait RowText: text::HasText<text::Yes> {
    /// Writes the row's text form.
    fn fmt_row(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

/// How `print` tells a row type without a text form from one with it *before* it builds its
/// writer, so that such a row type is reported once, at `print`.
///
/// `T: HasText<M>` has two impls: `M = Yes` for the [`RowText`] types, and `M = No`, which no
/// type satisfies. `print` takes `M` from inference: for a row type without a text form neither
/// applies, the sink's type stays unknown and its writer raises no further error. The error
/// reported is `RowText`'s own (`HasText<Yes>` is a supertrait of `RowText`, so it is implied).
#[doc(hidden)]
pub mod text {
    /// See the [module](self).
    pub trait HasText<M> {
        /// `()`, or unknown when `Self` has no text form.
        type Is;
    }

    /// [`HasText`]'s selector for the [`RowText`](super::RowText) types.
    pub enum Yes {}
    /// [`HasText`]'s selector that never applies.
    pub enum No {}

    impl<T: super::RowText + ?Sized> HasText<Yes> for T {
        type Is = ();
    }

    impl<T: Never + ?Sized> HasText<No> for T {
        type Is = ();
    }

    mod sealed {
        pub trait Sealed {}
    }

    /// Implemented by no type: the bound of [`HasText`]'s `No` impl.
    pub trait Never: sealed::Sealed {}
}

/// Holds when `Self` is the row type `T`: `union` checks its inputs with it.
#[diagnostic::on_unimplemented(
    message = "cannot union a stream of `{T}` with a stream of `{Self}`",
    label = "this stream's rows are `{Self}`",
    note = "`union` merges streams of one row type: map the inputs to the same type first"
)]
pub trait SameRow<T> {}

impl<T> SameRow<T> for T {}

/// Adapts a [`RowText`] to `Display`.
pub struct DisplayRow<'a, T: ?Sized>(pub &'a T);

impl<T: RowText + ?Sized> fmt::Display for DisplayRow<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_row(f)
    }
}

macro_rules! display_row {
    ($($t:ty)*) => {$(
        impl RowText for $t {
            #[inline]
            fn fmt_row(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }
    )*};
}
display_row!(i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize f32 f64 bool char str String);

impl<T: RowText + ?Sized> RowText for &T {
    fn fmt_row(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt_row(f)
    }
}

impl<T: RowText + ?Sized> RowText for Box<T> {
    fn fmt_row(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt_row(f)
    }
}

impl<T: RowText> RowText for Option<T> {
    fn fmt_row(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Some(v) => v.fmt_row(f),
            None => f.write_str("null"),
        }
    }
}

impl<T: RowText> RowText for Vec<T> {
    fn fmt_row(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            v.fmt_row(f)?;
        }
        f.write_str("]")
    }
}

impl RowText for () {
    fn fmt_row(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("()")
    }
}

macro_rules! tuple_row {
    ($(($($n:tt $t:ident),+))*) => {$(
        impl<$($t: RowText),+> RowText for ($($t,)+) {
            fn fmt_row(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("(")?;
                $(
                    if $n > 0 { f.write_str(", ")?; }
                    self.$n.fmt_row(f)?;
                )+
                f.write_str(")")
            }
        }
    )*};
}
tuple_row! {
    (0 A)
    (0 A, 1 B)
    (0 A, 1 B, 2 C)
    (0 A, 1 B, 2 C, 3 D)
    (0 A, 1 B, 2 C, 3 D, 4 E)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K, 11 L)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_print_as_parenthesised_lists() {
        assert_eq!(DisplayRow(&(1i64, "aaa")).to_string(), "(1, aaa)");
        assert_eq!(
            DisplayRow(&(1i64, (2u8, 3.5f64))).to_string(),
            "(1, (2, 3.5))"
        );
        assert_eq!(DisplayRow(&7i32).to_string(), "7");
    }
}
