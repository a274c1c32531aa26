//! Queries: `SELECT .. FROM .. WHERE ..` and `UNION ALL`, bound to the catalog and lowered to
//! DSL operators (one `map`, or one `flat_map` with a `WHERE`, per `SELECT`).

use super::expr::{suggest, Binder, Gen, Kind, Read, Scope, ScopeCol, TExpr};
use super::text::SqlText;
use super::types::{SqlType, Ty};
use super::{pattern, Column, Lowered, Lowering};
use quote::quote;
use sqlparser::ast::{
    self, GroupByExpr, SelectItem, SetExpr, SetOperator, SetQuantifier, Spanned, TableFactor,
};

/// A planned query: its columns (`None`: a DataStream's own rows) and, when emitted, its
/// stream.
struct Planned {
    columns: Option<Vec<Column>>,
    stream: Option<syn::Ident>,
}

/// The columns `query` gives, without emitting it (a view's columns, known when declared).
pub fn columns_of(
    l: &mut Lowering,
    sql: &SqlText,
    query: &ast::Query,
) -> syn::Result<Option<Vec<Column>>> {
    Ok(plan_query(l, sql, query, false)?.columns)
}

/// Emits `query` and gives its stream.
pub fn lower(l: &mut Lowering, sql: &SqlText, query: &ast::Query) -> syn::Result<Lowered> {
    let p = plan_query(l, sql, query, true)?;
    Ok(Lowered {
        stream: p.stream.expect("emitted"),
        columns: p.columns,
    })
}

fn plan_query(l: &mut Lowering, sql: &SqlText, q: &ast::Query, emit: bool) -> syn::Result<Planned> {
    if q.with.is_some() {
        return Err(sql.error("`WITH` is not supported yet: declare a view with `CREATE VIEW`"));
    }
    if let Some(o) = &q.order_by {
        return Err(sql.error_on(
            o,
            "`ORDER BY` is not supported on a stream yet (Flink sorts only on time)",
        ));
    }
    if q.limit_clause.is_some() || q.fetch.is_some() {
        return Err(sql.error("`LIMIT` / `FETCH` are not supported yet"));
    }
    plan_set(l, sql, &q.body, emit)
}

fn plan_set(l: &mut Lowering, sql: &SqlText, body: &SetExpr, emit: bool) -> syn::Result<Planned> {
    match body {
        SetExpr::Select(s) => plan_select(l, sql, s, emit),
        SetExpr::Query(q) => plan_query(l, sql, q, emit),
        SetExpr::SetOperation { left, op: SetOperator::Union, set_quantifier: SetQuantifier::All, right } => {
            let (a, b) = (plan_set(l, sql, left, emit)?, plan_set(l, sql, right, emit)?);
            union_all(l, sql, body, a, b, emit)
        }
        SetExpr::SetOperation { op, .. } => Err(sql.error_on(body, format!(
            "`{op}` without `ALL` needs state to drop duplicates: not supported yet (`UNION ALL` is)"
        ))),
        other => Err(sql.error_on(other, "only `SELECT` and `UNION ALL` queries are supported")),
    }
}

