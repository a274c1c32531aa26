//! `FileSource`: the lines of files and directories as rows (Flink's
//! `FileSource.forRecordStreamFormat`).

use super::format::LineFormat;
use crate::bad_records::{BadRecordCounts, BadRecordHandler, BadRecords, DeadLetter};
use crate::format::{Csv, Json, Utf8};
use crate::StopHandle;
use flow_runtime::snapshot::{StateReader, StateWriter};
use flow_runtime::{
    CheckpointId, Error, Poll, Result, RuntimeContext, Snapshot, Source, SourceOutput,
    SourceReader, Watermarks, NO_TIMESTAMP,
};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Below this a file is never split: the split's own cost would dominate.
const MIN_SPLIT_SIZE: u64 = 1 << 20;
/// The read buffer of each open file.
const READ_BUFFER: usize = 256 << 10;

/// Rows read from the lines of files: one file, or every file under a directory.
///
/// - **Files.** A directory is read recursively; files and directories whose names start with
///   `.` or `_` are skipped (Flink's default filter: in-progress parts of a `FileSink` are
///   hidden). Files ending in `.gz` are decompressed (gzip, several members allowed).
/// - **Splits.** Each file is a split; a large uncompressed file is cut into byte ranges at line
///   boundaries (by default into one range per reader, at least 1 MiB each:
///   [`split_size`](FileSource::split_size)), so parallel readers share it. The splits are
///   spread over the readers by size when the job starts.
/// - **Bounded by default**: the job ends when every file is read.
///   [`monitor_continuously`](FileSource::monitor_continuously) keeps listing the paths and
///   reads each new file once (write files elsewhere and rename them in, or hide them while
///   they are written: a file is read as it is when it is first seen).
/// - **Checkpoints** record every reader's position (file and byte offset) and, when
///   monitoring, the files already seen: a restored job resumes in the middle of a file and
///   reads no line twice, at any parallelism.
/// - **Bad records** (a line the format rejects) follow [`BadRecords`]: fail naming the file
///   and line (the default), skip and count, or dead-letter.
/// - A path that does not exist fails the job when it starts.
///
/// # Examples
/// ```no_run
/// use flow_connectors::file::FileSource;
/// use flow_connectors::format::Csv;
/// use flow_connectors::bad_records::BadRecords;
///
/// let lines = FileSource::text_lines("logs/");
/// let orders = FileSource::for_record_stream_format(Csv::<(u64, String, f64)>::new(), "orders.csv")
///     .bad_records(BadRecords::skip());
/// ```
pub struct FileSource<F> {
    format: F,
    paths: Vec<PathBuf>,
    monitor: Option<Duration>,
    split_size: Option<u64>,
    bad_records: BadRecords,
    counts: BadRecordCounts,
    stop: StopHandle,
}

impl FileSource<Utf8> {
    /// The lines of the files at `path` as `String`s (Flink's `TextLineInputFormat`).
    pub fn text_lines(path: impl Into<PathBuf>) -> Self {
        Self::for_record_stream_format(Utf8, path)
    }
}

impl<T: serde::de::DeserializeOwned + Send + 'static> FileSource<Json<T>> {
    /// JSON lines: one JSON value of type `T` per line (a `#[derive(Row)]` struct is an object).
    pub fn json_lines(path: impl Into<PathBuf>) -> Self {
        Self::for_record_stream_format(Json::new(), path)
    }
}

impl<T: serde::de::DeserializeOwned + Send + 'static> FileSource<Csv<T>> {
    /// CSV records of type `T`, one per line, fields in order; use
    /// [`for_record_stream_format`](FileSource::for_record_stream_format) with a configured
    /// [`Csv`] for a header, another delimiter or quote.
    pub fn csv(path: impl Into<PathBuf>) -> Self {
        Self::for_record_stream_format(Csv::new(), path)
    }
}

