//! `GROUP BY` and aggregates: binding a grouped query's expressions (group keys and aggregate
//! calls become columns of the group's row), and the Rust of the accumulators.

use super::expr::{Binder, Kind, Read, Scope, ScopeCol, TExpr};
use super::text::SqlText;
use super::types::{SqlType, Ty};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use sqlparser::ast::{self, Expr, FunctionArg, FunctionArgExpr, FunctionArguments};

/// The aggregate functions.
pub const AGGREGATES: &[&str] = &["COUNT", "SUM", "MIN", "MAX", "AVG"];

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AggFunc {
    CountStar,
    Count,
    CountDistinct,
    Sum,
    Min,
    Max,
    Avg,
}

/// One aggregate call of the query.
pub struct AggCall {
    pub func: AggFunc,
    pub arg: Option<TExpr>,
    pub ty: Ty,
    /// The call as written, to use one accumulator for repeated calls.
    text: String,
}

/// What a grouped query's expressions may name: the group keys and aggregate calls, bound on
/// the input's columns.
pub struct Group {
    pub input: Scope,
    pub keys: Vec<(Expr, TExpr)>,
    pub calls: Vec<AggCall>,
}

/// Whether `e` calls an aggregate function (outside of a nested query).
pub fn has_aggregate(e: &Expr) -> bool {
    match e {
        Expr::Function(f) => {
            let name = f.name.to_string().to_ascii_uppercase();
            AGGREGATES.contains(&name.as_str())
                || match &f.args {
                    FunctionArguments::List(l) => l.args.iter().any(|a| match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => has_aggregate(x),
                        _ => false,
                    }),
                    _ => false,
                }
        }
        Expr::BinaryOp { left, right, .. } => has_aggregate(left) || has_aggregate(right),
        Expr::UnaryOp { expr, .. }
        | Expr::Nested(expr)
        | Expr::Cast { expr, .. }
        | Expr::IsNull(expr)
        | Expr::IsNotNull(expr) => has_aggregate(expr),
        Expr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            operand.as_deref().is_some_and(has_aggregate)
                || conditions
                    .iter()
                    .any(|w| has_aggregate(&w.condition) || has_aggregate(&w.result))
                || else_result.as_deref().is_some_and(has_aggregate)
        }
        Expr::Between {
            expr, low, high, ..
        } => has_aggregate(expr) || has_aggregate(low) || has_aggregate(high),
        _ => false,
    }
}

impl Binder<'_> {
    /// In a grouped query: `e` as a group key or an aggregate call (a column of the group's
    /// row), an error for a column that is neither, or `None` to bind `e`'s parts.
    pub(super) fn grouped(&mut self, e: &Expr) -> syn::Result<Option<TExpr>> {
        let sql = self.sql;
        let Some(group) = self.group.as_mut() else {
            return Ok(None);
        };
        if let Expr::Function(f) = e {
            let name = f.name.to_string().to_ascii_uppercase();
            if AGGREGATES.contains(&name.as_str()) {
                let text = e.to_string();
                let nkeys = group.keys.len();
                if let Some(j) = group.calls.iter().position(|c| c.text == text) {
                    let ty = group.calls[j].ty;
                    return Ok(Some(TExpr {
                        kind: Kind::Col(nkeys + j),
                        ty,
                    }));
                }
                let call = bind_call(sql, &mut group.input, e, f, &name, text)?;
                let ty = call.ty;
                group.calls.push(call);
                let j = group.calls.len() - 1;
                self.scope.cols.push(ScopeCol {
                    table: String::new(),
                    name: name.to_lowercase(),
                    ty,
                    read: Read::Var(nkeys + j),
                });
                return Ok(Some(TExpr {
                    kind: Kind::Col(nkeys + j),
                    ty,
                }));
            }
        }
        let same = |k: &Expr| strip(k) == strip(e);
        if let Some(i) = group.keys.iter().position(|(k, _)| same(k)) {
            let ty = group.keys[i].1.ty;
            return Ok(Some(TExpr {
                kind: Kind::Col(i),
                ty,
            }));
        }
        if let Expr::Identifier(_) | Expr::CompoundIdentifier(_) = e {
            // `t.a` and `a` are one key: compare what they name.
            let mut b = Binder {
                sql,
                scope: &mut group.input,
                group: None,
            };
            let x = b.bind(e)?;
            if let Kind::Col(c) = x.kind {
                let i = group
                    .keys
                    .iter()
                    .position(|(_, k)| matches!(k.kind, Kind::Col(kc) if kc == c));
                if let Some(i) = i {
                    return Ok(Some(TExpr {
                        kind: Kind::Col(i),
                        ty: group.keys[i].1.ty,
                    }));
                }
            }
            return Err(sql.error_on(
                e,
                format!("`{e}` is neither in `GROUP BY` nor in an aggregate"),
            ));
        }
        Ok(None)
    }
}

