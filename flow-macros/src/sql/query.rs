//! Queries: `SELECT`, `WHERE`, `GROUP BY`/`HAVING`, window functions, joins and `UNION ALL`,
//! bound to the catalog and lowered to DSL operators.

use super::aggregate::{self, has_aggregate, Group};
use super::expr::{suggest, Binder, Gen, Kind, Read, Scope, ScopeCol, TExpr};
use super::text::{self, SqlText};
use super::types::{SqlType, Ty};
use super::{pattern, Column, Lowered, Lowering, Rowtime};
use proc_macro2::TokenStream;
use quote::quote;
use sqlparser::ast::{
    self, GroupByExpr, SelectItem, SetExpr, SetOperator, SetQuantifier, Spanned, TableFactor,
};

/// A planned query: its columns (`None`: a DataStream's own rows) and, when emitted, its
/// stream.
struct Planned {
    columns: Option<Vec<Column>>,
    stream: Option<syn::Ident>,
    /// Its rows are `Changelog`s (a `GROUP BY` updates its results).
    updating: bool,
    /// Its event-time column, whose values are its rows' timestamps: a table's `WATERMARK` or
    /// `.rowtime` column, selected as it is (no expression of it) by a query that does not
    /// update, or a window aggregation's `window_time` (its rows carry the window's end - 1).
    rowtime: Option<usize>,
    /// A window aggregation's result: its windows' bucket (see [`window_tvf`]) and its
    /// `window_start` and `window_end` columns.
    windowed: Option<(i64, usize, usize)>,
}

/// A window function's assigner, and the length of the tumbling windows that hold each of its
/// windows' results (none for SESSION).
type Window = (TokenStream, Option<i64>);

/// The columns `query` gives, without emitting it (a view's columns, known when declared).
/// Also whether its rows are a changelog (a `GROUP BY`), and its time attribute.
pub fn columns_of(
    l: &mut Lowering,
    sql: &SqlText,
    query: &ast::Query,
) -> syn::Result<(Option<Vec<Column>>, bool, Option<Rowtime>)> {
    let p = plan_query(l, sql, query, false)?;
    let rowtime = p.rowtime.map(|column| Rowtime {
        column,
        delay: None,
    });
    Ok((p.columns, p.updating, rowtime))
}

