//! `JdbcSink` against a real PostgreSQL server (`scripts/postgres start`): every row of a job in
//! the table, a derived upsert whose replay changes nothing, errors at start, the database
//! going away mid-job, exactly-once writes across a crash and restore.

mod common;
mod jdbc_common;

use common::{crash_once_checkpointed, latest_checkpoint};
use flow::prelude::*;
use jdbc_common::{url, Db, Server};
use std::path::Path;
use std::time::Duration;

#[derive(Row, Clone, Debug, PartialEq)]
struct Book {
    id: i64,
    title: String,
    price: Option<f64>,
    copies: i16,
}

fn book(i: i64) -> Book {
    Book {
        id: i,
        title: format!("book {i}"),
        price: (i % 3 != 0).then_some(i as f64 / 4.0),
        copies: (i % 7) as i16,
    }
}

fn books_table(db: &Db, schema: &str, key: bool) {
    let pk = if key { " PRIMARY KEY" } else { "" };
    db.exec(&format!(
        "CREATE TABLE {schema}.books (id BIGINT{pk}, title TEXT NOT NULL, price DOUBLE PRECISION, copies SMALLINT)"
    ));
}

/// The table's rows as `id|title|price|copies`, sorted by id.
fn table(db: &Db, schema: &str) -> Vec<String> {
    db.rows(&format!(
        "SELECT id, title, price, copies FROM {schema}.books ORDER BY id, title"
    ))
    .into_iter()
    .map(|r| r.join("|"))
    .collect()
}

fn expected(n: i64) -> Vec<String> {
    (0..n)
        .map(|i| {
            let b = book(i);
            let price = b.price.map_or("NULL".to_string(), |p| p.to_string());
            format!("{}|{}|{}|{}", b.id, b.title, price, b.copies)
        })
        .collect()
}

fn typed_sink(schema: &str, url: &str) -> JdbcSink<Book> {
    JdbcSink::sink(
        format!("INSERT INTO {schema}.books (id, title, price, copies) VALUES ($1, $2, $3, $4)"),
        |b: &Book, p: &mut Params<'_>| {
            p.add(&b.id).add(&b.title).add(&b.price).add(&b.copies);
        },
        JdbcExecutionOptions::default().batch_size(2_000),
        JdbcConnectionOptions::new(url),
    )
}

/// 100,000 rows through the typed binder (Flink's `JdbcSink.sink`).
fn every_row_in_the_table(p: usize) {
    let schema = format!("every_row_p{p}");
    let db = Db::fresh(&schema);
    books_table(&db, &schema, false);
    let env = StreamEnv::new().with_parallelism(p);
    let sink = typed_sink(&schema, &url());
    flow! { env =>
        source(NumberSequence::new(0, 99_999), Watermarks::no_watermarks())
            .map(book)
            .sink_to(sink);
    }
    env.execute("jdbc").unwrap();
    assert_eq!(
        db.value(&format!("SELECT count(*) FROM {schema}.books")),
        "100000"
    );
    assert!(
        table(&db, &schema) == expected(100_000),
        "the table differs from the input"
    );
}

/// The statement derived from the struct, as an upsert on `id`: running the job again (a replay
/// after a restore writes rows again) leaves the table as it was; changed rows are updated.
fn an_upsert_replay_leaves_the_table_unchanged(p: usize) {
    let schema = format!("upsert_p{p}");
    let db = Db::fresh(&schema);
    books_table(&db, &schema, true);
    let run = |n: i64, retitle: bool| {
        let env = StreamEnv::new().with_parallelism(p);
        let sink = JdbcSink::<Book>::insert_into(
            &format!("{schema}.books"),
            JdbcExecutionOptions::default().batch_size(500),
            JdbcConnectionOptions::new(url()),
        )
        .upsert_on(&["id"]);
        flow! { env =>
            source(NumberSequence::new(0, n - 1), Watermarks::no_watermarks())
                .map(move |i| if retitle && i % 1000 == 0 { Book { title: "new".into(), ..book(i) } } else { book(i) })
                .sink_to(sink);
        }
        env.execute("upsert").unwrap();
    };
    run(10_000, false);
    let first = table(&db, &schema);
    assert!(first == expected(10_000));
    run(10_000, false);
    assert!(table(&db, &schema) == first, "a replay changed the table");
    run(10_000, true);
    assert_eq!(
        db.value(&format!(
            "SELECT count(*) FROM {schema}.books WHERE title = 'new'"
        )),
        "10"
    );
    assert_eq!(
        db.value(&format!("SELECT count(*) FROM {schema}.books")),
        "10000"
    );
}