impl<F: LineFormat> FileSource<F> {
    /// The rows `format` reads from the lines of the files at `path`.
    pub fn for_record_stream_format(format: F, path: impl Into<PathBuf>) -> Self {
        FileSource {
            format,
            paths: vec![path.into()],
            monitor: None,
            split_size: None,
            bad_records: BadRecords::Fail,
            counts: BadRecordCounts::default(),
            stop: StopHandle::default(),
        }
    }

    /// Reads `path` too.
    pub fn path(mut self, path: impl Into<PathBuf>) -> Self {
        self.paths.push(path.into());
        self
    }

    /// Keeps running: lists the paths every `interval` and reads the files not seen before
    /// (Flink's `monitorContinuously`). The source is then unbounded.
    pub fn monitor_continuously(mut self, interval: Duration) -> Self {
        self.monitor = Some(interval);
        self
    }

    /// Cuts uncompressed files into ranges of about `bytes` (at line boundaries); default: one
    /// range per reader of the total size, at least 1 MiB.
    pub fn split_size(mut self, bytes: u64) -> Self {
        self.split_size = Some(bytes.max(1));
        self
    }

    /// What to do with a line the format rejects (default [`BadRecords::Fail`]).
    pub fn bad_records(mut self, policy: BadRecords) -> Self {
        self.bad_records = policy;
        self
    }

    /// A handle that ends a monitoring source: after [`StopHandle::stop`] each reader lists
    /// the paths once more, reads every file it has, and ends its input.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// The counts of bad records skipped or dead-lettered, live while the job runs.
    pub fn bad_record_counts(&self) -> BadRecordCounts {
        self.counts.clone()
    }

    fn name(&self) -> String {
        format!("FileSource({})", self.format.name())
    }
}

/// A range of one file still to read: a checkpoint records these.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSplit {
    /// The file.
    pub path: PathBuf,
    /// The byte (of the decompressed content, for `.gz`) where reading goes on.
    pub offset: u64,
    /// Lines starting before this byte belong to the split (`u64::MAX`: to the end).
    pub end: u64,
    /// The number of the line at `offset` (from 1), when known: a split that starts in the
    /// middle of a file counts the lines before it only when a bad record needs its number.
    pub line: Option<u64>,
    /// Whether `offset` is at the start of a line (a fresh split in the middle of a file first
    /// skips the rest of the line it starts in, which the split before reads).
    pub aligned: bool,
}

impl FileSplit {
    fn whole(path: PathBuf) -> Self {
        FileSplit {
            path,
            offset: 0,
            end: u64::MAX,
            line: Some(1),
            aligned: true,
        }
    }
}

