//! `side_output(&tag)`: the rows an operator sent to the side output `tag` besides its main
//! output: a window's late rows (declared with `.side_output_late_data(&tag)`), or what a
//! keyed process function emits with `ctx.output(&tag, row)`. Its rows leave the operator in
//! the operator's own subtask.
//!
//! > 1 input stream (the operator's), 1 output stream (the tag's row type)

use super::{OpSpec, Port, Role};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::quote_spanned;

pub const SIDE_OUTPUT: OpSpec = OpSpec::new(
    "side_output",
    &["side_output"],
    &[Port::Stream, Port::Keyed],
    Role::SideOutput,
    port,
)
.args(1, 1, "side_output(&tag)");

fn port(_: &Graph, n: &Node) -> TokenStream {
    let (t, f, tag) = (n.port_var(), n.spec_var(), &n.args[0]);
    let span = syn::spanned::Spanned::span(tag);
    quote_spanned! {span=>
        let #t = ::flow::__private::side_output(#tag);
        let #f = ::flow::__private::side_tag(#tag);
    }
}
