//! The disk state backend (`--state-backend disk`): keyed state in an embedded LSM store
//! ([fjall]) under `--state-dir`, behind a bounded cache of hot keys in each [`KeyedState`].
//!
//! The store is the run's working copy of its keyed state, not its durable one: checkpoints
//! still write every key's state to `--checkpoint-dir` (from a consistent snapshot of the
//! store, off the row path), and a restore reads them back into a new store. So a store
//! never outlives its run: it lives in `<state-dir>/flow-<job>-<pid>/`, removed when the job
//! ends; a run killed before it could remove its own is cleaned up by the next run of the
//! same job in the same directory.
//!
//! Layout: one keyspace per task (thread), and in it one key prefix per keyed structure
//! (4 bytes, in the order the structures open); a key is the prefix and the key's bincode
//! bytes, a value the state's bincode bytes.
//!
//! [`KeyedState`]: super::KeyedState

use super::backend::{StateBackendConfig, StateBackendKind};
use crate::Error;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// A job run's on-disk store, opened when the first keyed structure asks for it (a job
/// without keyed state creates nothing).
pub(crate) struct DiskBackend {
    root: PathBuf,
    job: String,
    pub(crate) cache_bytes: u64,
    db: OnceLock<Result<Db, String>>,
    next_prefix: AtomicU32,
}

struct Db {
    dir: Arc<Path>,
    db: fjall::Database,
    keyspaces: Mutex<HashMap<usize, fjall::Keyspace>>,
}

impl std::fmt::Debug for DiskBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskBackend")
            .field("root", &self.root)
            .field("cache_bytes", &self.cache_bytes)
            .finish_non_exhaustive()
    }
}

impl DiskBackend {
    /// The disk backend of job `job` per `config`, or `None` for the memory backend. Checks
    /// that the state directory can be used, so that a bad `--state-dir` fails at start.
    pub(crate) fn for_job(config: &StateBackendConfig, job: &str) -> crate::Result<Option<Self>> {
        if config.kind == StateBackendKind::Memory {
            return Ok(None);
        }
        let root = config.dir.clone().unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&root)
            .map_err(|e| Error::io("state backend", "create state directory", &root, e))?;
        if !root.is_dir() {
            return Err(Error::Config(format!(
                "--state-dir `{}` is not a directory",
                root.display()
            )));
        }
        let job: String = job
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => c,
                _ => '_',
            })
            .collect();
        remove_dead_runs(&root, &job);
        Ok(Some(DiskBackend {
            root,
            job,
            cache_bytes: config.cache_bytes,
            db: OnceLock::new(),
            next_prefix: AtomicU32::new(0),
        }))
    }

    /// This run's store directory.
    fn run_dir(&self) -> PathBuf {
        self.root
            .join(format!("flow-{}-{}", self.job, std::process::id()))
    }

    /// A new keyed structure's place in task `task`'s keyspace.
    pub(crate) fn structure(&self, task: usize, operator: &str) -> crate::Result<Store> {
        let db = self
            .db
            .get_or_init(|| {
                let dir = self.run_dir();
                if dir.exists() {
                    // The same pid in the same directory: a leftover of an earlier run whose
                    // process had this pid. Never ours (one backend per run).
                    std::fs::remove_dir_all(&dir).map_err(|e| {
                        format!("cannot remove the stale store `{}`: {e}", dir.display())
                    })?;
                }
                let db = fjall::Database::builder(&dir)
                    // Reads that miss the state cache mostly miss this one too: a small
                    // block cache (half the state cache's size, 2 MiB at least) for the
                    // index and filter blocks, the memory goes to the state cache.
                    .cache_size((self.cache_bytes / 2).max(2 << 20))
                    .temporary(true)
                    .open()
                    .map_err(|e| format!("cannot open a store in `{}`: {e}", dir.display()))?;
                tracing::info!(dir = %dir.display(), "disk state backend: store opened");
                Ok(Db {
                    dir: dir.into(),
                    db,
                    keyspaces: Mutex::default(),
                })
            })
            .as_ref()
            .map_err(|m| Error::State {
                operator: "state backend".into(),
                file: None,
                message: m.clone(),
            })?;
        let cache_bytes = self.cache_bytes;
        let mut keyspaces = db.keyspaces.lock().unwrap_or_else(|e| e.into_inner());
        let ks = match keyspaces.get(&task) {
            Some(ks) => ks.clone(),
            None => {
                let ks = db
                    .db
                    .keyspace(&format!("task-{task}"), || {
                        // The state cache is the write buffer: memtables only batch what it
                        // writes back, so a small one keeps the process's memory bounded.
                        use fjall::config::PartitioningPolicy;
                        fjall::KeyspaceCreateOptions::default()
                            .max_memtable_size((cache_bytes / 4).clamp(1 << 20, 64 << 20))
                            // A whole table's filter or index is one block otherwise (about a
                            // megabyte per million keys), too big for the block cache: read
                            // and checksummed from the file on every lookup.
                            .filter_block_partitioning_policy(PartitioningPolicy::all(true))
                            .index_block_partitioning_policy(PartitioningPolicy::all(true))
                    })
                    .map_err(|e| store_error(operator, &db.dir, "create a keyspace", e))?;
                keyspaces.insert(task, ks.clone());
                ks
            }
        };
        let id = self.next_prefix.fetch_add(1, Ordering::Relaxed);
        Ok(Store {
            operator: operator.into(),
            db: db.db.clone(),
            ks,
            prefix: id.to_be_bytes(),
            dir: db.dir.clone(),
        })
    }
}

