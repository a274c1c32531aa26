//! Files: the row-format [`FileSink`], writing one text line per row into rolling part files.
//!
//! This mirrors Apache Flink's `FileSink.forRowFormat(path, new SimpleStringEncoder<>())`:
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
//! - **Commit.** flow has no checkpoints yet, so a rolled part is finished at once (flushed,
//!   synced and renamed to its final name), and the last part is finished at the end of the
//!   input. Once checkpoints exist, rolled parts will wait as pending files until the checkpoint
//!   that covers them completes, as in Flink. A failed job leaves its open parts in-progress.

mod config;
mod sink;

pub use config::RollingPolicy;
pub use sink::{FileSink, FileSinkWriter};
