//! `union(other, ...)`: merges streams of the same row type. It has no per-row work: the stage
//! after it reads every input's channels through one input gate.
//!
//! > n input streams, 1 output stream

use super::{OpSpec, Port, Role, StreamArgs};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::quote_spanned;

pub const UNION: OpSpec = OpSpec::new(
    "union",
    &["union"],
    &[Port::Stream, Port::Keyed],
    Role::Merge,
    port,
)
.args(1, usize::MAX, "union(other, ...)")
.stream_args(StreamArgs::All)
.one_to_one();

fn port(graph: &Graph, n: &Node) -> TokenStream {
    let (t, first) = (n.port_var(), graph.port_of(n.inputs[0]));
    let checks = n.inputs[1..].iter().zip(&n.args).map(|(&i, arg)| {
        // Every token of the check carries the argument's span, so that a row type mismatch
        // points at the stream the user passed.
        let span = syn::spanned::Spanned::span(arg);
        let other = crate::codegen::respan(graph.port_of(i), span);
        quote_spanned!(span=> #first.union_input(&#other);)
    });
    quote_spanned! {n.span=>
        #(#checks)*
        let #t = #first.union();
    }
}
