//! flow's sources and sinks. Each connector says what it guarantees.
//!
//! | connector | kind | guarantee |
//! |---|---|---|
//! | [`NumberSequence`] | bounded source, split across subtasks | every number exactly once |
//! | [`DataGeneratorSource`] | rows made from their index, optionally rate-limited; [`RowGenerator`] fills any row type | every index exactly once |
//! | [`CollectionSource`] | bounded source, parallelism 1 | every element exactly once, in order |
//! | [`PrintSink`] | sink to stdout | at-least-once (no checkpoints yet) |
//! | [`CollectSink`] | sink to the caller's [`CollectHandle`] | every row, once the job ends |
//! | [`DiscardSink`] | sink that discards every row; for benchmarks and dry runs | nothing is written |
//! | [`FileSource`] | lines of files and directories (text, CSV, JSON lines; gzip) | every line exactly once, with checkpoints too |
//! | [`FileSink`] | row-format part files | finished files are complete; see its docs |
//! | `jdbc::JdbcSink` (feature `postgres`) | rows into a PostgreSQL table | at least once (batches written at every checkpoint), idempotent as an upsert, or exactly once with prepared transactions |

pub mod collect;
pub mod collection;
pub mod datagen;
pub mod discard;
pub mod print;
pub mod sequence;
mod stop;

pub use collect::{CollectHandle, CollectSink};
pub use collection::CollectionSource;
pub use datagen::{DataGeneratorSource, RowGenerator};
pub use discard::DiscardSink;
pub use print::PrintSink;
pub use sequence::NumberSequence;
pub use stop::StopHandle;

pub mod file;
pub use file::{FileSink, FileSource};

pub mod bad_records;
pub mod format;

#[cfg(feature = "postgres")]
pub mod jdbc;

#[cfg(feature = "kafka")]
pub mod kafka;
