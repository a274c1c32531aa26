//! `map(f)`: one row in, one row out. `f` is a closure, a fn, or a `#[map_function]`; with
//! `#[state]` it needs a keyed stream.
//!
//! > 1 input stream, 1 output stream

use super::{function_operator, function_port, keyed_method_for, OpSpec, Port, Role};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;

pub const MAP: OpSpec = OpSpec::new(
    "map",
    &["map"],
    &[Port::Stream, Port::Keyed],
    Role::Operator,
    port,
)
.args(1, 1, "map(f)")
.operator(operator)
.one_to_one();

fn port(graph: &Graph, n: &Node) -> TokenStream {
    let method = keyed_method_for(n, "map");
    function_port(graph.input_port(n), n, &n.args[0], &method)
}

fn operator(graph: &Graph, n: &Node) -> TokenStream {
    function_operator(graph, n, "Map")
}