/// Removes the stores of earlier runs of `job` under `root` whose process is gone (killed
/// before it could remove its own).
fn remove_dead_runs(root: &Path, job: &str) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let prefix = format!("flow-{job}-");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_alive(pid) {
            let path = entry.path();
            match std::fs::remove_dir_all(&path) {
                Ok(()) => tracing::info!(
                    dir = %path.display(),
                    "disk state backend: removed the store of a run that ended without removing it"
                ),
                Err(e) => tracing::warn!(
                    dir = %path.display(),
                    error = %e,
                    "disk state backend: cannot remove the store of an ended run"
                ),
            }
        }
    }
}

#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn process_alive(_: u32) -> bool {
    true
}

/// A store error of `operator`'s state, naming the store's directory.
pub(crate) fn store_error(
    operator: &str,
    dir: &Path,
    action: &str,
    e: impl std::fmt::Display,
) -> Error {
    let e = e.to_string();
    // fjall poisons the store when a background flush or compaction fails; the cause was
    // logged by fjall's worker.
    let hint = if e.contains("Poisoned") {
        " (a background write of the store failed, e.g. the disk is full: see the error logged before)"
    } else {
        ""
    };
    Error::State {
        operator: operator.into(),
        file: None,
        message: format!(
            "state store `{}`: cannot {action}: {e}{hint}",
            dir.display()
        ),
    }
}

/// One keyed structure's place in the store: its keyspace and key prefix.
#[derive(Clone)]
pub(crate) struct Store {
    /// The operator whose state it is, for errors.
    operator: Arc<str>,
    db: fjall::Database,
    ks: fjall::Keyspace,
    prefix: [u8; 4],
    dir: Arc<Path>,
}

impl Store {
    /// `buf` cleared to this structure's prefix, for a key's bytes to follow.
    pub(crate) fn key_buf(&self, buf: &mut Vec<u8>) {
        buf.clear();
        buf.extend_from_slice(&self.prefix);
    }

    /// Logs the store's shape at debug level (RUST_LOG=flow_runtime=debug): memtables
    /// waiting for a flush, tables in level 0 and in all.
    pub(crate) fn trace(&self) {
        tracing::debug!(
            sealed = self.ks.sealed_memtable_count(),
            l0 = self.ks.l0_table_count(),
            tables = self.ks.table_count(),
            "store"
        );
    }

    /// The operator whose state it is.
    pub(crate) fn operator(&self) -> &str {
        &self.operator
    }

