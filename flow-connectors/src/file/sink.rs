//! The row-format file sink and its per-subtask writer.

use super::config::{PartConfig, RollingPolicy};
use flow_runtime::snapshot::{StateReader, StateWriter};
use flow_runtime::{
    CheckpointId, DisplayRow, Error, Result, RowText, RuntimeContext, Sink, SinkWriter, Snapshot,
    Timestamp,
};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::marker::PhantomData;
use std::mem;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Writes each row as one line of text into rolling part files under a directory (Flink's
/// `FileSink` in row format with the `SimpleStringEncoder`).
///
/// A row is written as its text form ([`RowText`]: `(1, 2)` for a tuple) followed by `'\n'`.
/// See the [module documentation](super) for the file layout, names and commit protocol.
///
/// # Examples
/// ```
/// use flow_connectors::file::{FileSink, RollingPolicy};
/// use std::time::Duration;
///
/// let sink: FileSink<(i64, String)> = FileSink::row_format("out/")
///     .part_prefix("events")
///     .part_suffix(".txt")
///     .rolling_policy(
///         RollingPolicy::default_policy()
///             .max_part_size(1024 * 1024)
///             .rollover_interval(Duration::from_secs(15 * 60)),
///     );
/// assert_eq!(sink.path(), std::path::Path::new("out/"));
/// ```
pub struct FileSink<T> {
    path: PathBuf,
    uuid: String,
    parts: PartConfig,
    policy: RollingPolicy,
    row: PhantomData<fn(T)>,
}

impl<T> FileSink<T> {
    /// A sink writing rows as text lines into part files directly under the directory `path`.
    ///
    /// Nothing is touched until the job starts: each subtask then creates the directory (and its
    /// parents) if needed.
    ///
    /// # Default
    /// Part prefix `part`, no suffix, [`RollingPolicy::default_policy`].
    pub fn row_format(path: impl Into<PathBuf>) -> Self {
        FileSink {
            path: path.into(),
            uuid: uuid::Uuid::new_v4().to_string(),
            parts: PartConfig::default(),
            policy: RollingPolicy::default_policy(),
            row: PhantomData,
        }
    }

    /// Starts part file names with `prefix`.
    ///
    /// # Default
    /// `part`.
    #[must_use]
    pub fn part_prefix(mut self, prefix: &str) -> Self {
        self.parts.prefix = prefix.to_owned();
        self
    }

    /// Ends finished part file names with `suffix` (`.txt`, `.csv`).
    ///
    /// # Default
    /// None (the empty string).
    #[must_use]
    pub fn part_suffix(mut self, suffix: &str) -> Self {
        self.parts.suffix = suffix.to_owned();
        self
    }

    /// Decides when part files roll.
    ///
    /// # Default
    /// [`RollingPolicy::default_policy`]: 128 MiB, 60 s open, 60 s inactive.
    #[must_use]
    pub fn rolling_policy(mut self, policy: RollingPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Shorthand for [`RollingPolicy::max_part_size`] on the current policy.
    ///
    /// # Default
    /// 128 MiB.
    #[must_use]
    pub fn max_part_size(mut self, bytes: u64) -> Self {
        self.policy = self.policy.max_part_size(bytes);
        self
    }

    /// Shorthand for [`RollingPolicy::rollover_interval`] on the current policy.
    ///
    /// # Default
    /// 60 s.
    #[must_use]
    pub fn rollover_interval(mut self, interval: Duration) -> Self {
        self.policy = self.policy.rollover_interval(interval);
        self
    }

    /// Shorthand for [`RollingPolicy::inactivity_interval`] on the current policy.
    ///
    /// # Default
    /// 60 s.
    #[must_use]
    pub fn inactivity_interval(mut self, interval: Duration) -> Self {
        self.policy = self.policy.inactivity_interval(interval);
        self
    }

    /// The base directory the part files are written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The UUID in this sink's part file names, shared by all its subtasks.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// The rolling policy in force.
    pub fn policy(&self) -> &RollingPolicy {
        &self.policy
    }

    /// The operator name used in this sink's errors: `FileSink(<path>)`.
    fn operator(&self) -> String {
        format!("FileSink({})", self.path.display())
    }
}

impl<T> Clone for FileSink<T> {
    fn clone(&self) -> Self {
        FileSink {
            path: self.path.clone(),
            uuid: self.uuid.clone(),
            parts: self.parts.clone(),
            policy: self.policy,
            row: PhantomData,
        }
    }
}

impl<T> fmt::Debug for FileSink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSink")
            .field("path", &self.path)
            .field("uuid", &self.uuid)
            .field("part_prefix", &self.parts.prefix)
            .field("part_suffix", &self.parts.suffix)
            .field("policy", &self.policy)
            .finish()
    }
}

