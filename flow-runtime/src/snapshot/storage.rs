//! Checkpoints on the local file system (`--checkpoint-dir`): one folder per checkpoint, one
//! file per operator instance, and a metadata file written last, atomically, that makes the
//! checkpoint complete. A folder without `_metadata` is a checkpoint that never completed:
//! `--restore latest` skips it, and the next completed checkpoint removes it.
//!
//! ```text
//! DIR/chk-7/reduce-3.0.state     operator `reduce-3`, subtask 0
//! DIR/chk-7/reduce-3.1.state
//! DIR/chk-7/source-0.0.state
//! DIR/chk-7/_metadata            job, checkpoint, every file above (written last)
//! ```

use super::{OperatorState, Section, StateReader, StoredState, KEY_GROUPS};
use crate::exec::CheckpointId;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Bumped when the layout of the files changes. Format 1 (before each keyed section recorded
/// its layout) is still read; another is refused.
const FORMAT: u32 = 2;
const MAGIC: [u8; 8] = *b"FLOWCHK\0";
const METADATA: &str = "_metadata";

/// The header and sections of one operator instance's file.
#[derive(Serialize, Deserialize)]
struct OperatorFile {
    job: String,
    checkpoint: CheckpointId,
    uid: String,
    subtask: u32,
    parallelism: u32,
    sections: Vec<Section>,
}

/// An operator file of format 1: its sections had no layouts.
#[derive(Deserialize)]
struct OperatorFileV1 {
    job: String,
    checkpoint: CheckpointId,
    uid: String,
    subtask: u32,
    parallelism: u32,
    sections: Vec<SectionV1>,
}

#[derive(Deserialize)]
struct SectionV1 {
    name: String,
    types: String,
    data: super::SectionData,
}

/// A file's contents as an older format wrote them.
pub(super) trait Versioned: Sized + for<'de> Deserialize<'de> {
    /// Decodes format-1 bytes.
    fn decode_v1(bytes: &[u8]) -> bincode::Result<Self> {
        bincode::deserialize(bytes)
    }
}

/// The metadata's layout did not change.
impl Versioned for Metadata {}

impl Versioned for OperatorFile {
    /// Sections without a layout (`[0, 0]`): read by their type names, as format 1 was.
    fn decode_v1(bytes: &[u8]) -> bincode::Result<Self> {
        let v1: OperatorFileV1 = bincode::deserialize(bytes)?;
        Ok(OperatorFile {
            job: v1.job,
            checkpoint: v1.checkpoint,
            uid: v1.uid,
            subtask: v1.subtask,
            parallelism: v1.parallelism,
            sections: v1
                .sections
                .into_iter()
                .map(|s| Section {
                    name: s.name,
                    types: s.types,
                    schema: [0, 0],
                    data: s.data,
                })
                .collect(),
        })
    }
}

/// One state file of a checkpoint, as the metadata lists it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct FileEntry {
    pub(crate) uid: String,
    pub(crate) subtask: u32,
    pub(crate) parallelism: u32,
    pub(crate) file: String,
    pub(crate) bytes: u64,
}

/// The metadata file: what makes a checkpoint complete.
#[derive(Debug, Serialize, Deserialize)]
struct Metadata {
    job: String,
    checkpoint: CheckpointId,
    savepoint: bool,
    key_groups: u32,
    files: Vec<FileEntry>,
}

/// The final state of a task that finished before later checkpoints: written into each of
/// them, so that a job restored from one does not run the finished operators again.
#[derive(Debug)]
pub(crate) struct FinishedTask {
    pub(crate) subtask: u32,
    pub(crate) parallelism: u32,
    pub(crate) operators: Vec<(String, Vec<Section>)>,
    /// The newest checkpoint the task took before it finished (set by the coordinator). That
    /// one, and every earlier one, holds the state the task acknowledged: the tasks after it
    /// snapshotted only the rows it sent before that barrier. Its final state belongs to the
    /// checkpoints after.
    pub(crate) after: CheckpointId,
}

