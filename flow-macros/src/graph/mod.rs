//! Syntax tree -> job graph: resolves stream names and operator words into nodes with inputs,
//! outputs and their user spans.
//!
//! This is also where prefix words are lowered: a word whose spec is a
//! [`Builder`](crate::ops::Role::Builder) (`window`, `allowed_lateness`, `connect`,
//! `interval_join`, `between`, ...) adds no node; it is kept, with its arguments and span, as
//! a [`Prefix`] of the operator word that follows, so that one node is one operator of
//! `ops/` and one runtime type. Which spec a word creates depends on the kind of stream it is
//! called on ([`Port`]): `process` after a window is the window's function, after
//! `key_by` a keyed process function, after `interval_join(..).between(..)` the join's.
//!
//! Errors that make a node impossible to build (an unknown word, a word on the wrong kind of
//! stream, an unknown stream) are reported here; the rules about well-built graphs are in
//! `check/`.

use crate::diagnostic::{did_you_mean, Diagnostics};
use crate::ops::{self, aggregations, OpSpec, Port, Role, StreamArgs, MODIFIERS};
use crate::parse::{Call, Chain, FlowInput, FlowStmt, Root};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{Expr, Ident};

/// A prefix word folded into the operator after it.
#[derive(Clone)]
pub struct Prefix {
    pub spec: &'static OpSpec,
    /// The word as the user wrote it.
    pub span: Span,
    pub args: Vec<Expr>,
}

/// One operator of the job.
pub struct Node {
    pub id: usize,
    pub spec: &'static OpSpec,
    /// The word that created it, as written (`sum`, `from_collection`).
    pub word: String,
    /// The word's span.
    pub span: Span,
    /// The word's own arguments (an aggregation's: its desugared function).
    pub args: Vec<Expr>,
    /// The prefix words before it, in order.
    pub prefixes: Vec<Prefix>,
    /// The kind of stream it was called on.
    pub port: Port,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
    /// `.name(..)`'s argument.
    pub name: Option<Expr>,
    /// `.parallelism(..)`'s argument.
    pub parallelism: Option<Expr>,
    /// `.uid(..)`'s argument: the id its state has in checkpoints.
    pub uid: Option<Expr>,
    /// `.migrate_state(..)`'s argument: how values a checkpoint saved as an older type
    /// become the type the operator keeps now.
    pub migrate: Option<Expr>,
    /// What the default name shows in parentheses, when not the first argument (the field of
    /// `sum(1)`).
    pub detail: Option<String>,
    /// The name a `collect()` is bound to.
    pub collect_var: Option<Ident>,
    /// Calls written after this sink, which cannot be (checked).
    pub after_sink: Vec<Span>,
}

impl Node {
    /// The variable holding the node's value (its checked function, sink, key selector, ...).
    pub fn spec_var(&self) -> Ident {
        format_ident!("__f{}", self.id)
    }
    /// The variable holding the node's typed output port.
    pub fn port_var(&self) -> Ident {
        format_ident!("__t{}", self.id)
    }
    pub fn is_source(&self) -> bool {
        self.spec.role == Role::Source
    }
    /// The prefix word of spec `name` before it, if any.
    pub fn prefix(&self, name: &str) -> Option<&Prefix> {
        self.prefixes.iter().find(|p| p.spec.name == name)
    }
    /// `.name("..")` if given, else what the user wrote, shortened: the word with the
    /// function's or source's name, after its prefix words (`window(TumblingEventTimeWindows)
    /// .reduce`).
    pub fn label(&self) -> String {
        if let Some(Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        })) = &self.name
        {
            return s.value();
        }
        let own = match (&self.detail, self.args.first()) {
            (Some(d), _) => format!("{}({d})", self.word),
            (None, Some(arg)) => match arg_name(arg) {
                Some(d) => format!("{}({d})", self.word),
                None => self.word.clone(),
            },
            _ => self.word.clone(),
        };
        match self.prefixes.first() {
            Some(p) if p.spec.stream_args == StreamArgs::None => {
                match p.args.first().and_then(arg_name) {
                    Some(d) => format!("{}({d}).{own}", p.spec.word()),
                    None => format!("{}.{own}", p.spec.word()),
                }
            }
            Some(p) => format!("{}.{own}", p.spec.word()),
            None => own,
        }
    }
    /// `file:line:column` of the operator.
    pub fn location(&self) -> String {
        let start = self.span.start();
        format!("{}:{}:{}", self.span.file(), start.line, start.column + 1)
    }
}

