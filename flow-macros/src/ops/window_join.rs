//! `a.key_by(..).window_join(b.key_by(..), windows).process(f)`: every pair of rows of one key
//! in the same window, when the window fires (Flink's `join(..).where(..).equal_to(..)
//! .window(..)`); `process(|first, second, ctx, out| ..)` also gets a `JoinContext` (the rows'
//! timestamps, side outputs). Folded into one node with `process`.
//!
//! > 2 keyed input streams, 1 output stream

use super::{function_port_as, key_of, OpSpec, Port, Role, StreamArgs};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};

/// The window join operator, created by `process` after `window_join`.
pub const WINDOW_JOIN: OpSpec = OpSpec::new(
    "window_join",
    &["process"],
    &[Port::WindowJoined],
    Role::Operator,
    port,
)
.args(
    1,
    1,
    "process(|first, second, out| ..) or process(|first, second, ctx, out| ..)",
)
.side_outputs()
.operator(operator);

/// `window_join(other, windows)` of two keyed streams.
pub const WINDOW_JOIN_BUILDER: OpSpec =
    OpSpec::prefix(&["window_join"], &[Port::Keyed], |_, _, _| {
        Port::WindowJoined
    })
    .args(
        2,
        2,
        "window_join(other_keyed_stream, TumblingEventTimeWindows::of(..))",
    )
    .stream_args(StreamArgs::First);

/// The windows of a window join node `n` (`None` for any other node).
pub fn windows(n: &Node) -> Option<&syn::Expr> {
    n.prefix("window_join").map(|p| &p.args[1])
}

/// `__fN` = (windows, function).
fn port(graph: &Graph, n: &Node) -> TokenStream {
    let (f, windows_var, joined, function) = (
        n.spec_var(),
        format_ident!("__w{}", n.id),
        format_ident!("__j{}", n.id),
        format_ident!("__g{}", n.id),
    );
    let join = n.prefix("window_join").expect("folded into the node");
    let (first, second) = (graph.port_of(n.inputs[0]), graph.port_of(n.inputs[1]));
    let w = windows(n).expect("folded into the node");
    // `|first, second, ctx, out|`: the function takes a `JoinContext`.
    let method = match &n.args[0] {
        syn::Expr::Closure(c) if c.inputs.len() == 4 => "process_with_context_closure",
        _ => "process_closure",
    };
    let call = function_port_as(quote!(#joined), n, &n.args[0], method, &function);
    quote_spanned! {join.span=>
        let (#windows_var, #joined) = #first.window_join(&#second, #w);
        #call
        let #f = (#windows_var, #function);
    }
}

fn operator(graph: &Graph, n: &Node) -> TokenStream {
    let (f, ka, kb) = (
        n.spec_var(),
        key_of(graph, n.inputs[0]),
        key_of(graph, n.inputs[1]),
    );
    quote!(::flow::__private::WindowJoin::new(#ka, #kb, #f.0, #f.1))
}
