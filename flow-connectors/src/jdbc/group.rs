//! An exactly-once [`JdbcSink`](super::JdbcSink) in an instance group
//! (`--processing-guarantee exactly-once`): two-phase commit with the group's Kafka
//! transaction as the coordinator.
//!
//! A group takes no checkpoints; each subtask that reads Kafka for it (a Kafka source's, or
//! the stage a repartition topic feeds) commits what it read and what came of it in one Kafka
//! transaction, its *origin*'s (`kafka::origin`). A JDBC sink in that subtask's chain
//! writes the rows before each of those commits as one PostgreSQL transaction and *prepares*
//! it (`PREPARE TRANSACTION`), named after the number of the commit it waits for; the origin's
//! Kafka transaction then carries a *commit marker* (that number, as a committed offset of a
//! consumer group of the origin's own), and once it committed the origin commits the prepared
//! transaction (`COMMIT PREPARED`, on a second connection of the sink's). An aborted Kafka
//! transaction rolls it back.
//!
//! An instance that dies between the two commits leaves its last transaction prepared. Started
//! again with its `--instance-id`, before the first row, its sink finds its stage's prepared
//! transactions and compares each with the marker of the run and subtask that prepared it:
//! one whose commit the marker reached is committed (the Kafka transaction committed its
//! input's positions), a later one rolled back (its rows are read again). The instance's
//! earlier runs' producers are fenced before that (so their markers are final), and a sink at
//! a lower parallelism finishes those of the subtasks it no longer has
//! (`j % parallelism == subtask`).
//!
//! Transaction ids: `<prefix>-g<stage>-<subtask>-<run>-<commit>.<k>`: `<stage>` 16 hex digits
//! of a hash of the group, the instance id, the block and the stage; `<run>` the run's
//! suffix of its transactional ids (a run's numbers start at its marker's 1, and a fenced
//! run that lives on cannot take a later run's name); `k` counts the transactions prepared
//! for one commit (a sink's commit and its end may both come before the origin's).

use super::sink::Db;
use crate::kafka::origin::{Enlisted, Leftovers, SharedOrigin};
use flow_runtime::{Result, RuntimeContext};
use std::sync::{Arc, Mutex};

/// Why an exactly-once JDBC sink of a group cannot write in its group's transactions.
const NO_ORIGIN: &str = "exactly-once in an instance group: the sink must be in the chain of a Kafka source of the group or of the stage a repartition topic feeds (after a key_by), whose Kafka transactions commit its prepared ones, not behind another exchange (a rebalance, another parallelism)";

/// The longest transaction id PostgreSQL takes (`GIDSIZE` less its terminating zero).
const MAX_GID: usize = 199;

/// The longest transaction id prefix in a group: the rest of the longest id is `-g`, the
/// stage's 16 hex digits, `-`, a subtask of 20 digits, `-`, the run's 8 hex digits, `-`, a
/// commit of 20 digits, `.` and a `k` of 10.
pub(super) const MAX_PREFIX: usize = MAX_GID - (2 + 16 + 1 + 20 + 1 + 8 + 1 + 20 + 1 + 10);

/// A writer's transactions in its group's Kafka transactions.
pub(super) struct InGroup {
    origin: SharedOrigin,
    /// `<prefix>-g<stage>-<subtask>-<run>-`: its transactions' ids, before `<commit>.<k>`.
    head: String,
    /// The commit the last transaction was prepared for, and how many were.
    last: (u64, u32),
    /// The connection that finishes its transactions after the origin's commit (on the
    /// thread that commits: a reader's, or the task's own).
    finisher: Arc<Mutex<Db>>,
    ended: bool,
}

