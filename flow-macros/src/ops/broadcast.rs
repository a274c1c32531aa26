//! `broadcast()`: every row to every subtask of the next operator (Flink's `broadcast()`);
//! `a.connect(b.broadcast()).process(f)` keeps broadcast state.
//!
//! > 1 input stream, 1 output stream

use super::{Exchange, OpSpec, Port, Role};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::quote_spanned;

pub const BROADCAST: OpSpec = OpSpec::new(
    "broadcast",
    &["broadcast"],
    &[Port::Stream, Port::Keyed],
    Role::Partition(Exchange::Broadcast),
    port,
)
.args(0, 0, "broadcast()")
.one_to_one();

fn port(graph: &Graph, n: &Node) -> TokenStream {
    let (t, input) = (n.port_var(), graph.input_port(n));
    quote_spanned!(n.span=> let #t = #input.broadcast();)
}
