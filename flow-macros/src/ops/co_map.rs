//! `a.connect(b).co_map(f1, f2)`: maps each input with its own function into one output type
//! (Flink's `CoMapFunction`). With `key_by` on both inputs they are hash-partitioned by key.
//!
//! > 2 input streams, 1 output stream

use super::{OpSpec, Port, Role};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};

pub const CO_MAP: OpSpec = OpSpec::new(
    "co_map",
    &["co_map"],
    &[Port::Connected, Port::KeyedConnected],
    Role::Operator,
    port,
)
.args(2, 2, "co_map(|first| .., |second| ..)")
.operator(operator)
.one_to_one();

/// `let (__fN, __tN) = <first>.connect(&<second>).<method>(f1, f2);`
pub fn port(graph: &Graph, n: &Node) -> TokenStream {
    let (f, t) = (n.spec_var(), n.port_var());
    let connected = connected_port(graph, n);
    let method = format_ident!("{}", n.word, span = n.span);
    let (a, b) = (&n.args[0], &n.args[1]);
    quote_spanned!(n.span=> let (#f, #t) = #connected.#method(#a, #b);)
}

/// The port of the two connected inputs of node `n`.
pub fn connected_port(graph: &Graph, n: &Node) -> TokenStream {
    let span = n.prefix("connect").map_or(n.span, |p| p.span);
    let (first, second) = (graph.port_of(n.inputs[0]), graph.port_of(n.inputs[1]));
    // Two keyed streams are connected with their key type (for a co-process function's key).
    let method = match n.port {
        Port::KeyedConnected => format_ident!("connect_keyed", span = span),
        _ => format_ident!("connect", span = span),
    };
    quote_spanned!(span=> #first.#method(&#second))
}

fn operator(_: &Graph, n: &Node) -> TokenStream {
    let f = n.spec_var();
    quote!(::flow::__private::CoMap::new(#f.0, #f.1))
}
