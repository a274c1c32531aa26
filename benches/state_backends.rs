//! The disk state backend (`--state-backend disk`) against the memory backend and against
//! hand-written loops doing the same work: a hash map (flow's, as the memory backend) and the
//! same store (fjall) driven directly, a read and a write per row (how Flink's RocksDB
//! backend touches state: no cache in front of it).
//!
//! - `w1`: 1..=N -> `(n % 1024, 1)` -> key_by -> reduce sum (every key fits the cache).
//! - `w3`: 1..=N -> `(n % 4, 1)` -> key_by -> `#[map_function]` with a `ValueState` count.
//! - `w4`: 10M events 1 ms apart, `(n % 1000, 1)`, 1 s tumbling event-time windows, a sum
//!   per key and window (a `reduce`), Flink's 200 ms watermark interval: the windows of 200 ms
//!   of rows open at each watermark. On disk with the default 64 MiB cache (the panes fit) and
//!   with 1 MiB (most panes move to the store, fire from it); the loops: one map per open
//!   window, and fjall alone (a read and a write per event, a range read and delete per
//!   window).
//! - `wide`: W1 over 2M keys, each seen 5 times in turn, with a 16 MiB cache: state ~6x the
//!   cache, so that nearly every row misses it (the disk backend's worst case).
//! - `checkpoint`: a reduce over 10M keys with a checkpoint every 2 s: how long a barrier
//!   stops the rows (writing the cache's changed keys back) and the checkpoint's size and
//!   duration; then the time to restore it into each backend.
//! - `small`: a reduce over 1M keys, then 200 rows 10 ms apart (a few keys changed per
//!   checkpoint, one every 500 ms): the size of a checkpoint after a small change, on each
//!   backend (checkpoints are full: the whole state each time).
//!
//! ```text
//! cargo bench --bench state_backends
//! cargo bench --bench state_backends -- wide checkpoint
//! FLOW_BENCH_SCALE=0.2 cargo bench --bench state_backends
//! ```

use flow::hash::FlowHashMap;
use flow::prelude::*;
use flow::state::{StateBackendConfig, StateBackendKind};
use flow::{JobResult, Sink};
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

fn w1_map(n: i64) -> (i64, i64) {
    (n % 1024, 1)
}

fn w3_map(n: i64) -> (i64, i64) {
    (n % 4, 1)
}

fn sum(a: (i64, i64), b: (i64, i64)) -> (i64, i64) {
    (a.0, a.1 + b.1)
}

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

/// Memory, or disk under `dir` with `cache_mb` of cache.
fn env(disk: Option<(&Path, u64)>) -> StreamEnv {
    let env = StreamEnv::new().with_checkpoint_interval(None);
    match disk {
        Some((dir, cache_mb)) => env.with_state_backend(StateBackendConfig {
            kind: StateBackendKind::Disk,
            dir: Some(dir.into()),
            cache_bytes: cache_mb << 20,
        }),
        None => env,
    }
}

fn run(env: &StreamEnv, name: &str) -> (Duration, JobResult) {
    let start = Instant::now();
    let result = env.execute(name).expect("the job runs");
    (start.elapsed(), result)
}

fn w1<S: Sink<(i64, i64)>>(rows: i64, keys: i64, env: StreamEnv, sink: S) -> Duration {
    w1_job(rows, keys, env, sink).0
}

fn w1_job<S: Sink<(i64, i64)>>(
    rows: i64,
    keys: i64,
    env: StreamEnv,
    sink: S,
) -> (Duration, JobResult) {
    flow! { env =>
        source(NumberSequence::new(1, rows), Watermarks::no_watermarks())
            .map(move |n| (n % keys, 1))
            .key_by(|r: &(i64, i64)| r.0)
            .reduce(sum)
            .sink_to(sink);
    }
    run(&env, "w1")
}

