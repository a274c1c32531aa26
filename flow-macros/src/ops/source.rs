//! `source(src, watermarks)`, `from_collection(items)`, `from_iter(iter)`.
//!
//! > 0 input streams, 1 output stream

use super::{Exchange, OpKind, OpSpec};
use crate::graph::Node;
use proc_macro2::TokenStream;
use quote::{format_ident, quote_spanned};

pub const SOURCE: OpSpec = OpSpec {
    word: "source",
    kind: OpKind::Source,
    args: (1, 2),
    signature: "source(source, watermarks)",
    needs_keyed: false,
    keyed_output: false,
    is_sink: false,
    exchange: Exchange::Forward,
    one_to_one: false,
};

/// The source functions a chain may start with.
pub const SOURCE_FUNCTIONS: &[(&str, usize, usize)] = &[
    ("source", 1, 2),
    ("from_collection", 1, 2),
    ("from_iter", 1, 2),
];

pub fn port(n: &Node) -> TokenStream {
    let (s, t) = (n.spec_var(), n.port_var());
    let func = n.source_func.as_deref().unwrap_or("source");
    let arg = &n.args[0];
    // The source value is bound first and the calls are spanned at it, so that a value that
    // is not a source (or not a collection) is reported once, on the user's argument.
    let span = syn::spanned::Spanned::span(arg);
    let value = format_ident!("__a{}", n.id, span = span);
    let source = if func == "source" {
        quote_spanned!(span=> #value)
    } else {
        quote_spanned!(span=> ::flow::__private::collection_source(#value))
    };
    let watermarks = match n.args.get(1) {
        Some(w) => quote_spanned!(n.span=> #w),
        None => quote_spanned!(n.span=> ::flow::Watermarks::no_watermarks()),
    };
    quote_spanned! {span=>
        let #value = #arg;
        #[allow(unused_mut)]
        let (mut #s, #t) = ::flow::__private::source(#source, #watermarks);
    }
}
