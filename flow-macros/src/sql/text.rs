//! A SQL string literal of the DSL: parsing it, and errors that point at the literal and quote
//! the part of the query they are about (a string literal has no finer spans on stable Rust).

use sqlparser::ast::{self, Expr, Spanned, Statement};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Location, Span as SqlSpan, Token, TokenWithSpan, Tokenizer};
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
        let (text, _) = self.flink()?;
        Parser::parse_sql(&GenericDialect {}, &text)
            .map_err(|e| self.error(format!("SQL syntax: {}", clean(&e.to_string()))))
    }

    /// The `WATERMARK FOR col AS expr` of a `CREATE TABLE`.
    pub fn watermark(&self) -> syn::Result<Option<Watermark>> {
        Ok(self.flink()?.1)
    }

    /// The text with Flink's syntax that the generic dialect does not read blanked out (the
    /// positions of everything else kept, so that errors still quote the query): the `TABLE`
    /// keyword of a window function's table argument (`TUMBLE(TABLE t, ..)`), and the
    /// `WATERMARK FOR` clause of a `CREATE TABLE`, which comes back parsed.
    fn flink(&self) -> syn::Result<(String, Option<Watermark>)> {
        let tokens = Tokenizer::new(&GenericDialect {}, &self.text)
            .tokenize_with_location()
            .map_err(|e| self.error(format!("SQL syntax: {e}")))?;
        let sig: Vec<&TokenWithSpan> = tokens
            .iter()
            .filter(|t| !matches!(t.token, Token::Whitespace(_)))
            .collect();
        let word = |t: &TokenWithSpan, w: &str| matches!(&t.token, Token::Word(x) if x.value.eq_ignore_ascii_case(w) && x.quote_style.is_none());
        let mut bytes = self.text.clone().into_bytes();
        let mut blank = |from: Location, to: Location| {
            if let (Some(a), Some(b)) = (self.offset(from), self.offset(to)) {
                for c in &mut bytes[a..b] {
                    if *c != b'\n' {
                        *c = b' ';
                    }
                }
            }
        };
        for i in 2..sig.len() {
            let window = ["TUMBLE", "HOP", "SESSION", "CUMULATE"]
                .iter()
                .any(|w| word(sig[i - 2], w));
            if window && sig[i - 1].token == Token::LParen && word(sig[i], "TABLE") {
                blank(sig[i].span.start, sig[i].span.end);
            }
        }
        let mut watermark = None;
        let create = sig.first().is_some_and(|t| word(t, "CREATE"));
        let mut depth = 0;
        let mut i = 0;
        while i < sig.len() {
            match sig[i].token {
                Token::LParen => depth += 1,
                Token::RParen => depth -= 1,
                _ => {}
            }
            if !(create
                && depth == 1
                && word(sig[i], "WATERMARK")
                && sig.get(i + 1).is_some_and(|t| word(t, "FOR")))
            {
                i += 1;
                continue;
            }
            let bad = || {
                self.error("a watermark reads `WATERMARK FOR column AS column - INTERVAL 'n' SECOND`, after the columns")
            };
            let (Some(comma), Some(col), Some(as_)) =
                (sig.get(i.wrapping_sub(1)), sig.get(i + 2), sig.get(i + 3))
            else {
                return Err(bad());
            };
            let Token::Word(col) = &col.token else {
                return Err(bad());
            };
            if comma.token != Token::Comma || !word(as_, "AS") || watermark.is_some() {
                return Err(bad());
            }
            // The expression: up to the `,` or `)` that ends the clause.
            let mut j = i + 4;
            let mut d = 0;
            while j < sig.len() {
                match sig[j].token {
                    Token::LParen => d += 1,
                    Token::RParen if d == 0 => break,
                    Token::RParen => d -= 1,
                    Token::Comma if d == 0 => break,
                    _ => {}
                }
                j += 1;
            }
            if j == i + 4 || j >= sig.len() {
                return Err(bad());
            }
            let (from, to) = (sig[i + 4].span.start, sig[j - 1].span.end);
            let expr_text = match (self.offset(from), self.offset(to)) {
                (Some(a), Some(b)) => self.text[a..b].to_string(),
                _ => return Err(bad()),
            };
            let expr = Parser::new(&GenericDialect {})
                .try_with_sql(&expr_text)
                .and_then(|mut p| p.parse_expr())
                .map_err(|e| {
                    self.error(format!(
                        "the watermark's expression: {}",
                        clean(&e.to_string())
                    ))
                })?;
            watermark = Some(Watermark {
                column: col.value.clone(),
                expr,
                text: expr_text,
            });
            blank(comma.span.start, to);
            i = j;
        }
        let text = String::from_utf8(bytes).map_err(|_| self.error("the SQL is not UTF-8"))?;
        Ok((text, watermark))
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

/// A table's `WATERMARK FOR column AS expr`.
pub struct Watermark {
    pub column: String,
    pub expr: Expr,
    /// The expression as written.
    pub text: String,
}

/// The milliseconds of `INTERVAL 'n' <unit>` (`SECOND`, `MINUTE`, `HOUR`, `DAY`,
/// `MILLISECOND`; `n` may have decimals).
pub fn interval_ms(e: &Expr) -> Option<i64> {
    let Expr::Interval(i) = e else { return None };
    let n: f64 = match &*i.value {
        Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) => s.trim().parse().ok()?,
            ast::Value::Number(s, _) => s.parse().ok()?,
            _ => return None,
        },
        _ => return None,
    };
    if i.last_field.is_some() || i.fractional_seconds_precision.is_some() {
        return None;
    }
    use ast::DateTimeField as F;
    let unit: f64 = match i.leading_field.as_ref()? {
        F::Millisecond | F::Milliseconds => 1.0,
        F::Second | F::Seconds => 1_000.0,
        F::Minute | F::Minutes => 60_000.0,
        F::Hour | F::Hours => 3_600_000.0,
        F::Day | F::Days => 86_400_000.0,
        _ => return None,
    };
    let ms = n * unit;
    (ms >= 0.0 && ms.fract() == 0.0 && ms < i64::MAX as f64).then_some(ms as i64)
}

/// sqlparser's message without its `sql parser error: ` prefix.
fn clean(message: &str) -> String {
    message.trim_start_matches("sql parser error: ").to_string()
}