fn is_gzip(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// The content of `file` (at `path`), decompressed when its name ends in `.gz`.
fn content(path: &Path, file: File) -> Box<dyn BufRead + Send> {
    if is_gzip(path) {
        Box::new(BufReader::with_capacity(
            READ_BUFFER,
            flate2::read::MultiGzDecoder::new(BufReader::new(file)),
        ))
    } else {
        Box::new(BufReader::with_capacity(READ_BUFFER, file))
    }
}

/// Whether the walk skips `name` (Flink's `DefaultFileFilter`).
fn is_hidden(name: &std::ffi::OsStr) -> bool {
    let b = name.as_encoded_bytes();
    b.first().is_some_and(|c| *c == b'.' || *c == b'_')
}

/// The files under `paths` with their sizes, sorted by path. A missing path is an error.
fn list_files(connector: &str, paths: &[PathBuf]) -> Result<Vec<(PathBuf, u64)>> {
    fn walk(connector: &str, dir: &Path, out: &mut Vec<(PathBuf, u64)>) -> Result<()> {
        let entries = std::fs::read_dir(dir).map_err(|e| io_error(connector, dir, "list", &e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(connector, dir, "list", &e))?;
            if is_hidden(&entry.file_name()) {
                continue;
            }
            let path = entry.path();
            let meta = std::fs::metadata(&path);
            match meta {
                Ok(m) if m.is_dir() => walk(connector, &path, out)?,
                Ok(m) => out.push((path, m.len())),
                // Removed between the listing and now: it is not there to read.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(connector, &path, "read", &e)),
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Connector {
                    connector: connector.to_string(),
                    message: format!("path `{}` does not exist", path.display()),
                }
            } else {
                io_error(connector, path, "read", &e)
            }
        })?;
        if meta.is_dir() {
            walk(connector, path, &mut out)?;
        } else {
            out.push((path.clone(), meta.len()));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn io_error(connector: &str, path: &Path, what: &str, e: &std::io::Error) -> Error {
    Error::Connector {
        connector: connector.to_string(),
        message: format!("cannot {what} `{}`: {e}", path.display()),
    }
}

impl<F: LineFormat> Source for FileSource<F> {
    type Row = F::Row;
    type Reader = FileSourceReader<F>;

    fn is_bounded(&self) -> bool {
        self.monitor.is_none()
    }

    fn into_readers(self, parallelism: usize, _: &Watermarks) -> Result<Vec<FileSourceReader<F>>> {
        let name = self.name();
        let p = parallelism.max(1);
        let files = list_files(&name, &self.paths)?;
        let total: u64 = files.iter().map(|f| f.1).sum();
        let split_size = self
            .split_size
            .unwrap_or_else(|| total.div_ceil(p as u64).max(MIN_SPLIT_SIZE));
        let mut splits = Vec::new();
        for (path, size) in &files {
            if is_gzip(path) || *size <= split_size {
                splits.push((*size, FileSplit::whole(path.clone())));
                continue;
            }
            let mut start = 0;
            while start < *size {
                let end = (start + split_size).min(*size);
                splits.push((
                    end - start,
                    FileSplit {
                        path: path.clone(),
                        offset: start,
                        end: if end == *size { u64::MAX } else { end },
                        line: (start == 0).then_some(1),
                        aligned: start == 0,
                    },
                ));
                start = end;
            }
        }
        // Largest first, each to the reader with the fewest bytes so far (ties: the lowest).
        splits.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.path.cmp(&b.1.path)));
        let mut shares: Vec<(u64, Vec<FileSplit>)> = vec![(0, Vec::new()); p];
        for (size, split) in splits {
            let i = (0..p).min_by_key(|&i| (shares[i].0, i)).unwrap_or(0);
            shares[i].0 += size;
            shares[i].1.push(split);
        }
        let seen: HashSet<PathBuf> = files.into_iter().map(|f| f.0).collect();
        Ok(shares
            .into_iter()
            .enumerate()
            .map(|(subtask, (_, mut splits))| {
                // Read in path order; `pop` takes the next.
                splits.sort_by(|a, b| (&b.path, b.offset).cmp(&(&a.path, a.offset)));
                let splits_bytes = splits.iter().map(split_bytes).sum();
                FileSourceReader {
                    connector: name.clone(),
                    format: self.format.clone(),
                    queued: splits,
                    current: None,
                    buf: Vec::new(),
                    bad_records: BadRecordHandler::new(
                        self.bad_records.clone(),
                        name.clone(),
                        self.counts.clone(),
                    ),
                    monitor: self.monitor.map(|interval| Monitor {
                        interval,
                        paths: self.paths.clone(),
                        seen: seen.clone(),
                        last: Instant::now(),
                        subtask,
                        parallelism: p,
                        stop: self.stop.clone(),
                        stopped: false,
                    }),
                    finished: false,
                    draining: false,
                    bytes_total: splits_bytes,
                    bytes_done: 0,
                }
            })
            .collect())
    }
}

/// Continuous monitoring: the paths, listed every `interval`; a new file goes to the reader
/// its path hashes to.
struct Monitor {
    interval: Duration,
    paths: Vec<PathBuf>,
    seen: HashSet<PathBuf>,
    last: Instant,
    subtask: usize,
    parallelism: usize,
    stop: StopHandle,
    /// The last listing after the stop was done: the reader ends once its files are read.
    stopped: bool,
}

/// The split being read: its file, open at `split.offset`.
struct OpenSplit {
    split: FileSplit,
    /// Its bytes when it was opened ([`split_bytes`]), and its offset then.
    bytes: u64,
    from: u64,
    input: Box<dyn BufRead + Send>,
    /// Lines read since `start` (whose line number is `split.line` when known, else counted
    /// when needed).
    start: u64,
    lines: u64,
}

/// One subtask's share of a [`FileSource`]: its splits, read one after the other.
pub struct FileSourceReader<F> {
    connector: String,
    format: F,
    /// The splits still to read, the next last.
    queued: Vec<FileSplit>,
    current: Option<OpenSplit>,
    buf: Vec<u8>,
    bad_records: BadRecordHandler,
    monitor: Option<Monitor>,
    finished: bool,
    /// The job drains (SIGUSR1): the next poll ends the reader where it is.
    draining: bool,
    /// The bytes of the splits this reader had to read when it started (or restored), and
    /// of those it finished since: its progress.
    bytes_total: u64,
    bytes_done: u64,
}

/// The bytes left to read in `split`, for progress: of a plain file from its offset to its
/// end; of a compressed one its compressed size when read from the start (0 when restored in
/// the middle, where the offset counts decompressed bytes).
fn split_bytes(split: &FileSplit) -> u64 {
    let len = std::fs::metadata(&split.path).map_or(0, |m| m.len());
    if is_gzip(&split.path) {
        if split.offset == 0 {
            len
        } else {
            0
        }
    } else {
        split.end.min(len).saturating_sub(split.offset)
    }
}

impl<F: LineFormat> FileSourceReader<F> {
    /// Opens `split` where it goes on, aligned to a line, with the file's header read.
    fn open_split(&mut self, mut split: FileSplit) -> Result<OpenSplit> {
        let (bytes, from) = (split_bytes(&split), split.offset);
        let path = split.path.clone();
        let err = |what: &str, e: std::io::Error| io_error(&self.connector, &path, what, &e);
        let file = File::open(&path).map_err(|e| err("open", e))?;
        let mut input: Box<dyn BufRead + Send> = if is_gzip(&path) {
            let mut gz = content(&path, file);
            // A restored position in compressed content: decompress up to it.
            let skipped = std::io::copy(&mut (&mut gz).take(split.offset), &mut std::io::sink())
                .map_err(|e| err("read", e))?;
            if skipped < split.offset {
                split.offset = skipped;
            }
            gz
        } else {
            let mut file = BufReader::with_capacity(READ_BUFFER, file);
            if split.aligned {
                file.seek(SeekFrom::Start(split.offset))
                    .map_err(|e| err("read", e))?;
            } else {
                // Skip the line that started in the split before (it reads it whole).
                file.seek(SeekFrom::Start(split.offset - 1))
                    .map_err(|e| err("read", e))?;
                self.buf.clear();
                let n = file
                    .read_until(b'\n', &mut self.buf)
                    .map_err(|e| err("read", e))?;
                split.offset = split.offset - 1 + n as u64;
                split.aligned = true;
            }
            Box::new(file)
        };
        if self.format.has_header() {
            if split.offset == 0 {
                self.buf.clear();
                let n = input
                    .read_until(b'\n', &mut self.buf)
                    .map_err(|e| err("read", e))?;
                split.offset = n as u64;
                split.line = Some(2);
            } else {
                self.read_header(&path)?;
            }
            let header = trim_line(&self.buf);
            let header = header.strip_prefix(b"\xef\xbb\xbf").unwrap_or(header);
            if !header.is_empty() {
                self.format.header(header).map_err(|e| Error::Connector {
                    connector: self.connector.clone(),
                    message: format!("bad header in `{}`: {e}", path.display()),
                })?;
            }
        }
        Ok(OpenSplit {
            start: split.offset,
            split,
            bytes,
            from,
            input,
            lines: 0,
        })
    }

    /// Reads the first line of `path` into `buf` (for a split that starts after it).
    fn read_header(&mut self, path: &Path) -> Result<()> {
        let err = |e: std::io::Error| io_error(&self.connector, path, "read", &e);
        let mut input = content(path, File::open(path).map_err(err)?);
        self.buf.clear();
        input.read_until(b'\n', &mut self.buf).map_err(err)?;
        Ok(())
    }

    /// The number of the line `open` read last.
    #[cold]
    fn line_number(&self, open: &OpenSplit) -> Result<u64> {
        if let Some(first) = open.split.line {
            return Ok(first + open.lines - 1);
        }
        // Count the line breaks before the split's start: only for a bad record's message.
        let path = &open.split.path;
        let err = |e: std::io::Error| io_error(&self.connector, path, "read", &e);
        let file = File::open(path).map_err(err)?;
        let mut input = BufReader::new(file).take(open.start);
        let mut before = 0u64;
        loop {
            let chunk = input.fill_buf().map_err(err)?;
            if chunk.is_empty() {
                break;
            }
            before += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
            let n = chunk.len();
            input.consume(n);
        }
        Ok(before + open.lines)
    }

    /// Lists the paths for new files this reader owns, if the interval passed (or, once
    /// stopped, a last time).
    fn discover(&mut self) -> Result<bool> {
        let Some(m) = &mut self.monitor else {
            return Ok(false);
        };
        if m.stop.is_stopped() {
            m.stopped = true;
        } else if m.last.elapsed() < m.interval {
            return Ok(false);
        }
        m.last = Instant::now();
        let files = list_files(&self.connector, &m.paths)?;
        let mut found = false;
        for (path, _) in files {
            if m.seen.contains(&path) {
                continue;
            }
            let owner = flow_runtime::hash::key_to_subtask(
                path.as_os_str().as_encoded_bytes(),
                m.parallelism,
            );
            // Only the files this reader queues count as seen: a checkpoint's seen files are
            // then all in some reader's splits (or read), whatever the readers' pace.
            if owner == m.subtask {
                tracing::debug!(connector = %self.connector, path = %path.display(), "new file");
                self.queued.insert(0, FileSplit::whole(path.clone()));
                m.seen.insert(path);
                found = true;
            }
        }
        Ok(found)
    }

    /// The open split is read to its end.
    fn close_split(&mut self) {
        if let Some(open) = self.current.take() {
            self.bytes_done += open.bytes;
        }
    }

    fn end(&mut self) -> Result<Poll> {
        self.finished = true;
        self.bad_records.finish()?;
        Ok(Poll::Finished)
    }
}

/// The line without its line break.
#[inline]
fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

impl<F: LineFormat> SourceReader for FileSourceReader<F> {
    type Row = F::Row;

    fn open(&mut self, ctx: &RuntimeContext) -> Result<()> {
        self.bad_records.open(ctx)
    }

    fn poll<O: SourceOutput<F::Row>>(&mut self, out: &mut O, max_rows: usize) -> Result<Poll> {
        if self.finished {
            return Ok(Poll::Finished);
        }
        if self.draining {
            // Its dead letters made durable, as at the end of its splits.
            self.bad_records.flush()?;
            return self.end();
        }
        // Lines read, rows or not (blank, bad): a run of bad lines does not hold a barrier back.
        let (mut rows, mut lines) = (0, 0);
        while lines < max_rows {
            let Some(open) = &mut self.current else {
                match self.queued.pop() {
                    Some(split) => self.current = Some(self.open_split(split)?),
                    None if self.monitor.as_ref().is_some_and(|m| !m.stopped) => {
                        if !self.discover()? {
                            break;
                        }
                    }
                    None => {
                        self.bad_records.flush()?;
                        return if lines > 0 {
                            Ok(Poll::Ready)
                        } else {
                            self.end()
                        };
                    }
                }
                continue;
            };
            if open.split.offset >= open.split.end {
                self.close_split();
                continue;
            }
            self.buf.clear();
            let n = open
                .input
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| io_error(&self.connector, &open.split.path, "read", &e))?;
            if n == 0 {
                self.close_split();
                continue;
            }
            open.split.offset += n as u64;
            open.lines += 1;
            lines += 1;
            let line = trim_line(&self.buf);
            if F::SKIPS_BLANK_LINES && line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match self.format.decode(line) {
                Ok(row) => {
                    out.collect(row);
                    rows += 1;
                }
                Err(e) => {
                    let payload = line.to_vec();
                    let open = self.current.as_ref().expect("a split is open");
                    let number = self.line_number(open)?;
                    let path = open.split.path.display().to_string();
                    let at = format!("file `{path}` line {number}");
                    let letter = DeadLetter {
                        source: path,
                        partition: 0,
                        offset: number as i64,
                        error: e.to_string(),
                        payload,
                    };
                    self.bad_records.handle(letter, NO_TIMESTAMP, &at)?;
                }
            }
        }
        self.bad_records.flush()?;
        let _ = rows;
        Ok(if lines > 0 { Poll::Ready } else { Poll::Idle })
    }

    /// Ends at the next poll, where it is, as at the end of its splits (its dead letters
    /// finished); its final snapshot holds the splits it did not read.
    fn drain(&mut self) -> bool {
        self.draining = true;
        true
    }

    /// The splits still to read (the open one at its position) and, when monitoring, the
    /// files seen; the dead letters written so far made durable.
    fn snapshot(&mut self, id: CheckpointId, state: &mut StateWriter) -> Result<Snapshot> {
        let current = self.current.as_ref().map(|o| FileSplit {
            line: o.split.line.map(|first| first + o.lines),
            ..o.split.clone()
        });
        state.list("splits", current.iter().chain(self.queued.iter().rev()))?;
        if let Some(m) = &self.monitor {
            let mut seen: Vec<&PathBuf> = m.seen.iter().collect();
            seen.sort();
            state.list("seen", seen)?;
        }
        self.bad_records.checkpoint(id)
    }

    /// Reads the splits the checkpoint left to this subtask instead of its own, and counts
    /// every file any old reader had seen as seen.
    fn restore(&mut self, state: &StateReader) -> Result<()> {
        let mut splits = state.list::<FileSplit>("splits")?;
        splits.reverse();
        self.bytes_total = splits.iter().map(split_bytes).sum();
        self.bytes_done = 0;
        self.queued = splits;
        self.current = None;
        if let Some(m) = &mut self.monitor {
            m.seen = state.union::<PathBuf>("seen")?.into_iter().collect();
        }
        Ok(())
    }

    /// Commits the dead letters written before checkpoint `id` (a transactional dead-letter
    /// sink, such as a `FileSink`).
    fn checkpoint_complete(&mut self, id: CheckpointId) -> Result<()> {
        self.bad_records.checkpoint_complete(id)
    }

    fn report(&self, metrics: &mut flow_runtime::TaskMetrics, node: u32) {
        self.bad_records.report(metrics, node);
    }

    /// Bytes read of the files (or parts of files) this reader had to read; none when it
    /// monitors its paths for new files (it never ends).
    fn progress(&self) -> Option<(u64, u64)> {
        if self.monitor.is_some() {
            return None;
        }
        let open = self.current.as_ref().map_or(0, |o| {
            if is_gzip(&o.split.path) {
                0
            } else {
                o.split.offset.saturating_sub(o.from).min(o.bytes)
            }
        });
        Some((self.bytes_done + open, self.bytes_total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    struct Rows(Vec<String>);
    impl SourceOutput<String> for Rows {
        fn collect(&mut self, row: String) {
            self.0.push(row)
        }
        fn collect_with_timestamp(&mut self, row: String, _: i64) {
            self.0.push(row)
        }
    }

    fn drain(r: &mut FileSourceReader<Utf8>) -> Vec<String> {
        let mut rows = Rows(Vec::new());
        while r.poll(&mut rows, 7).unwrap() == Poll::Ready {}
        rows.0
    }

    #[test]
    fn splits_cut_at_line_boundaries_cover_every_line_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = File::create(dir.path().join("big.txt")).unwrap();
        let lines: Vec<String> = (0..500)
            .map(|i| format!("line {i} {}", "x".repeat(i % 13)))
            .collect();
        for l in &lines {
            writeln!(f, "{l}").unwrap();
        }
        drop(f);
        for (p, size) in [(1, 100), (2, 100), (3, 37), (4, 1), (2, 1 << 30)] {
            let readers = FileSource::text_lines(dir.path())
                .split_size(size)
                .into_readers(p, &Watermarks::no_watermarks())
                .unwrap();
            let mut all = Vec::new();
            for mut r in readers {
                all.extend(drain(&mut r));
            }
            all.sort();
            let mut want = lines.clone();
            want.sort();
            assert_eq!(all, want, "parallelism {p}, split size {size}");
        }
    }

    #[test]
    fn a_reader_tells_the_bytes_it_read_of_its_splits() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..300).map(|i| format!("line {i}\n")).collect();
        std::fs::write(dir.path().join("a.txt"), &text).unwrap();
        std::fs::write(dir.path().join("b.txt"), &text).unwrap();
        let size = 2 * text.len() as u64;
        let mut readers = FileSource::text_lines(dir.path())
            .split_size(500)
            .into_readers(2, &Watermarks::no_watermarks())
            .unwrap();
        let totals: Vec<u64> = readers.iter().map(|r| r.progress().unwrap().1).collect();
        assert_eq!(totals.iter().sum::<u64>(), size, "{totals:?}");
        for r in &mut readers {
            let total = r.progress().unwrap().1;
            assert_eq!(r.progress(), Some((0, total)));
            let mut rows = Rows(Vec::new());
            let mut last = 0;
            while r.poll(&mut rows, 7).unwrap() == Poll::Ready {
                let (done, t) = r.progress().unwrap();
                assert!(done >= last && done <= t, "{done} of {t} after {last}");
                last = done;
            }
            assert_eq!(r.progress(), Some((total, total)));
        }
        // A monitoring reader never ends: it cannot tell.
        let monitoring = FileSource::text_lines(dir.path())
            .monitor_continuously(Duration::from_secs(1))
            .into_readers(1, &Watermarks::no_watermarks())
            .unwrap();
        assert_eq!(monitoring[0].progress(), None);
    }

    #[test]
    fn a_drained_reader_ends_at_its_next_poll_where_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..300).map(|i| format!("line {i}\n")).collect();
        std::fs::write(dir.path().join("a.txt"), &text).unwrap();
        let mut reader = FileSource::text_lines(dir.path())
            .monitor_continuously(Duration::from_millis(1))
            .into_readers(1, &Watermarks::no_watermarks())
            .unwrap()
            .remove(0);
        let mut rows = Rows(Vec::new());
        assert_eq!(reader.poll(&mut rows, 7).unwrap(), Poll::Ready);
        assert_eq!(rows.0.len(), 7);
        assert!(reader.drain(), "the reader ends by itself");
        assert_eq!(reader.poll(&mut rows, 7).unwrap(), Poll::Finished);
        assert_eq!(reader.poll(&mut rows, 7).unwrap(), Poll::Finished);
        // Not a line more, though a monitoring reader never ends by itself.
        assert_eq!(rows.0.len(), 7);
        assert!(reader.finished);
    }

    #[test]
    fn hidden_files_are_skipped_and_a_missing_path_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "a\n").unwrap();
        std::fs::write(dir.path().join(".hidden"), "h\n").unwrap();
        std::fs::write(dir.path().join("_SUCCESS"), "s\n").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b.txt"), "b\r\n\nc").unwrap();
        let mut r = FileSource::text_lines(dir.path())
            .into_readers(1, &Watermarks::no_watermarks())
            .unwrap();
        assert_eq!(drain(&mut r[0]), vec!["a", "b", "", "c"]);
        let e = FileSource::text_lines(dir.path().join("nope"))
            .into_readers(1, &Watermarks::no_watermarks())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("nope") && e.contains("does not exist"), "{e}");
    }
}
