//! `reduce(f)`: rolling reduce of a keyed stream, `f(acc, row) -> acc`. Streaming mode emits
//! every update, batch mode each key's final value.
//!
//! > 1 keyed input stream, 1 output stream

use super::{Exchange, OpKind, OpSpec};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::quote;

pub const REDUCE: OpSpec = OpSpec {
    word: "reduce",
    kind: OpKind::Reduce,
    args: (1, 1),
    signature: "reduce(|acc, row| ...)",
    needs_keyed: true,
    keyed_output: false,
    is_sink: false,
    exchange: Exchange::Forward,
    // In streaming mode; in batch mode the operator reports its count.
    one_to_one: true,
};

pub fn port(graph: &Graph, n: &Node) -> TokenStream {
    let method = if n.arg_is_closure(0) {
        "reduce_closure"
    } else {
        "reduce"
    };
    super::function_port(graph, n, true, method)
}

pub fn chain(graph: &Graph, n: &Node, next: TokenStream) -> TokenStream {
    let f = n.spec_var();
    let k = graph
        .key_var(n)
        .expect("reduce is checked to follow key_by");
    let op = quote!(::flow::__private::Reduce::new(::std::clone::Clone::clone(&#k), #f));
    super::chained(n, op, next)
}
