//! `reduce(f)`: rolling reduce of a keyed stream, `f(acc, row) -> acc`; also `sum`, `min`,
//! `max`, `min_by` and `max_by`, whose function the macro writes (`aggregations.rs`).
//! Streaming mode emits every update, batch mode each key's final value.
//!
//! > 1 keyed input stream, 1 output stream

use super::{function_port, key_of, method_for, OpSpec, Port, Role};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::quote;

pub const REDUCE: OpSpec = OpSpec::new(
    "reduce",
    &["reduce", "sum", "min", "max", "min_by", "max_by"],
    &[Port::Keyed],
    Role::Operator,
    port,
)
.args(1, 1, "reduce(|acc, row| ...)")
.operator(operator)
// In streaming mode; in batch mode the operator reports its count.
.one_to_one();

fn port(graph: &Graph, n: &Node) -> TokenStream {
    let method = method_for(&n.args[0], "reduce");
    function_port(graph.input_port(n), n, &n.args[0], &method)
}

fn operator(graph: &Graph, n: &Node) -> TokenStream {
    let (f, k) = (n.spec_var(), key_of(graph, n.inputs[0]));
    quote!(::flow::__private::Reduce::new(#k, #f))
}
