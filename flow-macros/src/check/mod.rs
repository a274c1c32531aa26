//! The rules a job graph must follow, one `check_<rule>` per rule. Each reports spanned
//! errors on the user's tokens; independent errors are reported together.

use crate::diagnostic::Diagnostics;
use crate::graph::Graph;
use crate::ops::OpKind;
use syn::Expr;

pub fn check(g: &Graph, diag: &mut Diagnostics) {
    check_has_source(g, diag);
    check_keyed_input(g, diag);
    check_consumed(g, diag);
    check_nothing_after_sink(g, diag);
    check_collect_bound(g, diag);
    check_parallelism(g, diag);
    check_name(g, diag);
    check_timestamps_at_source(g, diag);
    check_window_function(g, diag);
    check_event_time_windows(g, diag);
    check_window_sizes(g, diag);
    check_side_output_source(g, diag);
    check_connect(g, diag);
}

// A job reads from at least one source.
fn check_has_source(g: &Graph, diag: &mut Diagnostics) {
    if !diag.has_errors() && !g.nodes.iter().any(|n| n.is_source()) {
        diag.error(g.body_span, "a job needs at least one source: `from_collection(..)`, `from_iter(..)` or `source(..)`");
    }
}

// Keyed operators (`reduce`) read a keyed stream: `key_by` must come right before them.
// Functions with `#[state]` are checked by the type system (their trait only has keyed impls).
fn check_keyed_input(g: &Graph, diag: &mut Diagnostics) {
    for n in &g.nodes {
        let all_keyed = n.inputs.iter().all(|&i| g.node(i).spec.keyed_output);
        if n.spec.needs_keyed && !all_keyed && g.window_of(n).is_none() {
            let word = n.spec.word;
            diag.error(
                n.span,
                format_args!("`{word}` needs a keyed stream: add `key_by` before `{word}`"),
            );
        }
    }
}

// Every stream ends in a sink or feeds another operator; a stream nobody reads is a mistake
// (its rows would be computed and lost).
fn check_consumed(g: &Graph, diag: &mut Diagnostics) {
    for b in &g.bindings {
        if !b.used {
            diag.error(b.name.span(), format_args!(
                "stream `{}` is never consumed: end it with a sink such as `.print()`, or use it in another operator",
                b.name
            ));
        }
    }
    for (span, _) in &g.dangling {
        diag.error(*span, "this stream is never consumed: end it with a sink such as `.print()` or `.sink_to(..)`, or bind it with `let`");
    }
}

// A sink ends its stream.
fn check_nothing_after_sink(g: &Graph, diag: &mut Diagnostics) {
    for n in &g.nodes {
        for &span in &n.after_sink {
            diag.error(
                span,
                format_args!("`{}` ends the stream: nothing can follow it", n.spec.word),
            );
        }
    }
}

// `collect()` hands rows to the program, so its handle needs a name.
fn check_collect_bound(g: &Graph, diag: &mut Diagnostics) {
    for n in &g.nodes {
        if n.spec.kind == OpKind::Collect && !n.collect_bound {
            diag.error(n.span, "bind the rows of `collect()` to a name: `let rows = stream.collect();`, then `rows.take()` after `execute`");
        }
    }
}

// `.parallelism(n)` takes an integer literal >= 1, and only on operators that run code:
// a partitioning (`key_by`, `rebalance`, `union`) has no parallelism of its own, as in Flink.
fn check_parallelism(g: &Graph, diag: &mut Diagnostics) {
    for n in &g.nodes {
        let Some(p) = &n.parallelism else { continue };
        if matches!(
            n.spec.kind,
            OpKind::KeyBy
                | OpKind::Rebalance
                | OpKind::Union
                | OpKind::Connect
                | OpKind::Window
                | OpKind::CountWindow
                | OpKind::WindowAll
        ) {
            diag.error_spanned(
                p,
                format_args!(
                    "`{}` has no parallelism of its own: set it on the operator after it",
                    n.spec.word
                ),
            );
            continue;
        }
        match parallelism_literal(p) {
            Some(Ok(0)) => diag.error_spanned(p, "parallelism must be at least 1"),
            Some(Ok(_)) => {}
            Some(Err(e)) => diag.push(e),
            None => diag.error_spanned(p, "parallelism must be an integer literal such as `2`: the plan is made at compile time (use `--parallelism` for the job's default)"),
        }
    }
}

// `.name(..)` takes a string literal: names are part of the static plan.
fn check_name(g: &Graph, diag: &mut Diagnostics) {
    for n in &g.nodes {
        if let Some(name) = &n.name {
            if !matches!(
                name,
                Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(_),
                    ..
                })
            ) {
                diag.error_spanned(
                    name,
                    "an operator's name must be a string literal such as `\"tokenizer\"`",
                );
            }
        }
    }
}

