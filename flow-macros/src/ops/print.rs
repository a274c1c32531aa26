//! `print()`: writes each row's text form to stdout, `N> row` when parallel (Flink's print).
//!
//! > 1 input stream, 0 output streams

use super::{Exchange, OpKind, OpSpec};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::quote_spanned;

pub const PRINT: OpSpec = OpSpec {
    word: "print",
    kind: OpKind::Print,
    args: (0, 1),
    signature: "print() or print(\"identifier\")",
    needs_keyed: false,
    keyed_output: false,
    is_sink: true,
    exchange: Exchange::Forward,
    one_to_one: true,
};

pub fn port(graph: &Graph, n: &Node) -> TokenStream {
    let sink = match n.args.first() {
        Some(id) => quote_spanned!(n.span=> ::flow::__private::PrintSink::with_identifier(#id)),
        None => quote_spanned!(n.span=> ::flow::__private::PrintSink::new()),
    };
    super::sink_to::sink_port(graph, n, "print", sink)
}
