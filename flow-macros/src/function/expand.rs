//! [`Function`] -> the trait impls the operators call: the keyed trait (with the function's
//! per-key state) and, for a function without keyed state, the stateless one.

use super::{Form, Function, Kind, Param};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::{ItemFn, ItemImpl, Type};

pub fn function(f: &Function) -> TokenStream {
    match &f.form {
        Form::Fn { item, params } => fn_function(f, item, params),
        Form::Impl { item, span } => impl_function(f, item, *span),
    }
}

/// A fn becomes a unit struct of its name, with the fn as its `call`, the per-key struct of its
/// `#[state]` parameters, and the trait impls.
fn fn_function(f: &Function, item: &ItemFn, params: &[Param]) -> TokenStream {
    let mut call = item.clone();
    let name = item.sig.ident.clone();
    let vis = item.vis.clone();
    let docs: Vec<_> = item
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .cloned()
        .collect();
    call.attrs.retain(|a| !a.path().is_ident("doc"));
    call.sig.ident = format_ident!("call");
    call.vis = syn::parse_quote!(pub);
    let span = name.span();
    let (in_ty, out) = (&f.rows[0], &f.out);
    let states: Vec<(&syn::Ident, &Type)> = params
        .iter()
        .filter_map(|p| match p {
            Param::State { name, ty } => Some((name, &**ty)),
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
    let state_def = if keyed {
        let fields = states.iter().map(|(n, t)| quote!(#n: #t));
        let schema = crate::schema::struct_impl(&state_struct, states.iter().map(|(_, t)| *t));
        let state_fields =
            super::state_fields_impl(&state_struct, states.iter().map(|(n, t)| (*n, *t)));
        quote! {
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            #[derive(Default, Clone, ::flow::__private::serde::Serialize, ::flow::__private::serde::Deserialize)]
            #[serde(crate = "::flow::__private::serde")]
            #vis struct #state_struct { #(#fields),* }
            #schema
            #state_fields
        }
    } else {
        quote!()
    };
    let mut rows = 0usize;
    let args: Vec<TokenStream> = params
        .iter()
        .map(|p| match p {
            Param::Row => {
                rows += 1;
                let r = format_ident!("__row{}", rows);
                quote!(#r)
            }
            Param::State { name, .. } => quote!(&mut __state.#name),
            Param::Out => quote!(__out),
        })
        .collect();
    let call_it = quote!(#name::call(#(#args),*));
    // The keyed trait always (`State = ()` without `#[state]`); the stateless one only when the
    // function keeps no keyed state, so that using it on a stream that is not keyed fails.
    let (keyed_impl, plain_impl) = match f.kind {
        Kind::Map => (
            quote_spanned! {span=>
                impl ::flow::KeyedMapFunction<#in_ty> for #name {
                    type Out = #out;
                    type State = #state_ty;
                    #[inline(always)]
                    fn map(&mut self, __row1: #in_ty, __state: &mut #state_ty) -> #out {
                        let _ = &__state;
                        #call_it
                    }
                }
            },
            quote_spanned! {span=>
                impl ::flow::MapFunction<#in_ty> for #name {
                    type Out = #out;
                    #[inline(always)]
                    fn map(&mut self, __row1: #in_ty) -> #out {
                        #call_it
                    }
                }
            },
        ),
        Kind::Filter => (
            quote_spanned! {span=>
                impl ::flow::KeyedFilterFunction<#in_ty> for #name {
                    type State = #state_ty;
                    #[inline(always)]
                    fn filter(&mut self, __row1: &#in_ty, __state: &mut #state_ty) -> bool {
                        let _ = &__state;
                        #call_it
                    }
                }
            },
            quote_spanned! {span=>
                impl ::flow::FilterFunction<#in_ty> for #name {
                    type Out = bool;
                    #[inline(always)]
                    fn filter(&mut self, __row1: &#in_ty) -> bool {
                        #call_it
                    }
                }
            },
        ),
        Kind::FlatMap => (
            quote_spanned! {span=>
                impl ::flow::KeyedFlatMapFunction<#in_ty> for #name {
                    type Out = #out;
                    type State = #state_ty;
                    #[inline(always)]
                    fn flat_map(&mut self, __row1: #in_ty, __state: &mut #state_ty, __out: &mut ::std::vec::Vec<#out>) {
                        let _ = &__state;
                        #call_it
                    }
                }
            },
            quote_spanned! {span=>
                impl ::flow::FlatMapFunction<#in_ty> for #name {
                    type Out = #out;
                    #[inline(always)]
                    fn flat_map(&mut self, __row1: #in_ty, __out: &mut ::std::vec::Vec<#out>) {
                        #call_it
                    }
                }
            },
        ),
        // A reduce function keeps its accumulator itself: no keyed trait.
        _ => (
            quote!(),
            quote_spanned! {span=>
                impl ::flow::ReduceFunction<#in_ty> for #name {
                    type Out = #in_ty;
                    #[inline(always)]
                    fn reduce(&mut self, __row1: #in_ty, __row2: #in_ty) -> #in_ty {
                        #call_it
                    }
                }
            },
        ),
    };
    let plain_impl = if keyed { quote!() } else { plain_impl };
    quote! {
        #(#docs)*
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, Default)]
        #vis struct #name;

        impl #name {
            /// The function as written.
            #[inline(always)]
            #call
        }

        #state_def
        #keyed_impl
        #plain_impl
    }
}

