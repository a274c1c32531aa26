//! The sink, its options and its per-subtask writer.

use super::params::{values_of, Params, Value};
use flow_runtime::instances::InstanceConfig;
use flow_runtime::snapshot::{StateReader, StateWriter};
use flow_runtime::{
    CheckpointId, Error, Result, Row, RuntimeContext, Sink, SinkWriter, Snapshot, Timestamp,
};
use futures_util::future::try_join_all;
use serde::Serialize;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Statement};

/// How rows are written: batch size and age, retries (Flink's `JdbcExecutionOptions`).
///
/// # Default
/// Batches of 5,000 rows or 1 s, 3 retries with a backoff from 100 ms.
#[derive(Clone, Debug)]
pub struct JdbcExecutionOptions {
    batch_size: usize,
    batch_interval: Duration,
    max_retries: u32,
    retry_backoff: Duration,
}

impl Default for JdbcExecutionOptions {
    fn default() -> Self {
        JdbcExecutionOptions {
            batch_size: 5_000,
            batch_interval: Duration::from_secs(1),
            max_retries: 3,
            retry_backoff: Duration::from_millis(100),
        }
    }
}

impl JdbcExecutionOptions {
    /// Writes a batch once it has `rows` rows (at least 1).
    pub fn batch_size(mut self, rows: usize) -> Self {
        self.batch_size = rows.max(1);
        self
    }
    /// Writes a batch once its first row waited `interval`.
    pub fn batch_interval(mut self, interval: Duration) -> Self {
        self.batch_interval = interval;
        self
    }
    /// Retries a batch that failed for a transient reason up to `n` times.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }
    /// Waits `backoff` before the first retry, twice as long before each next one.
    pub fn retry_backoff(mut self, backoff: Duration) -> Self {
        self.retry_backoff = backoff;
        self
    }
}

/// Where the database is (Flink's `JdbcConnectionOptions`): a PostgreSQL connection URL,
/// `postgresql://user:password@host:port/database` (or key-value, `host=.. user=..`).
#[derive(Clone)]
pub struct JdbcConnectionOptions {
    url: String,
    connect_timeout: Duration,
}

impl JdbcConnectionOptions {
    /// The database at `url`; a 10 s connect timeout.
    pub fn new(url: impl Into<String>) -> Self {
        JdbcConnectionOptions {
            url: url.into(),
            connect_timeout: Duration::from_secs(10),
        }
    }
    /// How long a connection attempt may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The URL without its password, for messages.
    fn display(&self) -> String {
        match self.url.parse::<tokio_postgres::Config>() {
            Ok(c) => {
                let host = match c.get_hosts().first() {
                    Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
                    #[cfg(unix)]
                    Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
                    None => "localhost".into(),
                };
                let port = c.get_ports().first().copied().unwrap_or(5432);
                format!(
                    "postgresql://{}@{host}:{port}/{}",
                    c.get_user().unwrap_or(""),
                    c.get_dbname().unwrap_or("")
                )
            }
            Err(_) => "(an invalid connection URL)".into(),
        }
    }
}

impl fmt::Debug for JdbcConnectionOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JdbcConnectionOptions")
            .field("url", &self.display())
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Exactly-once writing with PostgreSQL's prepared transactions (Flink's
/// `JdbcExactlyOnceOptions`).
#[derive(Clone, Debug, Default)]
pub struct JdbcExactlyOnceOptions {
    prefix: Option<String>,
}

impl JdbcExactlyOnceOptions {
    /// Names the sink's prepared transactions `<prefix>-<subtask>-<checkpoint>` (default:
    /// `flow-` and a hash of the job's name, the operator's and the statement; at most 150
    /// letters, digits, `_`, `.` or `-`). Two jobs writing to one database need different
    /// prefixes: a restored job rolls back the prepared transactions of its prefix that its
    /// checkpoint does not hold.
    pub fn transaction_id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }
}

/// A typed binder: fills a row's statement parameters.
type BindFn<T> = dyn for<'a> Fn(&'a T, &mut Params<'a>) + Send + Sync;

enum Binder<T> {
    /// The user's.
    Typed(Arc<BindFn<T>>),
    /// The row's fields in order, serialized into [`Value`]s.
    Fields(fn(&T, &mut Vec<Value>) -> std::result::Result<(), String>),
}

impl<T> Clone for Binder<T> {
    fn clone(&self) -> Self {
        match self {
            Binder::Typed(f) => Binder::Typed(f.clone()),
            Binder::Fields(f) => Binder::Fields(*f),
        }
    }
}

