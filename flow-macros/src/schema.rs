//! `StateSchema` implementations: the fingerprint of a type's saved layout, computed by the
//! compiler from its fields' types (`#[derive(StateSchema)]`, and inside `#[derive(Row)]`,
//! `#[derive(KeyedState)]` and the state structs of `#[state]` functions).

use proc_macro2::TokenStream;
use quote::quote;

/// `record(&[fields' fingerprints])`. A field whose type has no schema (a type of another
/// crate) counts by its name, so that the struct still builds: the probe's fallback.
pub fn record<'a>(types: impl IntoIterator<Item = &'a syn::Type>) -> TokenStream {
    let fps = types.into_iter().map(|t| {
        let name = quote!(#t).to_string().replace(' ', "");
        quote! {
            match <::flow::snapshot::SchemaProbe<#t>>::FINGERPRINT {
                0 => ::flow::snapshot::fingerprint(#name),
                fp => fp,
            }
        }
    });
    quote!({
        #[allow(unused_imports)]
        use ::flow::snapshot::NoSchema as _;
        ::flow::snapshot::record(&[#(#fps),*])
    })
}

/// `impl StateSchema for #name` (no generics) with the fingerprint of a struct of `types`.
pub fn struct_impl<'a>(
    name: &syn::Ident,
    types: impl IntoIterator<Item = &'a syn::Type>,
) -> TokenStream {
    let fp = record(types);
    quote! {
        impl ::flow::snapshot::StateSchema for #name {
            const FINGERPRINT: u64 = #fp;
        }
    }
}

/// `#[derive(StateSchema)]`: structs and enums, generic ones with `StateSchema` bounds on their
/// type parameters.
pub fn derive(input: syn::DeriveInput) -> syn::Result<TokenStream> {
    let name = &input.ident;
    let fp = match &input.data {
        syn::Data::Struct(s) => record(s.fields.iter().map(|f| &f.ty)),
        syn::Data::Enum(e) => {
            let variants = e
                .variants
                .iter()
                .map(|v| record(v.fields.iter().map(|f| &f.ty)));
            quote!(::flow::snapshot::variants(&[#(#variants),*]))
        }
        syn::Data::Union(_) => {
            return Err(syn::Error::new_spanned(
                name,
                "`StateSchema` is derived for structs and enums",
            ))
        }
    };
    let mut generics = input.generics.clone();
    for p in generics.type_params_mut() {
        p.bounds
            .push(syn::parse_quote!(::flow::snapshot::StateSchema));
    }
    let (imp, ty, wh) = generics.split_for_impl();
    Ok(quote! {
        impl #imp ::flow::snapshot::StateSchema for #name #ty #wh {
            const FINGERPRINT: u64 = #fp;
        }
    })
}