/// The function traits of a fn that did not parse, for any row type (see `super::fallback`).
pub fn fallback_impls(f: &Function, name: &syn::Ident) -> TokenStream {
    let out = &f.out;
    let never = quote!(::core::unreachable!("a function with compile errors"));
    match f.kind {
        Kind::Map => quote! {
            impl<__T> ::flow::MapFunction<__T> for #name {
                type Out = #out;
                fn map(&mut self, _: __T) -> #out { #never }
            }
            impl<__T> ::flow::KeyedMapFunction<__T> for #name {
                type Out = #out;
                type State = ();
                fn map(&mut self, _: __T, _: &mut ()) -> #out { #never }
            }
        },
        Kind::Filter => quote! {
            impl<__T> ::flow::FilterFunction<__T> for #name {
                type Out = bool;
                fn filter(&mut self, _: &__T) -> bool { #never }
            }
            impl<__T> ::flow::KeyedFilterFunction<__T> for #name {
                type State = ();
                fn filter(&mut self, _: &__T, _: &mut ()) -> bool { #never }
            }
        },
        Kind::FlatMap => quote! {
            impl<__T> ::flow::FlatMapFunction<__T> for #name {
                type Out = #out;
                fn flat_map(&mut self, _: __T, _: &mut ::std::vec::Vec<#out>) { #never }
            }
            impl<__T> ::flow::KeyedFlatMapFunction<__T> for #name {
                type Out = #out;
                type State = ();
                fn flat_map(&mut self, _: __T, _: &mut (), _: &mut ::std::vec::Vec<#out>) { #never }
            }
        },
        _ => quote! {
            impl<__T> ::flow::ReduceFunction<__T> for #name {
                type Out = __T;
                fn reduce(&mut self, _: __T, _: __T) -> __T { #never }
            }
        },
    }
}

