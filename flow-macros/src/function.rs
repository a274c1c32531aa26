//! `#[map_function]`, `#[flat_map_function]`, `#[filter_function]`, `#[reduce_function]`:
//! turn a plain fn, or an impl block with `open`/`close`, into an operator function.
//!
//! On a fn, the `#[state]` parameters become the fields of one generated per-key struct, so
//! the operator does one key lookup per row for all of them. A fn without `#[state]` works on
//! any stream; with `#[state]` only on a keyed one (the stateless trait is not implemented, and
//! its diagnostic says to add `key_by`).

use crate::diagnostic::Diagnostics;
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, Item, ItemFn, ItemImpl, Pat, ReturnType, Type};

/// Which attribute, and the shape of its function.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Map,
    FlatMap,
    Filter,
    Reduce,
}

impl Kind {
    fn attr(self) -> &'static str {
        match self {
            Kind::Map => "map_function",
            Kind::FlatMap => "flat_map_function",
            Kind::Filter => "filter_function",
            Kind::Reduce => "reduce_function",
        }
    }
    fn method(self) -> &'static str {
        match self {
            Kind::Map => "map",
            Kind::FlatMap => "flat_map",
            Kind::Filter => "filter",
            Kind::Reduce => "reduce",
        }
    }
}

pub fn expand(kind: Kind, attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(
            attr,
            format!("`#[{}]` takes no arguments", kind.attr()),
        ));
    }
    match syn::parse2::<Item>(item)? {
        Item::Fn(f) => expand_fn(kind, f),
        Item::Impl(i) => expand_impl(kind, i),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`#[{}]` goes on a fn or on an impl block", kind.attr()),
        )),
    }
}

/// A parameter of the user's fn, classified.
enum Param {
    Row { ty: Type },
    State { name: syn::Ident, ty: Type },
    Out { elem: Type },
}

fn is_state_attr(a: &syn::Attribute) -> bool {
    a.path().is_ident("state")
}

/// `U` of a `&mut Vec<U>` type.
fn vec_elem(ty: &Type) -> Option<Type> {
    let Type::Reference(r) = ty else { return None };
    r.mutability?;
    vec_elem_of(&r.elem)
}

/// `X` of a `Vec<X>` type.
fn vec_elem_of(ty: &Type) -> Option<Type> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    if seg.ident != "Vec" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &seg.arguments else {
        return None;
    };
    match args.args.first()? {
        syn::GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    }
}