/// Writes rows to PostgreSQL with a parameterised statement; see the [module](super) docs.
///
/// # Examples
/// ```no_run
/// use flow_connectors::jdbc::{JdbcConnectionOptions, JdbcExecutionOptions, JdbcSink, Params};
///
/// struct Book { id: i64, title: String }
///
/// let books = JdbcSink::sink(
///     "INSERT INTO books (id, title) VALUES ($1, $2)",
///     |b: &Book, p: &mut Params<'_>| {
///         p.add(&b.id).add(&b.title);
///     },
///     JdbcExecutionOptions::default().batch_size(1_000),
///     JdbcConnectionOptions::new("postgresql://flow:flow@127.0.0.1:5432/shop"),
/// );
/// ```
pub struct JdbcSink<T> {
    sql: String,
    binder: Binder<T>,
    execution: JdbcExecutionOptions,
    connection: JdbcConnectionOptions,
    exactly_once: Option<JdbcExactlyOnceOptions>,
    /// For a derived statement: the table and its columns, to rewrite it as an upsert.
    derived: Option<(String, Vec<&'static str>)>,
    /// For a derived statement: how to write many rows in one statement.
    multi: Option<MultiRow>,
    /// A misuse of the builder, reported when the job starts.
    invalid: Option<String>,
}

/// A derived statement written for many rows at once: `INSERT INTO t (a, b) VALUES ($1, $2),
/// ($3, $4), ..` and its `ON CONFLICT` clause, with the key columns' positions (an upsert cannot
/// touch one key twice in one statement, so a batch is cut where a key repeats).
#[derive(Clone, Debug)]
struct MultiRow {
    head: String,
    tail: String,
    columns: usize,
    keys: Vec<usize>,
}

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// At most this many rows in one statement (and never more than 65,535 parameters).
const ROWS_PER_STATEMENT: usize = 500;

impl MultiRow {
    fn rows_per_statement(&self) -> usize {
        ROWS_PER_STATEMENT.min(65_535 / self.columns.max(1)).max(1)
    }

    /// The statement for `rows` rows.
    fn sql(&self, rows: usize) -> String {
        let mut sql = String::with_capacity(self.head.len() + rows * self.columns * 5);
        sql.push_str(&self.head);
        sql.push_str(" VALUES ");
        for r in 0..rows {
            if r > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for c in 0..self.columns {
                if c > 0 {
                    sql.push_str(", ");
                }
                sql.push('$');
                sql.push_str(&(r * self.columns + c + 1).to_string());
            }
            sql.push(')');
        }
        sql.push_str(&self.tail);
        sql
    }
}

impl<T: Send + Sync + 'static> JdbcSink<T> {
    /// Writes every row with `sql`, its parameters bound by `binder` (Flink's `JdbcSink.sink`).
    pub fn sink(
        sql: impl Into<String>,
        binder: impl for<'a> Fn(&'a T, &mut Params<'a>) + Send + Sync + 'static,
        execution: JdbcExecutionOptions,
        connection: JdbcConnectionOptions,
    ) -> Self {
        JdbcSink {
            sql: sql.into(),
            binder: Binder::Typed(Arc::new(binder)),
            execution,
            connection,
            exactly_once: None,
            derived: None,
            multi: None,
            invalid: None,
        }
    }

    /// [`JdbcSink::sink`], exactly once (Flink's `JdbcSink.exactlyOnceSink`): see
    /// [`exactly_once`](JdbcSink::exactly_once).
    pub fn exactly_once_sink(
        sql: impl Into<String>,
        binder: impl for<'a> Fn(&'a T, &mut Params<'a>) + Send + Sync + 'static,
        execution: JdbcExecutionOptions,
        connection: JdbcConnectionOptions,
        options: JdbcExactlyOnceOptions,
    ) -> Self {
        Self::sink(sql, binder, execution, connection).exactly_once(options)
    }

    /// Each checkpoint's rows in one transaction, prepared at the barrier and committed when
    /// the checkpoint completes: a restored job leaves the table as a run without failure.
    /// Rows reach the table only when a checkpoint completes (or the job ends), and are kept
    /// in memory until their checkpoint's barrier.
    pub fn exactly_once(mut self, options: JdbcExactlyOnceOptions) -> Self {
        self.exactly_once = Some(options);
        self
    }

    /// The statement.
    pub fn sql(&self) -> &str {
        &self.sql
    }
}

