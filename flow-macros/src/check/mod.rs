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
        if n.spec.needs_keyed && !g.keyed_input(n) {
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
            OpKind::KeyBy | OpKind::Rebalance | OpKind::Union
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
