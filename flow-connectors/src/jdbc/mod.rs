//! PostgreSQL: [`JdbcSink`] (Flink's `JdbcSink.sink` and `JdbcSink.exactlyOnceSink`), behind
//! the `postgres` feature, on `tokio-postgres`.
//!
//! - **Statements.** A parameterised statement (`INSERT INTO t (a, b) VALUES ($1, $2)`) with a
//!   typed binder from the row ([`JdbcSink::sink`]), or derived from a `#[derive(Row)]`
//!   struct's fields ([`JdbcSink::insert_into`]), optionally as an upsert
//!   ([`upsert_on`](JdbcSink::upsert_on): `INSERT .. ON CONFLICT (key) DO UPDATE SET ..`), whose
//!   replays after a restore leave the table as it was.
//! - **Batches.** Rows are buffered and written by batch ([`JdbcExecutionOptions`]: by size,
//!   default 5,000, and by age, default 1 s), each batch one transaction whose statements are
//!   pipelined on the connection (a derived statement takes up to 500 rows at once); every row is written at each checkpoint barrier and at the end
//!   of input, so a checkpoint completes only when its rows are in the table (at least once).
//! - **Retries.** A batch that fails for a transient reason (the connection lost, the server
//!   restarting, a serialization failure or deadlock) is retried, reconnecting first, with
//!   exponential backoff (default 3 retries from 100 ms); then the job fails with the error.
//!   A row the database rejects (a constraint, a type) fails the job at once, naming it.
//! - **Exactly once** ([`JdbcSink::exactly_once`]): the rows of each checkpoint are one
//!   transaction, *prepared* at the barrier (`PREPARE TRANSACTION`) and committed when the
//!   checkpoint completes (`COMMIT PREPARED`), PostgreSQL's two-phase commit as Flink's XA sink
//!   uses it. A restored job commits the prepared transactions of the checkpoint it restores and
//!   rolls back later ones. The server needs `max_prepared_transactions` > 0. In an
//!   exactly-once instance group the transactions commit with the group's Kafka
//!   transactions instead (`group`, with the `kafka` feature).
//! - **Start.** The writer connects and prepares its statement when the job starts: a wrong
//!   password, a missing table or a bad statement fails the job then, with the server's message.

#[cfg(feature = "kafka")]
mod group;
mod params;
mod sink;

pub use params::{Params, Value};
pub use sink::{
    JdbcConnectionOptions, JdbcExactlyOnceOptions, JdbcExecutionOptions, JdbcSink, JdbcSinkWriter,
};