impl InGroup {
    /// The writer of subtask `ctx` with the transaction id prefix `prefix`: finishes what its
    /// instance's earlier runs left prepared (on `db`, see the [module](self) docs) and counts
    /// itself a writer of the origin (the last writer's end commits the final transaction).
    ///
    /// # Errors
    /// The subtask has no origin (the sink is not in the chain of a Kafka source or of a
    /// repartition reader's stage), the commit marker cannot be read, or the database fails.
    pub(super) fn open(
        ctx: &RuntimeContext,
        prefix: &str,
        db: &mut Db,
        finisher: Db,
    ) -> Result<InGroup> {
        let Some(origin) = SharedOrigin::find(ctx.subtask_key()) else {
            return Err(db.error(NO_ORIGIN.into()));
        };
        let (tag, run) = origin.lock().stage_tag();
        let stage = format!("{prefix}-g{tag}-");
        let (subtask, parallelism) = (ctx.subtask_index(), ctx.parallelism());
        let mut leftovers = Leftovers::new(origin.clone());
        for gid in db.prepared_with(&stage)? {
            let Some((j, dead, commit)) = parse(&gid[stage.len()..]) else {
                tracing::warn!(connector = %db.name(), gid, "a prepared transaction of this stage's name whose id does not parse is left alone");
                continue;
            };
            if j % parallelism != subtask {
                continue;
            }
            let v = leftovers.verdict(j, dead, commit)?;
            let Some(committed) = v.committed else {
                return Err(db.error(format!(
                    "the commit marker of transaction `{gid}` is gone (consumer group `{}`: expired after the broker's offsets.retention.minutes?): whether its Kafka transaction committed is unknown; finish it by hand (COMMIT PREPARED or ROLLBACK PREPARED)",
                    v.group
                )));
            };
            let verb = if committed { "COMMIT" } else { "ROLLBACK" };
            tracing::info!(connector = %db.name(), gid, commit, marker = v.marker, marker_group = %v.group, "{verb} of a transaction an earlier run of the instance prepared");
            db.finish_prepared(verb, &gid)?;
        }
        origin.lock().writer_opened();
        Ok(InGroup {
            origin,
            head: format!("{stage}{subtask}-{run}-"),
            last: (0, 0),
            finisher: Arc::new(Mutex::new(finisher)),
            ended: false,
        })
    }

    /// The id of the transaction to prepare for the origin's next commit, and that commit.
    ///
    /// # Errors
    /// No source commits the origin's transactions, or its marker cannot be read.
    pub(super) fn next_id(&mut self, connector: &str) -> Result<(String, u64)> {
        let commit = self.origin.lock().writer_next_commit(connector)?;
        let k = if self.last.0 == commit {
            self.last.1 + 1
        } else {
            0
        };
        self.last = (commit, k);
        Ok((format!("{}{commit}.{k}", self.head), commit))
    }

    /// Transaction `gid` was prepared for commit `commit`: the origin's next commit, which
    /// has that number, commits it.
    ///
    /// # Errors
    /// The origin committed with a marker since the number was taken (a bug in flow).
    pub(super) fn enlist(&mut self, gid: String, commit: u64) -> Result<()> {
        let finisher = self.finisher.clone();
        (self.origin.lock()).enlist(commit, Box::new(Prepared { finisher, gid }))
    }

    /// The writer's end (after its last rows were enlisted): the origin's last writer to end
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

/// `<subtask>-<run>-<commit>.<k>`: the subtask, the run and the commit.
fn parse(rest: &str) -> Option<(usize, &str, u64)> {
    let (name, k) = rest.rsplit_once('.')?;
    k.parse::<u32>().ok()?;
    Leftovers::parse(name)
}

/// A prepared transaction enlisted in the origin's next commit.
struct Prepared {
    finisher: Arc<Mutex<Db>>,
    gid: String,
}

impl Prepared {
    fn finish(&mut self, verb: &str) -> Result<()> {
        let mut db = self.finisher.lock().unwrap_or_else(|e| e.into_inner());
        db.finish_prepared(verb, &self.gid)
    }
}

impl Enlisted for Prepared {
    fn commit(&mut self) -> Result<()> {
        self.finish("COMMIT")
    }
    fn rollback(&mut self) -> Result<()> {
        self.finish("ROLLBACK")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_ids_name_their_subtask_and_commit() {
        assert_eq!(parse("3-0a1b2c3d-17.0"), Some((3, "0a1b2c3d", 17)));
        assert_eq!(parse("0-ffffffff-1.2"), Some((0, "ffffffff", 1)));
        assert_eq!(parse("3-0a1b2c3d-17"), None);
        assert_eq!(parse("3-17.0"), None);
        assert_eq!(parse("x-0a1b2c3d-17.0"), None);
        assert_eq!(parse("3-0a1b2c3d-17.y"), None);
        assert_eq!(parse("3-run-17.0"), None);
    }
}
