//! Tables and SQL inside `flow!`, planned when the program is built.
//!
//! This phase runs before the graph: it reads the table statements of the body
//! (`execute_sql("CREATE TABLE ..")`, `from_data_stream(ds, "a, b")`, `sql_query("SELECT ..")`,
//! `from_path("t")`, and `.to_append_stream()` / `.to_retract_stream()` /
//! `.to_changelog_stream()` / `.execute_insert("t")` on a table), binds and types the SQL
//! against the tables' columns, and rewrites every table into ordinary DSL chains over tuple
//! rows: a connector's `source(..)`, a `filter` and a `map` per `SELECT`, `union` for
//! `UNION ALL`, `key_by` + a keyed aggregate for `GROUP BY`, `window` + `aggregate` for a
//! window function, `connect` (or `interval_join`, `window_join`) for a join, a `sink_to(..)`
//! for an insert. The
//! phases after it see a DSL job and check, plan and generate it as any other, so SQL runs on
//! the same fused operators; the only run-time pieces are in `flow::table`.
//!
//! Generated code is spanned at the SQL literal it comes from: what rustc reports about it
//! (a DataStream's types against the columns named for it) points there.

mod aggregate;
mod connector;
mod expr;
mod query;
mod text;
mod types;

use crate::parse::{parse_chain, Call, Chain, FlowInput, FlowStmt, Root};
use connector::Connector;
use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{format_ident, quote};
use sqlparser::ast::{self, Statement};
use std::rc::Rc;
use text::SqlText;
use types::{SqlType, Ty};

/// The words that start a table.
const TABLE_ROOTS: &[&str] = &["execute_sql", "from_data_stream", "from_path", "sql_query"];
/// The words that turn a table into a stream or write it.
const TABLE_WORDS: &[&str] = &[
    "to_append_stream",
    "to_retract_stream",
    "to_changelog_stream",
    "execute_insert",
];

/// A column of a table.
#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    pub ty: Ty,
}

/// A table of the catalog.
struct Table {
    /// Its SQL name (looked up without regard to case).
    name: String,
    /// `None`: a DataStream's table without column names (its rows read by field name).
    columns: Option<Vec<Column>>,
    def: Def,
    /// Its rows are a changelog (a view of a `GROUP BY`).
    updating: bool,
    /// Its time attribute, which window functions and interval joins read: a table's
    /// `WATERMARK` or `.rowtime` column, or the column of a view that selects its input's time
    /// attribute as it is (or a window aggregation's `window_time`).
    rowtime: Option<Rowtime>,
    /// The stream of its rows once a statement read it.
    stream: Option<syn::Ident>,
}

enum Def {
    /// `CREATE TABLE .. WITH (..)`.
    Connector {
        sql: Rc<SqlText>,
        connector: Connector,
    },
    /// `from_data_stream(ds[, "a, b"])`; `typed`: the names came with types.
    DataStream {
        stream: syn::Ident,
        span: Span,
        named: bool,
        typed: bool,
    },
    /// `CREATE VIEW v AS ..` or `let v = sql_query("..")`.
    View {
        sql: Rc<SqlText>,
        query: Box<ast::Query>,
    },
    /// `let t = from_path("x")`: the table at this index.
    Alias(usize),
}

/// A table's event-time column.
#[derive(Clone, Copy, Debug)]
pub struct Rowtime {
    /// The column.
    pub column: usize,
    /// `WATERMARK FOR column AS column - INTERVAL ..`: the watermark's delay in ms, which the
    /// table's source generates. `None`: a DataStream's or a view's (the rows' own timestamps
    /// and watermarks).
    pub delay: Option<i64>,
}

/// A table's rows as a stream: tuples of `columns`, or (`None`) a DataStream's own rows;
/// `Changelog`s of them when `updating`.
pub struct Lowered {
    pub stream: syn::Ident,
    pub columns: Option<Vec<Column>>,
    pub updating: bool,
}

/// Rewrites the table statements of `input` into DSL chains; a body without any is returned
/// as it is.
pub fn lower(input: FlowInput) -> syn::Result<FlowInput> {
    let uses_tables = input.stmts.iter().any(|s| {
        let chain = match s {
            FlowStmt::Let { chain, .. } | FlowStmt::Chain(chain) => chain,
        };
        matches!(&chain.root, Root::Source { func, .. } if TABLE_ROOTS.contains(&func.to_string().as_str()))
    });
    if !uses_tables {
        return Ok(input);
    }
    let FlowInput {
        env,
        stmts,
        body_span,
    } = input;
    let mut l = Lowering {
        tables: Vec::new(),
        out: Vec::new(),
        next: 0,
    };
    let mut errors: Option<syn::Error> = None;
    for stmt in stmts {
        if let Err(e) = l.stmt(stmt) {
            match &mut errors {
                Some(all) => all.combine(e),
                None => errors = Some(e),
            }
        }
    }
    if let Some(e) = errors {
        return Err(e);
    }
    Ok(FlowInput {
        env,
        stmts: l.out,
        body_span,
    })
}