    /// The structure's key prefix.
    pub(crate) fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// The store's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn get(&self, key: &[u8]) -> crate::Result<Option<fjall::Slice>> {
        self.ks
            .get(key)
            .map_err(|e| store_error(&self.operator, &self.dir, "read", e))
    }

    /// `key`'s value, decoded by `decode` (a decode error names `what` it was).
    pub(crate) fn get_decoded<T>(
        &self,
        key: &[u8],
        what: &str,
        decode: impl FnOnce(&[u8]) -> bincode::Result<T>,
    ) -> crate::Result<Option<T>> {
        match self.get(key)? {
            Some(bytes) => decode(&bytes)
                .map(Some)
                .map_err(|e| store_error(&self.operator, &self.dir, what, e)),
            None => Ok(None),
        }
    }

    pub(crate) fn contains(&self, key: &[u8]) -> crate::Result<bool> {
        self.ks
            .contains_key(key)
            .map_err(|e| store_error(&self.operator, &self.dir, "read", e))
    }

    pub(crate) fn remove(&self, key: &[u8]) -> crate::Result<()> {
        self.ks
            .remove(key.to_vec())
            .map_err(|e| store_error(&self.operator, &self.dir, "write", e))
    }

    /// Writes `puts` (key, value pairs, each a range of `bytes`) in one batch: no fsync (the
    /// store is a working copy; checkpoints are the durable one).
    pub(crate) fn write(&self, bytes: &[u8], puts: &[(usize, usize, usize)]) -> crate::Result<()> {
        if puts.is_empty() {
            return Ok(());
        }
        let mut batch = self.db.batch();
        for &(k, v, end) in puts {
            batch.insert(&self.ks, &bytes[k..v], &bytes[v..end]);
        }
        batch
            .commit()
            .map_err(|e| store_error(&self.operator, &self.dir, "write", e))
    }

    /// The entries whose key starts with `prefix`, in key order, from `from` on (from the
    /// first if unbounded), until `f` returns `false`.
    pub(crate) fn scan(
        &self,
        prefix: &[u8],
        from: std::ops::Bound<&[u8]>,
        mut f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> crate::Result<()> {
        use std::ops::Bound;
        let iter = match from {
            Bound::Unbounded => self.ks.prefix(prefix),
            from => self.ks.range::<&[u8], _>((from, Bound::Unbounded)),
        };
        for guard in iter {
            let (k, v) = guard
                .into_inner()
                .map_err(|e| store_error(&self.operator, &self.dir, "read", e))?;
            if !k.starts_with(prefix) || !f(&k, &v) {
                break;
            }
        }
        Ok(())
    }

    /// Deletes `keys` (each a range of `bytes`) in one batch.
    pub(crate) fn remove_all(&self, bytes: &[u8], keys: &[(usize, usize)]) -> crate::Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut batch = self.db.batch();
        for &(k, end) in keys {
            batch.remove(&self.ks, &bytes[k..end]);
        }
        batch
            .commit()
            .map_err(|e| store_error(&self.operator, &self.dir, "write", e))
    }

    /// Deletes every entry whose key starts with `prefix` (one of this structure's keys),
    /// in batches of 4,096; `buf` is scratch space for their keys.
    pub(crate) fn remove_prefixed(&self, prefix: &[u8], buf: &mut Vec<u8>) -> crate::Result<()> {
        use std::ops::Bound;
        const BATCH: usize = 4096;
        let mut ranges = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            buf.clear();
            ranges.clear();
            let from = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            self.scan(prefix, from, |k, _| {
                ranges.push((buf.len(), buf.len() + k.len()));
                buf.extend_from_slice(k);
                ranges.len() < BATCH
            })?;
            self.remove_all(buf, &ranges)?;
            match ranges.last() {
                Some(&(k, end)) if ranges.len() == BATCH => after = Some(buf[k..end].to_vec()),
                _ => return Ok(()),
            }
        }
    }

    /// Deletes every entry of this structure (its keys moved to another instance of a group).
    pub(crate) fn remove_every(&self) -> crate::Result<()> {
        self.remove_prefixed(&self.prefix, &mut Vec::new())
    }

    /// Writes the memtable to a table file (tests: to have something on disk to corrupt).
    #[cfg(test)]
    pub(crate) fn flush_to_disk(&self) {
        self.ks.rotate_memtable_and_wait().expect("flush");
    }

    /// A consistent view of the structure as it is now.
    pub(crate) fn snapshot(&self) -> StoreSnapshot {
        StoreSnapshot {
            operator: self.operator.clone(),
            snapshot: self.db.snapshot(),
            ks: self.ks.clone(),
            prefix: self.prefix,
            dir: self.dir.clone(),
        }
    }
}

/// A structure's entries at one instant (an MVCC snapshot: writes after it are not seen).
pub(crate) struct StoreSnapshot {
    operator: Arc<str>,
    snapshot: fjall::Snapshot,
    ks: fjall::Keyspace,
    prefix: [u8; 4],
    dir: Arc<Path>,
}

impl StoreSnapshot {
    /// Every entry's key (without the prefix) and value bytes, in key order.
    pub(crate) fn try_for_each(
        &self,
        mut f: impl FnMut(&[u8], &[u8]) -> crate::Result<()>,
    ) -> crate::Result<()> {
        use fjall::Readable;
        for guard in self.snapshot.prefix(&self.ks, self.prefix) {
            let (k, v) = guard
                .into_inner()
                .map_err(|e| store_error(&self.operator, &self.dir, "read", e))?;
            f(&k[self.prefix.len()..], &v)?;
        }
        Ok(())
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn operator(&self) -> &str {
        &self.operator
    }
}

impl DiskBackend {
    /// The cache and store place of a new keyed structure of task `task`.
    pub(crate) fn cached<K, S>(
        &self,
        task: usize,
        operator: &str,
    ) -> crate::Result<super::cache::Cached<K, S>>
    where
        K: std::hash::Hash + Eq + Clone + serde::Serialize + serde::Deserialize<'static>,
        S: Clone + serde::Serialize + serde::Deserialize<'static>,
    {
        Ok(super::cache::Cached::new(
            self.structure(task, operator)?,
            super::cache::Codec::new(),
            self.cache_bytes,
        ))
    }
}
