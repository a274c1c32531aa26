//! The function attributes: `#[map_function]`, `#[flat_map_function]`, `#[filter_function]`,
//! `#[reduce_function]`, `#[process_function]`, `#[co_process_function]`, and
//! `#[derive(KeyedState)]` and `#[timestamp_assigner]`.
//!
//! Each attribute runs in two phases, as `flow!` does: `parse` reads a fn or an impl block
//! into one [`Function`] shape (its rows, keyed state, output, key and hooks), collecting every
//! error; `expand` writes the trait impls from that shape. On error the user's item is still
//! emitted (a fn as the associated fn of its unit struct), so that only the real mistakes are
//! reported, not every later use of the function's name.
//!
//! On a fn, the `#[state]` parameters become the fields of one generated per-key struct, so
//! the operator does one key lookup per row for all of them. A function without keyed state
//! works on any stream; with it only on a keyed one (the stateless trait is not implemented,
//! and its diagnostic says to add `key_by`).

mod expand;
mod keyed_state;
mod parse;

pub use keyed_state::derive_keyed_state;

use crate::diagnostic::Diagnostics;
use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Ident, ItemFn, ItemImpl, Type};

/// Which attribute, and the shape of its function.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Map,
    FlatMap,
    Filter,
    Reduce,
    Process,
    CoProcess,
}

impl Kind {
    /// The attribute's name.
    fn attr(self) -> &'static str {
        match self {
            Kind::Map => "map_function",
            Kind::FlatMap => "flat_map_function",
            Kind::Filter => "filter_function",
            Kind::Reduce => "reduce_function",
            Kind::Process => "process_function",
            Kind::CoProcess => "co_process_function",
        }
    }
    /// The method an impl block defines (the first of two for a co-process function).
    fn method(self) -> &'static str {
        match self {
            Kind::Map => "map",
            Kind::FlatMap => "flat_map",
            Kind::Filter => "filter",
            Kind::Reduce => "reduce",
            Kind::Process => "process",
            Kind::CoProcess => "process1",
        }
    }
}

/// A user function, read from a fn or an impl block.
pub struct Function {
    pub kind: Kind,
    pub form: Form,
    /// The input row types: one; a reduce function's accumulator and row (one type); a
    /// co-process function's two inputs.
    pub rows: Vec<Type>,
    /// The output row type (a filter's is `bool`).
    pub out: Type,
    /// A process function's key type, from its `ProcessContext<'_, K>` (`None`: not keyed).
    pub key: Option<Type>,
    /// Which optional methods an impl block defines.
    pub hooks: Hooks,
}

/// A fn, or an impl block.
pub enum Form {
    Fn {
        item: ItemFn,
        /// The parameters in order, for the call.
        params: Vec<Param>,
    },
    Impl {
        item: ItemImpl,
        /// The main method's name: generated code is spanned there.
        span: Span,
    },
}

/// A parameter of a fn function.
pub enum Param {
    Row,
    State { name: Ident, ty: Box<Type> },
    Out,
}

/// The optional methods of an impl block.
#[derive(Default)]
pub struct Hooks {
    pub open: bool,
    pub close: bool,
    pub on_timer: bool,
}

/// `#[<kind>]` on `item`.
pub fn expand(kind: Kind, attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut diag = Diagnostics::new();
    if !attr.is_empty() {
        diag.error_spanned(
            &attr,
            format_args!("`#[{}]` takes no arguments", kind.attr()),
        );
    }
    let item = match syn::parse2::<syn::Item>(item) {
        Ok(item) => item,
        Err(e) => {
            diag.push(e);
            return errors(diag);
        }
    };
    match parse::function(kind, item, &mut diag) {
        Some(f) if !diag.has_errors() => {
            let _ = diag.finish();
            expand::function(&f)
        }
        Some(f) => fallback(&f, diag),
        None => errors(diag),
    }
}

/// The errors only.
fn errors(diag: Diagnostics) -> TokenStream {
    diag.finish()
        .err()
        .map(syn::Error::into_compile_error)
        .unwrap_or_default()
}

/// On error: the errors, and the user's item as it would exist had it been right, so that its
/// uses still resolve and type-check (as thiserror's fallback): an impl block as written; a fn
/// as the `call` of a unit struct of its name that implements the function traits for any row
/// (their bodies are never compiled into a program: the errors stop the build).
fn fallback(f: &Function, diag: Diagnostics) -> TokenStream {
    let errors = errors(diag);
    let item = match &f.form {
        Form::Fn { item, .. } => {
            let (name, vis) = (&item.sig.ident, &item.vis);
            let mut call = item.clone();
            call.sig.ident = syn::Ident::new("call", name.span());
            let impls = expand::fallback_impls(f, name);
            quote! {
                #[allow(non_camel_case_types, dead_code)]
                #[derive(Clone, Copy, Debug, Default)]
                #vis struct #name;
                #[allow(dead_code)]
                impl #name {
                    #call
                }
                #impls
            }
        }
        Form::Impl { item, .. } => quote!(#item),
    };
    quote!(#errors #item)
}

/// `#[timestamp_assigner]`: checks `fn f(row: &T) -> i64` and leaves it as it is.
pub fn expand_timestamp_assigner(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut diag = Diagnostics::new();
    if !attr.is_empty() {
        diag.error_spanned(&attr, "`#[timestamp_assigner]` takes no arguments");
    }
    match syn::parse2::<ItemFn>(item.clone()) {
        Ok(f) => parse::timestamp_assigner(&f, &mut diag),
        Err(e) => diag.push(e),
    }
    // The fn is left as written either way: a plain fn of that shape is an assigner too.
    let errors = errors(diag);
    quote!(#errors #item)
}

/// `impl StateFields` for the per-key struct `name` of the `#[state]` fields `fields`: the
/// fields whose type is a `Ttl<..>` expire before each call (named by their type's last
/// segment, as written; the check that the state kind can expire points at that type).
fn state_fields_impl<'a>(
    name: &Ident,
    fields: impl Iterator<Item = (&'a Ident, &'a Type)>,
) -> TokenStream {
    fn is_ttl(ty: &Type) -> bool {
        match ty {
            Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Ttl"),
            Type::Paren(p) => is_ttl(&p.elem),
            _ => false,
        }
    }
    let expiring: Vec<TokenStream> = fields
        .filter(|(_, ty)| is_ttl(ty))
        .map(|(n, ty)| {
            quote::quote_spanned!(syn::spanned::Spanned::span(ty)=> ::flow::__private::expire_ttl(&mut self.#n, __now);)
        })
        .collect();
    let ttl = !expiring.is_empty();
    quote! {
        impl ::flow::__private::StateFields for #name {
            const TTL: bool = #ttl;
            #[inline]
            fn expire(&mut self, __now: ::flow::Timestamp) {
                let _ = __now;
                #(#expiring)*
            }
        }
    }
}
