//! `source(src, watermarks)`, `from_collection(items)`, `from_iter(iter)`: where a chain
//! starts. The watermark strategy is optional (default: no watermarks).
//!
//! > 0 input streams, 1 output stream

use super::{OpSpec, Role};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::{format_ident, quote_spanned};

pub const SOURCE: OpSpec = OpSpec::new(
    "source",
    &["source", "from_collection", "from_iter"],
    &[],
    Role::Source,
    port,
)
.args(1, 2, "source(source, watermarks)");

fn port(_: &Graph, n: &Node) -> TokenStream {
    let (s, t) = (n.spec_var(), n.port_var());
    let arg = &n.args[0];
    // The source value is bound first and the calls are spanned at it, so that a value that
    // is not a source (or not a collection) is reported once, on the user's argument.
    let span = syn::spanned::Spanned::span(arg);
    let value = format_ident!("__a{}", n.id, span = span);
    let source = if n.word == "source" {
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

/// Whether source node `s` is declared without watermarks.
pub fn without_watermarks(s: &Node) -> bool {
    s.args.get(1).is_none_or(names_no_watermarks)
}

/// Whether a watermark strategy's tokens say `no_watermarks`.
pub fn names_no_watermarks(strategy: &syn::Expr) -> bool {
    quote::ToTokens::to_token_stream(strategy)
        .to_string()
        .contains("no_watermarks")
}
