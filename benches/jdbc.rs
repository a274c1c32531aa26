//! `JdbcSink` against hand-written loops writing the same rows to the same PostgreSQL server
//! (`scripts/postgres start`; `FLOW_PG_URL` to use another).
//!
//! 200,000 rows `(id BIGINT, name TEXT, price DOUBLE PRECISION)` into a fresh unlogged table:
//! the sink at parallelism 1 with a typed binder (batches of 5,000, one transaction each, one
//! statement per row, pipelined) and with the statement `insert_into` derives from a
//! `#[derive(Row)]` struct (multi-row statements of 500 rows), against (a) a loop doing what the
//! typed binder does with tokio-postgres, and (b) a loop that sends the same rows with
//! `COPY .. FROM STDIN` (text), PostgreSQL's fastest way in.
//!
//! ```text
//! scripts/postgres start && cargo bench --bench jdbc
//! FLOW_BENCH_SCALE=0.1 FLOW_BENCH_RUNS=1 cargo bench --bench jdbc   # quick check
//! ```

use flow::prelude::*;
use futures_util::SinkExt;
use std::time::{Duration, Instant};

const ROWS: f64 = 200_000.0;
const BATCH: usize = 5_000;

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn url() -> String {
    std::env::var("FLOW_PG_URL")
        .unwrap_or_else(|_| "postgresql://flow:flow@127.0.0.1:15432/flow".to_string())
}

fn row(i: i64) -> (i64, String, f64) {
    (i, format!("name {}", i % 1000), i as f64 * 0.25)
}

struct Db {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Db {
    fn connect() -> Db {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| {
                    panic!("cannot reach {}: {e}; run `scripts/postgres start`", url())
                });
            tokio::spawn(async move {
                let _ = conn.await;
            });
            client
        });
        Db { rt, client }
    }
    fn exec(&self, sql: &str) {
        self.rt.block_on(self.client.batch_execute(sql)).unwrap();
    }
    fn count(&self) -> i64 {
        self.rt
            .block_on(
                self.client
                    .query_one("SELECT count(*) FROM bench_jdbc", &[]),
            )
            .unwrap()
            .get(0)
    }
    fn fresh_table(&self) {
        self.exec("DROP TABLE IF EXISTS bench_jdbc; CREATE UNLOGGED TABLE bench_jdbc (id BIGINT, name TEXT, price DOUBLE PRECISION)");
    }
}

fn flow_sink(db: &Db, n: i64) -> Duration {
    db.fresh_table();
    let env = StreamEnv::new();
    let sink = JdbcSink::sink(
        "INSERT INTO bench_jdbc (id, name, price) VALUES ($1, $2, $3)",
        |r: &(i64, String, f64), p: &mut Params<'_>| {
            p.add(&r.0).add(&r.1).add(&r.2);
        },
        JdbcExecutionOptions::default().batch_size(BATCH),
        JdbcConnectionOptions::new(url()),
    );
    flow! { env =>
        source(NumberSequence::new(0, n - 1), Watermarks::no_watermarks()).map(row).sink_to(sink);
    }
    let start = Instant::now();
    env.execute("jdbc bench").unwrap();
    let d = start.elapsed();
    assert_eq!(db.count(), n, "the sink wrote every row");
    d
}

/// The same rows as a `#[derive(Row)]` struct, through the statement `insert_into` derives.
#[derive(Row, Clone, Debug)]
struct Item {
    id: i64,
    name: String,
    price: f64,
}

fn flow_derived(db: &Db, n: i64) -> Duration {
    db.fresh_table();
    let env = StreamEnv::new();
    let sink = JdbcSink::<Item>::insert_into(
        "bench_jdbc",
        JdbcExecutionOptions::default().batch_size(BATCH),
        JdbcConnectionOptions::new(url()),
    );
    flow! { env =>
        source(NumberSequence::new(0, n - 1), Watermarks::no_watermarks())
            .map(|i| { let (id, name, price) = row(i); Item { id, name, price } })
            .sink_to(sink);
    }
    let start = Instant::now();
    env.execute("jdbc bench derived").unwrap();
    let d = start.elapsed();
    assert_eq!(db.count(), n, "the sink wrote every row");
    d
}

