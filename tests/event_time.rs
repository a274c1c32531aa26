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

    /// The watermarks any sink subtask received before `deadline`.
    fn watermarks_before(&self, deadline: Instant) -> Vec<Timestamp> {
        self.watermarks
            .lock()
            .unwrap()
            .iter()
            .filter(|w| w.2 < deadline)
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

/// Emits nothing for `.0`, then ends; its polls say `.1` meanwhile ([`Poll::Idle`] or
/// [`Poll::Hold`]).
struct Quiet(Duration, Poll);
struct QuietReader(Instant, Duration, Poll);

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
        Ok(vec![QuietReader(Instant::now(), self.0, self.1)])
    }
}

impl SourceReader for QuietReader {
    type Row = i64;
    fn poll<O: SourceOutput<i64>>(&mut self, _: &mut O, _: usize) -> flow::Result<Poll> {
        Ok(if self.0.elapsed() >= self.1 {
            Poll::Finished
        } else {
            self.2
        })
    }
}

/// A [`Quiet`] source (`quiet`, polls saying `poll`, `watermarks`) in a union with a busy one
/// (timestamps 1 s to 100 s), into a probe: the probe, and when the job started.
fn quiet_beside_busy(quiet: Duration, poll: Poll, watermarks: Watermarks) -> (Probe, Instant) {
    let probe = Probe::default();
    let env = env(2);
    let start = Instant::now();
    flow! { env =>
        let busy = source(NumberSequence::new(1, 100), Watermarks::monotonous()).timestamps(|n| n * 1000);
        source(Quiet(quiet, poll), watermarks)
            .union(busy)
            .sink_to(probe.clone());
    }
    env.execute("quiet beside busy").unwrap();
    (probe, start)
}

#[test]
fn an_idle_source_does_not_hold_back_the_watermark() {
    let quiet = Duration::from_millis(1500);
    let idleness = Watermarks::monotonous().with_idleness(Duration::from_millis(50));
    let (probe, start) = quiet_beside_busy(quiet, Poll::Idle, idleness);
    let early = probe.watermarks_before(start + quiet);
    assert!(
        early.iter().any(|&w| w >= 99_999),
        "the busy source's watermark passed while the other source was idle: {early:?}"
    );
}

#[test]
fn an_idle_input_of_a_connect_does_not_hold_back_the_watermark() {
    // As Flink's two-input operators: a side all of whose inputs are idle is left out of the
    // operator's watermark.
    let probe = Probe::default();
    let env = env(2);
    let start = Instant::now();
    let quiet = Duration::from_millis(1500);
    flow! { env =>
        let busy = source(NumberSequence::new(1, 100), Watermarks::monotonous()).timestamps(|n| n * 1000);
        let idle = source(Quiet(quiet, Poll::Idle), Watermarks::monotonous().with_idleness(Duration::from_millis(50)));
        busy.connect(idle)
            .co_map(|n| n, |q| q)
            .sink_to(probe.clone());
    }
    env.execute("idle side").unwrap();
    let early = probe.watermarks_before(start + quiet);
    assert!(
        early.iter().any(|&w| w >= 99_999),
        "the busy input's watermark passed while the other input was idle: {early:?}"
    );
}

#[test]
fn a_holding_source_never_becomes_idle() {
    // Poll::Hold (a Kafka source leaving its instance group until its partitions were taken
    // over): no idleness timeout lets the other source's watermark pass.
    let quiet = Duration::from_millis(600);
    let idleness = Watermarks::monotonous().with_idleness(Duration::from_millis(50));
    let (probe, start) = quiet_beside_busy(quiet, Poll::Hold, idleness);
    let early = probe.watermarks_before(start + quiet - Duration::from_millis(50));
    assert!(
        early.is_empty(),
        "the watermark passed while a source held it back: {early:?}"
    );
}

#[test]
fn without_idleness_the_quiet_source_holds_the_watermark_back() {
    let quiet = Duration::from_millis(600);
    let (probe, start) = quiet_beside_busy(quiet, Poll::Idle, Watermarks::monotonous());
    let wms = probe.watermarks.lock().unwrap().clone();
    assert!(
        wms.iter()
            .all(|w| w.2.duration_since(start) >= quiet - Duration::from_millis(50)),
        "the watermark is the minimum over inputs, and the quiet one has none until it ends"
    );
    assert_eq!(wms.last().map(|w| w.1), Some(Timestamp::MAX));
}

