//! SQL expressions: bound to a scope's columns and typed (errors quote the expression), then
//! generated as Rust over the columns of one row. NULL follows SQL: a nullable value is an
//! `Option`, operators and functions are NULL when an input is (`AND`/`OR` three-valued).

use super::text::SqlText;
use super::types::{SqlType, Ty};
use crate::diagnostic::did_you_mean;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use sqlparser::ast::{
    self, BinaryOperator as B, CastKind, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    UnaryOperator, Value,
};

/// The columns an expression may name.
pub struct Scope {
    pub cols: Vec<ScopeCol>,
    /// A DataStream's table without column names: any name is read as the row's field of that
    /// name, typed by rustc. Holds the table's name.
    pub open: Option<String>,
}

pub struct ScopeCol {
    /// The table (or alias) the column belongs to.
    pub table: String,
    pub name: String,
    pub ty: Ty,
    pub read: Read,
}

/// How generated code reads a column of the current row.
#[derive(Clone, Debug, PartialEq)]
pub enum Read {
    /// The local `__c<i>` (the row destructured).
    Var(usize),
    /// The field `row.<name>` (`row.0` for `f0`).
    Field(String),
}

/// A bound, typed expression.
#[derive(Clone, Debug)]
pub struct TExpr {
    pub kind: Kind,
    pub ty: Ty,
}

#[derive(Clone, Debug)]
pub enum Kind {
    Col(usize),
    Int(i128),
    Float(f64),
    Str(String),
    Bool(bool),
    Null,
    Neg(Box<TExpr>),
    Not(Box<TExpr>),
    Arith(Arith, Box<TExpr>, Box<TExpr>),
    Cmp(Cmp, Box<TExpr>, Box<TExpr>),
    And(Box<TExpr>, Box<TExpr>),
    Or(Box<TExpr>, Box<TExpr>),
    IsNull(Box<TExpr>, bool),
    Cast(Box<TExpr>, bool),
    Case(Vec<(TExpr, TExpr)>, Option<Box<TExpr>>),
    Coalesce(Vec<TExpr>),
    Like(Box<TExpr>, Box<TExpr>, Option<char>, bool),
    Func(Func, Vec<TExpr>),
    /// A timestamp plus (or minus) an interval of milliseconds.
    AddMillis(Box<TExpr>, i64),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// The scalar functions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Func {
    Upper,
    Lower,
    CharLength,
    Concat,
    Replace,
    Position,
    Substring,
    Trim(bool, bool),
    Abs,
    Mod,
    Power,
    Sqrt,
    Floor,
    Ceil,
    Round,
}

/// The functions a query may call, for "did you mean".
const FUNCTIONS: &[&str] = &[
    "UPPER",
    "LOWER",
    "CHAR_LENGTH",
    "CHARACTER_LENGTH",
    "CONCAT",
    "REPLACE",
    "ABS",
    "MOD",
    "POWER",
    "SQRT",
    "FLOOR",
    "CEIL",
    "CEILING",
    "ROUND",
    "COALESCE",
    "IFNULL",
    "SUBSTRING",
    "TRIM",
    "POSITION",
];

impl TExpr {
    fn new(kind: Kind, ty: Ty) -> TExpr {
        TExpr { kind, ty }
    }
    fn boxed(self) -> Box<TExpr> {
        Box::new(self)
    }
    fn is_literal(&self) -> bool {
        matches!(self.kind, Kind::Int(_) | Kind::Float(_))
    }
}

const fn t(sql: SqlType, nullable: bool) -> Ty {
    Ty::new(sql, nullable)
}

/// Binds expressions of one query to its scope.
pub struct Binder<'a> {
    pub sql: &'a SqlText,
    pub scope: &'a mut Scope,
    /// In a grouped query: the group keys and aggregate calls `scope` (the group's row) holds.
    pub group: Option<super::aggregate::Group>,
}