/// The name an argument shows in a label: a function's or a type's, or a call's receiver.
fn arg_name(arg: &Expr) -> Option<String> {
    match arg {
        Expr::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        Expr::Call(c) => match &*c.func {
            Expr::Path(p) => Some(type_name(&p.path)),
            _ => None,
        },
        Expr::MethodCall(m) => Some(root_name(&m.receiver)),
        _ => None,
    }
}

/// `Type` of `Type::new` (or of a one-segment path).
fn type_name(path: &syn::Path) -> String {
    let segs: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let n = segs.len();
    if n >= 2 {
        segs[n - 2].clone()
    } else {
        segs.join("::")
    }
}

fn root_name(e: &Expr) -> String {
    match e {
        Expr::MethodCall(m) => root_name(&m.receiver),
        Expr::Call(c) => match &*c.func {
            Expr::Path(p) => type_name(&p.path),
            _ => "sink".into(),
        },
        Expr::Path(p) => p
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default(),
        _ => "sink".into(),
    }
}

/// Where a chain stands after a call: at a node, or after prefix words waiting for the
/// operator word that takes them.
#[derive(Clone)]
pub enum End {
    Node(usize),
    Pending(Pending),
}

/// Prefix words waiting for their operator.
#[derive(Clone)]
pub struct Pending {
    pub port: Port,
    pub inputs: Vec<usize>,
    pub prefixes: Vec<Prefix>,
}

/// A stream bound with `let`.
pub struct Binding {
    pub name: Ident,
    /// `None` when its chain has an error (already reported): its uses are not reported again.
    pub end: Option<End>,
    pub used: bool,
}

/// The job graph of one `flow!` block. Node ids are a topological order.
pub struct Graph {
    pub nodes: Vec<Node>,
    pub bindings: Vec<Binding>,
    /// Chains used as statements whose last operator is not a sink: (span, node).
    pub dangling: Vec<(Span, usize)>,
    pub body_span: Span,
}

impl Graph {
    pub fn node(&self, id: usize) -> &Node {
        &self.nodes[id]
    }

    /// The port expression of node `id`'s output.
    pub fn port_of(&self, id: usize) -> TokenStream {
        let t = self.nodes[id].port_var();
        quote!(#t)
    }

    /// The port of `n`'s (first) input.
    pub fn input_port(&self, n: &Node) -> TokenStream {
        self.port_of(n.inputs[0])
    }

    /// The side-output nodes reading node `n`.
    pub fn side_output_readers<'a>(&'a self, n: &'a Node) -> impl Iterator<Item = usize> + 'a {
        n.outputs
            .iter()
            .copied()
            .filter(|&c| self.nodes[c].spec.role == Role::SideOutput)
    }

    /// Whether every source upstream of `n` has a watermark strategy.
    pub fn has_event_time(&self, n: &Node) -> bool {
        self.source_without_watermarks(n).is_none()
    }

    /// A source upstream of `n` declared without watermarks, if any.
    pub fn source_without_watermarks(&self, n: &Node) -> Option<&Node> {
        let mut stack = vec![n.id];
        let mut seen = vec![false; self.nodes.len()];
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            let node = &self.nodes[i];
            if node.is_source() && ops::source::without_watermarks(node) {
                return Some(node);
            }
            // Watermarks generated here: what comes before does not matter.
            match node.spec.watermarks {
                Some(has_event_time) if has_event_time(node) => continue,
                Some(_) => return Some(node),
                None => {}
            }
            stack.extend(node.inputs.iter().copied());
        }
        None
    }
}