/// `(x)` and `x` are one expression.
fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Nested(x) => strip(x),
        other => other,
    }
}

fn bind_call(
    sql: &SqlText,
    input: &mut Scope,
    e: &Expr,
    f: &ast::Function,
    name: &str,
    text: String,
) -> syn::Result<AggCall> {
    if f.over.is_some() || f.filter.is_some() || !f.within_group.is_empty() {
        return Err(sql.error_on(
            e,
            "`OVER`, `FILTER` and `WITHIN GROUP` are not supported yet",
        ));
    }
    let FunctionArguments::List(list) = &f.args else {
        return Err(sql.error_on(e, format!("`{name}` takes one argument")));
    };
    let distinct = matches!(
        list.duplicate_treatment,
        Some(ast::DuplicateTreatment::Distinct)
    );
    let arg = match list.args.as_slice() {
        [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)] if name == "COUNT" && !distinct => None,
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(x))] => {
            if has_aggregate(x) {
                return Err(sql.error_on(e, "an aggregate cannot hold another aggregate"));
            }
            let mut b = Binder {
                sql,
                scope: input,
                group: None,
            };
            Some(b.bind(x)?)
        }
        _ => return Err(sql.error_on(e, format!("`{name}` takes one argument"))),
    };
    if let Some(a) = &arg {
        if a.ty.sql == SqlType::Unknown {
            return Err(sql.error_on(e, "an aggregate needs its argument's SQL type: give the DataStream's columns types, `from_data_stream(ds, \"a INT, b STRING\")`"));
        }
    }
    let func = match (name, distinct, &arg) {
        ("COUNT", false, None) => AggFunc::CountStar,
        ("COUNT", false, Some(_)) => AggFunc::Count,
        ("COUNT", true, Some(a)) => {
            if matches!(a.ty.sql, SqlType::Float | SqlType::Double) {
                return Err(sql.error_on(
                    e,
                    "`COUNT(DISTINCT ..)` of a FLOAT or DOUBLE is not supported",
                ));
            }
            AggFunc::CountDistinct
        }
        (_, true, _) => {
            return Err(sql.error_on(
                e,
                format!("`{name}(DISTINCT ..)` is not supported yet (`COUNT(DISTINCT ..)` is)"),
            ))
        }
        ("SUM", _, _) => AggFunc::Sum,
        ("MIN", _, _) => AggFunc::Min,
        ("MAX", _, _) => AggFunc::Max,
        _ => AggFunc::Avg,
    };
    let arg_ty = arg.as_ref().map(|a| a.ty);
    let ty = match func {
        AggFunc::CountStar | AggFunc::Count | AggFunc::CountDistinct => {
            Ty::new(SqlType::BigInt, false)
        }
        AggFunc::Sum | AggFunc::Avg => {
            let t = arg_ty.expect("an argument");
            if !t.sql.is_numeric() {
                return Err(
                    sql.error_on(e, format!("`{name}` takes a number, not {}", t.sql.name()))
                );
            }
            t
        }
        AggFunc::Min | AggFunc::Max => arg_ty.expect("an argument"),
    };
    Ok(AggCall {
        func,
        arg,
        ty,
        text,
    })
}

