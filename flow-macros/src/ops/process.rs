//! `process(f)`: a window's results from all of its rows at once, with the key and the
//! window's bounds: `|key, window, rows, out| out.push(..)` or a `ProcessWindowFunction`.
//!
//! > 1 windowed input stream, 1 output stream

use super::{Exchange, OpKind, OpSpec};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;

pub const PROCESS: OpSpec = OpSpec {
    word: "process",
    kind: OpKind::Process,
    args: (1, 1),
    signature: "process(|key, window, rows, out| ..)",
    needs_keyed: false,
    keyed_output: false,
    is_sink: false,
    exchange: Exchange::Forward,
    one_to_one: false,
};

pub fn port(graph: &Graph, n: &Node) -> TokenStream {
    let method = if n.arg_is_closure(0) {
        "process_closure"
    } else {
        "process"
    };
    super::function_port(graph, n, true, method)
}
