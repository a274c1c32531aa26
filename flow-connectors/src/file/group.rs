//! A [`FileSink`](super::FileSink) in an exactly-once instance group
//! (`--processing-guarantee exactly-once`): its parts commit with the group's Kafka
//! transactions, as an exactly-once `JdbcSink`'s transactions do (`jdbc::group`).
//!
//! A group takes no checkpoints; each subtask that reads Kafka for it commits what it read
//! and what came of it in one Kafka transaction, its *origin*'s (`kafka::origin`). Before each
//! of those commits a file sink in that subtask's chain closes its open part and *prepares*
//! its closed parts: it renames each, synced, to
//! `.<finished name>.pending.g<stage>-<subtask>-<run>-<commit>`, named after the number of
//! the origin's commit it waits for, and enlists them in that commit. The commit's Kafka
//! transaction then carries the origin's commit marker (that number), and once it committed
//! the parts are renamed to their finished names; an aborted Kafka transaction removes them
//! (their rows are read again).
//!
//! An instance that dies between the two leaves its last parts pending. Started again with
//! its `--instance-id`, before the first row, each subtask of its sink lists the directory
//! for its stage's pending parts and compares each with the marker of the run and subtask
//! that prepared it: one whose commit the marker reached is renamed to its finished name
//! (the Kafka transaction committed its input's positions), a later one removed (its rows are
//! read again). It removes the parts those runs left in progress
//! (`.<name>.inprogress.g<stage>-<subtask>-<run>`: never prepared, so never committed) too. A
//! sink at a lower parallelism takes those of the subtasks it no longer has
//! (`j % parallelism == subtask`). `<stage>` is 16 hex digits of a hash of the group, the
//! instance id, the block and the stage, so the instances of a group (and stages of one) may
//! share a directory.

use super::sink::{commit_part, sync_dir, PendingPart};
use crate::kafka::origin::{Enlisted, Leftovers, SharedOrigin};
use flow_runtime::{Error, Result, RuntimeContext};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Why a file sink of an exactly-once group cannot commit with the group's transactions.
const NO_ORIGIN: &str = "exactly-once in an instance group: the sink must be in the chain of a Kafka source of the group or of the stage a repartition topic feeds (after a key_by), whose Kafka transactions commit its parts, not behind another exchange (a rebalance, another parallelism); move it before the exchange, or run the group at least once";

/// A subtask's parts in its group's Kafka transactions.
pub(super) struct InGroup {
    origin: SharedOrigin,
    /// `g<stage>-<subtask>-<run>`: the suffix of its parts' hidden names in this run.
    attempt: String,
    ended: bool,
}

