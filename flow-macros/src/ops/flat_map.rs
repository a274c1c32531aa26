//! `flat_map(f)`: one row in, any number out. `f` is a closure returning an iterator
//! (`|line| line.split(' ')...`), a closure pushing into a buffer (`|row, out| out.push(..)`),
//! or a `#[flat_map_function]`; with `#[state]` it needs a keyed stream.
//!
//! > 1 input stream, 1 output stream

use super::{function_operator, function_port, OpSpec, Port, Role};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;

pub const FLAT_MAP: OpSpec = OpSpec::new(
    "flat_map",
    &["flat_map"],
    &[Port::Stream, Port::Keyed],
    Role::Operator,
    port,
)
.args(1, 1, "flat_map(f)")
.operator(operator);

fn port(graph: &Graph, n: &Node) -> TokenStream {
    let method = match &n.args[0] {
        syn::Expr::Closure(c) if c.inputs.len() == 2 => "flat_map_push",
        syn::Expr::Closure(_) => "flat_map_iter",
        _ if n.port == Port::Keyed => "keyed_flat_map",
        _ => "flat_map",
    };
    function_port(graph.input_port(n), n, &n.args[0], method)
}

fn operator(graph: &Graph, n: &Node) -> TokenStream {
    function_operator(graph, n, "FlatMap")
}