/// Tokens as a user would write them (`Vec<String>`, not `Vec < String >`), for messages.
fn tidy(tokens: &impl quote::ToTokens) -> String {
    let mut s = quote!(#tokens).to_string();
    for (from, to) in [
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        (" ,", ","),
        ("& ", "&"),
        (" :: ", "::"),
        (" : ", ": "),
        ("( ", "("),
        (" )", ")"),
    ] {
        s = s.replace(from, to);
    }
    s
}

fn expand_fn(kind: Kind, mut f: ItemFn) -> syn::Result<TokenStream> {
    let mut diag = Diagnostics::new();
    if !f.sig.generics.params.is_empty() {
        diag.error_spanned(
            &f.sig.generics,
            "operator functions cannot be generic: rows have concrete types",
        );
    }
    if let Some(a) = &f.sig.asyncness {
        diag.error_spanned(a, "operator functions cannot be async");
    }
    let mut params = Vec::new();
    for arg in f.sig.inputs.iter_mut() {
        let FnArg::Typed(pt) = arg else {
            diag.error_spanned(
                &*arg,
                "a fn operator takes no `self`: use an impl block for functions with fields",
            );
            continue;
        };
        let is_state = pt.attrs.iter().any(is_state_attr);
        pt.attrs.retain(|a| !is_state_attr(a));
        if is_state {
            if kind == Kind::Reduce {
                diag.error_spanned(
                    &*pt,
                    "a reduce function keeps its accumulator itself: it takes no `#[state]`",
                );
                continue;
            }
            let Pat::Ident(pi) = &*pt.pat else {
                diag.error_spanned(&pt.pat, "a `#[state]` parameter needs a plain name");
                continue;
            };
            match &*pt.ty {
                Type::Reference(r) if r.mutability.is_some() => params.push(Param::State {
                    name: pi.ident.clone(),
                    ty: (*r.elem).clone(),
                }),
                other => diag.error_spanned(
                    other,
                    "a `#[state]` parameter is a mutable reference: `&mut ValueState<T>`",
                ),
            }
        } else if kind == Kind::FlatMap && params.iter().any(|p| matches!(p, Param::Row { .. })) {
            match vec_elem(&pt.ty) {
                Some(elem) => params.push(Param::Out { elem }),
                None => diag.error_spanned(
                    &pt.ty,
                    "a flat-map function's output parameter is `out: &mut Vec<Row>`",
                ),
            }
        } else {
            let ty = match (kind, &*pt.ty) {
                (Kind::Filter, Type::Reference(r)) if r.mutability.is_none() => (*r.elem).clone(),
                (Kind::Filter, other) => {
                    diag.error_spanned(
                        other,
                        "a filter function takes its row by reference: `row: &T`",
                    );
                    continue;
                }
                (_, t) => t.clone(),
            };
            params.push(Param::Row { ty });
        }
    }
    let rows: Vec<&Type> = params
        .iter()
        .filter_map(|p| match p {
            Param::Row { ty } => Some(ty),
            _ => None,
        })
        .collect();
    let expected_rows = if kind == Kind::Reduce { 2 } else { 1 };
    if rows.len() != expected_rows && !diag.has_errors() {
        diag.error_spanned(&f.sig, match kind {
            Kind::Reduce => "a reduce function takes two rows of the same type: `fn sum(acc: T, row: T) -> T`",
            Kind::Map => "a map function takes one row (and `#[state]` parameters): `fn f(row: T) -> U`",
            Kind::Filter => "a filter function takes one row by reference: `fn f(row: &T) -> bool`",
            Kind::FlatMap => "a flat-map function takes one row and `out: &mut Vec<U>`: `fn f(row: T, out: &mut Vec<U>)`",
        });
    }
    let out_elem = params.iter().find_map(|p| match p {
        Param::Out { elem } => Some(elem.clone()),
        _ => None,
    });
    if kind == Kind::FlatMap && out_elem.is_none() && !diag.has_errors() {
        match &f.sig.output {
            // Returning the rows is the natural first try: show the signature that works.
            ReturnType::Type(_, ret) => {
                let elem = vec_elem_of(ret).map_or_else(|| "U".to_string(), |t| tidy(&t));
                let params: Vec<String> = f.sig.inputs.iter().map(tidy).collect();
                diag.error_spanned(
                    ret,
                    format!(
                        "a flat-map function pushes its rows into `out` instead of returning them: `fn {}({}, out: &mut Vec<{elem}>)`",
                        f.sig.ident,
                        params.join(", ")
                    ),
                );
            }
            ReturnType::Default => diag.error_spanned(
                &f.sig.ident,
                "a flat-map function pushes its rows into an `out: &mut Vec<U>` parameter: add it after the row",
            ),
        }
    }
    let ret = match &f.sig.output {
        ReturnType::Type(_, t) => Some((**t).clone()),
        ReturnType::Default => None,
    };
    if matches!(kind, Kind::Map | Kind::Filter | Kind::Reduce)
        && ret.is_none()
        && !diag.has_errors()
    {
        diag.error_spanned(
            &f.sig.ident,
            format!(
                "a {} function returns {}: add `-> ...`",
                kind.method(),
                match kind {
                    Kind::Filter => "whether to keep the row",
                    _ => "its output row",
                }
            ),
        );
    }
    diag.finish()?;

    let name = f.sig.ident.clone();
    let vis = f.vis.clone();
    let docs: Vec<_> = f
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .cloned()
        .collect();
    f.attrs.retain(|a| !a.path().is_ident("doc"));
    let in_ty = rows[0].clone();
    let states: Vec<(&syn::Ident, &Type)> = params
        .iter()
        .filter_map(|p| match p {
            Param::State { name, ty } => Some((name, ty)),
            _ => None,
        })
        .collect();
    let keyed = !states.is_empty();
    let state_struct = format_ident!("{}__State", name);
    let state_ty = if keyed {
        quote!(#state_struct)
    } else {
        quote!(())
    };
    let call_args: Vec<TokenStream> = {
        let mut row_i = 0usize;
        params
            .iter()
            .map(|p| match p {
                Param::Row { .. } => {
                    row_i += 1;
                    let r = format_ident!("__row{}", row_i);
                    quote!(#r)
                }
                Param::State { name, .. } => quote!(&mut __state.#name),
                Param::Out { .. } => quote!(__out),
            })
            .collect()
    };
    f.sig.ident = format_ident!("call");
    f.vis = syn::parse_quote!(pub);
    let fn_span = name.span();

    let state_def = if keyed {
        let fields = states.iter().map(|(n, t)| quote!(#n: #t));
        quote! {
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            #[derive(Default)]
            #vis struct #state_struct { #(#fields),* }
        }
    } else {
        quote!()
    };
    let ret_ty = ret.clone().map(|r| quote!(#r)).unwrap_or(quote!(()));
    let (keyed_impl, plain_impl) = match kind {
        Kind::Map => (
            quote_spanned! {fn_span=>
                impl ::flow::KeyedMapFunction<#in_ty> for #name {
                    type Out = #ret_ty;
                    type State = #state_ty;
                    #[inline(always)]
                    fn map(&mut self, __row1: #in_ty, __state: &mut #state_ty) -> #ret_ty {
                        let _ = &__state;
                        #name::call(#(#call_args),*)
                    }
                }
            },
            quote_spanned! {fn_span=>
                impl ::flow::MapFunction<#in_ty> for #name {
                    type Out = #ret_ty;
                    #[inline(always)]
                    fn map(&mut self, __row1: #in_ty) -> #ret_ty {
                        #name::call(#(#call_args),*)
                    }
                }
            },
        ),
        Kind::Filter => (
            quote_spanned! {fn_span=>
                impl ::flow::KeyedFilterFunction<#in_ty> for #name {
                    type State = #state_ty;
                    #[inline(always)]
                    fn filter(&mut self, __row1: &#in_ty, __state: &mut #state_ty) -> bool {
                        let _ = &__state;
                        #name::call(#(#call_args),*)
                    }
                }
            },
            quote_spanned! {fn_span=>
                impl ::flow::FilterFunction<#in_ty> for #name {
                    type Out = bool;
                    #[inline(always)]
                    fn filter(&mut self, __row1: &#in_ty) -> bool {
                        #name::call(#(#call_args),*)
                    }
                }
            },
        ),
        Kind::FlatMap => {
            let out = out_elem.expect("checked");
            (
                quote_spanned! {fn_span=>
                    impl ::flow::KeyedFlatMapFunction<#in_ty> for #name {
                        type Out = #out;
                        type State = #state_ty;
                        #[inline(always)]
                        fn flat_map(&mut self, __row1: #in_ty, __state: &mut #state_ty, __out: &mut ::std::vec::Vec<#out>) {
                            let _ = &__state;
                            #name::call(#(#call_args),*)
                        }
                    }
                },
                quote_spanned! {fn_span=>
                    impl ::flow::FlatMapFunction<#in_ty> for #name {
                        type Out = #out;
                        #[inline(always)]
                        fn flat_map(&mut self, __row1: #in_ty, __out: &mut ::std::vec::Vec<#out>) {
                            #name::call(#(#call_args),*)
                        }
                    }
                },
            )
        }
        Kind::Reduce => (
            quote!(),
            quote_spanned! {fn_span=>
                impl ::flow::ReduceFunction<#in_ty> for #name {
                    type Out = #in_ty;
                    #[inline(always)]
                    fn reduce(&mut self, __row1: #in_ty, __row2: #in_ty) -> #in_ty {
                        #name::call(__row1, __row2)
                    }
                }
            },
        ),
    };
    let plain_impl = if keyed { quote!() } else { plain_impl };
    Ok(quote! {
        #(#docs)*
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, Default)]
        #vis struct #name;

        impl #name {
            /// The function as written.
            #[inline(always)]
            #f
        }

        #state_def
        #keyed_impl
        #plain_impl
    })
}

