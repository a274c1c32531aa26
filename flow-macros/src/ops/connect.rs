//! `a.connect(b)`: pairs two streams for one two-input operator, which the word after it
//! picks: `co_map`, `co_flat_map`, or `process` (a co-process function when both streams are
//! keyed, a broadcast process function when `b` is `broadcast()`). Folded into that
//! operator's node; its stage reads both inputs through two input gates.

use super::{Exchange, OpSpec, Port, Role, StreamArgs};
use crate::graph::Graph;

pub const CONNECT: OpSpec = OpSpec::prefix(&["connect"], &[Port::Stream, Port::Keyed], yields)
    .args(1, 1, "connect(other_stream)")
    .stream_args(StreamArgs::First);

/// Two keyed streams, a stream and a broadcast one, or two streams.
fn yields(_: Port, graph: &Graph, inputs: &[usize]) -> Port {
    let spec = |i: usize| graph.node(inputs[i]).spec;
    if spec(1).role == Role::Partition(Exchange::Broadcast) {
        Port::BroadcastConnected
    } else if spec(0).output() == Port::Keyed && spec(1).output() == Port::Keyed {
        Port::KeyedConnected
    } else {
        Port::Connected
    }
}