impl InGroup {
    /// The writer of subtask `ctx` of `operator` into `dir`: finishes the parts its
    /// instance's earlier runs left pending or in progress there (see the [module](self)
    /// docs), and counts itself a writer of the origin (the last writer's end commits the
    /// final transaction).
    ///
    /// # Errors
    /// The subtask has no origin (the sink is not in the chain of a Kafka source or of a
    /// repartition reader's stage), a commit marker cannot be read or is gone, or a part
    /// cannot be renamed or removed.
    pub(super) fn open(ctx: &RuntimeContext, dir: &Path, operator: &str) -> Result<InGroup> {
        let error = |message: String| Error::Connector {
            connector: operator.to_owned(),
            message,
        };
        let Some(origin) = SharedOrigin::find(ctx.subtask_key()) else {
            return Err(error(NO_ORIGIN.into()));
        };
        let (tag, run) = origin.lock().stage_tag();
        let (subtask, parallelism) = (ctx.subtask_index(), ctx.parallelism());
        let pending = format!(".pending.g{tag}-");
        let in_progress = format!(".inprogress.g{tag}-");
        let mut leftovers = Leftovers::new(origin.clone());
        let mut changed = false;
        let entries =
            fs::read_dir(dir).map_err(|e| Error::io(operator, "list directory", dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(operator, "list directory", dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(hidden) = name.strip_prefix('.') else {
                continue;
            };
            if let Some((finished, rest)) = hidden.rsplit_once(&pending) {
                let Some((j, dead, commit)) = Leftovers::parse(rest) else {
                    tracing::warn!(operator, file = %name, "a pending part of this stage's name that does not parse is left alone");
                    continue;
                };
                if j % parallelism != subtask || dead == run {
                    continue;
                }
                let v = leftovers.verdict(j, dead, commit)?;
                let (marker, group) = (v.marker, &v.group);
                match v.committed {
                    Some(true) => {
                        let part = PendingPart {
                            hidden: name.clone(),
                            finished: finished.to_owned(),
                        };
                        commit_part(operator, dir, &part)?;
                        tracing::info!(operator, file = %name, commit, marker, marker_group = %group, "committed a part file an earlier run of the instance prepared");
                    }
                    Some(false) => {
                        remove(operator, &dir.join(&name))?;
                        tracing::info!(operator, file = %name, commit, marker, marker_group = %group, "removed a part file an earlier run of the instance prepared: its rows are read again");
                    }
                    None => {
                        return Err(error(format!(
                            "the commit marker of the pending part `{}` is gone (consumer group `{group}`: expired after the broker's offsets.retention.minutes?): whether its Kafka transaction committed is unknown; rename it to `{finished}` or remove it by hand",
                            dir.join(&name).display()
                        )))
                    }
                }
                changed = true;
            } else if let Some((_, rest)) = hidden.rsplit_once(&in_progress) {
                let Some((j, dead)) = rest.split_once('-') else {
                    continue;
                };
                let ours = j.parse::<usize>().is_ok_and(|j| j % parallelism == subtask);
                if ours && dead != run {
                    remove(operator, &dir.join(&name))?;
                    tracing::debug!(operator, file = %name, "removed a part an earlier run of the instance left in progress");
                    changed = true;
                }
            }
        }
        if changed {
            sync_dir(operator, dir)?;
        }
        origin.lock().writer_opened();
        Ok(InGroup {
            origin,
            attempt: format!("g{tag}-{subtask}-{run}"),
            ended: false,
        })
    }

    /// The suffix of the hidden name of a part this subtask writes in this run
    /// (`.<name>.inprogress.<attempt>`).
    pub(super) fn attempt(&self) -> &str {
        &self.attempt
    }

    /// Prepares the parts `closed` (closed and synced under their in-progress names in `dir`)
    /// for the origin's next commit: renames them to their pending names, and enlists them.
    ///
    /// # Errors
    /// No source commits the origin's transactions, its marker cannot be read, or a part
    /// cannot be renamed.
    pub(super) fn prepare(
        &mut self,
        operator: &str,
        dir: &Path,
        closed: Vec<PendingPart>,
    ) -> Result<()> {
        if closed.is_empty() {
            return Ok(());
        }
        let commit = self.origin.lock().writer_next_commit(operator)?;
        let mut parts = Vec::with_capacity(closed.len());
        for part in closed {
            let pending = format!(".{}.pending.{}-{commit}", part.finished, self.attempt);
            let from = dir.join(&part.hidden);
            fs::rename(&from, dir.join(&pending))
                .map_err(|e| Error::io(operator, "rename", &from, e))?;
            parts.push(PendingPart {
                hidden: pending,
                finished: part.finished,
            });
        }
        // The names must outlive a crash of the machine before the Kafka commit names them.
        sync_dir(operator, dir)?;
        let parts = Box::new(Pending {
            operator: operator.to_owned(),
            dir: dir.to_owned(),
            parts,
        });
        self.origin.lock().enlist(commit, parts)
    }

    /// The writer's end (after its last parts were enlisted): the origin's last writer to end
    /// commits the final transaction.
    ///
    /// # Errors
    /// That commit failed.
    pub(super) fn end(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.ended, true) {
            return Ok(());
        }
        self.origin.lock().writer_ended()
    }
}

/// Removes `path`; gone already is fine.
fn remove(operator: &str, path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(operator, "remove", path, e)),
    }
}

/// Parts prepared for the origin's next commit.
struct Pending {
    operator: String,
    dir: PathBuf,
    parts: Vec<PendingPart>,
}

impl Enlisted for Pending {
    /// Renames the parts to their finished names.
    fn commit(&mut self) -> Result<()> {
        for part in &self.parts {
            commit_part(&self.operator, &self.dir, part)?;
        }
        sync_dir(&self.operator, &self.dir)
    }

    /// Removes the parts: their rows are read again.
    fn rollback(&mut self) -> Result<()> {
        for part in &self.parts {
            remove(&self.operator, &self.dir.join(&part.hidden))?;
        }
        Ok(())
    }
}
