//! A stream into a PostgreSQL table: generated orders (`DataGeneratorSource` with a
//! `RowGenerator`) -> keep the big ones -> `JdbcSink` upserting on the order id, so running it
//! again, or restoring it from a checkpoint, leaves the table as it was.
//!
//! ```text
//! scripts/postgres start     # a throwaway server on 127.0.0.1:15432
//! cargo run --release --example jdbc_sink -- --url postgresql://flow:flow@127.0.0.1:15432/flow --rows 100000
//! ```
//!
//! The table (`--table`, default `orders`) is created when missing. With `--exactly-once` each
//! checkpoint's rows are one prepared transaction, committed when the checkpoint completes
//! (`--checkpoint-interval` then sets how often rows appear; the server needs
//! `max_prepared_transactions` > 0).

use flow::clap::{value_parser, Arg, ArgAction};
use flow::prelude::*;
use std::process::ExitCode;

/// An order; its fields are the table's columns.
#[derive(Row, Clone, Debug)]
struct Order {
    id: i64,
    customer: String,
    quantity: i32,
    price: f64,
}

/// Creates the table when missing (the sink writes rows, it does not make tables).
fn create_table(url: &str, table: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {table} (id BIGINT PRIMARY KEY, customer TEXT NOT NULL, quantity INTEGER NOT NULL, price DOUBLE PRECISION NOT NULL)"
            ))
            .await
    })
    .map_err(|e| match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    })
}

fn run() -> Result<(), String> {
    let args = StreamEnv::command("jdbc_sink")
        .arg(
            Arg::new("url")
                .long("url")
                .value_name("URL")
                .default_value("postgresql://flow:flow@127.0.0.1:15432/flow")
                .help(
                    "The PostgreSQL database (scripts/postgres start runs one on 127.0.0.1:15432)",
                ),
        )
        .arg(
            Arg::new("table")
                .long("table")
                .value_name("NAME")
                .default_value("orders")
                .help("The table to write (created when missing)"),
        )
        .arg(
            Arg::new("rows")
                .long("rows")
                .value_name("N")
                .value_parser(value_parser!(u64).range(1..))
                .default_value("100000")
                .help("How many orders to generate"),
        )
        .arg(
            Arg::new("exactly-once")
                .long("exactly-once")
                .action(ArgAction::SetTrue)
                .help(
                    "Write each checkpoint's rows as one prepared transaction (two-phase commit)",
                ),
        )
        .get_matches();
    let env = StreamEnv::from_matches(&args);
    let url = args
        .get_one::<String>("url")
        .expect("has a default")
        .clone();
    let table = args
        .get_one::<String>("table")
        .expect("has a default")
        .clone();
    let rows = *args.get_one::<u64>("rows").expect("has a default");
    create_table(&url, &table).map_err(|e| format!("cannot create table `{table}`: {e}"))?;

    let orders = RowGenerator::<Order>::new(42)
        .field("id", FieldGen::sequence(1, rows as i64))
        .field("customer", FieldGen::random().length(8))
        .field("quantity", FieldGen::random().min(1).max(20))
        .field("price", FieldGen::random().min(1.0).max(500.0));
    let mut sink = JdbcSink::<Order>::insert_into(
        &table,
        JdbcExecutionOptions::default(),
        JdbcConnectionOptions::new(url.as_str()),
    )
    .upsert_on(&["id"]);
    if args.get_flag("exactly-once") {
        sink = sink.exactly_once(
            JdbcExactlyOnceOptions::default().transaction_id_prefix(format!("jdbc_sink-{table}")),
        );
    }
    flow! { env =>
        source(DataGeneratorSource::new(orders, rows), Watermarks::no_watermarks())
            .filter(|o| o.quantity * o.price as i32 >= 100)
            .sink_to(sink);
    }
    let result = env.execute("jdbc_sink").map_err(|e| e.to_string())?;
    eprintln!(
        "jdbc_sink: {} of {rows} orders written to `{table}` in {:.1?}",
        result.operators.last().map_or(0, |m| m.rows_in),
        result.wall_time
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
