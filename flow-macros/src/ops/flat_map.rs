//! `flat_map(f)`: one row in, any number out. `f` is a closure returning an iterator
//! (`|line| line.split(' ')...`), a closure pushing into a buffer (`|row, out| out.push(..)`),
//! or a `#[flat_map_function]`.
//!
//! > 1 input stream, 1 output stream

use super::{Exchange, OpKind, OpSpec};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::quote;

pub const FLAT_MAP: OpSpec = OpSpec {
    word: "flat_map",
    kind: OpKind::FlatMap,
    args: (1, 1),
    signature: "flat_map(f)",
    needs_keyed: false,
    keyed_output: false,
    is_sink: false,
    exchange: Exchange::Forward,
    one_to_one: false,
};

pub fn port(graph: &Graph, n: &Node) -> TokenStream {
    let method = match &n.args[0] {
        syn::Expr::Closure(c) if c.inputs.len() == 2 => "flat_map_push",
        syn::Expr::Closure(_) => "flat_map_iter",
        _ => "flat_map",
    };
    super::function_port(graph, n, true, method)
}

pub fn chain(graph: &Graph, n: &Node, next: TokenStream) -> TokenStream {
    let f = n.spec_var();
    let op = match graph.key_var(n) {
        Some(k) => quote!(::flow::__private::FlatMap::keyed(::std::clone::Clone::clone(&#k), #f)),
        None => quote!(::flow::__private::FlatMap::new(#f)),
    };
    super::chained(n, op, next)
}
