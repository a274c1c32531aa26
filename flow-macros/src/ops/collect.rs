//! `collect()`: hands the rows back to the program: `let rows = stream.collect();` binds a
//! handle whose `take()` returns them after `execute`.
//!
//! > 1 input stream, 0 output streams

use super::{Exchange, OpKind, OpSpec};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::quote_spanned;

pub const COLLECT: OpSpec = OpSpec {
    word: "collect",
    kind: OpKind::Collect,
    args: (0, 0),
    signature: "collect()",
    needs_keyed: false,
    keyed_output: false,
    is_sink: true,
    exchange: Exchange::Forward,
    one_to_one: true,
};

/// The handle declared before the job block, in the user's scope.
pub fn handle(n: &Node) -> TokenStream {
    let name = n
        .collect_var
        .as_ref()
        .expect("collect is checked to be bound");
    quote_spanned!(n.span=> let #name = ::flow::__private::CollectHandle::new();)
}

pub fn port(graph: &Graph, n: &Node) -> TokenStream {
    let name = n
        .collect_var
        .as_ref()
        .expect("collect is checked to be bound");
    super::sink_to::sink_port(graph, n, "sink_to", quote_spanned!(n.span=> #name.sink()))
}
