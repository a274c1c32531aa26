//! `process(f)` on a stream that is not keyed: a process function (Flink's `ProcessFunction`)
//! that emits any number of rows per row and sends rows to side outputs by tag. No key, no
//! timers: after `key_by`, `process` is `keyed_process`.
//!
//! > 1 input stream, 1 output stream (and side outputs)

use super::{function_port, method_for, OpSpec, Port, Role};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::quote;

pub const PROCESS: OpSpec = OpSpec::new(
    "process",
    &["process"],
    &[Port::Stream],
    Role::Operator,
    port,
)
.args(
    1,
    1,
    "process(my_process_function) or process(|row, ctx, out| ..)",
)
.operator(operator)
.side_outputs();

fn port(graph: &Graph, n: &Node) -> TokenStream {
    let method = method_for(&n.args[0], "process");
    function_port(graph.input_port(n), n, &n.args[0], &method)
}

fn operator(_: &Graph, n: &Node) -> TokenStream {
    let f = n.spec_var();
    quote!(::flow::__private::Process::new(#f))
}
