//! Keyed state in user functions: `#[state]` on fn parameters and on struct fields, every
//! state kind, and the `open`/`close` lifecycle with its `RuntimeContext`.

mod common;

use common::sorted;
use flow::prelude::*;
use flow::{Poll, Source, SourceOutput, SourceReader};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

fn env(p: usize) -> StreamEnv {
    StreamEnv::new().with_parallelism(p)
}

/// Three states of one function, all served by one lookup of the row's key.
#[map_function]
fn running_stats(
    row: (u8, i64),
    #[state] count: &mut ValueState<u64>,
    #[state] history: &mut ListState<i64>,
    #[state] seen: &mut MapState<i64, u32>,
) -> (u8, u64, usize, usize) {
    let n = count.value().unwrap_or(0) + 1;
    count.update(n);
    history.add(row.1);
    *seen.entry_or_default(row.1 % 3) += 1;
    (row.0, n, history.len(), seen.len())
}

fn value_list_and_map_state(p: usize) {
    let env = env(p);
    flow! { env =>
        let out = source(NumberSequence::new(0, 599), Watermarks::no_watermarks())
            .map(|n| ((n % 6) as u8, n))
            .key_by(|r| r.0)
            .map(running_stats)
            .collect();
    }
    env.execute("stats").unwrap();
    let rows = out.take();
    assert_eq!(rows.len(), 600);
    let mut per_key: BTreeMap<u8, Vec<(u64, usize, usize)>> = BTreeMap::new();
    for (k, n, h, s) in rows {
        per_key.entry(k).or_default().push((n, h, s));
    }
    assert_eq!(per_key.len(), 6);
    for (k, mut v) in per_key {
        v.sort();
        // Each key sees its own 100 rows, counted 1..=100, never another key's.
        assert_eq!(
            v.iter().map(|r| r.0).collect::<Vec<_>>(),
            (1..=100).collect::<Vec<_>>(),
            "key {k}"
        );
        assert!(
            v.iter().all(|r| r.0 as usize == r.1),
            "list length follows the count"
        );
        // Keys are n % 6 and n % 3 is fixed per key: one map entry per key.
        assert!(v.iter().all(|r| r.2 == 1), "key {k}: {v:?}");
    }
}

/// Keeps the first row of every key: a stateful filter (deduplication).
#[filter_function]
fn first_of_key(row: &(i64, i64), #[state] seen: &mut ValueState<bool>) -> bool {
    let first = seen.get().is_none();
    seen.update(true);
    let _ = row;
    first
}

fn stateful_filter(p: usize) {
    let env = env(p);
    flow! { env =>
        let out = source(NumberSequence::new(1, 1000), Watermarks::no_watermarks())
            .map(|n| (n % 10, n))
            .key_by(|r| r.0)
            .filter(first_of_key)
            .collect();
    }
    env.execute("dedup").unwrap();
    let rows = sorted(out.take());
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
}

/// Emits a row every time a key has been seen a multiple of `3` times.
#[flat_map_function]
fn every_third(row: (i64, i64), #[state] n: &mut ValueState<u32>, out: &mut Vec<(i64, u32)>) {
    let c = n.get_mut_or_default();
    *c += 1;
    if *c % 3 == 0 {
        out.push((row.0, *c));
    }
}

fn stateful_flat_map(p: usize) {
    let env = env(p);
    flow! { env =>
        let out = source(NumberSequence::new(1, 90), Watermarks::no_watermarks())
            .map(|n| (n % 3, n))
            .key_by(|r| r.0)
            .flat_map(every_third)
            .collect();
    }
    env.execute("every third").unwrap();
    let rows = sorted(out.take());
    assert_eq!(rows.len(), 30);
    for k in 0..3 {
        let counts: Vec<u32> = rows.iter().filter(|r| r.0 == k).map(|r| r.1).collect();
        assert_eq!(counts, (1..=10).map(|i| i * 3).collect::<Vec<_>>());
    }
}

static OPENED: AtomicUsize = AtomicUsize::new(0);
static CLOSED: AtomicUsize = AtomicUsize::new(0);

/// The seed's `MyMapFunction`: an impl block with `open`, a `#[state]` field and a plain one.
#[derive(Clone, Default, KeyedState)]
struct MyMapFunction {
    #[state]
    cnt: ValueState<u32>,
    job: String,
    subtask: usize,
    calls: u64,
}

#[map_function]
impl MyMapFunction {
    fn open(&mut self, ctx: &RuntimeContext) {
        OPENED.fetch_add(1, Ordering::SeqCst);
        self.job = ctx.job_name().to_string();
        self.subtask = ctx.subtask_index();
    }

