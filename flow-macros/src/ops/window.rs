//! `window(assigner)`, `window_all(assigner)`, `count_window(size[, slide])`, then `reduce`,
//! `aggregate`, `process` or an aggregation (`sum`, ...): groups a stream's rows into windows
//! and computes each window's result (Flink's `WindowedStream`). `window` and `count_window`
//! need a keyed stream; `window_all` takes any stream and runs in one subtask, as in Flink.
//! Between the window and its function: `.allowed_lateness(duration)` and
//! `.side_output_late_data(&tag)`.
//!
//! The prefix words are folded into one node with the function: one window operator.
//!
//! > 1 keyed (or, after `window_all`, any) input stream, 1 output stream

use super::{function_port_as, key_of, method_for, OpSpec, Port, Role};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};

/// The window operator, created by its function word.
pub const WINDOW: OpSpec = OpSpec::new(
    "window",
    &[
        "reduce",
        "aggregate",
        "process",
        "sum",
        "min",
        "max",
        "min_by",
        "max_by",
    ],
    &[Port::Windowed, Port::AllWindowed],
    Role::Operator,
    port,
)
.args(
    1,
    2,
    "reduce(f), aggregate(f), aggregate(f, |key, window, result, out| ..) or process(|key, window, rows, out| ..)",
)
.operator(operator);

/// How many arguments the window's function word `word` takes: `aggregate` a second, the
/// window function of its results.
pub fn arity(word: &str) -> (usize, usize) {
    match word {
        "aggregate" => (1, 2),
        _ => (1, 1),
    }
}

/// `window(assigner)` on a keyed stream.
pub const WINDOW_ASSIGNER: OpSpec =
    OpSpec::prefix(&["window"], &[Port::Keyed], |_, _, _| Port::Windowed).args(
        1,
        1,
        "window(TumblingEventTimeWindows::of(Duration::from_secs(1)))",
    );

/// `window_all(assigner)`: one window operator over the whole stream.
pub const WINDOW_ALL: OpSpec =
    OpSpec::prefix(&["window_all"], &[Port::Stream, Port::Keyed], |_, _, _| {
        Port::AllWindowed
    })
    .args(
        1,
        1,
        "window_all(TumblingEventTimeWindows::of(Duration::from_secs(1)))",
    );

/// `count_window(size)` or `count_window(size, slide)` on a keyed stream.
pub const COUNT_WINDOW: OpSpec =
    OpSpec::prefix(&["count_window"], &[Port::Keyed], |_, _, _| Port::Windowed).args(
        1,
        2,
        "count_window(size) or count_window(size, slide)",
    );

/// `.allowed_lateness(duration)` after a window.
pub const ALLOWED_LATENESS: OpSpec = OpSpec::prefix(
    &["allowed_lateness"],
    &[Port::Windowed, Port::AllWindowed],
    |port, _, _| port,
)
.args(1, 1, "allowed_lateness(Duration::from_secs(10))");

/// `.side_output_late_data(&tag)` after a window.
pub const SIDE_OUTPUT_LATE_DATA: OpSpec = OpSpec::prefix(
    &["side_output_late_data"],
    &[Port::Windowed, Port::AllWindowed],
    |port, _, _| port,
)
.args(1, 1, "side_output_late_data(&tag)");

/// The prefix that groups window node `n`'s rows: `window`, `window_all` or `count_window`.
pub fn assigner(n: &Node) -> Option<&crate::graph::Prefix> {
    n.prefixes.iter().find(|p| {
        [&WINDOW_ASSIGNER, &WINDOW_ALL, &COUNT_WINDOW]
            .iter()
            .any(|spec| spec.name == p.spec.name)
    })
}

