//! `key_by(..).process(f)`: a `#[process_function]` with keyed state and timers (Flink's
//! `KeyedProcessFunction`), emitting to side outputs with `ctx.output(&tag, row)`.
//!
//! > 1 keyed input stream, 1 output stream (and side outputs)

use super::{function_port, key_of, OpSpec, Port, Role};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

pub const KEYED_PROCESS: OpSpec = OpSpec::new(
    "keyed_process",
    &["process"],
    &[Port::Keyed],
    Role::Operator,
    port,
)
.args(1, 1, "process(my_process_function)")
.operator(operator)
.side_outputs();

fn port(graph: &Graph, n: &Node) -> TokenStream {
    let call = function_port(graph.input_port(n), n, &n.args[0], "keyed_process");
    let timers = without_event_timers(graph, n);
    quote!(#call #timers)
}

/// For a process function on a stream whose sources have no watermarks: the check that it
/// registers no event-time timers (they would never fire), on the user's argument.
pub fn without_event_timers(graph: &Graph, n: &Node) -> Option<TokenStream> {
    if graph.has_event_time(n) {
        return None;
    }
    let span = syn::spanned::Spanned::span(&n.args[0]);
    let f = n.spec_var();
    let target = crate::codegen::respan(quote!(&#f), span);
    Some(quote_spanned!(span=> ::flow::__private::without_event_timers(#target);))
}

fn operator(graph: &Graph, n: &Node) -> TokenStream {
    let (f, k) = (n.spec_var(), key_of(graph, n.inputs[0]));
    quote!(::flow::__private::KeyedProcess::new(#k, #f, __event_time))
}