impl FinishedTask {
    /// Its operators' state, to write into one more checkpoint.
    pub(crate) fn operators(&self) -> Vec<(String, OperatorState)> {
        super::states_of(&self.operators)
    }
}

/// Writes a job's checkpoints under one directory (`--checkpoint-dir`), and its savepoint
/// under another (`--savepoint-dir`).
#[derive(Debug)]
pub(crate) struct CheckpointStorage {
    dir: Option<PathBuf>,
    savepoints: Option<PathBuf>,
    /// The savepoint being taken: its id and folder.
    savepoint: std::sync::Mutex<Option<(CheckpointId, PathBuf)>>,
    retained: usize,
    job: String,
    /// How long completing a checkpoint waits before its metadata is written: slow storage
    /// (an object store), simulated for fault-injection tests through the environment
    /// variable `FLOW_CHECKPOINT_STORAGE_DELAY_MS`. Zero by default.
    delay: std::time::Duration,
}

fn io(action: &'static str, path: &Path, e: std::io::Error) -> Error {
    Error::io("checkpoint storage", action, path, e)
}

/// Writes `bytes` to `path` through a temporary file and a rename, synced, so that `path`
/// holds either nothing or all of it.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(|e| io("create", &tmp, e))?;
    f.write_all(bytes).map_err(|e| io("write", &tmp, e))?;
    f.sync_all().map_err(|e| io("sync", &tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| io("rename", &tmp, e))?;
    if let Some(parent) = path.parent() {
        // The rename is durable once the directory is synced.
        if let Ok(d) = fs::File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

pub(super) fn encode_file<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&FORMAT.to_le_bytes());
    bincode::serialize_into(&mut bytes, value)
        .map_err(|e| Error::Config(format!("cannot encode checkpoint file: {e}")))?;
    Ok(bytes)
}

pub(super) fn decode_file<T: Versioned>(path: &Path, operator: &str) -> Result<T> {
    let bytes = fs::read(path).map_err(|e| Error::State {
        operator: operator.to_string(),
        file: Some(path.to_path_buf()),
        message: format!("cannot read it: {e}"),
    })?;
    let corrupt = |message: String| Error::State {
        operator: operator.to_string(),
        file: Some(path.to_path_buf()),
        message,
    };
    if bytes.len() < 12 || bytes[..8] != MAGIC {
        return Err(corrupt("not a flow checkpoint file".into()));
    }
    let format = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let decoded = match format {
        FORMAT => bincode::deserialize(&bytes[12..]),
        1 => T::decode_v1(&bytes[12..]),
        _ => {
            return Err(corrupt(format!(
                "written in checkpoint format {format}; this flow reads formats 1 and {FORMAT}"
            )))
        }
    };
    decoded.map_err(|e| corrupt(format!("the file is corrupt or truncated: {e}")))
}

/// The folder of checkpoint `id` under `dir`.
fn checkpoint_dir(dir: &Path, id: CheckpointId) -> PathBuf {
    dir.join(format!("chk-{id}"))
}

/// The checkpoints under `dir`, by id, and whether each completed.
fn list_checkpoints(dir: &Path) -> Result<Vec<(CheckpointId, PathBuf, bool)>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io("list", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io("list", dir, e))?;
        let name = entry.file_name();
        let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_prefix("chk-"))
            .and_then(|n| n.parse::<CheckpointId>().ok())
        else {
            continue;
        };
        let path = entry.path();
        let complete = path.join(METADATA).is_file();
        out.push((id, path, complete));
    }
    out.sort_by_key(|c| c.0);
    Ok(out)
}

