//! A SQL string literal of the DSL: parsing it, and errors that point at the literal and quote
//! the part of the query they are about (a string literal has no finer spans on stable Rust).

use sqlparser::ast::{Expr, Spanned, Statement};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Location, Span as SqlSpan};
use std::fmt::Display;

/// The text of one SQL literal and where it is.
pub struct SqlText {
    pub text: String,
    pub lit: syn::LitStr,
}

impl SqlText {
    /// The literal `expr` (`execute_sql("...")`), or an error asking for one.
    pub fn from_expr(expr: &syn::Expr, what: &str) -> syn::Result<SqlText> {
        match expr {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(lit),
                ..
            }) => Ok(SqlText {
                text: lit.value(),
                lit: lit.clone(),
            }),
            other => Err(syn::Error::new_spanned(
                other,
                format!(
                    "{what} is a string literal: the query is planned when the program is built"
                ),
            )),
        }
    }

    pub fn span(&self) -> proc_macro2::Span {
        self.lit.span()
    }

    /// An error at the literal.
    pub fn error(&self, message: impl Display) -> syn::Error {
        syn::Error::new(self.span(), message)
    }

    /// An error at the literal about the part of the query at `at`, quoting it.
    pub fn error_at(&self, at: SqlSpan, message: impl Display) -> syn::Error {
        match self.snippet(at) {
            Some(part) => self.error(format!("{message}\n  in: {part}")),
            None => self.error(message),
        }
    }

    /// An error about `node` (an expression, a table name, ...), quoting it.
    pub fn error_on(&self, node: &impl Spanned, message: impl Display) -> syn::Error {
        self.error_at(node.span(), message)
    }

    /// The text of the query between two locations, on one line.
    pub fn snippet(&self, at: SqlSpan) -> Option<String> {
        let (start, end) = (self.offset(at.start)?, self.offset(at.end)?);
        let part = self.text.get(start..end.max(start))?;
        let part = part.split_whitespace().collect::<Vec<_>>().join(" ");
        (!part.is_empty()).then_some(part)
    }

    /// The byte offset of a (1-based line and column) location.
    fn offset(&self, loc: Location) -> Option<usize> {
        if loc.line == 0 {
            return None;
        }
        let mut line_start = 0;
        for _ in 1..loc.line {
            line_start += self.text[line_start..].find('\n')? + 1;
        }
        let line = &self.text[line_start..];
        let col = (loc.column as usize).saturating_sub(1);
        Some(line_start + line.char_indices().nth(col).map_or(line.len(), |(b, _)| b))
    }

    /// The statements of the literal.
    pub fn parse(&self) -> syn::Result<Vec<Statement>> {
        Parser::parse_sql(&GenericDialect {}, &self.text)
            .map_err(|e| self.error(format!("SQL syntax: {}", clean(&e.to_string()))))
    }

    /// The literal as one statement.
    pub fn parse_one(&self) -> syn::Result<Statement> {
        let mut stmts = self.parse()?;
        match stmts.len() {
            1 => Ok(stmts.remove(0)),
            0 => Err(self.error("the SQL literal holds no statement")),
            n => Err(self.error(format!(
                "the SQL literal holds {n} statements: give each its own `execute_sql(..)`"
            ))),
        }
    }

    /// The literal as one expression (a column list's types, a watermark).
    #[allow(dead_code)]
    pub fn parse_expr(&self) -> syn::Result<Expr> {
        Parser::new(&GenericDialect {})
            .try_with_sql(&self.text)
            .and_then(|mut p| p.parse_expr())
            .map_err(|e| self.error(format!("SQL syntax: {}", clean(&e.to_string()))))
    }
}

/// sqlparser's message without its `sql parser error: ` prefix.
fn clean(message: &str) -> String {
    message.trim_start_matches("sql parser error: ").to_string()
}
