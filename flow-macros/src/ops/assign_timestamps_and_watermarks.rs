//! `assign_timestamps_and_watermarks(strategy[, |row| ts])`: new event timestamps (or the
//! rows' own) and the watermarks of the stream from here on, generated per subtask by a
//! built-in strategy (`Watermarks::bounded_out_of_orderness(..)`, ...) or the user's
//! generator (`Watermarks::for_generator(g)`); the watermarks before it are dropped (Flink's
//! `assign_timestamps_and_watermarks` in the middle of a stream).
//!
//! > 1 input stream, 1 output stream

use super::{OpSpec, Port, Role};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};

pub const ASSIGN_TIMESTAMPS_AND_WATERMARKS: OpSpec = OpSpec::new(
    "assign_timestamps_and_watermarks",
    &["assign_timestamps_and_watermarks"],
    &[Port::Stream, Port::Keyed],
    Role::Operator,
    port,
)
.args(
    1,
    2,
    "assign_timestamps_and_watermarks(Watermarks::bounded_out_of_orderness(d), |row| row.event_time_millis)",
)
.operator(operator)
.watermarks(has_event_time)
.one_to_one();

/// Whether the strategy generates watermarks (not `Watermarks::no_watermarks()`).
fn has_event_time(n: &Node) -> bool {
    !super::source::names_no_watermarks(&n.args[0])
}

/// `__fN` = (generator, timestamp assigner).
fn port(graph: &Graph, n: &Node) -> TokenStream {
    let (f, t, input) = (n.spec_var(), n.port_var(), graph.input_port(n));
    let (generator, assigner) = (format_ident!("__g{}", n.id), format_ident!("__a{}", n.id));
    let call = match &n.args[..] {
        [strategy] => {
            let method = format_ident!("assign_timestamps_and_watermarks", span = n.span);
            quote_spanned!(n.span=> #input.#method(#strategy))
        }
        [strategy, timestamps] => {
            // Spanned by the strategy: a generator of other rows is reported there.
            let span = syn::spanned::Spanned::span(strategy);
            let method = match timestamps {
                syn::Expr::Closure(_) => "assign_timestamps_and_watermarks_closure",
                _ => "assign_timestamps_and_watermarks_with",
            };
            let method = format_ident!("{}", method, span = span);
            quote_spanned!(span=> #input.#method(#strategy, #timestamps))
        }
        _ => unreachable!("the argument count is checked"),
    };
    quote! {
        let (#generator, #assigner, #t) = #call;
        let #f = (#generator, #assigner);
    }
}

fn operator(_: &Graph, n: &Node) -> TokenStream {
    let f = n.spec_var();
    quote!(::flow::__private::AssignTimestampsAndWatermarks::new(#f.1, #f.0))
}
