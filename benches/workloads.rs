//! The standard workloads of DESIGN.md section 6, each against a hand-written single-threaded
//! loop doing the same work.
//!
//! - W1 sum by key: 1..=50M -> `(n % 1024, 1)` -> key_by -> reduce sum.
//! - W2 word count: ~200 MB of Zipf-skewed text over a 10,000-word vocabulary, lines of 100
//!   words from `from_iter` -> flat_map split on spaces -> key_by word -> reduce count.
//! - W3 stateful map: 1..=50M -> `(n % 4, 1)` -> key_by -> `#[map_function]` with a
//!   `ValueState` count (the first two rows per key get +1).
//! - W2s: W2 with the words as `SmallString`s (rows `(SmallString, i64)`), which keep a word of
//!   up to 22 bytes inline: rows a user would write that allocate nothing per word.
//! - W2sp: W2s with its lines from a parallel source (a `NumberSequence` of line numbers, each
//!   mapped to its line by the `flat_map`), as a job that reads a file in splits gets them:
//!   `from_iter` is one subtask (Flink's collection sources are not parallel), so W2 and W2s
//!   at parallelism 2 split and route every word on one thread, and run staged; W2sp runs
//!   fused (README, "How a job runs").
//! - W2b, not one of DESIGN.md's workloads: W2 on the same text with borrowed words (lines
//!   are `&'static str`, rows `(&str, i64)`), so no row allocates. Next to W2 it separates
//!   what flow itself costs from what owned `String` rows cost.
//!
//! With `w1/streaming/p2` among the cases, W1 streaming is also run on two threads by hand,
//! without flow, in two designs: a thread per stage (as flow runs a job with `--scheduling
//! threads`) and a worker per core (as timely does; half the rows, those of the worker's own
//! keys, never cross threads; flow's workers still send them through a channel). What
//! two threads can do with a keyed exchange on this machine; simpler than flow's (a one-multiply
//! route instead of the stable key-group hash, no timestamps). The worker per core runs again
//! with flow's route (`flow::hash::key_to_subtask`): what flow could reach if its workers
//! summed their own keys' rows where they are made.
//!
//! Streaming mode emits every update to a `DiscardSink`, and the loop `black_box`es every
//! updated row; batch mode (W1, W2) emits each key's final row only, and so does the loop.
//! Each case is checked against the loop on a small input before it is timed, then timed as
//! the best of `FLOW_BENCH_RUNS` (default 3) runs.
//!
//! ```text
//! cargo bench --bench workloads                               # everything
//! cargo bench --bench workloads -- w1                         # cases whose name contains `w1`
//! cargo bench --bench workloads -- w2/                        # W2 only (`w2` also matches W2s, W2b)
//! cargo bench --bench workloads -- w2/batch w3/streaming/p2   # several filters
//! FLOW_BENCH_SCALE=0.1 cargo bench --bench workloads          # a tenth of the sizes
//! FLOW_BENCH_METRICS=1 cargo bench --bench workloads -- w1    # with the metrics endpoint on
//! ```

use flow::prelude::*;
use flow::Sink;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::hint::black_box;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// The functions both sides run.

fn w1_map(n: i64) -> (i64, i64) {
    (n % 1024, 1)
}

fn w3_map(n: i64) -> (i64, i64) {
    (n % 4, 1)
}

fn first_field(row: &(i64, i64)) -> i64 {
    row.0
}

fn sum(a: (i64, i64), b: (i64, i64)) -> (i64, i64) {
    (a.0, a.1 + b.1)
}

fn count_words<W>(a: (W, i64), b: (W, i64)) -> (W, i64) {
    (a.0, a.1 + b.1)
}

fn count_borrowed(a: (&'static str, i64), b: (&'static str, i64)) -> (&'static str, i64) {
    (a.0, a.1 + b.1)
}

/// The seed's `MyMapFunction`: the first two rows of every key get +1.
#[map_function]
fn count_first_two(row: (i64, i64), #[state] cnt: &mut ValueState<u32>) -> (i64, i64) {
    let seen = cnt.value().unwrap_or(0);
    if seen < 2 {
        cnt.update(seen + 1);
        (row.0, row.1 + 1)
    } else {
        row
    }
}

