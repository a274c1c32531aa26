//! Source splits' own watermarks on a repartition topic
//! ([`SourceSplits`](flow_runtime::instances::SourceSplits)): what a writer writes of them,
//! and what a reader knows of them on each partition.
//!
//! A reader holds a partition at the smallest watermark over its writers *and* over the
//! source splits its writers read (partitions of the job's Kafka sources, or, for a second
//! `key_by`, of the repartition topic their stage reads): a split the group deals to
//! another instance keeps the watermark its old reader wrote last until its new reader's
//! rows move it, though the new reader's own watermark may be far ahead of them.

use flow_runtime::instances::{SplitState, SplitWatermark};
use flow_runtime::Timestamp;
use std::collections::{BTreeMap, HashMap};

/// One split in a record: its name, its watermark, its state (0 active, 1 idle, 2 finished).
pub(super) const ENTRY: usize = 17;

/// What a writer writes of its source's splits, `now` as the source publishes them, having
/// written `before` last: each of `now` (finished, when the writer `ends`), and each of
/// `before` the source no longer reads, active at the watermark written of it. The group
/// dealt that one to another reader, and rows may come to it while it moves: it holds the
/// readers back until its next reader writes it moved on, though it was idle here.
pub(super) fn to_write(
    before: &[SplitWatermark],
    now: &[SplitWatermark],
    ends: bool,
) -> Vec<SplitWatermark> {
    let finished = |s: &SplitWatermark| SplitWatermark {
        state: SplitState::Finished,
        ..*s
    };
    let released = (before.iter())
        .filter(|b| !now.iter().any(|n| n.id == b.id))
        .map(|b| SplitWatermark {
            state: SplitState::Active,
            ..*b
        });
    (now.iter())
        .map(|s| if ends { finished(s) } else { *s })
        .chain(released)
        .collect()
}

/// Appends `splits` to `out`.
pub(super) fn encode(splits: &[SplitWatermark], out: &mut Vec<u8>) {
    for s in splits {
        out.extend_from_slice(&s.id.to_be_bytes());
        out.extend_from_slice(&s.watermark.to_be_bytes());
        out.push(match s.state {
            SplitState::Active => 0,
            SplitState::Idle => 1,
            SplitState::Finished => 2,
        });
    }
}

/// The splits of a record's `body` (a list of [`ENTRY`]s).
pub(super) fn decode(body: &[u8]) -> Result<Vec<SplitWatermark>, String> {
    if !body.len().is_multiple_of(ENTRY) {
        return Err(format!(
            "a list of source splits of {} bytes, not a multiple of {ENTRY}",
            body.len()
        ));
    }
    (body.chunks_exact(ENTRY))
        .map(|e| {
            let state = match e[16] {
                0 => SplitState::Active,
                1 => SplitState::Idle,
                2 => SplitState::Finished,
                other => return Err(format!("a source split in the unknown state {other}")),
            };
            Ok(SplitWatermark {
                id: u64::from_be_bytes(e[..8].try_into().expect("8 bytes")),
                watermark: Timestamp::from_be_bytes(e[8..16].try_into().expect("8 bytes")),
                state,
            })
        })
        .collect()
}

/// What a reader knows of the source splits on each partition of a repartition topic: the
/// newest state of each, and the highest watermark any of its writers wrote of it.
///
/// A split holds its partitions back, at the watermark last written of it, until a writer
/// writes it moved on, however long its writer is gone: its next reader (the group deals
/// the partitions of a crashed instance to the others a session timeout later) writes it.
/// One the group deals to nobody (a topic deleted under a pattern subscription) holds them
/// until the end.
#[derive(Debug, Default)]
pub(super) struct SplitLedger {
    partitions: BTreeMap<i32, HashMap<u64, Known>>,
}

#[derive(Clone, Copy, Debug)]
struct Known {
    watermark: Timestamp,
    state: SplitState,
    /// The writer that wrote of it last, when that was before the reader started (`None`
    /// otherwise, and for what a state record said).
    early: Option<u64>,
}

impl SplitLedger {
    /// A record of `writer` on `partition` said this of `splits` (the ones its source
    /// reads); it was written before the reader started when `early`.
    pub(super) fn heard(
        &mut self,
        partition: i32,
        writer: u64,
        early: bool,
        splits: &[SplitWatermark],
    ) {
        let here = self.partitions.entry(partition).or_default();
        let early = early.then_some(writer);
        for s in splits {
            here.entry(s.id)
                .and_modify(|k| {
                    k.watermark = k.watermark.max(s.watermark);
                    k.state = s.state;
                    k.early = early;
                })
                .or_insert(Known {
                    watermark: s.watermark,
                    state: s.state,
                    early,
                });
        }
    }

    /// `writer` was taken as gone: what it wrote before the reader started no longer holds
    /// anything back. Such a writer may be of an earlier run of the group that crashed (its
    /// records after the last commits are read again), whose splits this run may never
    /// write of; one of this run that crashed after the reader started still does.
    pub(super) fn forget_early(&mut self, writer: u64) {
        for here in self.partitions.values_mut() {
            here.retain(|_, k| k.early != Some(writer));
        }
    }

    /// How far the splits let `partition` go: the smallest watermark of the active ones.
    pub(super) fn hold(&self, partition: i32) -> Option<Timestamp> {
        (self.partitions.get(&partition)?.values())
            .filter(|k| k.state == SplitState::Active)
            .map(|k| k.watermark)
            .min()
    }