impl<T: Row + Serialize + Send + Sync + 'static> JdbcSink<T> {
    /// `INSERT INTO table (field1, field2, ..) VALUES ($1, $2, ..)` for the fields of the
    /// `#[derive(Row)]` struct `T`, each bound from its field (integers convert to the column's
    /// integer type when they fit).
    pub fn insert_into(
        table: &str,
        execution: JdbcExecutionOptions,
        connection: JdbcConnectionOptions,
    ) -> Self {
        let columns: Vec<&'static str> = T::SCHEMA.fields.iter().map(|f| f.name).collect();
        JdbcSink {
            sql: insert_sql(table, &columns),
            binder: Binder::Fields(|row, out| values_of(row, out)),
            execution,
            connection,
            exactly_once: None,
            multi: Some(MultiRow {
                head: format!("INSERT INTO {table} ({})", columns.join(", ")),
                tail: String::new(),
                columns: columns.len(),
                keys: Vec::new(),
            }),
            derived: Some((table.to_string(), columns)),
            invalid: None,
        }
    }

    /// Turns [`insert_into`](JdbcSink::insert_into)'s statement into an upsert:
    /// `.. ON CONFLICT (keys) DO UPDATE SET` every other column (or `DO NOTHING` when all are
    /// keys). Writing a row again leaves the table as it was, so replays after a restore are
    /// harmless. The keys must be a unique constraint of the table.
    ///
    /// A key that is not one of `T`'s fields, or no key, fails the job at start.
    pub fn upsert_on(mut self, keys: &[&str]) -> Self {
        let Some((table, columns)) = &self.derived else {
            self.invalid = Some("upsert_on applies to JdbcSink::insert_into".into());
            return self;
        };
        if keys.is_empty() {
            self.invalid = Some("upsert_on needs at least one key column".into());
            return self;
        }
        if let Some(k) = keys.iter().find(|k| !columns.contains(k)) {
            self.invalid = Some(format!(
                "upsert_on: `{k}` is not a field of {} (its fields: {})",
                T::SCHEMA.name,
                columns.join(", ")
            ));
            return self;
        }
        let updates: Vec<String> = columns
            .iter()
            .filter(|c| !keys.contains(c))
            .map(|c| format!("{c} = EXCLUDED.{c}"))
            .collect();
        let action = if updates.is_empty() {
            "DO NOTHING".to_string()
        } else {
            format!("DO UPDATE SET {}", updates.join(", "))
        };
        let tail = format!(" ON CONFLICT ({}) {action}", keys.join(", "));
        self.sql = format!("{}{tail}", insert_sql(table, columns));
        let key_positions = keys
            .iter()
            .filter_map(|k| columns.iter().position(|c| c == k))
            .collect();
        if let Some(m) = &mut self.multi {
            m.tail = tail;
            m.keys = key_positions;
        }
        self
    }
}

fn insert_sql(table: &str, columns: &[&str]) -> String {
    let params: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        columns.join(", "),
        params.join(", ")
    )
}

impl<T> JdbcSink<T> {
    /// [`Sink::check`]: exactly-once in an instance group needs an exactly-once group
    /// (`exactly_once`: `--processing-guarantee exactly-once`), whose Kafka transactions
    /// commit the sink's, and the `kafka` feature.
    fn check_group(&self, group: Option<bool>) -> Result<()> {
        let (Some(exactly_once), Some(options)) = (group, &self.exactly_once) else {
            return Ok(());
        };
        let refused = if !cfg!(feature = "kafka") {
            "exactly-once in an instance group needs flow's `kafka` feature (the group's Kafka transactions commit the sink's)".to_string()
        } else if !exactly_once {
            "exactly-once in an instance group needs --processing-guarantee exactly-once: the group's Kafka transactions commit the sink's prepared transactions (at least once, use the at-least-once sink with an idempotent statement, an upsert, which writes its batch at each of the group's commits)".to_string()
        } else {
            #[cfg(feature = "kafka")]
            if let Some(p) = options
                .prefix
                .as_ref()
                .filter(|p| p.len() > super::group::MAX_PREFIX)
            {
                return Err(Error::Connector {
                    connector: format!("JdbcSink({})", self.connection.display()),
                    message: format!(
                        "the transaction id prefix `{p}` is too long for an instance group: at most {} characters there (the group's transaction ids name the instance's stage, the subtask, the run and the commit)",
                        super::group::MAX_PREFIX
                    ),
                });
            }
            #[cfg(not(feature = "kafka"))]
            let _ = options;
            return Ok(());
        };
        Err(Error::Connector {
            connector: format!("JdbcSink({})", self.connection.display()),
            message: refused,
        })
    }
}

impl<T> fmt::Debug for JdbcSink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JdbcSink")
            .field("sql", &self.sql)
            .field("execution", &self.execution)
            .field("connection", &self.connection)
            .field("exactly_once", &self.exactly_once)
            .finish()
    }
}

/// The server's message for `e` (with its detail), or the client's.
fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(d) => format!("{}: {} ({d})", db.severity(), db.message()),
            None => format!("{}: {}", db.severity(), db.message()),
        },
        None => {
            let mut s = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(inner) = source {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                source = inner.source();
            }
            s
        }
    }
}