fn expand_impl(kind: Kind, imp: ItemImpl) -> syn::Result<TokenStream> {
    if let Some((_, path, _)) = &imp.trait_ {
        return Err(syn::Error::new_spanned(path, format!("`#[{}]` goes on an inherent impl block (`impl MyFunction {{ .. }}`), not a trait impl", kind.attr())));
    }
    if !imp.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &imp.generics,
            "operator functions cannot be generic: rows have concrete types",
        ));
    }
    let self_ty = &imp.self_ty;
    let method = kind.method();
    let mut main = None;
    let (mut has_open, mut has_close) = (false, false);
    for item in &imp.items {
        if let ImplItem::Fn(m) = item {
            let n = m.sig.ident.to_string();
            if n == method {
                main = Some(m.sig.clone());
            } else if n == "open" {
                has_open = true;
            } else if n == "close" {
                has_close = true;
            }
        }
    }
    let Some(sig) = main else {
        return Err(syn::Error::new(
            imp.self_ty.span(),
            format!(
                "`#[{}]` needs a `fn {method}(&mut self, ..)` in this impl block",
                kind.attr()
            ),
        ));
    };
    let typed: Vec<&syn::PatType> = sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            FnArg::Typed(t) => Some(t),
            _ => None,
        })
        .collect();
    let bad = || {
        syn::Error::new_spanned(
            &sig,
            match kind {
                Kind::Map => "expected `fn map(&mut self, row: T) -> U`",
                Kind::Filter => "expected `fn filter(&mut self, row: &T) -> bool`",
                Kind::FlatMap => "expected `fn flat_map(&mut self, row: T, out: &mut Vec<U>)`",
                Kind::Reduce => "expected `fn reduce(&mut self, acc: T, row: T) -> T`",
            },
        )
    };
    if !matches!(sig.inputs.first(), Some(FnArg::Receiver(r)) if r.mutability.is_some() && r.reference.is_some())
    {
        return Err(bad());
    }
    let ret = match &sig.output {
        ReturnType::Type(_, t) => quote!(#t),
        ReturnType::Default => quote!(()),
    };
    let open = if has_open {
        quote!(fn open(&mut self, ctx: &::flow::RuntimeContext) { #self_ty::open(self, ctx) })
    } else {
        quote!()
    };
    let close = if has_close {
        quote!(fn close(&mut self) { #self_ty::close(self) })
    } else {
        quote!()
    };
    let span = sig.ident.span();
    let swap = quote!(::flow::FunctionState::swap_state(self, __state););
    let generated = match kind {
        Kind::Map => {
            let [row] = typed[..] else { return Err(bad()) };
            let in_ty = &row.ty;
            quote_spanned! {span=>
                impl ::flow::KeyedMapFunction<#in_ty> for #self_ty {
                    type Out = #ret;
                    type State = <#self_ty as ::flow::FunctionState>::State;
                    #open #close
                    #[inline(always)]
                    fn map(&mut self, row: #in_ty, __state: &mut Self::State) -> #ret {
                        #swap
                        let __out = #self_ty::map(self, row);
                        #swap
                        __out
                    }
                }
                #[diagnostic::do_not_recommend]
                impl<__T: ::flow::__private::Same<#in_ty>> ::flow::MapFunction<__T> for #self_ty
                where (#self_ty, __T): ::flow::__private::Stateless
                {
                    type Out = #ret;
                    #open #close
                    #[inline(always)]
                    fn map(&mut self, row: __T) -> #ret {
                        #self_ty::map(self, ::flow::__private::Same::same(row))
                    }
                }
            }
        }
        Kind::Filter => {
            let [row] = typed[..] else { return Err(bad()) };
            let Type::Reference(r) = &*row.ty else {
                return Err(bad());
            };
            let in_ty = &r.elem;
            quote_spanned! {span=>
                impl ::flow::KeyedFilterFunction<#in_ty> for #self_ty {
                    type State = <#self_ty as ::flow::FunctionState>::State;
                    #open #close
                    #[inline(always)]
                    fn filter(&mut self, row: &#in_ty, __state: &mut Self::State) -> bool {
                        #swap
                        let __keep = #self_ty::filter(self, row);
                        #swap
                        __keep
                    }
                }
                #[diagnostic::do_not_recommend]
                impl<__T: ::flow::__private::Same<#in_ty>> ::flow::FilterFunction<__T> for #self_ty
                where (#self_ty, __T): ::flow::__private::Stateless
                {
                    type Out = bool;
                    #open #close
                    #[inline(always)]
                    fn filter(&mut self, row: &__T) -> bool {
                        #self_ty::filter(self, ::flow::__private::Same::same_ref(row))
                    }
                }
            }
        }
        Kind::FlatMap => {
            let [row, out] = typed[..] else {
                return Err(bad());
            };
            let in_ty = &row.ty;
            let Some(out_ty) = vec_elem(&out.ty) else {
                return Err(bad());
            };
            quote_spanned! {span=>
                impl ::flow::KeyedFlatMapFunction<#in_ty> for #self_ty {
                    type Out = #out_ty;
                    type State = <#self_ty as ::flow::FunctionState>::State;
                    #open #close
                    #[inline(always)]
                    fn flat_map(&mut self, row: #in_ty, __state: &mut Self::State, out: &mut ::std::vec::Vec<#out_ty>) {
                        #swap
                        #self_ty::flat_map(self, row, out);
                        #swap
                    }
                }
                #[diagnostic::do_not_recommend]
                impl<__T: ::flow::__private::Same<#in_ty>> ::flow::FlatMapFunction<__T> for #self_ty
                where (#self_ty, __T): ::flow::__private::Stateless
                {
                    type Out = #out_ty;
                    #open #close
                    #[inline(always)]
                    fn flat_map(&mut self, row: __T, out: &mut ::std::vec::Vec<#out_ty>) {
                        #self_ty::flat_map(self, ::flow::__private::Same::same(row), out)
                    }
                }
            }
        }
        Kind::Reduce => {
            let [a, _b] = typed[..] else {
                return Err(bad());
            };
            let in_ty = &a.ty;
            quote_spanned! {span=>
                impl ::flow::ReduceFunction<#in_ty> for #self_ty {
                    type Out = #in_ty;
                    #open #close
                    #[inline(always)]
                    fn reduce(&mut self, acc: #in_ty, row: #in_ty) -> #in_ty {
                        #self_ty::reduce(self, acc, row)
                    }
                }
            }
        }
    };
    // One span for every generated token: an error about the struct (no `KeyedState`, a row
    // type that cannot be sent) is then reported once, on the method's name.
    let generated = crate::codegen::respan(generated, span);
    Ok(quote! {
        #imp
        #generated
    })
}

/// `#[derive(KeyedState)]`: the per-key struct of an impl-block function's `#[state]` fields.
pub fn derive_keyed_state(input: syn::DeriveInput) -> syn::Result<TokenStream> {
    let syn::Data::Struct(data) = &input.data else {
        return Err(syn::Error::new(
            Span::call_site(),
            "`KeyedState` is derived for structs",
        ));
    };
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "operator functions cannot be generic",
        ));
    }
    let name = &input.ident;
    let vis = &input.vis;
    let fields: Vec<&syn::Field> = data
        .fields
        .iter()
        .filter(|f| f.attrs.iter().any(is_state_attr))
        .collect();
    for f in &fields {
        if f.ident.is_none() {
            return Err(syn::Error::new_spanned(f, "`#[state]` fields need names"));
        }
    }
    if fields.is_empty() {
        return Ok(quote! {
            impl ::flow::FunctionState for #name {
                type State = ();
                type Kind = ::flow::__private::NoState;
                #[inline(always)]
                fn swap_state(&mut self, _: &mut ()) {}
            }
        });
    }
    let state = format_ident!("{}__State", name);
    let decls = fields.iter().map(|f| {
        let (n, t) = (&f.ident, &f.ty);
        quote!(#n: #t)
    });
    let swaps = fields.iter().map(|f| {
        let n = &f.ident;
        quote!(::core::mem::swap(&mut self.#n, &mut state.#n);)
    });
    Ok(quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #[derive(Default)]
        #vis struct #state { #(#decls),* }

        impl ::flow::FunctionState for #name {
            type State = #state;
            type Kind = ::flow::__private::HasState;
            #[inline(always)]
            fn swap_state(&mut self, state: &mut #state) {
                #(#swaps)*
            }
        }
    })
}