/// Builds the graph, reporting unknown words and names.
pub fn build(input: &FlowInput, diag: &mut Diagnostics) -> Graph {
    let mut g = Graph {
        nodes: Vec::new(),
        bindings: Vec::new(),
        dangling: Vec::new(),
        body_span: input.body_span,
    };
    for stmt in &input.stmts {
        match stmt {
            FlowStmt::Let { name, chain } => {
                let end = build_chain(&mut g, chain, diag);
                bind(&mut g, name, end, diag);
            }
            FlowStmt::Chain(chain) => match build_chain(&mut g, chain, diag) {
                Some(End::Node(end)) if g.nodes[end].spec.role != Role::Sink => {
                    g.dangling.push((chain.last_span(), end));
                }
                Some(End::Pending(p)) => pending_at_end(&p, diag),
                _ => {}
            },
        }
    }
    for i in 0..g.nodes.len() {
        for k in 0..g.nodes[i].inputs.len() {
            let p = g.nodes[i].inputs[k];
            g.nodes[p].outputs.push(i);
        }
    }
    g
}

/// `let name = <chain>;`
fn bind(g: &mut Graph, name: &Ident, end: Option<End>, diag: &mut Diagnostics) {
    if let Some(End::Node(id)) = end {
        let node = &mut g.nodes[id];
        if node.spec.role == Role::Sink {
            if node.spec.name == "collect" {
                node.collect_var = Some(name.clone());
            } else {
                diag.error(
                    name.span(),
                    format_args!(
                        "`{}` ends the stream and has no value to bind: drop the `let`",
                        node.word
                    ),
                );
            }
            return;
        }
    }
    if let Some(prev) = g.bindings.iter().position(|b| b.name == *name) {
        // Shadowing a stream that was never used would lose it silently.
        if !g.bindings[prev].used {
            diag.error(
                g.bindings[prev].name.span(),
                format_args!("stream `{name}` is never consumed before it is shadowed (1/2)"),
            );
            diag.error(
                name.span(),
                format_args!("stream `{name}` is shadowed here (2/2)"),
            );
            g.bindings[prev].used = true;
        }
    }
    g.bindings.push(Binding {
        name: name.clone(),
        used: end.is_none(),
        end,
    });
}

/// Prefix words that no operator followed: the chain ends without its operator.
fn pending_at_end(p: &Pending, diag: &mut Diagnostics) {
    let first = &p.prefixes[0];
    let message = match p.port {
        Port::Windowed | Port::AllWindowed => "this window has no function: follow it with `.reduce(..)`, `.aggregate(..)` or `.process(..)`",
        Port::Connected | Port::KeyedConnected | Port::BroadcastConnected => "connected streams need their function: follow them with `.co_map(..)`, `.co_flat_map(..)` or `.process(..)`",
        Port::IntervalJoin => "an interval join needs its bounds: `.interval_join(other).between(lower_ms, upper_ms)`",
        _ => "this join has no function: follow it with `.process(|first, second, out| ..)`",
    };
    diag.error(first.span, message);
}

fn new_node(g: &mut Graph, spec: &'static OpSpec, word: &Ident, port: Port) -> usize {
    let id = g.nodes.len();
    g.nodes.push(Node {
        id,
        spec,
        word: word.to_string(),
        span: word.span(),
        args: Vec::new(),
        prefixes: Vec::new(),
        port,
        inputs: Vec::new(),
        outputs: Vec::new(),
        name: None,
        parallelism: None,
        uid: None,
        migrate: None,
        detail: None,
        collect_var: None,
        after_sink: Vec::new(),
    });
    id
}

/// `takes 1 argument`, `takes 1 or 2 arguments`, `takes at least 1 argument`.
fn arity(min: usize, max: usize) -> String {
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    if max == usize::MAX {
        format!("at least {min} argument{}", plural(min))
    } else if min == max {
        format!("{min} argument{}", plural(min))
    } else {
        format!("{min} or {max} arguments")
    }
}

