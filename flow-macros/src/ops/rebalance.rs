//! `rebalance()`: spreads rows round-robin over the next operator's subtasks.
//!
//! > 1 input stream, 1 output stream

use super::{Exchange, OpKind, OpSpec};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::quote_spanned;

pub const REBALANCE: OpSpec = OpSpec {
    word: "rebalance",
    kind: OpKind::Rebalance,
    args: (0, 0),
    signature: "rebalance()",
    needs_keyed: false,
    keyed_output: false,
    is_sink: false,
    exchange: Exchange::Rebalance,
    one_to_one: true,
};

pub fn port(graph: &Graph, n: &Node) -> TokenStream {
    let (t, input) = (n.port_var(), graph.input_port(n, false));
    quote_spanned!(n.span=> let #t = #input.same();)
}
