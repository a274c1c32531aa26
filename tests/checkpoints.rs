//! Checkpoints as the sources see them: a checkpoint completes only when every row before its
//! barrier reached the sinks' durable output, a stateful operator declines, the final position
//! is committed only after the whole job succeeded.

use flow::prelude::*;
use flow::snapshot::StateWriter;
use flow::{
    CheckpointId, Poll, Sink, SinkWriter, Snapshot, Source, SourceOutput, SourceReader, Timestamp,
    FINAL_CHECKPOINT,
};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the readers saw: per completed checkpoint, whether every row before its recorded
/// position was already durable.
#[derive(Debug, Default)]
struct Log {
    snapshots: Vec<CheckpointId>,
    completed: Vec<(CheckpointId, usize, bool)>,
}

#[derive(Clone, Default)]
struct Shared {
    log: Arc<Mutex<Log>>,
    /// What the sinks made durable (at a barrier or at the end).
    durable: Arc<Mutex<HashSet<i64>>>,
}

/// Reader `i` of `p` emits `i, i + p, i + 2p, ...` (`per_reader` rows), slowly, so that
/// checkpoints fall between its rows.
struct Numbers {
    per_reader: usize,
    shared: Shared,
}

struct NumbersReader {
    subtask: i64,
    parallelism: i64,
    next: usize,
    per_reader: usize,
    pending: Vec<(CheckpointId, usize)>,
    shared: Shared,
}

impl NumbersReader {
    fn value(&self, k: usize) -> i64 {
        self.subtask + k as i64 * self.parallelism
    }
}

impl Source for Numbers {
    type Row = i64;
    type Reader = NumbersReader;
    fn is_bounded(&self) -> bool {
        true
    }
    fn into_readers(self, p: usize, _: &Watermarks) -> flow::Result<Vec<NumbersReader>> {
        Ok((0..p)
            .map(|i| NumbersReader {
                subtask: i as i64,
                parallelism: p as i64,
                next: 0,
                per_reader: self.per_reader,
                pending: Vec::new(),
                shared: self.shared.clone(),
            })
            .collect())
    }
}

impl SourceReader for NumbersReader {
    type Row = i64;
    fn poll<O: SourceOutput<i64>>(&mut self, out: &mut O, _: usize) -> flow::Result<Poll> {
        if self.next >= self.per_reader {
            return Ok(Poll::Finished);
        }
        let end = (self.next + 50).min(self.per_reader);
        for k in self.next..end {
            out.collect(self.value(k));
        }
        self.next = end;
        std::thread::sleep(Duration::from_millis(1));
        Ok(Poll::Ready)
    }
    fn snapshot(&mut self, id: CheckpointId, _: &mut StateWriter) -> flow::Result<Snapshot> {
        self.pending.push((id, self.next));
        self.shared.log.lock().unwrap().snapshots.push(id);
        Ok(Snapshot::Taken)
    }
    fn checkpoint_complete(&mut self, id: CheckpointId) -> flow::Result<()> {
        let Some(i) = self.pending.iter().rposition(|(c, _)| *c <= id) else {
            return Ok(());
        };
        let position = self.pending[i].1;
        self.pending.drain(..=i);
        let all_durable = {
            let durable = self.shared.durable.lock().unwrap();
            (0..position).all(|k| durable.contains(&self.value(k)))
        };
        self.shared
            .log
            .lock()
            .unwrap()
            .completed
            .push((id, position, all_durable));
        Ok(())
    }
}

/// A sink that buffers rows and makes them durable only at a barrier or at the end, as a
/// Kafka producer's acknowledgements do.
#[derive(Clone, Default)]
struct Buffered(Shared);

struct BufferedWriter {
    buf: Vec<i64>,
    shared: Shared,
}

impl BufferedWriter {
    fn make_durable(&mut self) {
        self.shared
            .durable
            .lock()
            .unwrap()
            .extend(self.buf.drain(..));
    }
}

impl Sink<i64> for Buffered {
    type Writer = BufferedWriter;
    fn create_writer(&self, _: &RuntimeContext) -> flow::Result<BufferedWriter> {
        Ok(BufferedWriter {
            buf: Vec::new(),
            shared: self.0.clone(),
        })
    }
}

