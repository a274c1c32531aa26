//! `side_output(&tag)`: the rows an operator sent to the side output `tag` besides its main
//! output. Today: the late rows of a window declared with `.side_output_late_data(&tag)`, read
//! from the stream of that window's function.
//!
//! > 1 input stream (the operator's), 1 output stream (the tag's row type)

use super::{Exchange, OpKind, OpSpec};
use crate::graph::Node;
use proc_macro2::TokenStream;
use quote::quote_spanned;

pub const SIDE_OUTPUT: OpSpec = OpSpec {
    word: "side_output",
    kind: OpKind::SideOutput,
    args: (1, 1),
    signature: "side_output(&tag)",
    needs_keyed: false,
    keyed_output: false,
    is_sink: false,
    exchange: Exchange::Forward,
    one_to_one: false,
};

pub fn port(n: &Node) -> TokenStream {
    let (t, f, tag) = (n.port_var(), n.spec_var(), &n.args[0]);
    let span = syn::spanned::Spanned::span(tag);
    quote_spanned! {span=>
        let #t = ::flow::__private::side_output(#tag);
        let #f = ::flow::__private::side_tag(#tag);
    }
}
