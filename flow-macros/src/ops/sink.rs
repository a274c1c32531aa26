//! `sink_to(sink)`, `print()`, `collect()`: the end of a stream, one writer per subtask.
//! `print` writes each row's text form to stdout (`N> row` when parallel, as Flink's print);
//! `collect` hands the rows back to the program: `let rows = stream.collect();` binds a
//! handle whose `take()` returns them after `execute`; it runs in one subtask (as Flink's
//! `execute_and_collect`), so the rows of one upstream subtask keep their order. A sink takes
//! `.parallelism(n)`, `.name(..)` and `.uid(..)` after it, as any operator.
//!
//! > 1 input stream, 0 output streams

use super::{OpSpec, Port, Role};
use crate::graph::{Graph, Node};
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

pub const SINK_TO: OpSpec = OpSpec::new(
    "sink_to",
    &["sink_to"],
    &[Port::Stream, Port::Keyed],
    Role::Sink,
    sink_to_port,
)
.args(1, 1, "sink_to(sink)")
.operator(operator)
.one_to_one();

pub const PRINT: OpSpec = OpSpec::new(
    "print",
    &["print"],
    &[Port::Stream, Port::Keyed],
    Role::Sink,
    print_port,
)
.args(0, 1, "print() or print(\"identifier\")")
.operator(operator)
.one_to_one();

pub const COLLECT: OpSpec = OpSpec::new(
    "collect",
    &["collect"],
    &[Port::Stream, Port::Keyed],
    Role::Sink,
    collect_port,
)
.args(0, 0, "collect()")
.operator(operator)
.one_to_one();

fn sink_to_port(graph: &Graph, n: &Node) -> TokenStream {
    let arg = &n.args[0];
    sink_port(
        graph,
        n,
        "sink_to",
        quote_spanned!(syn::spanned::Spanned::span(arg)=> #arg),
    )
}

fn print_port(graph: &Graph, n: &Node) -> TokenStream {
    let sink = match n.args.first() {
        Some(id) => quote_spanned!(n.span=> ::flow::__private::PrintSink::with_identifier(#id)),
        None => quote_spanned!(n.span=> ::flow::__private::PrintSink::new()),
    };
    sink_port(graph, n, "print", sink)
}

fn collect_port(graph: &Graph, n: &Node) -> TokenStream {
    let name = n
        .collect_var
        .as_ref()
        .expect("collect is checked to be bound");
    sink_port(graph, n, "sink_to", quote_spanned!(n.span=> #name.sink()))
}

/// The handle of a `collect()`, declared before the job block, in the user's scope.
pub fn collect_handle(n: &Node) -> Option<TokenStream> {
    let name = n.collect_var.as_ref()?;
    Some(quote_spanned!(n.span=> let #name = ::flow::__private::CollectHandle::new();))
}

/// `let __fN = <input>.<method>(<sink>);` (`method`: `sink_to`, or `print` which also checks
/// that the rows have a text form). Every token but the sink's carries the operator's span, so
/// that rustc's errors about the stream's rows land on the operator.
fn sink_port(graph: &Graph, n: &Node, method: &str, sink: TokenStream) -> TokenStream {
    let f = n.spec_var();
    let input = crate::codegen::respan(graph.input_port(n), n.span);
    let method = syn::Ident::new(method, n.span);
    quote_spanned!(n.span=> let #f = #input.#method(#sink);)
}

/// The sink operator, its writer opened in the task.
fn operator(_: &Graph, n: &Node) -> TokenStream {
    let f = n.spec_var();
    quote!(#f.writer(__ctx)?)
}