fn w3<S: Sink<(i64, i64)>>(rows: i64, env: StreamEnv, sink: S) -> Duration {
    flow! { env =>
        source(NumberSequence::new(1, rows), Watermarks::no_watermarks())
            .map(w3_map)
            .key_by(|r: &(i64, i64)| r.0)
            .map(count_first_two)
            .sink_to(sink);
    }
    run(&env, "w3").0
}

fn w4<S: Sink<(i64, i64)>>(events: i64, env: StreamEnv, sink: S) -> Duration {
    let env = env.with_auto_watermark_interval(Duration::from_millis(200));
    flow! { env =>
        source(NumberSequence::new(0, events - 1), Watermarks::monotonous())
            .timestamps(|n| *n)
            .map(|n| (n % W4_KEYS, 1))
            .key_by(|r: &(i64, i64)| r.0)
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .reduce(sum)
            .sink_to(sink);
    }
    run(&env, "w4").0
}

const W4_KEYS: i64 = 1000;

/// W4 by hand: one map of sums for the open window, emitted and cleared when the next opens.
fn w4_loop(events: i64) -> Duration {
    let start = Instant::now();
    let mut sums: FlowHashMap<i64, i64> = FlowHashMap::default();
    let mut open = 0;
    for n in 0..events {
        let window = n - n % 1000;
        if window != open {
            for kv in sums.drain() {
                black_box((kv, open));
            }
            open = window;
        }
        *sums.entry(n % W4_KEYS).or_insert(0) += 1;
    }
    black_box(sums.len());
    start.elapsed()
}

/// W4 with fjall alone, keyed by (window, key) as the disk backend's stored panes: per event
/// a read and a write of the sum; per window a range read (the results) and deletes.
fn w4_store_loop(events: i64, dir: &Path) -> Duration {
    let (db, ks) = store(dir, "w4-loop");
    let start = Instant::now();
    let mut open = 0i64;
    let fire = |window: i64| {
        let mut batch = db.batch();
        for kv in ks.prefix(window.to_be_bytes()) {
            let (k, v) = kv.into_inner().expect("reads");
            black_box(&v);
            batch.remove(&ks, k);
        }
        batch.commit().expect("writes");
    };
    for n in 0..events {
        let window = n - n % 1000;
        if window != open {
            fire(open);
            open = window;
        }
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&window.to_be_bytes());
        k[8..].copy_from_slice(&(n % W4_KEYS).to_be_bytes());
        let sum = match ks.get(k).expect("reads") {
            Some(v) => i64::from_le_bytes(v[..8].try_into().expect("8 bytes")) + 1,
            None => 1,
        };
        ks.insert(k, sum.to_le_bytes()).expect("writes");
    }
    fire(open);
    start.elapsed()
}

/// The hand-written loops: a rolling sum (W1) and the first-two count (W3) in a `HashMap`.
fn w1_loop(rows: i64, keys: i64) -> Duration {
    let start = Instant::now();
    let mut sums: FlowHashMap<i64, i64> = FlowHashMap::default();
    for n in 1..=rows {
        let (k, v) = if keys == 1024 {
            w1_map(n)
        } else {
            (n % keys, 1)
        };
        let s = sums.entry(k).or_insert(0);
        *s += v;
        black_box((k, *s));
    }
    start.elapsed()
}

fn w3_loop(rows: i64) -> Duration {
    let start = Instant::now();
    let mut seen: FlowHashMap<i64, u32> = FlowHashMap::default();
    for n in 1..=rows {
        let (k, v) = w3_map(n);
        let s = seen.entry(k).or_insert(0);
        let out = if *s < 2 {
            *s += 1;
            (k, v + 1)
        } else {
            (k, v)
        };
        black_box(out);
    }
    start.elapsed()
}

/// W1 over `keys` keys with fjall alone: per row a read and a write of the key's sum, with
/// the store options the disk backend uses.
fn w1_store_loop(rows: i64, keys: i64, dir: &Path) -> Duration {
    let (_db, ks) = store(dir, "loop");
    let start = Instant::now();
    for n in 1..=rows {
        let k = (n % keys).to_be_bytes();
        let sum = match ks.get(k).expect("reads") {
            Some(v) => i64::from_le_bytes(v[..8].try_into().expect("8 bytes")) + 1,
            None => 1,
        };
        ks.insert(k, sum.to_le_bytes()).expect("writes");
        black_box(sum);
    }
    start.elapsed()
}

