//! A fn or an impl block -> [`Function`]: its rows, state, output, key and hooks, every error
//! on the user's tokens, collected.

use super::{Form, Function, Hooks, Kind, Param};
use crate::diagnostic::{tidy, Diagnostics};
use quote::quote;
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, Item, ItemFn, ItemImpl, Pat, PatType, ReturnType, Type};

/// Reads `item` for attribute `kind`. `None` when it is not a function at all (errors in
/// `diag`); otherwise the shape, complete or not (check `diag`).
pub fn function(kind: Kind, item: Item, diag: &mut Diagnostics) -> Option<Function> {
    match item {
        Item::Fn(f) if !matches!(kind, Kind::Process | Kind::CoProcess) => {
            Some(fn_form(kind, f, diag))
        }
        Item::Impl(i) => impl_form(kind, i, diag),
        other => {
            let what = match kind {
                Kind::Process => "`#[process_function]` goes on an inherent impl block with `fn process(&mut self, row, ctx, out)`".to_string(),
                Kind::CoProcess => "`#[co_process_function]` goes on an inherent impl block with `process1` and `process2`".to_string(),
                _ => format!("`#[{}]` goes on a fn or on an impl block", kind.attr()),
            };
            diag.error_spanned(&other, what);
            None
        }
    }
}

fn is_state_attr(a: &syn::Attribute) -> bool {
    a.path().is_ident("state")
}

