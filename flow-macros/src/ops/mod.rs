//! The DSL's words as data: one file per operator with its spec (the words that create it,
//! the streams it may follow, its role, its arguments) and its two emitters (the typed port
//! call that checks it, and the runtime operator). The runtime has the same file names under
//! `operator/`. `graph/`, `check/`, `plan/` and `codegen/` ask the spec; none of them lists
//! operators by name.

pub mod aggregations;
pub mod assign_timestamps_and_watermarks;
pub mod broadcast;
pub mod broadcast_process;
pub mod co_flat_map;
pub mod co_map;
pub mod co_process;
pub mod connect;
pub mod filter;
pub mod flat_map;
pub mod interval_join;
pub mod key_by;
pub mod keyed_process;
pub mod map;
pub mod migrate_state;
pub mod process;
pub mod rebalance;
pub mod reduce;
pub mod side_output;
pub mod sink;
pub mod source;
pub mod timestamps;
pub mod union;
pub mod window;
pub mod window_join;

use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};

/// Every spec, the registry the words are looked up in.
pub const OPS: &[&OpSpec] = &[
    &source::SOURCE,
    &timestamps::TIMESTAMPS,
    &assign_timestamps_and_watermarks::ASSIGN_TIMESTAMPS_AND_WATERMARKS,
    &map::MAP,
    &filter::FILTER,
    &flat_map::FLAT_MAP,
    &key_by::KEY_BY,
    &rebalance::REBALANCE,
    &broadcast::BROADCAST,
    &union::UNION,
    &reduce::REDUCE,
    &process::PROCESS,
    &keyed_process::KEYED_PROCESS,
    &window::WINDOW,
    &window::WINDOW_ASSIGNER,
    &window::WINDOW_ALL,
    &window::COUNT_WINDOW,
    &window::ALLOWED_LATENESS,
    &window::SIDE_OUTPUT_LATE_DATA,
    &connect::CONNECT,
    &co_map::CO_MAP,
    &co_flat_map::CO_FLAT_MAP,
    &co_process::CO_PROCESS,
    &broadcast_process::BROADCAST_PROCESS,
    &interval_join::INTERVAL_JOIN,
    &interval_join::INTERVAL_JOIN_BUILDER,
    &interval_join::BETWEEN,
    &window_join::WINDOW_JOIN,
    &window_join::WINDOW_JOIN_BUILDER,
    &side_output::SIDE_OUTPUT,
    &sink::SINK_TO,
    &sink::PRINT,
    &sink::COLLECT,
];

/// Words that set a property of the operator before them instead of adding one.
pub const MODIFIERS: &[&str] = &["parallelism", "name", "uid", "migrate_state"];

/// What kind of stream a word is called on: a word applies to the kinds its spec lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    /// A stream that is not keyed.
    Stream,
    /// After `key_by`.
    Keyed,
    /// After `window(..)` or `count_window(..)` on a keyed stream.
    Windowed,
    /// After `window_all(..)`.
    AllWindowed,
    /// `a.connect(b)` of two streams that are not keyed.
    Connected,
    /// `a.connect(b)` of two keyed streams.
    KeyedConnected,
    /// `a.connect(b.broadcast())`.
    BroadcastConnected,
    /// After `interval_join(b)`, before its bounds.
    IntervalJoin,
    /// After `interval_join(b).between(lower, upper)`.
    IntervalJoined,
    /// After `window_join(b, windows)`.
    WindowJoined,
    /// After a sink: nothing follows.
    End,
}