// ---------------------------------------------------------------------------------------------
// flow pipelines, generic over the sink: `DiscardSink` when timed, a collect sink when checked.

fn env(parallelism: usize, mode: RuntimeMode) -> StreamEnv {
    let env = StreamEnv::new()
        .with_parallelism(parallelism)
        .with_mode(mode);
    // `FLOW_BENCH_METRICS=1`: the job serves its metrics (`--metrics-addr`), so its tasks
    // publish their counters: what watching a job costs.
    if std::env::var("FLOW_BENCH_METRICS").as_deref() == Ok("1") {
        env.with_metrics_addr(([127, 0, 0, 1], 0).into())
    } else {
        env
    }
}

fn timed(env: &StreamEnv, name: &str) -> Duration {
    let start = Instant::now();
    env.execute(name).expect("the job runs");
    start.elapsed()
}

fn w1_flow<S: Sink<(i64, i64)>>(rows: i64, p: usize, mode: RuntimeMode, sink: S) -> Duration {
    let env = env(p, mode);
    flow! { env =>
        source(NumberSequence::new(1, rows), Watermarks::no_watermarks())
            .map(w1_map)
            .key_by(first_field)
            .reduce(sum)
            .sink_to(sink);
    }
    timed(&env, "w1")
}

/// W2 with words of type `W`: `String` (W2) or `SmallString` (W2s), the lines from
/// `from_iter` (one subtask).
fn w2_flow<W, S>(lines: Vec<String>, p: usize, mode: RuntimeMode, sink: S) -> Duration
where
    W: for<'a> From<&'a str> + Clone + Eq + std::hash::Hash + flow::snapshot::StateData,
    W: Send + Sync + std::fmt::Debug,
    S: Sink<(W, i64)>,
{
    let env = env(p, mode);
    flow! { env =>
        from_iter(lines)
            .flat_map(|line: String, out: &mut Vec<(W, i64)>| {
                for word in line.split(' ') {
                    out.push((W::from(word), 1));
                }
            })
            .key_by(|r| r.0.clone())
            .reduce(count_words::<W>)
            .sink_to(sink);
    }
    timed(&env, "w2")
}