impl<T: RowText + Send + 'static> Sink<T> for FileSink<T> {
    type Writer = FileSinkWriter<T>;

    /// Creates the base directory and a writer for subtask `ctx.subtask_index()`.
    ///
    /// # Errors
    /// The base directory cannot be created.
    fn create_writer(&self, ctx: &RuntimeContext) -> Result<FileSinkWriter<T>> {
        let operator = self.operator();
        if let Err(e) = fs::create_dir_all(&self.path) {
            return Err(Error::io(operator, "create directory", &self.path, e));
        }
        // In an exactly-once instance group the parts commit with the group's Kafka
        // transactions.
        #[cfg(feature = "kafka")]
        let group = if ctx.in_instance_group()
            && crate::kafka::origin::is_exactly_once(ctx.subtask_key().run)
        {
            Some(super::group::InGroup::open(ctx, &self.path, &operator)?)
        } else {
            None
        };
        let parts = PartWriter {
            operator,
            dir: self.path.clone(),
            uuid: self.uuid.clone(),
            parts: self.parts.clone(),
            policy: self.policy,
            subtask: ctx.subtask_index(),
            next_count: 0,
            part: None,
            closed: Vec::new(),
            pending: Vec::new(),
            active: false,
            health: Health::Ok,
            #[cfg(feature = "kafka")]
            group,
        };
        Ok(FileSinkWriter {
            parts,
            row: PhantomData,
        })
    }
}

/// One subtask's writer of a [`FileSink`]: owns at most one in-progress part file, and the
/// parts it closed that wait for a checkpoint to complete (Flink's pending files).
///
/// Dropping the writer (a failed job) leaves its open and pending parts under their hidden
/// names; a job restored from a checkpoint commits the pending parts that checkpoint covers
/// and removes the rest.
pub struct FileSinkWriter<T> {
    parts: PartWriter,
    row: PhantomData<fn(T)>,
}

/// The writer's state, independent of the row type.
struct PartWriter {
    operator: String,
    dir: PathBuf,
    uuid: String,
    parts: PartConfig,
    policy: RollingPolicy,
    subtask: usize,
    /// The count of the next part this subtask opens.
    next_count: u64,
    part: Option<InProgressPart>,
    /// Parts closed (rolled) since the last checkpoint barrier: synced, still hidden.
    closed: Vec<PendingPart>,
    /// Parts prepared for a checkpoint, committed when it completes (oldest first).
    pending: Vec<(CheckpointId, Vec<PendingPart>)>,
    /// Whether a row was written since the last `flush`: the hot path does not read the clock,
    /// so inactivity is measured at batch granularity.
    active: bool,
    health: Health,
    /// In an exactly-once instance group: its parts commit with the group's Kafka
    /// transactions.
    #[cfg(feature = "kafka")]
    group: Option<super::group::InGroup>,
}

/// A closed part waiting for its commit: its hidden and its final file name in the directory.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct PendingPart {
    pub(super) hidden: String,
    pub(super) finished: String,
}

/// The part file being written.
struct InProgressPart {
    out: CountingWriter,
    in_progress: PathBuf,
    finished: PathBuf,
    opened: Instant,
    last_active: Instant,
}

/// A buffered file that counts the bytes written to it (Flink's `PartFileInfo::getSize`).
struct CountingWriter {
    inner: BufWriter<File>,
    bytes: u64,
}

impl Write for CountingWriter {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)?;
        self.bytes += buf.len() as u64;
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Whether the writer failed: `collect` cannot return errors, so the first one waits here for
/// the next `flush` or `finish`, and nothing is written after it.
enum Health {
    Ok,
    Failed(Error),
    Reported,
}

