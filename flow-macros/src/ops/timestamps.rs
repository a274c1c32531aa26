//! `timestamps(|row| ts)`: gives each row of a source its event timestamp (milliseconds), from
//! which the source's watermark strategy generates watermarks per split. Right after the
//! source, as its only consumer: that is where watermarks are generated, in the source's own
//! loop, so it has no runtime operator.
//!
//! > 1 input stream, 1 output stream

use super::{function_port, method_for, OpSpec, Port, Role};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;

pub const TIMESTAMPS: OpSpec = OpSpec::new(
    "timestamps",
    &["timestamps"],
    &[Port::Stream, Port::Keyed],
    Role::Assigner,
    port,
)
.args(1, 1, "timestamps(|row| row.event_time_millis)")
.one_to_one();

fn port(graph: &Graph, n: &Node) -> TokenStream {
    let method = method_for(&n.args[0], "timestamps");
    function_port(graph.input_port(n), n, &n.args[0], &method)
}
