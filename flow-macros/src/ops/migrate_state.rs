//! `.migrate_state(|old: Old| new)`: a modifier of the operator before it, not an operator of
//! its own (it has no spec): the operator's chain link wraps it in the runtime's
//! `MigrateState`, which restores values a checkpoint saved as `Old` through the closure.

use proc_macro2::TokenStream;
use quote::quote_spanned;
use syn::spanned::Spanned;
use syn::Expr;

/// The chain link of operator `op` with migration `f`; `rest` is the link's other arguments
/// (node id, name, next collector, side outputs).
///
/// The link passes through a function that asks for the migration's bound, spanned on the
/// closure: an operator that keeps no value per key is an error there, not on the block; so
/// is a migration from a type of the layout the operator keeps now (it would never run).
pub fn chained(f: &Expr, op: TokenStream, rest: TokenStream) -> TokenStream {
    quote_spanned! {f.span()=>
        {
            #[inline(always)]
            fn __flow_migrate<In, Op, F, Old, New, N, S>(
                link: ::flow::__private::Chained<In, ::flow::__private::MigrateState<Op, F, Old, New>, N, S>,
            ) -> ::flow::__private::Chained<In, ::flow::__private::MigrateState<Op, F, Old, New>, N, S>
            where
                Op: ::flow::__private::MigrateFrom<In, Old, Value = New>,
            {
                const {
                    let now = <Op as ::flow::__private::Operator<In>>::STATE_SCHEMA;
                    let old = <Op as ::flow::__private::MigrateFrom<In, Old>>::MIGRATED_SCHEMA;
                    if now == old {
                        ::core::panic!("`migrate_state` reads a type with the layout the operator keeps now (the same field types in the same order): a checkpoint's values are read as they are and the closure would never run; a migration is for a changed layout")
                    }
                }
                link
            }
            __flow_migrate(::flow::__private::Chained::with_side_outputs(
                ::flow::__private::MigrateState::new(#op, #f),
                #rest
            ))
        }
    }
}
