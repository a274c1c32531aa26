//! `union(other, ...)`: merges streams of the same row type.
//!
//! > n input streams, 1 output stream

use super::{Exchange, OpKind, OpSpec};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::quote_spanned;

pub const UNION: OpSpec = OpSpec {
    word: "union",
    kind: OpKind::Union,
    args: (1, usize::MAX),
    signature: "union(other, ...)",
    needs_keyed: false,
    keyed_output: false,
    is_sink: false,
    exchange: Exchange::Merge,
    one_to_one: true,
};

pub fn port(graph: &Graph, n: &Node) -> TokenStream {
    let (t, first) = (n.port_var(), graph.port_of(n.inputs[0], false));
    let checks = n.inputs[1..].iter().zip(&n.args).map(|(&i, arg)| {
        let other = graph.port_of(i, false);
        quote_spanned!(syn::spanned::Spanned::span(arg)=> #first.union_input(&#other);)
    });
    quote_spanned! {n.span=>
        #(#checks)*
        let #t = #first.same();
    }
}
