//! `connect(other)` with `co_map(f1, f2)` / `co_flat_map(f1, f2)`: two streams of any row
//! types into one operator with a function per input (Flink's `ConnectedStreams`). The stage
//! reads both inputs through two input gates; the watermark is their minimum.
//!
//! > 2 input streams, 1 output stream

use super::{Exchange, OpKind, OpSpec};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};

pub const CONNECT: OpSpec = OpSpec {
    word: "connect",
    kind: OpKind::Connect,
    args: (1, 1),
    signature: "connect(other_stream)",
    needs_keyed: false,
    keyed_output: false,
    is_sink: false,
    exchange: Exchange::Merge,
    one_to_one: true,
};

pub const CO_MAP: OpSpec = OpSpec {
    word: "co_map",
    kind: OpKind::CoMap,
    args: (2, 2),
    signature: "co_map(|first| .., |second| ..)",
    needs_keyed: false,
    keyed_output: false,
    is_sink: false,
    exchange: Exchange::Forward,
    one_to_one: true,
};

pub const CO_FLAT_MAP: OpSpec = OpSpec {
    word: "co_flat_map",
    kind: OpKind::CoFlatMap,
    args: (2, 2),
    signature: "co_flat_map(|first| iter, |second| iter)",
    needs_keyed: false,
    keyed_output: false,
    is_sink: false,
    exchange: Exchange::Forward,
    one_to_one: false,
};