impl SinkWriter<i64> for BufferedWriter {
    fn write(&mut self, row: i64, _: Timestamp) {
        self.buf.push(row);
    }
    fn checkpoint(&mut self, _: CheckpointId, _: &mut StateWriter) -> flow::Result<Snapshot> {
        self.make_durable();
        Ok(Snapshot::Taken)
    }
    fn finish(&mut self) -> flow::Result<()> {
        self.make_durable();
        Ok(())
    }
}

const PER_READER: usize = 10_000;

/// A fresh log, a source of `per_reader` rows per reader and a buffering sink sharing it.
fn parts(per_reader: usize) -> (Shared, Numbers, Buffered) {
    let shared = Shared::default();
    let source = Numbers {
        per_reader,
        shared: shared.clone(),
    };
    (shared.clone(), source, Buffered(shared))
}

fn env(p: usize) -> StreamEnv {
    StreamEnv::new()
        .with_parallelism(p)
        .with_checkpoint_interval(Some(Duration::from_millis(10)))
}

/// Every completed checkpoint covered only durable rows; returns how many completed before
/// the end.
fn check_log(shared: &Shared, readers: usize) -> usize {
    let log = shared.log.lock().unwrap();
    for (id, position, all_durable) in &log.completed {
        assert!(
            all_durable,
            "checkpoint {id} completed while rows before position {position} were not durable"
        );
    }
    let finals: Vec<_> = log
        .completed
        .iter()
        .filter(|(id, _, _)| *id == FINAL_CHECKPOINT)
        .collect();
    assert_eq!(
        finals.len(),
        readers,
        "every reader commits its end: {log:?}"
    );
    assert!(finals.iter().all(|(_, pos, _)| *pos == PER_READER));
    log.completed.len() - readers
}

fn stateless_job_completes_checkpoints_on_durable_rows_only(p: usize) {
    let (shared, src, sink) = parts(PER_READER);
    let env = env(p);
    flow! { env =>
        source(src, Watermarks::no_watermarks())
            .rebalance()
            .map(|n| n)
            .filter(|_| true)
            .sink_to(sink);
    }
    env.execute("checkpoints").unwrap();
    let mid_run = check_log(&shared, p);
    assert!(
        mid_run >= 3,
        "expected checkpoints to complete while the job ran, got {mid_run}"
    );
    assert_eq!(shared.durable.lock().unwrap().len(), PER_READER * p);
}

#[test]
fn stateless_job_completes_checkpoints_on_durable_rows_only_p1() {
    stateless_job_completes_checkpoints_on_durable_rows_only(1);
}

#[test]
fn stateless_job_completes_checkpoints_on_durable_rows_only_p2() {
    stateless_job_completes_checkpoints_on_durable_rows_only(2);
}

#[test]
fn a_stateful_operator_declines_and_only_the_end_is_committed() {
    let (shared, src, sink) = parts(PER_READER);
    let env = env(2);
    flow! { env =>
        source(src, Watermarks::no_watermarks())
            .key_by(|n| n % 7)
            .reduce(|a, b| a + b)
            .sink_to(sink);
    }
    env.execute("declined").unwrap();
    let log = shared.log.lock().unwrap();
    assert!(
        log.snapshots.contains(&1),
        "checkpoint 1 was triggered: {:?}",
        log.snapshots
    );
    assert!(
        !log.snapshots.contains(&2),
        "no checkpoint after the decline"
    );
    assert!(
        log.completed
            .iter()
            .all(|(id, _, _)| *id == FINAL_CHECKPOINT),
        "{:?}",
        log.completed
    );
    assert_eq!(log.completed.len(), 2);
}

#[test]
fn without_a_checkpoint_interval_only_the_end_is_committed() {
    let (shared, src, sink) = parts(2_000);
    let env = StreamEnv::new().with_checkpoint_interval(None);
    flow! { env =>
        source(src, Watermarks::no_watermarks()).sink_to(sink);
    }
    env.execute("no checkpoints").unwrap();
    let log = shared.log.lock().unwrap();
    assert_eq!(log.snapshots, vec![FINAL_CHECKPOINT]);
    assert_eq!(log.completed, vec![(FINAL_CHECKPOINT, 2_000, true)]);
}

