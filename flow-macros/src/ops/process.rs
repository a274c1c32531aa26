//! `process(f)`: after a window, the window's results from all of its rows at once, with the
//! key and the window's bounds: `|key, window, rows, out| out.push(..)` or a
//! `ProcessWindowFunction`. On a keyed stream, a `#[process_function]` with keyed state and
//! timers (Flink's `KeyedProcessFunction`).
//!
//! > 1 windowed or keyed input stream, 1 output stream

use super::{Exchange, OpKind, OpSpec};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::quote;

pub const PROCESS: OpSpec = OpSpec {
    word: "process",
    kind: OpKind::Process,
    args: (1, 1),
    signature: "process(|key, window, rows, out| ..)",
    needs_keyed: false,
    keyed_output: false,
    is_sink: false,
    exchange: Exchange::Forward,
    one_to_one: false,
};

pub fn port(graph: &Graph, n: &Node) -> TokenStream {
    let after_join = n.inputs.first().is_some_and(|&i| {
        matches!(
            graph.node(i).spec.kind,
            super::OpKind::IntervalJoin | super::OpKind::WindowJoin
        )
    });
    let keyed_connect = n
        .inputs
        .first()
        .is_some_and(|&i| super::connect::keyed_connect(graph, graph.node(i)));
    let method = if keyed_connect {
        "co_process"
    } else if n.arg_is_closure(0) || after_join {
        "process_closure"
    } else {
        "process"
    };
    let port = super::function_port(graph, n, true, method);
    // A keyed (co-)process function on a stream whose sources have no watermarks must not
    // register event-time timers: checked on the user's argument.
    let keyed = graph.keyed_input(n) || keyed_connect;
    if keyed && !after_join && !crate::check::has_event_time(graph, n) {
        let arg = &n.args[0];
        let span = syn::spanned::Spanned::span(arg);
        let f = n.spec_var();
        let target = crate::codegen::respan(quote::quote!(&#f), span);
        return quote::quote_spanned! {span=>
            #port
            ::flow::__private::without_event_timers(#target);
        };
    }
    port
}

/// The keyed process operator with its side outputs `side` (the windowed `process` is built by
/// `window.rs`).
pub fn chain_with_side(
    graph: &Graph,
    n: &Node,
    next: TokenStream,
    side: TokenStream,
) -> TokenStream {
    let f = n.spec_var();
    let k = graph
        .key_var(n)
        .expect("keyed `process` is checked to follow key_by");
    let op = quote!(::flow::__private::KeyedProcess::new(::std::clone::Clone::clone(&#k), #f, __event_time));
    super::chained_with_side(n, op, next, side)
}
