//! `a.connect(b.broadcast()).process(f)`: every subtask receives every row of `b` and keeps
//! broadcast state from it that the rows of `a` read (Flink's `BroadcastProcessFunction`).
//!
//! > 2 input streams (the second broadcast), 1 output stream

use super::{function_port, OpSpec, Port, Role};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::quote;

pub const BROADCAST_PROCESS: OpSpec = OpSpec::new(
    "broadcast_process",
    &["process"],
    &[Port::BroadcastConnected],
    Role::Operator,
    port,
)
.args(1, 1, "process(my_broadcast_process_function)")
.operator(operator);

fn port(graph: &Graph, n: &Node) -> TokenStream {
    let connected = super::co_map::connected_port(graph, n);
    function_port(connected, n, &n.args[0], "broadcast_process")
}

fn operator(_: &Graph, n: &Node) -> TokenStream {
    let f = n.spec_var();
    quote!(::flow::__private::BroadcastProcess::new(#f))
}