/// An impl block stays as written; the trait impls call its methods, with the struct's
/// `#[state]` fields swapped in for the current key around each call (`FunctionState`).
fn impl_function(f: &Function, imp: &ItemImpl, span: Span) -> TokenStream {
    let self_ty = &imp.self_ty;
    let out = &f.out;
    let open = if f.hooks.open {
        quote!(fn open(&mut self, ctx: &::flow::RuntimeContext) { #self_ty::open(self, ctx) })
    } else {
        quote!()
    };
    let close = if f.hooks.close {
        quote!(fn close(&mut self) { #self_ty::close(self) })
    } else {
        quote!()
    };
    let hooks = quote!(#open #close);
    let swap = quote!(::flow::FunctionState::swap_state(self, __state););
    let generated = match f.kind {
        Kind::Map => {
            let in_ty = &f.rows[0];
            quote! {
                impl ::flow::KeyedMapFunction<#in_ty> for #self_ty {
                    type Out = #out;
                    type State = <#self_ty as ::flow::FunctionState>::State;
                    #hooks
                    #[inline(always)]
                    fn map(&mut self, row: #in_ty, __state: &mut Self::State) -> #out {
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
                    type Out = #out;
                    #hooks
                    #[inline(always)]
                    fn map(&mut self, row: __T) -> #out {
                        #self_ty::map(self, ::flow::__private::Same::same(row))
                    }
                }
            }
        }
        Kind::Filter => {
            let in_ty = &f.rows[0];
            quote! {
                impl ::flow::KeyedFilterFunction<#in_ty> for #self_ty {
                    type State = <#self_ty as ::flow::FunctionState>::State;
                    #hooks
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
                    #hooks
                    #[inline(always)]
                    fn filter(&mut self, row: &__T) -> bool {
                        #self_ty::filter(self, ::flow::__private::Same::same_ref(row))
                    }
                }
            }
        }
        Kind::FlatMap => {
            let in_ty = &f.rows[0];
            quote! {
                impl ::flow::KeyedFlatMapFunction<#in_ty> for #self_ty {
                    type Out = #out;
                    type State = <#self_ty as ::flow::FunctionState>::State;
                    #hooks
                    #[inline(always)]
                    fn flat_map(&mut self, row: #in_ty, __state: &mut Self::State, out: &mut ::std::vec::Vec<#out>) {
                        #swap
                        #self_ty::flat_map(self, row, out);
                        #swap
                    }
                }
                #[diagnostic::do_not_recommend]
                impl<__T: ::flow::__private::Same<#in_ty>> ::flow::FlatMapFunction<__T> for #self_ty
                where (#self_ty, __T): ::flow::__private::Stateless
                {
                    type Out = #out;
                    #hooks
                    #[inline(always)]
                    fn flat_map(&mut self, row: __T, out: &mut ::std::vec::Vec<#out>) {
                        #self_ty::flat_map(self, ::flow::__private::Same::same(row), out)
                    }
                }
            }
        }
        Kind::Reduce => {
            let in_ty = &f.rows[0];
            quote! {
                impl ::flow::ReduceFunction<#in_ty> for #self_ty {
                    type Out = #in_ty;
                    #hooks
                    #[inline(always)]
                    fn reduce(&mut self, acc: #in_ty, row: #in_ty) -> #in_ty {
                        #self_ty::reduce(self, acc, row)
                    }
                }
            }
        }
        Kind::Process => return process_function(f, imp, span, hooks),
        Kind::CoProcess => return co_process_function(f, imp, span, hooks),
    };
    // One span for every generated token: an error about the struct (no `KeyedState`, a row
    // type that cannot be sent) is then reported once, on the method's name.
    let generated = crate::codegen::respan(generated, span);
    quote! {
        #imp
        #generated
    }
}

/// `on_timer` of a keyed process or co-process function, if its impl block has one.
fn on_timer(f: &Function, key: &Type) -> TokenStream {
    if !f.hooks.on_timer {
        return quote!();
    }
    let (self_ty, out) = (self_ty(f), &f.out);
    quote! {
        fn on_timer(
            &mut self,
            timestamp: i64,
            __state: &mut Self::State,
            ctx: &mut ::flow::ProcessContext<'_, #key>,
            out: &mut ::std::vec::Vec<#out>,
        ) {
            ::flow::FunctionState::swap_state(self, __state);
            #self_ty::on_timer(self, timestamp, ctx, out);
            ::flow::FunctionState::swap_state(self, __state);
        }
    }
}

fn self_ty(f: &Function) -> &Type {
    match &f.form {
        Form::Impl { item, .. } => &item.self_ty,
        Form::Fn { .. } => unreachable!("process functions are impl blocks"),
    }
}

/// `#[process_function]`: a keyed process function (`ProcessContext<'_, K>`), or one of a
/// stream that is not keyed (`ProcessContext<'_>`; its struct keeps no `#[state]`, checked
/// where it is used, as for the other impl-block functions).
fn process_function(f: &Function, imp: &ItemImpl, span: Span, hooks: TokenStream) -> TokenStream {
    let (self_ty, in_ty, out) = (&imp.self_ty, &f.rows[0], &f.out);
    let Some(key) = &f.key else {
        return quote_spanned! {span=>
            #imp
            #[diagnostic::do_not_recommend]
            impl<__T: ::flow::__private::Same<#in_ty>> ::flow::ProcessFunction<__T> for #self_ty
            where
                (#self_ty, __T): ::flow::__private::Stateless,
            {
                type Out = #out;
                #hooks
                fn process_element(
                    &mut self,
                    row: __T,
                    ctx: &mut ::flow::ProcessContext<'_>,
                    out: &mut ::std::vec::Vec<#out>,
                ) {
                    #self_ty::process(self, ::flow::__private::Same::same(row), ctx, out)
                }
            }
        };
    };
    let timer = on_timer(f, key);
    let marker = without_event_timers_marker(imp);
    quote_spanned! {span=>
        #imp
        #marker
        impl ::flow::KeyedProcessFunction<#key, #in_ty> for #self_ty {
            type Out = #out;
            type State = <#self_ty as ::flow::FunctionState>::State;
            #hooks
            fn process_element(
                &mut self,
                row: #in_ty,
                __state: &mut Self::State,
                ctx: &mut ::flow::ProcessContext<'_, #key>,
                out: &mut ::std::vec::Vec<#out>,
            ) {
                ::flow::FunctionState::swap_state(self, __state);
                #self_ty::process(self, row, ctx, out);
                ::flow::FunctionState::swap_state(self, __state);
            }
            #timer
        }
    }
}

/// `#[co_process_function]`: `process1` and `process2` with one key's state and timers.
fn co_process_function(
    f: &Function,
    imp: &ItemImpl,
    span: Span,
    hooks: TokenStream,
) -> TokenStream {
    let (self_ty, a, b, out) = (&imp.self_ty, &f.rows[0], &f.rows[1], &f.out);
    let key = f
        .key
        .as_ref()
        .expect("checked: a co-process context has a key");
    let timer = on_timer(f, key);
    let marker = without_event_timers_marker(imp);
    let element = |method: &str, row: &Type| {
        let (trait_method, user) = (
            format_ident!("process_element{}", &method[method.len() - 1..]),
            format_ident!("{method}"),
        );
        quote! {
            fn #trait_method(&mut self, row: #row, __state: &mut Self::State, ctx: &mut ::flow::ProcessContext<'_, #key>, out: &mut ::std::vec::Vec<#out>) {
                ::flow::FunctionState::swap_state(self, __state);
                #self_ty::#user(self, row, ctx, out);
                ::flow::FunctionState::swap_state(self, __state);
            }
        }
    };
    let (first, second) = (element("process1", a), element("process2", b));
    quote_spanned! {span=>
        #imp
        #marker
        impl ::flow::KeyedCoProcessFunction<#key, #a, #b> for #self_ty {
            type Out = #out;
            type State = <#self_ty as ::flow::FunctionState>::State;
            #hooks
            #first
            #second
            #timer
        }
    }
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