    fn map(&mut self, value: (i64, i64)) -> (i64, i64, String, u64) {
        self.calls += 1;
        let cnt = self.cnt.value().unwrap_or(0);
        let v = if cnt < 2 {
            self.cnt.update(cnt + 1);
            value.1 + 1
        } else {
            value.1
        };
        (value.0, v, self.job.clone(), self.calls)
    }

    fn close(&mut self) {
        CLOSED.fetch_add(1, Ordering::SeqCst);
    }
}

fn impl_block_with_state_fields(p: usize) {
    let (opened, closed) = (OPENED.load(Ordering::SeqCst), CLOSED.load(Ordering::SeqCst));
    let env = env(p);
    flow! { env =>
        let out = source(NumberSequence::new(1, 1000), Watermarks::monotonous())
            .map(|a| (a % 4, 1))
            .key_by(|r| r.0)
            .map(MyMapFunction::default())
            .collect();
    }
    env.execute("state_access_demo").unwrap();
    let rows = out.take();
    assert_eq!(rows.len(), 1000);
    let bumped = rows.iter().filter(|r| r.1 == 2).count();
    assert_eq!(bumped, 8, "first two rows of each of 4 keys");
    assert!(
        rows.iter().all(|r| r.2 == "state_access_demo"),
        "open saw the job name"
    );
    // `calls` is a plain field: it counts every row of its instance, across keys.
    if p == 1 {
        assert_eq!(rows.iter().map(|r| r.3).max(), Some(1000));
    }
    // `open` and `close` ran once per parallel instance (other tests may run concurrently).
    assert!(OPENED.load(Ordering::SeqCst) - opened >= p);
    assert!(CLOSED.load(Ordering::SeqCst) - closed >= p);
}

/// Stateless impl-block functions work on streams that are not keyed.
#[derive(Clone, Default, KeyedState)]
struct Scale {
    factor: i64,
}

#[map_function]
impl Scale {
    fn open(&mut self, _ctx: &RuntimeContext) {
        self.factor = 3;
    }
    fn map(&mut self, n: i64) -> i64 {
        n * self.factor
    }
}

fn stateless_impl_block(p: usize) {
    let env = env(p);
    flow! { env =>
        let out = source(NumberSequence::new(1, 10), Watermarks::no_watermarks()).map(Scale::default()).collect();
    }
    env.execute("scale").unwrap();
    assert_eq!(
        sorted(out.take()),
        (1..=10).map(|n| n * 3).collect::<Vec<_>>()
    );
}

#[reduce_function]
fn larger(a: i64, b: i64) -> i64 {
    a.max(b)
}

/// Mean of the values added: (sum, count) accumulated, `sum / count` read.
#[derive(Clone, Default)]
struct Mean;

impl AggregateFunction<i64> for Mean {
    type Acc = (i64, i64);
    type Out = i64;
    fn create_accumulator(&mut self) -> (i64, i64) {
        (0, 0)
    }
    fn add(&mut self, value: i64, acc: &mut (i64, i64)) {
        *acc = (acc.0 + value, acc.1 + 1);
    }
    fn get_result(&mut self, acc: &(i64, i64)) -> i64 {
        acc.0 / acc.1
    }
    fn merge(&mut self, a: (i64, i64), b: (i64, i64)) -> (i64, i64) {
        (a.0 + b.0, a.1 + b.1)
    }
}

/// The key's largest value so far (Flink's `ReducingState`) and its mean (`AggregatingState`).
#[map_function]
fn max_and_mean(
    row: (i64, i64),
    #[state] max: &mut ReducingState<i64, larger>,
    #[state] mean: &mut AggregatingState<i64, Mean>,
) -> (i64, i64, i64, i64) {
    max.add(row.1);
    mean.add(row.1);
    (row.0, row.1, *max.get().unwrap(), mean.get().unwrap())
}

fn reducing_and_aggregating_state(p: usize) {
    let env = env(p);
    flow! { env =>
        let out = from_collection(vec![(1, 4), (2, 10), (1, 2), (1, 9), (2, 20)], Watermarks::no_watermarks())
            .key_by(|r| r.0)
            .map(max_and_mean)
            .collect();
    }
    env.execute("reducing and aggregating").unwrap();
    // Key 1: 4 -> (4, 4); 2 -> (4, 3); 9 -> (9, 5). Key 2: 10 -> (10, 10); 20 -> (20, 15).
    assert_eq!(
        sorted(out.take()),
        vec![
            (1, 2, 4, 3),
            (1, 4, 4, 4),
            (1, 9, 9, 5),
            (2, 10, 10, 10),
            (2, 20, 20, 15),
        ]
    );
}