/// Whether `e` may go away by trying again: a lost connection, a server starting or stopping,
/// a serialization failure or deadlock.
fn transient(e: &tokio_postgres::Error) -> bool {
    let Some(code) = e.code() else {
        // No answer from the server: a closed connection or an I/O error (a timeout) may pass;
        // a value the client cannot encode will not.
        if e.is_closed() {
            return true;
        }
        let mut source = std::error::Error::source(e);
        while let Some(inner) = source {
            if inner.is::<std::io::Error>() {
                return true;
            }
            source = inner.source();
        }
        return false;
    };
    [
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
        SqlState::TOO_MANY_CONNECTIONS,
        SqlState::CONNECTION_EXCEPTION,
        SqlState::CONNECTION_FAILURE,
        SqlState::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
    ]
    .contains(code)
}

impl<T: Send + Sync + 'static> Sink<T> for JdbcSink<T> {
    type Writer = JdbcSinkWriter<T>;

    /// Exactly-once in an instance group needs `--processing-guarantee exactly-once`: its
    /// prepared transactions commit with the group's Kafka transactions (see
    /// [`super::group`]).
    fn check(&self, instances: Option<&InstanceConfig>) -> Result<()> {
        self.check_group(instances.map(|i| i.exactly_once))
    }

    /// Connects and prepares the statement: a database that cannot be reached, a wrong
    /// password or a statement the server rejects (a missing table) fails the job here.
    fn create_writer(&self, ctx: &RuntimeContext) -> Result<JdbcSinkWriter<T>> {
        let name = format!("JdbcSink({})", self.connection.display());
        if let Some(e) = &self.invalid {
            return Err(Error::Connector {
                connector: name,
                message: e.clone(),
            });
        }
        // Again, for a sink flow! does not check (a source's dead letters).
        let exactly_once_group = ctx.in_instance_group().then(|| {
            #[cfg(feature = "kafka")]
            let eos = crate::kafka::origin::is_exactly_once(ctx.subtask_key().run);
            #[cfg(not(feature = "kafka"))]
            let eos = false;
            eos
        });
        self.check_group(exactly_once_group)?;
        let db = Db::new(
            name.clone(),
            Some(self.sql.clone()),
            &self.connection,
            &self.execution,
        )?;
        let prefix = self.exactly_once.as_ref().map(|o| {
            o.prefix.clone().unwrap_or_else(|| {
                let id = (ctx.job_name(), ctx.operator_name(), &self.sql);
                format!("flow-{:016x}", flow_runtime::hash::stable_hash(&id))
            })
        });
        if let Some(p) = &prefix {
            let ok = p.len() <= 150
                && !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !ok {
                return Err(Error::Connector {
                    connector: name,
                    message: format!(
                        "the transaction id prefix `{p}` must be 1 to 150 letters, digits, `_`, `.` or `-`"
                    ),
                });
            }
        }
        let mut w = JdbcSinkWriter {
            db,
            multi: self.multi.clone(),
            binder: self.binder.clone(),
            rows: Vec::new(),
            first_row: None,
            failed: None,
            exactly_once: prefix.map(|prefix| Transactions {
                prefix,
                prepared: Vec::new(),
                recovered: false,
            }),
            subtask: ctx.subtask_index(),
            parallelism: ctx.parallelism(),
            finished: false,
            #[cfg(feature = "kafka")]
            group: None,
        };
        w.db.connect()
            .map_err(|e| w.error(format!("cannot start: {e}")))?;
        #[cfg(feature = "kafka")]
        if let (Some(true), Some(t)) = (exactly_once_group, &w.exactly_once) {
            let (connection, execution) = (&self.connection, &self.execution);
            let finisher = Db::new(w.db.name.clone(), None, connection, execution)?;
            let prefix = t.prefix.clone();
            w.group = Some(super::group::InGroup::open(
                ctx, &prefix, &mut w.db, finisher,
            )?);
        }
        Ok(w)
    }
}

/// An open connection with the prepared statement (and the multi-row ones, by row count).
struct Connection {
    client: Client,
    /// `None` on a connection that writes no rows ([`Db::sql`]).
    statement: Option<Statement>,
    multi: std::cell::RefCell<std::collections::HashMap<usize, Statement>>,
}

/// Exactly-once state: the transactions prepared and not yet committed.
struct Transactions {
    prefix: String,
    /// (checkpoint, transaction id), oldest first.
    prepared: Vec<(CheckpointId, String)>,
    /// Whether the prepared transactions an earlier run left were dealt with.
    recovered: bool,
}

/// A connection to the database, reconnected and retried as the execution options say: the
/// writer's; in an instance group also one that finishes its prepared transactions when the
/// group's Kafka transaction committed ([`InGroup`]).
pub(super) struct Db {
    name: String,
    /// The statement it writes rows with (`None` for one that only finishes prepared
    /// transactions: nothing to prepare).
    sql: Option<String>,
    connection: JdbcConnectionOptions,
    execution: JdbcExecutionOptions,
    rt: tokio::runtime::Runtime,
    conn: Option<Connection>,
}