/// The value of a `.parallelism(..)` argument if it is an integer literal.
pub fn parallelism_literal(e: &Expr) -> Option<syn::Result<usize>> {
    match e {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(i),
            ..
        }) => Some(i.base10_parse::<usize>()),
        _ => None,
    }
}

// Timestamps are assigned where watermarks are generated: in the source's split, so
// `.timestamps(..)` comes right after `source(..)` and is its only consumer.
fn check_timestamps_at_source(g: &Graph, diag: &mut Diagnostics) {
    for n in &g.nodes {
        if n.spec.kind != OpKind::Timestamps {
            continue;
        }
        let input = g.node(n.inputs[0]);
        if !input.is_source() {
            diag.error(
                n.span,
                "`timestamps` assigns event time at the source: put it right after `source(..)`",
            );
        } else if input.outputs.len() > 1 {
            diag.error(n.span, "`timestamps` must be the only consumer of its source: bind the stream after it with `let` and use that twice");
        }
    }
}

// A window is followed by the function that computes its result, and `aggregate` and
// `process` only compute windows.
fn check_window_function(g: &Graph, diag: &mut Diagnostics) {
    for n in &g.nodes {
        let windowed = g.window_of(n).is_some();
        if n.spec.kind == OpKind::Aggregate && !windowed {
            diag.error(n.span, "`aggregate` computes a window's result: add `.window(..)` (after `key_by`) or `.window_all(..)` before it");
        }
        // Timers and keyed state need a key.
        let joined = n.inputs.first().is_some_and(|&i| {
            matches!(
                g.node(i).spec.kind,
                OpKind::IntervalJoin | OpKind::WindowJoin | OpKind::Connect
            )
        });
        if n.spec.kind == OpKind::Process && !windowed && !joined && !g.keyed_input(n) {
            diag.error(n.span, "`process` needs a keyed stream (timers and state are per key): add `key_by` before `process`, or a window");
        }
        if windowed
            && !matches!(
                n.spec.kind,
                OpKind::Reduce | OpKind::Aggregate | OpKind::Process
            )
        {
            diag.error(
                n.span,
                format_args!(
                    "a window is followed by `reduce`, `aggregate` or `process`, not `{}`",
                    n.spec.word
                ),
            );
        }
    }
    for n in g.nodes.iter().filter(|n| n.is_window()) {
        if n.outputs.is_empty() {
            diag.error(n.span, "this window has no function: follow it with `.reduce(..)`, `.aggregate(..)` or `.process(..)`");
        }
    }
}

fn mentions(e: &syn::Expr, word: &str) -> bool {
    quote::ToTokens::to_token_stream(e)
        .to_string()
        .contains(word)
}

/// Whether source node `s` is declared without watermarks.
fn source_without_watermarks(s: &crate::graph::Node) -> bool {
    match s.args.get(1) {
        None => true,
        Some(w) => mentions(w, "no_watermarks"),
    }
}

// Event-time windows need event time: every source upstream must have a watermark strategy.
fn check_event_time_windows(g: &Graph, diag: &mut Diagnostics) {
    for n in g.nodes.iter().filter(|n| n.is_window()) {
        let Some(arg) = n.args.first() else { continue };
        if n.spec.kind == OpKind::CountWindow || !mentions(arg, "EventTime") {
            continue;
        }
        let mut stack = vec![n.id];
        let mut seen = vec![false; g.nodes.len()];
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            let node = g.node(i);
            if node.is_source() && source_without_watermarks(node) {
                diag.error_spanned(arg, "event-time windows need watermarks: give the source a strategy such as `Watermarks::monotonous()` and `.timestamps(..)`, or use processing-time windows (1/2)");
                diag.error(node.span, "this source has no watermarks (2/2)");
                break;
            }
            stack.extend(node.inputs.iter().copied());
        }
    }
}

// A window's size, slide and gap are positive: a literal zero is an error here (other values
// are checked when the job starts).
fn check_window_sizes(g: &Graph, diag: &mut Diagnostics) {
    for n in g.nodes.iter().filter(|n| n.is_window()) {
        for arg in &n.args {
            let mut zero = ZeroFinder(None);
            syn::visit::Visit::visit_expr(&mut zero, arg);
            if let Some(span) = zero.0 {
                diag.error(span, "a window's size, slide and gap must be positive");
            }
        }
    }
}

/// Finds a literal `0` given as a count or as a `Duration::from_*` argument.
struct ZeroFinder(Option<proc_macro2::Span>);

fn is_zero(e: &syn::Expr) -> bool {
    matches!(e, syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) if i.base10_digits() == "0")
}

