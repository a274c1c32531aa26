//! The DSL's words: one file per operator with its spec (arguments, what input it needs, how
//! rows reach it) and its codegen. The runtime has the same file names under `operator/`.

pub mod aggregate;
pub mod aggregations;
pub mod collect;
pub mod connect;
pub mod filter;
pub mod flat_map;
pub mod key_by;
pub mod map;
pub mod print;
pub mod process;
pub mod rebalance;
pub mod reduce;
pub mod side_output;
pub mod sink_to;
pub mod source;
pub mod timestamps;
pub mod union;
pub mod window;

use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::{format_ident, quote_spanned};

/// What an operator is, for planning and codegen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Source,
    Map,
    Filter,
    FlatMap,
    KeyBy,
    Reduce,
    Rebalance,
    Union,
    SinkTo,
    Print,
    Collect,
    Timestamps,
    Window,
    WindowAll,
    CountWindow,
    Aggregate,
    Process,
    SideOutput,
    Connect,
    CoMap,
    CoFlatMap,
    IntervalJoin,
    WindowJoin,
    Broadcast,
}

/// How an operator's input rows reach it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exchange {
    /// Fused with its input when the parallelism matches.
    Forward,
    /// Always a new stage, rows routed by key hash.
    Hash,
    /// Always a new stage, rows spread round-robin.
    Rebalance,
    /// Always a new stage: several inputs merge in one input gate.
    Merge,
}

/// The static description of a DSL word.
pub struct OpSpec {
    /// The word, as written after the dot.
    pub word: &'static str,
    pub kind: OpKind,
    /// Minimum and maximum argument count (`usize::MAX`: any).
    pub args: (usize, usize),
    /// How the arguments read, for error messages: `map(f)`.
    pub signature: &'static str,
    /// Whether the input must be a keyed stream.
    pub needs_keyed: bool,
    /// Whether the output is a keyed stream.
    pub keyed_output: bool,
    /// Whether it ends the stream.
    pub is_sink: bool,
    pub exchange: Exchange,
    /// Whether it emits exactly one row per input row.
    pub one_to_one: bool,
}

/// Every operator word.
pub const OPS: &[&OpSpec] = &[
    &map::MAP,
    &filter::FILTER,
    &flat_map::FLAT_MAP,
    &key_by::KEY_BY,
    &reduce::REDUCE,
    &rebalance::REBALANCE,
    &union::UNION,
    &sink_to::SINK_TO,
    &print::PRINT,
    &collect::COLLECT,
    &timestamps::TIMESTAMPS,
    &window::WINDOW,
    &window::WINDOW_ALL,
    &window::COUNT_WINDOW,
    &aggregate::AGGREGATE,
    &process::PROCESS,
    &aggregations::SUM,
    &aggregations::MIN,
    &aggregations::MAX,
    &aggregations::MIN_BY,
    &aggregations::MAX_BY,
    &side_output::SIDE_OUTPUT,
    &connect::CONNECT,
    &connect::CO_MAP,
    &connect::CO_FLAT_MAP,
    &connect::INTERVAL_JOIN,
    &connect::WINDOW_JOIN,
    &connect::BROADCAST,
];

/// Words that modify the operator before them instead of adding one.
pub const MODIFIERS: &[&str] = &[
    "parallelism",
    "name",
    "allowed_lateness",
    "side_output_late_data",
];

pub fn lookup(word: &str) -> Option<&'static OpSpec> {
    OPS.iter().copied().find(|op| op.word == word)
}

/// Emits `let (__fN, __tN) = <input port>.<method>(args);` for node `n`: the typed walk that
/// lets rustc infer and check every row type on the user's tokens.
pub fn port(graph: &Graph, n: &Node) -> TokenStream {
    match n.spec.kind {
        OpKind::Source => source::port(n),
        OpKind::Map => map::port(graph, n),
        OpKind::Filter => filter::port(graph, n),
        OpKind::FlatMap => flat_map::port(graph, n),
        OpKind::KeyBy => key_by::port(graph, n),
        OpKind::Reduce => reduce::port(graph, n),
        OpKind::Rebalance => rebalance::port(graph, n),
        OpKind::Union => union::port(graph, n),
        OpKind::SinkTo => sink_to::port(graph, n),
        OpKind::Print => print::port(graph, n),
        OpKind::Collect => collect::port(graph, n),
        OpKind::Timestamps => timestamps::port(graph, n),
        OpKind::Window | OpKind::WindowAll | OpKind::CountWindow => window::port(graph, n),
        OpKind::Aggregate => aggregate::port(graph, n),
        OpKind::Process => process::port(graph, n),
        OpKind::SideOutput => side_output::port(n),
        OpKind::Connect | OpKind::CoMap | OpKind::CoFlatMap => connect::port(graph, n),
        OpKind::IntervalJoin => connect::interval_join_port(graph, n),
        OpKind::WindowJoin => connect::window_join_port(graph, n),
        OpKind::Broadcast => connect::broadcast_port(graph, n),
    }
}