/// One subtask's writer of a [`JdbcSink`].
pub struct JdbcSinkWriter<T> {
    db: Db,
    multi: Option<MultiRow>,
    binder: Binder<T>,
    /// Rows not written yet (exactly once: since the last barrier).
    rows: Vec<T>,
    /// When the oldest row of `rows` arrived.
    first_row: Option<Instant>,
    /// A write that failed, for the next flush to report.
    failed: Option<Error>,
    exactly_once: Option<Transactions>,
    subtask: usize,
    parallelism: usize,
    finished: bool,
    /// Exactly-once in an instance group: its transactions commit with the group's.
    #[cfg(feature = "kafka")]
    group: Option<super::group::InGroup>,
}

impl Db {
    fn new(
        name: String,
        sql: Option<String>,
        connection: &JdbcConnectionOptions,
        execution: &JdbcExecutionOptions,
    ) -> Result<Db> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Connector {
                connector: name.clone(),
                message: format!("cannot start the client runtime: {e}"),
            })?;
        Ok(Db {
            name,
            sql,
            connection: connection.clone(),
            execution: execution.clone(),
            rt,
            conn: None,
        })
    }

    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn error(&self, message: String) -> Error {
        Error::Connector {
            connector: self.name.clone(),
            message,
        }
    }

    /// (Re)connects and prepares the statement; the server's message on failure.
    fn connect(&mut self) -> std::result::Result<(), String> {
        self.conn = None;
        let mut config: tokio_postgres::Config = self
            .connection
            .url
            .parse()
            .map_err(|e| format!("invalid connection URL: {e}"))?;
        config.connect_timeout(self.connection.connect_timeout);
        let sql = self.sql.clone();
        let conn = self.rt.block_on(async {
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            let statement = match &sql {
                Some(sql) => Some(client.prepare(sql).await?),
                None => None,
            };
            Ok::<_, tokio_postgres::Error>(Connection {
                client,
                statement,
                multi: Default::default(),
            })
        });
        match conn {
            Ok(c) => {
                self.conn = Some(c);
                Ok(())
            }
            Err(e) => Err(pg_message(&e)),
        }
    }

    /// Runs `work` on the connection, retrying transient failures with backoff (reconnecting
    /// when the connection is gone); a statement error fails at once.
    fn with_retries<R>(
        &mut self,
        what: &str,
        mut work: impl FnMut(
            &tokio::runtime::Runtime,
            &Connection,
        ) -> std::result::Result<R, tokio_postgres::Error>,
    ) -> Result<R> {
        let mut attempt = 0;
        loop {
            // One attempt: (re)connect if needed, then the work.
            let outcome = if self.conn.as_ref().is_none_or(|c| c.client.is_closed()) {
                match self.connect() {
                    Ok(()) => None,
                    Err(e) => Some((true, format!("cannot reconnect: {e}"))),
                }
            } else {
                None
            };
            let (retry, message) = match (outcome, &self.conn) {
                (Some(failed), _) => failed,
                (None, Some(c)) => match work(&self.rt, c) {
                    Ok(r) => return Ok(r),
                    Err(e) => {
                        // Leave the failed transaction, if the connection still holds one.
                        if !c.client.is_closed() {
                            let _ = self.rt.block_on(c.client.batch_execute("ROLLBACK"));
                        }
                        (transient(&e), pg_message(&e))
                    }
                },
                (None, None) => (true, "no connection".to_string()),
            };
            if !retry || attempt >= self.execution.max_retries {
                let tries = if attempt == 0 {
                    String::new()
                } else {
                    format!(" after {attempt} retries")
                };
                return Err(self.error(format!("{what} failed{tries}: {message}")));
            }
            let wait = (self.execution.retry_backoff * 2u32.saturating_pow(attempt.min(16)))
                .min(MAX_BACKOFF);
            tracing::warn!(connector = %self.name, attempt = attempt + 1, error = %message, "{what} failed; retrying in {wait:?}");
            // On a worker, its other tasks run meanwhile.
            flow_runtime::sleep(wait);
            attempt += 1;
        }
    }

    /// Runs `sql` (a `COMMIT PREPARED` or `ROLLBACK PREPARED`) on transaction `gid`; one
    /// already gone (committed before a crash) is fine.
    pub(super) fn finish_prepared(&mut self, verb: &str, gid: &str) -> Result<()> {
        let sql = format!("{verb} PREPARED '{gid}'");
        self.with_retries(&format!("{verb} PREPARED `{gid}`"), |rt, c| {
            match rt.block_on(c.client.batch_execute(&sql)) {
                Err(e) if e.code() == Some(&SqlState::UNDEFINED_OBJECT) => Ok(()),
                r => r,
            }
        })
    }

    /// The ids of the prepared transactions of this database that start with `head`.
    pub(super) fn prepared_with(&mut self, head: &str) -> Result<Vec<String>> {
        let pattern = format!("{}%", head.replace('%', "\\%").replace('_', "\\_"));
        self.with_retries("listing prepared transactions", |rt, c| {
            rt.block_on(c.client.query(
                "SELECT gid FROM pg_prepared_xacts WHERE gid LIKE $1 AND database = current_database()",
                &[&pattern],
            ))
            .map(|rows| rows.iter().map(|r| r.get::<_, String>(0)).collect())
        })
    }
}