impl CheckpointStorage {
    /// Checkpoints of job `job` under `dir`, keeping the newest `retained` completed ones,
    /// and savepoints under `savepoints`; `None` when neither is given. Numbering continues
    /// after the newest checkpoint already in `dir`.
    pub(crate) fn open(
        dir: Option<&Path>,
        savepoints: Option<&Path>,
        retained: usize,
        job: &str,
    ) -> Result<Option<(Self, CheckpointId)>> {
        if dir.is_none() && savepoints.is_none() {
            return Ok(None);
        }
        let mut last = 0;
        if let Some(dir) = dir {
            fs::create_dir_all(dir).map_err(|e| io("create directory", dir, e))?;
            last = list_checkpoints(dir)?.last().map_or(0, |c| c.0);
        }
        Ok(Some((
            CheckpointStorage {
                dir: dir.map(Path::to_path_buf),
                savepoints: savepoints.map(Path::to_path_buf),
                savepoint: std::sync::Mutex::new(None),
                retained: retained.max(1),
                job: job.to_string(),
                delay: std::env::var("FLOW_CHECKPOINT_STORAGE_DELAY_MS")
                    .ok()
                    .and_then(|ms| ms.parse().ok())
                    .map_or(std::time::Duration::ZERO, std::time::Duration::from_millis),
            },
            last,
        )))
    }

    fn savepoint(&self) -> std::sync::MutexGuard<'_, Option<(CheckpointId, PathBuf)>> {
        self.savepoint.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes checkpoint `id` the savepoint: it goes to a folder of its own under the
    /// savepoint directory.
    pub(crate) fn begin_savepoint(&self, id: CheckpointId) -> Result<()> {
        let Some(base) = &self.savepoints else {
            return Err(Error::Config(
                "no --savepoint-dir to write a savepoint to".into(),
            ));
        };
        fs::create_dir_all(base).map_err(|e| io("create directory", base, e))?;
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        *self.savepoint() = Some((id, base.join(format!("savepoint-{id}-{millis}"))));
        Ok(())
    }

    /// Whether checkpoint `id` is saved: any checkpoint with a checkpoint directory, the
    /// savepoint always.
    pub(crate) fn stores(&self, id: CheckpointId) -> bool {
        self.dir.is_some() || self.is_savepoint(id)
    }

    fn is_savepoint(&self, id: CheckpointId) -> bool {
        self.savepoint().as_ref().is_some_and(|(s, _)| *s == id)
    }

    /// The folder of checkpoint `id`, if it is saved.
    fn folder(&self, id: CheckpointId) -> Option<PathBuf> {
        if let Some((s, folder)) = self.savepoint().as_ref() {
            if *s == id {
                return Some(folder.clone());
            }
        }
        self.dir.as_deref().map(|d| checkpoint_dir(d, id))
    }

    /// Writes the state of one task's operators for checkpoint `id`; returns what the
    /// metadata lists.
    pub(crate) fn write_task(
        &self,
        id: CheckpointId,
        subtask: u32,
        parallelism: u32,
        operators: Vec<(String, OperatorState)>,
    ) -> Result<Vec<FileEntry>> {
        let Some(dir) = self.folder(id) else {
            return Ok(Vec::new());
        };
        fs::create_dir_all(&dir).map_err(|e| io("create directory", &dir, e))?;
        let mut entries = Vec::with_capacity(operators.len());
        for (uid, state) in operators {
            let file = format!("{uid}.{subtask}.state");
            let bytes = encode_file(&OperatorFile {
                job: self.job.clone(),
                checkpoint: id,
                uid: uid.clone(),
                subtask,
                parallelism,
                sections: state.materialize()?,
            })?;
            write_atomically(&dir.join(&file), &bytes)?;
            entries.push(FileEntry {
                uid,
                subtask,
                parallelism,
                file,
                bytes: bytes.len() as u64,
            });
        }
        Ok(entries)
    }

    /// Writes the final state of the tasks that `finished` into checkpoint `id` next to the
    /// `files` the running tasks wrote, then completes it; returns its folder and its size.
    pub(crate) fn complete_with_finished(
        &self,
        id: CheckpointId,
        mut files: Vec<FileEntry>,
        finished: &[FinishedTask],
    ) -> Result<(Option<PathBuf>, u64)> {
        for f in finished.iter().filter(|f| f.after < id) {
            files.extend(self.write_task(id, f.subtask, f.parallelism, f.operators())?);
        }
        let bytes = files.iter().map(|f| f.bytes).sum();
        Ok((self.complete(id, files)?, bytes))
    }