/// `__fN` = (windows, allowed lateness, late-data tag, function), and the output port.
fn port(graph: &Graph, n: &Node) -> TokenStream {
    let f = n.spec_var();
    let (windows, windowed, lateness, late, function) = (
        format_ident!("__w{}", n.id),
        format_ident!("__ws{}", n.id),
        format_ident!("__l{}", n.id),
        format_ident!("__lt{}", n.id),
        format_ident!("__g{}", n.id),
    );
    let a = assigner(n).expect("a window node has its assigner");
    // The port method of the assigner's name; `count_window(size)` slides by its size.
    let (input, span) = (graph.input_port(n), a.span);
    let method = format_ident!("{}", a.spec.name, span = span);
    let args = match (a.spec.name, &a.args[..]) {
        ("count_window", [size]) => quote_spanned!(span=> #size, #size),
        (_, args) => quote_spanned!(span=> #(#args),*),
    };
    let assign = quote_spanned!(span=> #input.#method(#args));
    let lateness_value = match n.prefix("allowed_lateness") {
        Some(p) => {
            let e = &p.args[0];
            quote_spanned!(syn::spanned::Spanned::span(e)=> { let __d: ::std::time::Duration = #e; __d })
        }
        None => quote!(::std::time::Duration::ZERO),
    };
    // The late-data tag must carry the window's input rows; its rows go to a side output only
    // if a `side_output(&tag)` reads it (else late rows are dropped and counted).
    let late_value = match n.prefix("side_output_late_data") {
        Some(p) => {
            let tag = &p.args[0];
            let span = syn::spanned::Spanned::span(tag);
            let read = graph.side_output_readers(n).next().is_some();
            quote_spanned! {span=>
                #windowed.late_data(#tag);
                let #late = #read.then(|| ::flow::__private::tag_id(#tag));
            }
        }
        None => {
            quote!(let #late: ::core::option::Option<::std::string::String> = ::core::option::Option::None;)
        }
    };
    let arg = &n.args[0];
    // `window_all` has no key: its closures take one parameter less.
    let all = n.port == Port::AllWindowed;
    let ctx = context_param(n);
    let method = match n.word.as_str() {
        "aggregate" => "aggregate".to_string(),
        "process" if is_closure(arg) && all && takes_context(arg, ctx) => {
            "process_all_closure_with_context".to_string()
        }
        "process" if is_closure(arg) && all => "process_all_closure".to_string(),
        "process" if takes_context(arg, ctx) => "process_closure_with_context".to_string(),
        "process" => method_for(arg, "process"),
        // `reduce`, and the aggregations (desugared to closures).
        _ => method_for(arg, "reduce"),
    };
    let call = match &n.args[..] {
        // `aggregate(f, |key, window, result, out| ..)`: the closure is typed by the port method.
        [agg, window_fn] => {
            let t = n.port_var();
            let span = syn::spanned::Spanned::span(window_fn);
            let value = format_ident!("__a{}", n.id, span = syn::spanned::Spanned::span(agg));
            let method = match (all, takes_context(window_fn, ctx)) {
                (true, true) => "aggregate_all_with_context",
                (true, false) => "aggregate_all_with",
                (false, true) => "aggregate_with_context",
                (false, false) => "aggregate_with",
            };
            let method = format_ident!("{}", method, span = span);
            quote_spanned! {span=>
                let #value = #agg;
                let (#function, #t) = #windowed.#method(#value, #window_fn);
            }
        }
        _ => function_port_as(quote!(#windowed), n, arg, &method, &function),
    };
    quote! {
        let (#windows, #windowed) = #assign;
        let #lateness: ::std::time::Duration = #lateness_value;
        #late_value
        #call
        let #f = (#windows, #lateness, #late, #function);
    }
}

/// Whether `f` is a closure whose parameter `index` (the window's) is annotated as a
/// `WindowContext` (`|key, ctx: &mut WindowContext<'_>, rows, out| ..`): its function gets the
/// context in place of the window (Flink's `ProcessWindowFunction.Context`). Decided from the
/// tokens, as the two kinds of closure have the same arity and rustc infers a closure's
/// parameters only from the one signature the port method names.
fn takes_context(f: &syn::Expr, index: usize) -> bool {
    fn names_context(ty: &syn::Type) -> bool {
        match ty {
            syn::Type::Reference(r) => names_context(&r.elem),
            syn::Type::Paren(p) => names_context(&p.elem),
            syn::Type::Path(p) => p
                .path
                .segments
                .last()
                .is_some_and(|s| s.ident == "WindowContext"),
            _ => false,
        }
    }
    let syn::Expr::Closure(c) = f else {
        return false;
    };
    matches!(c.inputs.iter().nth(index), Some(syn::Pat::Type(p)) if names_context(&p.ty))
}

/// Whether window node `n`'s function takes a `WindowContext` (and so may emit to side
/// outputs): `process(|key, ctx: &mut WindowContext<..>, rows, out| ..)` or `aggregate(f,
/// |key, ctx: &mut WindowContext<..>, result, out| ..)`.
pub fn function_takes_context(n: &Node) -> bool {
    n.spec.name == WINDOW.name
        && match (n.word.as_str(), &n.args[..]) {
            ("process", [f]) | ("aggregate", [_, f]) => takes_context(f, context_param(n)),
            _ => false,
        }
}

/// The window function closure of node `n` (`process`'s, or `aggregate`'s second argument),
/// if it has one, and the number of parameters it must have: `|key, window, rows, out|`, or
/// without the key after `window_all`.
pub fn window_closure(n: &Node) -> Option<(&syn::ExprClosure, usize)> {
    if n.spec.name != WINDOW.name {
        return None;
    }
    let f = match (n.word.as_str(), &n.args[..]) {
        ("process", [f]) | ("aggregate", [_, f]) => f,
        _ => return None,
    };
    let syn::Expr::Closure(c) = f else {
        return None;
    };
    Some((c, if n.port == Port::AllWindowed { 3 } else { 4 }))
}

/// Which parameter of the window function is the window or its context: the second, or the
/// first after `window_all` (no key).
fn context_param(n: &Node) -> usize {
    if n.port == Port::AllWindowed {
        0
    } else {
        1
    }
}

fn is_closure(f: &syn::Expr) -> bool {
    matches!(f, syn::Expr::Closure(_))
}

fn operator(graph: &Graph, n: &Node) -> TokenStream {
    let f = n.spec_var();
    let key = match n.port {
        Port::Windowed => key_of(graph, n.inputs[0]),
        _ => quote!(::flow::__private::AllRows),
    };
    quote! {
        ::flow::__private::Window::new(
            #key, #f.0, #f.1, #f.3, #f.2,
        )
    }
}