/// `let (__fN, __tN) = <input>.<method>(<function>);`: the port of an operator that takes a
/// function (`map`, `filter`, `flat_map`, `reduce`, `key_by`).
///
/// A closure keeps its own spans, so that rustc checks its signature against the stream's row
/// type where the user wrote it. Any other function (a `#[map_function]`, a fn, a value) is
/// bound to a variable first, and the call is spanned at it: rustc then reports a function
/// that does not fit the stream once, on the function's name.
pub fn function_port(graph: &Graph, n: &Node, keyed_ok: bool, method: &str) -> TokenStream {
    let (f, t, input, arg) = (
        n.spec_var(),
        n.port_var(),
        graph.input_port(n, keyed_ok),
        &n.args[0],
    );
    if matches!(arg, syn::Expr::Closure(_)) {
        let method = format_ident!("{}", method, span = n.span);
        return quote_spanned!(n.span=> let (#f, #t) = #input.#method(#arg););
    }
    let span = syn::spanned::Spanned::span(arg);
    let method = format_ident!("{}", method, span = span);
    let value = format_ident!("__a{}", n.id, span = span);
    quote_spanned! {span=>
        let #value = #arg;
        let (#f, #t) = #input.#method(#value);
    }
}

/// `op` (an operator expression) of node `n`, chained before `next`.
pub fn chained(n: &Node, op: TokenStream, next: TokenStream) -> TokenStream {
    chained_with_side(n, op, next, quote::quote!(::flow::__private::NoSideOutputs))
}

/// `op` of node `n` with side outputs `side`, chained before `next`.
pub fn chained_with_side(
    n: &Node,
    op: TokenStream,
    next: TokenStream,
    side: TokenStream,
) -> TokenStream {
    let (id, name) = (n.id as u32, n.label());
    quote::quote!(::flow::__private::Chained::with_side_outputs(#op, #id, #name, #next, #side))
}

/// The side outputs of an operator: each tag variable with the collector reading it.
pub fn side_outputs(outputs: impl IntoIterator<Item = (syn::Ident, TokenStream)>) -> TokenStream {
    let outputs: Vec<_> = outputs.into_iter().collect();
    outputs
        .into_iter()
        .rev()
        .fold(quote::quote!(::flow::__private::NoSideOutputs), |rest, (tag, collector)| {
            quote::quote!(::flow::__private::SideOutput::new(&#tag, #collector, #rest))
        })
}

/// The collector expression for node `n` in a stage's chain, given `next`, the expression
/// that receives its output; operators that do nothing per row (partitionings, windows) are
/// `next` itself.
pub fn chain(graph: &Graph, n: &Node, next: TokenStream) -> TokenStream {
    if let Some(w) = graph.window_of(n) {
        return window::chain(graph, w, n, next, None);
    }
    match n.spec.kind {
        OpKind::Map => map::chain(graph, n, next),
        OpKind::Filter => filter::chain(graph, n, next),
        OpKind::FlatMap => flat_map::chain(graph, n, next),
        OpKind::Reduce => reduce::chain(graph, n, next),
        OpKind::SinkTo | OpKind::Print | OpKind::Collect => sink_to::writer(n),
        OpKind::Source
        | OpKind::KeyBy
        | OpKind::Rebalance
        | OpKind::Union
        | OpKind::Timestamps
        | OpKind::Window
        | OpKind::WindowAll
        | OpKind::CountWindow
        | OpKind::SideOutput
        | OpKind::Connect
        | OpKind::IntervalJoin
        | OpKind::WindowJoin
        | OpKind::Broadcast => next,
        OpKind::CoMap | OpKind::CoFlatMap => connect::chain(n, next),
        OpKind::Process => match n.inputs.first().map(|&i| graph.node(i)) {
            Some(j) if j.spec.kind == OpKind::IntervalJoin => {
                connect::interval_join_chain(graph, j, n, next)
            }
            Some(j) if j.spec.kind == OpKind::WindowJoin => {
                connect::window_join_chain(graph, j, n, next)
            }
            Some(j) if connect::keyed_connect(graph, j) => {
                connect::co_process_chain(graph, j, n, next)
            }
            Some(j) if j.spec.kind == OpKind::Connect => connect::broadcast_process_chain(n, next),
            _ => process::chain_with_side(
                graph,
                n,
                next,
                quote::quote!(::flow::__private::NoSideOutputs),
            ),
        },
        // Only ever after a window (checked), handled above.
        OpKind::Aggregate => next,
    }
}
