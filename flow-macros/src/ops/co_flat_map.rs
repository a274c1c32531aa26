//! `a.connect(b).co_flat_map(f1, f2)`: each input's function returns any number of rows (an
//! iterator) of one output type (Flink's `CoFlatMapFunction`).
//!
//! > 2 input streams, 1 output stream

use super::{OpSpec, Port, Role, StreamArgs};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::quote;

pub const CO_FLAT_MAP: OpSpec = OpSpec {
    name: "co_flat_map",
    words: &["co_flat_map"],
    on: &[Port::Connected, Port::KeyedConnected],
    role: Role::Operator,
    args: (2, 2),
    signature: "co_flat_map(|first| iter, |second| iter)",
    stream_args: StreamArgs::None,
    one_to_one: false,
    side_outputs: false,
    port: super::co_map::port,
    operator: Some(operator),
};

fn operator(_: &Graph, n: &Node) -> TokenStream {
    let f = n.spec_var();
    quote!(::flow::__private::CoFlatMap::new(#f.0, #f.1))
}