impl<T> JdbcSinkWriter<T> {
    fn error(&self, message: String) -> Error {
        self.db.error(message)
    }

    /// Writes the buffered rows: one transaction, committed, or (exactly once) prepared as
    /// `prepare`.
    fn write_rows(&mut self, prepare: Option<&str>) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        // Bind every row once; the attempts reuse the parameters, which borrow the rows: they
        // leave the writer meanwhile, and come back if the write fails.
        let rows = std::mem::take(&mut self.rows);
        let binder = self.binder.clone();
        let mut values: Vec<Vec<Value>> = Vec::new();
        if let Binder::Fields(f) = &binder {
            values.reserve(rows.len());
            for row in &rows {
                let mut v = Vec::new();
                if let Err(e) = f(row, &mut v) {
                    let e = self.error(format!("a row cannot be bound: {e}"));
                    self.rows = rows;
                    return Err(e);
                }
                values.push(v);
            }
        }
        // Each statement to run: its row count (0: the one-row statement) and its parameters.
        let statements: Vec<(usize, Vec<&(dyn ToSql + Sync)>)> = match (&binder, &self.multi) {
            (Binder::Typed(bind), _) => rows
                .iter()
                .map(|row| {
                    let mut p = Params { values: Vec::new() };
                    bind(row, &mut p);
                    (0, p.values)
                })
                .collect(),
            (Binder::Fields(_), Some(multi)) => multi_row_statements(multi, &values),
            (Binder::Fields(_), None) => values
                .iter()
                .map(|v| (0, v.iter().map(|x| x as &(dyn ToSql + Sync)).collect()))
                .collect(),
        };
        let multi = self.multi.clone();
        let chunk = self.db.execution.batch_size;
        let n = rows.len();
        let what = match prepare {
            Some(gid) => format!("writing {n} rows as transaction `{gid}`"),
            None => format!("writing a batch of {n} rows"),
        };
        let mut tries = 0;
        let result = self.db.with_retries(&what, |rt, c| {
            tries += 1;
            rt.block_on(async {
                if let (Some(gid), true) = (prepare, tries > 1) {
                    // A PREPARE whose answer was lost may have succeeded: then it holds the rows
                    // (and their locks), and writing them again would wait on it.
                    let found = c
                        .client
                        .query_opt("SELECT 1 FROM pg_prepared_xacts WHERE gid = $1", &[&gid])
                        .await?;
                    if found.is_some() {
                        return Ok(());
                    }
                }
                c.client.batch_execute("BEGIN").await?;
                // The multi-row statements this batch needs, prepared once per connection.
                if let Some(m) = &multi {
                    for (size, _) in &statements {
                        if *size > 0 && !c.multi.borrow().contains_key(size) {
                            let st = c.client.prepare(&m.sql(*size)).await?;
                            c.multi.borrow_mut().insert(*size, st);
                        }
                    }
                }
                let prepared = c.multi.borrow().clone();
                for part in statements.chunks(chunk) {
                    // Pipelined: every statement is sent before the first answer is read.
                    try_join_all(part.iter().map(|(size, p)| {
                        let st = if *size == 0 {
                            (c.statement.as_ref())
                                .expect("a writer's connection prepares its statement")
                        } else {
                            &prepared[size]
                        };
                        c.client.execute(st, p)
                    }))
                    .await?;
                }
                match prepare {
                    // An id already in use is an error: another sink with the same prefix.
                    Some(gid) => {
                        c.client
                            .batch_execute(&format!("PREPARE TRANSACTION '{gid}'"))
                            .await
                    }
                    None => c.client.batch_execute("COMMIT").await,
                }
            })
        });
        drop(statements);
        drop(values);
        match result {
            Ok(()) => {
                self.first_row = None;
                Ok(())
            }
            Err(e) => {
                self.rows = rows;
                Err(e)
            }
        }
    }

    /// Rolls back the prepared transactions an earlier run of this sink left that this
    /// subtask owns (old subtask `j` with `j % parallelism == subtask`) and no checkpoint
    /// being restored holds.
    fn recover(&mut self) -> Result<()> {
        let Some(t) = &self.exactly_once else {
            return Ok(());
        };
        if t.recovered {
            return Ok(());
        }
        let head = format!("{}-", t.prefix);
        let prefix_len = head.len();
        for gid in self.db.prepared_with(&head)? {
            let owner = gid
                .get(prefix_len..)
                .and_then(|rest| rest.split('-').next())
                .and_then(|j| j.parse::<usize>().ok());
            if owner.is_some_and(|j| j % self.parallelism == self.subtask) {
                tracing::info!(connector = %self.db.name, gid, "rolling back a transaction an earlier run prepared");
                self.db.finish_prepared("ROLLBACK", &gid)?;
            }
        }
        if let Some(t) = &mut self.exactly_once {
            t.recovered = true;
        }
        Ok(())
    }

    /// In an instance group: prepares the rows since the last commit as one transaction and
    /// enlists it in the origin's next commit.
    #[cfg(feature = "kafka")]
    fn prepare_for_group(&mut self) -> Result<()> {
        let Some(g) = &mut self.group else {
            return Ok(());
        };
        if self.rows.is_empty() {
            return Ok(());
        }
        let (gid, commit) = g.next_id(&self.db.name)?;
        self.write_rows(Some(&gid))?;
        match &mut self.group {
            Some(g) => g.enlist(gid, commit),
            None => Ok(()),
        }
    }

    /// Writes the buffered rows if the batch is full or old enough (at least once), keeping
    /// the error for the next flush.
    fn maybe_write(&mut self, force: bool) -> Result<()> {
        if self.exactly_once.is_some() {
            return Ok(());
        }
        let due = self.rows.len() >= self.db.execution.batch_size
            || self
                .first_row
                .is_some_and(|t| t.elapsed() >= self.db.execution.batch_interval);
        if force || due {
            self.write_rows(None)?;
        }
        Ok(())
    }

    fn take_failure(&mut self) -> Result<()> {
        match self.failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// The rows' values as multi-row statements of at most [`MultiRow::rows_per_statement`] rows,
/// in order; for an upsert, a statement ends before a row whose key it already has.
fn multi_row_statements<'a>(
    multi: &MultiRow,
    values: &'a [Vec<Value>],
) -> Vec<(usize, Vec<&'a (dyn ToSql + Sync)>)> {
    let most = multi.rows_per_statement();
    let mut out = Vec::with_capacity(values.len() / most + 1);
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
    let mut rows = 0;
    let mut keys: std::collections::HashSet<String> = std::collections::HashSet::new();
    for v in values {
        let key = (!multi.keys.is_empty()).then(|| {
            let k: Vec<&Value> = multi.keys.iter().map(|&i| &v[i]).collect();
            format!("{k:?}")
        });
        let repeat = key.as_ref().is_some_and(|k| keys.contains(k));
        if rows == most || repeat {
            out.push((rows, std::mem::take(&mut params)));
            rows = 0;
            keys.clear();
        }
        if let Some(k) = key {
            keys.insert(k);
        }
        params.extend(v.iter().map(|x| x as &(dyn ToSql + Sync)));
        rows += 1;
    }
    if rows > 0 {
        out.push((rows, params));
    }
    out
}

