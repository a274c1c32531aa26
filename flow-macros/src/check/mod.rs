//! The rules a job graph must follow, one `check_<rule>` per rule. Each reports spanned
//! errors on the user's tokens; independent errors are reported together. Which word may
//! follow which is already settled when the graph is built (`ops::lookup`); these are the
//! rules about the graph as a whole.

use crate::diagnostic::{tidy, Diagnostics};
use crate::graph::{Graph, Node};
use crate::ops::{Port, Role, StreamArgs};
use syn::Expr;

pub fn check(g: &Graph, diag: &mut Diagnostics) {
    check_has_source(g, diag);
    check_consumed(g, diag);
    check_nothing_after_sink(g, diag);
    check_collect_bound(g, diag);
    check_parallelism(g, diag);
    check_name(g, diag);
    check_uid(g, diag);
    check_timestamps_at_source(g, diag);
    check_two_inputs_keyed_alike(g, diag);
    check_event_time_windows(g, diag);
    check_window_sizes(g, diag);
    check_window_function_params(g, diag);
    check_interval_bounds(g, diag);
    check_side_output_source(g, diag);
}

// A job reads from at least one source.
fn check_has_source(g: &Graph, diag: &mut Diagnostics) {
    if !diag.has_errors() && !g.nodes.iter().any(Node::is_source) {
        diag.error(g.body_span, "a job needs at least one source: `from_collection(..)`, `from_iter(..)` or `source(..)`");
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
                format_args!("`{}` ends the stream: nothing can follow it", n.word),
            );
        }
    }
}

// `collect()` hands rows to the program, so its handle needs a name.
fn check_collect_bound(g: &Graph, diag: &mut Diagnostics) {
    for n in &g.nodes {
        if n.spec.name == "collect" && n.collect_var.is_none() {
            diag.error(n.span, "bind the rows of `collect()` to a name: `let rows = stream.collect();`, then `rows.take()` after `execute`");
        }
    }
}