struct Lowering {
    tables: Vec<Table>,
    out: Vec<FlowStmt>,
    next: usize,
}

impl Lowering {
    fn stmt(&mut self, stmt: FlowStmt) -> syn::Result<()> {
        let (name, chain) = match stmt {
            FlowStmt::Let { name, chain } => (Some(name), chain),
            FlowStmt::Chain(chain) => (None, chain),
        };
        let Chain { root, calls } = chain;
        match root {
            Root::Source { func, args, span }
                if TABLE_ROOTS.contains(&func.to_string().as_str()) =>
            {
                let word = func.to_string();
                if word == "execute_sql" {
                    if let Some(name) = &name {
                        return Err(syn::Error::new_spanned(name, "`execute_sql(..)` runs a statement and gives nothing to bind: write it as a statement of its own"));
                    }
                    if let Some(c) = calls.first() {
                        return Err(syn::Error::new_spanned(
                            &c.method,
                            "nothing follows `execute_sql(..)`",
                        ));
                    }
                    let [arg] = args.as_slice() else {
                        return Err(syn::Error::new(span, "`execute_sql` takes one SQL string: `execute_sql(\"CREATE TABLE ..\")`"));
                    };
                    return self.execute_sql(Rc::new(SqlText::from_expr(
                        arg,
                        "the statement of `execute_sql`",
                    )?));
                }
                let table = self.table_root(&word, args, span, name.as_ref(), calls.is_empty())?;
                self.table_chain(name, table, calls)
            }
            Root::Stream(ident) if self.find(&ident.to_string()).is_some() => {
                let table = self.find(&ident.to_string()).expect("checked");
                if calls.is_empty() {
                    return Err(syn::Error::new_spanned(&ident, format!("`{ident}` is a table: turn it into a stream with `.to_append_stream()`, or write it with `.execute_insert(\"sink\")`")));
                }
                self.table_chain(name, table, calls)
            }
            root => {
                self.out.push(match name {
                    Some(name) => FlowStmt::Let {
                        name,
                        chain: Chain { root, calls },
                    },
                    None => FlowStmt::Chain(Chain { root, calls }),
                });
                Ok(())
            }
        }
    }