impl<T: Send + Sync + 'static> SinkWriter<T> for JdbcSinkWriter<T> {
    #[inline]
    fn write(&mut self, row: T, _: Timestamp) {
        if self.rows.is_empty() {
            self.first_row = Some(Instant::now());
        }
        self.rows.push(row);
        if self.exactly_once.is_none()
            && self.rows.len() >= self.db.execution.batch_size
            && self.failed.is_none()
        {
            if let Err(e) = self.write_rows(None) {
                self.failed = Some(e);
            }
        }
    }

    fn flush(&mut self) -> Result<()> {
        self.take_failure()?;
        self.maybe_write(false)
    }

    /// At least once: writes every buffered row. Exactly once: writes the rows since the last
    /// barrier as one prepared transaction and records it in the checkpoint.
    fn checkpoint(&mut self, id: CheckpointId, state: &mut StateWriter) -> Result<Snapshot> {
        self.take_failure()?;
        if self.exactly_once.is_none() {
            self.maybe_write(true)?;
            return Ok(Snapshot::Taken);
        }
        #[cfg(feature = "kafka")]
        if self.group.is_some() {
            // A commit of the group: the state is not kept, the origin commits the rows.
            self.prepare_for_group()?;
            return Ok(Snapshot::Taken);
        }
        self.recover()?;
        if !self.rows.is_empty() {
            let prefix = &self.exactly_once.as_ref().expect("exactly once").prefix;
            let gid = format!("{prefix}-{}-{id}", self.subtask);
            self.write_rows(Some(&gid))?;
            if let Some(t) = &mut self.exactly_once {
                t.prepared.push((id, gid));
            }
        }
        let t = self.exactly_once.as_ref().expect("exactly once");
        state.list("prepared", t.prepared.iter().map(|p| &p.1))?;
        Ok(Snapshot::Taken)
    }

    /// Exactly once: commits the transactions prepared for checkpoint `id` and earlier.
    /// (In an instance group its origin commits them after its Kafka transaction.)
    fn checkpoint_complete(&mut self, id: CheckpointId) -> Result<()> {
        #[cfg(feature = "kafka")]
        if self.group.is_some() {
            return Ok(());
        }
        let Some(t) = &mut self.exactly_once else {
            return Ok(());
        };
        let done: Vec<String> = t
            .prepared
            .iter()
            .filter(|p| p.0 <= id)
            .map(|p| p.1.clone())
            .collect();
        t.prepared.retain(|p| p.0 > id);
        for gid in done {
            self.db.finish_prepared("COMMIT", &gid)?;
        }
        Ok(())
    }

    /// Exactly once: commits the transactions the checkpoint holds for this subtask's share of
    /// the old subtasks (the checkpoint completed), then rolls back what else they prepared.
    fn restore(&mut self, state: &StateReader) -> Result<()> {
        if self.exactly_once.is_none() {
            return Ok(());
        }
        for gid in state.list::<String>("prepared")? {
            self.db.finish_prepared("COMMIT", &gid)?;
        }
        self.recover()
    }

    fn finish(&mut self) -> Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        self.take_failure()?;
        // In an instance group: the last rows go with the origin's final commit.
        #[cfg(feature = "kafka")]
        if self.group.is_some() {
            self.prepare_for_group()?;
            return self.group.as_mut().map_or(Ok(()), |g| g.end());
        }
        // At least once: the last rows now. Exactly once: they are prepared by the final
        // checkpoint and committed when the job ended well.
        self.maybe_write(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink() -> JdbcSink<(i64,)> {
        JdbcSink::<(i64,)>::exactly_once_sink(
            "INSERT INTO t (v) VALUES ($1)",
            |row, p| {
                p.add(&row.0);
            },
            JdbcExecutionOptions::default(),
            JdbcConnectionOptions::new("postgres://127.0.0.1:1/none"),
            JdbcExactlyOnceOptions::default(),
        )
    }

    /// Refused before it connects (the address is never reached).
    #[test]
    fn exactly_once_in_an_at_least_once_group_is_refused() {
        let mut group = InstanceConfig::new("g", "127.0.0.1:1");
        let e = sink().check(Some(&group)).expect_err("refused").to_string();
        assert!(
            e.contains("needs --processing-guarantee exactly-once"),
            "{e}"
        );
        group.exactly_once = true;
        let accepted = sink().check(Some(&group));
        assert_eq!(accepted.is_ok(), cfg!(feature = "kafka"), "{accepted:?}");
        assert!(sink().check(None).is_ok());
    }

    /// A group's transaction ids are longer than a checkpoint's: a prefix that fits outside
    /// a group (at most 150) may not fit in one.
    #[cfg(feature = "kafka")]
    #[test]
    fn a_transaction_id_prefix_too_long_for_a_group_is_refused() {
        let mut group = InstanceConfig::new("g", "127.0.0.1:1");
        group.exactly_once = true;
        let long = |n| {
            sink().exactly_once(
                JdbcExactlyOnceOptions::default().transaction_id_prefix("p".repeat(n)),
            )
        };
        let e = long(super::super::group::MAX_PREFIX + 1)
            .check(Some(&group))
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains("too long for an instance group: at most 119 characters"),
            "{e}"
        );
        assert!(long(super::super::group::MAX_PREFIX)
            .check(Some(&group))
            .is_ok());
        assert!(long(150).check(None).is_ok(), "outside a group");
    }

    #[test]
    fn multi_row_statements_cut_where_a_key_repeats() {
        let m = MultiRow {
            head: "INSERT INTO t (k, v)".into(),
            tail: " ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v".into(),
            columns: 2,
            keys: vec![0],
        };
        assert_eq!(
            m.sql(2),
            "INSERT INTO t (k, v) VALUES ($1, $2), ($3, $4) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
        );
        let row = |k: i128, v: i128| vec![Value::Int(k), Value::Int(v)];
        let values = vec![row(1, 1), row(2, 2), row(1, 3), row(3, 4)];
        let sizes: Vec<usize> = multi_row_statements(&m, &values)
            .iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(
            sizes,
            vec![2, 2],
            "the second row of key 1 starts a statement"
        );
        let plain = MultiRow { keys: vec![], ..m };
        let many: Vec<Vec<Value>> = (0..1_201).map(|i| row(i % 3, i)).collect();
        let sizes: Vec<usize> = multi_row_statements(&plain, &many)
            .iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(sizes, vec![500, 500, 201]);
    }
}
