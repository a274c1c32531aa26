//! Syntax tree -> job graph: resolves stream names and operator words into nodes with inputs,
//! outputs and their user spans. Errors that make a node impossible to build (an unknown
//! word, an unknown stream) are reported here; the rules about well-built graphs are in
//! `check/`.

use crate::diagnostic::{did_you_mean, Diagnostics};
use crate::ops::{self, source::SOURCE, source::SOURCE_FUNCTIONS, OpKind, OpSpec, MODIFIERS};
use crate::parse::{Chain, FlowInput, FlowStmt, Root};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{Expr, Ident};

/// One operator of the job.
pub struct Node {
    pub id: usize,
    pub spec: &'static OpSpec,
    /// The operator word (or source function) as the user wrote it.
    pub span: Span,
    pub args: Vec<Expr>,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
    /// `source`, `from_collection` or `from_iter` for sources.
    pub source_func: Option<String>,
    /// `.name(..)`'s argument.
    pub name: Option<Expr>,
    /// `.parallelism(..)`'s argument.
    pub parallelism: Option<Expr>,
    /// What the default name shows in parentheses, when not the first argument (the field of
    /// `sum(1)`).
    pub detail: Option<String>,
    /// `.allowed_lateness(..)`'s argument (windows).
    pub lateness: Option<Expr>,
    /// `.side_output_late_data(..)`'s argument (windows).
    pub late_tag: Option<Expr>,
    /// The name a `collect()` is bound to.
    pub collect_var: Option<Ident>,
    /// Calls written after this sink, which cannot be (checked).
    pub after_sink: Vec<Span>,
    /// Whether this `collect()` is bound with `let` (checked).
    pub collect_bound: bool,
}

impl Node {
    pub fn spec_var(&self) -> Ident {
        format_ident!("__f{}", self.id)
    }
    pub fn port_var(&self) -> Ident {
        format_ident!("__t{}", self.id)
    }
    pub fn lateness_var(&self) -> Ident {
        format_ident!("__l{}", self.id)
    }
    /// Whether this is `window`, `window_all` or `count_window`.
    pub fn is_window(&self) -> bool {
        matches!(
            self.spec.kind,
            OpKind::Window | OpKind::WindowAll | OpKind::CountWindow
        )
    }
    pub fn arg_is_closure(&self, i: usize) -> bool {
        matches!(self.args.get(i), Some(Expr::Closure(_)))
    }
    pub fn is_source(&self) -> bool {
        self.spec.kind == OpKind::Source
    }
    /// `.name("..")` if given, else the word with the function's or source's name.
    pub fn label(&self) -> String {
        if let Some(Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        })) = &self.name
        {
            return s.value();
        }
        let word = self.source_func.as_deref().unwrap_or(self.spec.word);
        if let Some(d) = &self.detail {
            return format!("{word}({d})");
        }
        let detail = match self.args.first() {
            Some(Expr::Path(p)) => p.path.segments.last().map(|s| s.ident.to_string()),
            Some(Expr::Call(c)) => match &*c.func {
                Expr::Path(p) => {
                    let segs: Vec<String> = p
                        .path
                        .segments
                        .iter()
                        .map(|s| s.ident.to_string())
                        .collect();
                    let n = segs.len();
                    Some(if n >= 2 {
                        segs[n - 2].clone()
                    } else {
                        segs.join("::")
                    })
                }
                _ => None,
            },
            Some(Expr::MethodCall(m)) => Some(root_name(&m.receiver)),
            _ => None,
        };
        match detail {
            Some(d) if self.spec.kind != OpKind::Collect => format!("{word}({d})"),
            _ => word.to_string(),
        }
    }
    /// `file:line:column` of the operator.
    pub fn location(&self) -> String {
        let start = self.span.start();
        format!("{}:{}:{}", self.span.file(), start.line, start.column + 1)
    }
}