    /// The table a root word makes: `from_data_stream(..)`, `from_path(..)`, `sql_query(..)`.
    /// With `bind` (a `let` with nothing after the root), a data stream or query table takes
    /// the binding's name.
    fn table_root(
        &mut self,
        word: &str,
        args: Vec<syn::Expr>,
        span: Span,
        bind: Option<&syn::Ident>,
        bare: bool,
    ) -> syn::Result<usize> {
        let sql_name = match (bind, bare) {
            (Some(n), true) => n.to_string(),
            _ => {
                self.next += 1;
                format!("__anonymous_{}", self.next)
            }
        };
        match word {
            "from_data_stream" => {
                if args.is_empty() || args.len() > 2 {
                    return Err(syn::Error::new(span, "`from_data_stream` takes a stream and, optionally, its column names: `from_data_stream(ds, \"a, b, c\")`"));
                }
                let mut args = args.into_iter();
                let stream_expr = args.next().expect("checked");
                let stream = match &stream_expr {
                    syn::Expr::Path(p) if p.path.get_ident().is_some() => {
                        p.path.get_ident().cloned().expect("checked")
                    }
                    _ => {
                        let chain = parse_chain(stream_expr.clone())?;
                        let name = self.fresh(span);
                        self.out.push(FlowStmt::Let {
                            name: name.clone(),
                            chain,
                        });
                        name
                    }
                };
                let (columns, typed, rowtime) = match args.next() {
                    Some(list) => {
                        let text =
                            SqlText::from_expr(&list, "the column list of `from_data_stream`")?;
                        let (cols, typed, rowtime) = column_list(&text)?;
                        (Some(cols), typed, rowtime)
                    }
                    None => (None, false, None),
                };
                let named = columns.is_some();
                Ok(self.register(
                    Table {
                        name: sql_name,
                        columns,
                        def: Def::DataStream {
                            stream,
                            span,
                            named,
                            typed,
                        },
                        updating: false,
                        rowtime: rowtime.map(|column| Rowtime {
                            column,
                            delay: None,
                        }),
                        stream: None,
                    },
                    span,
                )?)
            }
            "from_path" | "sql_query" => {
                let [arg] = args.as_slice() else {
                    return Err(syn::Error::new(
                        span,
                        format!("`{word}` takes one string: `{word}(\"..\")`"),
                    ));
                };
                if word == "from_path" {
                    let syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(lit),
                        ..
                    }) = arg
                    else {
                        return Err(syn::Error::new_spanned(
                            arg,
                            "`from_path` takes a table's name as a string literal",
                        ));
                    };
                    let target = self.find(&lit.value()).ok_or_else(|| {
                        syn::Error::new_spanned(
                            lit,
                            format!(
                                "unknown table `{}`{}",
                                lit.value(),
                                self.suggest_table(&lit.value())
                            ),
                        )
                    })?;
                    if bind.is_some() && bare {
                        return self.register(
                            Table {
                                name: sql_name,
                                columns: None,
                                def: Def::Alias(target),
                                updating: false,
                                rowtime: None,
                                stream: None,
                            },
                            span,
                        );
                    }
                    return Ok(target);
                }
                let sql = Rc::new(SqlText::from_expr(arg, "the query of `sql_query`")?);
                let query = match sql.parse_one()? {
                    Statement::Query(q) => q,
                    _ => return Err(sql.error("`sql_query` takes a query (`SELECT ..`); other statements go to `execute_sql`")),
                };
                let (columns, updating, rowtime) = query::columns_of(self, &sql, &query)?;
                self.register(
                    Table {
                        name: sql_name,
                        columns,
                        def: Def::View { sql, query },
                        updating,
                        rowtime,
                        stream: None,
                    },
                    span,
                )
            }
            _ => unreachable!("a table root"),
        }
    }

    /// `table.to_append_stream()...`, `table.execute_insert("t")`, or `let t = <table>;`.
    fn table_chain(
        &mut self,
        name: Option<syn::Ident>,
        table: usize,
        calls: Vec<Call>,
    ) -> syn::Result<()> {
        let mut calls = calls.into_iter();
        let Some(first) = calls.next() else {
            // `let t = <table>;`: registered by `table_root` under `t`.
            return Ok(());
        };
        let word = first.method.to_string();
        if !TABLE_WORDS.contains(&word.as_str()) {
            let hint = match crate::diagnostic::did_you_mean(&word, TABLE_WORDS.iter().copied()) {
                Some(w) => format!(": did you mean `{w}`?"),
                None => ": turn it into a stream first with `.to_append_stream()` (or `.to_retract_stream()`, `.to_changelog_stream()`), or write it with `.execute_insert(\"sink\")`".into(),
            };
            return Err(syn::Error::new_spanned(
                &first.method,
                format!("`{word}` is not a table operation{hint}"),
            ));
        }
        let span = first.method.span();
        if word == "execute_insert" {
            if let Some(c) = calls.next() {
                return Err(syn::Error::new_spanned(
                    &c.method,
                    "nothing follows `execute_insert(..)`",
                ));
            }
            if let Some(n) = &name {
                return Err(syn::Error::new_spanned(
                    n,
                    "`execute_insert` writes the table and gives nothing to bind",
                ));
            }
            let [arg] = first.args.as_slice() else {
                return Err(syn::Error::new(
                    span,
                    "`execute_insert` takes the sink table's name: `execute_insert(\"my_sink\")`",
                ));
            };
            let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(lit),
                ..
            }) = arg
            else {
                return Err(syn::Error::new_spanned(
                    arg,
                    "`execute_insert` takes the sink table's name as a string literal",
                ));
            };
            let sql = Rc::new(SqlText {
                text: lit.value(),
                lit: lit.clone(),
            });
            let rows = self.materialize(table, lit.span())?;
            let sink = self.find(&lit.value()).ok_or_else(|| {
                sql.error(format!(
                    "unknown table `{}`{}",
                    lit.value(),
                    self.suggest_table(&lit.value())
                ))
            })?;
            return self.insert(&sql, sink, rows, None);
        }
        if !first.args.is_empty() {
            return Err(syn::Error::new(span, format!("`{word}` takes no arguments: the row type is the table's columns as a tuple, or the struct given as `{word}::<Row>()`")));
        }
        let rows = self.materialize(table, span)?;
        let stream = rows.stream.clone();
        let target = match &first.turbofish {
            None => None,
            Some(tf) => match tf.args.iter().collect::<Vec<_>>().as_slice() {
                [syn::GenericArgument::Type(t)] => Some(t.clone()),
                _ => return Err(syn::Error::new_spanned(tf, "one row type: `::<Row>`")),
            },
        };
        if rows.updating && word == "to_append_stream" {
            return Err(syn::Error::new_spanned(
                &first.method,
                "the table is updated as rows arrive (a `GROUP BY` retracts its earlier results), so it is not an append stream: use `.to_retract_stream()` or `.to_changelog_stream()`",
            ));
        }
        // The row of each element: a struct filled by column name, or the tuple as it is.
        let (row_of, struct_row) = match (&target, &rows.columns) {
            (Some(t), Some(cols)) => {
                // The columns by name into the row struct: rustc checks every field's type.
                let vars = pattern(cols.len());
                let fields = cols.iter().enumerate().map(|(i, c)| {
                    let f = format_ident!("{}", c.name, span = span);
                    let v = format_ident!("__c{}", i);
                    quote!(#f: #v)
                });
                (quote!({ let #vars = __row; #t { #(#fields),* } }), true)
            }
            (Some(t), None) => {
                return Err(syn::Error::new_spanned(t, "the table's rows are the DataStream's own: name its columns in `from_data_stream(ds, \"a, b\")` to read them into another struct"));
            }
            (None, _) => (quote!(__row), false),
        };
        let chain = match (word.as_str(), rows.updating) {
            ("to_append_stream", _) if !struct_row => None,
            ("to_append_stream", _) => Some(quote!(#stream.map(move |__row| #row_of))),
            ("to_retract_stream", false) => Some(quote!(#stream.map(move |__row| (true, #row_of)))),
            ("to_retract_stream", true) => Some(
                quote!(#stream.map(move |__c| { let __add = __c.kind.is_accumulate(); let __row = __c.row; (__add, #row_of) })),
            ),
            (_, false) if !struct_row => {
                Some(quote!(#stream.map(::flow::table::Changelog::insert)))
            }
            (_, false) => {
                Some(quote!(#stream.map(move |__row| ::flow::table::Changelog::insert(#row_of))))
            }
            (_, true) if !struct_row => None,
            (_, true) => Some(
                quote!(#stream.map(move |__c| { let kind = __c.kind; let __row = __c.row; ::flow::table::Changelog { kind, row: #row_of } })),
            ),
        };
        let root = match chain {
            None => Root::Stream(stream),
            Some(tokens) => {
                let name = self.fresh(span);
                self.emit(name.clone(), tokens, span)?;
                Root::Stream(name)
            }
        };
        let chain = Chain {
            root,
            calls: calls.collect(),
        };
        self.out.push(match name {
            Some(name) => FlowStmt::Let { name, chain },
            None => FlowStmt::Chain(chain),
        });
        Ok(())
    }

    /// `CREATE TABLE`, `CREATE VIEW` or `INSERT INTO`.
    fn execute_sql(&mut self, sql: Rc<SqlText>) -> syn::Result<()> {
        match sql.parse_one()? {
            Statement::CreateTable(ct) => {
                if ct.query.is_some() || ct.like.is_some() {
                    return Err(sql.error("`CREATE TABLE .. AS` / `LIKE` is not supported yet: declare the columns"));
                }
                if let Some(c) = ct.constraints.first() {
                    return Err(sql.error_on(c, "table constraints (PRIMARY KEY) are not supported yet"));
                }
                let name = object_name(&sql, &ct.name)?;
                let mut columns = Vec::new();
                for c in &ct.columns {
                    let sql_ty = SqlType::from_data_type(&c.data_type).map_err(|m| sql.error_at(c.name.span, format!("column `{}`: {m}", c.name.value)))?;
                    let mut nullable = true;
                    for o in &c.options {
                        match o.option {
                            ast::ColumnOption::NotNull => nullable = false,
                            ast::ColumnOption::Null => nullable = true,
                            _ => return Err(sql.error_at(c.name.span, format!("column `{}`: only `NOT NULL` / `NULL` may follow a column's type", c.name.value))),
                        }
                    }
                    if columns.iter().any(|x: &Column| x.name.eq_ignore_ascii_case(&c.name.value)) {
                        return Err(sql.error_at(c.name.span, format!("column `{}` is declared twice", c.name.value)));
                    }
                    columns.push(Column { name: c.name.value.clone(), ty: Ty::new(sql_ty, nullable) });
                }
                if columns.is_empty() {
                    return Err(sql.error("a table has at least one column"));
                }
                let options = match &ct.table_options {
                    ast::CreateTableOptions::With(opts) => opts
                        .iter()
                        .map(|o| match o {
                            ast::SqlOption::KeyValue { key, value } => {
                                let key = key.0.iter().map(|p| p.as_ident().map(|i| i.value.clone()).unwrap_or_default()).collect::<Vec<_>>().join(".");
                                match value {
                                    ast::Expr::Value(v) => match &v.value {
                                        ast::Value::SingleQuotedString(s) => Ok((key, s.clone())),
                                        other => Ok((key, other.to_string())),
                                    },
                                    other => Err(sql.error_on(other, "an option's value is a string: `'key' = 'value'`")),
                                }
                            }
                            _ => Err(sql.error("options are `'key' = 'value'` pairs")),
                        })
                        .collect::<syn::Result<Vec<_>>>()?,
                    ast::CreateTableOptions::None => Vec::new(),
                    _ => return Err(sql.error("a table's options go in `WITH ('connector' = '..', ..)`")),
                };
                let connector = Connector::new(&sql, &columns, &options)?;
                let rowtime = match sql.watermark()? {
                    None => None,
                    Some(w) => Some(watermark(&sql, &columns, &w)?),
                };
                if rowtime.is_some() && connector.source(&name, &columns).is_none() {
                    return Err(sql.error(format!("the {} connector only writes: a watermark applies to a table that is read", connector.name())));
                }
                self.register(Table { name, columns: Some(columns), def: Def::Connector { sql: sql.clone(), connector }, updating: false, rowtime, stream: None }, sql.span())?;
                Ok(())
            }
            Statement::CreateView(v) => {
                let name = object_name(&sql, &v.name)?;
                if !v.columns.is_empty() {
                    return Err(sql.error("name a view's columns with aliases in its query (`SELECT a AS x ..`)"));
                }
                let (columns, updating, rowtime) = query::columns_of(self, &sql, &v.query)?;
                self.register(Table { name, columns, def: Def::View { sql: sql.clone(), query: v.query }, updating, rowtime, stream: None }, sql.span())?;
                Ok(())
            }
            Statement::Insert(ins) => {
                let ast::TableObject::TableName(target) = &ins.table else {
                    return Err(sql.error("`INSERT INTO` names a table"));
                };
                let target_name = object_name(&sql, target)?;
                let sink = self.find(&target_name).ok_or_else(|| sql.error_on(target, format!("unknown table `{target_name}`{}", self.suggest_table(&target_name))))?;
                let Some(source) = &ins.source else {
                    return Err(sql.error("`INSERT INTO .. SELECT ..` takes a query"));
                };
                if ins.overwrite || !ins.assignments.is_empty() || ins.on.is_some() || ins.returning.is_some() {
                    return Err(sql.error("only `INSERT INTO t [(columns)] SELECT ..` is supported"));
                }
                let rows = query::lower(self, &sql, source)?;
                let cols: Option<Vec<String>> = (!ins.columns.is_empty()).then(|| ins.columns.iter().map(|c| c.to_string()).collect());
                self.insert(&sql, sink, rows, cols)
            }
            Statement::Query(_) => Err(sql.error("a query alone goes nowhere: bind it with `let t = sql_query(\"..\");`, or write it with `INSERT INTO sink SELECT ..`")),
            other => Err(sql.error(format!(
                "`{}` is not supported: `execute_sql` runs CREATE TABLE, CREATE VIEW and INSERT INTO",
                other.to_string().split_whitespace().take(2).collect::<Vec<_>>().join(" ")
            ))),
        }
    }

    /// Writes `rows` into the sink table `sink`, the query's columns into the table's (in
    /// order, or into `columns` by name: the others are NULL).
    fn insert(
        &mut self,
        sql: &Rc<SqlText>,
        sink: usize,
        rows: Lowered,
        columns: Option<Vec<String>>,
    ) -> syn::Result<()> {
        let sink = self.resolve(sink);
        let t = &self.tables[sink];
        let Def::Connector { connector, .. } = &t.def else {
            return Err(sql.error(format!("`{}` is not a connector table: only a `CREATE TABLE .. WITH ('connector' = ..)` table can be written", t.name)));
        };
        let sink_cols = t.columns.clone().expect("connector tables have columns");
        let Some(connector::SinkSpec {
            sink: sink_expr,
            parallelism,
            encode,
        }) = connector.sink(&sink_cols)
        else {
            return Err(sql.error(format!(
                "the {} connector of `{}` only reads: it cannot be written",
                connector.name(),
                t.name
            )));
        };
        if rows.updating && !connector.takes_changes() {
            return Err(sql.error(format!(
                "the query updates its results (a `GROUP BY` retracts earlier rows), and the {} connector of `{}` writes inserts only: write it to a `print` table, or aggregate per window (TUMBLE, HOP, SESSION) for final rows",
                connector.name(),
                t.name
            )));
        }
        let changelog = connector.takes_changes();
        let table_name = t.name.clone();
        // Which query column goes into each sink column.
        let n_in = match (&columns, &rows.columns) {
            (Some(c), _) => c.len(),
            (None, Some(c)) => c.len(),
            (None, None) => sink_cols.len(),
        };
        let target: Vec<Option<usize>> = match &columns {
            None => (0..sink_cols.len())
                .map(|i| (i < n_in).then_some(i))
                .collect(),
            Some(names) => {
                let mut target = vec![None; sink_cols.len()];
                for (i, n) in names.iter().enumerate() {
                    let j = sink_cols
                        .iter()
                        .position(|c| c.name.eq_ignore_ascii_case(n))
                        .ok_or_else(|| {
                            sql.error(format!(
                                "`{table_name}` has no column `{n}`{}",
                                expr::suggest(n, sink_cols.iter().map(|c| c.name.as_str()))
                            ))
                        })?;
                    target[j] = Some(i);
                }
                for (j, c) in sink_cols.iter().enumerate() {
                    if target[j].is_none() && !c.ty.nullable {
                        return Err(sql.error(format!(
                            "column `{}` of `{table_name}` is NOT NULL and is not written",
                            c.name
                        )));
                    }
                }
                target
            }
        };
        if columns.is_none() && n_in != sink_cols.len() {
            return Err(sql.error(format!(
                "the query gives {n_in} column{} and `{table_name}` has {}: {}",
                if n_in == 1 { "" } else { "s" },
                sink_cols.len(),
                sink_cols
                    .iter()
                    .map(|c| format!("{} {}", c.name, c.ty.describe()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let mut values = Vec::new();
        for (j, c) in sink_cols.iter().enumerate() {
            let Some(i) = target[j] else {
                let inner = c.ty.sql.rust();
                values.push(quote!(::core::option::Option::<#inner>::None));
                continue;
            };
            let v = format_ident!("__c{}", i);
            let from = rows.columns.as_ref().map(|cols| cols[i].ty);
            match from {
                Some(from) if from.sql != SqlType::Unknown => {
                    let name = &rows.columns.as_ref().expect("some")[i].name;
                    if !from.sql.widens_to(c.ty.sql) {
                        return Err(sql.error(format!("column `{}` of `{table_name}` is {}, the query's column `{name}` is {}", c.name, c.ty.sql.name(), from.sql.name())));
                    }
                    if from.nullable && !c.ty.nullable {
                        return Err(sql.error(format!("column `{}` of `{table_name}` is NOT NULL, the query's column `{name}` may be NULL", c.name)));
                    }
                    if from == c.ty {
                        values.push(quote!(#v));
                        continue;
                    }
                    let rust = c.ty.rust();
                    values.push(quote!(::flow::table::IntoColumn::<#rust>::into_column(#v)));
                }
                _ => {
                    let rust = c.ty.rust();
                    values.push(quote!(::flow::table::IntoColumn::<#rust>::into_column(#v)));
                }
            }
        }
        let vars = pattern(n_in);
        let stream = &rows.stream;
        let read = if rows.columns.is_some() {
            quote!(row)
        } else {
            quote!(::flow::table::IntoColumns::into_columns(row))
        };
        // A changelog keeps each row's kind; an append-only table inserts.
        let (take, kind) = if rows.updating {
            (
                quote!(let __kind = row.kind; let row = row.row;),
                quote!(__kind),
            )
        } else {
            (quote!(), quote!(::flow::table::RowKind::Insert))
        };
        let parallelism = parallelism.map(|p| {
            let p = proc_macro2::Literal::usize_unsuffixed(p);
            quote!(.parallelism(#p))
        });
        let out = if changelog {
            quote!(::flow::table::Changelog { kind: #kind, row: (#(#values,)*) })
        } else {
            quote!((#(#values,)*))
        };
        let encode = encode.map(|e| quote!(.map(#e)));
        let span = sql.span();
        let name = format!("insert into {table_name}");
        let tokens = quote! {
            #stream
                .map(move |row| { #take let #vars = #read; #out })
                #encode
                .sink_to(#sink_expr)
                .name(#name)
                #parallelism
        };
        let chain = parse_chain(syn::parse2(respan(tokens, span))?)?;
        self.out.push(FlowStmt::Chain(chain));
        Ok(())
    }

    /// The stream of table `i`'s rows, emitting it on first use.
    fn materialize(&mut self, i: usize, span: Span) -> syn::Result<Lowered> {
        let i = self.resolve(i);
        if let Some(s) = &self.tables[i].stream {
            return Ok(Lowered {
                stream: s.clone(),
                columns: self.tables[i].columns.clone(),
                updating: self.tables[i].updating,
            });
        }
        let columns = self.tables[i].columns.clone();
        let table_name = self.tables[i].name.clone();
        // (tokens, span) of the stream to emit, or the stream itself.
        let (tokens, at) = match &self.tables[i].def {
            Def::Connector { sql, connector } => {
                let cols = columns.as_deref().expect("connector tables have columns");
                if let Some(m) = connector.read_error() {
                    return Err(sql.error(m));
                }
                let Some(src) = connector.source(&table_name, cols) else {
                    return Err(sql.error(format!(
                        "the {} connector of `{table_name}` only writes: it cannot be read",
                        connector.name()
                    )));
                };
                let label = format!("{}: {table_name}", connector.name());
                match self.tables[i].rowtime {
                    Some(Rowtime {
                        column,
                        delay: Some(delay),
                    }) => {
                        let strategy = if delay == 0 {
                            quote!(::flow::Watermarks::monotonous())
                        } else {
                            {
                                let delay = delay as u64;
                                quote!(::flow::Watermarks::bounded_out_of_orderness(::std::time::Duration::from_millis(#delay)))
                            }
                        };
                        let c = syn::Index::from(column);
                        let ts = if cols[column].ty.nullable {
                            quote!(row.#c.map_or(i64::MIN, |t| t.0))
                        } else {
                            quote!(row.#c.0)
                        };
                        (
                            quote!(source(#src, #strategy).name(#label).timestamps(|row| #ts)),
                            sql.span(),
                        )
                    }
                    _ => (quote!(source(#src).name(#label)), sql.span()),
                }
            }
            Def::DataStream {
                stream,
                named: false,
                ..
            } => {
                let stream = stream.clone();
                self.tables[i].stream = Some(stream.clone());
                return Ok(Lowered {
                    stream,
                    columns,
                    updating: false,
                });
            }
            Def::DataStream {
                stream,
                span,
                typed,
                ..
            } => {
                let cols = columns.as_deref().expect("named");
                let vars = pattern(cols.len());
                // Typed columns: each field converted into its column's type (a `&str` into a
                // STRING, an `i32` into a BIGINT, milliseconds into a TIMESTAMP); rustc reports
                // a field that does not fit.
                let out = if *typed || self.tables[i].rowtime.is_some() {
                    let values = cols.iter().enumerate().map(|(i, c)| {
                        let v = format_ident!("__c{}", i);
                        if c.ty.sql == SqlType::Unknown {
                            return quote!(#v);
                        }
                        let rust = c.ty.rust();
                        quote!(::flow::table::IntoColumn::<#rust>::into_column(#v))
                    });
                    quote!((#(#values,)*))
                } else {
                    vars.clone()
                };
                (
                    quote!(#stream.map(move |row| { let #vars = ::flow::table::IntoColumns::into_columns(row); #out })),
                    *span,
                )
            }
            Def::View { sql, query } => {
                let (sql, query) = (sql.clone(), query.clone());
                let rows = query::lower(self, &sql, &query)?;
                self.tables[i].stream = Some(rows.stream.clone());
                return Ok(rows);
            }
            Def::Alias(_) => unreachable!("resolved"),
        };
        let stream = self.fresh(at);
        self.emit(stream.clone(), tokens, at)?;
        let _ = span;
        self.tables[i].stream = Some(stream.clone());
        Ok(Lowered {
            stream,
            columns,
            updating: false,
        })
    }

    fn register(&mut self, table: Table, span: Span) -> syn::Result<usize> {
        if self.find(&table.name).is_some() {
            return Err(syn::Error::new(
                span,
                format!("table `{}` is declared twice", table.name),
            ));
        }
        self.tables.push(table);
        Ok(self.tables.len() - 1)
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.tables
            .iter()
            .position(|t| t.name.eq_ignore_ascii_case(name))
    }

    fn resolve(&self, mut i: usize) -> usize {
        while let Def::Alias(j) = self.tables[i].def {
            i = j;
        }
        i
    }

    /// The columns of table `i` (`None`: read by field name).
    fn columns(&self, i: usize) -> Option<Vec<Column>> {
        self.tables[self.resolve(i)].columns.clone()
    }

    /// Table `i`'s event-time column.
    fn rowtime(&self, i: usize) -> Option<Rowtime> {
        self.tables[self.resolve(i)].rowtime
    }

    /// Whether table `i` is a view (`CREATE VIEW`, `sql_query`).
    fn is_view(&self, i: usize) -> bool {
        matches!(self.tables[self.resolve(i)].def, Def::View { .. })
    }

    /// Table `i`'s name.
    fn table_name(&self, i: usize) -> String {
        self.tables[i].name.clone()
    }

    /// Whether table `i`'s rows are a changelog.
    fn updating(&self, i: usize) -> bool {
        self.tables[self.resolve(i)].updating
    }

    fn suggest_table(&self, name: &str) -> String {
        expr::suggest(
            name,
            self.tables
                .iter()
                .filter(|t| !t.name.starts_with("__"))
                .map(|t| t.name.as_str()),
        )
    }

    fn fresh(&mut self, span: Span) -> syn::Ident {
        self.next += 1;
        syn::Ident::new(&format!("__sql{}", self.next), span)
    }

    /// `let name = <tokens>;`, spanned at `span`.
    fn emit(&mut self, name: syn::Ident, tokens: TokenStream, span: Span) -> syn::Result<()> {
        let chain = parse_chain(syn::parse2(respan(tokens, span))?)?;
        self.out.push(FlowStmt::Let { name, chain });
        Ok(())
    }
}

/// The event time of a DDL table: its `WATERMARK FOR col AS col [- INTERVAL ..]`.
fn watermark(sql: &SqlText, columns: &[Column], w: &text::Watermark) -> syn::Result<Rowtime> {
    let Some(col) = columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(&w.column))
    else {
        return Err(sql.error(format!(
            "the watermark's column `{}` is not a column of the table{}",
            w.column,
            expr::suggest(&w.column, columns.iter().map(|c| c.name.as_str()))
        )));
    };
    if columns[col].ty.sql != SqlType::Timestamp {
        return Err(sql.error(format!(
            "the watermark's column `{}` is {}: event time is a TIMESTAMP(3) column",
            w.column,
            columns[col].ty.sql.name()
        )));
    }
    let is_col = |e: &ast::Expr| matches!(e, ast::Expr::Identifier(i) if i.value.eq_ignore_ascii_case(&w.column));
    let delay = match &w.expr {
        e if is_col(e) => Some(0),
        ast::Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::Minus,
            right,
        } if is_col(left) => text::interval_ms(right),
        _ => None,
    };
    let Some(delay) = delay else {
        return Err(sql.error(format!(
            "the watermark `{}` is not supported: use `{c}` (ascending) or `{c} - INTERVAL 'n' SECOND` (bounded out of orderness)",
            w.text,
            c = w.column
        )));
    };
    Ok(Rowtime {
        column: col,
        delay: Some(delay),
    })
}

/// `(__c0, __c1, ..)`.
fn pattern(n: usize) -> TokenStream {
    let vars = (0..n).map(|i| format_ident!("__c{}", i));
    quote!((#(#vars,)*))
}

/// `"a, b"` or `"a INT, b STRING NOT NULL"`: the columns of a DataStream's table, and whether
/// they have types (all or none). Typed columns are NOT NULL unless followed by `NULL`.
///
/// `ts.rowtime` makes `ts` the table's event time (Flink's legacy expression): a TIMESTAMP(3)
/// column (from milliseconds) holding each row's event time, as the stream's timestamps and
/// watermarks do.
fn column_list(text: &SqlText) -> syn::Result<(Vec<Column>, bool, Option<usize>)> {
    let mut cols: Vec<Column> = Vec::new();
    let mut typed = None;
    let mut rowtime = None;
    for part in text.text.split(',') {
        let mut words = part.split_whitespace();
        let Some(mut name) = words.next() else {
            return Err(text.error("an empty column name"));
        };
        if let Some(n) = name.strip_suffix(".rowtime") {
            if rowtime.is_some() {
                return Err(text.error("a table has one `.rowtime` column"));
            }
            rowtime = Some(cols.len());
            name = n;
        }
        if syn::parse_str::<syn::Ident>(name).is_err() {
            return Err(text.error(format!("`{name}` is not a column name")));
        }
        let rest: Vec<&str> = words.collect();
        let this_typed = !rest.is_empty();
        // The `.rowtime` column is a TIMESTAMP(3) with or without its type written.
        if rowtime != Some(cols.len()) {
            if typed.is_some_and(|t| t != this_typed) {
                return Err(text.error("give every column a type, or none"));
            }
            typed = Some(this_typed);
        }
        let ty = if this_typed {
            let mut rest = rest.join(" ");
            let mut nullable = false;
            let upper = rest.to_ascii_uppercase();
            if let Some(stripped) = upper.strip_suffix(" NOT NULL") {
                rest.truncate(stripped.len());
            } else if let Some(stripped) = upper.strip_suffix(" NULL") {
                rest.truncate(stripped.len());
                nullable = true;
            }
            let dt = sqlparser::parser::Parser::new(&sqlparser::dialect::GenericDialect {})
                .try_with_sql(&rest)
                .and_then(|mut p| p.parse_data_type())
                .map_err(|e| text.error(format!("column `{name}`: {e}")))?;
            Ty::new(
                SqlType::from_data_type(&dt)
                    .map_err(|m| text.error(format!("column `{name}`: {m}")))?,
                nullable,
            )
        } else if rowtime == Some(cols.len()) {
            Ty::new(SqlType::Timestamp, false)
        } else {
            Ty::new(SqlType::Unknown, false)
        };
        if rowtime == Some(cols.len()) && ty.sql != SqlType::Timestamp {
            return Err(text.error(format!(
                "the `.rowtime` column `{name}` is a TIMESTAMP(3), not {}",
                ty.sql.name()
            )));
        }
        if cols.iter().any(|c| c.name.eq_ignore_ascii_case(name)) {
            return Err(text.error(format!("column `{name}` is named twice")));
        }
        cols.push(Column {
            name: name.to_string(),
            ty,
        });
    }
    Ok((cols, typed.unwrap_or(false), rowtime))
}

fn object_name(sql: &SqlText, name: &ast::ObjectName) -> syn::Result<String> {
    match name.0.as_slice() {
        [part] => Ok(part
            .as_ident()
            .map(|i| i.value.clone())
            .unwrap_or_else(|| part.to_string())),
        _ => Err(sql.error_on(
            name,
            "catalogs and databases are not supported: name the table alone",
        )),
    }
}

/// `tokens` with every span set to `span` (the SQL literal's), so that rustc reports on the
/// literal what it finds in the code generated from it.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut t| {
            if let TokenTree::Group(g) = &t {
                let mut n = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                n.set_span(span);
                t = TokenTree::Group(n);
            } else {
                t.set_span(span);
            }
            t
        })
        .collect()
}