impl PartWriter {
    /// The error recorded since the last call, or the reminder that the writer failed earlier.
    fn check(&mut self) -> Result<()> {
        match mem::replace(&mut self.health, Health::Reported) {
            Health::Ok => {
                self.health = Health::Ok;
                Ok(())
            }
            Health::Failed(e) => Err(e),
            Health::Reported => Err(Error::Connector {
                connector: self.operator.clone(),
                message: "the writer stopped after an earlier I/O error".into(),
            }),
        }
    }

    /// Records `e` as the writer's first error; the open part stays in-progress.
    #[cold]
    fn fail(&mut self, e: Error) {
        tracing::warn!(operator = %self.operator, error = %e, "file sink failed");
        if matches!(self.health, Health::Ok) {
            self.health = Health::Failed(e);
        }
    }

    fn write_row<T: RowText + ?Sized>(&mut self, row: &T) -> Result<()> {
        let part = match &mut self.part {
            Some(part) => part,
            None => {
                let part = self.open_part()?;
                self.part.insert(part)
            }
        };
        if let Err(e) = writeln!(part.out, "{}", DisplayRow(row)) {
            return Err(Error::io(&self.operator, "write", &part.in_progress, e));
        }
        self.active = true;
        if part.out.bytes >= self.policy.max_part_size {
            self.close_part()?;
        }
        Ok(())
    }

    /// Opens the subtask's next part under its hidden in-progress name.
    #[cold]
    fn open_part(&mut self) -> Result<InProgressPart> {
        let name = self
            .parts
            .part_name(&self.uuid, self.subtask, self.next_count);
        #[cfg(feature = "kafka")]
        let attempt = match &self.group {
            Some(g) => g.attempt().to_owned(),
            None => uuid::Uuid::new_v4().to_string(),
        };
        #[cfg(not(feature = "kafka"))]
        let attempt = uuid::Uuid::new_v4().to_string();
        let in_progress = self.dir.join(PartConfig::in_progress_name(&name, &attempt));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&in_progress)
            .map_err(|e| Error::io(&self.operator, "create file", &in_progress, e))?;
        self.next_count += 1;
        let now = Instant::now();
        Ok(InProgressPart {
            out: CountingWriter {
                inner: BufWriter::with_capacity(64 * 1024, file),
                bytes: 0,
            },
            in_progress,
            finished: self.dir.join(name),
            opened: now,
            last_active: now,
        })
    }

    /// Closes the open part, if any: flush and sync it; it waits, hidden, for the checkpoint
    /// that covers it.
    #[cold]
    fn close_part(&mut self) -> Result<()> {
        let Some(part) = self.part.take() else {
            return Ok(());
        };
        let op = &self.operator;
        let file = part
            .out
            .inner
            .into_inner()
            .map_err(|e| Error::io(op, "write", &part.in_progress, e.into_error()))?;
        file.sync_all()
            .map_err(|e| Error::io(op, "sync", &part.in_progress, e))?;
        drop(file);
        let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
        self.closed.push(PendingPart {
            hidden: name(&part.in_progress).unwrap_or_default(),
            finished: name(&part.finished).unwrap_or_default(),
        });
        Ok(())
    }

    /// Commits the parts prepared for checkpoint `id` and earlier ones.
    fn commit_through(&mut self, id: CheckpointId) -> Result<()> {
        let n = self.pending.partition_point(|(c, _)| *c <= id);
        let done: Vec<_> = self.pending.drain(..n).collect();
        for (_, parts) in &done {
            for part in parts {
                commit_part(&self.operator, &self.dir, part)?;
            }
        }
        if !done.is_empty() {
            let _ = sync_dir(&self.operator, &self.dir);
        }
        Ok(())
    }

    /// Rolls the open part if it is older than the rollover interval or was inactive too long.
    fn roll_on_time(&mut self) -> Result<()> {
        let Some(part) = &mut self.part else {
            return Ok(());
        };
        let now = Instant::now();
        if mem::take(&mut self.active) {
            part.last_active = now;
        }
        let age = now.saturating_duration_since(part.opened);
        let idle = now.saturating_duration_since(part.last_active);
        if age >= self.policy.rollover_interval || idle >= self.policy.inactivity_interval {
            self.close_part()?;
        }
        Ok(())
    }
}