fn root_name(e: &Expr) -> String {
    match e {
        Expr::MethodCall(m) => root_name(&m.receiver),
        Expr::Call(c) => match &*c.func {
            Expr::Path(p) => {
                let segs: Vec<String> = p
                    .path
                    .segments
                    .iter()
                    .map(|s| s.ident.to_string())
                    .collect();
                let n = segs.len();
                if n >= 2 {
                    segs[n - 2].clone()
                } else {
                    segs.join("::")
                }
            }
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

/// A stream bound with `let`.
pub struct Binding {
    pub name: Ident,
    /// `None` when its chain has an error (already reported): its uses are not reported again.
    pub node: Option<usize>,
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

    /// The port expression of node `id`'s output; a keyed port is turned into a plain one
    /// unless `keyed_ok`.
    pub fn port_of(&self, id: usize, keyed_ok: bool) -> TokenStream {
        let n = &self.nodes[id];
        let t = n.port_var();
        if n.spec.keyed_output && !keyed_ok {
            quote!(#t.stream())
        } else {
            quote!(#t)
        }
    }

    /// The port of `n`'s (first) input.
    pub fn input_port(&self, n: &Node, keyed_ok: bool) -> TokenStream {
        self.port_of(n.inputs[0], keyed_ok)
    }

    /// The key selector's variable if `n` reads a keyed stream.
    pub fn key_var(&self, n: &Node) -> Option<Ident> {
        let input = &self.nodes[*n.inputs.first()?];
        input.spec.keyed_output.then(|| input.spec_var())
    }

    /// The window node `n` reads, if it reads one.
    pub fn window_of(&self, n: &Node) -> Option<&Node> {
        let input = &self.nodes[*n.inputs.first()?];
        input.is_window().then_some(input)
    }

    /// Whether `n`'s input is keyed.
    pub fn keyed_input(&self, n: &Node) -> bool {
        n.inputs
            .first()
            .is_some_and(|&i| self.nodes[i].spec.keyed_output)
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
                let Some(end) = build_chain(&mut g, chain, diag) else {
                    g.bindings.push(Binding {
                        name: name.clone(),
                        node: None,
                        used: true,
                    });
                    continue;
                };
                if g.nodes[end].spec.kind == OpKind::Collect {
                    g.nodes[end].collect_var = Some(name.clone());
                    g.nodes[end].collect_bound = true;
                } else if g.nodes[end].spec.is_sink {
                    diag.error(
                        name.span(),
                        format_args!(
                            "`{}` ends the stream and has no value to bind: drop the `let`",
                            g.nodes[end].spec.word
                        ),
                    );
                } else {
                    if let Some(prev) = g.bindings.iter().position(|b| b.name == *name) {
                        // Shadowing a stream that was never used would lose it silently.
                        if !g.bindings[prev].used {
                            diag.error(
                                g.bindings[prev].name.span(),
                                format_args!(
                                    "stream `{name}` is never consumed before it is shadowed (1/2)"
                                ),
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
                        node: Some(end),
                        used: false,
                    });
                }
            }
            FlowStmt::Chain(chain) => {
                let Some(end) = build_chain(&mut g, chain, diag) else {
                    continue;
                };
                if !g.nodes[end].spec.is_sink {
                    g.dangling.push((chain.last_span(), end));
                }
            }
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

fn new_node(
    g: &mut Graph,
    spec: &'static OpSpec,
    span: Span,
    args: Vec<Expr>,
    inputs: Vec<usize>,
) -> usize {
    let id = g.nodes.len();
    g.nodes.push(Node {
        id,
        spec,
        span,
        args,
        inputs,
        outputs: Vec::new(),
        source_func: None,
        name: None,
        parallelism: None,
        lateness: None,
        late_tag: None,
        detail: None,
        collect_var: None,
        after_sink: Vec::new(),
        collect_bound: false,
    });
    id
}

/// Builds one chain; returns its last node.
fn build_chain(g: &mut Graph, chain: &Chain, diag: &mut Diagnostics) -> Option<usize> {
    let mut cur = match &chain.root {
        Root::Source { func, args, span } => {
            let word = func.to_string();
            match SOURCE_FUNCTIONS.iter().find(|(w, ..)| *w == word) {
                Some(&(_, min, max)) => {
                    if args.len() < min || args.len() > max {
                        diag.error(
                            *span,
                            format_args!(
                                "`{word}` takes {} argument{}, found {}",
                                if min == max {
                                    min.to_string()
                                } else {
                                    format!("{min} or {max}")
                                },
                                if max == 1 { "" } else { "s" },
                                args.len()
                            ),
                        );
                        return None;
                    }
                    let id = new_node(g, &SOURCE, func.span(), args.clone(), Vec::new());
                    g.nodes[id].source_func = Some(word);
                    id
                }
                None => {
                    let hint = match did_you_mean(&word, SOURCE_FUNCTIONS.iter().map(|(w, ..)| *w))
                    {
                        Some(s) => format!(": did you mean `{s}`?"),
                        None => {
                            ": sources are `source(..)`, `from_collection(..)` and `from_iter(..)`"
                                .into()
                        }
                    };
                    diag.error(func.span(), format_args!("unknown source `{word}`{hint}"));
                    return None;
                }
            }
        }
        Root::Stream(name) => match g.bindings.iter_mut().rev().find(|b| b.name == *name) {
            Some(b) => {
                b.used = true;
                b.node?
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
        let word = call.method.to_string();
        if g.nodes[cur].spec.is_sink {
            g.nodes[cur].after_sink.push(call.method.span());
            continue;
        }
        match word.as_str() {
            "parallelism" | "name" | "allowed_lateness" | "side_output_late_data" | "between" => {
                if word == "between" && g.nodes[cur].spec.kind != OpKind::IntervalJoin {
                    diag.error(call.method.span(), "`between` gives an interval join's bounds: put it right after `interval_join(..)`");
                    continue;
                }
                if word == "between" {
                    if call.args.len() != 2 {
                        diag.error(call.method.span(), format_args!("`between` takes 2 arguments (lower and upper bound in ms), found {}", call.args.len()));
                    } else {
                        let (lo, hi) = (&call.args[0], &call.args[1]);
                        g.nodes[cur].lateness = Some(syn::parse_quote!((#lo, #hi)));
                    }
                    continue;
                }
                if word != "parallelism" && word != "name" && !g.nodes[cur].is_window() {
                    diag.error(
                        call.method.span(),
                        format_args!(
                            "`{word}` applies to a window: put it right after `window(..)`"
                        ),
                    );
                    continue;
                }
                if call.args.len() != 1 {
                    diag.error(
                        call.method.span(),
                        format_args!("`{word}` takes 1 argument, found {}", call.args.len()),
                    );
                    continue;
                }
                let slot = match word.as_str() {
                    "name" => &mut g.nodes[cur].name,
                    "allowed_lateness" => &mut g.nodes[cur].lateness,
                    "side_output_late_data" => &mut g.nodes[cur].late_tag,
                    _ => &mut g.nodes[cur].parallelism,
                };
                if slot.is_some() {
                    diag.error(
                        call.method.span(),
                        format_args!("`{word}` is set twice on the same operator"),
                    );
                }
                *slot = Some(call.args[0].clone());
                continue;
            }
            _ => {}
        }
        let Some(spec) = ops::lookup(&word) else {
            let candidates = ops::OPS
                .iter()
                .map(|o| o.word)
                .chain(MODIFIERS.iter().copied());
            let hint = match did_you_mean(&word, candidates) {
                Some(s) => format!(": did you mean `{s}`?"),
                None => String::new(),
            };
            diag.error(
                call.method.span(),
                format_args!("unknown operator `{word}`{hint}"),
            );
            return None;
        };
        let (min, max) = spec.args;
        if call.args.len() < min || call.args.len() > max {
            let expected = if max == usize::MAX {
                format!("at least {min} argument{}", if min == 1 { "" } else { "s" })
            } else if min == max {
                format!("{min} argument{}", if min == 1 { "" } else { "s" })
            } else {
                format!("{min} or {max} arguments")
            };
            diag.error(
                call.method.span(),
                format_args!(
                    "`{word}` takes {expected}, found {}: `{}`",
                    call.args.len(),
                    spec.signature
                ),
            );
            return None;
        }
        let mut inputs = vec![cur];
        if matches!(
            spec.kind,
            OpKind::Union | OpKind::Connect | OpKind::IntervalJoin | OpKind::WindowJoin
        ) {
            // A window join's second argument is its windows, not a stream.
            let streams = if spec.kind == OpKind::WindowJoin {
                &call.args[..1]
            } else {
                &call.args[..]
            };
            for arg in streams {
                let other = crate::parse::parse_chain(arg.clone())
                    .map_err(|e| diag.push(e))
                    .ok()?;
                inputs.push(build_chain(g, &other, diag)?);
            }
        }
        let mut args = call.args.clone();
        let mut detail = None;
        if ops::aggregations::is_aggregation(&word) {
            match ops::aggregations::desugar(&word, &args[0]) {
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
        cur = new_node(g, spec, call.method.span(), args, inputs);
        g.nodes[cur].detail = detail;
    }
    Some(cur)
}
