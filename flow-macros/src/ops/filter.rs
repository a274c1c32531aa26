//! `filter(f)`: keeps the rows for which `f(&row)` is `true`; with `#[state]` it needs a keyed
//! stream.
//!
//! > 1 input stream, 1 output stream

use super::{function_operator, function_port, keyed_method_for, OpSpec, Port, Role};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;

pub const FILTER: OpSpec = OpSpec::new(
    "filter",
    &["filter"],
    &[Port::Stream, Port::Keyed],
    Role::Operator,
    port,
)
.args(1, 1, "filter(f)")
.operator(operator);

fn port(graph: &Graph, n: &Node) -> TokenStream {
    let method = keyed_method_for(n, "filter");
    function_port(graph.input_port(n), n, &n.args[0], &method)
}

fn operator(graph: &Graph, n: &Node) -> TokenStream {
    function_operator(graph, n, "Filter")
}