at_parallelism!(
    every_row_in_the_table,
    an_upsert_replay_leaves_the_table_unchanged,
    an_upsert_keeps_the_last_value_of_each_key,
);

fn start_error(sink: JdbcSink<Book>) -> String {
    let env = StreamEnv::new();
    flow! { env =>
        source(NumberSequence::new(0, 9), Watermarks::no_watermarks()).map(book).sink_to(sink);
    }
    env.execute("bad").unwrap_err().to_string()
}

#[test]
fn a_wrong_password_or_a_missing_table_fails_at_start() {
    let db = Db::fresh("start_errors");
    books_table(&db, "start_errors", false);
    let bad_password = url().replace("flow:flow@", "flow:wrong@");
    let e = start_error(typed_sink("start_errors", &bad_password));
    assert!(
        e.contains("password authentication failed") && !e.contains("wrong"),
        "{e}"
    );
    let e = start_error(typed_sink("no_such_schema", &url()));
    assert!(
        e.contains("relation \"no_such_schema.books\" does not exist"),
        "{e}"
    );
    let e = start_error(typed_sink(
        "start_errors",
        "postgresql://flow:flow@127.0.0.1:1/flow",
    ));
    assert!(
        e.contains("cannot start") && e.contains("127.0.0.1:1"),
        "{e}"
    );
    let e = start_error(
        JdbcSink::<Book>::insert_into(
            "start_errors.books",
            JdbcExecutionOptions::default(),
            JdbcConnectionOptions::new(url()),
        )
        .upsert_on(&["isbn"]),
    );
    assert!(e.contains("`isbn` is not a field of Book"), "{e}");
}

#[test]
fn a_value_the_column_cannot_hold_fails_naming_it() {
    let db = Db::fresh("too_big");
    db.exec("CREATE TABLE too_big.t (id BIGINT, n SMALLINT)");
    let env = StreamEnv::new();
    let sink = JdbcSink::<(i64, i64)>::sink(
        "INSERT INTO too_big.t (id, n) VALUES ($1, $2)",
        |r: &(i64, i64), p: &mut Params<'_>| {
            p.add(&r.0).add(&r.1);
        },
        JdbcExecutionOptions::default(),
        JdbcConnectionOptions::new(url()),
    );
    flow! { env =>
        from_collection(vec![(1i64, 2i64)]).sink_to(sink);
    }
    let e = env.execute("too big").unwrap_err().to_string();
    assert!(e.contains("i64") && e.contains("int2"), "{e}");
    assert_eq!(db.value("SELECT count(*) FROM too_big.t"), "0");
}

const ROWS: i64 = 6_000;

/// A slow job into `url` with checkpoints under `ck`; with `crash`, a panic once a checkpoint
/// completed past a third of the rows.
fn slow_job(
    url: &str,
    schema: &str,
    ck: &'static Path,
    p: usize,
    crash: bool,
    restore: bool,
    exactly_once: bool,
) -> flow::Result<flow::JobResult> {
    let mut env = StreamEnv::new()
        .with_parallelism(p)
        .with_checkpoint_interval(Some(Duration::from_millis(20)))
        .with_checkpoint_dir(ck, 1);
    if restore {
        env = env.with_restore("latest");
    }
    let mut sink = JdbcSink::<Book>::insert_into(
        &format!("{schema}.books"),
        JdbcExecutionOptions::default()
            .batch_size(100)
            .batch_interval(Duration::from_millis(10))
            .retry_backoff(Duration::from_millis(50)),
        JdbcConnectionOptions::new(url).connect_timeout(Duration::from_secs(2)),
    );
    if exactly_once {
        sink = sink.exactly_once(JdbcExactlyOnceOptions::default().transaction_id_prefix(schema));
    } else {
        // At least once: rows after the restored checkpoint are written again.
        sink = sink.upsert_on(&["id"]);
    }
    flow! { env =>
        source(NumberSequence::new(0, ROWS - 1), Watermarks::no_watermarks())
            .map(move |i| {
                if crash {
                    crash_once_checkpointed(ck, i, ROWS / 3);
                }
                if i % 10 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
                book(i)
            })
            .sink_to(sink);
    }
    env.execute("slow")
}

