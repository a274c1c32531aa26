//! The `flow!` macro and the function attributes. Entry points only: each parses, expands,
//! and turns errors into `compile_error!`s on the user's tokens.
//!
//! `flow!` runs its phases in order: parse (syntax tree) -> sql (tables and SQL planned into
//! DSL chains) -> graph (nodes, names) -> check (rules) -> plan (stages) -> codegen. Errors
//! within a phase are collected; a phase with errors stops the pipeline.

mod check;
mod codegen;
mod diagnostic;
mod function;
mod graph;
mod lock;
mod ops;
mod parse;
mod plan;
mod row;
mod schema;
mod sql;

use proc_macro::TokenStream;

#[doc = include_str!("reference.md")]
#[proc_macro]
pub fn flow(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as parse::FlowInput);
    let handles = collect_handles(&input);
    sql::lower(input)
        .and_then(|input| expand_flow(&input))
        .unwrap_or_else(|e| fallback(e, handles))
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
fn fallback(err: syn::Error, handles: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    let errors = err.to_compile_error();
    quote::quote!(#errors #handles)
}

/// Stand-ins for the `collect()` handles the body binds.
fn collect_handles(input: &parse::FlowInput) -> proc_macro2::TokenStream {
    let handles = input.stmts.iter().filter_map(|s| match s {
        parse::FlowStmt::Let { name, chain }
            if chain.calls.last().is_some_and(|c| c.method == "collect") =>
        {
            Some(quote::quote!(let #name = ::flow::__private::CollectHandle::<()>::new();))
        }
        _ => None,
    });
    quote::quote!(#(#handles)*)
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
    #[doc = include_str!("docs/map_function.md")]
    map_function,
    Map
);
function_attr!(
    #[doc = include_str!("docs/flat_map_function.md")]
    flat_map_function,
    FlatMap
);
function_attr!(
    #[doc = include_str!("docs/filter_function.md")]
    filter_function,
    Filter
);
function_attr!(
    #[doc = include_str!("docs/reduce_function.md")]
    reduce_function,
    Reduce
);
function_attr!(
    #[doc = include_str!("docs/process_function.md")]
    process_function,
    Process
);
function_attr!(
    #[doc = include_str!("docs/co_process_function.md")]
    co_process_function,
    CoProcess
);

#[doc = include_str!("docs/timestamp_assigner.md")]
#[proc_macro_attribute]
pub fn timestamp_assigner(attr: TokenStream, item: TokenStream) -> TokenStream {
    function::expand_timestamp_assigner(attr.into(), item.into()).into()
}

#[doc = include_str!("docs/row.md")]
#[proc_macro_derive(Row, attributes(row))]
pub fn derive_row(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    row::derive(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Implements `flow::StateSchema` for a type kept in operator state that is not a
/// `#[derive(Row)]`: the fingerprint of its saved layout (its fields' types in order), which
/// `flow.lock` records per stateful operator.
///
/// ```
/// use flow::StateSchema;
///
/// #[derive(flow::StateSchema)] // with serde's `Serialize` and `Deserialize`, to be kept in state
/// struct Totals {
///     count: u64,
///     sum: f64,
/// }
///
/// // Saved as its field types in order: the layout of the tuple `(u64, f64)`.
/// assert_eq!(Totals::FINGERPRINT, <(u64, f64)>::FINGERPRINT);
/// ```
#[proc_macro_derive(StateSchema)]
pub fn derive_state_schema(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    schema::derive(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

#[doc = include_str!("docs/keyed_state.md")]
#[proc_macro_derive(KeyedState, attributes(state))]
pub fn derive_keyed_state(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    function::derive_keyed_state(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
