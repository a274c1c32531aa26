//! `a.key_by(..).connect(b.key_by(..)).process(f)`: a `#[co_process_function]` (Flink's
//! `KeyedCoProcessFunction`) with state and timers shared by both inputs per key.
//!
//! > 2 keyed input streams, 1 output stream

use super::{function_port, key_of, OpSpec, Port, Role};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::quote;

pub const CO_PROCESS: OpSpec = OpSpec::new(
    "co_process",
    &["process"],
    &[Port::KeyedConnected],
    Role::Operator,
    port,
)
.args(1, 1, "process(my_co_process_function)")
.operator(operator);

fn port(graph: &Graph, n: &Node) -> TokenStream {
    let connected = super::co_map::connected_port(graph, n);
    let call = function_port(connected, n, &n.args[0], "co_process");
    let timers = super::keyed_process::without_event_timers(graph, n);
    quote!(#call #timers)
}

fn operator(graph: &Graph, n: &Node) -> TokenStream {
    let (f, ka, kb) = (
        n.spec_var(),
        key_of(graph, n.inputs[0]),
        key_of(graph, n.inputs[1]),
    );
    quote! {
        ::flow::__private::KeyedProcess::new(
            ::flow::__private::EitherKey(#ka, #kb),
            ::flow::__private::CoProcess(#f),
            __event_time,
        )
    }
}
