//! Files: [`FileSource`], reading the lines of files and directories as rows (text, CSV, JSON
//! lines, gzip or not), and the row-format [`FileSink`], writing one text line per row into
//! rolling part files.
//!
//! The sink mirrors Apache Flink's `FileSink.forRowFormat(path, new SimpleStringEncoder<>())`:
//!
//! - **Layout.** Flink's default bucket assigner puts rows into date-time buckets
//!   (`yyyy-MM-dd--HH` sub-directories). flow has no bucket assigner yet: every subtask writes
//!   its part files directly into the base directory, which is created when the job starts.
//! - **Names.** A finished part is `<prefix>-<uuid>-<subtask>-<count><suffix>`, where the UUID is
//!   drawn once per [`FileSink`] value (shared by all its subtasks), `subtask` is the 0-based
//!   subtask index and `count` numbers a subtask's parts from 0. While it is written a part is
//!   hidden as `.<name>.inprogress.<uuid>`, so readers listing the directory for non-hidden
//!   files see finished parts only.
//! - **Rolling.** A [`RollingPolicy`] (Flink's `DefaultRollingPolicy`) finishes a part by size,
//!   age or inactivity; a subtask opens a part on its first row, so an idle subtask writes no
//!   file.
//! - **Commit (two-phase, as Flink's).** A rolled part is closed (flushed and synced) and waits
//!   under its hidden name. At a checkpoint barrier the open part is closed too, and every
//!   closed part becomes *pending* for that checkpoint (recorded in it); when the checkpoint
//!   completes, its pending parts are renamed to their final names. At the end of input the
//!   last part is closed and committed once the whole job ended well. A job restored from a
//!   checkpoint commits the parts that checkpoint recorded (it completed) and removes every
//!   other hidden part an earlier run of the sink left in the directory: their rows come after
//!   the checkpoint and are written again. So finished files hold each row exactly once; a
//!   failed job leaves its uncommitted parts hidden.
//! - **Instance groups.** A group takes no checkpoints: its commits are the sink's (README,
//!   "Scaling out"). In an exactly-once group the parts commit with the group's Kafka
//!   transactions (`group`, with the `kafka` feature).

mod config;
mod format;
#[cfg(feature = "kafka")]
mod group;
mod sink;
mod source;

pub use config::RollingPolicy;
pub use format::LineFormat;
pub use sink::{FileSink, FileSinkWriter};
pub use source::{FileSource, FileSourceReader, FileSplit};
