//! `key_by(f)`: partitions the stream by `f(&row)`; keyed operators (`reduce`, `process`,
//! windows, functions with `#[state]`) may follow. Across workers rows go to the subtask of
//! the key's stable hash; at parallelism 1 it costs nothing (the keyed operators after it
//! compute the key themselves).
//!
//! > 1 input stream, 1 keyed output stream

use super::{function_port, method_for, Exchange, OpSpec, Port, Role};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;

pub const KEY_BY: OpSpec = OpSpec::new(
    "key_by",
    &["key_by"],
    &[Port::Stream, Port::Keyed],
    Role::Partition(Exchange::Hash),
    port,
)
.args(1, 1, "key_by(|row| key)")
.one_to_one();

fn port(graph: &Graph, n: &Node) -> TokenStream {
    let method = method_for(&n.args[0], "key_by");
    function_port(graph.input_port(n), n, &n.args[0], &method)
}
