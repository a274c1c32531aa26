//! `filter(f)`: keeps the rows for which `f(&row)` is `true`; with `#[state]` it needs a keyed
//! stream.
//!
//! > 1 input stream, 1 output stream

use super::{Exchange, OpKind, OpSpec};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::quote;

pub const FILTER: OpSpec = OpSpec {
    word: "filter",
    kind: OpKind::Filter,
    args: (1, 1),
    signature: "filter(f)",
    needs_keyed: false,
    keyed_output: false,
    is_sink: false,
    exchange: Exchange::Forward,
    one_to_one: false,
};

pub fn port(graph: &Graph, n: &Node) -> TokenStream {
    let method = if n.arg_is_closure(0) {
        "filter_closure"
    } else {
        "filter"
    };
    super::function_port(graph, n, true, method)
}

pub fn chain(graph: &Graph, n: &Node, next: TokenStream) -> TokenStream {
    let f = n.spec_var();
    let op = match graph.key_var(n) {
        Some(k) => quote!(::flow::__private::Filter::keyed(::std::clone::Clone::clone(&#k), #f)),
        None => quote!(::flow::__private::Filter::new(#f)),
    };
    super::chained(n, op, next)
}