    /// Completes checkpoint `id`: writes its metadata, then (a checkpoint, not the savepoint)
    /// removes the completed checkpoints beyond the newest `retained` and every unfinished one
    /// before `id`. Returns the checkpoint's folder, `None` if it is not saved.
    pub(crate) fn complete(
        &self,
        id: CheckpointId,
        files: Vec<FileEntry>,
    ) -> Result<Option<PathBuf>> {
        let Some(dir) = self.folder(id) else {
            return Ok(None);
        };
        let savepoint = self.is_savepoint(id);
        fs::create_dir_all(&dir).map_err(|e| io("create directory", &dir, e))?;
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        let bytes = encode_file(&Metadata {
            job: self.job.clone(),
            checkpoint: id,
            savepoint,
            key_groups: KEY_GROUPS as u32,
            files,
        })?;
        write_atomically(&dir.join(METADATA), &bytes)?;
        let Some(base) = self.dir.as_deref().filter(|_| !savepoint) else {
            return Ok(Some(dir));
        };
        let all = list_checkpoints(base)?;
        let completed: Vec<_> = all.iter().filter(|c| c.2 && c.0 <= id).collect();
        let keep_from = completed
            .len()
            .checked_sub(self.retained)
            .map_or(0, |n| completed[n].0);
        for (old, path, done) in &all {
            if *old < id && (*old < keep_from || !done) {
                if let Err(e) = fs::remove_dir_all(path) {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove an old checkpoint");
                }
            }
        }
        Ok(Some(dir))
    }
}

/// A completed checkpoint (or savepoint) a job restarts from.
#[derive(Debug)]
pub(crate) struct Restore {
    dir: PathBuf,
    metadata: Metadata,
    loaded: std::sync::Mutex<std::collections::HashMap<String, &'static [StoredState]>>,
}

impl Restore {
    /// The checkpoint `path` names: a checkpoint folder, its `_metadata` file, or `latest`
    /// (the newest completed checkpoint under `checkpoint_dir`).
    pub(crate) fn load(path: &str, checkpoint_dir: Option<&Path>, job: &str) -> Result<Self> {
        let dir = if path == "latest" {
            let Some(base) = checkpoint_dir else {
                return Err(Error::Config(
                    "`--restore latest` needs `--checkpoint-dir` (where to look)".into(),
                ));
            };
            match list_checkpoints(base)?.into_iter().rev().find(|c| c.2) {
                Some((_, dir, _)) => dir,
                None => {
                    return Err(Error::Config(format!(
                        "`--restore latest`: no completed checkpoint in `{}`",
                        base.display()
                    )))
                }
            }
        } else {
            let p = PathBuf::from(path);
            if p.file_name().is_some_and(|n| n == METADATA) {
                p.parent().map(Path::to_path_buf).unwrap_or_default()
            } else {
                p
            }
        };
        let meta_path = dir.join(METADATA);
        if !meta_path.is_file() {
            return Err(Error::State {
                operator: "restore".into(),
                file: Some(meta_path),
                message: "missing: not a completed checkpoint or savepoint".into(),
            });
        }
        let metadata: Metadata = decode_file(&meta_path, "restore")?;
        if metadata.job != job {
            return Err(Error::State {
                operator: "restore".into(),
                file: Some(meta_path),
                message: format!(
                    "a checkpoint of job `{}`, and this job is `{job}`",
                    metadata.job
                ),
            });
        }
        if metadata.key_groups as usize != KEY_GROUPS {
            return Err(Error::State {
                operator: "restore".into(),
                file: Some(meta_path),
                message: format!(
                    "taken with {} key groups; this flow uses {KEY_GROUPS}",
                    metadata.key_groups
                ),
            });
        }
        tracing::info!(checkpoint = metadata.checkpoint, path = %dir.display(), "restoring");
        Ok(Restore {
            dir,
            metadata,
            loaded: Default::default(),
        })
    }

    /// The checkpoint's folder.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The checkpoint's id.
    pub(crate) fn checkpoint(&self) -> CheckpointId {
        self.metadata.checkpoint
    }

