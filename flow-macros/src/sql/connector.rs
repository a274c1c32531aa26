//! `CREATE TABLE ... WITH ('connector' = ...)`: each connector's options, checked when the
//! program is built, and the flow source or sink they become.

use super::expr::suggest;
use super::text::SqlText;
use super::types::SqlType;
use super::Column;
use proc_macro2::TokenStream;
use quote::quote;

/// The connectors a DDL table may name.
const CONNECTORS: &[&str] = &["datagen", "print", "kafka", "filesystem"];

/// A DDL table's connector, its options checked.
pub enum Connector {
    Datagen(Datagen),
    Kafka(Kafka),
    Filesystem {
        path: String,
        format: Format,
        monitor_ms: Option<u64>,
        skip_bad: bool,
    },
    Print {
        identifier: Option<String>,
        parallelism: Option<usize>,
    },
}

/// A table's rows as records: JSON objects, or CSV lines (the columns in order).
#[derive(Clone, Copy, PartialEq)]
pub enum Format {
    Json,
    Csv,
}

pub struct Kafka {
    topic: String,
    servers: String,
    group: Option<String>,
    /// `scan.startup.mode`: `earliest-offset`, `latest-offset` or `group-offsets`.
    startup: String,
    bounded: bool,
    properties: Vec<(String, String)>,
    format: Format,
    skip_bad: bool,
    exactly_once: bool,
    transactional_prefix: Option<String>,
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
                "the table has no `'connector' = '...'` option (connectors: datagen, print, kafka, filesystem)",
            ));
        };
        let is_property = |k: &str| {
            name == "kafka" && k.starts_with("properties.") && k.len() > "properties.".len()
        };
        let known: Vec<String> = match name {
            "kafka" => [
                "connector",
                "topic",
                "format",
                "properties.bootstrap.servers",
                "properties.group.id",
                "scan.startup.mode",
                "scan.bounded.mode",
                "json.ignore-parse-errors",
                "csv.ignore-parse-errors",
                "sink.delivery-guarantee",
                "sink.transactional-id-prefix",
            ]
            .map(String::from)
            .to_vec(),
            "filesystem" => [
                "connector",
                "path",
                "format",
                "source.monitor-interval",
                "json.ignore-parse-errors",
                "csv.ignore-parse-errors",
            ]
            .map(String::from)
            .to_vec(),
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
            if !known.contains(k) && !is_property(k) {
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
        let required = |key: &str| -> syn::Result<String> {
            get(key)
                .map(str::to_string)
                .ok_or_else(|| sql.error(format!("the {name} connector needs option `{key}`")))
        };
        let format = || -> syn::Result<Format> {
            match get("format") {
                Some("json") => Ok(Format::Json),
                Some("csv") => Ok(Format::Csv),
                Some(other) => Err(sql.error(format!(
                    "option `format`: `{other}` is not supported (json, csv are)"
                ))),
                None => Err(sql.error(format!(
                    "the {name} connector needs option `format` (json or csv)"
                ))),
            }
        };
        let flag = |key: &str| -> syn::Result<bool> {
            match get(key) {
                None | Some("false") => Ok(false),
                Some("true") => Ok(true),
                Some(other) => Err(sql.error(format!(
                    "option `{key}`: `{other}` is not `true` or `false`"
                ))),
            }
        };
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
            "kafka" => {
                let format = format()?;
                if format == Format::Csv {
                    return Err(sql.error("option `format`: the kafka connector reads and writes `json` (`csv` not yet)"));
                }
                let skip_bad = flag(if format == Format::Json {
                    "json.ignore-parse-errors"
                } else {
                    "csv.ignore-parse-errors"
                })?;
                let startup = get("scan.startup.mode")
                    .unwrap_or("group-offsets")
                    .to_string();
                if !["earliest-offset", "latest-offset", "group-offsets"]
                    .contains(&startup.as_str())
                {
                    return Err(sql.error(format!("option `scan.startup.mode`: `{startup}` is not supported (earliest-offset, latest-offset, group-offsets are)")));
                }
                let group = get("properties.group.id").map(str::to_string);
                let bounded = match get("scan.bounded.mode") {
                    None | Some("unbounded") => false,
                    Some("latest-offset") => true,
                    Some(other) => return Err(sql.error(format!("option `scan.bounded.mode`: `{other}` is not supported (unbounded, latest-offset are)"))),
                };
                let exactly_once = match get("sink.delivery-guarantee") {
                    None | Some("at-least-once") => false,
                    Some("exactly-once") => true,
                    Some(other) => return Err(sql.error(format!("option `sink.delivery-guarantee`: `{other}` is not supported (at-least-once, exactly-once are)"))),
                };
                let topic = required("topic")?;
                if topic.is_empty() || topic.contains(';') {
                    return Err(sql.error("option `topic` is one topic's name"));
                }
                let properties = options
                    .iter()
                    .filter(|(k, _)| {
                        is_property(k)
                            && k != "properties.bootstrap.servers"
                            && k != "properties.group.id"
                    })
                    .map(|(k, v)| (k["properties.".len()..].to_string(), v.clone()))
                    .collect();
                Ok(Connector::Kafka(Kafka {
                    topic,
                    servers: required("properties.bootstrap.servers")?,
                    group,
                    startup,
                    bounded,
                    properties,
                    format,
                    skip_bad,
                    exactly_once,
                    transactional_prefix: get("sink.transactional-id-prefix").map(str::to_string),
                }))
            }
            "filesystem" => {
                let format = format()?;
                let skip_bad = flag(if format == Format::Json {
                    "json.ignore-parse-errors"
                } else {
                    "csv.ignore-parse-errors"
                })?;
                let monitor_ms = match get("source.monitor-interval") {
                    None => None,
                    Some(v) => Some(duration_ms(v).ok_or_else(|| sql.error(format!("option `source.monitor-interval`: `{v}` is not a duration (`10 s`, `500 ms`, `1 min`)")))?),
                };
                Ok(Connector::Filesystem {
                    path: required("path")?,
                    format,
                    monitor_ms,
                    skip_bad,
                })
            }
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
                    if c.ty.sql == SqlType::Timestamp
                        && (f.sequence || f.min.is_some() || f.max.is_some())
                    {
                        return Err(sql.error(format!("the TIMESTAMP column `{}` holds the time each row is generated at: it takes no options", c.name)));
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
            Connector::Kafka(_) => "kafka",
            Connector::Filesystem { .. } => "filesystem",
        }
    }

    /// Why a table with it cannot be read, if it cannot.
    pub fn read_error(&self) -> Option<&'static str> {
        match self {
            Connector::Kafka(k) if k.startup == "group-offsets" && k.group.is_none() => Some(
                "reading a kafka table from `scan.startup.mode` = 'group-offsets' (the default) needs `properties.group.id`",
            ),
            _ => None,
        }
    }

    /// Whether a table written with it may be an updating one (rows of every kind): `print`
    /// shows them; the others write inserts only.
    pub fn takes_changes(&self) -> bool {
        matches!(self, Connector::Print { .. })
    }

    /// The source expression of a table read with this connector: rows are tuples of
    /// `columns`' types. `None` when the connector only writes.
    pub fn source(&self, table: &str, columns: &[Column]) -> Option<TokenStream> {
        let row = row_type(columns);
        match self {
            Connector::Kafka(k) => {
                let (servers, topic) = (&k.servers, &k.topic);
                let mut b = quote!(::flow::connectors::kafka::KafkaSource::builder().bootstrap_servers(#servers).topic(#topic));
                if let Some(g) = &k.group {
                    b = quote!(#b.group_id(#g));
                }
                let start = match k.startup.as_str() {
                    "earliest-offset" => {
                        quote!(::flow::connectors::kafka::StartingOffsets::Earliest)
                    }
                    "latest-offset" => quote!(::flow::connectors::kafka::StartingOffsets::Latest),
                    _ => quote!(::core::default::Default::default()),
                };
                b = quote!(#b.starting_offsets(#start));
                if k.bounded {
                    b = quote!(#b.bounded());
                }
                for (key, v) in &k.properties {
                    b = quote!(#b.property(#key, #v));
                }
                if k.skip_bad {
                    b = quote!(#b.bad_records(::flow::connectors::bad_records::BadRecords::skip()));
                }
                let format = record_format(k.format, columns);
                return Some(quote!(#b.format(#format).build()));
            }
            Connector::Filesystem {
                path,
                format,
                monitor_ms,
                skip_bad,
            } => {
                let format = match format {
                    Format::Json => record_format(Format::Json, columns),
                    Format::Csv => quote!(::flow::connectors::format::Csv::<#row>::new()),
                };
                let mut src = quote!(::flow::FileSource::for_record_stream_format(#format, #path));
                if let Some(ms) = monitor_ms {
                    src =
                        quote!(#src.monitor_continuously(::std::time::Duration::from_millis(#ms)));
                }
                if *skip_bad {
                    src = quote!(#src.bad_records(::flow::connectors::bad_records::BadRecords::skip()));
                }
                return Some(src);
            }
            Connector::Print { .. } => return None,
            Connector::Datagen(_) => {}
        }
        let Connector::Datagen(d) = self else {
            return None;
        };
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
        let mut gen =
            quote!(::flow::connectors::datagen::RowGenerator::<#row>::new(#seed) #(#fields)*);
        // A TIMESTAMP column holds the time the row is generated at, as Flink's datagen.
        let stamps: Vec<TokenStream> = columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.ty.sql == SqlType::Timestamp)
            .map(|(i, c)| {
                let i = syn::Index::from(i);
                let now = quote!(::flow::table::SqlTimestamp(::flow::time::now_millis()));
                if c.ty.nullable {
                    quote!(__row.#i = ::core::option::Option::Some(#now);)
                } else {
                    quote!(__row.#i = #now;)
                }
            })
            .collect();
        if !stamps.is_empty() {
            gen = quote!({
                let __gen = #gen;
                move |__i: u64| { let mut __row = __gen.generate(__i); #(#stamps)* __row }
            });
        }
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
    pub fn sink(&self, columns: &[Column]) -> Option<SinkSpec> {
        if let Connector::Filesystem { path, format, .. } = self {
            // Each row as its text line, into part files (FileSink: exactly once).
            let f = match format {
                Format::Csv => {
                    let row = row_type(columns);
                    quote!(::flow::connectors::format::CsvLine::<#row>::new())
                }
                Format::Json => record_format(Format::Json, columns),
            };
            return Some(SinkSpec {
                sink: quote!(::flow::FileSink::row_format(#path)),
                parallelism: None,
                encode: Some(
                    quote!({ let __f = #f; move |row| ::flow::connectors::format::encode_line(&__f, &row) }),
                ),
            });
        }
        if let Connector::Kafka(k) = self {
            let (servers, topic) = (&k.servers, &k.topic);
            let format = record_format(k.format, columns);
            let mut b = quote!(::flow::connectors::kafka::KafkaSink::builder().bootstrap_servers(#servers).topic(#topic).format(#format));
            if k.exactly_once {
                b = quote!(#b.delivery_guarantee(::flow::connectors::kafka::DeliveryGuarantee::ExactlyOnce));
            }
            if let Some(p) = &k.transactional_prefix {
                b = quote!(#b.transactional_id_prefix(#p));
            }
            for (key, v) in &k.properties {
                b = quote!(#b.property(#key, #v));
            }
            return Some(SinkSpec {
                sink: quote!(#b.build()),
                parallelism: None,
                encode: None,
            });
        }
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
        Some(SinkSpec {
            sink,
            parallelism: *parallelism,
            encode: None,
        })
    }
}

/// How a table's rows are written: the sink, its parallelism, and the function that turns
/// each row into what the sink takes (none: the row itself).
pub struct SinkSpec {
    pub sink: TokenStream,
    pub parallelism: Option<usize>,
    pub encode: Option<TokenStream>,
}

/// The record format of rows of `columns`.
fn record_format(format: Format, columns: &[Column]) -> TokenStream {
    let row = row_type(columns);
    match format {
        Format::Json => {
            let names = columns.iter().map(|c| c.name.as_str());
            quote!(::flow::connectors::format::JsonColumns::<#row>::new(&[#(#names),*]))
        }
        Format::Csv => quote!(::flow::connectors::format::Csv::<#row>::new()),
    }
}

/// `10 s`, `500 ms`, `1 min`, `2h`: Flink's durations, in ms.
fn duration_ms(v: &str) -> Option<u64> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let n: u64 = v[..split].parse().ok()?;
    let unit = match v[split..].trim() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
        "min" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit)
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