fn insert_loop(db: &Db, n: i64) -> Duration {
    db.fresh_table();
    let start = Instant::now();
    db.rt.block_on(async {
        let stmt = db
            .client
            .prepare("INSERT INTO bench_jdbc (id, name, price) VALUES ($1, $2, $3)")
            .await
            .unwrap();
        let rows: Vec<_> = (0..n).map(row).collect();
        for batch in rows.chunks(BATCH) {
            db.client.batch_execute("BEGIN").await.unwrap();
            let params: Vec<[&(dyn tokio_postgres::types::ToSql + Sync); 3]> = batch
                .iter()
                .map(|r| [&r.0 as _, &r.1 as _, &r.2 as _])
                .collect();
            futures_util::future::try_join_all(params.iter().map(|p| db.client.execute(&stmt, p)))
                .await
                .unwrap();
            db.client.batch_execute("COMMIT").await.unwrap();
        }
    });
    let d = start.elapsed();
    assert_eq!(db.count(), n);
    d
}

fn copy_loop(db: &Db, n: i64) -> Duration {
    db.fresh_table();
    let start = Instant::now();
    db.rt.block_on(async {
        let sink = db
            .client
            .copy_in("COPY bench_jdbc (id, name, price) FROM STDIN")
            .await
            .unwrap();
        futures_util::pin_mut!(sink);
        let mut buf = String::new();
        for (i, r) in (0..n).map(row).enumerate() {
            use std::fmt::Write;
            writeln!(buf, "{}\t{}\t{}", r.0, r.1, r.2).unwrap();
            if i % BATCH == BATCH - 1 {
                sink.send(bytes::Bytes::from(std::mem::take(&mut buf)))
                    .await
                    .unwrap();
            }
        }
        sink.send(bytes::Bytes::from(buf)).await.unwrap();
        sink.finish().await.unwrap();
    });
    let d = start.elapsed();
    assert_eq!(db.count(), n);
    d
}

fn main() {
    let scale = env_f64("FLOW_BENCH_SCALE", 1.0);
    let runs = env_f64("FLOW_BENCH_RUNS", 3.0).max(1.0) as usize;
    let n = ((ROWS * scale) as i64).max(1);
    let db = Db::connect();
    println!(
        "jdbc: {n} rows into PostgreSQL at {}, best of {runs} runs, parallelism 1",
        url()
    );
    let (mut flow, mut insert, mut copy) = (Duration::MAX, Duration::MAX, Duration::MAX);
    let mut derived = Duration::MAX;
    for _ in 0..runs {
        flow = flow.min(flow_sink(&db, n));
        derived = derived.min(flow_derived(&db, n));
        insert = insert.min(insert_loop(&db, n));
        copy = copy.min(copy_loop(&db, n));
    }
    db.exec("DROP TABLE IF EXISTS bench_jdbc");
    let rate = |d: Duration| n as f64 / d.as_secs_f64() / 1e3;
    println!(
        "{:<32} {:>10} {:>12} {:>14}",
        "writer", "krows/s", "typed / it", "derived / it"
    );
    println!("{:<32} {:>10.1}", "JdbcSink, typed binder", rate(flow));
    println!(
        "{:<32} {:>10.1}",
        "JdbcSink, insert_into (derived)",
        rate(derived)
    );
    for (name, d) in [
        ("pipelined INSERT loop", insert),
        ("COPY FROM STDIN loop", copy),
    ] {
        println!(
            "{:<32} {:>10.1} {:>11.3}x {:>13.3}x",
            name,
            rate(d),
            d.as_secs_f64() / flow.as_secs_f64(),
            d.as_secs_f64() / derived.as_secs_f64()
        );
    }
}
