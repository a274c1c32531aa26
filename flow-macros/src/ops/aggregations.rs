//! `sum(field)`, `min(field)`, `max(field)`, `min_by(field)`, `max_by(field)`: Flink's rolling
//! aggregations of a keyed (or windowed) stream, on a tuple position (`sum(1)`) or a named
//! field (`sum(count)` or `sum("count")`). Each is a `reduce` whose function the macro writes:
//! `sum`/`min`/`max` change that field of the first row (as Flink does, the other fields stay
//! those of the first row); `min_by`/`max_by` keep the whole row with the smallest/largest
//! value: the first one on ties, or the last with `min_by(field, false)` (Flink's
//! `minBy(field, first)`). The field access carries the user's tokens, so a missing
//! field is an error on them; a field that is not a number (for `sum`) or not ordered (for the
//! others) is reported by the helper traits.
//!
//! The words are `reduce`'s (on a keyed stream) and the window's (after a window).

use proc_macro2::Span;
use quote::quote_spanned;
use syn::spanned::Spanned;
use syn::{Expr, Lit, Member};

/// How aggregation `word` reads, for error messages.
pub fn signature(word: &str) -> String {
    match word {
        "min_by" | "max_by" => format!(
            "{word}(field) or {word}(field, first): a tuple position like `1` or a field name, \
             and `false` to keep the last row on ties"
        ),
        _ => format!("{word}(field): a tuple position like `1` or a field name"),
    }
}

/// How many arguments aggregation `word` takes.
pub fn arity(word: &str) -> (usize, usize) {
    match word {
        "min_by" | "max_by" => (1, 2),
        _ => (1, 1),
    }
}

/// `min_by`/`max_by`'s `first`: a `true` or `false` literal.
fn first(arg: Option<&Expr>) -> syn::Result<bool> {
    match arg {
        None => Ok(true),
        Some(Expr::Lit(syn::ExprLit {
            lit: Lit::Bool(b), ..
        })) => Ok(b.value),
        Some(other) => Err(syn::Error::new_spanned(
            other,
            "expected `true` (keep the first row on ties, the default) or `false` (keep the last)",
        )),
    }
}

/// Whether `word` is one of the aggregations.
pub fn is_aggregation(word: &str) -> bool {
    matches!(word, "sum" | "min" | "max" | "min_by" | "max_by")
}

/// The field an aggregation names.
fn member(arg: &Expr) -> syn::Result<Member> {
    let err = || {
        syn::Error::new_spanned(
            arg,
            "expected a field: a tuple position such as `1`, or a field name such as `count` or `\"count\"`",
        )
    };
    match arg {
        Expr::Lit(l) => match &l.lit {
            Lit::Int(i) => Ok(Member::Unnamed(syn::Index {
                index: i.base10_parse()?,
                span: i.span(),
            })),
            Lit::Str(s) => syn::parse_str::<syn::Ident>(&s.value())
                .map(|mut ident| {
                    ident.set_span(s.span());
                    Member::Named(ident)
                })
                .map_err(|_| err()),
            _ => Err(err()),
        },
        Expr::Path(p) if p.qself.is_none() => p
            .path
            .get_ident()
            .cloned()
            .map(Member::Named)
            .ok_or_else(err),
        _ => Err(err()),
    }
}

/// The reduce closure for aggregation `word` with arguments `args` (the field, and `min_by` and
/// `max_by`'s `first`), spanned at the field.
pub fn desugar(word: &str, args: &[Expr]) -> syn::Result<Expr> {
    let arg = &args[0];
    let field = member(arg)?;
    let first = first(args.get(1))?;
    let span: Span = arg.span();
    let body = match word {
        "sum" => quote_spanned!(span=> |mut acc, row| {
            ::flow::__private::aggregate::sum(&mut acc.#field, row.#field);
            acc
        }),
        "min" => quote_spanned!(span=> |mut acc, row| {
            ::flow::__private::aggregate::min(&mut acc.#field, row.#field);
            acc
        }),
        "max" => quote_spanned!(span=> |mut acc, row| {
            ::flow::__private::aggregate::max(&mut acc.#field, row.#field);
            acc
        }),
        // On a tie the first row stays (`less`), or the last one replaces it (`!less` the
        // other way round).
        "min_by" if first => quote_spanned!(span=> |acc, row| {
            if ::flow::__private::aggregate::less(&row.#field, &acc.#field) { row } else { acc }
        }),
        "min_by" => quote_spanned!(span=> |acc, row| {
            if ::flow::__private::aggregate::less(&acc.#field, &row.#field) { acc } else { row }
        }),
        _ if first => quote_spanned!(span=> |acc, row| {
            if ::flow::__private::aggregate::less(&acc.#field, &row.#field) { row } else { acc }
        }),
        _ => quote_spanned!(span=> |acc, row| {
            if ::flow::__private::aggregate::less(&row.#field, &acc.#field) { acc } else { row }
        }),
    };
    syn::parse2(body)
}
