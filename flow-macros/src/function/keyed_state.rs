//! `#[derive(KeyedState)]`: the per-key struct of an impl-block function's `#[state]` fields,
//! and how they are swapped in and out around each call.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};

fn is_state_attr(a: &syn::Attribute) -> bool {
    a.path().is_ident("state")
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
    let schema = crate::schema::struct_impl(&state, fields.iter().map(|f| &f.ty));
    let state_fields = super::state_fields_impl(
        &state,
        fields
            .iter()
            .map(|f| (f.ident.as_ref().expect("checked: named"), &f.ty)),
    );
    let swaps = fields.iter().map(|f| {
        let n = &f.ident;
        quote!(::core::mem::swap(&mut self.#n, &mut state.#n);)
    });
    Ok(quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #[derive(Default, Clone, ::flow::__private::serde::Serialize, ::flow::__private::serde::Deserialize)]
            #[serde(crate = "::flow::__private::serde")]
        #vis struct #state { #(#decls),* }
        #schema
        #state_fields

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