/// Builds one chain; returns where it ends.
fn build_chain(g: &mut Graph, chain: &Chain, diag: &mut Diagnostics) -> Option<End> {
    let mut end = match &chain.root {
        Root::Source { func, args, span } => {
            let word = func.to_string();
            let spec = &ops::source::SOURCE;
            if !spec.words.contains(&word.as_str()) {
                let hint = match did_you_mean(&word, spec.words.iter().copied()) {
                    Some(s) => format!(": did you mean `{s}`?"),
                    None => ": sources are `source(..)`, `from_collection(..)` and `from_iter(..)`"
                        .into(),
                };
                diag.error(func.span(), format_args!("unknown source `{word}`{hint}"));
                return None;
            }
            let (min, max) = spec.args;
            if args.len() < min || args.len() > max {
                diag.error(
                    *span,
                    format_args!("`{word}` takes {}, found {}", arity(min, max), args.len()),
                );
                return None;
            }
            let id = new_node(g, spec, func, Port::Stream);
            g.nodes[id].args = args.clone();
            End::Node(id)
        }
        Root::Stream(name) => match g.bindings.iter_mut().rev().find(|b| b.name == *name) {
            Some(b) => {
                b.used = true;
                b.end.clone()?
            }
            None => {
                let names: Vec<String> = g.bindings.iter().map(|b| b.name.to_string()).collect();
                let hint = match did_you_mean(&name.to_string(), names.iter().map(String::as_str)) {
                    Some(s) => {
                        // The misspelled stream is meant to be used here: do not also report
                        // it as never consumed.
                        if let Some(b) = g.bindings.iter_mut().rev().find(|b| b.name == s) {
                            b.used = true;
                        }
                        format!(": did you mean `{s}`?")
                    }
                    None => ": bind it first with `let name = ...;`".into(),
                };
                diag.error(name.span(), format_args!("unknown stream `{name}`{hint}"));
                return None;
            }
        },
    };
    for call in &chain.calls {
        if let Some(tf) = &call.turbofish {
            diag.error_spanned(
                tf,
                "operators take no type arguments: the row types are inferred",
            );
            return None;
        }
        end = apply(g, end, call, diag)?;
    }
    Some(end)
}

