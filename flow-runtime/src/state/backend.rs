//! Which backend keeps keyed state: the flags' types, there whether or not flow was built
//! with the disk backend (cargo feature `disk`).

use std::path::PathBuf;

/// Where keyed state lives (Flink's `state.backend.type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StateBackendKind {
    /// Every key's state in memory, in hash maps (Flink's `hashmap`): the fastest, bounded
    /// by memory.
    #[default]
    Memory,
    /// On disk, in an embedded LSM store, behind a bounded cache of hot keys (Flink's
    /// `rocksdb`): state larger than memory.
    Disk,
}

impl std::str::FromStr for StateBackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "memory" | "hashmap" => Ok(StateBackendKind::Memory),
            "disk" | "rocksdb" => Ok(StateBackendKind::Disk),
            _ => Err(format!(
                "unknown state backend `{s}`: expected memory or disk"
            )),
        }
    }
}

/// The default `--state-cache-mb`.
pub const DEFAULT_STATE_CACHE_MB: u64 = 64;

/// The state backend of a job: `--state-backend`, `--state-dir`, `--state-cache-mb`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateBackendConfig {
    /// `--state-backend`.
    pub kind: StateBackendKind,
    /// `--state-dir`: where the disk backend keeps its store (default: the system's
    /// temporary directory).
    pub dir: Option<PathBuf>,
    /// `--state-cache-mb`, in bytes: how much memory the cache of each keyed structure of
    /// each subtask may hold.
    pub cache_bytes: u64,
}

impl Default for StateBackendConfig {
    fn default() -> Self {
        StateBackendConfig {
            kind: StateBackendKind::Memory,
            dir: None,
            cache_bytes: DEFAULT_STATE_CACHE_MB << 20,
        }
    }
}
