//! `CREATE TABLE ... WITH ('connector' = ...)`: each connector's options, checked when the
//! program is built, and the flow source or sink they become.

use super::expr::suggest;
use super::text::SqlText;
use super::types::SqlType;
use super::Column;
use proc_macro2::TokenStream;
use quote::quote;

/// The connectors a DDL table may name.
const CONNECTORS: &[&str] = &["datagen", "print"];

/// A DDL table's connector, its options checked.
pub enum Connector {
    Datagen(Datagen),
    Print {
        identifier: Option<String>,
        parallelism: Option<usize>,
    },
}

pub struct Datagen {
    rows: Option<u64>,
    rows_per_second: f64,
    /// Per column index: (kind, options).
    fields: Vec<(usize, FieldOptions)>,
}

#[derive(Default)]
struct FieldOptions {
    sequence: bool,
    min: Option<String>,
    max: Option<String>,
    length: Option<usize>,
    start: Option<i64>,
    end: Option<i64>,
}

impl Connector {
    /// The connector of a table with `columns` and the `WITH` options `options` (key, value).
    pub fn new(
        sql: &SqlText,
        columns: &[Column],
        options: &[(String, String)],
    ) -> syn::Result<Connector> {
        let get = |key: &str| {
            options
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let Some(name) = get("connector") else {
            return Err(sql.error(
                "the table has no `'connector' = '...'` option (connectors: datagen, print)",
            ));
        };
        let known: Vec<String> = match name {
            "datagen" => {
                let mut k = vec![
                    "connector".to_string(),
                    "number-of-rows".into(),
                    "rows-per-second".into(),
                ];
                for c in columns {
                    for o in ["kind", "min", "max", "length", "start", "end"] {
                        k.push(format!("fields.{}.{o}", c.name));
                    }
                }
                k
            }
            "print" => [
                "connector",
                "print-identifier",
                "sink.parallelism",
                "standard-error",
            ]
            .map(String::from)
            .to_vec(),
            other => {
                return Err(sql.error(format!(
                    "unknown connector `{other}`{}",
                    suggest(other, CONNECTORS.iter().copied())
                )));
            }
        };
        for (k, _) in options {
            if !known.contains(k) {
                let hint = suggest(k, known.iter().map(String::as_str));
                let hint = if hint.starts_with(':') {
                    hint
                } else {
                    format!(" (the {name} connector's options: {})", known.join(", "))
                };
                return Err(sql.error(format!(
                    "unknown option `{k}` of the {name} connector{hint}"
                )));
            }
        }
        let number = |key: &str| -> syn::Result<Option<f64>> {
            get(key)
                .map(|v| {
                    v.trim()
                        .parse::<f64>()
                        .map_err(|_| sql.error(format!("option `{key}`: `{v}` is not a number")))
                })
                .transpose()
        };
        match name {
            "datagen" => {
                let rows = match number("number-of-rows")? {
                    Some(n) if n >= 0.0 && n.fract() == 0.0 => Some(n as u64),
                    Some(_) => {
                        return Err(sql.error("option `number-of-rows` is a whole number of rows"))
                    }
                    None => None,
                };
                let rows_per_second = match number("rows-per-second")? {
                    Some(r) if r > 0.0 => r,
                    Some(_) => return Err(sql.error("option `rows-per-second` must be above 0")),
                    None => 10_000.0, // Flink's default
                };
                let mut fields = Vec::new();
                for (i, c) in columns.iter().enumerate() {
                    let opt = |o: &str| get(&format!("fields.{}.{o}", c.name));
                    let mut f = FieldOptions::default();
                    let key = |o: &str| format!("fields.{}.{o}", c.name);
                    match opt("kind") {
                        None | Some("random") => {}
                        Some("sequence") => f.sequence = true,
                        Some(other) => {
                            return Err(sql.error(format!(
                                "option `{}`: `{other}` is not `random` or `sequence`",
                                key("kind")
                            )))
                        }
                    }
                    let int = |o: &str| -> syn::Result<Option<i64>> {
                        opt(o)
                            .map(|v| {
                                v.trim().parse::<i64>().map_err(|_| {
                                    sql.error(format!(
                                        "option `{}`: `{v}` is not an integer",
                                        key(o)
                                    ))
                                })
                            })
                            .transpose()
                    };
                    if f.sequence {
                        for o in ["min", "max", "length"] {
                            if opt(o).is_some() {
                                return Err(sql.error(format!("option `{}` applies to a random field; `{}` is a sequence (`start`, `end`)", key(o), c.name)));
                            }
                        }
                        f.start = int("start")?;
                        f.end = int("end")?;
                        let (Some(s), Some(e)) = (f.start, f.end) else {
                            return Err(sql.error(format!(
                                "the sequence field `{}` needs `{}` and `{}`",
                                c.name,
                                key("start"),
                                key("end")
                            )));
                        };
                        if s > e {
                            return Err(sql.error(format!(
                                "the sequence of `{}` starts after its end ({s} > {e})",
                                c.name
                            )));
                        }
                        if !(c.ty.sql.is_integer() || c.ty.sql == SqlType::String) {
                            return Err(sql.error(format!(
                                "a sequence fills an integer or STRING column; `{}` is {}",
                                c.name,
                                c.ty.sql.name()
                            )));
                        }
                    } else {
                        for o in ["start", "end"] {
                            if opt(o).is_some() {
                                return Err(sql.error(format!(
                                    "option `{}` applies to a sequence: add `'{}' = 'sequence'`",
                                    key(o),
                                    key("kind")
                                )));
                            }
                        }
                        for o in ["min", "max"] {
                            if let Some(v) = opt(o) {
                                if !c.ty.sql.is_numeric() {
                                    return Err(sql.error(format!(
                                        "option `{}` applies to a number; `{}` is {}",
                                        key(o),
                                        c.name,
                                        c.ty.sql.name()
                                    )));
                                }
                                let ok = if c.ty.sql.is_integer() {
                                    v.trim().parse::<i64>().is_ok()
                                } else {
                                    v.trim().parse::<f64>().is_ok()
                                };
                                if !ok {
                                    return Err(sql.error(format!(
                                        "option `{}`: `{v}` is not a {}",
                                        key(o),
                                        c.ty.sql.name()
                                    )));
                                }
                                if o == "min" {
                                    f.min = Some(v.trim().to_string())
                                } else {
                                    f.max = Some(v.trim().to_string())
                                }
                            }
                        }
                        if let Some(v) = opt("length") {
                            if c.ty.sql != SqlType::String {
                                return Err(sql.error(format!(
                                    "option `{}` applies to a STRING; `{}` is {}",
                                    key("length"),
                                    c.name,
                                    c.ty.sql.name()
                                )));
                            }
                            f.length = Some(v.trim().parse().map_err(|_| {
                                sql.error(format!(
                                    "option `{}`: `{v}` is not a length",
                                    key("length")
                                ))
                            })?);
                        }
                    }
                    fields.push((i, f));
                }
                Ok(Connector::Datagen(Datagen {
                    rows,
                    rows_per_second,
                    fields,
                }))
            }
            _ => {
                if get("standard-error").is_some_and(|v| v != "false") {
                    return Err(sql.error("option `standard-error`: the print connector writes to standard output only"));
                }
                let parallelism = match number("sink.parallelism")? {
                    Some(p) if p >= 1.0 && p.fract() == 0.0 => Some(p as usize),
                    Some(_) => {
                        return Err(sql.error("option `sink.parallelism` is a whole number above 0"))
                    }
                    None => None,
                };
                Ok(Connector::Print {
                    identifier: get("print-identifier").map(str::to_string),
                    parallelism,
                })
            }
        }
    }

    /// The connector's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Connector::Datagen(_) => "datagen",
            Connector::Print { .. } => "print",
        }
    }

    /// The source expression of a table read with this connector: rows are tuples of
    /// `columns`' types. `None` when the connector only writes.
    pub fn source(&self, table: &str, columns: &[Column]) -> Option<TokenStream> {
        let Connector::Datagen(d) = self else {
            return None;
        };
        let row = row_type(columns);
        let seed = fnv(table);
        let fields = d.fields.iter().map(|(i, f)| {
            let name = i.to_string();
            let ty = columns[*i].ty.sql;
            let gen = if f.sequence {
                let (s, e) = (f.start.unwrap_or(0), f.end.unwrap_or(0));
                quote!(::flow::connectors::datagen::FieldGen::sequence(#s, #e))
            } else {
                let mut g = quote!(::flow::connectors::datagen::FieldGen::random());
                for (m, v) in [("min", &f.min), ("max", &f.max)] {
                    if let Some(v) = v {
                        let lit = number_literal(v, ty);
                        let m = quote::format_ident!("{}", m);
                        g = quote!(#g.#m(#lit));
                    }
                }
                if let Some(l) = f.length {
                    g = quote!(#g.length(#l));
                }
                g
            };
            quote!(.field(#name, #gen))
        });
        let gen = quote!(::flow::connectors::datagen::RowGenerator::<#row>::new(#seed) #(#fields)*);
        // A sequence field bounds the table: it ends with the shortest sequence.
        let seq_rows = d
            .fields
            .iter()
            .filter(|f| f.1.sequence)
            .map(|(_, f)| (f.end.unwrap_or(0) - f.start.unwrap_or(0) + 1) as u64)
            .min();
        let rows = match (d.rows, seq_rows) {
            (Some(r), Some(s)) => Some(r.min(s)),
            (r, s) => r.or(s),
        };
        let rate = d.rows_per_second;
        Some(match rows {
            Some(n) => {
                quote!(::flow::connectors::datagen::DataGeneratorSource::new(#gen, #n).rows_per_second(#rate))
            }
            None => {
                quote!(::flow::connectors::datagen::DataGeneratorSource::unbounded(#gen).rows_per_second(#rate))
            }
        })
    }

    /// The sink of a table written with this connector, and its parallelism; `None` when the
    /// connector only reads. Its rows are [`Changelog`](flow::table::Changelog)s of tuples.
    pub fn sink(&self) -> Option<(TokenStream, Option<usize>)> {
        let Connector::Print {
            identifier,
            parallelism,
        } = self
        else {
            return None;
        };
        let sink = match identifier {
            Some(id) => quote!(::flow::PrintSink::with_identifier(#id)),
            None => quote!(::flow::PrintSink::new()),
        };
        Some((sink, *parallelism))
    }
}

/// The tuple type of a row of `columns`.
pub fn row_type(columns: &[Column]) -> TokenStream {
    let tys = columns.iter().map(|c| c.ty.rust());
    quote!((#(#tys,)*))
}

fn number_literal(v: &str, ty: SqlType) -> TokenStream {
    let lit = match ty {
        SqlType::Float | SqlType::Double => {
            proc_macro2::Literal::f64_suffixed(v.parse().unwrap_or(0.0))
        }
        _ => proc_macro2::Literal::i64_suffixed(v.parse().unwrap_or(0)),
    };
    quote!(#lit)
}

/// FNV-1a: a table's datagen seed, stable across builds.
fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h
}
