//! `timestamps(|row| ts)`: gives each row of a source its event timestamp (milliseconds), from
//! which the source's watermark strategy generates watermarks per split. Right after the
//! source, as its only consumer: that is where watermarks are generated.
//!
//! > 1 input stream, 1 output stream

use super::{Exchange, OpKind, OpSpec};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;

pub const TIMESTAMPS: OpSpec = OpSpec {
    word: "timestamps",
    kind: OpKind::Timestamps,
    args: (1, 1),
    signature: "timestamps(|row| row.event_time_millis)",
    needs_keyed: false,
    keyed_output: false,
    is_sink: false,
    exchange: Exchange::Forward,
    one_to_one: true,
};

pub fn port(graph: &Graph, n: &Node) -> TokenStream {
    let method = if n.arg_is_closure(0) {
        "timestamps_closure"
    } else {
        "timestamps"
    };
    super::function_port(graph, n, false, method)
}
