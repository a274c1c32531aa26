//! The DSL's words: one file per operator with its spec (arguments, what input it needs, how
//! rows reach it) and its codegen. The runtime has the same file names under `operator/`.

pub mod collect;
pub mod filter;
pub mod flat_map;
pub mod key_by;
pub mod map;
pub mod print;
pub mod rebalance;
pub mod reduce;
pub mod sink_to;
pub mod source;
pub mod union;

use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;

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
];

/// Words that modify the operator before them instead of adding one.
pub const MODIFIERS: &[&str] = &["parallelism", "name"];

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
    }
}

/// The collector expression for node `n` in a stage's chain, given `next`, the expression
/// that receives its output. `None` for operators that do nothing per row (their rows are
/// already where they need to be).
pub fn chain(graph: &Graph, n: &Node, next: TokenStream) -> TokenStream {
    match n.spec.kind {
        OpKind::Map => map::chain(graph, n, next),
        OpKind::Filter => filter::chain(graph, n, next),
        OpKind::FlatMap => flat_map::chain(graph, n, next),
        OpKind::Reduce => reduce::chain(graph, n, next),
        OpKind::SinkTo | OpKind::Print | OpKind::Collect => sink_to::writer(n),
        OpKind::Source | OpKind::KeyBy | OpKind::Rebalance | OpKind::Union => next,
    }
}