impl Port {
    /// The error for `word`, which applies elsewhere, called on this kind of stream; `needs`
    /// is the first kind the word applies to, `builder` whether it is a prefix word.
    pub fn misplaced(self, word: &str, needs: Port, builder: bool) -> String {
        match self {
            Port::Windowed | Port::AllWindowed => {
                return format!("a window is followed by `reduce`, `aggregate` or `process`, not `{word}`")
            }
            Port::Connected if word == "process" => {
                return "`process` on connected streams needs both of them keyed (a `#[co_process_function]`) or the second one broadcast (`a.connect(b.broadcast())`)".into()
            }
            Port::Connected | Port::KeyedConnected | Port::BroadcastConnected => {
                return format!("connected streams are read by `co_map`, `co_flat_map` or `process`, not `{word}`")
            }
            Port::IntervalJoin if word == "process" => {
                return "an interval join needs its bounds: `.interval_join(other).between(lower_ms, upper_ms)`".into()
            }
            Port::IntervalJoin => {
                return "an interval join is followed by its bounds: `.between(lower_ms, upper_ms)`".into()
            }
            Port::IntervalJoined => {
                return "an interval join is followed by `.process(|first, second, out| ..)`".into()
            }
            Port::WindowJoined => {
                return "a window join is followed by `.process(|first, second, out| ..)`".into()
            }
            Port::Stream | Port::Keyed | Port::End => {}
        }
        match needs {
            Port::Keyed => format!("`{word}` needs a keyed stream: add `key_by` before `{word}`"),
            Port::Windowed | Port::AllWindowed if builder => {
                format!("`{word}` applies to a window: put it right after `window(..)`")
            }
            Port::Windowed | Port::AllWindowed => format!(
                "`{word}` computes a window's result: add `.window(..)` (after `key_by`) or `.window_all(..)` before it"
            ),
            Port::Connected | Port::KeyedConnected | Port::BroadcastConnected => {
                format!("`{word}` needs two connected streams: `a.connect(b).{word}(..)`")
            }
            Port::IntervalJoin => format!(
                "`{word}` gives an interval join's bounds: put it right after `interval_join(..)`"
            ),
            Port::IntervalJoined | Port::WindowJoined => format!(
                "`{word}` follows a join: `a.interval_join(b).between(..).{word}(..)` or `a.window_join(b, windows).{word}(..)`"
            ),
            Port::Stream | Port::End => format!("`{word}` cannot be used here"),
        }
    }
}

/// What a node does in the job.
#[derive(Clone, Copy, Debug)]
pub enum Role {
    /// Reads from outside: `source(..)`, `from_collection(..)`, `from_iter(..)`.
    Source,
    /// Gives the source's rows their timestamps, in the source's own loop (`timestamps`).
    Assigner,
    /// A per-row operator, chained in its stage: one runtime `Operator`.
    Operator,
    /// Sends its input's rows across workers to the operator after it, with no per-row work of
    /// its own (`key_by`, `rebalance`, `broadcast`): the edge after it starts a stage.
    Partition(Exchange),
    /// Merges several streams of one row type into the next stage's input gate (`union`).
    Merge,
    /// Reads rows its input operator sent to a side output (`side_output(&tag)`).
    SideOutput,
    /// Ends the stream: one writer per subtask.
    Sink,
    /// A prefix word: folded into the operator word that follows, which it gives its
    /// arguments (`window`, `connect`, `between`, ...). `yields` tells what kind of stream
    /// follows it, from the kind it is called on and its inputs (the stream it is called on,
    /// then its stream arguments).
    Builder { yields: Yields },
}

/// What kind of stream follows a prefix word.
pub type Yields = fn(Port, &Graph, &[usize]) -> Port;

/// Roles compare by kind (and exchange); prefix words are all one kind.
impl PartialEq for Role {
    fn eq(&self, other: &Role) -> bool {
        match (self, other) {
            (Role::Partition(a), Role::Partition(b)) => a == b,
            (Role::Builder { .. }, Role::Builder { .. }) => true,
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

/// How rows reach the operator after a partitioning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exchange {
    /// By the stable hash of the key.
    Hash,
    /// Round-robin.
    Rebalance,
    /// Every row to every subtask.
    Broadcast,
}

/// Which of a word's arguments are streams (the node's further inputs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamArgs {
    /// None.
    None,
    /// The first one (`connect(other)`, `interval_join(other)`, `window_join(other, w)`).
    First,
    /// Every one (`union(a, b, ..)`).
    All,
}

/// The static description of an operator (or a prefix word).
pub struct OpSpec {
    /// The operator: its file here and in the runtime (`keyed_process`).
    pub name: &'static str,
    /// The DSL words that create it (`process`; `reduce` also from `sum`, `min`, ...).
    pub words: &'static [&'static str],
    /// The kinds of stream it may follow.
    pub on: &'static [Port],
    pub role: Role,
    /// Minimum and maximum argument count (`usize::MAX`: any).
    pub args: (usize, usize),
    /// How the arguments read, for error messages: `map(f)`.
    pub signature: &'static str,
    pub stream_args: StreamArgs,
    /// Whether it emits exactly one row per input row (its output count is its input count).
    pub one_to_one: bool,
    /// Whether its function may emit to any side output by tag (`ctx.output(&tag, row)`).
    pub side_outputs: bool,
    /// Whether it generates the watermarks of the stream after it, dropping those before
    /// (`assign_timestamps_and_watermarks`); the function says whether a node's strategy has
    /// event time at all.
    pub watermarks: Option<fn(&Node) -> bool>,
    /// The typed walk: `let (__fN, __tN) = <input port>.<method>(args);`, which lets rustc
    /// infer every row type and check every function on the user's tokens.
    pub port: fn(&Graph, &Node) -> TokenStream,
    /// The runtime operator of an `Operator` node (an expression of an `Operator` type).
    pub operator: Option<fn(&Graph, &Node) -> TokenStream>,
}