/// Exactly once: a job that fails after a checkpoint and is restored leaves every row in the
/// table once (no key: a row written twice would show), and no prepared transaction behind.
fn exactly_once_across_a_crash(p1: usize, p2: usize) {
    let schema = format!("exactly_once_{p1}_{p2}");
    let db = Db::fresh(&schema);
    books_table(&db, &schema, false);
    let dir = tempfile::tempdir().unwrap();
    let ck: &'static Path = Box::leak(dir.path().join("ck").into_boxed_path());
    let e =
        slow_job(&url(), &schema, ck, p1, true, false, true).expect_err("the first run crashes");
    assert!(e.to_string().contains("crash at row"), "{e}");
    let before: i64 = db
        .value(&format!("SELECT count(*) FROM {schema}.books"))
        .parse()
        .unwrap();
    assert!(before < ROWS, "every row was written before the crash");
    slow_job(&url(), &schema, ck, p2, false, true, true).unwrap();
    assert!(
        table(&db, &schema) == expected(ROWS),
        "the table differs from a clean run"
    );
    assert_eq!(
        db.value(&format!(
            "SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE '{schema}-%'"
        )),
        "0",
        "prepared transactions were left behind"
    );
}

#[test]
fn exactly_once_across_a_crash_p1() {
    exactly_once_across_a_crash(1, 1);
}

#[test]
fn exactly_once_across_a_crash_p2() {
    exactly_once_across_a_crash(2, 2);
}

#[test]
fn exactly_once_restored_at_another_parallelism() {
    exactly_once_across_a_crash(2, 1);
}

/// The database stops mid-job: the sink retries, then fails the job naming the error. Rows
/// of completed checkpoints are in the table; restored once the database is back, the job
/// leaves every row there (an upsert on `id`: the rows after the checkpoint written again).
#[test]
fn the_database_going_away_fails_the_job_after_retries_and_loses_no_row() {
    let server = Server { port: 15433 };
    server.start(false);
    let schema = "going_away";
    let db = Db::connect_to(&server.url());
    db.exec(&format!("CREATE SCHEMA {schema}"));
    books_table(&db, schema, true);
    let dir = tempfile::tempdir().unwrap();
    let ck: &'static Path = Box::leak(dir.path().join("ck").into_boxed_path());
    let url = server.url();
    let job = std::thread::spawn(move || slow_job(&url, schema, ck, 1, false, false, false));
    // Stop the server once rows are in and a checkpoint completed after (they were acknowledged).
    let start = std::time::Instant::now();
    let mut first = None;
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no rows acknowledged"
        );
        match first {
            None if db.value(&format!("SELECT count(*) FROM {schema}.books")) != "0" => {
                first = Some(latest_checkpoint(ck));
            }
            Some(n) if latest_checkpoint(ck) > n => break,
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(db);
    server.stop();
    let e = job.join().unwrap().expect_err("the job fails").to_string();
    assert!(e.contains("after 3 retries"), "{e}");
    server.start(true);
    let db = Db::connect_to(&server.url());
    let acknowledged: i64 = db
        .value(&format!("SELECT count(*) FROM {schema}.books"))
        .parse()
        .unwrap();
    assert!(
        acknowledged > 0 && acknowledged < ROWS,
        "{acknowledged} rows before the failure"
    );
    slow_job(&server.url(), schema, ck, 1, false, true, false).unwrap();
    assert!(table(&db, schema) == expected(ROWS), "rows were lost");
}

#[derive(Row, Clone, Debug)]
struct Latest {
    key: i64,
    value: i64,
}

/// An upsert whose batches hold the same key many times: the statement that takes many rows at
/// once is cut where a key repeats (PostgreSQL refuses to update a row twice in one statement),
/// and the last value of every key wins, as with one statement per row.
fn an_upsert_keeps_the_last_value_of_each_key(p: usize) {
    let schema = format!("latest_p{p}");
    let db = Db::fresh(&schema);
    db.exec(&format!(
        "CREATE TABLE {schema}.latest (key BIGINT PRIMARY KEY, value BIGINT NOT NULL)"
    ));
    let env = StreamEnv::new().with_parallelism(p);
    let sink = JdbcSink::<Latest>::insert_into(
        &format!("{schema}.latest"),
        JdbcExecutionOptions::default().batch_size(3_000),
        JdbcConnectionOptions::new(url()),
    )
    .upsert_on(&["key"]);
    flow! { env =>
        // One source subtask, and each key in one sink subtask: each key's rows in order.
        from_collection((0..20_000i64).map(|i| Latest { key: i % 250, value: i }).collect::<Vec<_>>())
            .key_by(|r| r.key)
            .sink_to(sink);
    }
    env.execute("latest").unwrap();
    let rows = db.rows(&format!(
        "SELECT key, value FROM {schema}.latest ORDER BY key"
    ));
    let want: Vec<Vec<String>> = (0..250)
        .map(|k| vec![k.to_string(), (19_750 + k).to_string()])
        .collect();
    assert_eq!(rows, want);
}