/// A count that lives 1 s after its last write (Flink's `StateTtlConfig`,
/// `OnCreateAndWrite`), and the key's first value, written once and read on every row, kept
/// alive by each read with `OnReadAndWrite` and expiring 1 s after its write without.
#[map_function]
fn ttl_states(
    row: (&'static str, u64),
    #[state] count: &mut Ttl<ValueState<u32>, 1000>,
    #[state] first_read: &mut Ttl<ValueState<u64>, 1000, flow::OnReadAndWrite>,
    #[state] first: &mut Ttl<ValueState<u64>, 1000>,
) -> (&'static str, u32, u64, u64) {
    let n = count.value().unwrap_or(0) + 1;
    count.update(n);
    if first_read.value().is_none() {
        first_read.update(row.1);
    }
    if first.value().is_none() {
        first.update(row.1);
    }
    (
        row.0,
        n,
        first_read.value().unwrap(),
        first.value().unwrap(),
    )
}

/// A source that emits each row once its delay after the previous row has passed, and is idle
/// in between, as rows arrive from a broker: a paced row reaches the next stage within the
/// exchange's flush interval, whatever the parallelism.
struct Paced(Vec<(&'static str, u64, u64)>);

struct PacedReader {
    rows: std::vec::IntoIter<(&'static str, u64, u64)>,
    next: Option<(&'static str, u64, u64)>,
    last: std::time::Instant,
}

impl Source for Paced {
    type Row = (&'static str, u64);
    type Reader = PacedReader;
    fn is_bounded(&self) -> bool {
        true
    }
    fn max_parallelism(&self) -> Option<usize> {
        Some(1)
    }
    fn into_readers(self, _: usize, _: &Watermarks) -> flow::Result<Vec<PacedReader>> {
        let mut rows = self.0.into_iter();
        let next = rows.next();
        Ok(vec![PacedReader {
            rows,
            next,
            last: std::time::Instant::now(),
        }])
    }
}

impl SourceReader for PacedReader {
    type Row = (&'static str, u64);
    fn poll<O: SourceOutput<(&'static str, u64)>>(
        &mut self,
        out: &mut O,
        _: usize,
    ) -> flow::Result<Poll> {
        let Some((key, n, wait)) = self.next else {
            return Ok(Poll::Finished);
        };
        if self.last.elapsed() < std::time::Duration::from_millis(wait) {
            return Ok(Poll::Idle);
        }
        out.collect((key, n));
        self.last = std::time::Instant::now();
        self.next = self.rows.next();
        Ok(Poll::Ready)
    }
}

fn state_with_a_time_to_live_expires(p: usize) {
    // Processing time drives expiry: the source paces the rows. The gaps are wide (TTL 1 s,
    // rows 0.3 s apart, 1.6 s pauses) so that a loaded machine does not change the outcome.
    // (key, n, milliseconds to wait first)
    let rows: Vec<(&'static str, u64, u64)> = vec![
        ("a", 1, 0),
        ("a", 2, 300),
        ("b", 3, 0),
        ("a", 4, 300),
        ("a", 5, 300),
        ("a", 6, 300),
        ("a", 7, 1600),
        ("b", 8, 1600),
    ];
    let env = env(p);
    flow! { env =>
        let out = source(Paced(rows), Watermarks::no_watermarks())
            .key_by(|r| r.0)
            .map(ttl_states)
            .collect();
    }
    env.execute("ttl").unwrap();
    let mut per_key: BTreeMap<&str, Vec<(u32, u64, u64)>> = BTreeMap::new();
    for (k, n, first_read, first) in out.take() {
        per_key.entry(k).or_default().push((n, first_read, first));
    }
    // "a" is written every 0.3 s up to row 6 (1.2 s after row 1), then pauses 1.6 s: row 7
    // counts from 1 again and finds both first values gone. Its first value, read every
    // 0.3 s, lives on with OnReadAndWrite until the pause; without it, it expires 1 s after
    // its only write, so row 6 writes its own.
    assert_eq!(
        per_key["a"],
        vec![
            (1, 1, 1),
            (2, 1, 1),
            (3, 1, 1),
            (4, 1, 1),
            (5, 1, 6),
            (1, 7, 7)
        ]
    );
    // "b" pauses 1.6 s between its rows: everything expired.
    assert_eq!(per_key["b"], vec![(1, 3, 3), (1, 8, 8)]);
}

at_parallelism!(
    value_list_and_map_state,
    state_with_a_time_to_live_expires,
    reducing_and_aggregating_state,
    stateful_filter,
    stateful_flat_map,
    impl_block_with_state_fields,
    stateless_impl_block,
);