/// W2 with words of type `W` and the lines from a parallel source (W2sp): subtask `i` reads
/// split `i` of the line numbers.
fn w2p_flow<W, S>(lines: &'static [String], p: usize, mode: RuntimeMode, sink: S) -> Duration
where
    W: for<'a> From<&'a str> + Clone + Eq + std::hash::Hash + flow::snapshot::StateData,
    W: Send + Sync + std::fmt::Debug,
    S: Sink<(W, i64)>,
{
    let env = env(p, mode);
    let last = lines.len() as i64 - 1;
    flow! { env =>
        source(NumberSequence::new(0, last), Watermarks::no_watermarks())
            .flat_map(move |i: i64, out: &mut Vec<(W, i64)>| {
                for word in lines[i as usize].split(' ') {
                    out.push((W::from(word), 1));
                }
            })
            .key_by(|r| r.0.clone())
            .reduce(count_words::<W>)
            .sink_to(sink);
    }
    timed(&env, "w2p")
}

fn w2b_flow<S: Sink<(&'static str, i64)>>(
    lines: &'static [String],
    p: usize,
    mode: RuntimeMode,
    sink: S,
) -> Duration {
    let env = env(p, mode);
    flow! { env =>
        from_iter(lines.iter().map(String::as_str))
            .flat_map(|line: &'static str| line.split(' ').map(|word| (word, 1)))
            .key_by(|r| r.0)
            .reduce(count_borrowed)
            .sink_to(sink);
    }
    timed(&env, "w2b")
}

fn w3_flow<S: Sink<(i64, i64)>>(rows: i64, p: usize, mode: RuntimeMode, sink: S) -> Duration {
    let env = env(p, mode);
    flow! { env =>
        source(NumberSequence::new(1, rows), Watermarks::no_watermarks())
            .map(w3_map)
            .key_by(first_field)
            .map(count_first_two)
            .sink_to(sink);
    }
    timed(&env, "w3")
}

// ---------------------------------------------------------------------------------------------
// The hand-written loops: one thread, a HashMap with a fast hasher, `emit` gets each output row.
// Not inlined into `main`: their code, and so their speed, must not depend on the caller.

/// FxHash (rustc's hasher) with a final rotation so hashbrown's bucket bits see the high bits.
#[derive(Clone, Copy, Default)]
struct FxHasher(u64);

impl FxHasher {
    #[inline(always)]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
        }
    }
    #[inline(always)]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline(always)]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline(always)]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline(always)]
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A keyed rolling reduce by hand: the new aggregate is emitted per row (streaming) or per key
/// at the end (batch).
#[inline(always)]
fn rolling_reduce<K: Hash + Eq, T: Copy>(
    rows: impl Iterator<Item = T>,
    key: impl Fn(&T) -> K,
    reduce: impl Fn(T, T) -> T,
    batch: bool,
    mut emit: impl FnMut(T),
) {
    // `get_mut` then `insert`, not `entry`: with `entry` this loop runs at half speed in
    // batch mode (measured; rustc 1.95).
    let mut state: FxHashMap<K, T> = FxHashMap::default();
    for row in rows {
        let k = key(&row);
        let new = match state.get_mut(&k) {
            Some(acc) => {
                *acc = reduce(*acc, row);
                *acc
            }
            None => {
                state.insert(k, row);
                row
            }
        };
        if !batch {
            emit(new);
        }
    }
    if batch {
        for (_, row) in state {
            emit(row);
        }
    }
}

#[inline(never)]
fn w1_by_hand(rows: i64, batch: bool, emit: impl FnMut((i64, i64))) {
    // `1..rows + 1`, not `1..=rows`: an inclusive range adds a check per step.
    rolling_reduce((1..rows + 1).map(w1_map), first_field, sum, batch, emit);
}

/// Word count by hand: words are looked up as `&str` and copied into the map once per word of
/// the vocabulary, as anyone writing this loop would. Lines owned (W2, W2s: each is freed
/// after its words, as in flow) or borrowed (W2sp).
#[inline(never)]
fn w2_by_hand<L: AsRef<str>>(
    lines: impl IntoIterator<Item = L>,
    batch: bool,
    mut emit: impl FnMut(&str, i64),
) {
    let mut counts: FxHashMap<String, i64> = FxHashMap::default();
    for line in lines {
        for word in line.as_ref().split(' ') {
            let count = match counts.get_mut(word) {
                Some(c) => {
                    *c += 1;
                    *c
                }
                None => {
                    counts.insert(word.to_string(), 1);
                    1
                }
            };
            if !batch {
                emit(word, count);
            }
        }
    }
    if batch {
        for (word, count) in &counts {
            emit(word, *count);
        }
    }
}

/// Word count by hand over borrowed lines.
#[inline(never)]
fn w2b_by_hand<'a>(lines: &'a [String], batch: bool, mut emit: impl FnMut(&'a str, i64)) {
    let mut counts: FxHashMap<&'a str, i64> = FxHashMap::default();
    for line in lines {
        for word in line.split(' ') {
            let count = counts.entry(word).or_insert(0);
            *count += 1;
            if !batch {
                emit(word, *count);
            }
        }
    }
    if batch {
        for (word, count) in counts {
            emit(word, count);
        }
    }
}

#[inline(never)]
fn w3_by_hand(rows: i64, mut emit: impl FnMut((i64, i64))) {
    let mut state: FxHashMap<i64, u32> = FxHashMap::default();
    for n in 1..rows + 1 {
        let row = w3_map(n);
        let seen = state.entry(row.0).or_insert(0);
        let row = if *seen < 2 {
            *seen += 1;
            (row.0, row.1 + 1)
        } else {
            row
        };
        emit(row);
    }
}

fn discard<T>(row: T) {
    black_box(row);
}

/// Runs `work` on a new thread, as flow runs a job, and times it with the thread's start and
/// end. A new thread goes to the idlest core, while `main` stays where it is: timing the loop
/// on `main` would hand flow the better core whenever something else loads the machine.
fn on_thread(work: impl FnOnce() + Send) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| s.spawn(work).join().expect("the loop runs"));
    start.elapsed()
}

