//! `map(f)`: one row in, one row out. `f` is a closure, a fn, or a `#[map_function]`; with
//! `#[state]` it needs a keyed stream.
//!
//! > 1 input stream, 1 output stream

use super::{Exchange, OpKind, OpSpec};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::quote;

pub const MAP: OpSpec = OpSpec {
    word: "map",
    kind: OpKind::Map,
    args: (1, 1),
    signature: "map(f)",
    needs_keyed: false,
    keyed_output: false,
    is_sink: false,
    exchange: Exchange::Forward,
    one_to_one: true,
};

pub fn port(graph: &Graph, n: &Node) -> TokenStream {
    let method = if n.arg_is_closure(0) {
        "map_closure"
    } else {
        "map"
    };
    super::function_port(graph, n, true, method)
}

pub fn chain(graph: &Graph, n: &Node, next: TokenStream) -> TokenStream {
    let f = n.spec_var();
    let op = match graph.key_var(n) {
        Some(k) => quote!(::flow::__private::Map::keyed(::std::clone::Clone::clone(&#k), #f)),
        None => quote!(::flow::__private::Map::new(#f)),
    };
    super::chained(n, op, next)
}
