//! `window(assigner)`, `window_all(assigner)`, `count_window(size[, slide])`: group a stream's
//! rows into windows for the `reduce`, `aggregate` or `process` after it. `window` and
//! `count_window` need a keyed stream; `window_all` takes any stream and runs in one subtask,
//! as in Flink. Modifier: `.allowed_lateness(duration)`.
//!
//! > 1 input stream, 1 windowed stream (consumed by `reduce`, `aggregate` or `process`)

use super::{Exchange, OpKind, OpSpec};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

pub const WINDOW: OpSpec = OpSpec {
    word: "window",
    kind: OpKind::Window,
    args: (1, 1),
    signature: "window(TumblingEventTimeWindows::of(Duration::from_secs(1)))",
    needs_keyed: true,
    keyed_output: false,
    is_sink: false,
    exchange: Exchange::Forward,
    one_to_one: true,
};

pub const WINDOW_ALL: OpSpec = OpSpec {
    word: "window_all",
    kind: OpKind::WindowAll,
    args: (1, 1),
    signature: "window_all(TumblingEventTimeWindows::of(Duration::from_secs(1)))",
    needs_keyed: false,
    keyed_output: false,
    is_sink: false,
    exchange: Exchange::Rebalance,
    one_to_one: true,
};

pub const COUNT_WINDOW: OpSpec = OpSpec {
    word: "count_window",
    kind: OpKind::CountWindow,
    args: (1, 2),
    signature: "count_window(size) or count_window(size, slide)",
    needs_keyed: true,
    keyed_output: false,
    is_sink: false,
    exchange: Exchange::Forward,
    one_to_one: true,
};

pub fn port(graph: &Graph, n: &Node) -> TokenStream {
    let (f, t, span) = (n.spec_var(), n.port_var(), n.span);
    let lateness = n.lateness_var();
    let lateness_value = match &n.lateness {
        Some(e) => {
            quote_spanned!(syn::spanned::Spanned::span(e)=> { let __d: ::std::time::Duration = #e; __d })
        }
        None => quote!(::std::time::Duration::ZERO),
    };
    let windows = match n.spec.kind {
        OpKind::Window => {
            let (input, arg) = (graph.input_port(n, true), &n.args[0]);
            quote_spanned!(span=> #input.window(#arg))
        }
        OpKind::WindowAll => {
            let (input, arg) = (graph.input_port(n, false), &n.args[0]);
            quote_spanned!(span=> #input.window_all(#arg))
        }
        _ => {
            let input = graph.input_port(n, true);
            let size = &n.args[0];
            let slide = n.args.get(1).unwrap_or(size);
            quote_spanned!(span=> #input.count_window(#size, #slide))
        }
    };
    // The late-data tag must carry the window's input rows.
    let late_check = match &n.late_tag {
        Some(tag) => {
            let span = syn::spanned::Spanned::span(tag);
            quote_spanned!(span=> #t.late_data(#tag);)
        }
        None => quote!(),
    };
    quote! {
        let (#f, #t) = #windows;
        let #lateness: ::std::time::Duration = #lateness_value;
        #late_check
    }
}

/// The window operator for function node `n` (a `reduce`, `aggregate` or `process` reading
/// window node `w`).
pub fn chain(
    graph: &Graph,
    w: &Node,
    n: &Node,
    next: TokenStream,
    late: Option<(syn::Ident, TokenStream)>,
) -> TokenStream {
    let key = match graph.key_var(w) {
        Some(k) => quote!(::std::clone::Clone::clone(&#k)),
        None => quote!(::flow::__private::AllRows),
    };
    let (wv, lateness, f) = (w.spec_var(), w.lateness_var(), n.spec_var());
    let late_tag = match &late {
        Some((tag, _)) => quote!(::core::option::Option::Some(::flow::__private::tag_id(&#tag))),
        None => quote!(::core::option::Option::None),
    };
    let op = quote! {
        ::flow::__private::Window::new(
            #key, ::std::clone::Clone::clone(&#wv), #lateness, #f, #late_tag,
        )
    };
    let side = match late {
        Some((tag, collector)) => super::side_outputs([(tag, collector)]),
        None => quote!(::flow::__private::NoSideOutputs),
    };
    super::chained_with_side(n, op, next, side)
}