// ---------------------------------------------------------------------------------------------
// W1 in streaming mode on two threads by hand: what a keyed exchange costs on this machine,
// without flow. Rows go to the thread that owns their key (`route`) in batches of 4096 rows
// (64 KiB, as flow's exchange) over bounded channels of 8 batches.

const HAND_BATCH: usize = 4096;

/// The thread of two that owns key `k`.
#[inline(always)]
fn route(k: i64) -> usize {
    ((k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 63) as usize
}

/// The thread of two that owns key `k` as flow routes it: the stable hash, by key group.
#[inline(always)]
fn flow_route(k: i64) -> usize {
    flow::hash::key_to_subtask(&k, 2)
}

/// One row into a streaming sum by key, its update `black_box`ed.
#[inline(always)]
fn sum_into(state: &mut FxHashMap<i64, (i64, i64)>, row: (i64, i64)) {
    let new = match state.get_mut(&row.0) {
        Some(acc) => {
            *acc = sum(*acc, row);
            *acc
        }
        None => {
            state.insert(row.0, row);
            row
        }
    };
    discard(new);
}

/// The sums of both threads' maps, sorted by key (the end state, checked against the loop's).
type Sums = Vec<(i64, (i64, i64))>;

fn merged(states: Vec<FxHashMap<i64, (i64, i64)>>) -> Sums {
    let mut all: Sums = states.into_iter().flatten().collect();
    all.sort();
    all
}

/// A thread per stage and subtask, as flow runs a job with `--scheduling threads`: two source
/// threads route every row to one of two reducing threads.
fn w1_p2_thread_per_stage(rows: i64) -> (Duration, Sums) {
    use std::sync::mpsc::sync_channel;
    let start = Instant::now();
    let states = std::thread::scope(|s| {
        let (to0, from0) = sync_channel::<Vec<(i64, i64)>>(8);
        let (to1, from1) = sync_channel::<Vec<(i64, i64)>>(8);
        for (lo, hi) in [(1, rows / 2 + 1), (rows / 2 + 1, rows + 1)] {
            let to = [to0.clone(), to1.clone()];
            s.spawn(move || {
                let mut out = [
                    Vec::with_capacity(HAND_BATCH),
                    Vec::with_capacity(HAND_BATCH),
                ];
                for n in lo..hi {
                    let row = w1_map(n);
                    let t = route(row.0);
                    out[t].push(row);
                    if out[t].len() == HAND_BATCH {
                        let full = std::mem::replace(&mut out[t], Vec::with_capacity(HAND_BATCH));
                        to[t].send(full).expect("the reducer runs");
                    }
                }
                for (t, rest) in out.into_iter().enumerate() {
                    to[t].send(rest).expect("the reducer runs");
                }
            });
        }
        drop((to0, to1));
        let reducers: Vec<_> = [from0, from1]
            .into_iter()
            .map(|from| {
                s.spawn(move || {
                    let mut state = FxHashMap::default();
                    for batch in from {
                        for row in batch {
                            sum_into(&mut state, row);
                        }
                    }
                    state
                })
            })
            .collect();
        reducers
            .into_iter()
            .map(|r| r.join().expect("the reducer runs"))
            .collect()
    });
    (start.elapsed(), merged(states))
}

/// A worker per core, as timely runs a job: each of two threads reads half of the input,
/// sums the rows of its own keys at once and sends the others to the other thread, whose
/// rows it sums between two chunks of its input. A full channel never blocks it: it keeps the
/// batch and sums its input meanwhile. Rows go by `route`: a multiply, or flow's
/// (`flow_route`: what a flow whose workers kept their own keys' rows would pay to route).
///
/// Generic over the route, so that each is inlined into its loop (a `fn` pointer would be
/// an indirect call per row).
fn w1_p2_worker_per_core<R>(rows: i64, route: R) -> (Duration, Sums)
where
    R: Fn(i64) -> usize + Copy + Send,
{
    use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
    fn worker(
        route: impl Fn(i64) -> usize,
        me: usize,
        lo: i64,
        hi: i64,
        to: SyncSender<Vec<(i64, i64)>>,
        from: Receiver<Vec<(i64, i64)>>,
    ) -> FxHashMap<i64, (i64, i64)> {
        let mut state = FxHashMap::default();
        let mut out = Vec::with_capacity(HAND_BATCH);
        let mut pending: Option<Vec<(i64, i64)>> = None;
        let mut n = lo;
        loop {
            for batch in from.try_iter() {
                for row in batch {
                    sum_into(&mut state, row);
                }
            }
            if let Some(batch) = pending.take() {
                match to.try_send(batch) {
                    Ok(()) => {}
                    Err(TrySendError::Full(batch)) => {
                        pending = Some(batch);
                        std::thread::yield_now();
                        continue;
                    }
                    Err(TrySendError::Disconnected(_)) => panic!("the other worker ended early"),
                }
            }
            if n >= hi {
                if out.is_empty() {
                    break;
                }
                pending = Some(std::mem::take(&mut out));
                continue;
            }
            let end = (n + 1024).min(hi);
            while n < end {
                let row = w1_map(n);
                n += 1;
                if route(row.0) == me {
                    sum_into(&mut state, row);
                } else {
                    out.push(row);
                    if out.len() == HAND_BATCH {
                        pending = Some(std::mem::replace(&mut out, Vec::with_capacity(HAND_BATCH)));
                        break;
                    }
                }
            }
        }
        drop(to);
        for batch in from {
            for row in batch {
                sum_into(&mut state, row);
            }
        }
        state
    }
    let start = Instant::now();
    let states = std::thread::scope(|s| {
        let (to0, from0) = sync_channel(8);
        let (to1, from1) = sync_channel(8);
        let a = s.spawn(move || worker(route, 0, 1, rows / 2 + 1, to1, from0));
        let b = s.spawn(move || worker(route, 1, rows / 2 + 1, rows + 1, to0, from1));
        vec![
            a.join().expect("worker 0 runs"),
            b.join().expect("worker 1 runs"),
        ]
    });
    (start.elapsed(), merged(states))
}

/// W1 streaming by hand at parallelism 2, both ways, against the one-thread loop: best of
/// `runs`, in turns.
fn exchange_by_hand(rows: i64, check_rows: i64, runs: usize) {
    // Both end with the loop's sums, on a small input first.
    let mut want: Sums = Vec::new();
    w1_by_hand(check_rows, true, |row| want.push((row.0, row)));
    want.sort();
    assert_eq!(
        w1_p2_thread_per_stage(check_rows).1,
        want,
        "thread per stage by hand"
    );
    assert_eq!(
        w1_p2_worker_per_core(check_rows, route).1,
        want,
        "worker per core by hand"
    );
    assert_eq!(
        w1_p2_worker_per_core(check_rows, flow_route).1,
        want,
        "worker per core by hand, flow's route"
    );
    let mut one = Duration::MAX;
    let (mut stages, mut workers, mut flow_routed) = (one, one, one);
    for _ in 0..runs {
        one = one.min(on_thread(|| w1_by_hand(rows, false, discard)));
        stages = stages.min(w1_p2_thread_per_stage(rows).0);
        workers = workers.min(w1_p2_worker_per_core(rows, route).0);
        flow_routed = flow_routed.min(w1_p2_worker_per_core(rows, flow_route).0);
    }
    let rate = |d: Duration| rows as f64 / d.as_secs_f64() / 1e6;
    println!();
    println!("w1/streaming on two threads by hand (no flow), best of {runs}, against the one-thread loop:");
    for (name, d) in [
        ("one thread (the loop)", one),
        ("thread per stage", stages),
        ("worker per core", workers),
        ("  with flow's route", flow_routed),
    ] {
        println!(
            "  {name:<22} {:>7.1} Mrows/s   {:.2}x",
            rate(d),
            rate(d) / rate(one)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// W2's text: a seeded generator, no dependency.

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const VOCABULARY: usize = 10_000;
const WORDS_PER_LINE: usize = 100;

/// Lines of 100 words, `bytes` in all (about), words drawn from 10,000 distinct lower-case
/// words of 2 to 12 letters with Zipf (s = 1) frequencies: the most common word is 10,000
/// times as frequent as the rarest.
fn text(bytes: usize) -> Vec<String> {
    let mut rng = Rng(0x5eed_f10e);
    let mut seen = std::collections::HashSet::new();
    let mut vocabulary = Vec::with_capacity(VOCABULARY);
    while vocabulary.len() < VOCABULARY {
        let len = 2 + (rng.next() % 11) as usize;
        let word: String = (0..len)
            .map(|_| (b'a' + (rng.next() % 26) as u8) as char)
            .collect();
        if seen.insert(word.clone()) {
            vocabulary.push(word);
        }
    }
    let mut cumulative = Vec::with_capacity(VOCABULARY);
    let mut total = 0.0;
    for rank in 0..VOCABULARY {
        total += 1.0 / (rank + 1) as f64;
        cumulative.push(total);
    }
    let mut lines = Vec::new();
    let mut size = 0;
    while size < bytes {
        let mut line = String::with_capacity(WORDS_PER_LINE * 8);
        for i in 0..WORDS_PER_LINE {
            if i > 0 {
                line.push(' ');
            }
            let u = rng.unit() * total;
            let rank = cumulative.partition_point(|&c| c <= u).min(VOCABULARY - 1);
            line.push_str(&vocabulary[rank]);
        }
        size += line.len() + 1;
        lines.push(line);
    }
    lines
}

// ---------------------------------------------------------------------------------------------
// The harness.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    W1,
    W2,
    W2s,
    W2sp,
    W2b,
    W3,
}

struct Case {
    workload: Workload,
    mode: RuntimeMode,
    parallelism: usize,
}

impl Case {
    fn name(&self) -> String {
        let w = match self.workload {
            Workload::W1 => "w1",
            Workload::W2 => "w2",
            Workload::W2s => "w2s",
            Workload::W2sp => "w2sp",
            Workload::W2b => "w2b",
            Workload::W3 => "w3",
        };
        format!("{w}/{}/p{}", mode_name(self.mode), self.parallelism)
    }
    fn target(&self) -> f64 {
        match self.workload {
            Workload::W1 | Workload::W3 => 0.8,
            Workload::W2 | Workload::W2s | Workload::W2sp | Workload::W2b => 0.7,
        }
    }
}

fn mode_name(mode: RuntimeMode) -> &'static str {
    match mode {
        RuntimeMode::Batch => "batch",
        _ => "streaming",
    }
}

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The rows grouped by key, each key's rows in their original order: parallel subtasks
/// interleave keys, but every key's rows come from one subtask, in order.
fn by_key<K: Ord, V>(mut rows: Vec<(K, V)>) -> Vec<(K, V)> {
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

/// Runs the case on a small input with a collect sink and compares with the loop.
fn check(case: &Case, rows: i64, lines: &'static [String]) {
    let batch = case.mode == RuntimeMode::Batch;
    let (p, mode) = (case.parallelism, case.mode);
    let ok = match case.workload {
        Workload::W1 => {
            let got = CollectHandle::new();
            w1_flow(rows, p, mode, got.sink());
            let mut want = Vec::new();
            w1_by_hand(rows, batch, |r| want.push(r));
            !want.is_empty() && by_key(got.take()) == by_key(want)
        }
        Workload::W2 => {
            let got = CollectHandle::new();
            w2_flow::<String, _>(lines.to_vec(), p, mode, got.sink());
            let mut want = Vec::new();
            w2_by_hand(lines.to_vec(), batch, |w, c| want.push((w.to_string(), c)));
            !want.is_empty() && by_key(got.take()) == by_key(want)
        }
        Workload::W2s | Workload::W2sp => {
            let got = CollectHandle::new();
            if case.workload == Workload::W2s {
                w2_flow::<SmallString, _>(lines.to_vec(), p, mode, got.sink());
            } else {
                w2p_flow::<SmallString, _>(lines, p, mode, got.sink());
            }
            let mut want = Vec::new();
            w2_by_hand(lines.to_vec(), batch, |w, c| {
                want.push((SmallString::from(w), c))
            });
            !want.is_empty() && by_key(got.take()) == by_key(want)
        }
        Workload::W2b => {
            let got = CollectHandle::new();
            w2b_flow(lines, p, mode, got.sink());
            let mut want = Vec::new();
            w2b_by_hand(lines, batch, |w, c| want.push((w, c)));
            !want.is_empty() && by_key(got.take()) == by_key(want)
        }
        Workload::W3 => {
            let got = CollectHandle::new();
            w3_flow(rows, p, mode, got.sink());
            let mut want = Vec::new();
            w3_by_hand(rows, |r| want.push(r));
            !want.is_empty() && by_key(got.take()) == by_key(want)
        }
    };
    assert!(ok, "{}: flow's output differs from the loop's", case.name());
}

struct Measured {
    name: String,
    /// The loop's key: the workload and mode (the loop has no parallelism).
    loop_key: String,
    rows: u64,
    flow: f64,
    target: f64,
    /// Flow's rows/s at parallelism 1 for the same workload and mode, for the p2 speedup.
    p1: Option<f64>,
}

fn main() {
    let scale = env_f64("FLOW_BENCH_SCALE", 1.0);
    let runs = env_f64("FLOW_BENCH_RUNS", 3.0).max(1.0) as usize;
    // `cargo bench` passes `--bench`; everything else not starting with `-` is a filter.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();

    let mut cases = Vec::new();
    for (workload, modes) in [
        (
            Workload::W1,
            &[RuntimeMode::Streaming, RuntimeMode::Batch][..],
        ),
        (Workload::W2, &[RuntimeMode::Streaming, RuntimeMode::Batch]),
        (Workload::W2s, &[RuntimeMode::Streaming, RuntimeMode::Batch]),
        (
            Workload::W2sp,
            &[RuntimeMode::Streaming, RuntimeMode::Batch],
        ),
        (Workload::W2b, &[RuntimeMode::Streaming, RuntimeMode::Batch]),
        (Workload::W3, &[RuntimeMode::Streaming]),
    ] {
        for &mode in modes {
            for parallelism in [1, 2] {
                let case = Case {
                    workload,
                    mode,
                    parallelism,
                };
                let name = case.name();
                if filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())) {
                    cases.push(case);
                }
            }
        }
    }
    if cases.is_empty() {
        eprintln!(
            "no case matches {filters:?}; cases are w1|w2|w2s|w2sp|w2b|w3 / streaming|batch / p1|p2"
        );
        std::process::exit(2);
    }

    let rows = ((50_000_000.0 * scale) as i64).max(1);
    let check_rows = rows.min(200_000);
    // Leaked: W2b's rows borrow from it for the whole run.
    let lines: &'static [String] = if cases.iter().any(|c| {
        matches!(
            c.workload,
            Workload::W2 | Workload::W2s | Workload::W2sp | Workload::W2b
        )
    }) {
        let start = Instant::now();
        let lines = text((200_000_000.0 * scale) as usize);
        let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
        println!(
            "w2 text: {} lines, {} words, {:.1} MB, generated in {:.1?}",
            lines.len(),
            lines.len() * WORDS_PER_LINE,
            bytes as f64 / 1e6,
            start.elapsed()
        );
        Box::leak(lines.into_boxed_slice())
    } else {
        &[]
    };
    let check_lines = &lines[..lines.len().min(2_000)];

    println!(
        "scale {scale}, best of {runs} runs per figure; each case is checked against the loop \
         on a small input first"
    );
    let mut results: Vec<Measured> = Vec::new();
    // The loop's best rows/s per workload and mode, over the runs of every case.
    let mut best_loop: Vec<(String, f64)> = Vec::new();
    for case in &cases {
        let name = case.name();
        check(case, check_rows, check_lines);
        let batch = case.mode == RuntimeMode::Batch;
        let (p, mode) = (case.parallelism, case.mode);
        let n = match case.workload {
            Workload::W1 | Workload::W3 => rows as u64,
            Workload::W2 | Workload::W2s | Workload::W2sp | Workload::W2b => {
                (lines.len() * WORDS_PER_LINE) as u64
            }
        };
        // Flow and the loop take turns, so that a burst of load on the machine hits both.
        let (mut flow, mut hand) = (Duration::MAX, Duration::MAX);
        for _ in 0..runs {
            let f = match case.workload {
                Workload::W1 => w1_flow(rows, p, mode, DiscardSink),
                Workload::W2 => w2_flow::<String, _>(lines.to_vec(), p, mode, DiscardSink),
                Workload::W2s => w2_flow::<SmallString, _>(lines.to_vec(), p, mode, DiscardSink),
                Workload::W2sp => w2p_flow::<SmallString, _>(lines, p, mode, DiscardSink),
                Workload::W2b => w2b_flow(lines, p, mode, DiscardSink),
                Workload::W3 => w3_flow(rows, p, mode, DiscardSink),
            };
            let h = match case.workload {
                Workload::W1 => on_thread(|| w1_by_hand(rows, batch, discard)),
                Workload::W2 | Workload::W2s => {
                    let input = lines.to_vec();
                    on_thread(|| w2_by_hand(input, batch, |w, c| discard((w, c))))
                }
                Workload::W2sp => on_thread(|| w2_by_hand(lines, batch, |w, c| discard((w, c)))),
                Workload::W2b => on_thread(|| w2b_by_hand(lines, batch, |w, c| discard((w, c)))),
                Workload::W3 => on_thread(|| w3_by_hand(rows, discard)),
            };
            flow = flow.min(f);
            hand = hand.min(h);
        }
        let rate = |d: Duration| n as f64 / d.as_secs_f64();
        let p1 = results
            .iter()
            .find(|m| p > 1 && m.name == name.replace(&format!("/p{p}"), "/p1"))
            .map(|m| m.flow);
        println!(
            "  {:<18} flow {:>7.1} Mrows/s   loop {:>7.1} Mrows/s   {:.2}x",
            name,
            rate(flow) / 1e6,
            rate(hand) / 1e6,
            rate(flow) / rate(hand)
        );
        let loop_key = name[..name.rfind('/').expect("a parallelism suffix")].to_string();
        match best_loop.iter_mut().find(|(k, _)| *k == loop_key) {
            Some((_, best)) => *best = best.max(rate(hand)),
            None => best_loop.push((loop_key.clone(), rate(hand))),
        }
        results.push(Measured {
            name,
            loop_key,
            rows: n,
            flow: rate(flow),
            target: case.target(),
            p1,
        });
    }

    println!();
    println!(
        "best of {runs} runs; the loop's figure is its best over every case of the workload and mode"
    );
    println!(
        "{:<18} {:>10} {:>13} {:>13} {:>7} {:>14} {:>17}",
        "case", "rows", "flow Mrows/s", "loop Mrows/s", "ratio", "target (p1)", "p2/p1 (>= 1.6x)"
    );
    for m in &results {
        let hand = best_loop
            .iter()
            .find(|(k, _)| *k == m.loop_key)
            .map(|&(_, r)| r)
            .expect("measured with the case");
        let ratio = m.flow / hand;
        let target = if m.name.ends_with("/p1") {
            let verdict = if ratio >= m.target { "ok" } else { "MISS" };
            format!("{:.2}x {verdict}", m.target)
        } else {
            "-".to_string()
        };
        let speedup = match m.p1 {
            Some(p1) => {
                let s = m.flow / p1;
                format!("{s:.2}x {}", if s >= 1.6 { "ok" } else { "MISS" })
            }
            None => "-".to_string(),
        };
        println!(
            "{:<18} {:>10} {:>13.1} {:>13.1} {:>6.2}x {:>14} {:>17}",
            m.name,
            m.rows,
            m.flow / 1e6,
            hand / 1e6,
            ratio,
            target,
            speedup
        );
    }
    if cases.iter().any(|c| c.name() == "w1/streaming/p2") {
        exchange_by_hand(rows, check_rows, runs);
    }
}
