//! Bad input and failures: a panicking user function, an unwritable output, invalid
//! configuration, a failing source, and backpressure from a slow sink.

mod common;

use flow::prelude::*;
use flow::{Error, Poll, Sink, SinkWriter, Source, SourceOutput, SourceReader};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn env(p: usize) -> StreamEnv {
    StreamEnv::new().with_parallelism(p)
}

fn files(dir: &Path) -> (Vec<String>, Vec<String>) {
    let mut finished = Vec::new();
    let mut in_progress = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.contains(".inprogress.") {
            in_progress.push(name);
        } else {
            finished.push(name);
        }
    }
    (finished, in_progress)
}

fn user_panic_fails_the_job_naming_the_operator(p: usize) {
    let dir = tempfile::tempdir().unwrap();
    let env = env(p);
    flow! { env =>
        source(NumberSequence::new(1, 100_000), Watermarks::no_watermarks())
            .map(|n| if n == 60_000 { panic!("boom at {n}") } else { n })
            .name("exploding map")
            .sink_to(FileSink::row_format(dir.path()).max_part_size(10_000));
    }
    let err = env.execute("panics").expect_err("the job must fail");
    match &err {
        Error::UserPanic {
            operator, message, ..
        } => {
            assert_eq!(operator, "exploding map");
            assert_eq!(message, "boom at 60000");
        }
        other => panic!("expected a user panic, got {other:?}"),
    }
    assert!(err.to_string().contains("exploding map"), "{err}");
    let (finished, in_progress) = files(dir.path());
    // Parts are committed only by a completed checkpoint (two-phase commit): what the failed
    // job wrote after its last one stays hidden, and no part is passed off as finished.
    assert!(
        !in_progress.is_empty(),
        "parts written after the last checkpoint stay hidden"
    );
    // Every finished row is whole and from before the failure point of its subtask.
    for f in &finished {
        let text = std::fs::read_to_string(dir.path().join(f)).unwrap();
        assert!(text.ends_with('\n'), "{f} ends mid-line");
        for line in text.lines() {
            let n: i64 = line
                .parse()
                .unwrap_or_else(|_| panic!("{f}: bad line {line:?}"));
            assert!((1..=100_000).contains(&n));
        }
    }
}

fn panic_in_keyed_reduce(p: usize) {
    // In batch mode the reduce function also runs before the exchange (a combiner): a panic
    // there names the reduce too.
    for mode in [RuntimeMode::Streaming, RuntimeMode::Batch] {
        let env = env(p).with_mode(mode);
        flow! { env =>
            source(NumberSequence::new(1, 1000), Watermarks::no_watermarks())
                .map(|n: i64| n)
                .key_by(|n| n % 3)
                .reduce(|a, b| if b == 500 { panic!("bad row") } else { a + b })
                .print();
        }
        match env.execute("reduce panics") {
            Err(Error::UserPanic { operator, .. }) => assert_eq!(operator, "reduce", "{mode:?}"),
            other => panic!("expected a user panic, got {other:?}"),
        }
    }
}

fn unwritable_output_directory(p: usize) {
    let file = tempfile::NamedTempFile::new().unwrap();
    let below_a_file = file.path().join("out");
    let env = env(p);
    flow! { env =>
        source(NumberSequence::new(1, 10), Watermarks::no_watermarks())
            .sink_to(FileSink::row_format(&below_a_file));
    }
    let err = env
        .execute("bad dir")
        .expect_err("cannot create a directory below a file");
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("create directory") && msg.contains(&below_a_file.display().to_string()),
        "{msg}"
    );
}

/// An unbounded source: counts up until the job is torn down.
struct Endless;
struct EndlessReader(i64);

impl Source for Endless {
    type Row = i64;
    type Reader = EndlessReader;
    fn is_bounded(&self) -> bool {
        false
    }
    fn into_readers(self, p: usize, _: &Watermarks) -> flow::Result<Vec<EndlessReader>> {
        Ok((0..p).map(|_| EndlessReader(0)).collect())
    }
}

impl SourceReader for EndlessReader {
    type Row = i64;
    fn poll<O: SourceOutput<i64>>(&mut self, out: &mut O, max: usize) -> flow::Result<Poll> {
        for _ in 0..max {
            self.0 += 1;
            out.collect(self.0);
        }
        Ok(Poll::Ready)
    }
}

fn batch_mode_rejects_unbounded_sources(p: usize) {
    let env = env(p).with_mode(RuntimeMode::Batch);
    flow! { env =>
        source(Endless, Watermarks::no_watermarks()).print();
    }
    let err = env
        .execute("unbounded batch")
        .expect_err("batch needs bounded sources");
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(err.to_string().contains("unbounded"), "{err}");
}

fn panic_downstream_stops_an_endless_source(p: usize) {
    // No hang: the failing task cancels the job, and the endless source sees it.
    let env = env(p);
    flow! { env =>
        source(Endless, Watermarks::no_watermarks())
            .key_by(|n| n % 5)
            .map(|n| if n > 50_000 { panic!("enough") } else { n })
            .sink_to(flow::connectors::DiscardSink);
    }
    let err = env.execute("endless").expect_err("the map panics");
    assert!(matches!(err, Error::UserPanic { .. }), "{err:?}");
}

/// A source that fails after some rows.
struct Failing;
struct FailingReader(i64);