impl<T: RowText> SinkWriter<T> for FileSinkWriter<T> {
    #[inline]
    fn write(&mut self, row: T, _ts: Timestamp) {
        let w = &mut self.parts;
        if !matches!(w.health, Health::Ok) {
            return;
        }
        if let Err(e) = w.write_row(&row) {
            w.fail(e);
        }
    }

    fn flush(&mut self) -> Result<()> {
        let w = &mut self.parts;
        w.check()?;
        if let Err(e) = w.roll_on_time() {
            w.fail(e);
            return w.check();
        }
        Ok(())
    }

    /// Prepares checkpoint `id` (Flink's pre-commit): closes the open part, and records every
    /// part not committed yet in `state`, to commit when the checkpoint completes (or when a
    /// job restores it). In an exactly-once instance group (a commit of the group) the closed
    /// parts are prepared for the origin's next commit instead, which commits them.
    fn checkpoint(&mut self, id: CheckpointId, state: &mut StateWriter) -> Result<Snapshot> {
        self.parts.prepare(id, state)
    }

    /// Makes the parts of checkpoint `id` and earlier visible.
    fn checkpoint_complete(&mut self, id: CheckpointId) -> Result<()> {
        let w = &mut self.parts;
        if let Err(e) = w.commit_through(id) {
            w.fail(e);
            return w.check();
        }
        Ok(())
    }

    /// Commits the parts this subtask's share of the checkpoint prepared (the checkpoint
    /// completed), and removes every other hidden part of this sink's earlier runs in the
    /// directory: they hold rows after the checkpoint, which the restored job writes again.
    fn restore(&mut self, state: &StateReader) -> Result<()> {
        self.parts.restore(state)
    }

    /// Closes the open part; it is committed with the first checkpoint that completes after
    /// the task finished (which saves it as the task's final state), or at the job's end if
    /// that comes first (a job that fails before either leaves it hidden). In an exactly-once
    /// instance group it is prepared for the origin's final commit.
    fn finish(&mut self) -> Result<()> {
        let w = &mut self.parts;
        w.check()?;
        if let Err(e) = w.close_part() {
            w.fail(e);
            return w.check();
        }
        // In an instance group: the last parts go with the origin's final commit.
        #[cfg(feature = "kafka")]
        if w.group.is_some() {
            if let Err(e) = w.prepare_for_group() {
                w.fail(e);
                return w.check();
            }
            return w.group.as_mut().map_or(Ok(()), |g| g.end());
        }
        Ok(())
    }
}

/// Makes a pending part in `dir` visible under its final name (`dir` is synced by the
/// caller). Done already (a commit repeated after a restore) when only the final name exists.
///
/// # Errors
/// The part is gone, or cannot be renamed.
pub(super) fn commit_part(operator: &str, dir: &Path, part: &PendingPart) -> Result<()> {
    let hidden = dir.join(&part.hidden);
    let finished = dir.join(&part.finished);
    match fs::rename(&hidden, &finished) {
        Ok(()) => {
            tracing::debug!(operator, file = %finished.display(), "committed part file");
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && finished.exists() => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::Connector {
            connector: operator.to_owned(),
            message: format!(
                "the pending part `{}` of a completed commit is gone, and its rows with it \
                 (was the directory cleaned while the job was down?)",
                hidden.display()
            ),
        }),
        Err(e) => Err(Error::io(operator, "rename", &hidden, e)),
    }
}

/// Syncs the directory `dir`: the renames and removals in it outlive a crash of the machine.
///
/// # Errors
/// It cannot be opened or synced.
pub(super) fn sync_dir(operator: &str, dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(operator, "sync", dir, e))
}

/// The checkpoint hooks, compiled once whatever the row type.
impl PartWriter {
    fn prepare(&mut self, id: CheckpointId, state: &mut StateWriter) -> Result<Snapshot> {
        self.check()?;
        if let Err(e) = self.close_part() {
            self.fail(e);
            return self.check().map(|()| Snapshot::Taken);
        }
        #[cfg(feature = "kafka")]
        if self.group.is_some() {
            // A commit of the group: no state is kept, the origin commits the parts.
            if let Err(e) = self.prepare_for_group() {
                self.fail(e);
            }
            return self.check().map(|()| Snapshot::Taken);
        }
        if !self.closed.is_empty() {
            let closed = mem::take(&mut self.closed);
            self.pending.push((id, closed));
        }
        state.list("pending", self.pending.iter().flat_map(|(_, parts)| parts))?;
        Ok(Snapshot::Taken)
    }