impl<'a> syn::visit::Visit<'a> for ZeroFinder {
    fn visit_expr(&mut self, e: &'a syn::Expr) {
        if self.0.is_none() && is_zero(e) {
            self.0 = Some(syn::spanned::Spanned::span(e));
        }
        if let syn::Expr::Path(p) = e {
            if p.path.segments.last().is_some_and(|s| s.ident == "ZERO") {
                self.0.get_or_insert(syn::spanned::Spanned::span(e));
            }
        }
        syn::visit::visit_expr(self, e);
    }
}

// `side_output(&tag)` reads the late rows of the window whose function it follows, declared
// with `.side_output_late_data(&tag)` (the same tag expression).
fn check_side_output_source(g: &Graph, diag: &mut Diagnostics) {
    let text = |e: &syn::Expr| quote::ToTokens::to_token_stream(e).to_string();
    for n in g.nodes.iter().filter(|n| n.spec.kind == OpKind::SideOutput) {
        let input = g.node(n.inputs[0]);
        // A keyed process function emits to any tag with `ctx.output(&tag, row)`.
        if input.spec.kind == OpKind::Process
            && g.window_of(input).is_none()
            && g.keyed_input(input)
        {
            continue;
        }
        let declared = g.window_of(input).and_then(|w| w.late_tag.as_ref());
        match declared {
            Some(tag) if text(tag) == text(&n.args[0]) => {}
            Some(tag) => diag.error_spanned(&n.args[0], format_args!(
                "the window before this operator sends its late rows to `{}`, not to this tag",
                text(tag)
            )),
            None => diag.error_spanned(&n.args[0], "no operator here emits to this side output: read it after a keyed `process` function (which emits with `ctx.output(&tag, row)`), or after a window declared with `.side_output_late_data(&tag)`"),
        }
    }
}

// `connect` pairs two streams for one two-input function: `co_map` or `co_flat_map` follows
// it, and only they read connected streams.
fn check_connect(g: &Graph, diag: &mut Diagnostics) {
    for n in &g.nodes {
        let co = matches!(n.spec.kind, OpKind::CoMap | OpKind::CoFlatMap);
        let after_connect = n
            .inputs
            .first()
            .is_some_and(|&i| g.node(i).spec.kind == OpKind::Connect);
        if co && !after_connect {
            diag.error(
                n.span,
                format_args!(
                    "`{}` needs two connected streams: `a.connect(b).{}(..)`",
                    n.spec.word, n.spec.word
                ),
            );
        }
        // `connect(b.broadcast()).process(f)`: a broadcast process function.
        let broadcast_process = n.spec.kind == OpKind::Process
            && after_connect
            && g.node(n.inputs[0])
                .inputs
                .get(1)
                .is_some_and(|&b| g.node(b).spec.kind == OpKind::Broadcast);
        let co_process = n.spec.kind == OpKind::Process
            && after_connect
            && g.node(n.inputs[0])
                .inputs
                .iter()
                .all(|&i| g.node(i).spec.keyed_output);
        if !co && after_connect && !broadcast_process && !co_process {
            diag.error(
                n.span,
                format_args!(
                    "connected streams are read by `co_map` or `co_flat_map`, not `{}`",
                    n.spec.word
                ),
            );
        }
        if n.spec.kind == OpKind::Connect && n.outputs.len() > 1 {
            diag.error(n.span, "connected streams feed one `co_map` or `co_flat_map`: bind its result with `let` to use it twice");
        }
        if n.spec.kind == OpKind::WindowJoin {
            for &c in &n.outputs {
                if g.node(c).spec.kind != OpKind::Process {
                    diag.error(
                        g.node(c).span,
                        "a window join is followed by `.process(|first, second, out| ..)`",
                    );
                }
            }
        }
        if n.spec.kind == OpKind::IntervalJoin {
            if n.lateness.is_none() {
                diag.error(n.span, "an interval join needs its bounds: `.interval_join(other).between(lower_ms, upper_ms)`");
            }
            for &c in &n.outputs {
                if g.node(c).spec.kind != OpKind::Process {
                    diag.error(
                        g.node(c).span,
                        "an interval join is followed by `.process(|first, second, out| ..)`",
                    );
                }
            }
        }
    }
}

/// Whether every source upstream of `n` has a watermark strategy.
pub fn has_event_time(g: &Graph, n: &crate::graph::Node) -> bool {
    let mut stack = vec![n.id];
    let mut seen = vec![false; g.nodes.len()];
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        let node = g.node(i);
        if node.is_source() && source_without_watermarks(node) {
            return false;
        }
        stack.extend(node.inputs.iter().copied());
    }
    true
}
