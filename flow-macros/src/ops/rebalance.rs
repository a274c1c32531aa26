//! `rebalance()`: spreads rows round-robin over the next operator's subtasks.
//!
//! > 1 input stream, 1 output stream

use super::{Exchange, OpSpec, Port, Role};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::quote_spanned;

pub const REBALANCE: OpSpec = OpSpec::new(
    "rebalance",
    &["rebalance"],
    &[Port::Stream, Port::Keyed],
    Role::Partition(Exchange::Rebalance),
    port,
)
.args(0, 0, "rebalance()")
.one_to_one();

fn port(graph: &Graph, n: &Node) -> TokenStream {
    let (t, input) = (n.port_var(), graph.input_port(n));
    quote_spanned!(n.span=> let #t = #input.rebalance();)
}
