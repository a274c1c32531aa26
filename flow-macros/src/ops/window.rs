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

use super::{function_port_as, key_of, method_for, no_port, OpSpec, Port, Role, StreamArgs};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};

/// The window operator, created by its function word.
pub const WINDOW: OpSpec = OpSpec {
    name: "window",
    words: &[
        "reduce",
        "aggregate",
        "process",
        "sum",
        "min",
        "max",
        "min_by",
        "max_by",
    ],
    on: &[Port::Windowed, Port::AllWindowed],
    role: Role::Operator,
    args: (1, 1),
    signature: "reduce(f), aggregate(f) or process(|key, window, rows, out| ..)",
    stream_args: StreamArgs::None,
    one_to_one: false,
    side_outputs: false,
    port,
    operator: Some(operator),
};

/// `window(assigner)` on a keyed stream.
pub const WINDOW_ASSIGNER: OpSpec = OpSpec {
    name: "window",
    words: &["window"],
    on: &[Port::Keyed],
    role: Role::Builder {
        yields: |_, _, _| Port::Windowed,
    },
    args: (1, 1),
    signature: "window(TumblingEventTimeWindows::of(Duration::from_secs(1)))",
    stream_args: StreamArgs::None,
    one_to_one: false,
    side_outputs: false,
    port: no_port,
    operator: None,
};

/// `window_all(assigner)`: one window operator over the whole stream.
pub const WINDOW_ALL: OpSpec = OpSpec {
    name: "window_all",
    words: &["window_all"],
    on: &[Port::Stream, Port::Keyed],
    role: Role::Builder {
        yields: |_, _, _| Port::AllWindowed,
    },
    args: (1, 1),
    signature: "window_all(TumblingEventTimeWindows::of(Duration::from_secs(1)))",
    stream_args: StreamArgs::None,
    one_to_one: false,
    side_outputs: false,
    port: no_port,
    operator: None,
};

/// `count_window(size)` or `count_window(size, slide)` on a keyed stream.
pub const COUNT_WINDOW: OpSpec = OpSpec {
    name: "count_window",
    words: &["count_window"],
    on: &[Port::Keyed],
    role: Role::Builder {
        yields: |_, _, _| Port::Windowed,
    },
    args: (1, 2),
    signature: "count_window(size) or count_window(size, slide)",
    stream_args: StreamArgs::None,
    one_to_one: false,
    side_outputs: false,
    port: no_port,
    operator: None,
};

/// `.allowed_lateness(duration)` after a window.
pub const ALLOWED_LATENESS: OpSpec = OpSpec {
    name: "allowed_lateness",
    words: &["allowed_lateness"],
    on: &[Port::Windowed, Port::AllWindowed],
    role: Role::Builder {
        yields: |port, _, _| port,
    },
    args: (1, 1),
    signature: "allowed_lateness(Duration::from_secs(10))",
    stream_args: StreamArgs::None,
    one_to_one: false,
    side_outputs: false,
    port: no_port,
    operator: None,
};

/// `.side_output_late_data(&tag)` after a window.
pub const SIDE_OUTPUT_LATE_DATA: OpSpec = OpSpec {
    name: "side_output_late_data",
    words: &["side_output_late_data"],
    on: &[Port::Windowed, Port::AllWindowed],
    role: Role::Builder {
        yields: |port, _, _| port,
    },
    args: (1, 1),
    signature: "side_output_late_data(&tag)",
    stream_args: StreamArgs::None,
    one_to_one: false,
    side_outputs: false,
    port: no_port,
    operator: None,
};

/// The assigner prefix of window node `n`: `window`, `window_all` or `count_window`.
pub fn assigner(n: &Node) -> &crate::graph::Prefix {
    n.prefixes
        .iter()
        .find(|p| matches!(p.spec.name, "window" | "window_all" | "count_window"))
        .expect("a window node has its assigner")
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
    let a = assigner(n);
    let span = a.span;
    let assign = match a.spec.name {
        "window" => {
            let (input, arg) = (graph.input_port(n), &a.args[0]);
            quote_spanned!(span=> #input.window(#arg))
        }
        "window_all" => {
            let (input, arg) = (graph.input_port(n), &a.args[0]);
            quote_spanned!(span=> #input.window_all(#arg))
        }
        _ => {
            let input = graph.input_port(n);
            let size = &a.args[0];
            let slide = a.args.get(1).unwrap_or(size);
            quote_spanned!(span=> #input.count_window(#size, #slide))
        }
    };
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
    let method = match n.word.as_str() {
        "aggregate" => "aggregate".to_string(),
        "process" => method_for(arg, "process"),
        // `reduce`, and the aggregations (desugared to closures).
        _ => method_for(arg, "reduce"),
    };
    let call = function_port_as(quote!(#windowed), n, arg, &method, &function);
    quote! {
        let (#windows, #windowed) = #assign;
        let #lateness: ::std::time::Duration = #lateness_value;
        #late_value
        #call
        let #f = (#windows, #lateness, #late, #function);
    }
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