impl Binder<'_> {
    pub fn bind(&mut self, e: &Expr) -> syn::Result<TExpr> {
        if self.group.is_some() {
            if let Some(x) = self.grouped(e)? {
                return Ok(x);
            }
        }
        match e {
            Expr::Identifier(id) => self.column(None, id),
            Expr::CompoundIdentifier(ids) if ids.len() == 2 => self.column(Some(&ids[0]), &ids[1]),
            Expr::Nested(inner) => self.bind(inner),
            Expr::Value(v) => self.literal(e, &v.value),
            Expr::UnaryOp { op, expr } => {
                let x = self.bind(expr)?;
                match op {
                    UnaryOperator::Not => {
                        self.want_bool(e, &x)?;
                        let nullable = x.ty.nullable;
                        Ok(TExpr::new(
                            Kind::Not(x.boxed()),
                            t(SqlType::Boolean, nullable),
                        ))
                    }
                    UnaryOperator::Minus => {
                        self.want_numeric(e, &x)?;
                        let ty = x.ty;
                        Ok(match x.kind {
                            Kind::Int(i) => TExpr::new(Kind::Int(-i), ty),
                            Kind::Float(f) => TExpr::new(Kind::Float(-f), ty),
                            _ => TExpr::new(Kind::Neg(x.boxed()), ty),
                        })
                    }
                    UnaryOperator::Plus => {
                        self.want_numeric(e, &x)?;
                        Ok(x)
                    }
                    _ => Err(self.unsupported(e)),
                }
            }
            Expr::BinaryOp {
                left,
                op: op @ (B::Plus | B::Minus),
                right,
            } if matches!(**right, Expr::Interval(_)) => {
                let l = self.bind(left)?;
                self.want(
                    e,
                    &l,
                    l.ty.sql == SqlType::Timestamp,
                    "a TIMESTAMP(3) before the interval",
                )?;
                let Some(ms) = super::text::interval_ms(right) else {
                    return Err(self.sql.error_on(
                        right.as_ref(),
                        "an interval is `INTERVAL 'n' SECOND` (or MILLISECOND, MINUTE, HOUR, DAY)",
                    ));
                };
                let ms = if matches!(op, B::Minus) { -ms } else { ms };
                let ty = l.ty;
                Ok(TExpr::new(Kind::AddMillis(l.boxed(), ms), ty))
            }
            Expr::BinaryOp { left, op, right } => {
                let (l, r) = (self.bind(left)?, self.bind(right)?);
                self.binary(e, op, l, r)
            }
            Expr::IsNull(x) | Expr::IsNotNull(x) => {
                let x = self.bind(x)?;
                let negated = matches!(e, Expr::IsNotNull(_));
                Ok(TExpr::new(
                    Kind::IsNull(x.boxed(), negated),
                    t(SqlType::Boolean, false),
                ))
            }
            Expr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let x = self.bind(expr)?;
                let (low, high) = (self.bind(low)?, self.bind(high)?);
                let ge = self.binary(e, &B::GtEq, x.clone(), low)?;
                let le = self.binary(e, &B::LtEq, x, high)?;
                let both = self.logic(e, true, ge, le)?;
                Ok(self.maybe_not(*negated, both))
            }
            Expr::In {
                expr,
                target: ast::InTarget::List(list),
                negated,
                global: false,
            } => {
                let x = self.bind(expr)?;
                let mut any: Option<TExpr> = None;
                for item in list {
                    let item = self.bind(item)?;
                    let eq = self.binary(e, &B::Eq, x.clone(), item)?;
                    any = Some(match any {
                        None => eq,
                        Some(a) => self.logic(e, false, a, eq)?,
                    });
                }
                let any =
                    any.ok_or_else(|| self.sql.error_on(e, "`IN ()` needs at least one value"))?;
                Ok(self.maybe_not(*negated, any))
            }
            Expr::Like {
                negated,
                any: false,
                expr,
                pattern,
                escape_char,
            } => {
                let (x, p) = (self.bind(expr)?, self.bind(pattern)?);
                self.want_string(e, &x)?;
                self.want_string(e, &p)?;
                let escape = match escape_char.as_deref() {
                    None => None,
                    Some(Expr::Value(v)) => match &v.value {
                        Value::SingleQuotedString(s) if s.chars().count() == 1 => s.chars().next(),
                        _ => {
                            return Err(self
                                .sql
                                .error_on(e, "the `ESCAPE` of `LIKE` is one character in quotes"))
                        }
                    },
                    Some(_) => {
                        return Err(self
                            .sql
                            .error_on(e, "the `ESCAPE` of `LIKE` is one character in quotes"))
                    }
                };
                let nullable = x.ty.nullable || p.ty.nullable;
                Ok(TExpr::new(
                    Kind::Like(x.boxed(), p.boxed(), escape, *negated),
                    t(SqlType::Boolean, nullable),
                ))
            }
            Expr::Cast {
                kind,
                expr,
                data_type,
                format: None,
            } => {
                let x = self.bind(expr)?;
                let to = SqlType::from_data_type(data_type).map_err(|m| self.sql.error_on(e, m))?;
                let is_try = matches!(kind, CastKind::TryCast | CastKind::SafeCast);
                if x.ty.sql == SqlType::Unknown && to == SqlType::String {
                    // rustc checks the value has a SQL text.
                } else if x.ty.sql == SqlType::String
                    && !(to.is_numeric() || to == SqlType::Boolean || to == SqlType::String)
                {
                    return Err(self
                        .sql
                        .error_on(e, format!("cannot cast STRING to {}", to.name())));
                }
                if (to == SqlType::Timestamp || x.ty.sql == SqlType::Timestamp)
                    && to != x.ty.sql
                    && to != SqlType::String
                {
                    return Err(self.sql.error_on(
                        e,
                        format!("cannot cast {} to {}", x.ty.sql.name(), to.name()),
                    ));
                }
                let nullable = x.ty.nullable
                    || (is_try && x.ty.sql == SqlType::String && to != SqlType::String);
                Ok(TExpr::new(Kind::Cast(x.boxed(), is_try), t(to, nullable)))
            }
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let operand = operand.as_deref().map(|o| self.bind(o)).transpose()?;
                let mut whens = Vec::new();
                for w in conditions {
                    let cond = match &operand {
                        Some(o) => {
                            let v = self.bind(&w.condition)?;
                            self.binary(e, &B::Eq, o.clone(), v)?
                        }
                        None => self.bind(&w.condition)?,
                    };
                    self.want_bool(&w.condition, &cond)?;
                    whens.push((cond, self.bind(&w.result)?));
                }
                let otherwise = else_result.as_deref().map(|x| self.bind(x)).transpose()?;
                let mut results: Vec<&TExpr> = whens.iter().map(|w| &w.1).collect();
                results.extend(otherwise.iter());
                let mut ty = self.unify(e, &results)?;
                ty.nullable |= otherwise.is_none();
                Ok(TExpr::new(
                    Kind::Case(whens, otherwise.map(TExpr::boxed)),
                    ty,
                ))
            }
            Expr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let s = self.bind(expr)?;
                self.want_string(e, &s)?;
                let from = match substring_from {
                    Some(f) => self.bind(f)?,
                    None => TExpr::new(Kind::Int(1), t(SqlType::Int, false)),
                };
                self.want_integer(e, &from)?;
                let mut args = vec![s, from];
                if let Some(n) = substring_for {
                    let n = self.bind(n)?;
                    self.want_integer(e, &n)?;
                    args.push(n);
                }
                self.func(Func::Substring, args, SqlType::String)
            }
            Expr::Position { expr, r#in } => {
                let (needle, s) = (self.bind(expr)?, self.bind(r#in)?);
                self.want_string(e, &needle)?;
                self.want_string(e, &s)?;
                self.func(Func::Position, vec![needle, s], SqlType::Int)
            }
            Expr::Trim {
                trim_where,
                trim_what: None,
                expr,
                trim_characters: None,
            } => {
                let s = self.bind(expr)?;
                self.want_string(e, &s)?;
                let (lead, trail) = match trim_where {
                    None | Some(ast::TrimWhereField::Both) => (true, true),
                    Some(ast::TrimWhereField::Leading) => (true, false),
                    Some(ast::TrimWhereField::Trailing) => (false, true),
                };
                self.func(Func::Trim(lead, trail), vec![s], SqlType::String)
            }
            Expr::Ceil {
                expr,
                field: ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime),
            }
            | Expr::Floor {
                expr,
                field: ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime),
            } => {
                let x = self.bind(expr)?;
                self.want_numeric(e, &x)?;
                let f = if matches!(e, Expr::Ceil { .. }) {
                    Func::Ceil
                } else {
                    Func::Floor
                };
                let ty = x.ty.sql;
                self.func(f, vec![x], ty)
            }
            Expr::Function(f) => self.function(e, f),
            _ => Err(self.unsupported(e)),
        }
    }

    fn column(&mut self, table: Option<&ast::Ident>, id: &ast::Ident) -> syn::Result<TExpr> {
        let name = &id.value;
        let matches = |c: &ScopeCol| {
            c.name.eq_ignore_ascii_case(name)
                && table.is_none_or(|tb| c.table.eq_ignore_ascii_case(&tb.value))
        };
        let found: Vec<usize> = (0..self.scope.cols.len())
            .filter(|&i| matches(&self.scope.cols[i]))
            .collect();
        match found.as_slice() {
            [i] => return Ok(TExpr::new(Kind::Col(*i), self.scope.cols[*i].ty)),
            [_, _, ..] => {
                return Err(self.sql.error_at(
                    id.span,
                    format!("column `{name}` is ambiguous: name its table, `t.{name}`"),
                ))
            }
            [] => {}
        }
        if let Some(tb) = table {
            let known = self
                .scope
                .cols
                .iter()
                .any(|c| c.table.eq_ignore_ascii_case(&tb.value))
                || self
                    .scope
                    .open
                    .as_ref()
                    .is_some_and(|o| o.eq_ignore_ascii_case(&tb.value));
            if !known {
                let tables: Vec<&str> = self
                    .scope
                    .cols
                    .iter()
                    .map(|c| c.table.as_str())
                    .chain(self.scope.open.as_deref())
                    .collect();
                return Err(self.sql.error_at(
                    tb.span,
                    format!(
                        "unknown table `{}` in this query{}",
                        tb.value,
                        suggest(&tb.value, tables)
                    ),
                ));
            }
        }
        if let Some(open) = &self.scope.open {
            let field = match name.strip_prefix('f').and_then(|n| n.parse::<usize>().ok()) {
                Some(n) => n.to_string(),
                None if syn::parse_str::<syn::Ident>(name).is_ok() => name.clone(),
                None => {
                    return Err(self.sql.error_at(
                        id.span,
                        format!("`{name}` is not a field name of a Rust row"),
                    ))
                }
            };
            self.scope.cols.push(ScopeCol {
                table: open.clone(),
                name: name.clone(),
                ty: t(SqlType::Unknown, false),
                read: Read::Field(field),
            });
            return Ok(TExpr::new(
                Kind::Col(self.scope.cols.len() - 1),
                t(SqlType::Unknown, false),
            ));
        }
        let names: Vec<&str> = self.scope.cols.iter().map(|c| c.name.as_str()).collect();
        Err(self.sql.error_at(
            id.span,
            format!("unknown column `{name}`{}", suggest(name, names)),
        ))
    }

    fn literal(&self, e: &Expr, v: &Value) -> syn::Result<TExpr> {
        Ok(match v {
            Value::Number(n, _) => {
                if let Ok(i) = n.parse::<i128>() {
                    let sql = if i32::try_from(i).is_ok() {
                        SqlType::Int
                    } else {
                        SqlType::BigInt
                    };
                    if i64::try_from(i).is_err() {
                        return Err(self.sql.error_on(e, "the number does not fit a BIGINT"));
                    }
                    TExpr::new(Kind::Int(i), t(sql, false))
                } else {
                    let f = n
                        .parse::<f64>()
                        .map_err(|_| self.sql.error_on(e, "not a number"))?;
                    TExpr::new(Kind::Float(f), t(SqlType::Double, false))
                }
            }
            Value::SingleQuotedString(s) => {
                TExpr::new(Kind::Str(s.clone()), t(SqlType::String, false))
            }
            Value::Boolean(b) => TExpr::new(Kind::Bool(*b), t(SqlType::Boolean, false)),
            Value::Null => TExpr::new(Kind::Null, t(SqlType::Unknown, true)),
            _ => return Err(self.unsupported(e)),
        })
    }

    fn binary(&self, e: &Expr, op: &B, l: TExpr, r: TExpr) -> syn::Result<TExpr> {
        let arith = match op {
            B::Plus => Some(Arith::Add),
            B::Minus => Some(Arith::Sub),
            B::Multiply => Some(Arith::Mul),
            B::Divide => Some(Arith::Div),
            B::Modulo => Some(Arith::Rem),
            _ => None,
        };
        if let Some(a) = arith {
            self.want_numeric(e, &l)?;
            self.want_numeric(e, &r)?;
            let (l, r, sql) = self.numeric_pair(l, r);
            let nullable = l.ty.nullable || r.ty.nullable;
            return Ok(TExpr::new(
                Kind::Arith(a, l.boxed(), r.boxed()),
                t(sql, nullable),
            ));
        }
        let cmp = match op {
            B::Eq => Some(Cmp::Eq),
            B::NotEq => Some(Cmp::Ne),
            B::Lt => Some(Cmp::Lt),
            B::LtEq => Some(Cmp::Le),
            B::Gt => Some(Cmp::Gt),
            B::GtEq => Some(Cmp::Ge),
            _ => None,
        };
        if let Some(c) = cmp {
            let (ls, rs) = (l.ty.sql, r.ty.sql);
            let (l, r) = if ls.is_numeric() && rs.is_numeric()
                || ls == SqlType::Unknown
                || rs == SqlType::Unknown
            {
                let (l, r, _) = self.numeric_pair(l, r);
                (l, r)
            } else if ls == rs {
                (l, r)
            } else {
                return Err(self.sql.error_on(
                    e,
                    format!("cannot compare {} with {}", ls.name(), rs.name()),
                ));
            };
            let nullable = l.ty.nullable || r.ty.nullable;
            return Ok(TExpr::new(
                Kind::Cmp(c, l.boxed(), r.boxed()),
                t(SqlType::Boolean, nullable),
            ));
        }
        match op {
            B::And => self.logic(e, true, l, r),
            B::Or => self.logic(e, false, l, r),
            B::StringConcat => {
                self.want_string(e, &l)?;
                self.want_string(e, &r)?;
                self.func(Func::Concat, vec![l, r], SqlType::String)
            }
            _ => Err(self.unsupported(e)),
        }
    }

    /// Both sides of a numeric operator in their wider type (a literal takes the other side's
    /// type, and stays untyped next to a column rustc types).
    fn numeric_pair(&self, l: TExpr, r: TExpr) -> (TExpr, TExpr, SqlType) {
        let (ls, rs) = (l.ty.sql, r.ty.sql);
        if ls == SqlType::Unknown || rs == SqlType::Unknown {
            let untyped = |mut x: TExpr| {
                if x.is_literal() {
                    x.ty.sql = SqlType::Unknown;
                }
                x
            };
            return (untyped(l), untyped(r), SqlType::Unknown);
        }
        if !ls.is_numeric() || !rs.is_numeric() {
            return (l, r, ls);
        }
        let retype = |mut lit: TExpr, to: SqlType| {
            let fits = match lit.kind {
                Kind::Int(i) => match to {
                    SqlType::TinyInt => i8::try_from(i).is_ok(),
                    SqlType::SmallInt => i16::try_from(i).is_ok(),
                    SqlType::Int => i32::try_from(i).is_ok(),
                    _ => true,
                },
                Kind::Float(_) => !to.is_integer(),
                _ => false,
            };
            if fits {
                lit.ty.sql = to;
            }
            lit
        };
        let (l, r) = match (l.is_literal(), r.is_literal()) {
            (true, false) => (retype(l, rs), r),
            (false, true) => {
                let r = retype(r, ls);
                (l, r)
            }
            _ => (l, r),
        };
        let sql = SqlType::wider(l.ty.sql, r.ty.sql);
        (l, r, sql)
    }

    fn logic(&self, e: &Expr, and: bool, l: TExpr, r: TExpr) -> syn::Result<TExpr> {
        self.want_bool(e, &l)?;
        self.want_bool(e, &r)?;
        let nullable = l.ty.nullable || r.ty.nullable;
        let kind = if and {
            Kind::And(l.boxed(), r.boxed())
        } else {
            Kind::Or(l.boxed(), r.boxed())
        };
        Ok(TExpr::new(kind, t(SqlType::Boolean, nullable)))
    }

    fn maybe_not(&self, negated: bool, x: TExpr) -> TExpr {
        if negated {
            let ty = x.ty;
            TExpr::new(Kind::Not(x.boxed()), ty)
        } else {
            x
        }
    }

    /// The common type of a `CASE`'s or `COALESCE`'s results.
    fn unify(&self, e: &Expr, xs: &[&TExpr]) -> syn::Result<Ty> {
        let mut sql: Option<SqlType> = None;
        let mut nullable = false;
        for x in xs {
            nullable |= x.ty.nullable;
            if matches!(x.kind, Kind::Null) {
                continue;
            }
            sql = Some(match sql {
                None => x.ty.sql,
                Some(s) if s == x.ty.sql => s,
                Some(s) if s == SqlType::Unknown || x.ty.sql == SqlType::Unknown => {
                    SqlType::Unknown
                }
                Some(s) if s.is_numeric() && x.ty.sql.is_numeric() => SqlType::wider(s, x.ty.sql),
                Some(s) => {
                    return Err(self.sql.error_on(
                        e,
                        format!(
                            "the results are of different types: {} and {}",
                            s.name(),
                            x.ty.sql.name()
                        ),
                    ))
                }
            });
        }
        let sql = sql.ok_or_else(|| {
            self.sql
                .error_on(e, "every result is NULL: CAST one of them to a type")
        })?;
        Ok(t(sql, nullable))
    }

    fn func(&self, f: Func, args: Vec<TExpr>, sql: SqlType) -> syn::Result<TExpr> {
        let nullable = args.iter().any(|a| a.ty.nullable);
        Ok(TExpr::new(Kind::Func(f, args), t(sql, nullable)))
    }

    fn function(&mut self, e: &Expr, f: &ast::Function) -> syn::Result<TExpr> {
        let name = f.name.to_string().to_ascii_uppercase();
        if super::aggregate::AGGREGATES.contains(&name.as_str()) {
            return Err(self.sql.error_on(e, format!("`{name}` is an aggregate: it goes in the SELECT list or HAVING of a query, not here")));
        }
        if f.over.is_some() || f.filter.is_some() {
            return Err(self.unsupported(e));
        }
        let mut args = Vec::new();
        match &f.args {
            FunctionArguments::List(list) => {
                if list.duplicate_treatment.is_some() {
                    return Err(self.unsupported(e));
                }
                for a in &list.args {
                    match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => args.push(self.bind(x)?),
                        _ => return Err(self.unsupported(e)),
                    }
                }
            }
            FunctionArguments::None => {}
            FunctionArguments::Subquery(_) => return Err(self.unsupported(e)),
        }
        let arity = |n: usize| -> syn::Result<()> {
            if args.len() == n {
                Ok(())
            } else {
                Err(self.sql.error_on(
                    e,
                    format!(
                        "`{name}` takes {n} argument{}",
                        if n == 1 { "" } else { "s" }
                    ),
                ))
            }
        };
        match name.as_str() {
            "UPPER" | "LOWER" | "CHAR_LENGTH" | "CHARACTER_LENGTH" => {
                arity(1)?;
                self.want_string(e, &args[0])?;
                let (func, sql) = match name.as_str() {
                    "UPPER" => (Func::Upper, SqlType::String),
                    "LOWER" => (Func::Lower, SqlType::String),
                    _ => (Func::CharLength, SqlType::Int),
                };
                self.func(func, args, sql)
            }
            "CONCAT" => {
                if args.is_empty() {
                    return Err(self.sql.error_on(e, "`CONCAT` takes at least one argument"));
                }
                for a in &args {
                    self.want_string(e, a)?;
                }
                self.func(Func::Concat, args, SqlType::String)
            }
            "REPLACE" => {
                arity(3)?;
                for a in &args {
                    self.want_string(e, a)?;
                }
                self.func(Func::Replace, args, SqlType::String)
            }
            "ABS" | "FLOOR" | "CEIL" | "CEILING" | "ROUND" => {
                arity(1)?;
                self.want_numeric(e, &args[0])?;
                let func = match name.as_str() {
                    "ABS" => Func::Abs,
                    "FLOOR" => Func::Floor,
                    "ROUND" => Func::Round,
                    _ => Func::Ceil,
                };
                let sql = args[0].ty.sql;
                self.func(func, args, sql)
            }
            "SQRT" => {
                arity(1)?;
                self.want_numeric(e, &args[0])?;
                self.func(Func::Sqrt, args, SqlType::Double)
            }
            "POWER" => {
                arity(2)?;
                self.want_numeric(e, &args[0])?;
                self.want_numeric(e, &args[1])?;
                self.func(Func::Power, args, SqlType::Double)
            }
            "MOD" => {
                arity(2)?;
                self.want_integer(e, &args[0])?;
                self.want_integer(e, &args[1])?;
                let (l, r) = (args.remove(0), args.remove(0));
                let (l, r, sql) = self.numeric_pair(l, r);
                self.func(Func::Mod, vec![l, r], sql)
            }
            "COALESCE" | "IFNULL" => {
                if args.is_empty() {
                    return Err(self
                        .sql
                        .error_on(e, format!("`{name}` takes at least one argument")));
                }
                let refs: Vec<&TExpr> = args.iter().collect();
                let mut ty = self.unify(e, &refs)?;
                ty.nullable = args.iter().all(|a| a.ty.nullable);
                Ok(TExpr::new(Kind::Coalesce(args), ty))
            }
            _ => Err(self.sql.error_on(
                e,
                format!(
                    "unknown function `{name}`{}",
                    suggest(&name, FUNCTIONS.iter().copied())
                ),
            )),
        }
    }

    fn want(&self, e: &Expr, x: &TExpr, ok: bool, what: &str) -> syn::Result<()> {
        if ok || x.ty.sql == SqlType::Unknown {
            Ok(())
        } else {
            Err(self
                .sql
                .error_on(e, format!("expected {what}, found {}", x.ty.sql.name())))
        }
    }
    fn want_bool(&self, e: &Expr, x: &TExpr) -> syn::Result<()> {
        self.want(e, x, x.ty.sql == SqlType::Boolean, "a BOOLEAN")
    }
    fn want_numeric(&self, e: &Expr, x: &TExpr) -> syn::Result<()> {
        self.want(e, x, x.ty.sql.is_numeric(), "a number")
    }
    fn want_integer(&self, e: &Expr, x: &TExpr) -> syn::Result<()> {
        self.want(e, x, x.ty.sql.is_integer(), "an integer")
    }
    fn want_string(&self, e: &Expr, x: &TExpr) -> syn::Result<()> {
        self.want(e, x, x.ty.sql == SqlType::String, "a STRING")
    }

    fn unsupported(&self, e: &Expr) -> syn::Error {
        self.sql.error_on(e, "this expression is not supported yet (supported: columns, literals, arithmetic, comparisons, AND/OR/NOT, IS [NOT] NULL, BETWEEN, IN (..), LIKE, CAST, CASE, COALESCE, string and math functions)")
    }
}

