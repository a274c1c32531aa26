//! The exactly-once Kafka sink's transactions (Flink's `KafkaSink` with
//! `DeliveryGuarantee.EXACTLY_ONCE`), compiled once whatever the row type.
//!
//! Each subtask has one transactional producer, id `<prefix>-<subtask>`. The rows between two
//! checkpoint barriers are one transaction ("epoch"), committed when the checkpoint completes;
//! the rows that arrive between a barrier and that completion wait in memory and go into the
//! next transaction. A commit also commits, in the same transaction, a *marker*: the offset
//! `n` of partition 0 of the sink's topic in the consumer group named like the transactional
//! id, meaning "the epochs up to checkpoint `n` are committed".
//!
//! A checkpoint also keeps a copy of the epochs not committed yet (Flink keeps only the
//! producer id and epoch, and resumes the transaction after a crash; librdkafka cannot resume
//! another producer's transaction). After a crash between the checkpoint's completion and the
//! commit, the restored writer reads the marker and writes the missing epochs again, with the
//! marker, in one new transaction. Initialising the transactional id first fences the dead
//! producer and aborts its open transaction, so `read_committed` consumers see every row once.

use super::config::ClientSettings;
use super::connector_error;
use super::sink::{DeliveryContext, Output};
use flow_runtime::snapshot::{StateReader, StateWriter};
use flow_runtime::{CheckpointId, Result, Timestamp, FINAL_CHECKPOINT};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use std::mem;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// `Rec::key` of a record without a key.
const NO_KEY: u32 = u32::MAX;

/// The records of one transaction, as written.
#[derive(Serialize, Deserialize, Debug, Default)]
struct Epoch {
    /// The checkpoint whose barrier ended the epoch.
    checkpoint: CheckpointId,
    /// Each record's key, then its value.
    bytes: Vec<u8>,
    records: Vec<Rec>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy)]
struct Rec {
    /// The key's length, or [`NO_KEY`].
    key: u32,
    value: u32,
    ts: Timestamp,
}

impl Epoch {
    fn push(&mut self, key: Option<&[u8]>, value: &[u8], ts: Timestamp) {
        let key = match key {
            Some(k) => {
                self.bytes.extend_from_slice(k);
                k.len() as u32
            }
            None => NO_KEY,
        };
        self.bytes.extend_from_slice(value);
        self.records.push(Rec {
            key,
            value: value.len() as u32,
            ts,
        });
    }

    /// Each record's key, value and timestamp, in order.
    fn iter(&self) -> impl Iterator<Item = (Option<&[u8]>, &[u8], Timestamp)> {
        let mut at = 0;
        self.records.iter().map(move |r| {
            let key = (r.key != NO_KEY).then(|| {
                let k = &self.bytes[at..at + r.key as usize];
                at += r.key as usize;
                k
            });
            let value = &self.bytes[at..at + r.value as usize];
            at += r.value as usize;
            (key, value, r.ts)
        })
    }