// `.parallelism(n)` takes an integer literal >= 1, and only on operators that run code:
// a partitioning (`key_by`, `rebalance`, `broadcast`, `union`) has no parallelism of its own,
// as in Flink (prefix words such as `window` cannot take one: see `graph`).
fn check_parallelism(g: &Graph, diag: &mut Diagnostics) {
    for n in &g.nodes {
        let Some(p) = &n.parallelism else { continue };
        if matches!(n.spec.role, Role::Partition(_) | Role::Merge) {
            diag.error_spanned(
                p,
                format_args!(
                    "`{}` has no parallelism of its own: set it on the operator after it",
                    n.word
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

// `.uid(..)` takes a string literal of letters, digits, `-`, `_` and `.` (it names state files),
// unique in the block: two operators with one uid would restore each other's state.
fn check_uid(g: &Graph, diag: &mut Diagnostics) {
    let mut seen: Vec<String> = Vec::new();
    for n in &g.nodes {
        let Some(uid) = &n.uid else {
            continue;
        };
        let Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) = uid
        else {
            diag.error_spanned(
                uid,
                "an operator's uid must be a string literal such as `\"counts\"`: it names the operator's state in checkpoints",
            );
            continue;
        };
        let value = s.value();
        let valid = !value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            diag.error_spanned(
                uid,
                format_args!(
                    "uid `{value}`: use letters, digits, `-`, `_` and `.` only (it names the operator's state files)"
                ),
            );
            continue;
        }
        if seen.contains(&value) {
            diag.error_spanned(
                uid,
                format_args!(
                    "uid `{value}` is given to an earlier operator too: each operator's state needs its own uid"
                ),
            );
        } else {
            seen.push(value);
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
    for n in g.nodes.iter().filter(|n| n.spec.role == Role::Assigner) {
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

// The two inputs of a two-input operator are both keyed (partitioned by their keys, which
// must be of one type) or neither; a broadcast input goes to every subtask whatever the
// other one is.
fn check_two_inputs_keyed_alike(g: &Graph, diag: &mut Diagnostics) {
    for n in &g.nodes {
        let Some(join) = n.prefixes.first() else {
            continue;
        };
        if join.spec.stream_args != StreamArgs::First || n.port == Port::BroadcastConnected {
            continue;
        }
        let keyed: Vec<bool> = n
            .inputs
            .iter()
            .map(|&i| g.node(i).spec.output() == Port::Keyed)
            .collect();
        if keyed.iter().any(|&k| k) && !keyed.iter().all(|&k| k) {
            diag.error(join.span, format_args!(
                "`{}` joins two keyed streams or two streams that are not keyed: add `key_by` to both inputs, or to neither",
                join.spec.word()
            ));
        }
    }
}

/// The windows node `n` groups its rows into (a window's assigner, a window join's windows),
/// with the span to report them at.
fn windows(n: &Node) -> Option<&[Expr]> {
    if let Some(assigner) = crate::ops::window::assigner(n) {
        return Some(&assigner.args);
    }
    crate::ops::window_join::windows(n).map(std::slice::from_ref)
}

fn mentions(e: &Expr, word: &str) -> bool {
    quote::ToTokens::to_token_stream(e)
        .to_string()
        .contains(word)
}

// Event-time windows need event time: every source upstream must have a watermark strategy.
fn check_event_time_windows(g: &Graph, diag: &mut Diagnostics) {
    for n in &g.nodes {
        let Some(arg) = windows(n).and_then(<[Expr]>::first) else {
            continue;
        };
        if !mentions(arg, "EventTime") {
            continue;
        }
        if let Some(source) = g.source_without_watermarks(n) {
            diag.error_spanned(arg, "event-time windows need watermarks: give the source a strategy such as `Watermarks::monotonous()` and `.timestamps(..)`, or use processing-time windows (1/2)");
            diag.error(source.span, "this source has no watermarks (2/2)");
        }
    }
}

// A window's size, slide and gap are positive: a literal zero is an error here (other values
// are checked when the job starts).
fn check_window_sizes(g: &Graph, diag: &mut Diagnostics) {
    for n in &g.nodes {
        for arg in windows(n).unwrap_or_default() {
            let mut zero = ZeroFinder(None);
            syn::visit::Visit::visit_expr(&mut zero, arg);
            if let Some(span) = zero.0 {
                diag.error(span, "a window's size, slide and gap must be positive");
            }
        }
    }
}

// A window function closure takes the key, the window (or its context), the rows (or the
// result) and the output; after `window_all` there is no key, so one parameter less.
fn check_window_function_params(g: &Graph, diag: &mut Diagnostics) {
    for n in &g.nodes {
        let Some((c, params)) = crate::ops::window::window_closure(n) else {
            continue;
        };
        if c.inputs.len() == params {
            continue;
        }
        let rows = if n.word == "aggregate" {
            "result"
        } else {
            "rows"
        };
        let message = if params == 3 {
            format!("`window_all` has no key: its function takes `|window, {rows}, out|` (or `|ctx: &mut WindowContext<'_>, {rows}, out|`)")
        } else {
            format!("a window function takes `|key, window, {rows}, out|` (or `|key, ctx: &mut WindowContext<'_>, {rows}, out|`)")
        };
        diag.error_spanned(&c.inputs, message);
    }
}

// An interval join's lower bound is not above its upper bound: checked here when both are
// integer literals (other values when the job starts).
fn check_interval_bounds(g: &Graph, diag: &mut Diagnostics) {
    for n in g.nodes.iter() {
        let Some(between) = n.prefix("between") else {
            continue;
        };
        let (lower, upper) = (&between.args[0], &between.args[1]);
        if let (Some(lo), Some(hi)) = (int_literal(lower), int_literal(upper)) {
            if lo > hi {
                diag.error_spanned(
                    lower,
                    format_args!("an interval join's lower bound ({lo} ms) is above its upper bound ({hi} ms): `between(lower, upper)`"),
                );
            }
        }
    }
}

/// The value of an integer literal, possibly negated.
fn int_literal(e: &Expr) -> Option<i128> {
    match e {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(i),
            ..
        }) => i.base10_parse().ok(),
        Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr,
            ..
        }) => int_literal(expr).map(|v| -v),
        Expr::Paren(p) => int_literal(&p.expr),
        _ => None,
    }
}

/// Finds a literal `0` given as a count or as a `Duration::from_*` argument.
struct ZeroFinder(Option<proc_macro2::Span>);

fn is_zero(e: &Expr) -> bool {
    matches!(e, Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) if i.base10_digits() == "0")
}

impl<'a> syn::visit::Visit<'a> for ZeroFinder {
    fn visit_expr(&mut self, e: &'a Expr) {
        if self.0.is_none() && is_zero(e) {
            self.0 = Some(syn::spanned::Spanned::span(e));
        }
        if let Expr::Path(p) = e {
            if p.path.segments.last().is_some_and(|s| s.ident == "ZERO") {
                self.0.get_or_insert(syn::spanned::Spanned::span(e));
            }
        }
        syn::visit::visit_expr(self, e);
    }
}

// `side_output(&tag)` reads what the operator before it sends to that tag: any tag for an
// operator whose function emits by tag (`process`), the late rows of a window
// declared with `.side_output_late_data(&tag)` (the same tag expression).
fn check_side_output_source(g: &Graph, diag: &mut Diagnostics) {
    let text = |e: &Expr| tidy(e);
    for n in g.nodes.iter().filter(|n| n.spec.role == Role::SideOutput) {
        let input = g.node(n.inputs[0]);
        if input.spec.side_outputs || crate::ops::window::function_takes_context(input) {
            continue;
        }
        match input.prefix("side_output_late_data").map(|p| &p.args[0]) {
            Some(tag) if text(tag) == text(&n.args[0]) => {}
            Some(tag) => diag.error_spanned(&n.args[0], format_args!(
                "the window before this operator sends its late rows to `{}`, not to this tag",
                text(tag)
            )),
            None => diag.error_spanned(&n.args[0], "no operator here emits to this side output: read it after a `process` function, an interval join's `process` or a window function with a `WindowContext` (which emit with `ctx.output(&tag, row)`), or after a window declared with `.side_output_late_data(&tag)`"),
        }
    }
}