/// Applies one call to where a chain stands.
fn apply(g: &mut Graph, end: End, call: &Call, diag: &mut Diagnostics) -> Option<End> {
    let word = call.method.to_string();
    if let End::Node(id) = &end {
        // A sink takes a name, a parallelism and a uid (as Flink's `print().setParallelism(1)`
        // and `sink_to(..).uid(..)`), and nothing else.
        let modifier = matches!(word.as_str(), "name" | "parallelism" | "uid");
        if g.nodes[*id].spec.role == Role::Sink && !modifier {
            g.nodes[*id].after_sink.push(call.method.span());
            return Some(end);
        }
    }
    if MODIFIERS.contains(&word.as_str()) {
        modify(g, &end, call, diag);
        return Some(end);
    }
    let port = match &end {
        End::Node(id) => g.nodes[*id].spec.output(),
        End::Pending(p) => p.port,
    };
    let Some(spec) = ops::lookup(&word, port) else {
        misplaced(&word, call, port, diag);
        return None;
    };
    let (min, max) = if aggregations::is_aggregation(&word) {
        aggregations::arity(&word)
    } else if spec.name == ops::window::WINDOW.name {
        ops::window::arity(&word)
    } else {
        spec.args
    };
    if call.args.len() < min || call.args.len() > max {
        let signature = if aggregations::is_aggregation(&word) {
            aggregations::signature(&word)
        } else {
            spec.signature.to_string()
        };
        diag.error(
            call.method.span(),
            format_args!(
                "`{word}` takes {}, found {}: `{signature}`",
                arity(min, max),
                call.args.len(),
            ),
        );
        return None;
    }
    let (mut inputs, mut prefixes) = match end {
        End::Node(id) => (vec![id], Vec::new()),
        End::Pending(p) => (p.inputs, p.prefixes),
    };
    let streams = match spec.stream_args {
        StreamArgs::None => &call.args[..0],
        StreamArgs::First => &call.args[..1],
        StreamArgs::All => &call.args[..],
    };
    for arg in streams {
        let other = crate::parse::parse_chain(arg.clone())
            .map_err(|e| diag.push(e))
            .ok()?;
        match build_chain(g, &other, diag)? {
            End::Node(id) => inputs.push(id),
            End::Pending(p) => {
                pending_at_end(&p, diag);
                return None;
            }
        }
    }
    if let Role::Builder { yields } = spec.role {
        if prefixes.iter().any(|p| p.spec.name == spec.name) {
            diag.error(
                call.method.span(),
                format_args!("`{word}` is set twice on the same operator"),
            );
        }
        prefixes.push(Prefix {
            spec,
            span: call.method.span(),
            args: call.args.clone(),
        });
        let port = yields(port, g, &inputs);
        return Some(End::Pending(Pending {
            port,
            inputs,
            prefixes,
        }));
    }
    // A `union`'s stream arguments stay in its arguments: its checks are spanned at them.
    let mut args = call.args.clone();
    let mut detail = None;
    if aggregations::is_aggregation(&word) {
        match aggregations::desugar(&word, &args) {
            Ok(closure) => {
                detail = Some(quote::ToTokens::to_token_stream(&args[0]).to_string());
                args = vec![closure];
            }
            Err(e) => {
                diag.push(e);
                return None;
            }
        }
    }
    let id = new_node(g, spec, &call.method, port);
    let node = &mut g.nodes[id];
    node.args = args;
    node.prefixes = prefixes;
    node.inputs = inputs;
    node.detail = detail;
    Some(End::Node(id))
}

/// `.name(..)`, `.parallelism(..)`, `.uid(..)` or `.migrate_state(..)` on the operator before
/// it.
fn modify(g: &mut Graph, end: &End, call: &Call, diag: &mut Diagnostics) {
    let word = call.method.to_string();
    let id = match end {
        End::Node(id) => *id,
        End::Pending(p) => {
            let last = p.prefixes.last().expect("a pending chain has prefixes");
            diag.error(
                call.method.span(),
                format_args!(
                    "`{}` has no {word} of its own: set it on the operator after it",
                    last.spec.word()
                ),
            );
            return;
        }
    };
    if call.args.len() != 1 {
        diag.error(
            call.method.span(),
            format_args!("`{word}` takes 1 argument, found {}", call.args.len()),
        );
        return;
    }
    let node = &mut g.nodes[id];
    let slot = match word.as_str() {
        "name" => &mut node.name,
        "uid" => &mut node.uid,
        "migrate_state" => &mut node.migrate,
        _ => &mut node.parallelism,
    };
    if slot.is_some() {
        diag.error(
            call.method.span(),
            format_args!("`{word}` is set twice on the same operator"),
        );
    }
    *slot = Some(call.args[0].clone());
}

/// `word` has no spec for a stream of kind `port`: misplaced, or unknown.
fn misplaced(word: &str, call: &Call, port: Port, diag: &mut Diagnostics) {
    let span = call.method.span();
    if port == Port::End {
        // Only reached through a binding, which a sink cannot have.
        diag.error(span, format_args!("nothing can follow a sink: `{word}`"));
        return;
    }
    match ops::lookup_any(word) {
        Some(spec) => {
            let needs = spec.on.first().copied().unwrap_or(Port::Stream);
            diag.error(span, port.misplaced(word, needs, spec.is_builder()));
        }
        None => {
            let hint = match did_you_mean(word, ops::all_words()) {
                Some(s) => format!(": did you mean `{s}`?"),
                None => String::new(),
            };
            diag.error(span, format_args!("unknown operator `{word}`{hint}"));
        }
    }
}
