//! `a.connect(b).co_flat_map(f1, f2)`: each input's function returns any number of rows (an
//! iterator) of one output type (Flink's `CoFlatMapFunction`).
//!
//! > 2 input streams, 1 output stream

use super::{OpSpec, Port, Role};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::quote;

pub const CO_FLAT_MAP: OpSpec = OpSpec::new(
    "co_flat_map",
    &["co_flat_map"],
    &[Port::Connected, Port::KeyedConnected],
    Role::Operator,
    super::co_map::port,
)
.args(2, 2, "co_flat_map(|first| iter, |second| iter)")
.operator(operator);

fn operator(_: &Graph, n: &Node) -> TokenStream {
    let f = n.spec_var();
    quote!(::flow::__private::CoFlatMap::new(#f.0, #f.1))
}