fn union_all(
    l: &mut Lowering,
    sql: &SqlText,
    at: &SetExpr,
    a: Planned,
    b: Planned,
    emit: bool,
) -> syn::Result<Planned> {
    let (Some(ac), Some(bc)) = (&a.columns, &b.columns) else {
        return Err(sql.error_on(at, "`UNION ALL` of a DataStream table needs its columns named: `from_data_stream(ds, \"a, b\")`"));
    };
    if ac.len() != bc.len() {
        return Err(sql.error_on(
            at,
            format!(
                "the two sides of `UNION ALL` have {} and {} columns",
                ac.len(),
                bc.len()
            ),
        ));
    }
    let mut columns = Vec::new();
    for (x, y) in ac.iter().zip(bc) {
        let sql_ty = match (x.ty.sql, y.ty.sql) {
            (p, q) if p == q => p,
            (SqlType::Unknown, _) | (_, SqlType::Unknown) => SqlType::Unknown,
            (p, q) if p.is_numeric() && q.is_numeric() => SqlType::wider(p, q),
            (p, q) => {
                return Err(sql.error_on(
                    at,
                    format!(
                        "column `{}` is {} on one side of `UNION ALL` and {} on the other",
                        x.name,
                        p.name(),
                        q.name()
                    ),
                ))
            }
        };
        columns.push(Column {
            name: x.name.clone(),
            ty: Ty::new(sql_ty, x.ty.nullable || y.ty.nullable),
        });
    }
    if !emit {
        return Ok(Planned {
            columns: Some(columns),
            stream: None,
        });
    }
    let span = sql.span();
    let side = |l: &mut Lowering, p: &Planned, cols: &[Column]| -> syn::Result<syn::Ident> {
        let stream = p.stream.clone().expect("emitted");
        if cols.iter().zip(&columns).all(|(c, u)| c.ty == u.ty) {
            return Ok(stream);
        }
        let vars = pattern(cols.len());
        let values = columns.iter().enumerate().map(|(i, u)| {
            let v = quote::format_ident!("__c{}", i);
            let rust = u.ty.rust();
            quote!(::flow::table::IntoColumn::<#rust>::into_column(#v))
        });
        let name = l.fresh(span);
        l.emit(
            name.clone(),
            quote!(#stream.map(move |row| { let #vars = row; (#(#values,)*) })),
            span,
        )?;
        Ok(name)
    };
    let left = side(l, &a, ac)?;
    let right = side(l, &b, bc)?;
    let name = l.fresh(span);
    l.emit(name.clone(), quote!(#left.union(#right)), span)?;
    Ok(Planned {
        columns: Some(columns),
        stream: Some(name),
    })
}

fn plan_select(
    l: &mut Lowering,
    sql: &SqlText,
    s: &ast::Select,
    emit: bool,
) -> syn::Result<Planned> {
    if let Some(d) = &s.distinct {
        return Err(sql.error_on(
            s,
            format!("`{d}` needs state to drop duplicates: not supported yet"),
        ));
    }
    match &s.group_by {
        GroupByExpr::Expressions(e, _) if e.is_empty() => {}
        _ => {
            return Err(sql.error_on(
                s,
                "`GROUP BY` is not supported yet (window TVFs and unbounded GROUP BY come next)",
            ))
        }
    }
    if s.having.is_some()
        || s.qualify.is_some()
        || !s.named_window.is_empty()
        || !s.sort_by.is_empty()
        || s.top.is_some()
        || s.into.is_some()
        || !s.lateral_views.is_empty()
        || s.prewhere.is_some()
    {
        return Err(sql.error_on(s, "this SELECT uses clauses that are not supported yet (supported: SELECT .. FROM one table WHERE ..)"));
    }
    let from = match s.from.as_slice() {
        [one] if one.joins.is_empty() => &one.relation,
        [one] => return Err(sql.error_on(&one.joins[0], "joins are not supported yet")),
        [] => return Err(sql.error_on(s, "a SELECT reads a table: add `FROM t`")),
        [_, second, ..] => {
            return Err(sql.error_on(
                second,
                "joins are not supported yet (a FROM of several tables is one)",
            ))
        }
    };
    // The input: a table of the catalog, or a query in parentheses.
    let (qualifier, input) = match from {
        TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } => {
            let tname = super::object_name(sql, name)?;
            let Some(i) = l.find(&tname) else {
                return Err(sql.error_on(
                    name,
                    format!("unknown table `{tname}`{}", l.suggest_table(&tname)),
                ));
            };
            let q = alias.as_ref().map_or(tname, |a| a.name.value.clone());
            let planned = if emit {
                let rows = l.materialize(i, sql.span())?;
                Planned {
                    columns: rows.columns,
                    stream: Some(rows.stream),
                }
            } else {
                Planned {
                    columns: l.columns(i),
                    stream: None,
                }
            };
            (q, planned)
        }
        TableFactor::Table { args: Some(_), .. }
        | TableFactor::TableFunction { .. }
        | TableFactor::Function { .. } => {
            return Err(sql.error_on(
                from,
                "table functions (the window TVFs TUMBLE, HOP, SESSION) are not supported yet",
            ));
        }
        TableFactor::Derived {
            lateral: false,
            subquery,
            alias,
            sample: None,
        } => {
            let planned = plan_query(l, sql, subquery, emit)?;
            (
                alias
                    .as_ref()
                    .map_or_else(String::new, |a| a.name.value.clone()),
                planned,
            )
        }
        other => {
            return Err(sql.error_on(
                other,
                "this FROM is not supported: name a table or a query in parentheses",
            ))
        }
    };
    let mut scope = Scope {
        cols: Vec::new(),
        open: None,
    };
    match &input.columns {
        Some(cols) => {
            for (i, c) in cols.iter().enumerate() {
                scope.cols.push(ScopeCol {
                    table: qualifier.clone(),
                    name: c.name.clone(),
                    ty: c.ty,
                    read: Read::Var(i),
                });
            }
        }
        None => scope.open = Some(qualifier.clone()),
    }
    let n_input = scope.cols.len();
    let mut b = Binder {
        sql,
        scope: &mut scope,
    };
    let cond = match &s.selection {
        Some(w) => {
            let c = b.bind(w)?;
            if !matches!(c.ty.sql, SqlType::Boolean | SqlType::Unknown) {
                return Err(sql.error_on(
                    w,
                    format!(
                        "`WHERE` needs a BOOLEAN condition, this is {}",
                        c.ty.sql.name()
                    ),
                ));
            }
            Some(c)
        }
        None => None,
    };
    // The projection; `None`: the input's rows as they are (`*` over a DataStream's rows).
    let mut items: Option<Vec<(String, TExpr)>> = Some(Vec::new());
    let n_items = s.projection.len();
    for (k, item) in s.projection.iter().enumerate() {
        let out = items
            .as_mut()
            .expect("only `*` over a DataStream's rows sets None, alone");
        match item {
            SelectItem::UnnamedExpr(e) => {
                let x = b.bind(e)?;
                let name = match e {
                    ast::Expr::Identifier(id) => id.value.clone(),
                    ast::Expr::CompoundIdentifier(ids) => {
                        ids.last().map_or_else(String::new, |i| i.value.clone())
                    }
                    _ => format!("EXPR${k}"),
                };
                out.push((name, x));
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                let x = b.bind(expr)?;
                out.push((alias.value.clone(), x));
            }
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                if let SelectItem::QualifiedWildcard(kind, _) = item {
                    let q = kind.to_string();
                    if !q.eq_ignore_ascii_case(&qualifier) {
                        return Err(sql.error_on(
                            item,
                            format!(
                                "unknown table `{q}` in this query{}",
                                suggest(&q, [qualifier.as_str()])
                            ),
                        ));
                    }
                }
                if b.scope.open.is_some() {
                    if n_items > 1 {
                        return Err(sql.error_on(item, "`*` of a DataStream table without column names stands alone: name its columns in `from_data_stream(ds, \"a, b\")`"));
                    }
                    items = None;
                    continue;
                }
                for i in 0..n_input {
                    let c = &b.scope.cols[i];
                    out.push((
                        c.name.clone(),
                        TExpr {
                            kind: Kind::Col(i),
                            ty: c.ty,
                        },
                    ));
                }
            }
            other => return Err(sql.error_on(other, "this SELECT item is not supported")),
        }
    }
    let columns = items.as_ref().map(|items| {
        items
            .iter()
            .map(|(n, x)| Column {
                name: n.clone(),
                ty: x.ty,
            })
            .collect::<Vec<_>>()
    });
    if let Some(cols) = &columns {
        for (i, c) in cols.iter().enumerate() {
            if cols[..i]
                .iter()
                .any(|d| d.name.eq_ignore_ascii_case(&c.name))
            {
                return Err(sql.error_on(
                    s,
                    format!(
                        "the query gives two columns named `{}`: rename one with `AS`",
                        c.name
                    ),
                ));
            }
        }
    }
    if !emit {
        return Ok(Planned {
            columns,
            stream: None,
        });
    }
    let input_stream = input.stream.clone().expect("emitted");
    // `SELECT * FROM t` (the columns in order, no condition): the input as it is.
    let identity = match &items {
        None => true,
        Some(items) => {
            input.columns.is_some()
                && items.len() == n_input
                && items
                    .iter()
                    .enumerate()
                    .all(|(i, (_, x))| matches!(x.kind, Kind::Col(j) if j == i))
        }
    };
    if identity && cond.is_none() {
        return Ok(Planned {
            columns,
            stream: Some(input_stream),
        });
    }
    let destructure = match &input.columns {
        Some(cols) => {
            let vars = pattern(cols.len());
            quote!(let #vars = row;)
        }
        None => quote!(),
    };
    let output = match &items {
        Some(items) if !(identity && input.columns.is_none()) => {
            let exprs: Vec<&TExpr> = items.iter().map(|(_, x)| x).collect();
            let g = Gen::new(&scope, &exprs, true);
            let vals = exprs.iter().map(|x| g.value(x));
            quote!((#(#vals,)*))
        }
        _ => quote!(row),
    };
    let output = if identity && input.columns.is_some() {
        // `SELECT * .. WHERE`: the columns back as they were.
        pattern(n_input)
    } else {
        output
    };
    let label = format!(
        "select: {}",
        sql.snippet(s.span())
            .unwrap_or_default()
            .chars()
            .take(60)
            .collect::<String>()
    );
    let tokens = match &cond {
        None => quote!(#input_stream.map(move |row| { #destructure #output }).name(#label)),
        Some(c) => {
            let g = Gen::new(&scope, &[c], false);
            let test = g.condition(c);
            quote!(#input_stream.flat_map(move |row, out| { #destructure if #test { out.push(#output); } }).name(#label))
        }
    };
    let name = l.fresh(sql.span());
    l.emit(name.clone(), tokens, sql.span())?;
    Ok(Planned {
        columns,
        stream: Some(name),
    })
}