    /// The uids of the operators the checkpoint holds state for.
    pub(crate) fn uids(&self) -> impl Iterator<Item = &str> {
        self.metadata.files.iter().map(|f| f.uid.as_str())
    }

    /// The reader of operator `uid`'s state for subtask `subtask` of `parallelism`; `None`
    /// when the checkpoint has no state for it.
    pub(crate) fn reader(
        &self,
        uid: &str,
        subtask: usize,
        parallelism: usize,
    ) -> Result<Option<StateReader>> {
        // Each operator's files are read once for all its subtasks, and kept: restored values
        // may borrow from them (`&'static str` keys).
        let mut cache = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(stored) = cache.get(uid) {
            return Ok(Some(StateReader::new(uid, subtask, parallelism, stored)));
        }
        let mut stored = Vec::new();
        for entry in self.metadata.files.iter().filter(|f| f.uid == uid) {
            let path = self.dir.join(&entry.file);
            let file: OperatorFile = decode_file(&path, uid)?;
            if file.uid != uid || file.checkpoint != self.metadata.checkpoint {
                return Err(Error::State {
                    operator: uid.to_string(),
                    file: Some(path),
                    message: format!(
                        "holds operator `{}` of checkpoint {}, and the metadata expects `{uid}` \
                         of checkpoint {}",
                        file.uid, file.checkpoint, self.metadata.checkpoint
                    ),
                });
            }
            stored.push(StoredState {
                file: path,
                subtask: file.subtask as usize,
                sections: file.sections,
            });
        }
        if stored.is_empty() {
            return Ok(None);
        }
        stored.sort_by_key(|s| s.subtask);
        let stored: &'static [StoredState] = stored.leak();
        cache.insert(uid.to_string(), stored);
        Ok(Some(StateReader::new(uid, subtask, parallelism, stored)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::StateWriter;

    /// `value` in a file of format `format`.
    fn with_header<T: Serialize>(format: u32, value: &T) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&format.to_le_bytes());
        bincode::serialize_into(&mut bytes, value).unwrap();
        bytes
    }

    #[test]
    fn a_checkpoint_of_format_1_is_read_by_its_type_names() {
        #[derive(Serialize)]
        struct SectionV1<'a> {
            name: &'a str,
            types: &'a str,
            data: &'a super::super::SectionData,
        }
        #[derive(Serialize)]
        struct FileV1<'a> {
            job: &'a str,
            checkpoint: CheckpointId,
            uid: &'a str,
            subtask: u32,
            parallelism: u32,
            sections: Vec<SectionV1<'a>>,
        }
        let mut w = StateWriter::detached();
        w.keyed("state", [(&1i64, &7u32)]).unwrap();
        let section = w.into_state().materialize().unwrap().remove(0);
        let dir = tempfile::tempdir().unwrap();
        let chk = dir.path().join("chk-3");
        fs::create_dir_all(&chk).unwrap();
        let file = with_header(
            1,
            &FileV1 {
                job: "job",
                checkpoint: 3,
                uid: "op",
                subtask: 0,
                parallelism: 1,
                sections: vec![SectionV1 {
                    name: &section.name,
                    types: &section.types,
                    data: &section.data,
                }],
            },
        );
        fs::write(chk.join("op.0.state"), &file).unwrap();
        let metadata = Metadata {
            job: "job".into(),
            checkpoint: 3,
            savepoint: false,
            key_groups: KEY_GROUPS as u32,
            files: vec![FileEntry {
                uid: "op".into(),
                subtask: 0,
                parallelism: 1,
                file: "op.0.state".into(),
                bytes: file.len() as u64,
            }],
        };
        fs::write(chk.join(METADATA), with_header(1, &metadata)).unwrap();
        let restore = Restore::load(chk.to_str().unwrap(), None, "job").unwrap();
        let reader = restore.reader("op", 0, 1).unwrap().expect("op's state");
        let mut got = Vec::new();
        reader
            .keyed::<i64, u32>("state", |k, v| got.push((k, v)))
            .unwrap();
        assert_eq!(got, [(1, 7)]);
    }
}