/// A fjall store under `dir` with the options the disk backend uses for a 16 MiB cache.
fn store(dir: &Path, name: &str) -> (fjall::Database, fjall::Keyspace) {
    use fjall::config::PartitioningPolicy;
    let db = fjall::Database::builder(dir.join(name))
        .cache_size(8 << 20)
        .temporary(true)
        .open()
        .expect("fjall opens");
    let ks = db
        .keyspace(name, || {
            fjall::KeyspaceCreateOptions::default()
                .max_memtable_size(4 << 20)
                .filter_block_partitioning_policy(PartitioningPolicy::all(true))
                .index_block_partitioning_policy(PartitioningPolicy::all(true))
        })
        .expect("a keyspace");
    (db, ks)
}

fn best(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..runs).map(|_| f()).min().expect("runs >= 1")
}

fn mrows(rows: i64, t: Duration) -> f64 {
    rows as f64 / t.as_secs_f64() / 1e6
}

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));
    let scale = env_f64("FLOW_BENCH_SCALE", 1.0);
    let runs = env_f64("FLOW_BENCH_RUNS", 3.0).max(1.0) as usize;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let disk = Some((dir.path(), env_f64("FLOW_BENCH_CACHE_MB", 64.0) as u64));
    println!(
        "state backends, best of {runs}; ratios: to the hand-written HashMap loop (loop), to \
         the memory backend (mem)"
    );

    if wanted("w1") {
        let rows = (50_000_000.0 * scale) as i64;
        let lp = best(runs, || w1_loop(rows, 1024));
        let mem = best(runs, || w1(rows, 1024, env(None), DiscardSink));
        let dsk = best(runs, || w1(rows, 1024, env(disk), DiscardSink));
        println!(
            "w1   {rows} rows, 1024 keys: loop {:.1} Mrows/s, memory {:.1} ({:.2}x loop), disk {:.1} ({:.2}x loop, {:.2}x mem)",
            mrows(rows, lp),
            mrows(rows, mem),
            lp.as_secs_f64() / mem.as_secs_f64(),
            mrows(rows, dsk),
            lp.as_secs_f64() / dsk.as_secs_f64(),
            mem.as_secs_f64() / dsk.as_secs_f64(),
        );
    }

    if wanted("w3") {
        let rows = (50_000_000.0 * scale) as i64;
        let lp = best(runs, || w3_loop(rows));
        let mem = best(runs, || w3(rows, env(None), DiscardSink));
        let dsk = best(runs, || w3(rows, env(disk), DiscardSink));
        println!(
            "w3   {rows} rows, 4 keys: loop {:.1} Mrows/s, memory {:.1} ({:.2}x loop), disk {:.1} ({:.2}x loop, {:.2}x mem)",
            mrows(rows, lp),
            mrows(rows, mem),
            lp.as_secs_f64() / mem.as_secs_f64(),
            mrows(rows, dsk),
            lp.as_secs_f64() / dsk.as_secs_f64(),
            mem.as_secs_f64() / dsk.as_secs_f64(),
        );
    }

    if wanted("w4") {
        let events = (10_000_000.0 * scale) as i64;
        let lp = best(runs, || w4_loop(events));
        let mem = best(runs, || w4(events, env(None), DiscardSink));
        let dsk = best(runs, || w4(events, env(disk), DiscardSink));
        let small = best(runs, || w4(events, env(Some((dir.path(), 1))), DiscardSink));
        // One run, as `wide`'s.
        let store = w4_store_loop(events, dir.path());
        println!(
            "w4   {events} events, 1000 keys, 1 s windows: loop {:.1} Mrows/s, memory {:.1} ({:.2}x loop), disk {:.1} ({:.2}x mem), disk 1 MiB cache {:.2} ({:.3}x mem), fjall loop {:.2}: disk 1 MiB {:.2}x the store loop",
            mrows(events, lp),
            mrows(events, mem),
            lp.as_secs_f64() / mem.as_secs_f64(),
            mrows(events, dsk),
            mem.as_secs_f64() / dsk.as_secs_f64(),
            mrows(events, small),
            mem.as_secs_f64() / small.as_secs_f64(),
            mrows(events, store),
            store.as_secs_f64() / small.as_secs_f64(),
        );
    }

    if wanted("wide") {
        let keys = (2_000_000.0 * scale) as i64;
        let rows = 5 * keys;
        let lp = best(runs, || w1_loop(rows, keys));
        let mem = best(runs, || w1(rows, keys, env(None), DiscardSink));
        let dsk = best(runs, || {
            w1(rows, keys, env(Some((dir.path(), 16))), DiscardSink)
        });
        // One run: a read and a write per row is slow (minutes at full scale otherwise).
        let store = w1_store_loop(rows, keys, dir.path());
        println!(
            "wide {rows} rows, {keys} keys, 16 MiB cache: loop {:.2} Mrows/s, memory {:.2} ({:.2}x loop), disk {:.3} ({:.3}x mem), fjall loop (get+insert per row) {:.3}: disk {:.2}x the store loop",
            mrows(rows, lp),
            mrows(rows, mem),
            lp.as_secs_f64() / mem.as_secs_f64(),
            mrows(rows, dsk),
            mem.as_secs_f64() / dsk.as_secs_f64(),
            mrows(rows, store),
            store.as_secs_f64() / dsk.as_secs_f64(),
        );
    }

    if wanted("small") {
        let keys = (1_000_000.0 * scale) as i64;
        for (name, disk) in [("memory", None), ("disk", disk)] {
            let checkpoints = tempfile::tempdir().expect("a temporary directory");
            let env = env(disk)
                .with_checkpoint_interval(Some(Duration::from_millis(500)))
                .with_checkpoint_dir(checkpoints.path(), 1);
            flow! { env =>
                source(NumberSequence::new(1, keys + 200), Watermarks::no_watermarks())
                    .map(move |n| {
                        if n > keys {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        (n % keys, 1)
                    })
                    .key_by(|r: &(i64, i64)| r.0)
                    .reduce(sum)
                    .sink_to(DiscardSink);
            }
            let (_, result) = run(&env, "small");
            let s = &result.checkpoints;
            println!(
                "small change, {keys} keys, {name}: {} checkpoints; the last (after 200 rows changed at most 200 keys) {:.1} MB; the largest {:.1} MB",
                s.completed,
                s.last_bytes as f64 / 1e6,
                s.max_bytes as f64 / 1e6,
            );
        }
    }

    if wanted("checkpoint") {
        let keys = (10_000_000.0 * scale) as i64;
        let rows = 2 * keys;
        let checkpoints = tempfile::tempdir().expect("a temporary directory");
        let env = env(disk)
            .with_checkpoint_interval(Some(Duration::from_secs(2)))
            .with_checkpoint_dir(checkpoints.path(), 1);
        let (t, result) = w1_job(rows, keys, env, DiscardSink);
        let s = &result.checkpoints;
        println!(
            "checkpoint {keys} keys on disk (64 MiB cache): {rows} rows in {t:.1?}; {} checkpoints, longest barrier stop (write-back) {:.0?}, longest checkpoint {:.1?}, largest {:.0} MB",
            s.completed,
            s.max_sync,
            s.max_duration,
            s.max_bytes as f64 / 1e6,
        );
        let last = result.last_checkpoint.expect("a final checkpoint");
        for (name, disk) in [("memory", None), ("disk", disk)] {
            let t = best(runs, || {
                let env = self::env(disk).with_restore(last.to_str().expect("a UTF-8 path"));
                w1(rows, keys, env, DiscardSink)
            });
            println!("restore of {keys} keys into the {name} backend: {t:.1?}");
        }
    }
}
