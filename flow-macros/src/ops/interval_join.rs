//! `a.key_by(..).interval_join(b.key_by(..)).between(lower, upper).process(f)`: every pair of
//! one key whose timestamps differ by `lower..=upper` ms (second minus first), as Flink's
//! interval join. The prefix words are folded into one node with `process`.
//!
//! > 2 keyed input streams, 1 output stream

use super::{function_port_as, key_of, OpSpec, Port, Role, StreamArgs};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};

/// The interval join operator, created by `process` after `between`.
pub const INTERVAL_JOIN: OpSpec = OpSpec::new(
    "interval_join",
    &["process"],
    &[Port::IntervalJoined],
    Role::Operator,
    port,
)
.args(
    1,
    1,
    "process(|first, second, out| ..) or process(|first, second, ctx, out| ..)",
)
// `ctx.output(&tag, row)` in a function with the context.
.side_outputs()
.operator(operator);

/// `interval_join(other)` of two keyed streams.
pub const INTERVAL_JOIN_BUILDER: OpSpec =
    OpSpec::prefix(&["interval_join"], &[Port::Keyed], |_, _, _| {
        Port::IntervalJoin
    })
    .args(
        1,
        1,
        "interval_join(other_keyed_stream).between(lower_ms, upper_ms)",
    )
    .stream_args(StreamArgs::First);

/// `.between(lower_ms, upper_ms)`: the interval join's bounds, both inclusive.
pub const BETWEEN: OpSpec = OpSpec::prefix(&["between"], &[Port::IntervalJoin], |_, _, _| {
    Port::IntervalJoined
})
.args(2, 2, "between(lower_ms, upper_ms)");

/// `__fN` = ((lower, upper), function), its bounds evaluated once.
fn port(graph: &Graph, n: &Node) -> TokenStream {
    let (f, bounds, function) = (
        n.spec_var(),
        format_ident!("__b{}", n.id),
        format_ident!("__g{}", n.id),
    );
    let join = n.prefix("interval_join").expect("folded into the node");
    let (first, second) = (graph.port_of(n.inputs[0]), graph.port_of(n.inputs[1]));
    let joined = quote_spanned!(join.span=> #first.interval_join(&#second));
    let between = n.prefix("between").expect("folded into the node");
    let (lower, upper) = (&between.args[0], &between.args[1]);
    // `|first, second, ctx, out|`: the function takes the join's context.
    let method = match &n.args[0] {
        syn::Expr::Closure(c) if c.inputs.len() == 4 => "process_with_context_closure",
        _ => "process_closure",
    };
    let call = function_port_as(joined, n, &n.args[0], method, &function);
    quote! {
        let #bounds: (i64, i64) = (#lower, #upper);
        #call
        let #f = (#bounds, #function);
    }
}

fn operator(graph: &Graph, n: &Node) -> TokenStream {
    let (f, ka, kb) = (
        n.spec_var(),
        key_of(graph, n.inputs[0]),
        key_of(graph, n.inputs[1]),
    );
    quote!(::flow::__private::IntervalJoin::new(#ka, #kb, #f.0, #f.1))
}