/// `U` of a `&mut Vec<U>` type.
pub fn vec_elem(ty: &Type) -> Option<Type> {
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

/// `()` for a missing return type.
fn unit() -> Type {
    syn::parse_quote!(())
}

/// A fn `map`, `flat_map`, `filter` or `reduce` function.
fn fn_form(kind: Kind, mut f: ItemFn, diag: &mut Diagnostics) -> Function {
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
    let mut rows = Vec::new();
    let mut out = None;
    for arg in f.sig.inputs.iter_mut() {
        let FnArg::Typed(pt) = arg else {
            diag.error_spanned(
                &*arg,
                "a fn operator takes no `self`: use an impl block for functions with fields",
            );
            continue;
        };
        let is_state = pt.attrs.iter().any(is_state_attr);
        // Removed even on error: the attribute is not one rustc knows.
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
                    ty: r.elem.clone(),
                }),
                other => diag.error_spanned(
                    other,
                    "a `#[state]` parameter is a mutable reference: `&mut ValueState<T>`",
                ),
            }
        } else if kind == Kind::FlatMap && !rows.is_empty() {
            match vec_elem(&pt.ty) {
                Some(elem) => {
                    out = Some(elem);
                    params.push(Param::Out);
                }
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
            rows.push(ty);
            params.push(Param::Row);
        }
    }
    let expected_rows = if kind == Kind::Reduce { 2 } else { 1 };
    if rows.len() != expected_rows && !diag.has_errors() {
        diag.error_spanned(&f.sig, match kind {
            Kind::Reduce => "a reduce function takes two rows of the same type: `fn sum(acc: T, row: T) -> T`",
            Kind::Map => "a map function takes one row (and `#[state]` parameters): `fn f(row: T) -> U`",
            Kind::Filter => "a filter function takes one row by reference: `fn f(row: &T) -> bool`",
            _ => "a flat-map function takes one row and `out: &mut Vec<U>`: `fn f(row: T, out: &mut Vec<U>)`",
        });
    }
    let ret = match &f.sig.output {
        ReturnType::Type(_, t) => Some((**t).clone()),
        ReturnType::Default => None,
    };
    if kind == Kind::FlatMap && out.is_none() && !diag.has_errors() {
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
    if kind != Kind::FlatMap && ret.is_none() && !diag.has_errors() {
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
    let out = match kind {
        Kind::FlatMap => out,
        _ => ret,
    }
    .unwrap_or_else(unit);
    Function {
        kind,
        form: Form::Fn { item: f, params },
        rows,
        out,
        key: None,
        hooks: Hooks::default(),
    }
}

/// The typed parameters of a method (after `self`).
fn typed(sig: &syn::Signature) -> Vec<&PatType> {
    sig.inputs
        .iter()
        .filter_map(|a| match a {
            FnArg::Typed(t) => Some(t),
            _ => None,
        })
        .collect()
}

/// An impl-block function of any kind.
fn impl_form(kind: Kind, imp: ItemImpl, diag: &mut Diagnostics) -> Option<Function> {
    if let Some((_, path, _)) = &imp.trait_ {
        diag.error_spanned(path, format!("`#[{}]` goes on an inherent impl block (`impl MyFunction {{ .. }}`), not a trait impl", kind.attr()));
        return None;
    }
    if !imp.generics.params.is_empty() {
        diag.error_spanned(
            &imp.generics,
            "operator functions cannot be generic: rows have concrete types",
        );
    }
    let method = |name: &str| {
        imp.items.iter().find_map(|i| match i {
            ImplItem::Fn(m) if m.sig.ident == name => Some(m.sig.clone()),
            _ => None,
        })
    };
    let hooks = Hooks {
        open: method("open").is_some(),
        close: method("close").is_some(),
        on_timer: method("on_timer").is_some(),
    };
    let main = kind.method();
    let Some(sig) = method(main) else {
        let message = match kind {
            Kind::Process => "`#[process_function]` needs a `process` method: expected `fn process(&mut self, row: T, ctx: &mut ProcessContext<'_, K>, out: &mut Vec<U>)`".to_string(),
            Kind::CoProcess => "`#[co_process_function]` needs both methods: expected `fn process1(&mut self, row: A, ctx: &mut ProcessContext<'_, K>, out: &mut Vec<U>)` and `fn process2(&mut self, row: B, ctx, out)`".to_string(),
            _ => format!("`#[{}]` needs a `fn {main}(&mut self, ..)` in this impl block", kind.attr()),
        };
        diag.error(imp.self_ty.span(), message);
        return Some(unparsed(kind, imp, hooks));
    };
    let expected = match kind {
        Kind::Map => "expected `fn map(&mut self, row: T) -> U`",
        Kind::Filter => "expected `fn filter(&mut self, row: &T) -> bool`",
        Kind::FlatMap => "expected `fn flat_map(&mut self, row: T, out: &mut Vec<U>)`",
        Kind::Reduce => "expected `fn reduce(&mut self, acc: T, row: T) -> T`",
        Kind::Process => "expected `fn process(&mut self, row: T, ctx: &mut ProcessContext<'_, K>, out: &mut Vec<U>)`",
        Kind::CoProcess => "expected `fn process1(&mut self, row: A, ctx: &mut ProcessContext<'_, K>, out: &mut Vec<U>)` and `fn process2(&mut self, row: B, ctx, out)`",
    };
    let receiver_ok = matches!(sig.inputs.first(), Some(FnArg::Receiver(r)) if r.mutability.is_some() && r.reference.is_some());
    let params = typed(&sig);
    let ret = match &sig.output {
        ReturnType::Type(_, t) => (**t).clone(),
        ReturnType::Default => unit(),
    };
    let span = sig.ident.span();
    let shape = match (kind, &params[..]) {
        (Kind::Map, [row]) => Some((vec![(*row.ty).clone()], ret, None)),
        (Kind::Filter, [row]) => match &*row.ty {
            Type::Reference(r) => Some((vec![(*r.elem).clone()], syn::parse_quote!(bool), None)),
            _ => None,
        },
        (Kind::FlatMap, [row, out]) => {
            vec_elem(&out.ty).map(|o| (vec![(*row.ty).clone()], o, None))
        }
        (Kind::Reduce, [acc, _]) => Some((vec![(*acc.ty).clone()], (*acc.ty).clone(), None)),
        (Kind::Process, [row, ctx, out]) => {
            let Some(o) = vec_elem(&out.ty) else {
                diag.error_spanned(&out.ty, "the output is `out: &mut Vec<Row>`");
                return Some(unparsed(kind, imp, hooks));
            };
            let key = context_key(&ctx.ty, "stream's", diag)?;
            Some((vec![(*row.ty).clone()], o, key))
        }
        (Kind::CoProcess, [a, ctx, out]) => {
            let second = method("process2");
            let b = second
                .as_ref()
                .map(typed)
                .and_then(|p| p.first().map(|b| (*b.ty).clone()));
            let (Some(b), Some(o)) = (b, vec_elem(&out.ty)) else {
                let message = if second.is_none() {
                    format!("`#[co_process_function]` needs both methods: {expected}")
                } else {
                    expected.to_string()
                };
                match second {
                    None => diag.error(imp.self_ty.span(), message),
                    Some(_) => diag.error_spanned(&sig, message),
                }
                return Some(unparsed(kind, imp, hooks));
            };
            let key = context_key(&ctx.ty, "streams'", diag)?;
            if key.is_none() {
                diag.error_spanned(
                    &ctx.ty,
                    "the context is `&mut ProcessContext<'_, Key>`, with the streams' key type",
                );
            }
            Some((vec![(*a.ty).clone(), b], o, key))
        }
        _ => None,
    };
    let Some((rows, out, key)) = shape.filter(|_| receiver_ok) else {
        diag.error_spanned(&sig, expected);
        return Some(unparsed(kind, imp, hooks));
    };
    Some(Function {
        kind,
        form: Form::Impl { item: imp, span },
        rows,
        out,
        key,
        hooks,
    })
}

/// An impl block whose main method could not be read: kept for the fallback.
fn unparsed(kind: Kind, imp: ItemImpl, hooks: Hooks) -> Function {
    let span = imp.self_ty.span();
    Function {
        kind,
        form: Form::Impl { item: imp, span },
        rows: Vec::new(),
        out: unit(),
        key: None,
        hooks,
    }
}

/// The key type `K` of a process function's `&mut ProcessContext<'_, K>` parameter: `Some(None)`
/// for `ProcessContext<'_>` (a stream that is not keyed); `None` (reported) for a parameter that
/// is no context. `streams` names whose key it is in the error.
fn context_key(ty: &Type, streams: &str, diag: &mut Diagnostics) -> Option<Option<Type>> {
    let args = (|| {
        let Type::Reference(r) = ty else {
            return None;
        };
        let Type::Path(p) = &*r.elem else { return None };
        match &p.path.segments.last()?.arguments {
            syn::PathArguments::AngleBracketed(args) => {
                Some(args.args.iter().rev().find_map(|a| match a {
                    syn::GenericArgument::Type(t) => Some(t.clone()),
                    _ => None,
                }))
            }
            syn::PathArguments::None => Some(None),
            syn::PathArguments::Parenthesized(_) => None,
        }
    })();
    if args.is_none() {
        diag.error_spanned(
            ty,
            format!("the context is `&mut ProcessContext<'_, Key>`, with the {streams} key type"),
        );
    }
    args
}

/// `#[timestamp_assigner]`: `fn f(row: &T) -> i64`.
pub fn timestamp_assigner(f: &ItemFn, diag: &mut Diagnostics) {
    let expected = "a timestamp assigner is `fn f(row: &Row) -> i64` (milliseconds)";
    let [FnArg::Typed(row)] = f.sig.inputs.iter().collect::<Vec<_>>()[..] else {
        diag.error_spanned(&f.sig, expected);
        return;
    };
    if !matches!(&*row.ty, Type::Reference(r) if r.mutability.is_none()) {
        diag.error_spanned(&row.ty, format!("{expected}: take the row by reference"));
    }
    match &f.sig.output {
        ReturnType::Type(_, t) if quote!(#t).to_string() == "i64" => {}
        other => diag.error_spanned(other, format!("{expected}: return `i64`")),
    }
    if !f.sig.generics.params.is_empty() {
        diag.error_spanned(&f.sig.generics, "timestamp assigners cannot be generic");
    }
}
