//! `sink_to(sink)`: writes the stream to a sink such as `FileSink`.
//!
//! > 1 input stream, 0 output streams

use super::{Exchange, OpKind, OpSpec};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

pub const SINK_TO: OpSpec = OpSpec {
    word: "sink_to",
    kind: OpKind::SinkTo,
    args: (1, 1),
    signature: "sink_to(sink)",
    needs_keyed: false,
    keyed_output: false,
    is_sink: true,
    exchange: Exchange::Forward,
    one_to_one: true,
};

pub fn port(graph: &Graph, n: &Node) -> TokenStream {
    let arg = &n.args[0];
    sink_port(
        graph,
        n,
        "sink_to",
        quote_spanned!(syn::spanned::Spanned::span(arg)=> #arg),
    )
}

/// `let __fN = <input>.<method>(<sink>);` (`method`: `sink_to`, or `print` which also checks
/// that the rows have a text form). Every token but the sink's carries the operator's span, so
/// that rustc's errors about the stream's rows land on the operator.
pub fn sink_port(graph: &Graph, n: &Node, method: &str, sink: TokenStream) -> TokenStream {
    let f = n.spec_var();
    let input = crate::codegen::respan(graph.input_port(n, false), n.span);
    let method = syn::Ident::new(method, n.span);
    quote_spanned!(n.span=> let #f = #input.#method(#sink);)
}

/// The sink operator of node `n`, its writer opened in the task.
pub fn writer(n: &Node) -> TokenStream {
    let f = n.spec_var();
    super::chained(
        n,
        quote!(#f.writer(__ctx)?),
        quote!(::flow::__private::Discard),
    )
}