    /// In an exactly-once instance group: prepares the parts closed since the last commit
    /// for the origin's next commit.
    #[cfg(feature = "kafka")]
    fn prepare_for_group(&mut self) -> Result<()> {
        let closed = mem::take(&mut self.closed);
        match &mut self.group {
            Some(g) => g.prepare(&self.operator, &self.dir, closed),
            None => Ok(()),
        }
    }

    fn restore(&mut self, state: &StateReader) -> Result<()> {
        for part in state.list::<PendingPart>("pending")? {
            commit_part(&self.operator, &self.dir, &part)?;
        }
        let _ = sync_dir(&self.operator, &self.dir);
        let keep: std::collections::HashSet<String> = state
            .union::<PendingPart>("pending")?
            .into_iter()
            .map(|p| p.hidden)
            .collect();
        let ours = format!(".{}-", self.parts.prefix);
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| Error::io(&self.operator, "list directory", &self.dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = name.starts_with(&ours)
                && name.contains(".inprogress.")
                && !name.contains(&self.uuid)
                && !keep.contains(&name);
            if stale {
                match fs::remove_file(entry.path()) {
                    Ok(()) => {
                        tracing::info!(operator = %self.operator, file = %name, "removed a part written after the restored checkpoint")
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(&self.operator, "remove", entry.path(), e)),
                }
            }
        }
        Ok(())
    }
}

