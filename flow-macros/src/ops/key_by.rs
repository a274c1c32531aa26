//! `key_by(f)`: partitions the stream by `f(&row)`; keyed operators (`reduce`, functions with
//! `#[state]`) may follow. Across workers rows go to the subtask of the key's stable hash; at
//! parallelism 1 it costs nothing.
//!
//! > 1 input stream, 1 keyed output stream

use super::{Exchange, OpKind, OpSpec};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;

pub const KEY_BY: OpSpec = OpSpec {
    word: "key_by",
    kind: OpKind::KeyBy,
    args: (1, 1),
    signature: "key_by(|row| key)",
    needs_keyed: false,
    keyed_output: true,
    is_sink: false,
    exchange: Exchange::Hash,
    one_to_one: true,
};

pub fn port(graph: &Graph, n: &Node) -> TokenStream {
    let method = if n.arg_is_closure(0) {
        "key_by_closure"
    } else {
        "key_by"
    };
    super::function_port(graph, n, false, method)
}
