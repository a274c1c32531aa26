//! The DSL's syntax tree. The body of `flow!` is ordinary Rust statements (so rust-analyzer
//! keeps working inside it); this module reads them as stream chains, with no semantics.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, Ident, Token};

/// `flow! { env => stmt* }`
pub struct FlowInput {
    pub env: Expr,
    pub stmts: Vec<FlowStmt>,
    pub body_span: Span,
}

/// One statement of the body.
pub enum FlowStmt {
    /// `let name = chain;`
    Let { name: Ident, chain: Chain },
    /// `chain;`
    Chain(Chain),
}

/// A source or stream name followed by operator calls.
pub struct Chain {
    pub root: Root,
    pub calls: Vec<Call>,
}

/// Where a chain starts.
pub enum Root {
    /// `source(..)`, `from_collection(..)`, `from_iter(..)` (or a misspelling of them).
    Source {
        func: Ident,
        args: Vec<Expr>,
        span: Span,
    },
    /// A stream bound earlier with `let`.
    Stream(Ident),
}

/// `.method(args)`
pub struct Call {
    pub method: Ident,
    pub args: Vec<Expr>,
    /// `::<T>`: only the table words take one (`to_append_stream::<Order>()`).
    pub turbofish: Option<syn::AngleBracketedGenericArguments>,
}

impl Chain {
    /// The span of the chain's last call (or its root).
    pub fn last_span(&self) -> Span {
        match self.calls.last() {
            Some(c) => c.method.span(),
            None => match &self.root {
                Root::Source { span, .. } => *span,
                Root::Stream(i) => i.span(),
            },
        }
    }
}

impl Parse for FlowInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let env = Expr::parse_without_eager_brace(input)?;
        input.parse::<Token![=>]>()?;
        let body_span = input.span();
        let stmts = syn::Block::parse_within(input)?;
        let mut out = Vec::new();
        let mut errors: Option<syn::Error> = None;
        for stmt in stmts {
            match parse_stmt(stmt) {
                Ok(s) => out.push(s),
                Err(e) => match &mut errors {
                    Some(all) => all.combine(e),
                    None => errors = Some(e),
                },
            }
        }
        if let Some(e) = errors {
            return Err(e);
        }
        Ok(FlowInput {
            env,
            stmts: out,
            body_span,
        })
    }
}

fn parse_stmt(stmt: syn::Stmt) -> syn::Result<FlowStmt> {
    match stmt {
        syn::Stmt::Local(local) => {
            let name = match &local.pat {
                syn::Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        "a stream is bound to a plain name: `let words = ...;`",
                    ))
                }
            };
            let Some(init) = local.init else {
                return Err(syn::Error::new_spanned(&local.pat, "a stream binding needs a value: `let words = ...;`"));
            };
            if let Some((_, diverge)) = &init.diverge {
                return Err(syn::Error::new_spanned(diverge, "`let ... else` is not supported in `flow!`"));
            }
            Ok(FlowStmt::Let { name, chain: parse_chain(*init.expr)? })
        }
        syn::Stmt::Expr(expr, _) => Ok(FlowStmt::Chain(parse_chain(expr)?)),
        syn::Stmt::Item(item) => Err(syn::Error::new_spanned(
            item,
            "items cannot be declared inside `flow!`: declare them outside the macro",
        )),
        syn::Stmt::Macro(m) => Err(syn::Error::new_spanned(
            &m.mac,
            "macros cannot be used as statements inside `flow!`: `flow!` holds stream chains and `let` bindings",
        )),
    }
}

/// Reads `root.a(..).b(..)` into a chain.
pub fn parse_chain(expr: Expr) -> syn::Result<Chain> {
    let mut calls = Vec::new();
    let mut cur = expr;
    loop {
        match cur {
            Expr::MethodCall(mc) => {
                calls.push(Call { method: mc.method, args: mc.args.into_iter().collect(), turbofish: mc.turbofish });
                cur = *mc.receiver;
            }
            Expr::Call(call) => {
                let func = match &*call.func {
                    Expr::Path(p) if p.qself.is_none() && p.path.get_ident().is_some() => {
                        p.path.get_ident().cloned().expect("checked")
                    }
                    other => {
                        return Err(syn::Error::new_spanned(
                            other,
                            "expected a source: `source(..)`, `from_collection(..)` or `from_iter(..)`",
                        ))
                    }
                };
                let span = call.span();
                calls.reverse();
                return Ok(Chain { root: Root::Source { func, args: call.args.into_iter().collect(), span }, calls });
            }
            Expr::Path(p) if p.qself.is_none() && p.path.get_ident().is_some() => {
                calls.reverse();
                return Ok(Chain { root: Root::Stream(p.path.get_ident().cloned().expect("checked")), calls });
            }
            Expr::Paren(p) => cur = *p.expr,
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "expected a stream: a source such as `from_collection(..)`, or a stream bound with `let`",
                ))
            }
        }
    }
}
