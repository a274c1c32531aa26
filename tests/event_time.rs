//! Event time: timestamps assigned at the source travel with their rows through operators and
//! exchanges; watermarks follow the strategy per split, are the minimum over inputs, and an
//! idle input does not hold them back.

mod common;

use flow::prelude::*;
use flow::{Poll, Sink, SinkWriter, Source, SourceOutput, SourceReader, Timestamp};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Records every row with its timestamp, and every watermark with when it arrived.
#[derive(Clone, Default)]
struct Probe {
    rows: Arc<Mutex<Vec<(i64, Timestamp)>>>,
    /// (subtask, watermark, when it arrived)
    watermarks: Arc<Mutex<Vec<(usize, Timestamp, Instant)>>>,
}

struct ProbeWriter(Probe, usize);

impl Probe {
    /// The watermarks one sink subtask received, in order.
    fn watermarks_of(&self, subtask: usize) -> Vec<Timestamp> {
        self.watermarks
            .lock()
            .unwrap()
            .iter()
            .filter(|w| w.0 == subtask)
            .map(|w| w.1)
            .collect()
    }
}

impl Sink<i64> for Probe {
    type Writer = ProbeWriter;
    fn create_writer(&self, ctx: &RuntimeContext) -> flow::Result<ProbeWriter> {
        Ok(ProbeWriter(self.clone(), ctx.subtask_index()))
    }
}

impl SinkWriter<i64> for ProbeWriter {
    fn write(&mut self, row: i64, ts: Timestamp) {
        self.0.rows.lock().unwrap().push((row, ts));
    }
    fn on_watermark(&mut self, wm: Timestamp) -> flow::Result<()> {
        self.0
            .watermarks
            .lock()
            .unwrap()
            .push((self.1, wm, Instant::now()));
        Ok(())
    }
    fn finish(&mut self) -> flow::Result<()> {
        Ok(())
    }
}

fn env(p: usize) -> StreamEnv {
    StreamEnv::new()
        .with_parallelism(p)
        .with_auto_watermark_interval(Duration::ZERO)
}

fn timestamps_travel_with_their_rows(p: usize) {
    let probe = Probe::default();
    let env = env(p);
    flow! { env =>
        source(NumberSequence::new(1, 5000), Watermarks::monotonous())
            .timestamps(|n| n * 10)
            .map(|n| n + 1_000_000)
            .key_by(|n| n % 7)
            .filter(|n| n % 2 == 0)
            .sink_to(probe.clone());
    }
    env.execute("timestamps").unwrap();
    let rows = probe.rows.lock().unwrap().clone();
    assert_eq!(rows.len(), 2500);
    for (row, ts) in rows {
        assert_eq!(ts, (row - 1_000_000) * 10, "row {row} lost its timestamp");
    }
    for subtask in 0..p {
        let wms = probe.watermarks_of(subtask);
        assert!(
            wms.windows(2).all(|w| w[0] < w[1]),
            "watermarks only advance"
        );
        assert_eq!(
            wms.last(),
            Some(&Timestamp::MAX),
            "a bounded source ends with the max watermark"
        );
    }
}

fn bounded_out_of_orderness_trails_by_the_delay(p: usize) {
    let probe = Probe::default();
    let env = env(p);
    let events = vec![1000i64, 1200, 1100, 1500, 1400, 2000];
    flow! { env =>
        source(flow::connectors::CollectionSource::new(events), Watermarks::bounded_out_of_orderness(Duration::from_millis(300)))
            .timestamps(|t| *t)
            .rebalance()
            .sink_to(probe.clone());
    }
    env.execute("out of order").unwrap();
    // max timestamp - 300 - 1, after each row that raised it, then the end: every downstream
    // subtask sees the one source split's watermarks.
    for subtask in 0..p {
        assert_eq!(
            probe.watermarks_of(subtask),
            vec![699, 899, 1199, 1699, Timestamp::MAX]
        );
    }
}

/// Emits nothing for `quiet`, then ends.
struct Quiet(Duration);
struct QuietReader(Instant, Duration);

impl Source for Quiet {
    type Row = i64;
    type Reader = QuietReader;
    fn is_bounded(&self) -> bool {
        true
    }
    fn max_parallelism(&self) -> Option<usize> {
        Some(1)
    }
    fn into_readers(self, _: usize, _: &Watermarks) -> flow::Result<Vec<QuietReader>> {
        Ok(vec![QuietReader(Instant::now(), self.0)])
    }
}

impl SourceReader for QuietReader {
    type Row = i64;
    fn poll<O: SourceOutput<i64>>(&mut self, _: &mut O, _: usize) -> flow::Result<Poll> {
        Ok(if self.0.elapsed() >= self.1 {
            Poll::Finished
        } else {
            Poll::Idle
        })
    }
}

#[test]
fn an_idle_source_does_not_hold_back_the_watermark() {
    let probe = Probe::default();
    let env = env(2);
    let start = Instant::now();
    let quiet = Duration::from_millis(1500);
    flow! { env =>
        let busy = source(NumberSequence::new(1, 100), Watermarks::monotonous()).timestamps(|n| n * 1000);
        source(Quiet(quiet), Watermarks::monotonous().with_idleness(Duration::from_millis(50)))
            .union(busy)
            .sink_to(probe.clone());
    }
    env.execute("idle").unwrap();
    let wms = probe.watermarks.lock().unwrap().clone();
    let early: Vec<Timestamp> = wms
        .iter()
        .filter(|w| w.2.duration_since(start) < quiet)
        .map(|w| w.1)
        .collect();
    assert!(
        early.iter().any(|&w| w >= 99_999),
        "the busy source's watermark passed while the other source was idle: {early:?}"
    );
}

#[test]
fn without_idleness_the_quiet_source_holds_the_watermark_back() {
    let probe = Probe::default();
    let env = env(2);
    let start = Instant::now();
    let quiet = Duration::from_millis(600);
    flow! { env =>
        let busy = source(NumberSequence::new(1, 100), Watermarks::monotonous()).timestamps(|n| n * 1000);
        source(Quiet(quiet), Watermarks::monotonous())
            .union(busy)
            .sink_to(probe.clone());
    }
    env.execute("not idle").unwrap();
    let wms = probe.watermarks.lock().unwrap().clone();
    assert!(
        wms.iter()
            .all(|w| w.2.duration_since(start) >= quiet - Duration::from_millis(50)),
        "the watermark is the minimum over inputs, and the quiet one has none until it ends"
    );
    assert_eq!(wms.last().map(|w| w.1), Some(Timestamp::MAX));
}

at_parallelism!(
    timestamps_travel_with_their_rows,
    bounded_out_of_orderness_trails_by_the_delay
);

#[timestamp_assigner]
fn seconds_to_millis(row: &(String, i64)) -> i64 {
    row.1 * 1000
}

#[test]
fn a_timestamp_assigner_fn() {
    let env = StreamEnv::new().with_auto_watermark_interval(Duration::ZERO);
    flow! { env =>
        let out = from_collection(vec![("a".to_string(), 1i64), ("b".to_string(), 3)], Watermarks::monotonous())
            .timestamps(seconds_to_millis)
            .key_by(|r| r.0.clone())
            .window(TumblingEventTimeWindows::of(Duration::from_secs(2)))
            .process(|k: &String, w: &TimeWindow, _rows: &[(String, i64)], out: &mut Vec<(String, i64)>| {
                out.push((k.clone(), w.start))
            })
            .collect();
    }
    env.execute("assigner fn").unwrap();
    assert_eq!(
        common::sorted(out.take()),
        vec![("a".to_string(), 0), ("b".to_string(), 2000)]
    );
}