/// Emits `query` and gives its stream.
pub fn lower(l: &mut Lowering, sql: &SqlText, query: &ast::Query) -> syn::Result<Lowered> {
    let p = plan_query(l, sql, query, true)?;
    Ok(Lowered {
        stream: p.stream.expect("emitted"),
        columns: p.columns,
        updating: p.updating,
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
    let updating = a.updating || b.updating;
    // The time attribute stays one when both sides have it in the same place.
    let rowtime = a.rowtime.filter(|r| b.rowtime == Some(*r) && !updating);
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
            updating,
            rowtime,
            windowed: None,
        });
    }
    let span = sql.span();
    // Each side in the union's column types (and as changelog rows when the other side is).
    let side = |l: &mut Lowering, p: &Planned, cols: &[Column]| -> syn::Result<syn::Ident> {
        let stream = p.stream.clone().expect("emitted");
        if cols.iter().zip(&columns).all(|(c, u)| c.ty == u.ty) && p.updating == updating {
            return Ok(stream);
        }
        let vars = pattern(cols.len());
        let values = columns.iter().enumerate().map(|(i, u)| {
            let v = quote::format_ident!("__c{}", i);
            let rust = u.ty.rust();
            quote!(::flow::table::IntoColumn::<#rust>::into_column(#v))
        });
        let body = match (p.updating, updating) {
            (true, _) => {
                quote!({ let kind = row.kind; let #vars = row.row; ::flow::table::Changelog { kind, row: (#(#values,)*) } })
            }
            (false, true) => {
                quote!({ let #vars = row; ::flow::table::Changelog::insert((#(#values,)*)) })
            }
            (false, false) => quote!({ let #vars = row; (#(#values,)*) }),
        };
        let name = l.fresh(span);
        l.emit(name.clone(), quote!(#stream.map(move |row| #body)), span)?;
        Ok(name)
    };
    let left = side(l, &a, ac)?;
    let right = side(l, &b, bc)?;
    let name = l.fresh(span);
    l.emit(name.clone(), quote!(#left.union(#right)), span)?;
    Ok(Planned {
        columns: Some(columns),
        stream: Some(name),
        updating,
        rowtime,
        windowed: None,
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
    let group_by: &[ast::Expr] = match &s.group_by {
        GroupByExpr::Expressions(e, modifiers) if modifiers.is_empty() => e,
        _ => return Err(sql.error_on(s, "`GROUP BY ALL` and grouping sets are not supported yet")),
    };
    if s.qualify.is_some()
        || !s.named_window.is_empty()
        || !s.sort_by.is_empty()
        || s.top.is_some()
        || s.into.is_some()
        || !s.lateral_views.is_empty()
        || s.prewhere.is_some()
    {
        return Err(sql.error_on(s, "this SELECT uses clauses that are not supported yet (supported: SELECT .. FROM one table WHERE ..)"));
    }
    // The input: a table of the catalog, a window function of one, a query in parentheses, or
    // an equi-join of two of them.
    let mut window: Option<Window> = None;
    let mut selection: Option<ast::Expr> = s.selection.clone();
    let (quals, input) = match s.from.as_slice() {
        [one] if one.joins.is_empty() => {
            let (q, planned) = plan_relation(l, sql, &one.relation, emit, &mut window)?;
            let n = planned.columns.as_ref().map_or(0, Vec::len);
            (vec![q; n.max(1)], planned)
        }
        [one] if one.joins.len() == 1 => {
            let j = &one.joins[0];
            let on = match &j.join_operator {
                ast::JoinOperator::Inner(ast::JoinConstraint::On(e)) | ast::JoinOperator::Join(ast::JoinConstraint::On(e)) => e.clone(),
                ast::JoinOperator::Inner(_) | ast::JoinOperator::Join(_) => {
                    return Err(sql.error_on(j, "a join names its condition: `JOIN b ON a.k = b.k` (USING and NATURAL are not supported yet)"))
                }
                _ => return Err(sql.error_on(j, "only inner joins are supported yet (LEFT, RIGHT, FULL, CROSS and lateral joins are not)")),
            };
            let left = plan_relation(l, sql, &one.relation, emit, &mut window)?;
            let right = plan_relation(l, sql, &j.relation, emit, &mut window)?;
            let mut conds = Vec::new();
            conjuncts(&on, &mut conds);
            if let Some(w) = &selection {
                conjuncts(w, &mut conds);
            }
            let (quals, planned, rest) =
                plan_join(l, sql, s, left, right, conds, window.is_some(), emit)?;
            selection = rest;
            (quals, planned)
        }
        [a, b] if a.joins.is_empty() && b.joins.is_empty() => {
            let left = plan_relation(l, sql, &a.relation, emit, &mut window)?;
            let right = plan_relation(l, sql, &b.relation, emit, &mut window)?;
            let mut conds = Vec::new();
            if let Some(w) = &selection {
                conjuncts(w, &mut conds);
            }
            let (quals, planned, rest) =
                plan_join(l, sql, s, left, right, conds, window.is_some(), emit)?;
            selection = rest;
            (quals, planned)
        }
        [] => return Err(sql.error_on(s, "a SELECT reads a table: add `FROM t`")),
        _ => return Err(sql.error_on(s, "a query joins two tables at most yet")),
    };
    let mut scope = Scope {
        cols: Vec::new(),
        open: None,
    };
    match &input.columns {
        Some(cols) => {
            for (i, c) in cols.iter().enumerate() {
                scope.cols.push(ScopeCol {
                    table: quals[i].clone(),
                    name: c.name.clone(),
                    ty: c.ty,
                    read: Read::Var(i),
                });
            }
        }
        None => scope.open = Some(quals[0].clone()),
    }
    let n_input = scope.cols.len();
    let aggregates = s.projection.iter().any(|item| match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => has_aggregate(e),
        _ => false,
    });
    if !group_by.is_empty() || aggregates || s.having.is_some() {
        return plan_grouped(
            l,
            sql,
            s,
            selection.as_ref(),
            group_by,
            scope,
            input,
            window,
            emit,
        );
    }
    if window.is_some() {
        return Err(sql.error_on(s, "a window function's rows are aggregated per window: `GROUP BY window_start, window_end, ..` (other uses are not supported yet)"));
    }
    let mut b = Binder {
        sql,
        scope: &mut scope,
        group: None,
    };
    let cond = match &selection {
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
                let name = column_name(e, k);
                out.push((name, x));
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                let x = b.bind(expr)?;
                out.push((alias.value.clone(), x));
            }
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                let only = match item {
                    SelectItem::QualifiedWildcard(kind, _) => {
                        let q = kind.to_string();
                        if !quals.iter().any(|x| x.eq_ignore_ascii_case(&q)) {
                            return Err(sql.error_on(
                                item,
                                format!(
                                    "unknown table `{q}` in this query{}",
                                    suggest(&q, quals.iter().map(String::as_str))
                                ),
                            ));
                        }
                        Some(q)
                    }
                    _ => None,
                };
                if b.scope.open.is_some() {
                    if n_items > 1 {
                        return Err(sql.error_on(item, "`*` of a DataStream table without column names stands alone: name its columns in `from_data_stream(ds, \"a, b\")`"));
                    }
                    items = None;
                    continue;
                }
                for i in 0..n_input {
                    let c = &b.scope.cols[i];
                    if only
                        .as_ref()
                        .is_none_or(|q| c.table.eq_ignore_ascii_case(q))
                    {
                        out.push((
                            c.name.clone(),
                            TExpr {
                                kind: Kind::Col(i),
                                ty: c.ty,
                            },
                        ));
                    }
                }
            }
            other => return Err(sql.error_on(other, "this SELECT item is not supported")),
        }
    }
    let columns = items
        .as_deref()
        .map(|items| output_columns(sql, s, items))
        .transpose()?;
    // The input's time attribute stays one where a column selects it as it is (the rows keep
    // their timestamps through `filter` and `map`).
    let rowtime = match (&items, input.rowtime) {
        _ if input.updating => None,
        (None, r) => r,
        (Some(items), Some(r)) => items
            .iter()
            .position(|(_, x)| matches!(x.kind, Kind::Col(j) if j == r)),
        (Some(_), None) => None,
    };
    if !emit {
        return Ok(Planned {
            columns,
            stream: None,
            updating: input.updating,
            rowtime,
            windowed: None,
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
            updating: input.updating,
            rowtime,
            windowed: None,
        });
    }
    // A changelog's rows keep their kind through the projection.
    let (take, wrap) = if input.updating {
        (
            quote!(let kind = row.kind; let row = row.row;),
            quote!(::flow::table::Changelog { kind, row: __out }),
        )
    } else {
        (quote!(), quote!(__out))
    };
    let destructure = match &input.columns {
        Some(cols) => {
            let vars = pattern(cols.len());
            quote!(#take let #vars = row;)
        }
        None => take,
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
    // `WHERE` is a `filter` on the borrowed row, the projection a `map` (none for `*`): both
    // fused in the stage.
    let filter = cond.as_ref().map(|c| {
        let test = Gen::borrowed(&scope).condition(c);
        let fields = if input.updating {
            quote!(&row.row)
        } else {
            quote!(row)
        };
        let vars = match &input.columns {
            Some(cols) => {
                let v = pattern(cols.len());
                quote!(let #v = #fields;)
            }
            None => quote!(),
        };
        quote!(.filter(move |row| { #vars #test }))
    });
    let map = if identity {
        quote!()
    } else {
        quote!(.map(move |row| { #destructure let __out = #output; #wrap }))
    };
    let tokens = quote!(#input_stream #filter #map .name(#label));
    let name = l.fresh(sql.span());
    l.emit(name.clone(), tokens, sql.span())?;
    Ok(Planned {
        columns,
        stream: Some(name),
        updating: input.updating,
        rowtime,
        windowed: None,
    })
}

/// A grouped query (`GROUP BY`, or aggregates over the whole input): the rows keyed by their
/// group, each group's aggregates kept in keyed state, and every change of a group's row
/// emitted as a changelog (`+I`, `-U`/`+U`, `-D`).
#[allow(clippy::too_many_arguments)]
fn plan_grouped(
    l: &mut Lowering,
    sql: &SqlText,
    s: &ast::Select,
    selection: Option<&ast::Expr>,
    group_by: &[ast::Expr],
    mut input_scope: Scope,
    input: Planned,
    window: Option<Window>,
    emit: bool,
) -> syn::Result<Planned> {
    if input.updating && window.is_some() {
        return Err(sql.error_on(
            s,
            "a window function over an updating table is not supported",
        ));
    }
    if input.columns.is_none() {
        return Err(sql.error_on(s, "`GROUP BY` over a DataStream table needs its columns named with types: `from_data_stream(ds, \"a INT, b STRING\")`"));
    }
    let mut b = Binder {
        sql,
        scope: &mut input_scope,
        group: None,
    };
    let cond = match selection {
        Some(w) => {
            if has_aggregate(w) {
                return Err(sql.error_on(w, "aggregates go in `HAVING`, not in `WHERE`"));
            }
            let c = b.bind(w)?;
            if c.ty.sql != SqlType::Boolean {
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
    let mut keys = Vec::new();
    let mut post = Scope {
        cols: Vec::new(),
        open: None,
    };
    // The keys that are the window's bounds (`window_start`, `window_end`, `window_time`):
    // each key's place among the group's keys, or the bound it is.
    let mut window_keys: Vec<(usize, WindowCol)> = Vec::new();
    for (i, k) in group_by.iter().enumerate() {
        if has_aggregate(k) {
            return Err(sql.error_on(k, "`GROUP BY` cannot hold an aggregate"));
        }
        if let (Some(_), Some(w)) = (&window, window_col(k)) {
            let ty = Ty::new(SqlType::Timestamp, false);
            post.cols.push(ScopeCol {
                table: String::new(),
                name: k.to_string(),
                ty,
                read: Read::Var(i),
            });
            window_keys.push((i, w));
            // A placeholder the key tuple leaves out.
            keys.push((
                k.clone(),
                TExpr {
                    kind: Kind::Bool(true),
                    ty,
                },
            ));
            continue;
        }
        let x = b.bind(k)?;
        if x.ty.sql == SqlType::Unknown {
            return Err(sql.error_on(
                k,
                "a group key needs its SQL type: give the DataStream's columns types",
            ));
        }
        post.cols.push(ScopeCol {
            table: String::new(),
            name: k.to_string(),
            ty: x.ty,
            read: Read::Var(i),
        });
        keys.push((k.clone(), x));
    }
    let mut b = Binder {
        sql,
        scope: &mut post,
        group: Some(Group {
            input: input_scope,
            keys,
            calls: Vec::new(),
        }),
    };
    let mut items: Vec<(String, TExpr)> = Vec::new();
    for (k, item) in s.projection.iter().enumerate() {
        match item {
            SelectItem::UnnamedExpr(e) => {
                let x = b.bind(e)?;
                let name = column_name(e, k);
                items.push((name, x));
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                let x = b.bind(expr)?;
                items.push((alias.value.clone(), x));
            }
            other => {
                return Err(sql.error_on(
                    other,
                    "a grouped query names its columns: `*` is not allowed with `GROUP BY`",
                ))
            }
        }
    }
    let having = match &s.having {
        Some(h) => {
            let x = b.bind(h)?;
            if x.ty.sql != SqlType::Boolean {
                return Err(sql.error_on(
                    h,
                    format!(
                        "`HAVING` needs a BOOLEAN condition, this is {}",
                        x.ty.sql.name()
                    ),
                ));
            }
            Some(x)
        }
        None => None,
    };
    let group = b.group.take().expect("set above");
    if group.calls.len() > 12 {
        return Err(sql.error_on(s, "a query keeps at most 12 aggregates"));
    }
    let columns = output_columns(sql, s, &items)?;
    if window.is_some() {
        let has = |w: WindowCol| window_keys.iter().any(|(_, k)| *k == w);
        if !(has(WindowCol::Start) && has(WindowCol::End)) {
            return Err(sql.error_on(
                s,
                "a window aggregation groups by `window_start, window_end` (and any other keys)",
            ));
        }
    }
    // A window aggregation emits each window's rows once: append-only.
    let updating = window.is_none();
    // A window aggregation's `window_start` and `window_end` columns, for a window join of it.
    let windowed = window.as_ref().and_then(|(_, bucket)| {
        let col = |w: WindowCol| {
            items.iter().position(|(_, x)| matches!(x.kind, Kind::Col(i) if window_keys.iter().any(|(j, k)| *j == i && *k == w)))
        };
        Some(((*bucket)?, col(WindowCol::Start)?, col(WindowCol::End)?))
    });
    // A window aggregation's `window_time` is its time attribute: its rows carry the window's
    // end - 1 as their timestamps.
    let rowtime = window.as_ref().and_then(|_| {
        items.iter().position(|(_, x)| {
            matches!(x.kind, Kind::Col(i) if window_keys.iter().any(|(j, k)| *j == i && *k == WindowCol::Time))
        })
    });
    if !emit {
        return Ok(Planned {
            columns: Some(columns),
            stream: None,
            updating,
            rowtime,
            windowed,
        });
    }
    let input_stream = input.stream.clone().expect("emitted");
    let n_input = input.columns.as_ref().map_or(0, Vec::len);
    let is_window_key = |i: usize| window_keys.iter().any(|(j, _)| *j == i);
    // The keys of the rows' partitioning: the group's keys but the window's bounds.
    let row_keys: Vec<usize> = (0..group.keys.len())
        .filter(|&i| !is_window_key(i))
        .collect();
    // Each row as (its group's key, the values its aggregates read).
    let vars = pattern(n_input);
    let mut read: Vec<&TExpr> = row_keys.iter().map(|&i| &group.keys[i].1).collect();
    read.extend(group.calls.iter().filter_map(|c| c.arg.as_ref()));
    let g = Gen::new(&group.input, &read, true);
    let key_vals = row_keys.iter().map(|&i| g.value(&group.keys[i].1));
    let in_vals = group.calls.iter().map(|c| match &c.arg {
        Some(a) => g.value(a),
        None => quote!(()),
    });
    // Over a changelog, each row also says whether it adds to the input or retracts from it.
    let (take, pair) = if input.updating {
        (
            quote!(let __adds = row.kind.is_accumulate(); let row = row.row;),
            quote!(((#(#key_vals,)*), (#(#in_vals,)*), __adds)),
        )
    } else {
        (quote!(), quote!(((#(#key_vals,)*), (#(#in_vals,)*))))
    };
    let pre = match &cond {
        None => quote!(#input_stream.map(move |row| { #take let #vars = row; #pair })),
        Some(c) => {
            let gc = Gen::new(&group.input, &[c], false);
            let test = gc.condition(c);
            quote!(#input_stream.flat_map(move |row, out| { #take let #vars = row; if #test { out.push(#pair); } }))
        }
    };
    if input.updating {
        if let Some(c) = group.calls.iter().find_map(|c| c.retractable().err()) {
            return Err(sql.error_on(s, c));
        }
    }
    let code = if input.updating {
        aggregate::code_retracting(&group, &row_keys)
    } else {
        aggregate::code(&group, &row_keys)
    };
    let (key_type, acc_type, row_type, add, results) = (
        &code.key_type,
        &code.acc_type,
        &code.row_type,
        &code.add,
        &code.results,
    );
    let key_vars: Vec<syn::Ident> = row_keys
        .iter()
        .map(|i| quote::format_ident!("__c{}", i))
        .collect();
    let key_vars = quote!((#(#key_vars,)*));
    let exprs: Vec<&TExpr> = items.iter().map(|(_, x)| x).collect();
    let gi = Gen::new(&post, &exprs, true);
    let out_vals = exprs.iter().map(|x| gi.value(x));
    let out_row = quote!((#(#out_vals,)*));
    let body = match &having {
        None => quote!(::core::option::Option::Some(#out_row)),
        Some(h) => {
            let gh = Gen::new(&post, &[h], false);
            let test = gh.condition(h);
            quote!(if #test { ::core::option::Option::Some(#out_row) } else { ::core::option::Option::None })
        }
    };
    let label = format!(
        "group: {}",
        sql.snippet(s.span())
            .unwrap_or_default()
            .chars()
            .take(60)
            .collect::<String>()
    );
    if let Some((assigner, _)) = &window {
        let bounds = window_keys.iter().map(|(i, w)| {
            let v = quote::format_ident!("__c{}", i);
            let t = match w {
                WindowCol::Start => quote!(window.start),
                WindowCol::End => quote!(window.end),
                WindowCol::Time => quote!(window.end - 1),
            };
            quote!(let #v = ::flow::table::SqlTimestamp(#t);)
        });
        let merge = &code.merge;
        let borrow_acc = if group.calls.is_empty() {
            quote!()
        } else {
            quote!(let acc = &acc;)
        };
        let tokens = quote! {
            #pre
                .key_by(|r| ::core::clone::Clone::clone(&r.0))
                .window(#assigner)
                .aggregate(
                    ::flow::table::SqlAggregate::<#acc_type, #row_type, _, _>::new(#add, #merge),
                    move |key, window, acc, out| {
                        let _ = (&window, &acc);
                        let #key_vars = ::core::clone::Clone::clone(key);
                        #(#bounds)*
                        #borrow_acc
                        #results
                        if let ::core::option::Option::Some(__row) = #body { out.push(__row); }
                    },
                )
                .name(#label)
        };
        let name = l.fresh(sql.span());
        l.emit(name.clone(), tokens, sql.span())?;
        return Ok(Planned {
            columns: Some(columns),
            stream: Some(name),
            updating,
            rowtime,
            windowed,
        });
    }
    let tokens = quote! {
        #pre
            .key_by(|r| ::core::clone::Clone::clone(&r.0))
            .process(::flow::table::GroupAggregate::<#acc_type, _, _, _>::new::<#key_type, #row_type>(
                #add,
                move |key, acc| { let #key_vars = ::core::clone::Clone::clone(key); #results #body },
            ))
            .name(#label)
    };
    let name = l.fresh(sql.span());
    l.emit(name.clone(), tokens, sql.span())?;
    Ok(Planned {
        columns: Some(columns),
        stream: Some(name),
        updating,
        rowtime: None,
        windowed: None,
    })
}

/// A bound of a window, as a column of a window function's table.
#[derive(Clone, Copy, Debug, PartialEq)]
enum WindowCol {
    Start,
    End,
    Time,
}

fn window_col(e: &ast::Expr) -> Option<WindowCol> {
    let id = match e {
        ast::Expr::Identifier(id) => id,
        ast::Expr::CompoundIdentifier(ids) => ids.last()?,
        _ => return None,
    };
    match id.value.to_ascii_lowercase().as_str() {
        "window_start" => Some(WindowCol::Start),
        "window_end" => Some(WindowCol::End),
        "window_time" => Some(WindowCol::Time),
        _ => None,
    }
}

/// `TUMBLE(TABLE t, DESCRIPTOR(ts), size)`, `HOP(.., slide, size)`, `SESSION(.., gap)`: the
/// table read and the window assigner.
fn window_tvf(l: &Lowering, sql: &SqlText, expr: &ast::Expr) -> syn::Result<(usize, Window)> {
    let ast::Expr::Function(f) = expr else {
        return Err(sql.error_on(expr, "expected a window function: TUMBLE, HOP or SESSION"));
    };
    let name = f.name.to_string().to_ascii_uppercase();
    let args: Vec<&ast::Expr> = match &f.args {
        ast::FunctionArguments::List(list) => list
            .args
            .iter()
            .map(|a| match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) => Ok(x),
                _ => Err(sql.error_on(expr, format!("`{name}` takes `TABLE t, DESCRIPTOR(column), INTERVAL ..` (named arguments are not supported yet)"))),
            })
            .collect::<syn::Result<_>>()?,
        _ => return Err(sql.error_on(expr, format!("`{name}` takes arguments"))),
    };
    let (n_intervals, usage) = match name.as_str() {
        "TUMBLE" => (1, "TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND)"),
        "HOP" => (2, "HOP(TABLE t, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '10' SECOND): the slide, then the size"),
        "SESSION" => (1, "SESSION(TABLE t, DESCRIPTOR(ts), INTERVAL '5' MINUTE)"),
        "CUMULATE" => return Err(sql.error_on(expr, "`CUMULATE` windows are not supported yet (TUMBLE, HOP and SESSION are)")),
        other => return Err(sql.error_on(expr, format!("unknown window function `{other}`{}", suggest(other, ["TUMBLE", "HOP", "SESSION"])))),
    };
    if args.len() != 2 + n_intervals {
        return Err(sql.error_on(expr, format!("`{name}` reads `{usage}`")));
    }
    let table = match args[0] {
        ast::Expr::Identifier(id) => id.value.clone(),
        other => {
            return Err(sql.error_on(
                other,
                format!("`{name}`'s first argument is a table: `{usage}`"),
            ))
        }
    };
    let Some(i) = l.find(&table) else {
        return Err(sql.error_on(
            args[0],
            format!("unknown table `{table}`{}", l.suggest_table(&table)),
        ));
    };
    let column = match args[1] {
        ast::Expr::Function(d) if d.name.to_string().eq_ignore_ascii_case("DESCRIPTOR") => {
            match &d.args {
                ast::FunctionArguments::List(list) => match list.args.as_slice() {
                    [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(
                        ast::Expr::Identifier(c),
                    ))] => c.value.clone(),
                    _ => return Err(sql.error_on(args[1], "`DESCRIPTOR` names one column")),
                },
                _ => return Err(sql.error_on(args[1], "`DESCRIPTOR` names one column")),
            }
        }
        other => {
            return Err(sql.error_on(
                other,
                format!("`{name}`'s second argument is the time column: `DESCRIPTOR(ts)`"),
            ))
        }
    };
    let Some(rowtime) = l.rowtime(i) else {
        if l.is_view(i) {
            return Err(sql.error_on(args[0], format!(
                "`{table}` has no event time: a view keeps its table's time attribute where it selects that column as it is (no expression of it, no `GROUP BY`), or a window aggregation's `window_time`"
            )));
        }
        return Err(sql.error_on(args[0], format!(
            "`{table}` has no event time: declare it with `WATERMARK FOR {column} AS {column} - INTERVAL '5' SECOND` in its CREATE TABLE (or `{column}.rowtime` in `from_data_stream`)"
        )));
    };
    let cols = l.columns(i).unwrap_or_default();
    let time_col = &cols[rowtime.column].name;
    if !time_col.eq_ignore_ascii_case(&column) {
        return Err(sql.error_on(
            args[1],
            format!(
                "`{column}` is not the event time of `{table}`: its time attribute is `{time_col}`"
            ),
        ));
    }
    let mut ms = Vec::new();
    for a in &args[2..] {
        match text::interval_ms(a) {
            Some(m) if m > 0 => ms.push(m),
            _ => return Err(sql.error_on(*a, "a window's size is a positive `INTERVAL 'n' SECOND` (or MILLISECOND, MINUTE, HOUR, DAY)")),
        }
    }
    let d = |m: i64| quote!(::std::time::Duration::from_millis(#m as u64));
    let assigner = match name.as_str() {
        "TUMBLE" => {
            let size = d(ms[0]);
            quote!(::flow::TumblingEventTimeWindows::of(#size))
        }
        "HOP" => {
            if ms[1] % ms[0] != 0 {
                return Err(
                    sql.error_on(expr, "a HOP window's size is a whole multiple of its slide")
                );
            }
            let (slide, size) = (d(ms[0]), d(ms[1]));
            quote!(::flow::SlidingEventTimeWindows::of(#size, #slide))
        }
        _ => {
            let gap = d(ms[0]);
            quote!(::flow::EventTimeSessionWindows::with_gap(#gap))
        }
    };
    // The windows' ends are multiples of the size (TUMBLE) or the slide (HOP): a tumbling
    // window of that length holds the results of one window of both sides of a window join.
    let bucket = match name.as_str() {
        "TUMBLE" | "HOP" => Some(ms[0]),
        _ => None,
    };
    Ok((i, (assigner, bucket)))
}

/// One table of a FROM: its name in the query and its rows; a window function sets `window`.
fn plan_relation(
    l: &mut Lowering,
    sql: &SqlText,
    from: &TableFactor,
    emit: bool,
    window: &mut Option<Window>,
) -> syn::Result<(String, Planned)> {
    Ok(match from {
        TableFactor::TableFunction { expr, alias } => {
            let (i, w) = window_tvf(l, sql, expr)?;
            *window = Some(w);
            let tname = l.table_name(i);
            let q = alias.as_ref().map_or(tname, |a| a.name.value.clone());
            let planned = if emit {
                let rows = l.materialize(i, sql.span())?;
                Planned {
                    columns: rows.columns,
                    stream: Some(rows.stream),
                    updating: rows.updating,
                    rowtime: None,
                    windowed: None,
                }
            } else {
                Planned {
                    columns: l.columns(i),
                    stream: None,
                    updating: l.updating(i),
                    rowtime: None,
                    windowed: None,
                }
            };
            (q, planned)
        }
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
                    updating: rows.updating,
                    rowtime: l.rowtime(i).map(|r| r.column),
                    windowed: None,
                }
            } else {
                Planned {
                    columns: l.columns(i),
                    stream: None,
                    updating: l.updating(i),
                    rowtime: l.rowtime(i).map(|r| r.column),
                    windowed: None,
                }
            };
            (q, planned)
        }
        TableFactor::Table { args: Some(_), .. } | TableFactor::Function { .. } => {
            return Err(sql.error_on(
                from,
                "a window function is read as `TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND))`",
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
    })
}

/// The conditions `e` requires all of (`a AND b AND c`).
fn conjuncts(e: &ast::Expr, out: &mut Vec<ast::Expr>) {
    match e {
        ast::Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::And,
            right,
        } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        ast::Expr::Nested(x) => conjuncts(x, out),
        other => out.push(other.clone()),
    }
}

/// An inner equi-join of two append-only tables (Flink's regular join): each side keyed by its
/// side of the `a.x = b.y` conditions, both kept in keyed state, each row joined with the other
/// side's rows of its key as it comes. Gives the joined rows' qualifiers and stream (the left
/// table's columns, then the right's) and the conditions left to the `WHERE`.
#[allow(clippy::too_many_arguments)]
fn plan_join(
    l: &mut Lowering,
    sql: &SqlText,
    s: &ast::Select,
    (lq, left): (String, Planned),
    (rq, right): (String, Planned),
    conds: Vec<ast::Expr>,
    windowed: bool,
    emit: bool,
) -> syn::Result<(Vec<String>, Planned, Option<ast::Expr>)> {
    if windowed {
        return Err(sql.error_on(
            s,
            "a join of window functions (window join) is not supported yet",
        ));
    }
    let (Some(lc), Some(rc)) = (left.columns.clone(), right.columns.clone()) else {
        return Err(sql.error_on(s, "a join of a DataStream table needs its columns named: `from_data_stream(ds, \"a INT, b STRING\")`"));
    };
    // A join of an updated table is one too: its retractions retract the pairs they made.
    let updating = left.updating || right.updating;
    if lq.eq_ignore_ascii_case(&rq) {
        return Err(sql.error_on(
            s,
            format!("both sides of the join are named `{lq}`: give one an alias, `{lq} AS x`"),
        ));
    }
    let scope_of = |cols: &[Column], q: &str, from: usize| Scope {
        cols: cols
            .iter()
            .enumerate()
            .map(|(i, c)| ScopeCol {
                table: q.to_string(),
                name: c.name.clone(),
                ty: c.ty,
                read: Read::Var(from + i),
            })
            .collect(),
        open: None,
    };
    let nl = lc.len();
    let mut both = scope_of(&lc, &lq, 0);
    both.cols.extend(scope_of(&rc, &rq, nl).cols);
    // Which side of the join each condition reads.
    let mut keys: Vec<(ast::Expr, ast::Expr)> = Vec::new();
    let mut rest: Vec<ast::Expr> = Vec::new();
    // The conditions on one side only, checked before the join keeps the side's rows (Flink's
    // filter push-down): (left, right).
    let (mut lonly, mut ronly): (Vec<ast::Expr>, Vec<ast::Expr>) = (Vec::new(), Vec::new());
    let side = |e: &ast::Expr, both: &mut Scope| -> syn::Result<Option<bool>> {
        let x = Binder {
            sql,
            scope: both,
            group: None,
        }
        .bind(e)?;
        let mut reads = vec![0; both.cols.len()];
        super::expr::count(&x, &mut reads);
        let (lr, rr) = (
            reads[..nl].iter().any(|&n| n > 0),
            reads[nl..].iter().any(|&n| n > 0),
        );
        Ok(match (lr, rr) {
            (true, false) => Some(true),
            (false, true) => Some(false),
            _ => None,
        })
    };
    for c in conds {
        if !has_aggregate(&c) {
            match side(&c, &mut both)? {
                Some(true) => {
                    lonly.push(c);
                    continue;
                }
                Some(false) => {
                    ronly.push(c);
                    continue;
                }
                None => {}
            }
        }
        if let ast::Expr::BinaryOp {
            left: a,
            op: ast::BinaryOperator::Eq,
            right: b,
        } = &c
        {
            match (side(a, &mut both)?, side(b, &mut both)?) {
                (Some(true), Some(false)) => {
                    keys.push(((**a).clone(), (**b).clone()));
                    continue;
                }
                (Some(false), Some(true)) => {
                    keys.push(((**b).clone(), (**a).clone()));
                    continue;
                }
                _ => {}
            }
        }
        rest.push(c);
    }
    if keys.is_empty() {
        return Err(sql.error_on(s, format!("a join needs an equality of a `{lq}` column and a `{rq}` column (`ON {lq}.k = {rq}.k`): a join without one would pair every row with every row")));
    }
    // Bounds on the two sides' event times (`b.ts BETWEEN a.ts - INTERVAL .. AND a.ts + ..`)
    // make it an interval join: each row is kept only while the other side can still match it.
    let mut bounds: (Option<i64>, Option<i64>) = (None, None);
    if !updating {
        if let (Some(lrt), Some(rrt)) = (left.rowtime, right.rowtime) {
            for c in &rest {
                let x = Binder {
                    sql,
                    scope: &mut both,
                    group: None,
                }
                .bind(c)?;
                time_bounds(&x, lrt, nl + rrt, &mut bounds);
            }
        }
    }
    let interval = match bounds {
        (Some(lo), Some(hi)) if lo <= hi => Some((lo, hi)),
        _ => None,
    };
    let residual = rest.into_iter().reduce(|a, b| ast::Expr::BinaryOp {
        left: Box::new(a),
        op: ast::BinaryOperator::And,
        right: Box::new(b),
    });
    let mut quals = vec![lq.clone(); nl];
    quals.extend(vec![rq.clone(); rc.len()]);
    let mut columns = lc.clone();
    columns.extend(rc.iter().cloned());
    if !emit {
        return Ok((
            quals,
            Planned {
                columns: Some(columns),
                stream: None,
                updating,
                rowtime: None,
                windowed: None,
            },
            residual,
        ));
    }
    // Each side keyed by its key values (NULL keys join nothing: such rows are dropped).
    let mut lscope = scope_of(&lc, &lq, 0);
    let mut rscope = scope_of(&rc, &rq, 0);
    let mut lk = Vec::new();
    let mut rk = Vec::new();
    for (a, b) in &keys {
        let x = Binder {
            sql,
            scope: &mut lscope,
            group: None,
        }
        .bind(a)?;
        let y = Binder {
            sql,
            scope: &mut rscope,
            group: None,
        }
        .bind(b)?;
        let (xs, ys) = (x.ty.sql, y.ty.sql);
        let ok = xs == ys
            || xs == SqlType::Unknown
            || ys == SqlType::Unknown
            || (xs.is_numeric() && ys.is_numeric());
        if !ok {
            return Err(sql.error_on(
                s,
                format!(
                    "the join compares {} with {} in `{a} = {b}`",
                    xs.name(),
                    ys.name()
                ),
            ));
        }
        lk.push(x);
        rk.push(y);
    }
    let bind_all = |scope: &mut Scope, conds: &[ast::Expr]| -> syn::Result<Vec<TExpr>> {
        conds
            .iter()
            .map(|c| {
                Binder {
                    sql,
                    scope,
                    group: None,
                }
                .bind(c)
            })
            .collect()
    };
    let lf = bind_all(&mut lscope, &lonly)?;
    let rf = bind_all(&mut rscope, &ronly)?;
    let side_stream = |l: &mut Lowering,
                       p: &Planned,
                       scope: &Scope,
                       ks: &[TExpr],
                       others: &[TExpr],
                       filters: &[TExpr]|
     -> syn::Result<syn::Ident> {
        let stream = p.stream.clone().expect("emitted");
        let n = scope.cols.len();
        let vars = pattern(n);
        let frefs: Vec<&TExpr> = filters.iter().collect();
        let gf = Gen::new(scope, &frefs, false);
        let tests = filters.iter().map(|f| {
            let t = gf.condition(f);
            quote!(if !#t { return; })
        });
        let refs: Vec<&TExpr> = ks.iter().collect();
        let g = Gen::new(scope, &refs, false);
        let keys = ks.iter().zip(others).enumerate().map(|(i, (k, o))| {
            let to = Ty::new(if k.ty.sql.is_numeric() && o.ty.sql.is_numeric() { SqlType::wider(k.ty.sql, o.ty.sql) } else { k.ty.sql }, false);
            let v = quote::format_ident!("__k{}", i);
            let value = g.convert(k, Ty::new(to.sql, k.ty.nullable));
            if k.ty.nullable {
                quote!(let #v = match #value { ::core::option::Option::Some(v) => v, ::core::option::Option::None => return };)
            } else {
                quote!(let #v = #value;)
            }
        });
        let kvars = (0..ks.len()).map(|i| quote::format_ident!("__k{}", i));
        let name = l.fresh(sql.span());
        l.emit(
            name.clone(),
            match (updating, p.updating) {
                (false, _) => quote!(#stream.flat_map(move |row, out| { let #vars = row; #(#tests)* #(#keys)* out.push(((#(#kvars,)*), #vars)); }).key_by(|r| ::core::clone::Clone::clone(&r.0))),
                (true, false) => quote!(#stream.flat_map(move |row, out| { let #vars = row; #(#tests)* #(#keys)* out.push(((#(#kvars,)*), #vars, true)); }).key_by(|r| ::core::clone::Clone::clone(&r.0))),
                (true, true) => quote!(#stream.flat_map(move |row, out| { let __adds = row.kind.is_accumulate(); let row = row.row; let #vars = row; #(#tests)* #(#keys)* out.push(((#(#kvars,)*), #vars, __adds)); }).key_by(|r| ::core::clone::Clone::clone(&r.0))),
            },
            sql.span(),
        )?;
        Ok(name)
    };
    let ls = side_stream(l, &left, &lscope, &lk, &rk, &lf)?;
    let rs = side_stream(l, &right, &rscope, &rk, &lk, &rf)?;
    let (lv, rv) = (pattern(nl), pattern(rc.len()));
    let all: Vec<syn::Ident> = (0..nl)
        .map(|i| quote::format_ident!("__c{}", i))
        .chain((0..rc.len()).map(|j| quote::format_ident!("__d{}", j)))
        .collect();
    let rv_d: Vec<syn::Ident> = (0..rc.len())
        .map(|j| quote::format_ident!("__d{}", j))
        .collect();
    let _ = rv;
    let label = format!("join: {lq} and {rq}");
    let name = l.fresh(sql.span());
    // Two window aggregations of one window size joined on their windows' bounds: a window
    // join, whose state ends with each window (their rows carry the window's end - 1 as time).
    let window_join = match (left.windowed, right.windowed) {
        (Some((lb, lstart, lend)), Some((rb, rstart, rend)))
            if lb == rb && !updating && interval.is_none() =>
        {
            let paired = |a: usize, b: usize| {
                lk.iter().zip(&rk).any(|(x, y)| matches!((&x.kind, &y.kind), (Kind::Col(i), Kind::Col(j)) if *i == a && *j == b))
            };
            (paired(lstart, rstart) && paired(lend, rend)).then_some(lb)
        }
        _ => None,
    };
    let tokens = if let Some(bucket) = window_join {
        let label = format!("window join: {lq} and {rq}");
        let bucket = bucket as u64;
        quote!(#ls.window_join(#rs, ::flow::TumblingEventTimeWindows::of(::std::time::Duration::from_millis(#bucket))).process(move |l, r, out| out.push((::core::clone::Clone::clone(&l.1), ::core::clone::Clone::clone(&r.1)))).name(#label).map(move |(l, r)| { let #lv = l; let (#(#rv_d,)*) = r; (#(#all,)*) }))
    } else if let Some((lo, hi)) = interval {
        // The conditions stay in the `WHERE` after it too: the join only bounds the state.
        let label = format!("interval join: {lq} and {rq}");
        quote!(#ls.interval_join(#rs).between(#lo, #hi).process(move |l, r, out| out.push((::core::clone::Clone::clone(&l.1), ::core::clone::Clone::clone(&r.1)))).name(#label).map(move |(l, r)| { let #lv = l; let (#(#rv_d,)*) = r; (#(#all,)*) }))
    } else if updating {
        quote!(#ls.connect(#rs).process(::flow::table::RetractJoin::new()).name(#label).map(move |c| { let kind = c.kind; let (l, r) = c.row; let #lv = l; let (#(#rv_d,)*) = r; ::flow::table::Changelog { kind, row: (#(#all,)*) } }))
    } else {
        quote!(#ls.connect(#rs).process(::flow::table::SqlJoin::new()).name(#label).map(move |(l, r)| { let #lv = l; let (#(#rv_d,)*) = r; (#(#all,)*) }))
    };
    l.emit(name.clone(), tokens, sql.span())?;
    Ok((
        quals,
        Planned {
            columns: Some(columns),
            stream: Some(name),
            updating,
            rowtime: None,
            windowed: None,
        },
        residual,
    ))
}

/// The bounds a condition puts on the right side's event time relative to the left's
/// (`right.ts` in `left.ts + lo ..= left.ts + hi`, in ms), from comparisons of the two
/// event-time columns `lcol` and `rcol` (with `± INTERVAL`); each bound the tightest found.
fn time_bounds(x: &TExpr, lcol: usize, rcol: usize, bounds: &mut (Option<i64>, Option<i64>)) {
    use super::expr::Cmp;
    let offset = |e: &TExpr| match &e.kind {
        Kind::Col(i) => Some((*i, 0)),
        Kind::AddMillis(c, ms) => match c.kind {
            Kind::Col(i) => Some((i, *ms)),
            _ => None,
        },
        _ => None,
    };
    match &x.kind {
        Kind::And(a, b) => {
            time_bounds(a, lcol, rcol, bounds);
            time_bounds(b, lcol, rcol, bounds);
        }
        Kind::Cmp(op, a, b) => {
            let (Some((ia, ma)), Some((ib, mb))) = (offset(a), offset(b)) else {
                return;
            };
            // Written as `right <op> left + d`.
            let (op, d) = if ia == lcol && ib == rcol {
                // left + ma <op> right + mb  <=>  right <flipped op> left + (ma - mb)
                let flipped = match op {
                    Cmp::Lt => Cmp::Gt,
                    Cmp::Le => Cmp::Ge,
                    Cmp::Gt => Cmp::Lt,
                    Cmp::Ge => Cmp::Le,
                    other => *other,
                };
                (flipped, ma - mb)
            } else if ia == rcol && ib == lcol {
                (*op, mb - ma)
            } else {
                return;
            };
            let (lo, hi) = bounds;
            match op {
                Cmp::Ge => *lo = Some(lo.map_or(d, |l| l.max(d))),
                Cmp::Gt => *lo = Some(lo.map_or(d + 1, |l| l.max(d + 1))),
                Cmp::Le => *hi = Some(hi.map_or(d, |h| h.min(d))),
                Cmp::Lt => *hi = Some(hi.map_or(d - 1, |h| h.min(d - 1))),
                _ => {}
            }
        }
        _ => {}
    }
}

/// The name of the `k`-th SELECT item `e` without an alias: a column keeps its name, anything
/// else is `EXPR$k` (Flink's).
fn column_name(e: &ast::Expr, k: usize) -> String {
    match e {
        ast::Expr::Identifier(id) => id.value.clone(),
        ast::Expr::CompoundIdentifier(ids) => {
            ids.last().map_or_else(String::new, |i| i.value.clone())
        }
        _ => format!("EXPR${k}"),
    }
}

/// A query's columns from its named items; two of one name are an error.
fn output_columns(
    sql: &SqlText,
    s: &ast::Select,
    items: &[(String, TExpr)],
) -> syn::Result<Vec<Column>> {
    let columns: Vec<Column> = items
        .iter()
        .map(|(n, x)| Column {
            name: n.clone(),
            ty: x.ty,
        })
        .collect();
    for (i, c) in columns.iter().enumerate() {
        if columns[..i]
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
    Ok(columns)
}