/// `: did you mean `x`?` when a candidate is close to `word`.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let lower: Vec<String> = candidates.iter().map(|c| c.to_ascii_lowercase()).collect();
    match did_you_mean(&word.to_ascii_lowercase(), lower.iter().map(String::as_str)) {
        Some(m) => {
            let i = lower.iter().position(|l| l == m).unwrap_or(0);
            format!(": did you mean `{}`?", candidates[i])
        }
        None if candidates.is_empty() => String::new(),
        None => format!(" (there are: {})", candidates.join(", ")),
    }
}

/// Generates the Rust of bound expressions over one row's columns.
pub struct Gen<'a> {
    pub scope: &'a Scope,
    /// How often each column is read in what is generated: a column read once is moved, a
    /// column read more often is cloned where it is taken whole.
    pub reads: Vec<usize>,
    /// The row's columns are references (`filter`'s `&row` destructured): read through `*`.
    pub by_ref: bool,
}

impl<'a> Gen<'a> {
    /// A generator of conditions on a borrowed row (in `filter`): columns are never taken.
    pub fn borrowed(scope: &'a Scope) -> Gen<'a> {
        Gen {
            scope,
            reads: vec![2; scope.cols.len()],
            by_ref: true,
        }
    }

    /// A generator for `exprs`, which are all evaluated on one row and may take its columns
    /// (`consume`; otherwise every column taken whole is cloned, as in a `WHERE` evaluated
    /// before the projection).
    pub fn new(scope: &'a Scope, exprs: &[&TExpr], consume: bool) -> Gen<'a> {
        let mut reads = vec![if consume { 0 } else { 2 }; scope.cols.len()];
        for e in exprs {
            count(e, &mut reads);
        }
        Gen {
            scope,
            reads,
            by_ref: false,
        }
    }

    fn col_place(&self, i: usize) -> TokenStream {
        match &self.scope.cols[i].read {
            Read::Var(v) => {
                let v = format_ident!("__c{}", v);
                if self.by_ref {
                    quote!((*#v))
                } else {
                    quote!(#v)
                }
            }
            Read::Field(f) => match f.parse::<usize>() {
                Ok(n) => {
                    let n = syn::Index::from(n);
                    quote!(row.#n)
                }
                Err(_) => {
                    let f = format_ident!("{}", f);
                    quote!(row.#f)
                }
            },
        }
    }

    /// The value, owned.
    pub fn value(&self, e: &TExpr) -> TokenStream {
        match &e.kind {
            Kind::Col(i) => {
                let place = self.col_place(*i);
                if self.reads[*i] > 1 {
                    quote!(::core::clone::Clone::clone(&#place))
                } else {
                    place
                }
            }
            Kind::Str(s) => quote!(::std::string::String::from(#s)),
            _ => self.borrow_raw(e),
        }
    }

    /// The value as operators read it: strings as `&str` (NULL-able: `Option<&str>`), the rest
    /// as it is.
    pub fn borrow(&self, e: &TExpr) -> TokenStream {
        match &e.kind {
            Kind::Col(i) => {
                let place = self.col_place(*i);
                let ty = self.scope.cols[*i].ty;
                match (ty.sql, ty.nullable) {
                    (SqlType::Unknown, _) => quote!(::flow::table::SqlRef::sql_ref(&#place)),
                    (SqlType::String, false) => quote!(#place.as_str()),
                    (SqlType::String, true) => quote!(#place.as_deref()),
                    _ => place,
                }
            }
            Kind::Str(s) => quote!(#s),
            _ if e.ty.sql == SqlType::String => {
                let owned = self.borrow_raw(e);
                if e.ty.nullable {
                    quote!((#owned).as_deref())
                } else {
                    quote!((#owned).as_str())
                }
            }
            _ => self.borrow_raw(e),
        }
    }

    /// Every kind but columns and string literals; strings come out owned.
    fn borrow_raw(&self, e: &TExpr) -> TokenStream {
        let ty = e.ty;
        match &e.kind {
            Kind::Col(_) | Kind::Str(_) => self.value(e),
            Kind::Int(i) => int_literal(*i, ty.sql),
            Kind::Float(f) => match ty.sql {
                SqlType::Float => {
                    let v = *f as f32;
                    quote!(#v)
                }
                SqlType::Unknown => {
                    let lit = proc_macro2::Literal::f64_unsuffixed(*f);
                    quote!(#lit)
                }
                _ => {
                    let v = *f;
                    quote!(#v)
                }
            },
            Kind::Bool(b) => quote!(#b),
            Kind::Null => quote!(::core::option::Option::None),
            Kind::Neg(x) => {
                let int = x.ty.sql.is_integer();
                self.lift(&[x], false, |v| {
                    if int {
                        quote!(#(#v)*.wrapping_neg())
                    } else {
                        quote!(-#(#v)*)
                    }
                })
            }
            Kind::Not(x) => self.lift(&[x], false, |v| quote!(!#(#v)*)),
            Kind::Arith(op, l, r) => {
                let sql = ty.sql;
                let (cl, cr) = (cast_to(l.ty.sql, sql), cast_to(r.ty.sql, sql));
                self.lift(&[l, r], false, |v| {
                    let (a, b) = (&v[0], &v[1]);
                    let (a, b) = (quote!((#a #cl)), quote!((#b #cr)));
                    if sql.is_integer() {
                        let m = format_ident!(
                            "{}",
                            match op {
                                Arith::Add => "wrapping_add",
                                Arith::Sub => "wrapping_sub",
                                Arith::Mul => "wrapping_mul",
                                Arith::Div => "wrapping_div",
                                Arith::Rem => "wrapping_rem",
                            }
                        );
                        quote!(#a.#m(#b))
                    } else {
                        let o = match op {
                            Arith::Add => quote!(+),
                            Arith::Sub => quote!(-),
                            Arith::Mul => quote!(*),
                            Arith::Div => quote!(/),
                            Arith::Rem => quote!(%),
                        };
                        quote!(#a #o #b)
                    }
                })
            }
            Kind::Cmp(op, l, r) => {
                let sql = SqlType::wider(l.ty.sql, r.ty.sql);
                let numeric = l.ty.sql.is_numeric() && r.ty.sql.is_numeric();
                let (cl, cr) = if numeric {
                    (cast_to(l.ty.sql, sql), cast_to(r.ty.sql, sql))
                } else {
                    (quote!(), quote!())
                };
                let o = match op {
                    Cmp::Eq => quote!(==),
                    Cmp::Ne => quote!(!=),
                    Cmp::Lt => quote!(<),
                    Cmp::Le => quote!(<=),
                    Cmp::Gt => quote!(>),
                    Cmp::Ge => quote!(>=),
                };
                // An untyped literal next to a column rustc types takes its type (`c > 0` on
                // an `f64` column).
                let (cl, cr) = match (
                    l.is_literal() && l.ty.sql == SqlType::Unknown,
                    r.is_literal() && r.ty.sql == SqlType::Unknown,
                ) {
                    (true, _) => (quote!(as _), cr),
                    (_, true) => (cl, quote!(as _)),
                    _ => (cl, cr),
                };
                self.lift(&[l, r], false, |v| {
                    let (a, b) = (&v[0], &v[1]);
                    quote!((#a #cl) #o (#b #cr))
                })
            }
            Kind::And(l, r) | Kind::Or(l, r) => {
                let and = matches!(e.kind, Kind::And(..));
                if !ty.nullable {
                    let (a, b) = (self.borrow(l), self.borrow(r));
                    return if and {
                        quote!((#a && #b))
                    } else {
                        quote!((#a || #b))
                    };
                }
                let (a, b) = (self.option(l), self.option(r));
                let f = if and { quote!(and) } else { quote!(or) };
                quote!(::flow::table::func::#f(#a, #b))
            }
            Kind::IsNull(x, negated) => {
                let test = if let (SqlType::Unknown, Kind::Col(i)) = (x.ty.sql, &x.kind) {
                    let place = self.col_place(*i);
                    quote!(::flow::table::is_null(&#place))
                } else if x.ty.nullable {
                    let b = self.borrow(x);
                    quote!((#b).is_none())
                } else {
                    quote!(false)
                };
                if *negated {
                    quote!(!#test)
                } else {
                    test
                }
            }
            Kind::Cast(x, is_try) => {
                let (from, to) = (x.ty.sql, ty.sql);
                let rust = to.rust();
                let name = to.name();
                if from == to && from != SqlType::Unknown {
                    return self.value(x);
                }
                let body_nullable = *is_try && from == SqlType::String && to != SqlType::String;
                self.lift(&[x], body_nullable, |v| {
                    let v = &v[0];
                    match (from, to) {
                        (_, SqlType::String) => quote!(::flow::table::to_sql_string(&#v)),
                        (SqlType::String, _) if *is_try => {
                            quote!(::flow::table::func::try_parse::<#rust>(#v))
                        }
                        (SqlType::String, _) => {
                            quote!(::flow::table::func::parse::<#rust>(#v, #name))
                        }
                        (SqlType::Boolean, SqlType::Float | SqlType::Double) => {
                            quote!(((#v as i32) as #rust))
                        }
                        (SqlType::Unknown, SqlType::Boolean) => {
                            quote!((#v != ::core::default::Default::default()))
                        }
                        (_, SqlType::Boolean) => {
                            let fr = from.rust();
                            quote!((#v != (0 as #fr)))
                        }
                        _ => quote!((#v as #rust)),
                    }
                })
            }
            Kind::Case(whens, otherwise) => {
                let mut out = match otherwise {
                    Some(x) => self.convert(x, ty),
                    None => quote!(::core::option::Option::None),
                };
                for (cond, result) in whens.iter().rev() {
                    let c = self.condition(cond);
                    let r = self.convert(result, ty);
                    out = quote!(if #c { #r } else { #out });
                }
                out
            }
            Kind::Coalesce(args) => {
                let (last, init) = args.split_last().expect("checked: at least one");
                let mut out = self.convert(last, ty);
                for a in init.iter().rev() {
                    if !a.ty.nullable {
                        out = self.convert(a, ty);
                        continue;
                    }
                    let v = self.value(a);
                    let inner = if ty.nullable {
                        quote!(::core::option::Option::Some(__v))
                    } else {
                        quote!(__v)
                    };
                    let cast = cast_to(a.ty.sql, ty.sql);
                    let inner = if cast.is_empty() {
                        inner
                    } else if ty.nullable {
                        quote!(::core::option::Option::Some(__v #cast))
                    } else {
                        quote!((__v #cast))
                    };
                    out = quote!(match #v { ::core::option::Option::Some(__v) => #inner, ::core::option::Option::None => #out });
                }
                out
            }
            Kind::AddMillis(x, ms) => self.lift(&[x], false, |v| {
                let v = &v[0];
                quote!(::flow::table::SqlTimestamp(#v.0 + #ms))
            }),
            Kind::Like(x, p, escape, negated) => {
                let esc = match escape {
                    Some(c) => quote!(::core::option::Option::Some(#c)),
                    None => quote!(::core::option::Option::None),
                };
                let not = if *negated { quote!(!) } else { quote!() };
                self.lift(&[x, p], false, |v| {
                    let (a, b) = (&v[0], &v[1]);
                    quote!(#not ::flow::table::func::like(#a, #b, #esc))
                })
            }
            Kind::Func(f, args) => {
                let refs: Vec<&TExpr> = args.iter().collect();
                let sql = ty.sql;
                let arg0 = args[0].ty.sql;
                self.lift(&refs, false, |v| match f {
                    Func::Upper => quote!(::flow::table::func::upper(#(#v)*)),
                    Func::Lower => quote!(::flow::table::func::lower(#(#v)*)),
                    Func::CharLength => quote!(::flow::table::func::char_length(#(#v)*)),
                    Func::Concat => quote!(::flow::table::func::concat(&[#(#v),*])),
                    Func::Replace => quote!(::flow::table::func::replace(#(#v),*)),
                    Func::Position => quote!(::flow::table::func::position(#(#v),*)),
                    Func::Substring => {
                        let (s, from) = (&v[0], &v[1]);
                        match v.get(2) {
                            Some(n) => quote!(::flow::table::func::substring(#s, (#from) as i64, ::core::option::Option::Some((#n) as i64))),
                            None => quote!(::flow::table::func::substring(#s, (#from) as i64, ::core::option::Option::None)),
                        }
                    }
                    Func::Trim(l, r) => quote!(::flow::table::func::trim(#(#v)*, #l, #r)),
                    Func::Abs if sql.is_integer() => quote!((#(#v)*).wrapping_abs()),
                    Func::Abs => quote!((#(#v)*).abs()),
                    Func::Floor | Func::Ceil | Func::Round if arg0.is_integer() => quote!(#(#v)*),
                    Func::Floor => quote!((#(#v)*).floor()),
                    Func::Ceil => quote!((#(#v)*).ceil()),
                    Func::Round => quote!((#(#v)*).round()),
                    Func::Sqrt => quote!(((#(#v)*) as f64).sqrt()),
                    Func::Power => {
                        let (a, b) = (&v[0], &v[1]);
                        quote!(((#a) as f64).powf((#b) as f64))
                    }
                    Func::Mod => {
                        let (a, b) = (&v[0], &v[1]);
                        let (ca, cb) = (cast_to(args[0].ty.sql, sql), cast_to(args[1].ty.sql, sql));
                        quote!((#a #ca).wrapping_rem(#b #cb))
                    }
                })
            }
        }
    }

    /// `e` as a `bool` condition: NULL is not true.
    pub fn condition(&self, e: &TExpr) -> TokenStream {
        let b = self.borrow(e);
        if e.ty.nullable {
            quote!((#b == ::core::option::Option::Some(true)))
        } else {
            b
        }
    }

    /// `e` as an `Option` of its borrowed form.
    fn option(&self, e: &TExpr) -> TokenStream {
        let b = self.borrow(e);
        if e.ty.nullable {
            b
        } else {
            quote!(::core::option::Option::Some(#b))
        }
    }

    /// `e`'s value as a value of type `to` (wider number, nullable).
    pub fn convert(&self, e: &TExpr, to: Ty) -> TokenStream {
        if matches!(e.kind, Kind::Null) {
            return quote!(::core::option::Option::None);
        }
        let v = self.value(e);
        let cast = if e.ty.sql.is_numeric() && to.sql.is_numeric() {
            cast_to(e.ty.sql, to.sql)
        } else {
            quote!()
        };
        match (e.ty.nullable, to.nullable) {
            (false, true) if cast.is_empty() => quote!(::core::option::Option::Some(#v)),
            (false, true) => quote!(::core::option::Option::Some((#v #cast))),
            (true, true) if !cast.is_empty() => quote!((#v).map(|__v| __v #cast)),
            (false, false) if !cast.is_empty() => quote!((#v #cast)),
            _ => v,
        }
    }

    /// Strict evaluation: `body` over the borrowed values of `args`, NULL when any is NULL.
    /// `body_nullable`: the body itself gives an `Option`.
    fn lift(
        &self,
        args: &[&TExpr],
        body_nullable: bool,
        body: impl FnOnce(&[TokenStream]) -> TokenStream,
    ) -> TokenStream {
        let vals: Vec<TokenStream> = args.iter().map(|a| self.borrow(a)).collect();
        let vars: Vec<syn::Ident> = (0..args.len()).map(|i| format_ident!("__v{}", i)).collect();
        let var_tokens: Vec<TokenStream> = vars.iter().map(|v| quote!(#v)).collect();
        let b = body(&var_tokens);
        if !args.iter().any(|a| a.ty.nullable) {
            return quote!(match (#(#vals,)*) { (#(#vars,)*) => #b });
        }
        let pats = args.iter().zip(&vars).map(|(a, v)| {
            if a.ty.nullable {
                quote!(::core::option::Option::Some(#v))
            } else {
                quote!(#v)
            }
        });
        let some = if body_nullable {
            b
        } else {
            quote!(::core::option::Option::Some(#b))
        };
        quote!(match (#(#vals,)*) { (#(#pats,)*) => #some, _ => ::core::option::Option::None })
    }
}

/// ` as T` when a number of type `from` is used as one of type `to`.
fn cast_to(from: SqlType, to: SqlType) -> TokenStream {
    if from == to
        || from == SqlType::Unknown
        || to == SqlType::Unknown
        || !from.is_numeric()
        || !to.is_numeric()
    {
        return quote!();
    }
    let r = to.rust();
    quote!(as #r)
}

fn int_literal(i: i128, sql: SqlType) -> TokenStream {
    let lit = match sql {
        SqlType::TinyInt => proc_macro2::Literal::i8_suffixed(i as i8),
        SqlType::SmallInt => proc_macro2::Literal::i16_suffixed(i as i16),
        SqlType::Int => proc_macro2::Literal::i32_suffixed(i as i32),
        SqlType::BigInt => proc_macro2::Literal::i64_suffixed(i as i64),
        SqlType::Float => proc_macro2::Literal::f32_suffixed(i as f32),
        SqlType::Double => proc_macro2::Literal::f64_suffixed(i as f64),
        _ => proc_macro2::Literal::i128_unsuffixed(i),
    };
    if i < 0 {
        // `-1i32` is two tokens; keep it one expression.
        quote!((#lit))
    } else {
        quote!(#lit)
    }
}

/// Counts the column reads of `e`.
pub fn count(e: &TExpr, reads: &mut [usize]) {
    match &e.kind {
        Kind::Col(i) => reads[*i] += 1,
        Kind::Int(_) | Kind::Float(_) | Kind::Str(_) | Kind::Bool(_) | Kind::Null => {}
        Kind::Neg(x)
        | Kind::Not(x)
        | Kind::IsNull(x, _)
        | Kind::Cast(x, _)
        | Kind::AddMillis(x, _) => count(x, reads),
        Kind::Arith(_, l, r)
        | Kind::Cmp(_, l, r)
        | Kind::And(l, r)
        | Kind::Or(l, r)
        | Kind::Like(l, r, _, _) => {
            count(l, reads);
            count(r, reads);
        }
        Kind::Case(whens, otherwise) => {
            for (c, r) in whens {
                count(c, reads);
                count(r, reads);
            }
            if let Some(o) = otherwise {
                count(o, reads);
            }
        }
        Kind::Coalesce(xs) | Kind::Func(_, xs) => xs.iter().for_each(|x| count(x, reads)),
    }
}