impl Source for Failing {
    type Row = i64;
    type Reader = FailingReader;
    fn is_bounded(&self) -> bool {
        true
    }
    fn into_readers(self, p: usize, _: &Watermarks) -> flow::Result<Vec<FailingReader>> {
        Ok((0..p).map(|_| FailingReader(0)).collect())
    }
}

impl SourceReader for FailingReader {
    type Row = i64;
    fn poll<O: SourceOutput<i64>>(&mut self, out: &mut O, _: usize) -> flow::Result<Poll> {
        self.0 += 1;
        if self.0 > 3 {
            return Err(Error::Connector {
                connector: "failing".into(),
                message: "disk on fire".into(),
            });
        }
        out.collect(self.0);
        Ok(Poll::Ready)
    }
}

fn source_error_fails_the_job(p: usize) {
    let env = env(p);
    flow! { env =>
        source(Failing, Watermarks::no_watermarks()).key_by(|n| *n).reduce(|a, b| a + b).print();
    }
    let err = env.execute("failing source").expect_err("the source fails");
    assert_eq!(err.to_string(), "connector `failing`: disk on fire");
}

/// A bounded source that counts what it produced.
struct Counted(Arc<AtomicI64>, i64);
struct CountedReader(Arc<AtomicI64>, i64, i64);

impl Source for Counted {
    type Row = i64;
    type Reader = CountedReader;
    fn is_bounded(&self) -> bool {
        true
    }
    fn max_parallelism(&self) -> Option<usize> {
        Some(1)
    }
    fn into_readers(self, _: usize, _: &Watermarks) -> flow::Result<Vec<CountedReader>> {
        Ok(vec![CountedReader(self.0, 0, self.1)])
    }
}

impl SourceReader for CountedReader {
    type Row = i64;
    fn poll<O: SourceOutput<i64>>(&mut self, out: &mut O, max: usize) -> flow::Result<Poll> {
        let n = (self.2 - self.1).min(max as i64);
        for _ in 0..n {
            self.1 += 1;
            out.collect(self.1);
        }
        self.0.fetch_add(n, Ordering::SeqCst);
        Ok(if self.1 < self.2 {
            Poll::Ready
        } else {
            Poll::Finished
        })
    }
}

/// A sink that sleeps on every batch and records the largest gap between produced and
/// consumed rows it ever saw.
struct Slow {
    produced: Arc<AtomicI64>,
    consumed: Arc<AtomicI64>,
    max_in_flight: Arc<AtomicI64>,
}
struct SlowWriter(Arc<AtomicI64>, Arc<AtomicI64>, Arc<AtomicI64>, i64);

impl Sink<i64> for Slow {
    type Writer = SlowWriter;
    fn create_writer(&self, _: &RuntimeContext) -> flow::Result<SlowWriter> {
        Ok(SlowWriter(
            self.produced.clone(),
            self.consumed.clone(),
            self.max_in_flight.clone(),
            0,
        ))
    }
}

impl SinkWriter<i64> for SlowWriter {
    fn write(&mut self, _: i64, _: i64) {
        self.3 += 1;
    }
    fn flush(&mut self) -> flow::Result<()> {
        let consumed = self.1.fetch_add(self.3, Ordering::SeqCst) + self.3;
        self.3 = 0;
        let gap = self.0.load(Ordering::SeqCst) - consumed;
        self.2.fetch_max(gap, Ordering::SeqCst);
        std::thread::sleep(Duration::from_micros(300));
        Ok(())
    }
    fn finish(&mut self) -> flow::Result<()> {
        self.flush()
    }
}

#[test]
fn a_slow_sink_slows_the_source_and_memory_stays_bounded() {
    let rows = 2_000_000;
    let produced = Arc::new(AtomicI64::new(0));
    let consumed = Arc::new(AtomicI64::new(0));
    let max_in_flight = Arc::new(AtomicI64::new(0));
    let sink = Slow {
        produced: produced.clone(),
        consumed: consumed.clone(),
        max_in_flight: max_in_flight.clone(),
    };
    let env = env(2);
    flow! { env =>
        source(Counted(produced.clone(), rows), Watermarks::no_watermarks())
            .key_by(|n| n % 7)
            .sink_to(sink);
    }
    env.execute("backpressure").unwrap();
    assert_eq!(consumed.load(Ordering::SeqCst), rows, "no row lost");
    // One upstream subtask, two downstream: 2 channels of 8 batches of 64 KiB of rows (8192
    // rows of 8 bytes), plus one partial batch per channel and one source poll (1024 rows) in
    // flight.
    let batch = 64 * 1024 / std::mem::size_of::<i64>();
    let bound = (2 * 8 * batch + 2 * batch + 1024) as i64;
    let seen = max_in_flight.load(Ordering::SeqCst);
    assert!(seen <= bound + 2048, "{seen} rows in flight, bound {bound}");
    assert!(seen > 0);
}

#[test]
fn execute_without_a_job_is_an_error() {
    let err = StreamEnv::new()
        .execute("nothing")
        .expect_err("no flow! block");
    assert!(err.to_string().contains("no job declared"), "{err}");
}

#[test]
fn zero_parallelism_is_an_error() {
    let err = StreamEnv::new()
        .try_with_parallelism(0)
        .err()
        .expect("rejected");
    assert!(err.to_string().contains("at least 1"), "{err}");
}

at_parallelism!(
    user_panic_fails_the_job_naming_the_operator,
    panic_in_keyed_reduce,
    unwritable_output_directory,
    batch_mode_rejects_unbounded_sources,
    panic_downstream_stops_an_endless_source,
    source_error_fails_the_job,
);
