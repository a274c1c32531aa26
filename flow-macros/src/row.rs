//! `#[derive(Row)]`: a struct's field-named schema, its text form (`Display`: the fields'
//! text forms separated by one space, opt out with `#[row(no_display)]`), its serde impls and
//! its state schema (`StateSchema`).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

pub fn derive(input: syn::DeriveInput) -> syn::Result<TokenStream> {
    let syn::Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "`Row` is derived for structs with named fields",
        ));
    };
    let syn::Fields::Named(fields) = &data.fields else {
        return Err(syn::Error::new_spanned(&input.ident, "`Row` is derived for structs with named fields: use a tuple as the row instead of a tuple struct"));
    };
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "a row type cannot be generic: its schema is static",
        ));
    }
    let mut display = true;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("row")) {
        attr.parse_nested_meta(|m| {
            if m.path.is_ident("no_display") {
                display = false;
                Ok(())
            } else {
                Err(m.error("unknown `row` option: expected `no_display`"))
            }
        })?;
    }
    let name = &input.ident;
    let name_str = name.to_string();
    let field_names: Vec<&syn::Ident> = fields
        .named
        .iter()
        .map(|f| f.ident.as_ref().expect("named"))
        .collect();
    let field_strs = field_names.iter().map(|f| f.to_string());
    let types: Vec<&syn::Type> = fields.named.iter().map(|f| &f.ty).collect();
    let type_strs = types
        .iter()
        .map(|t| quote!(#t).to_string().replace(' ', ""));
    let remote = format_ident!("__{}Remote", name);
    let display_impl = if display {
        let writes = field_names.iter().enumerate().map(|(i, f)| {
            let sep = if i > 0 {
                quote!(f.write_str(" ")?;)
            } else {
                quote!()
            };
            quote!(#sep ::flow::RowText::fmt_row(&self.#f, f)?;)
        });
        quote! {
            impl ::core::fmt::Display for #name {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    #(#writes)*
                    ::core::result::Result::Ok(())
                }
            }
        }
    } else {
        quote!()
    };
    // The text form is always `Display`: derived above, or the user's with `no_display`.
    let row_text = quote! {
        impl ::flow::RowText for #name {
            fn fmt_row(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                ::core::fmt::Display::fmt(self, f)
            }
        }
    };
    let schema = crate::schema::struct_impl(name, types.iter().copied());
    Ok(quote! {
        #schema
        impl ::flow::instances::WireRow for #name {}
        impl ::flow::Row for #name {
            const SCHEMA: ::flow::Schema = ::flow::Schema {
                name: #name_str,
                fields: &[#(::flow::Field { name: #field_strs, type_name: #type_strs }),*],
            };
        }
        impl ::flow::table::IntoColumns for #name {
            type Columns = (#(#types,)*);
            #[inline]
            fn into_columns(self) -> Self::Columns {
                (#(self.#field_names,)*)
            }
        }
        #display_impl
        #row_text
        const _: () = {
            #[derive(::flow::__private::serde::Serialize, ::flow::__private::serde::Deserialize)]
            #[serde(crate = "::flow::__private::serde", remote = #name_str)]
            struct #remote { #(#field_names: #types),* }

            impl ::flow::__private::serde::Serialize for #name {
                fn serialize<S: ::flow::__private::serde::Serializer>(&self, s: S) -> ::core::result::Result<S::Ok, S::Error> {
                    #remote::serialize(self, s)
                }
            }
            impl<'de> ::flow::__private::serde::Deserialize<'de> for #name {
                fn deserialize<D: ::flow::__private::serde::Deserializer<'de>>(d: D) -> ::core::result::Result<Self, D::Error> {
                    #remote::deserialize(d)
                }
            }
        };
    })
}
