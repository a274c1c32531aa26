//! The file sink's settings: when a part file rolls, and how part files are named.

use std::time::Duration;

/// When a part file is finished and the next one started (Flink's `DefaultRollingPolicy`).
///
/// A part rolls when it has reached [`max_part_size`](Self::max_part_size) bytes (checked after
/// each row), when it has been open for [`rollover_interval`](Self::rollover_interval), or when
/// no row was written to it for [`inactivity_interval`](Self::inactivity_interval). The two
/// time-based conditions are checked whenever the writer is flushed: after every input batch
/// and about every 50 ms while the input is idle, so activity is measured at batch granularity.
///
/// # Default
/// Flink's defaults: 128 MiB, 60 s, 60 s.
///
/// # Examples
/// ```
/// use flow_connectors::file::RollingPolicy;
/// use std::time::Duration;
///
/// let policy = RollingPolicy::default_policy()
///     .max_part_size(1024 * 1024)
///     .rollover_interval(Duration::from_secs(15 * 60))
///     .inactivity_interval(Duration::from_secs(5 * 60));
/// # let _ = policy;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RollingPolicy {
    pub(crate) max_part_size: u64,
    pub(crate) rollover_interval: Duration,
    pub(crate) inactivity_interval: Duration,
}

impl RollingPolicy {
    /// Flink's default part size: 128 MiB.
    pub const DEFAULT_MAX_PART_SIZE: u64 = 128 * 1024 * 1024;
    /// Flink's default rollover interval: 60 s.
    pub const DEFAULT_ROLLOVER_INTERVAL: Duration = Duration::from_secs(60);
    /// Flink's default inactivity interval: 60 s.
    pub const DEFAULT_INACTIVITY_INTERVAL: Duration = Duration::from_secs(60);

    /// The default policy, to be adjusted with the builder methods.
    ///
    /// # Default
    /// Rolls at 128 MiB, after 60 s open, after 60 s without a row.
    pub fn default_policy() -> Self {
        RollingPolicy {
            max_part_size: Self::DEFAULT_MAX_PART_SIZE,
            rollover_interval: Self::DEFAULT_ROLLOVER_INTERVAL,
            inactivity_interval: Self::DEFAULT_INACTIVITY_INTERVAL,
        }
    }

    /// Rolls a part once it holds `bytes` bytes or more.
    ///
    /// # Default
    /// 128 MiB ([`Self::DEFAULT_MAX_PART_SIZE`]).
    #[must_use]
    pub fn max_part_size(mut self, bytes: u64) -> Self {
        self.max_part_size = bytes;
        self
    }

    /// Rolls a part that has been open for `interval`, however active it is.
    ///
    /// # Default
    /// 60 s ([`Self::DEFAULT_ROLLOVER_INTERVAL`]).
    #[must_use]
    pub fn rollover_interval(mut self, interval: Duration) -> Self {
        self.rollover_interval = interval;
        self
    }

    /// Rolls a part that received no row for `interval`.
    ///
    /// # Default
    /// 60 s ([`Self::DEFAULT_INACTIVITY_INTERVAL`]).
    #[must_use]
    pub fn inactivity_interval(mut self, interval: Duration) -> Self {
        self.inactivity_interval = interval;
        self
    }
}

impl Default for RollingPolicy {
    fn default() -> Self {
        Self::default_policy()
    }
}

/// How part files are named (Flink's `OutputFileConfig`): `<prefix>-<uuid>-<subtask>-<count><suffix>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PartConfig {
    pub(crate) prefix: String,
    pub(crate) suffix: String,
}

impl Default for PartConfig {
    fn default() -> Self {
        PartConfig {
            prefix: "part".into(),
            suffix: String::new(),
        }
    }
}

impl PartConfig {
    /// The finished name of part `count` of `subtask`.
    pub(crate) fn part_name(&self, uuid: &str, subtask: usize, count: u64) -> String {
        format!("{}-{uuid}-{subtask}-{count}{}", self.prefix, self.suffix)
    }

    /// The hidden name a part has while it is written: Flink's local file system staging name.
    pub(crate) fn in_progress_name(part_name: &str, attempt: &str) -> String {
        format!(".{part_name}.inprogress.{attempt}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_flinks() {
        let p = RollingPolicy::default();
        assert_eq!(p, RollingPolicy::default_policy());
        assert_eq!(p.max_part_size, 128 * 1024 * 1024);
        assert_eq!(p.rollover_interval, Duration::from_secs(60));
        assert_eq!(p.inactivity_interval, Duration::from_secs(60));
        let c = PartConfig::default();
        assert_eq!(c.part_name("u", 3, 7), "part-u-3-7");
    }

    #[test]
    fn builders_set_their_field_only() {
        let p = RollingPolicy::default_policy()
            .max_part_size(1024 * 1024)
            .rollover_interval(Duration::from_secs(15 * 60));
        assert_eq!(p.max_part_size, 1024 * 1024);
        assert_eq!(p.rollover_interval, Duration::from_secs(900));
        assert_eq!(p.inactivity_interval, Duration::from_secs(60));
        let p = p.inactivity_interval(Duration::from_millis(5));
        assert_eq!(p.inactivity_interval, Duration::from_millis(5));
    }

    #[test]
    fn in_progress_names_are_hidden() {
        let c = PartConfig {
            prefix: "pre".into(),
            suffix: ".txt".into(),
        };
        let name = c.part_name("u", 0, 1);
        assert_eq!(name, "pre-u-0-1.txt");
        assert_eq!(
            PartConfig::in_progress_name(&name, "a"),
            ".pre-u-0-1.txt.inprogress.a"
        );
    }
}