#[test]
fn a_failed_job_commits_no_end_position() {
    let (shared, src, sink) = parts(PER_READER);
    let env = env(2);
    flow! { env =>
        source(src, Watermarks::no_watermarks())
            .rebalance()
            .map(|n| if n == 15_000 { panic!("boom") } else { n })
            .sink_to(sink);
    }
    env.execute("fails").unwrap_err();
    let log = shared.log.lock().unwrap();
    assert!(
        log.completed
            .iter()
            .all(|(id, _, ok)| *id != FINAL_CHECKPOINT && *ok),
        "{:?}",
        log.completed
    );
}

#[map_function]
fn running_count(n: i64, #[state] count: &mut ValueState<u64>) -> i64 {
    count.update(count.value().unwrap_or(0) + 1);
    n
}

/// A keyed map without state passes barriers on; with `#[state]` it declines.
#[test]
fn a_keyed_map_declines_only_when_it_keeps_state() {
    let (shared, src, sink) = parts(PER_READER);
    let job = env(2);
    flow! { job =>
        source(src, Watermarks::no_watermarks())
            .key_by(|n| n % 7)
            .map(|n| n)
            .sink_to(sink);
    }
    job.execute("keyed, stateless").unwrap();
    assert!(check_log(&shared, 2) >= 3, "checkpoints completed mid-run");

    let (shared, src, sink) = parts(PER_READER);
    let job = env(2);
    flow! { job =>
        source(src, Watermarks::no_watermarks())
            .key_by(|n| n % 7)
            .map(running_count)
            .sink_to(sink);
    }
    job.execute("keyed, with state").unwrap();
    assert_eq!(
        check_log(&shared, 2),
        0,
        "declined: only the end is committed"
    );
}

/// A sink that takes a while to open, as one connecting to a broker does.
struct SlowToOpen(Buffered);

impl Sink<i64> for SlowToOpen {
    type Writer = BufferedWriter;
    fn create_writer(&self, ctx: &RuntimeContext) -> flow::Result<BufferedWriter> {
        std::thread::sleep(Duration::from_millis(100));
        self.0.create_writer(ctx)
    }
}

#[test]
fn a_checkpoint_triggered_while_the_tasks_open_completes() {
    let (shared, src, sink) = parts(PER_READER);
    let env = env(2).with_mode(RuntimeMode::Streaming);
    let sink = SlowToOpen(sink);
    flow! { env =>
        source(src, Watermarks::no_watermarks()).sink_to(sink);
    }
    let result = env.execute("slow to open").unwrap();
    let mid_run = check_log(&shared, 2);
    assert!(
        mid_run >= 3,
        "expected checkpoints to complete while the job ran, got {mid_run} ({:?})",
        result.checkpoints
    );
}

#[test]
fn a_sink_subtask_whose_input_ended_commits_with_the_next_checkpoint() {
    // Subtask 0's split (1..=100,000) ends at once; subtask 1's (100,001..=200,000) takes
    // about 1 s, a batch of 1024 rows every 10 ms or so (checkpoints fall between batches).
    // As Flink, subtask 0's last part is committed by the first checkpoint that completes
    // after it finished, while the job still runs, not at the job's end.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let env = StreamEnv::new()
        .with_parallelism(2)
        .with_mode(RuntimeMode::Streaming)
        .with_checkpoint_interval(Some(Duration::from_millis(20)))
        .with_checkpoint_dir(dir.path().join("ck"), 1);
    flow! { env =>
        source(NumberSequence::new(1, 200_000), Watermarks::no_watermarks())
            .map(|n| {
                if n > 100_000 && n % 100 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
                n
            })
            .sink_to(FileSink::row_format(&out));
    }
    let job = std::thread::spawn(move || env.execute("finished subtask"));
    // The rows in subtask 0's finished parts (its last part is committed only after it
    // finished: the ones before may be committed by checkpoints while it runs).
    let finished_rows_of_0 = || -> usize {
        std::fs::read_dir(&out)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                !name.starts_with('.') && name.rsplit('-').nth(1) == Some("0")
            })
            .map(|e| {
                std::fs::read_to_string(e.path())
                    .unwrap_or_default()
                    .lines()
                    .count()
            })
            .sum()
    };
    let start = std::time::Instant::now();
    while finished_rows_of_0() < 100_000 && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        finished_rows_of_0(),
        100_000,
        "subtask 0's rows never all committed"
    );
    assert!(
        !job.is_finished(),
        "subtask 0's last part became visible only when the job ended"
    );
    job.join().unwrap().unwrap();
    let rows: usize = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap().lines().count())
        .sum();
    assert_eq!(rows, 200_000);
}