/// `#[process_function]` on an impl block with `fn process(&mut self, row: T, ctx: &mut
/// ProcessContext<'_, K>, out: &mut Vec<U>)`, an optional `fn on_timer(&mut self, timestamp:
/// i64, ctx: &mut ProcessContext<'_, K>, out: &mut Vec<U>)`, `open` and `close`; its struct
/// derives `KeyedState` (its `#[state]` fields are per key, as in `#[map_function]`).
pub fn expand_process(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(
            attr,
            "`#[process_function]` takes no arguments",
        ));
    }
    let imp = match syn::parse2::<Item>(item)? {
        Item::Impl(i) if i.trait_.is_none() && i.generics.params.is_empty() => i,
        other => {
            return Err(syn::Error::new_spanned(
                other,
                "`#[process_function]` goes on an inherent impl block with `fn process(&mut self, row, ctx, out)`",
            ))
        }
    };
    let self_ty = &imp.self_ty;
    let mut process = None;
    let (mut has_open, mut has_close, mut has_timer) = (false, false, false);
    for item in &imp.items {
        if let ImplItem::Fn(m) = item {
            match m.sig.ident.to_string().as_str() {
                "process" => process = Some(m.sig.clone()),
                "on_timer" => has_timer = true,
                "open" => has_open = true,
                "close" => has_close = true,
                _ => {}
            }
        }
    }
    let expected = "expected `fn process(&mut self, row: T, ctx: &mut ProcessContext<'_, K>, out: &mut Vec<U>)`";
    let Some(sig) = process else {
        return Err(syn::Error::new(
            imp.self_ty.span(),
            format!("`#[process_function]` needs a `process` method: {expected}"),
        ));
    };
    let typed: Vec<&syn::PatType> = sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            FnArg::Typed(t) => Some(t),
            _ => None,
        })
        .collect();
    let [row, ctx, out] = typed[..] else {
        return Err(syn::Error::new_spanned(&sig, expected));
    };
    let in_ty = &row.ty;
    let out_ty = vec_elem(&out.ty)
        .ok_or_else(|| syn::Error::new_spanned(&out.ty, "the output is `out: &mut Vec<Row>`"))?;
    // K from `&mut ProcessContext<'_, K>`; `ProcessContext<'_>`: a stream that is not keyed.
    if !context_has_key(&ctx.ty) {
        return Ok(expand_unkeyed_process(
            &imp, &sig, in_ty, &out_ty, has_open, has_close,
        ));
    }
    let key_ty = context_key(&ctx.ty, "stream's")?;
    let open = if has_open {
        quote!(fn open(&mut self, ctx: &::flow::RuntimeContext) { #self_ty::open(self, ctx) })
    } else {
        quote!()
    };
    let close = if has_close {
        quote!(fn close(&mut self) { #self_ty::close(self) })
    } else {
        quote!()
    };
    let swap = quote!(::flow::FunctionState::swap_state(self, state););
    let on_timer = if has_timer {
        quote! {
            fn on_timer(
                &mut self,
                timestamp: i64,
                state: &mut Self::State,
                ctx: &mut ::flow::ProcessContext<'_, #key_ty>,
                out: &mut ::std::vec::Vec<#out_ty>,
            ) {
                #swap
                #self_ty::on_timer(self, timestamp, ctx, out);
                #swap
            }
        }
    } else {
        quote!()
    };
    let span = sig.ident.span();
    let marker = without_event_timers_marker(&imp);
    Ok(quote_spanned! {span=>
        #imp
        #marker
        impl ::flow::KeyedProcessFunction<#key_ty, #in_ty> for #self_ty {
            type Out = #out_ty;
            type State = <#self_ty as ::flow::FunctionState>::State;
            #open
            #close
            fn process_element(
                &mut self,
                row: #in_ty,
                state: &mut Self::State,
                ctx: &mut ::flow::ProcessContext<'_, #key_ty>,
                out: &mut ::std::vec::Vec<#out_ty>,
            ) {
                #swap
                #self_ty::process(self, row, ctx, out);
                #swap
            }
            #on_timer
        }
    })
}

/// Whether a `&mut ProcessContext<..>` type names a key type.
fn context_has_key(ty: &Type) -> bool {
    let Type::Reference(r) = ty else { return true };
    let Type::Path(p) = &*r.elem else { return true };
    match p.path.segments.last().map(|s| &s.arguments) {
        Some(syn::PathArguments::AngleBracketed(args)) => args
            .args
            .iter()
            .any(|a| matches!(a, syn::GenericArgument::Type(_))),
        _ => false,
    }
}

/// `#[process_function]` whose context is `ProcessContext<'_>`: a process function on a stream
/// that is not keyed. Its struct must keep no `#[state]` (checked where it is used, as for the
/// other impl-block functions).
fn expand_unkeyed_process(
    imp: &ItemImpl,
    sig: &syn::Signature,
    in_ty: &Type,
    out_ty: &Type,
    has_open: bool,
    has_close: bool,
) -> TokenStream {
    let self_ty = &imp.self_ty;
    let open = if has_open {
        quote!(fn open(&mut self, ctx: &::flow::RuntimeContext) { #self_ty::open(self, ctx) })
    } else {
        quote!()
    };
    let close = if has_close {
        quote!(fn close(&mut self) { #self_ty::close(self) })
    } else {
        quote!()
    };
    let span = sig.ident.span();
    quote_spanned! {span=>
        #imp
        #[diagnostic::do_not_recommend]
        impl<__T: ::flow::__private::Same<#in_ty>> ::flow::ProcessFunction<__T> for #self_ty
        where
            (#self_ty, __T): ::flow::__private::Stateless,
        {
            type Out = #out_ty;
            #open
            #close
            fn process_element(
                &mut self,
                row: __T,
                ctx: &mut ::flow::ProcessContext<'_>,
                out: &mut ::std::vec::Vec<#out_ty>,
            ) {
                #self_ty::process(self, ::flow::__private::Same::same(row), ctx, out)
            }
        }
    }
}

/// `#[timestamp_assigner]`: checks `fn f(row: &T) -> i64` and leaves it as it is.
pub fn expand_timestamp_assigner(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(
            attr,
            "`#[timestamp_assigner]` takes no arguments",
        ));
    }
    let f: ItemFn = syn::parse2(item)?;
    let expected = "a timestamp assigner is `fn f(row: &Row) -> i64` (milliseconds)";
    let [FnArg::Typed(row)] = f.sig.inputs.iter().collect::<Vec<_>>()[..] else {
        return Err(syn::Error::new_spanned(&f.sig, expected));
    };
    if !matches!(&*row.ty, Type::Reference(r) if r.mutability.is_none()) {
        return Err(syn::Error::new_spanned(
            &row.ty,
            format!("{expected}: take the row by reference"),
        ));
    }
    match &f.sig.output {
        ReturnType::Type(_, t) if quote!(#t).to_string() == "i64" => {}
        other => {
            return Err(syn::Error::new_spanned(
                other,
                format!("{expected}: return `i64`"),
            ))
        }
    }
    if !f.sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &f.sig.generics,
            "timestamp assigners cannot be generic",
        ));
    }
    Ok(quote!(#f))
}

/// `#[co_process_function]` on an impl block with `fn process1(&mut self, row: A, ctx: &mut
/// ProcessContext<'_, K>, out: &mut Vec<U>)`, `fn process2(&mut self, row: B, ctx, out)`, an
/// optional `on_timer`, `open` and `close`; its struct derives `KeyedState` (state shared by
/// both inputs of one key).
pub fn expand_co_process(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(
            attr,
            "`#[co_process_function]` takes no arguments",
        ));
    }
    let imp = match syn::parse2::<Item>(item)? {
        Item::Impl(i) if i.trait_.is_none() && i.generics.params.is_empty() => i,
        other => {
            return Err(syn::Error::new_spanned(
                other,
                "`#[co_process_function]` goes on an inherent impl block with `process1` and `process2`",
            ))
        }
    };
    let self_ty = &imp.self_ty;
    let method = |name: &str| {
        imp.items.iter().find_map(|i| match i {
            ImplItem::Fn(m) if m.sig.ident == name => Some(m.sig.clone()),
            _ => None,
        })
    };
    let expected = "expected `fn process1(&mut self, row: A, ctx: &mut ProcessContext<'_, K>, out: &mut Vec<U>)` and `fn process2(&mut self, row: B, ctx, out)`";
    let (Some(p1), Some(p2)) = (method("process1"), method("process2")) else {
        return Err(syn::Error::new(
            imp.self_ty.span(),
            format!("`#[co_process_function]` needs both methods: {expected}"),
        ));
    };
    let typed = |sig: &syn::Signature| -> Vec<syn::PatType> {
        sig.inputs
            .iter()
            .filter_map(|a| match a {
                FnArg::Typed(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    };
    let (t1, t2) = (typed(&p1), typed(&p2));
    let ([a, ctx, out], [b, _, _]) = (&t1[..], &t2[..]) else {
        return Err(syn::Error::new_spanned(&p1, expected));
    };
    let (a_ty, b_ty) = (&a.ty, &b.ty);
    let key_ty = context_key(&ctx.ty, "streams'")?;
    let out_ty = vec_elem(&out.ty)
        .ok_or_else(|| syn::Error::new_spanned(&out.ty, "the output is `out: &mut Vec<Row>`"))?;
    let open = if method("open").is_some() {
        quote!(fn open(&mut self, ctx: &::flow::RuntimeContext) { #self_ty::open(self, ctx) })
    } else {
        quote!()
    };
    let close = if method("close").is_some() {
        quote!(fn close(&mut self) { #self_ty::close(self) })
    } else {
        quote!()
    };
    let swap = quote!(::flow::FunctionState::swap_state(self, state););
    let on_timer = if method("on_timer").is_some() {
        quote! {
            fn on_timer(&mut self, timestamp: i64, state: &mut Self::State, ctx: &mut ::flow::ProcessContext<'_, #key_ty>, out: &mut ::std::vec::Vec<#out_ty>) {
                #swap
                #self_ty::on_timer(self, timestamp, ctx, out);
                #swap
            }
        }
    } else {
        quote!()
    };
    let span = p1.ident.span();
    let marker = without_event_timers_marker(&imp);
    Ok(quote_spanned! {span=>
        #imp
        #marker
        impl ::flow::KeyedCoProcessFunction<#key_ty, #a_ty, #b_ty> for #self_ty {
            type Out = #out_ty;
            type State = <#self_ty as ::flow::FunctionState>::State;
            #open
            #close
            fn process_element1(&mut self, row: #a_ty, state: &mut Self::State, ctx: &mut ::flow::ProcessContext<'_, #key_ty>, out: &mut ::std::vec::Vec<#out_ty>) {
                #swap
                #self_ty::process1(self, row, ctx, out);
                #swap
            }
            fn process_element2(&mut self, row: #b_ty, state: &mut Self::State, ctx: &mut ::flow::ProcessContext<'_, #key_ty>, out: &mut ::std::vec::Vec<#out_ty>) {
                #swap
                #self_ty::process2(self, row, ctx, out);
                #swap
            }
            #on_timer
        }
    })
}

/// `impl WithoutEventTimers` unless the impl block's code mentions
/// `register_event_time_timer` (so `flow!` can reject it on a stream without watermarks).
fn without_event_timers_marker(imp: &ItemImpl) -> TokenStream {
    if quote!(#imp)
        .to_string()
        .contains("register_event_time_timer")
    {
        return quote!();
    }
    let self_ty = &imp.self_ty;
    quote!(impl ::flow::__private::WithoutEventTimers for #self_ty {})
}

/// The key type `K` of a process function's `&mut ProcessContext<'_, K>` parameter; `streams`
/// names whose key it is in the error.
fn context_key(ty: &Type, streams: &str) -> syn::Result<Type> {
    let key = (|| {
        let Type::Reference(r) = ty else {
            return None;
        };
        let Type::Path(p) = &*r.elem else { return None };
        let syn::PathArguments::AngleBracketed(args) = &p.path.segments.last()?.arguments else {
            return None;
        };
        args.args.iter().rev().find_map(|a| match a {
            syn::GenericArgument::Type(t) => Some(t.clone()),
            _ => None,
        })
    })();
    key.ok_or_else(|| {
        syn::Error::new_spanned(
            ty,
            format!("the context is `&mut ProcessContext<'_, Key>`, with the {streams} key type"),
        )
    })
}
