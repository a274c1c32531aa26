//! The `flow!` macro and the function attributes. Entry points only: each parses, expands,
//! and turns errors into `compile_error!`s on the user's tokens.
//!
//! `flow!` runs its phases in order: parse (syntax tree) -> graph (nodes, names) -> check
//! (rules) -> plan (stages) -> codegen. Errors within a phase are collected; a phase with
//! errors stops the pipeline.

mod check;
mod codegen;
mod diagnostic;
mod function;
mod graph;
mod ops;
mod parse;
mod plan;
mod row;

use proc_macro::TokenStream;

/// Declares a job: `flow! { env => source(..).map(..).print(); }`. See the `flow` crate.
#[proc_macro]
pub fn flow(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as parse::FlowInput);
    expand_flow(&input)
        .unwrap_or_else(|e| fallback(&input, e))
        .into()
}

fn expand_flow(input: &parse::FlowInput) -> syn::Result<proc_macro2::TokenStream> {
    let mut diag = diagnostic::Diagnostics::new();
    let graph = graph::build(input, &mut diag);
    check::check(&graph, &mut diag);
    diag.finish()?;
    let mut diag = diagnostic::Diagnostics::new();
    let plan = plan::plan(&graph, &mut diag);
    diag.finish()?;
    Ok(codegen::expand(input, &graph, &plan))
}

/// On error: the errors, plus the `collect()` handles the user's later code refers to, so
/// that only the real mistakes are reported.
fn fallback(input: &parse::FlowInput, err: syn::Error) -> proc_macro2::TokenStream {
    let errors = err.to_compile_error();
    let handles = input.stmts.iter().filter_map(|s| match s {
        parse::FlowStmt::Let { name, chain }
            if chain.calls.last().is_some_and(|c| c.method == "collect") =>
        {
            Some(quote::quote!(let #name = ::flow::__private::CollectHandle::<()>::new();))
        }
        _ => None,
    });
    quote::quote!(#errors #(#handles)*)
}

macro_rules! function_attr {
    ($(#[$doc:meta])* $name:ident, $kind:ident) => {
        $(#[$doc])*
        #[proc_macro_attribute]
        pub fn $name(attr: TokenStream, item: TokenStream) -> TokenStream {
            function::expand(function::Kind::$kind, attr.into(), item.into()).into()
        }
    };
}

function_attr!(
    /// Makes a fn `fn f(row: T, #[state] s: &mut ValueState<S>) -> U`, or an impl block with
    /// `fn map(&mut self, row: T) -> U` (and optional `open`/`close`), a map function.
    map_function, Map
);
function_attr!(
    /// Makes a fn `fn f(row: T, out: &mut Vec<U>)` (with optional `#[state]` parameters), or an
    /// impl block with `fn flat_map(&mut self, row: T, out: &mut Vec<U>)`, a flat-map function.
    flat_map_function, FlatMap
);
function_attr!(
    /// Makes a fn `fn f(row: &T) -> bool` (with optional `#[state]` parameters), or an impl
    /// block with `fn filter(&mut self, row: &T) -> bool`, a filter function.
    filter_function, Filter
);
function_attr!(
    /// Makes a fn `fn f(acc: T, row: T) -> T`, or an impl block with
    /// `fn reduce(&mut self, acc: T, row: T) -> T`, a reduce function.
    reduce_function, Reduce
);
function_attr!(
    /// Makes an impl block with `fn process(&mut self, row, ctx, out)` a process function: with
    /// `ctx: &mut ProcessContext<'_, K>` a keyed one with state and timers (and an optional
    /// `fn on_timer(&mut self, timestamp, ctx, out)`; its struct derives `KeyedState`), with
    /// `ctx: &mut ProcessContext<'_>` one for a stream that is not keyed.
    process_function, Process
);
function_attr!(
    /// Makes an impl block with `process1`/`process2` (and optional `on_timer`) a keyed
    /// co-process function over two connected keyed streams (its struct derives `KeyedState`).
    co_process_function, CoProcess
);

/// Marks `fn f(row: &T) -> i64` as a timestamp assigner for `.timestamps(f)` (a plain fn of
/// that shape works too; the attribute checks the signature where it is written).
#[proc_macro_attribute]
pub fn timestamp_assigner(attr: TokenStream, item: TokenStream) -> TokenStream {
    function::expand_timestamp_assigner(attr.into(), item.into()).into()
}

/// Derives a row's schema, text form and serde impls.
#[proc_macro_derive(Row, attributes(row))]
pub fn derive_row(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    row::derive(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Derives the per-key state of an impl-block function from its `#[state]` fields.
#[proc_macro_derive(KeyedState, attributes(state))]
pub fn derive_keyed_state(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    function::derive_keyed_state(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