fn watermarks_assigned_mid_stream_replace_the_ones_before(p: usize) {
    // The source's timestamps are n * 1000 and its watermarks follow them; the rows get n as
    // their timestamp mid-stream. Were the source's watermarks passed on (n * 1000 - 1),
    // almost every row would be late for its 10 ms window.
    let env = env(p);
    flow! { env =>
        let out = source(NumberSequence::new(1, 100), Watermarks::monotonous())
            .timestamps(|n| n * 1000)
            .map(|n| n)
            .assign_timestamps_and_watermarks(Watermarks::monotonous(), |n| *n)
            .window_all(TumblingEventTimeWindows::of(Duration::from_millis(10)))
            .process(|w, rows, out| out.push((w.start, rows.len())))
            .name("windows")
            .collect();
    }
    let result = env.execute("mid-stream watermarks").unwrap();
    let mut expected = vec![(0, 9)];
    expected.extend((1..10).map(|i| (i * 10, 10)));
    expected.push((100, 1));
    assert_eq!(common::sorted(out.take()), expected);
    assert_eq!(result.operator("windows").unwrap().late_rows, 0);
}

at_parallelism!(
    timestamps_travel_with_their_rows,
    bounded_out_of_orderness_trails_by_the_delay,
    watermarks_assigned_mid_stream_replace_the_ones_before
);

/// Punctuated watermarks: a row that closes a batch (`.0`) says no earlier row will come.
#[derive(Clone)]
struct EndOfBatch;

impl flow::WatermarkGenerator<(bool, i64)> for EndOfBatch {
    fn on_event(&mut self, row: &(bool, i64), ts: Timestamp, out: &mut flow::WatermarkOutput) {
        if row.0 {
            out.emit_watermark(ts);
        }
    }
    fn on_periodic_emit(&mut self, _: &mut flow::WatermarkOutput) {}
}

#[test]
fn a_punctuated_watermark_generator() {
    let probe = Probe::default();
    let env = env(1);
    let rows = vec![
        (false, 5i64),
        (true, 10),
        (false, 12),
        (false, 8),
        (true, 20),
        (false, 25),
    ];
    flow! { env =>
        // No watermarks at the source: the generator's are the stream's.
        from_collection(rows, Watermarks::no_watermarks())
            .assign_timestamps_and_watermarks(Watermarks::for_generator(EndOfBatch), |r| r.1)
            .map(|r| r.1)
            .sink_to(probe.clone());
    }
    env.execute("punctuated").unwrap();
    assert_eq!(probe.watermarks_of(0), vec![10, 20, Timestamp::MAX]);
    let rows = probe.rows.lock().unwrap().clone();
    assert!(
        rows.iter().all(|(row, ts)| row == ts),
        "each row has its new timestamp"
    );
}

/// Periodic watermarks of the user's: the largest timestamp minus 100 ms, every interval.
#[derive(Clone)]
struct Lagging(i64);

impl flow::WatermarkGenerator<i64> for Lagging {
    fn on_event(&mut self, _: &i64, ts: Timestamp, _: &mut flow::WatermarkOutput) {
        self.0 = self.0.max(ts);
    }
    fn on_periodic_emit(&mut self, out: &mut flow::WatermarkOutput) {
        PERIODIC_CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        out.emit_watermark(self.0 - 100);
    }
}

static PERIODIC_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[test]
fn a_periodic_watermark_generator_feeds_event_time_windows() {
    // A 20 ms interval: the generator is asked every interval, not after every row.
    let env = StreamEnv::new().with_auto_watermark_interval(Duration::from_millis(20));
    flow! { env =>
        let out = from_collection((1..=50i64).map(|n| n * 10).collect::<Vec<_>>(), Watermarks::no_watermarks())
            .map(|t| { std::thread::sleep(Duration::from_millis(2)); t })
            .assign_timestamps_and_watermarks(Watermarks::for_generator(Lagging(i64::MIN + 100)), |t| *t)
            .key_by(|t| t % 2)
            .window(TumblingEventTimeWindows::of(Duration::from_millis(100)))
            .reduce(|a, b| a + b)
            .collect();
    }
    env.execute("periodic").unwrap();
    // Keys are all 0 (every timestamp is a multiple of 10); [0, 100) holds 10..90.
    let sums: i64 = (1..10).map(|n| n * 10).sum();
    let out = out.take();
    assert_eq!(out.len(), 6, "{out:?}");
    assert!(out.contains(&sums), "{out:?}");
    // 50 rows over at least 100 ms: asked a few times, not after every row.
    let calls = PERIODIC_CALLS.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        (2..50).contains(&calls),
        "on_periodic_emit called {calls} times"
    );
}

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
