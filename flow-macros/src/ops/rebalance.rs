//! `rebalance()`: spreads rows round-robin over the next operator's subtasks.
//!
//! > 1 input stream, 1 output stream

use super::{Exchange, OpSpec, Port, Role, StreamArgs};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::quote_spanned;

pub const REBALANCE: OpSpec = OpSpec {
    name: "rebalance",
    words: &["rebalance"],
    on: &[Port::Stream, Port::Keyed],
    role: Role::Partition(Exchange::Rebalance),
    args: (0, 0),
    signature: "rebalance()",
    stream_args: StreamArgs::None,
    one_to_one: true,
    side_outputs: false,
    port,
    operator: None,
};

fn port(graph: &Graph, n: &Node) -> TokenStream {
    let (t, input) = (n.port_var(), graph.input_port(n));
    quote_spanned!(n.span=> let #t = #input.rebalance();)
}