impl AggCall {
    /// An `AVG`'s input `x` in the accumulator's type (`i64` or `f64`), cast only when it is
    /// another.
    fn avg_wide(&self, x: TokenStream) -> TokenStream {
        match self.ty.sql {
            SqlType::BigInt | SqlType::Double => x,
            t if t.is_integer() => quote!((#x as i64)),
            _ => quote!((#x as f64)),
        }
    }

    /// The accumulator's Rust type.
    pub fn acc_type(&self) -> TokenStream {
        let arg = self.arg.as_ref().map(|a| a.ty.sql.rust());
        match self.func {
            AggFunc::CountStar | AggFunc::Count => quote!(i64),
            AggFunc::CountDistinct => quote!(::std::collections::HashSet<#arg>),
            AggFunc::Sum | AggFunc::Min | AggFunc::Max => quote!(::core::option::Option<#arg>),
            AggFunc::Avg if self.ty.sql.is_integer() => quote!((i64, i64)),
            AggFunc::Avg => quote!((f64, i64)),
        }
    }

    /// The Rust type of the value the aggregate reads from each row.
    pub fn input_type(&self) -> TokenStream {
        match &self.arg {
            None => quote!(()),
            Some(a) => a.ty.rust(),
        }
    }

    /// Folds the input `v` into `acc` (a place).
    pub fn add(&self, acc: TokenStream, v: &syn::Ident) -> TokenStream {
        let nullable = self.arg.as_ref().is_some_and(|a| a.ty.nullable);
        let int = self.ty.sql.is_integer();
        let body = |x: TokenStream| -> TokenStream {
            match self.func {
                AggFunc::CountStar | AggFunc::Count => quote!(#acc += 1;),
                AggFunc::CountDistinct => quote!(#acc.insert(#x);),
                AggFunc::Sum if int => {
                    quote!(#acc = ::core::option::Option::Some(match #acc { ::core::option::Option::Some(s) => s.wrapping_add(#x), ::core::option::Option::None => #x });)
                }
                AggFunc::Sum => {
                    quote!(#acc = ::core::option::Option::Some(match #acc { ::core::option::Option::Some(s) => s + #x, ::core::option::Option::None => #x });)
                }
                AggFunc::Min => {
                    quote!(if #acc.as_ref().is_none_or(|m| #x < *m) { #acc = ::core::option::Option::Some(#x); })
                }
                AggFunc::Max => {
                    quote!(if #acc.as_ref().is_none_or(|m| #x > *m) { #acc = ::core::option::Option::Some(#x); })
                }
                AggFunc::Avg => {
                    let wide = self.avg_wide(x);
                    quote!({ (#acc).0 += #wide; (#acc).1 += 1; })
                }
            }
        };
        match (self.func, nullable) {
            (AggFunc::CountStar, _) | (AggFunc::Count, false) => body(quote!(#v)),
            (AggFunc::Count, true) => {
                let b = body(quote!(#v));
                quote!(if #v.is_some() { #b })
            }
            (_, true) => {
                let b = body(quote!(__x));
                quote!(if let ::core::option::Option::Some(__x) = #v { #b })
            }
            (_, false) => body(quote!(#v)),
        }
    }

    /// Two accumulators `a` and `b` (values) as one.
    pub fn merge(&self, a: TokenStream, b: TokenStream) -> TokenStream {
        let int = self.ty.sql.is_integer();
        match self.func {
            AggFunc::CountStar | AggFunc::Count => quote!(#a + #b),
            AggFunc::CountDistinct => quote!({ let mut __s = #a; __s.extend(#b); __s }),
            AggFunc::Sum if int => {
                quote!(match (#a, #b) { (::core::option::Option::Some(x), ::core::option::Option::Some(y)) => ::core::option::Option::Some(x.wrapping_add(y)), (x, y) => x.or(y) })
            }
            AggFunc::Sum => {
                quote!(match (#a, #b) { (::core::option::Option::Some(x), ::core::option::Option::Some(y)) => ::core::option::Option::Some(x + y), (x, y) => x.or(y) })
            }
            AggFunc::Min => {
                quote!(match (#a, #b) { (::core::option::Option::Some(x), ::core::option::Option::Some(y)) => ::core::option::Option::Some(if y < x { y } else { x }), (x, y) => x.or(y) })
            }
            AggFunc::Max => {
                quote!(match (#a, #b) { (::core::option::Option::Some(x), ::core::option::Option::Some(y)) => ::core::option::Option::Some(if y > x { y } else { x }), (x, y) => x.or(y) })
            }
            AggFunc::Avg => quote!({ let (__a, __b) = (#a, #b); (__a.0 + __b.0, __a.1 + __b.1) }),
        }
    }

    /// The aggregate's value from `acc` (a place, borrowed), of type `self.ty`.
    pub fn result(&self, acc: TokenStream) -> TokenStream {
        let rust = self.ty.sql.rust();
        let value = match self.func {
            AggFunc::CountStar | AggFunc::Count => return quote!(#acc),
            AggFunc::CountDistinct => return quote!((#acc.len() as i64)),
            AggFunc::Sum | AggFunc::Min | AggFunc::Max => {
                quote!(::core::clone::Clone::clone(&#acc))
            }
            AggFunc::Avg if self.ty.sql.is_integer() => {
                let back = if self.ty.sql == SqlType::BigInt {
                    quote!()
                } else {
                    quote!(as #rust)
                };
                quote!(if (#acc).1 == 0 { ::core::option::Option::None } else { ::core::option::Option::Some(((#acc).0 / (#acc).1) #back) })
            }
            AggFunc::Avg => {
                let back = if self.ty.sql == SqlType::Double {
                    quote!()
                } else {
                    quote!(as #rust)
                };
                quote!(if (#acc).1 == 0 { ::core::option::Option::None } else { ::core::option::Option::Some(((#acc).0 / (#acc).1 as f64) #back) })
            }
        };
        if self.ty.nullable {
            value
        } else {
            // A group has a row, so an aggregate of a NOT NULL column has a value.
            quote!((#value).unwrap_or_default())
        }
    }
}

/// The code of a grouped query's aggregation: the closures `GroupAggregate` and `SqlAggregate`
/// take, over a key tuple and an input tuple of the aggregates' values.
pub struct AggCode {
    /// `(key types,)`
    pub key_type: TokenStream,
    /// `(accumulator types,)`
    pub acc_type: TokenStream,
    /// `((key types,), (input types,))`: a row of the aggregation's input.
    pub row_type: TokenStream,
    /// `|acc, row| ..` (typed where it is used, by `acc_type` and `row_type`)
    pub add: TokenStream,
    /// `|a, b| ..`
    pub merge: TokenStream,
    /// Statements binding `__c<keys + j>` to each aggregate's value from `acc` (a reference).
    pub results: TokenStream,
}

/// `keys`: the places of the group keys the rows are partitioned by (all but a window's
/// bounds).
pub fn code(group: &Group, keys: &[usize]) -> AggCode {
    let key_tys = keys.iter().map(|&i| group.keys[i].1.ty.rust());
    let key_type = quote!((#(#key_tys,)*));
    let in_tys = group.calls.iter().map(AggCall::input_type);
    let input_type = quote!((#(#in_tys,)*));
    let acc_tys = group.calls.iter().map(AggCall::acc_type);
    let acc_type = quote!((#(#acc_tys,)*));
    let vars: Vec<syn::Ident> = (0..group.calls.len())
        .map(|j| format_ident!("__i{}", j))
        .collect();
    let adds = group.calls.iter().enumerate().map(|(j, c)| {
        let idx = syn::Index::from(j);
        c.add(quote!(acc.#idx), &vars[j])
    });
    let row_type = quote!((#key_type, #input_type));
    let add = if group.calls.is_empty() {
        quote!(move |_, _| {})
    } else {
        quote!(move |acc, row| { let (_, (#(#vars,)*)) = row; #(#adds)* })
    };
    let merges = group.calls.iter().enumerate().map(|(j, c)| {
        let idx = syn::Index::from(j);
        c.merge(quote!(a.#idx), quote!(b.#idx))
    });
    let merge = if group.calls.is_empty() {
        quote!(move |_, _| {})
    } else {
        quote!(move |a, b| (#(#merges,)*))
    };
    let nkeys = group.keys.len();
    let results = group.calls.iter().enumerate().map(|(j, c)| {
        let idx = syn::Index::from(j);
        let v = format_ident!("__c{}", nkeys + j);
        let r = c.result(quote!(acc.#idx));
        quote!(let #v = #r;)
    });
    let results = quote!(#(#results)*);
    AggCode {
        key_type,
        acc_type,
        row_type,
        add,
        merge,
        results,
    }
}

impl AggCall {
    /// Whether the aggregate can take retractions (its accumulator can subtract a row).
    pub fn retractable(&self) -> Result<(), String> {
        let float = self
            .arg
            .as_ref()
            .is_some_and(|a| matches!(a.ty.sql, SqlType::Float | SqlType::Double));
        match self.func {
            AggFunc::Min | AggFunc::Max if float => Err(format!(
                "`{}` of a FLOAT or DOUBLE over an updating table is not supported yet",
                self.text
            )),
            _ => Ok(()),
        }
    }

    /// The accumulator's Rust type when rows may be retracted.
    fn retracting_acc_type(&self) -> TokenStream {
        let arg = self.arg.as_ref().map(|a| a.ty.sql.rust());
        match self.func {
            AggFunc::CountStar | AggFunc::Count => quote!(i64),
            AggFunc::CountDistinct => quote!(::std::collections::HashMap<#arg, i64>),
            AggFunc::Sum => quote!((#arg, i64)),
            AggFunc::Min | AggFunc::Max => quote!(::std::collections::BTreeMap<#arg, i64>),
            AggFunc::Avg if self.ty.sql.is_integer() => quote!((i64, i64)),
            AggFunc::Avg => quote!((f64, i64)),
        }
    }

    /// Adds (`__s` = 1) or retracts (`__s` = -1) the input `v` in `acc` (a place).
    fn retract_or_add(&self, acc: TokenStream, v: &syn::Ident) -> TokenStream {
        let nullable = self.arg.as_ref().is_some_and(|a| a.ty.nullable);
        let int = self.ty.sql.is_integer();
        let body = |x: TokenStream| -> TokenStream {
            match self.func {
                AggFunc::CountStar | AggFunc::Count => quote!(#acc += __s;),
                AggFunc::CountDistinct | AggFunc::Min | AggFunc::Max => quote! {
                    match #acc.get_mut(&#x) {
                        ::core::option::Option::Some(c) => {
                            *c += __s;
                            if *c <= 0 {
                                #acc.remove(&#x);
                            }
                        }
                        ::core::option::Option::None => {
                            if __s > 0 {
                                #acc.insert(#x, 1);
                            }
                        }
                    }
                },
                AggFunc::Sum if int => {
                    quote!({ (#acc).0 = if __s > 0 { (#acc).0.wrapping_add(#x) } else { (#acc).0.wrapping_sub(#x) }; (#acc).1 += __s; })
                }
                AggFunc::Sum => {
                    quote!({ if __s > 0 { (#acc).0 += #x } else { (#acc).0 -= #x }; (#acc).1 += __s; })
                }
                AggFunc::Avg if int => {
                    let wide = self.avg_wide(x);
                    quote!({ (#acc).0 += __s * #wide; (#acc).1 += __s; })
                }
                AggFunc::Avg => {
                    let wide = self.avg_wide(x);
                    quote!({ (#acc).0 += __s as f64 * #wide; (#acc).1 += __s; })
                }
            }
        };
        match (self.func, nullable) {
            (AggFunc::CountStar, _) | (AggFunc::Count, false) => body(quote!(#v)),
            (AggFunc::Count, true) => {
                let b = body(quote!(#v));
                quote!(if #v.is_some() { #b })
            }
            (_, true) => {
                let b = body(quote!(__x));
                quote!(if let ::core::option::Option::Some(__x) = #v { #b })
            }
            (_, false) => body(quote!(#v)),
        }
    }

    /// The aggregate's value from a retracting accumulator `acc` (a place, borrowed).
    fn retracting_result(&self, acc: TokenStream) -> TokenStream {
        let rust = self.ty.sql.rust();
        let value = match self.func {
            AggFunc::CountStar | AggFunc::Count => return quote!(#acc),
            AggFunc::CountDistinct => return quote!((#acc.len() as i64)),
            AggFunc::Sum => {
                quote!(if (#acc).1 == 0 { ::core::option::Option::None } else { ::core::option::Option::Some((#acc).0) })
            }
            AggFunc::Min => quote!(#acc.keys().next().cloned()),
            AggFunc::Max => quote!(#acc.keys().next_back().cloned()),
            AggFunc::Avg if self.ty.sql.is_integer() => {
                let back = if self.ty.sql == SqlType::BigInt {
                    quote!()
                } else {
                    quote!(as #rust)
                };
                quote!(if (#acc).1 == 0 { ::core::option::Option::None } else { ::core::option::Option::Some(((#acc).0 / (#acc).1) #back) })
            }
            AggFunc::Avg => {
                let back = if self.ty.sql == SqlType::Double {
                    quote!()
                } else {
                    quote!(as #rust)
                };
                quote!(if (#acc).1 == 0 { ::core::option::Option::None } else { ::core::option::Option::Some(((#acc).0 / (#acc).1 as f64) #back) })
            }
        };
        if self.ty.nullable {
            value
        } else {
            quote!((#value).unwrap_or_default())
        }
    }
}

/// [`code`] for an updating input: each row comes with whether it adds to the table (`+I`,
/// `+U`) or retracts from it (`-U`, `-D`), as `(key, inputs, adds)`; the accumulators subtract
/// retracted rows, and a hidden count of the group's rows, last in the accumulator, ends the
/// group (`-D`) when it falls to zero.
pub fn code_retracting(group: &Group, keys: &[usize]) -> AggCode {
    let key_tys = keys.iter().map(|&i| group.keys[i].1.ty.rust());
    let key_type = quote!((#(#key_tys,)*));
    let in_tys = group.calls.iter().map(AggCall::input_type);
    let input_type = quote!((#(#in_tys,)*));
    let acc_tys = group.calls.iter().map(AggCall::retracting_acc_type);
    let acc_type = quote!((#(#acc_tys,)* i64,));
    let vars: Vec<syn::Ident> = (0..group.calls.len())
        .map(|j| format_ident!("__i{}", j))
        .collect();
    let adds = group.calls.iter().enumerate().map(|(j, c)| {
        let idx = syn::Index::from(j);
        c.retract_or_add(quote!(acc.#idx), &vars[j])
    });
    let rows = syn::Index::from(group.calls.len());
    let row_type = quote!((#key_type, #input_type, bool));
    let add = quote!(move |acc, row| {
        let (_, (#(#vars,)*), __adds) = row;
        let __s: i64 = if __adds { 1 } else { -1 };
        #(#adds)*
        acc.#rows += __s;
    });
    let nkeys = group.keys.len();
    let results = group.calls.iter().enumerate().map(|(j, c)| {
        let idx = syn::Index::from(j);
        let v = format_ident!("__c{}", nkeys + j);
        let r = c.retracting_result(quote!(acc.#idx));
        quote!(let #v = #r;)
    });
    let results = quote! {
        if acc.#rows <= 0 {
            return ::core::option::Option::None;
        }
        #(#results)*
    };
    AggCode {
        key_type,
        acc_type,
        row_type,
        add,
        merge: quote!(move |a, _b| a),
        results,
    }
}