impl OpSpec {
    /// An operator (or source, partitioning, sink, ...) created by `words` on the kinds of
    /// stream `on`: one argument, none of them a stream, no runtime operator, not one-to-one,
    /// no side outputs until said otherwise.
    pub const fn new(
        name: &'static str,
        words: &'static [&'static str],
        on: &'static [Port],
        role: Role,
        port: fn(&Graph, &Node) -> TokenStream,
    ) -> OpSpec {
        OpSpec {
            name,
            words,
            on,
            role,
            args: (1, 1),
            signature: "",
            stream_args: StreamArgs::None,
            one_to_one: false,
            side_outputs: false,
            watermarks: None,
            port,
            operator: None,
        }
    }

    /// A prefix word (its one word is its name), on the kinds of stream `on`, followed by the
    /// kind `yields` says.
    pub const fn prefix(
        words: &'static [&'static str],
        on: &'static [Port],
        yields: Yields,
    ) -> OpSpec {
        OpSpec::new(words[0], words, on, Role::Builder { yields }, no_port)
    }

    /// Takes `min..=max` arguments (`usize::MAX`: any), reading as `signature`.
    pub const fn args(mut self, min: usize, max: usize, signature: &'static str) -> OpSpec {
        self.args = (min, max);
        self.signature = signature;
        self
    }

    /// Which of its arguments are streams.
    pub const fn stream_args(mut self, stream_args: StreamArgs) -> OpSpec {
        self.stream_args = stream_args;
        self
    }

    /// Its runtime operator.
    pub const fn operator(mut self, operator: fn(&Graph, &Node) -> TokenStream) -> OpSpec {
        self.operator = Some(operator);
        self
    }

    /// It emits exactly one row per input row.
    pub const fn one_to_one(mut self) -> OpSpec {
        self.one_to_one = true;
        self
    }

    /// Its function may emit to any side output by tag.
    pub const fn side_outputs(mut self) -> OpSpec {
        self.side_outputs = true;
        self
    }

    /// It generates the watermarks after it; `has_event_time` tells whether a node's strategy
    /// has event time.
    pub const fn watermarks(mut self, has_event_time: fn(&Node) -> bool) -> OpSpec {
        self.watermarks = Some(has_event_time);
        self
    }

    /// The kind of stream a node of this spec leaves behind it: keyed after `key_by`, nothing
    /// after a sink, a plain stream otherwise (prefix words: see [`Role::Builder`]).
    pub fn output(&self) -> Port {
        match self.role {
            Role::Partition(Exchange::Hash) => Port::Keyed,
            Role::Sink => Port::End,
            _ => Port::Stream,
        }
    }

    pub fn is_builder(&self) -> bool {
        matches!(self.role, Role::Builder { .. })
    }

    /// The word this spec is usually written with, for messages.
    pub fn word(&self) -> &'static str {
        self.words[0]
    }
}

/// The spec `word` creates on a stream of kind `port`.
pub fn lookup(word: &str, port: Port) -> Option<&'static OpSpec> {
    OPS.iter()
        .copied()
        .find(|op| op.words.contains(&word) && op.on.contains(&port))
}

/// Any spec `word` creates, on whatever stream.
pub fn lookup_any(word: &str) -> Option<&'static OpSpec> {
    OPS.iter().copied().find(|op| op.words.contains(&word))
}

/// Every word, for "did you mean".
pub fn all_words() -> impl Iterator<Item = &'static str> {
    OPS.iter()
        .flat_map(|op| op.words.iter().copied())
        .chain(MODIFIERS.iter().copied())
}