    /// Sends every record to `topic` through `out`.
    fn send(&self, out: &mut Output, topic: &str) -> Result<()> {
        for (key, value, ts) in self.iter() {
            out.send(topic, key, value, ts)?;
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// What a subtask saves at a checkpoint: its transactional id and the epochs it has not
/// committed yet (at most the one of this checkpoint, unless completions were missed).
#[derive(Serialize, Deserialize, Debug)]
struct Pending {
    transactional_id: String,
    epochs: Vec<Epoch>,
}

/// One subtask's transactions.
pub(super) struct Transactions {
    settings: ClientSettings,
    delivery_timeout: Duration,
    topic: String,
    /// Sealed epochs not committed yet, oldest first.
    pending: Pending,
    /// The records since the last barrier.
    current: Epoch,
    /// A transaction is open: it holds `pending.epochs[..in_txn]`, and `current` when
    /// `sending`.
    open: bool,
    in_txn: usize,
    /// `current`'s records go into the open transaction as they are written (no sealed epoch
    /// waits for its commit).
    sending: bool,
    /// The marker group of this subtask's transactional id.
    group: Arc<ConsumerGroupMetadata>,
    /// The commit of a completed checkpoint's transaction, on a thread of its own: the rows
    /// that arrive meanwhile wait in `current`, as they do between a barrier and its commit.
    committing: Option<JoinHandle<Result<()>>>,
    /// How many of `pending.epochs` that commit covers.
    in_commit: usize,
    marker_reader: BaseConsumer,
    /// What the first transaction sets this subtask's marker to: 0, or the restored
    /// checkpoint (a marker left by an earlier job with this prefix must not count).
    base: CheckpointId,
    /// This subtask's own saved epochs, to write again where its marker says so.
    recover: Option<Pending>,
    started: bool,
}

impl Transactions {
    pub(super) fn new(
        out: &Output,
        settings: ClientSettings,
        delivery_timeout: Duration,
        transactional_id: String,
        topic: String,
    ) -> Result<Transactions> {
        let (marker_reader, group) = marker_group(&settings, &out.connector, &transactional_id)?;
        Ok(Transactions {
            settings,
            delivery_timeout,
            topic,
            pending: Pending {
                transactional_id,
                epochs: Vec::new(),
            },
            current: Epoch::default(),
            open: false,
            in_txn: 0,
            sending: false,
            group: Arc::new(group),
            committing: None,
            in_commit: 0,
            marker_reader,
            base: 0,
            recover: None,
            started: false,
        })
    }

    /// A row's record: into the open transaction now, or kept for the next one.
    pub(super) fn write(
        &mut self,
        out: &mut Output,
        topic: &str,
        key: Option<&[u8]>,
        value: &[u8],
        ts: Timestamp,
    ) -> Result<()> {
        if !self.started {
            self.start(out)?;
        }
        self.current.push(key, value, ts);
        if self.sending {
            out.send(topic, key, value, ts)?;
        }
        Ok(())
    }

    /// Barrier `id`: the records since the last one become epoch `id`; the epochs not committed
    /// go into the checkpoint.
    pub(super) fn prepare(
        &mut self,
        out: &mut Output,
        id: CheckpointId,
        state: &mut StateWriter,
    ) -> Result<()> {
        if !self.started {
            self.start(out)?;
        }
        if !self.current.is_empty() {
            let mut epoch = mem::take(&mut self.current);
            epoch.checkpoint = id;
            self.pending.epochs.push(epoch);
            if self.sending {
                self.in_txn = self.pending.epochs.len();
                self.sending = false;
            }
        }
        // Without this copy a crash between the checkpoint's completion (after which the
        // sources commit their offsets) and the commit would lose the epoch: a checkpoint
        // that saves it nowhere is declined.
        state.required();
        state.list("transactions", std::iter::once(&self.pending))?;
        state.list("checkpoint", std::iter::once(&id))
    }

    /// Checkpoint `id` completed: commits the epochs up to it, on a thread of its own (the
    /// final checkpoint here, so that its outcome is the job's), then opens the next
    /// transaction.
    pub(super) fn commit_through(&mut self, out: &mut Output, id: CheckpointId) -> Result<()> {
        if !self.started {
            self.start(out)?;
        }
        // One commit at a time: the transaction after it opens when it is done.
        self.finish_commit(out)?;
        let done = self.pending.epochs.partition_point(|e| e.checkpoint <= id);
        if done == 0 || self.in_txn > done {
            return Ok(());
        }
        if !self.open {
            self.begin(out)?;
        }
        for epoch in &self.pending.epochs[self.in_txn..done] {
            epoch.send(out, &self.topic)?;
        }
        let marker = self.pending.epochs[done - 1].checkpoint;
        self.in_txn = 0;
        self.open = false;
        // Until the commit is done its epochs stay pending: a checkpoint taken meanwhile must
        // still hold them, in case the commit never finishes.
        self.in_commit = done;
        if id == FINAL_CHECKPOINT {
            commit(out, &self.topic, &self.group, marker)?;
            return self.committed(out);
        }
        let (producer, group) = (out.producer.clone(), self.group.clone());
        let (connector, topic, wait) = (out.connector.clone(), self.topic.clone(), out.wait());
        let spawned = std::thread::Builder::new()
            .name(format!("{connector} commit"))
            .spawn(move || commit_transaction(&producer, &connector, &topic, &group, marker, wait));
        match spawned {
            Ok(h) => self.committing = Some(h),
            Err(e) => {
                tracing::debug!(error = %e, "no commit thread: committing on the task");
                commit(out, &self.topic, &self.group, marker)?;
                return self.committed(out);
            }
        }
        Ok(())
    }

    /// Opens the next transaction if the commit in flight is done.
    pub(super) fn poll_commit(&mut self, out: &mut Output) -> Result<()> {
        if self
            .committing
            .as_ref()
            .is_some_and(JoinHandle::is_finished)
        {
            self.finish_commit(out)?;
        }
        Ok(())
    }

    /// Waits for the commit in flight, then opens the next transaction.
    fn finish_commit(&mut self, out: &mut Output) -> Result<()> {
        let Some(h) = self.committing.take() else {
            return Ok(());
        };
        h.join()
            .map_err(|_| connector_error(&out.connector, "the commit thread panicked"))??;
        out.wait_for_acks()?;
        self.committed(out)
    }

    /// The epochs being committed are: forgets them and opens the next transaction.
    fn committed(&mut self, out: &mut Output) -> Result<()> {
        self.pending.epochs.drain(..mem::take(&mut self.in_commit));
        self.open_next(out)
    }

    /// Restores from a checkpoint: recovers the transactional ids of the old subtasks this one
    /// took over, its own last.
    pub(super) fn restore(&mut self, out: &mut Output, state: &StateReader) -> Result<()> {
        // The restored checkpoint's id, as its running subtasks saved it. A subtask that had
        // finished saved FINAL, and its state is carried into every later checkpoint: it is
        // the id only when every subtask had finished.
        let saved = state.union::<CheckpointId>("checkpoint")?;
        self.base = saved
            .iter()
            .copied()
            .filter(|&id| id != FINAL_CHECKPOINT)
            .max()
            .or_else(|| saved.first().copied())
            .unwrap_or(0);
        for saved in state.list::<Pending>("transactions")? {
            if saved.transactional_id == self.pending.transactional_id {
                self.recover = Some(saved);
            } else {
                self.recover_other(out, saved)?;
            }
        }
        self.start(out)
    }

    /// The first transaction: this subtask's saved epochs that its marker says were not
    /// committed, and the marker set to [`base`](Self::base); then the first open transaction.
    fn start(&mut self, out: &mut Output) -> Result<()> {
        self.started = true;
        self.begin(out)?;
        if let Some(saved) = self.recover.take() {
            let marker = read_marker(&self.marker_reader, &self.topic, &out.connector, out.wait())?;
            rewrite(out, &self.topic, &saved, marker)?;
        }
        self.commit(out, self.base)?;
        self.open_next(out)
    }

    /// Fences an old subtask's transactional id (aborting its open transaction), then writes
    /// its epochs its marker does not cover again and sets its marker to the checkpoint.
    fn recover_other(&self, out: &Output, saved: Pending) -> Result<()> {
        let id = &saved.transactional_id;
        let mut other = Output::connect(
            &self.settings,
            &out.connector,
            self.delivery_timeout,
            Some(&self.topic),
            Some(id),
        )?;
        let (reader, group) = marker_group(&self.settings, &out.connector, id)?;
        let marker = read_marker(&reader, &self.topic, &out.connector, out.wait())?;
        begin(&other)?;
        rewrite(&mut other, &self.topic, &saved, marker)?;
        commit(&mut other, &self.topic, &group, self.base)
    }

    fn begin(&mut self, out: &Output) -> Result<()> {
        begin(out)?;
        self.open = true;
        Ok(())
    }

    fn commit(&mut self, out: &mut Output, marker: CheckpointId) -> Result<()> {
        self.open = false;
        commit(out, &self.topic, &self.group, marker)
    }

    /// Opens the next transaction with the sealed epochs not committed yet; while there are
    /// none, it takes the records as they come.
    fn open_next(&mut self, out: &mut Output) -> Result<()> {
        self.begin(out)?;
        for epoch in &self.pending.epochs {
            epoch.send(out, &self.topic)?;
        }
        self.in_txn = self.pending.epochs.len();
        self.sending = self.pending.epochs.is_empty();
        if self.sending {
            self.current.send(out, &self.topic)?;
        }
        Ok(())
    }

    /// Aborts the open transaction (a failed job), best effort, after the commit in flight.
    pub(super) fn abort(&mut self, out: &mut Output) {
        if let Some(h) = self.committing.take() {
            let _ = h.join();
        }
        if mem::take(&mut self.open) {
            if let Err(e) = out.producer.abort_transaction(Duration::from_secs(2)) {
                tracing::debug!(connector = %out.connector, error = %e, "abort on drop failed");
            }
        }
    }
}

/// Writes the saved epochs after `marker` into the open transaction.
fn rewrite(out: &mut Output, topic: &str, saved: &Pending, marker: CheckpointId) -> Result<()> {
    let mut rewritten = 0;
    for epoch in saved.epochs.iter().filter(|e| e.checkpoint > marker) {
        epoch.send(out, topic)?;
        rewritten += epoch.records.len();
    }
    if rewritten > 0 {
        tracing::info!(
            connector = %out.connector,
            transactional_id = %saved.transactional_id,
            records = rewritten,
            "rewriting the records of a completed checkpoint whose transaction was not committed"
        );
    }
    Ok(())
}

fn begin(out: &Output) -> Result<()> {
    out.producer
        .begin_transaction()
        .map_err(|e| connector_error(&out.connector, format!("cannot begin a transaction: {e}")))
}

/// Commits the open transaction with `marker` as the group's offset of `topic`'s partition 0,
/// and checks that every record was acknowledged.
fn commit(
    out: &mut Output,
    topic: &str,
    group: &ConsumerGroupMetadata,
    marker: CheckpointId,
) -> Result<()> {
    commit_transaction(
        &out.producer,
        &out.connector,
        topic,
        group,
        marker,
        out.wait(),
    )?;
    out.wait_for_acks()
}

/// Adds the marker to `producer`'s open transaction and commits it.
fn commit_transaction(
    producer: &BaseProducer<DeliveryContext>,
    connector: &str,
    topic: &str,
    group: &ConsumerGroupMetadata,
    marker: CheckpointId,
    wait: Duration,
) -> Result<()> {
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(topic, 0, Offset::Offset(marker_offset(marker)))
        .map_err(|e| connector_error(connector, format!("commit marker: {e}")))?;
    producer
        .send_offsets_to_transaction(&offsets, group, wait)
        .map_err(|e| {
            connector_error(
                connector,
                format!("cannot add the commit marker to the transaction: {e}"),
            )
        })?;
    producer.commit_transaction(wait).map_err(|e| {
        connector_error(
            connector,
            format!("cannot commit the transaction of checkpoint {marker}: {e}"),
        )
    })
}

/// A consumer of the marker group `transactional_id` (never subscribed) and its metadata for
/// `send_offsets_to_transaction`.
pub(super) fn marker_group(
    settings: &ClientSettings,
    connector: &str,
    transactional_id: &str,
) -> Result<(BaseConsumer, ConsumerGroupMetadata)> {
    let reader: BaseConsumer = settings
        .client_config(&[
            ("group.id", transactional_id),
            ("enable.auto.commit", "false"),
            ("isolation.level", "read_committed"),
        ])
        .create()
        .map_err(|e| connector_error(connector, format!("cannot create a consumer: {e}")))?;
    let group = reader.group_metadata().ok_or_else(|| {
        connector_error(
            connector,
            format!("no group metadata for the marker group `{transactional_id}`"),
        )
    })?;
    Ok((reader, group))
}

/// The checkpoint the marker group's committed offset names (0: none).
pub(super) fn read_marker(
    reader: &BaseConsumer,
    topic: &str,
    connector: &str,
    wait: Duration,
) -> Result<CheckpointId> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let committed = reader.committed_offsets(tpl, wait).map_err(|e| {
        connector_error(
            connector,
            format!("cannot read the commit marker of the transactional id: {e}"),
        )
    })?;
    Ok(
        match committed.find_partition(topic, 0).map(|p| p.offset()) {
            Some(Offset::Offset(n)) if n == i64::MAX => FINAL_CHECKPOINT,
            Some(Offset::Offset(n)) if n > 0 => n as CheckpointId,
            _ => 0,
        },
    )
}

/// A checkpoint id as a marker offset ([`FINAL_CHECKPOINT`] as `i64::MAX`).
pub(super) fn marker_offset(id: CheckpointId) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_keeps_keys_values_and_timestamps_in_order() {
        let mut e = Epoch::default();
        e.push(Some(b"k1"), b"v1", 1);
        e.push(None, b"value-2", 2);
        e.push(Some(b""), b"", 3);
        let bytes = bincode::serialize(&e).unwrap();
        let back: Epoch = bincode::deserialize(&bytes).unwrap();
        let seen: Vec<_> = back.iter().collect();
        assert_eq!(
            seen,
            [
                (Some(&b"k1"[..]), &b"v1"[..], 1),
                (None, &b"value-2"[..], 2),
                (Some(&b""[..]), &b""[..], 3),
            ]
        );
    }

    #[test]
    fn the_final_checkpoint_is_the_largest_marker() {
        assert_eq!(marker_offset(7), 7);
        assert_eq!(marker_offset(FINAL_CHECKPOINT), i64::MAX);
    }
}