pub fn port(graph: &Graph, n: &Node) -> TokenStream {
    let t = n.port_var();
    match n.spec.kind {
        OpKind::Connect => {
            if keyed_connect(graph, n) {
                let (first, second) = (
                    graph.port_of(n.inputs[0], true),
                    graph.port_of(n.inputs[1], true),
                );
                return quote_spanned!(n.span=> let #t = #first.connect_keyed(&#second););
            }
            let (first, second) = (
                graph.port_of(n.inputs[0], false),
                graph.port_of(n.inputs[1], false),
            );
            quote_spanned!(n.span=> let #t = #first.connect(&#second);)
        }
        _ => {
            let (f, input, a, b) = (
                n.spec_var(),
                graph.input_port(n, false),
                &n.args[0],
                &n.args[1],
            );
            let method = format_ident!("{}", n.spec.word, span = n.span);
            quote_spanned!(n.span=> let (#f, #t) = #input.#method(#a, #b);)
        }
    }
}

/// The two-input operator of function node `n` (after a `connect`).
pub fn chain(n: &Node, next: TokenStream) -> TokenStream {
    let f = n.spec_var();
    let op = match n.spec.kind {
        OpKind::CoMap => quote!(::flow::__private::CoMap::new(#f.0, #f.1)),
        _ => quote!(::flow::__private::CoFlatMap::new(#f.0, #f.1)),
    };
    super::chained(n, op, next)
}

pub const INTERVAL_JOIN: OpSpec = OpSpec {
    word: "interval_join",
    kind: OpKind::IntervalJoin,
    args: (1, 1),
    signature: "interval_join(other_keyed_stream).between(lower_ms, upper_ms)",
    needs_keyed: true,
    keyed_output: false,
    is_sink: false,
    exchange: Exchange::Merge,
    one_to_one: false,
};

/// `let (__fJ, __tJ)`-style port of an interval join, with its bounds evaluated once.
pub fn interval_join_port(graph: &Graph, n: &Node) -> TokenStream {
    let (t, first, second) = (
        n.port_var(),
        graph.port_of(n.inputs[0], true),
        graph.port_of(n.inputs[1], true),
    );
    let bounds = n.lateness_var();
    let value = match &n.lateness {
        Some(e) => {
            let span = syn::spanned::Spanned::span(e);
            quote_spanned!(span=> { let __b: (i64, i64) = #e; __b })
        }
        None => quote!((0i64, 0i64)),
    };
    quote_spanned! {n.span=>
        let #t = #first.interval_join(&#second);
        let #bounds: (i64, i64) = #value;
    }
}

/// The interval join operator for `process` node `n` after join node `j`.
pub fn interval_join_chain(graph: &Graph, j: &Node, n: &Node, next: TokenStream) -> TokenStream {
    let (ka, kb) = (
        graph.node(j.inputs[0]).spec_var(),
        graph.node(j.inputs[1]).spec_var(),
    );
    let (bounds, f) = (j.lateness_var(), n.spec_var());
    let op = quote! {
        ::flow::__private::IntervalJoin::new(
            ::std::clone::Clone::clone(&#ka), ::std::clone::Clone::clone(&#kb), #bounds, #f,
        )
    };
    super::chained(n, op, next)
}

pub const WINDOW_JOIN: OpSpec = OpSpec {
    word: "window_join",
    kind: OpKind::WindowJoin,
    args: (2, 2),
    signature: "window_join(other_keyed_stream, TumblingEventTimeWindows::of(..))",
    needs_keyed: true,
    keyed_output: false,
    is_sink: false,
    exchange: Exchange::Merge,
    one_to_one: false,
};

/// The port of a window join: checks both key types, keeps the windows spec.
pub fn window_join_port(graph: &Graph, n: &Node) -> TokenStream {
    let (f, t) = (n.spec_var(), n.port_var());
    let (first, second, windows) = (
        graph.port_of(n.inputs[0], true),
        graph.port_of(n.inputs[1], true),
        &n.args[1],
    );
    quote_spanned!(n.span=> let (#f, #t) = #first.window_join(&#second, #windows);)
}

/// The window join operator for `process` node `n` after join node `j`.
pub fn window_join_chain(graph: &Graph, j: &Node, n: &Node, next: TokenStream) -> TokenStream {
    let (ka, kb) = (
        graph.node(j.inputs[0]).spec_var(),
        graph.node(j.inputs[1]).spec_var(),
    );
    let (w, f) = (j.spec_var(), n.spec_var());
    let op = quote! {
        ::flow::__private::WindowJoin::new(
            ::std::clone::Clone::clone(&#ka), ::std::clone::Clone::clone(&#kb), ::std::clone::Clone::clone(&#w), #f,
        )
    };
    super::chained(n, op, next)
}

pub const BROADCAST: OpSpec = OpSpec {
    word: "broadcast",
    kind: OpKind::Broadcast,
    args: (0, 0),
    signature: "broadcast()",
    needs_keyed: false,
    keyed_output: false,
    is_sink: false,
    exchange: Exchange::Forward,
    one_to_one: true,
};

/// `let __tB = __tX.broadcast();`
pub fn broadcast_port(graph: &Graph, n: &Node) -> TokenStream {
    let (t, input) = (n.port_var(), graph.input_port(n, false));
    quote_spanned!(n.span=> let #t = #input.broadcast();)
}

/// The broadcast-process operator for `process` node `n` after a `connect`.
pub fn broadcast_process_chain(n: &Node, next: TokenStream) -> TokenStream {
    let f = n.spec_var();
    super::chained(
        n,
        quote!(::flow::__private::BroadcastProcess::new(#f)),
        next,
    )
}

/// Whether connect node `c` joins two keyed streams.
pub fn keyed_connect(graph: &Graph, c: &Node) -> bool {
    c.spec.kind == OpKind::Connect && c.inputs.iter().all(|&i| graph.node(i).spec.keyed_output)
}

/// The keyed co-process operator for `process` node `n` after keyed connect `c`.
pub fn co_process_chain(graph: &Graph, c: &Node, n: &Node, next: TokenStream) -> TokenStream {
    let (ka, kb) = (
        graph.node(c.inputs[0]).spec_var(),
        graph.node(c.inputs[1]).spec_var(),
    );
    let f = n.spec_var();
    let op = quote! {
        ::flow::__private::KeyedProcess::new(
            ::flow::__private::EitherKey(::std::clone::Clone::clone(&#ka), ::std::clone::Clone::clone(&#kb)),
            ::flow::__private::CoProcess(#f),
            __event_time,
        )
    };
    super::chained(n, op, next)
}