/// Nothing to emit: a node with no port call of its own.
pub fn no_port(_: &Graph, _: &Node) -> TokenStream {
    TokenStream::new()
}

/// `let (__fN, __tN) = <input>.<method>(<function>);`: the port of an operator that takes a
/// function as its `i`-th argument.
///
/// A closure keeps its own spans, so that rustc checks its signature against the stream's row
/// type where the user wrote it. Any other function (a `#[map_function]`, a fn, a value) is
/// bound to a variable first, and the call is spanned at it: rustc then reports a function
/// that does not fit the stream once, on the function's name.
pub fn function_port(input: TokenStream, n: &Node, arg: &syn::Expr, method: &str) -> TokenStream {
    function_port_as(input, n, arg, method, &n.spec_var())
}

/// [`function_port`] binding the checked function to `f` instead of the node's value
/// variable (for an operator whose value holds more than its function).
pub fn function_port_as(
    input: TokenStream,
    n: &Node,
    arg: &syn::Expr,
    method: &str,
    f: &syn::Ident,
) -> TokenStream {
    let t = n.port_var();
    if matches!(arg, syn::Expr::Closure(_)) {
        let method = format_ident!("{}", method, span = n.span);
        return quote_spanned!(n.span=> let (#f, #t) = #input.#method(#arg););
    }
    let span = syn::spanned::Spanned::span(arg);
    let method = format_ident!("{}", method, span = span);
    let value = format_ident!("__a{}", n.id, span = span);
    quote_spanned! {span=>
        let #value = #arg;
        let (#f, #t) = #input.#method(#value);
    }
}

/// `<method>_closure` for a closure argument, `<method>` otherwise: the port methods of
/// closures let rustc infer the closure's parameter type from the stream.
pub fn method_for(arg: &syn::Expr, method: &str) -> String {
    if matches!(arg, syn::Expr::Closure(_)) {
        format!("{method}_closure")
    } else {
        method.to_string()
    }
}

/// The port method of an operator that takes a function on a stream or a keyed stream:
/// `<method>_closure` for a closure, `keyed_<method>` for any other function on a keyed stream
/// (checked against the keyed trait), `<method>` otherwise (the stateless trait).
pub fn keyed_method_for(n: &Node, method: &str) -> String {
    let arg = &n.args[0];
    if n.port == Port::Keyed && !matches!(arg, syn::Expr::Closure(_)) {
        format!("keyed_{method}")
    } else {
        method_for(arg, method)
    }
}

/// The runtime operator `op` over the node's checked function: `op::keyed(key, f)` on a keyed
/// stream (its function may keep per-key state), `op::new(f)` on one that is not.
pub fn function_operator(graph: &Graph, n: &Node, op: &str) -> TokenStream {
    let f = n.spec_var();
    let op = format_ident!("{}", op);
    match n.port {
        Port::Keyed => {
            let k = key_of(graph, n.inputs[0]);
            quote!(::flow::__private::#op::keyed(#k, #f))
        }
        _ => quote!(::flow::__private::#op::new(#f)),
    }
}

/// The key selector of a keyed input: a clone of its `key_by`'s checked function.
pub fn key_of(graph: &Graph, input: usize) -> TokenStream {
    let k = graph.node(input).spec_var();
    quote!(::std::clone::Clone::clone(&#k))
}

/// The collector expression for node `n`, an `Operator` node: its runtime operator chained
/// before `next`, with side outputs `side`.
pub fn chained(graph: &Graph, n: &Node, next: TokenStream, side: TokenStream) -> TokenStream {
    let operator = n.spec.operator.expect("only operator nodes are chained");
    let op = operator(graph, n);
    let (id, name) = (n.id as u32, n.label());
    let link = quote!(::flow::__private::Chained::with_side_outputs);
    match &n.migrate {
        Some(f) => migrate_state::chained(f, op, quote!(#id, #name, #next, #side)),
        None => quote!(#link(#op, #id, #name, #next, #side)),
    }
}

/// The side outputs of an operator: each tag variable with the collector reading it.
pub fn side_outputs(outputs: Vec<(syn::Ident, TokenStream)>) -> TokenStream {
    outputs.into_iter().rev().fold(
        quote!(::flow::__private::NoSideOutputs),
        |rest, (tag, collector)| quote!(::flow::__private::SideOutput::new(&#tag, #collector, #rest)),
    )
}
