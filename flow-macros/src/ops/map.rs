//! `map(f)`: one row in, one row out. `f` is a closure, a fn, or a `#[map_function]`; with
//! `#[state]` it needs a keyed stream.
//!
//! > 1 input stream, 1 output stream

use super::{function_port, key_of, keyed_method_for, OpSpec, Port, Role};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::quote;

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
    let f = n.spec_var();
    match n.port {
        Port::Keyed => {
            let k = key_of(graph, n.inputs[0]);
            quote!(::flow::__private::Map::keyed(#k, #f))
        }
        _ => quote!(::flow::__private::Map::new(#f)),
    }
}