    /// The splits known on `partition`, for its [`STATE`](super::instances) record.
    pub(super) fn on(&self, partition: i32) -> Vec<SplitWatermark> {
        let mut splits: Vec<SplitWatermark> = (self.partitions.get(&partition).into_iter())
            .flatten()
            .map(|(&id, k)| SplitWatermark {
                id,
                watermark: k.watermark,
                state: k.state,
            })
            .collect();
        splits.sort_by_key(|s| s.id);
        splits
    }

    /// What a state record of `partition` says of `splits`: records read since its
    /// reader's commit are newer, so a watermark only rises, and a state counts only for a
    /// split not heard from here yet.
    pub(super) fn merge_state(&mut self, partition: i32, splits: &[SplitWatermark]) {
        let here = self.partitions.entry(partition).or_default();
        for s in splits {
            here.entry(s.id)
                .and_modify(|k| k.watermark = k.watermark.max(s.watermark))
                .or_insert(Known {
                    watermark: s.watermark,
                    state: s.state,
                    early: None,
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(id: u64, watermark: Timestamp, state: SplitState) -> SplitWatermark {
        SplitWatermark {
            id,
            watermark,
            state,
        }
    }

    #[test]
    fn splits_cross_a_record_as_they_were() {
        let splits = [
            split(1, 100, SplitState::Active),
            split(2, Timestamp::MIN, SplitState::Idle),
            split(3, 7, SplitState::Finished),
        ];
        let mut bytes = Vec::new();
        encode(&splits, &mut bytes);
        assert_eq!(decode(&bytes), Ok(splits.to_vec()));
        assert!(decode(&bytes[1..]).is_err(), "a cut record");
        bytes[16] = 9;
        assert!(decode(&bytes).is_err(), "an unknown state");
    }

    #[test]
    fn a_split_the_source_gave_up_is_written_active_once_and_an_end_finishes_the_rest() {
        let before = [
            split(1, 100, SplitState::Active),
            split(2, 50, SplitState::Idle),
        ];
        let now = [split(1, 150, SplitState::Active)];
        // Split 2 went to another reader while idle here: rows may come to it meanwhile.
        assert_eq!(
            to_write(&before, &now, false),
            vec![
                split(1, 150, SplitState::Active),
                split(2, 50, SplitState::Active)
            ]
        );
        assert_eq!(to_write(&now, &now, false), now.to_vec(), "once");
        assert_eq!(
            to_write(&before, &now, true),
            vec![
                split(1, 150, SplitState::Finished),
                split(2, 50, SplitState::Active)
            ],
            "an end finishes what the source still reads, not what it gave up"
        );
    }

    #[test]
    fn a_split_holds_its_partition_until_a_reader_writes_it_moved_on() {
        let mut l = SplitLedger::default();
        assert_eq!(l.hold(0), None);
        // The old reader of split 2 wrote it at 1,000 last (it then gave it up).
        l.heard(
            0,
            7,
            false,
            &[
                split(1, 5_000, SplitState::Active),
                split(2, 1_000, SplitState::Active),
            ],
        );
        assert_eq!(l.hold(0), Some(1_000));
        // Its new reader has read none of its rows yet.
        l.heard(0, 8, false, &[split(2, Timestamp::MIN, SplitState::Active)]);
        assert_eq!(l.hold(0), Some(1_000), "a watermark only rises");
        l.heard(0, 8, false, &[split(2, 4_000, SplitState::Active)]);
        assert_eq!(l.hold(0), Some(4_000));
        l.heard(0, 8, false, &[split(2, 4_500, SplitState::Idle)]);
        assert_eq!(l.hold(0), Some(5_000), "an idle split holds nothing back");
        l.heard(0, 8, false, &[split(1, 6_000, SplitState::Finished)]);
        assert_eq!(l.hold(0), None, "nor does a finished one");
        assert_eq!(l.hold(1), None, "another partition");
    }

    #[test]
    fn only_what_a_gone_writer_wrote_before_the_reader_started_is_forgotten() {
        let mut l = SplitLedger::default();
        // Writer 7 wrote of splits 1 and 2 before the reader started (an earlier run's, say),
        // writer 8 of split 3 after; both were taken as gone.
        l.heard(0, 7, true, &[split(1, 100, SplitState::Active)]);
        l.heard(0, 7, true, &[split(2, 200, SplitState::Active)]);
        l.heard(1, 7, true, &[split(1, 100, SplitState::Active)]);
        l.heard(0, 8, false, &[split(3, 300, SplitState::Active)]);
        // Split 2's next reader wrote of it since.
        l.heard(0, 9, false, &[split(2, 250, SplitState::Active)]);
        l.forget_early(7);
        l.forget_early(8);
        assert_eq!(
            l.on(0),
            vec![
                split(2, 250, SplitState::Active),
                split(3, 300, SplitState::Active)
            ]
        );
        assert_eq!(l.hold(1), None);
    }

    #[test]
    fn a_state_record_raises_watermarks_and_sets_only_unknown_states() {
        let mut l = SplitLedger::default();
        l.heard(3, 8, false, &[split(1, 2_000, SplitState::Active)]);
        l.merge_state(
            3,
            &[
                split(1, 1_500, SplitState::Idle),
                split(2, 800, SplitState::Active),
            ],
        );
        assert_eq!(
            l.on(3),
            vec![
                split(1, 2_000, SplitState::Active),
                split(2, 800, SplitState::Active)
            ]
        );
        assert_eq!(l.hold(3), Some(800));
        l.merge_state(3, &[split(2, 900, SplitState::Idle)]);
        assert_eq!(l.hold(3), Some(900));
    }
}