impl<T> fmt::Debug for FileSinkWriter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = &self.parts;
        f.debug_struct("FileSinkWriter")
            .field("operator", &w.operator)
            .field("subtask", &w.subtask)
            .field("next_count", &w.next_count)
            .field("in_progress", &w.part.as_ref().map(|p| &p.in_progress))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread::sleep;

    fn ctx(subtask: usize, parallelism: usize) -> RuntimeContext {
        RuntimeContext::standalone("sink", subtask, parallelism)
    }

    fn writer<T: RowText + Send + 'static>(sink: &FileSink<T>) -> FileSinkWriter<T> {
        Sink::create_writer(sink, &ctx(0, 1)).expect("create writer")
    }

    /// Checkpoint `id` prepared and completed: what a job does around a barrier.
    fn commit<T: RowText>(w: &mut FileSinkWriter<T>, id: CheckpointId) {
        let mut state = StateWriter::detached();
        assert_eq!(w.checkpoint(id, &mut state).unwrap(), Snapshot::Taken);
        w.checkpoint_complete(id).unwrap();
    }

    /// The end of input of a job that ended well: the final checkpoint commits.
    fn end<T: RowText>(w: &mut FileSinkWriter<T>) {
        w.finish().unwrap();
        commit(w, flow_runtime::FINAL_CHECKPOINT);
    }

    /// The file names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    fn finished(dir: &Path) -> Vec<String> {
        names(dir)
            .into_iter()
            .filter(|n| !n.starts_with('.'))
            .collect()
    }

    fn in_progress(dir: &Path) -> Vec<String> {
        names(dir)
            .into_iter()
            .filter(|n| n.starts_with('.'))
            .collect()
    }

    fn read(dir: &Path, name: &str) -> String {
        fs::read_to_string(dir.join(name)).unwrap()
    }

    /// Checks that `name` is `.<part>.inprogress.<uuid v4>` and returns `<part>`.
    fn in_progress_part(name: &str) -> &str {
        let rest = name.strip_prefix('.').expect("hidden");
        let (part, attempt) = rest
            .rsplit_once(".inprogress.")
            .expect("in-progress marker");
        assert_eq!(
            uuid::Uuid::parse_str(attempt).unwrap().get_version_num(),
            4,
            "{name}"
        );
        part
    }

    #[test]
    fn finished_part_is_named_prefix_uuid_subtask_count_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FileSink::row_format(dir.path())
            .part_prefix("pre")
            .part_suffix("suf");
        assert_eq!(
            uuid::Uuid::parse_str(sink.uuid())
                .unwrap()
                .get_version_num(),
            4
        );
        let mut w = writer(&sink);
        w.write((1i64, 2i64), 0);
        end(&mut w);
        assert_eq!(names(dir.path()), [format!("pre-{}-0-0suf", sink.uuid())]);
    }

    #[test]
    fn default_names_start_with_part_and_have_no_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FileSink::row_format(dir.path());
        let mut w = writer(&sink);
        w.write("a".to_string(), 0);
        end(&mut w);
        assert_eq!(names(dir.path()), [format!("part-{}-0-0", sink.uuid())]);
    }

    #[test]
    fn rows_are_written_as_text_lines() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FileSink::row_format(dir.path());
        let mut w = writer(&sink);
        w.write((1i64, 2i64), 0);
        w.write((-3i64, 40i64), 0);
        w.flush().unwrap();
        end(&mut w);
        let file = format!("part-{}-0-0", sink.uuid());
        assert_eq!(read(dir.path(), &file), "(1, 2)\n(-3, 40)\n");

        let dir = tempfile::tempdir().unwrap();
        let sink = FileSink::row_format(dir.path());
        let mut w = writer(&sink);
        for s in ["hello", "", "wörld"] {
            w.write(s.to_string(), 0);
        }
        end(&mut w);
        assert_eq!(
            read(dir.path(), &finished(dir.path())[0]),
            "hello\n\nwörld\n"
        );
    }

    #[test]
    fn a_subtask_without_rows_writes_no_file() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        let sink = FileSink::<String>::row_format(&dir);
        let mut w = writer(&sink);
        assert!(dir.is_dir(), "create_writer creates the directory");
        w.flush().unwrap();
        end(&mut w);
        assert_eq!(names(&dir), Vec::<String>::new());
    }

    #[test]
    fn part_is_hidden_in_progress_until_finish() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FileSink::row_format(dir.path()).part_suffix(".txt");
        let mut w = writer(&sink);
        w.write(7i64, 0);
        w.flush().unwrap();
        let open = in_progress(dir.path());
        assert_eq!(open.len(), 1, "{open:?}");
        assert_eq!(
            in_progress_part(&open[0]),
            format!("part-{}-0-0.txt", sink.uuid())
        );
        assert_eq!(finished(dir.path()), Vec::<String>::new());

        w.finish().unwrap();
        assert_eq!(
            finished(dir.path()),
            Vec::<String>::new(),
            "the end of input prepares; the job's final checkpoint commits"
        );
        commit(&mut w, flow_runtime::FINAL_CHECKPOINT);
        assert_eq!(in_progress(dir.path()), Vec::<String>::new());
        let done = finished(dir.path());
        assert_eq!(done, [format!("part-{}-0-0.txt", sink.uuid())]);
        assert_eq!(read(dir.path(), &done[0]), "7\n");
    }

    #[test]
    fn parts_roll_by_size_without_losing_or_duplicating_rows() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FileSink::row_format(dir.path()).max_part_size(50);
        let mut w = writer(&sink);
        let rows: Vec<(i64, i64)> = (0..100).map(|i| (i, i * i)).collect();
        for &r in &rows {
            w.write(r, 0);
        }
        end(&mut w);

        assert_eq!(in_progress(dir.path()), Vec::<String>::new());
        let files = finished(dir.path());
        assert!(files.len() >= 3, "{files:?}");
        let mut text = String::new();
        for count in 0..files.len() {
            let name = format!("part-{}-0-{count}", sink.uuid());
            assert!(files.contains(&name), "missing {name} in {files:?}");
            let part = read(dir.path(), &name);
            // Every part but the last reached the size, and rolled right after the row that did.
            if count + 1 < files.len() {
                assert!(part.len() >= 50, "{name}: {} bytes", part.len());
                let without_last = part.trim_end_matches('\n').rsplit_once('\n').unwrap().0;
                assert!(without_last.len() + 1 < 50, "{name} rolled late: {part:?}");
            }
            text.push_str(&part);
        }
        let expected: String = rows.iter().map(|&(a, b)| format!("({a}, {b})\n")).collect();
        assert_eq!(text, expected);
    }

    #[test]
    fn size_zero_rolls_after_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FileSink::row_format(dir.path())
            .rolling_policy(RollingPolicy::default_policy().max_part_size(0));
        let mut w = writer(&sink);
        for i in 0..3i32 {
            w.write(i, 0);
            assert_eq!(
                in_progress(dir.path()).len(),
                i as usize + 1,
                "each row rolls a part, hidden until a checkpoint commits it"
            );
        }
        end(&mut w);
        for i in 0..3 {
            assert_eq!(
                read(dir.path(), &format!("part-{}-0-{i}", sink.uuid())),
                format!("{i}\n")
            );
        }
        assert_eq!(names(dir.path()).len(), 3);
    }

    #[test]
    fn an_inactive_part_rolls_on_flush() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FileSink::row_format(dir.path())
            .inactivity_interval(Duration::from_millis(1))
            .rollover_interval(Duration::from_secs(3600));
        let mut w = writer(&sink);
        w.write("a".to_string(), 0);
        // A row was written in this batch: the part is active now.
        w.flush().unwrap();
        assert_eq!(in_progress(dir.path()).len(), 1);
        assert_eq!(finished(dir.path()), Vec::<String>::new());

        sleep(Duration::from_millis(20));
        w.flush().unwrap();
        assert_eq!(
            finished(dir.path()),
            Vec::<String>::new(),
            "rolled, not committed"
        );
        commit(&mut w, 1);
        assert_eq!(in_progress(dir.path()), Vec::<String>::new());
        let first = format!("part-{}-0-0", sink.uuid());
        assert_eq!(finished(dir.path()), std::slice::from_ref(&first));
        assert_eq!(read(dir.path(), &first), "a\n");

        w.write("b".to_string(), 0);
        let open = in_progress(dir.path());
        assert_eq!(
            in_progress_part(&open[0]),
            format!("part-{}-0-1", sink.uuid())
        );
        end(&mut w);
        assert_eq!(
            read(dir.path(), &format!("part-{}-0-1", sink.uuid())),
            "b\n"
        );
        assert_eq!(names(dir.path()).len(), 2);
    }

    #[test]
    fn an_old_part_rolls_on_flush_even_when_active() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FileSink::row_format(dir.path()).rolling_policy(
            RollingPolicy::default_policy()
                .rollover_interval(Duration::from_millis(300))
                .inactivity_interval(Duration::from_secs(3600)),
        );
        let mut w = writer(&sink);
        w.write(1u8, 0);
        w.flush().unwrap();
        assert_eq!(
            finished(dir.path()),
            Vec::<String>::new(),
            "rolled too early"
        );

        sleep(Duration::from_millis(400));
        w.write(2u8, 0);
        w.flush().unwrap();
        commit(&mut w, 1);
        assert_eq!(in_progress(dir.path()), Vec::<String>::new());
        let first = format!("part-{}-0-0", sink.uuid());
        assert_eq!(finished(dir.path()), std::slice::from_ref(&first));
        assert_eq!(read(dir.path(), &first), "1\n2\n");
        end(&mut w);
        assert_eq!(names(dir.path()), [first]);
    }

    #[test]
    fn drop_without_finish_leaves_the_part_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FileSink::row_format(dir.path()).max_part_size(10);
        let mut w = writer(&sink);
        w.write("0123456789".to_string(), 0); // 11 bytes: rolls part 0
        commit(&mut w, 1); // part 0 is committed by checkpoint 1
        w.write("x".to_string(), 0); // part 1, in progress
        w.flush().unwrap();
        drop(w);

        let first = format!("part-{}-0-0", sink.uuid());
        assert_eq!(finished(dir.path()), std::slice::from_ref(&first));
        assert_eq!(read(dir.path(), &first), "0123456789\n");
        let open = in_progress(dir.path());
        assert_eq!(open.len(), 1, "{open:?}");
        assert_eq!(
            in_progress_part(&open[0]),
            format!("part-{}-0-1", sink.uuid())
        );
        assert_eq!(read(dir.path(), &open[0]), "x\n");
    }

    #[test]
    fn an_uncreatable_directory_is_an_error_naming_it() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("plain-file");
        fs::write(&file, "x").unwrap();
        let dir = file.join("out");
        let sink = FileSink::<String>::row_format(&dir);
        let err = Sink::create_writer(&sink, &ctx(0, 1)).unwrap_err();
        assert!(matches!(&err, Error::Io { action: "create directory", path, .. } if *path == dir));
        let msg = err.to_string();
        assert!(msg.contains(&dir.display().to_string()), "{msg}");
        assert!(
            msg.starts_with(&format!("FileSink({})", dir.display())),
            "{msg}"
        );
    }

    #[test]
    fn a_write_error_is_reported_by_the_next_flush_and_finish() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out");
        let sink = FileSink::row_format(&dir);
        let mut w = writer(&sink);
        fs::remove_dir(&dir).unwrap();
        w.write(1i64, 0); // cannot create the part file: recorded, not panicked
        w.write(2i64, 0);
        let err = w.flush().unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Io {
                    action: "create file",
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains(&dir.display().to_string()),
            "{err}"
        );
        // Nothing is written after the error, even once the directory is back.
        fs::create_dir(&dir).unwrap();
        w.write(3i64, 0);
        assert!(w.finish().is_err());
        assert!(w.checkpoint(1, &mut StateWriter::detached()).is_err());
        assert_eq!(names(&dir), Vec::<String>::new());
    }

    #[test]
    fn subtask_index_is_in_the_names_and_the_uuid_is_shared() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FileSink::row_format(dir.path()).max_part_size(1);
        let mut w0 = Sink::create_writer(&sink, &ctx(0, 2)).unwrap();
        let mut w1 = Sink::create_writer(&sink, &ctx(1, 2)).unwrap();
        w1.write(10i64, 0);
        w1.write(11i64, 0);
        w0.write(0i64, 0);
        end(&mut w0);
        end(&mut w1);
        let u = sink.uuid();
        assert_eq!(
            finished(dir.path()),
            [
                format!("part-{u}-0-0"),
                format!("part-{u}-1-0"),
                format!("part-{u}-1-1")
            ]
        );
        assert_eq!(read(dir.path(), &format!("part-{u}-1-1")), "11\n");
    }

    #[test]
    fn a_restore_commits_the_checkpoint_s_parts_and_removes_later_ones() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FileSink::row_format(dir.path()).max_part_size(1);
        let mut w = writer(&sink);
        w.write(1i64, 0);
        let mut state = StateWriter::detached();
        assert_eq!(w.checkpoint(1, &mut state).unwrap(), Snapshot::Taken);
        // Checkpoint 1 completed, and the job crashed before its commit; a part written after
        // the barrier is left too.
        w.write(2i64, 0);
        w.flush().unwrap();
        drop(w);
        assert_eq!(in_progress(dir.path()).len(), 2);
        assert_eq!(finished(dir.path()), Vec::<String>::new());

        let restored = flow_runtime::snapshot::StateReader::detached(state, 0, 1);
        let sink2 = FileSink::<i64>::row_format(dir.path()).max_part_size(1);
        let mut w2 = writer(&sink2);
        w2.restore(&restored).unwrap();
        assert_eq!(
            in_progress(dir.path()),
            Vec::<String>::new(),
            "the later part is gone"
        );
        let first = format!("part-{}-0-0", sink.uuid());
        assert_eq!(finished(dir.path()), std::slice::from_ref(&first));
        assert_eq!(read(dir.path(), &first), "1\n");
        // Restoring again (a second crash) commits nothing twice and loses nothing.
        w2.restore(&restored).unwrap();
        assert_eq!(finished(dir.path()), [first]);
    }

    #[test]
    fn each_sink_value_draws_its_own_uuid() {
        let a = FileSink::<String>::row_format("out/");
        let b = FileSink::<String>::row_format("out/");
        assert_ne!(a.uuid(), b.uuid());
        assert_eq!(a.clone().uuid(), a.uuid());
        assert_eq!(a.path(), Path::new("out/"));
        let s = a.max_part_size(5).rollover_interval(Duration::from_secs(1));
        assert_eq!(
            *s.policy(),
            RollingPolicy::default_policy()
                .max_part_size(5)
                .rollover_interval(Duration::from_secs(1))
        );
    }
}
