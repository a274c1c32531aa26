//! `aggregate(f)`: a window's result from an `AggregateFunction` (create, add, get_result,
//! merge), computed incrementally as rows arrive.
//!
//! > 1 windowed input stream, 1 output stream

use super::{Exchange, OpKind, OpSpec};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;

pub const AGGREGATE: OpSpec = OpSpec {
    word: "aggregate",
    kind: OpKind::Aggregate,
    args: (1, 1),
    signature: "aggregate(my_aggregate_function)",
    needs_keyed: false,
    keyed_output: false,
    is_sink: false,
    exchange: Exchange::Forward,
    one_to_one: false,
};

pub fn port(graph: &Graph, n: &Node) -> TokenStream {
    super::function_port(graph, n, true, "aggregate")
}
