//! Every operator of the DSL end to end, at parallelism 1 (fused) and 2 (staged).

mod common;

use common::sorted;
use flow::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

fn env(p: usize) -> StreamEnv {
    StreamEnv::new().with_parallelism(p)
}

fn seq(n: i64) -> NumberSequence {
    NumberSequence::new(1, n)
}

fn map(p: usize) {
    let env = env(p);
    flow! { env =>
        let out = source(seq(1000), Watermarks::no_watermarks()).map(|n| n * 2).collect();
    }
    env.execute("map").unwrap();
    assert_eq!(
        sorted(out.take()),
        (1..=1000).map(|n| n * 2).collect::<Vec<_>>()
    );
}

fn filter(p: usize) {
    let env = env(p);
    flow! { env =>
        let out = source(seq(1000), Watermarks::no_watermarks()).filter(|n| n % 3 == 0).name("thirds").collect();
    }
    let result = env.execute("filter").unwrap();
    assert_eq!(
        sorted(out.take()),
        (1..=1000).filter(|n| n % 3 == 0).collect::<Vec<_>>()
    );
    let m = result
        .operator("thirds")
        .expect("named operator in the result");
    assert_eq!((m.rows_in, m.rows_out), (1000, 333));
}

#[flat_map_function]
fn split_words(line: String, out: &mut Vec<String>) {
    out.extend(line.split(' ').map(str::to_string));
}

fn flat_map(p: usize) {
    let lines = vec![
        "a b".to_string(),
        "c".to_string(),
        String::new(),
        "d e f".to_string(),
    ];
    let env = env(p);
    flow! { env =>
        let lines = from_collection(lines);
        let by_iter = lines.flat_map(|l| l.split(' ').map(str::to_string).collect::<Vec<_>>()).collect();
        let by_push = lines.flat_map(|l, out| out.extend(l.split(' ').map(str::to_string))).collect();
        let by_fn = lines.flat_map(split_words).collect();
    }
    env.execute("flat_map").unwrap();
    let expected = sorted(
        vec!["a", "b", "c", "", "d", "e", "f"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>(),
    );
    assert_eq!(sorted(by_iter.take()), expected);
    assert_eq!(sorted(by_push.take()), expected);
    assert_eq!(sorted(by_fn.take()), expected);
}

/// Rolling sums per key must be each key's prefix sums; the order within a key is kept.
fn reduce_streaming(p: usize) {
    let env = env(p);
    flow! { env =>
        let out = source(seq(10_000), Watermarks::no_watermarks())
            .map(|n| (n % 7, n))
            .key_by(|r| r.0)
            .reduce(|a, b| (a.0, a.1 + b.1))
            .collect();
    }
    env.execute("reduce").unwrap();
    let rows = out.take();
    assert_eq!(rows.len(), 10_000, "streaming emits every update");
    let mut per_key: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (k, s) in rows {
        per_key.entry(k).or_default().push(s);
    }
    for (k, sums) in per_key {
        let mut sorted_sums = sums.clone();
        sorted_sums.sort();
        assert_eq!(sums, sorted_sums, "key {k}: updates out of order");
        let total: i64 = (1..=10_000).filter(|n| n % 7 == k).sum();
        assert_eq!(*sums.last().unwrap(), total, "key {k}");
    }
}

fn reduce_batch(p: usize) {
    let env = env(p).with_mode(RuntimeMode::Batch);
    flow! { env =>
        let out = source(seq(10_000), Watermarks::no_watermarks())
            .map(|n| (n % 7, n))
            .key_by(|r| r.0)
            .reduce(|a, b| (a.0, a.1 + b.1))
            .collect();
    }
    let result = env.execute("reduce-batch").unwrap();
    assert_eq!(result.mode, RuntimeMode::Batch);
    let expected: Vec<(i64, i64)> = (0..7)
        .map(|k| (k, (1..=10_000).filter(|n| n % 7 == k).sum()))
        .collect();
    assert_eq!(
        sorted(out.take()),
        expected,
        "batch emits only the final row per key"
    );
}

/// Every row with the sink subtask that wrote it, in the order it came.
#[derive(Default)]
struct BySubtask<T>(std::sync::Arc<std::sync::Mutex<Vec<(usize, T)>>>);

impl<T> Clone for BySubtask<T> {
    fn clone(&self) -> Self {
        BySubtask(self.0.clone())
    }
}

struct BySubtaskWriter<T>(BySubtask<T>, usize);

impl<T: Send + 'static> flow::Sink<T> for BySubtask<T> {
    type Writer = BySubtaskWriter<T>;
    fn create_writer(&self, ctx: &RuntimeContext) -> flow::Result<BySubtaskWriter<T>> {
        Ok(BySubtaskWriter(self.clone(), ctx.subtask_index()))
    }
}

impl<T: Send + 'static> flow::SinkWriter<T> for BySubtaskWriter<T> {
    fn write(&mut self, row: T, _: flow::Timestamp) {
        self.0 .0.lock().unwrap().push((self.1, row));
    }
    fn finish(&mut self) -> flow::Result<()> {
        Ok(())
    }
}

impl<T: Clone> BySubtask<T> {
    /// The rows of each subtask, in the order it wrote them.
    fn per_subtask(&self) -> BTreeMap<usize, Vec<T>> {
        let mut out: BTreeMap<usize, Vec<T>> = BTreeMap::new();
        for (s, row) in self.0.lock().unwrap().iter() {
            out.entry(*s).or_default().push(row.clone());
        }
        out
    }
}

fn batch_results_come_grouped_by_key(p: usize) {
    // Flink's batch execution sorts a keyed operator's input by key: each subtask emits its
    // keys' results together, keys ascending (numbers by value, strings by their bytes), a
    // key's windows by time.
    let env = env(p).with_mode(RuntimeMode::Batch);
    let sums = BySubtask::<(i64, i64)>::default();
    let windows = BySubtask::<(String, i64, usize)>::default();
    let words = [
        "pear", "apple", "fig", "apple", "kiwi", "fig", "pear", "date", "apple",
    ];
    let events: Vec<(String, i64)> = (0..90)
        .map(|i| (words[i % words.len()].to_string(), (i as i64 * 7919) % 3000))
        .collect();
    flow! { env =>
        source(seq(2000), Watermarks::no_watermarks())
            .map(|n| ((n * 37) % 11 - 5, 1))
            .key_by(|r| r.0)
            .sum(1)
            .sink_to(sums.clone());
        from_collection(events, Watermarks::monotonous())
            .timestamps(|e| e.1)
            .key_by(|e| e.0.clone())
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .process(|k: &String, w: &TimeWindow, rows: &[(String, i64)], out: &mut Vec<(String, i64, usize)>| {
                out.push((k.clone(), w.start, rows.len()))
            })
            .sink_to(windows.clone());
    }
    env.execute("batch order").unwrap();
    let mut keys = BTreeSet::new();
    for (subtask, rows) in sums.per_subtask() {
        let got: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let mut ascending = got.clone();
        ascending.sort();
        ascending.dedup();
        assert_eq!(
            got, ascending,
            "subtask {subtask}: one row per key, keys ascending"
        );
        keys.extend(got);
    }
    assert_eq!(keys, (-5..=5).collect::<BTreeSet<_>>());
    let mut results = 0;
    for (subtask, rows) in windows.per_subtask() {
        let order: Vec<(String, i64)> = rows.iter().map(|r| (r.0.clone(), r.1)).collect();
        let mut by_key_then_time = order.clone();
        by_key_then_time.sort();
        assert_eq!(order, by_key_then_time, "subtask {subtask}");
        results += rows.len();
    }
    assert_eq!(results, 15, "5 words, 3 windows each");
}

fn auto_mode_picks_batch_for_bounded_sources(p: usize) {
    let env = env(p).with_mode(RuntimeMode::Auto);
    flow! { env =>
        let out = from_collection(vec![("a", 1), ("b", 2), ("a", 3)])
            .key_by(|r| r.0)
            .reduce(|a, b| (a.0, a.1 + b.1))
            .collect();
    }
    let result = env.execute("auto").unwrap();
    assert_eq!(result.mode, RuntimeMode::Batch);
    assert_eq!(sorted(out.take()), vec![("a", 4), ("b", 2)]);
}

#[reduce_function]
fn longest(a: String, b: String) -> String {
    if b.len() > a.len() {
        b
    } else {
        a
    }
}

fn key_selector_and_reduce_as_fns(p: usize) {
    #[allow(clippy::ptr_arg)] // a key selector takes `&Row`, and the row is a `String`
    fn first_char(s: &String) -> char {
        s.chars().next().unwrap_or(' ')
    }
    let words = vec!["apple", "avocado", "banana", "blueberry", "cherry"];
    let env = env(p).with_mode(RuntimeMode::Batch);
    flow! { env =>
        let out = from_iter(words.into_iter().map(String::from))
            .key_by(first_char)
            .reduce(longest)
            .collect();
    }
    env.execute("fns").unwrap();
    assert_eq!(sorted(out.take()), vec!["avocado", "blueberry", "cherry"]);
}

/// Records the subtask each row passed through.
#[derive(Clone, Default, KeyedState)]
struct Tag {
    subtask: usize,
    parallelism: usize,
}

#[map_function]
impl Tag {
    fn open(&mut self, ctx: &RuntimeContext) {
        self.subtask = ctx.subtask_index();
        self.parallelism = ctx.parallelism();
    }
    fn map(&mut self, n: i64) -> (i64, usize, usize) {
        (n, self.subtask, self.parallelism)
    }
}

fn rebalance(p: usize) {
    let env = env(p);
    flow! { env =>
        let out = from_iter(1..=4000i64).rebalance().map(Tag::default()).collect();
    }
    env.execute("rebalance").unwrap();
    let rows = out.take();
    assert_eq!(
        sorted(rows.iter().map(|r| r.0).collect()),
        (1..=4000).collect::<Vec<_>>()
    );
    let subtasks: BTreeSet<usize> = rows.iter().map(|r| r.1).collect();
    assert_eq!(
        subtasks,
        (0..p).collect(),
        "round-robin reaches every subtask"
    );
    for s in 0..p {
        let n = rows.iter().filter(|r| r.1 == s).count();
        assert_eq!(n, 4000 / p, "subtask {s} got an unfair share");
    }
}

fn key_by_routes_each_key_to_one_subtask(p: usize) {
    let env = env(p);
    flow! { env =>
        let out = source(seq(5000), Watermarks::no_watermarks())
            .key_by(|n| n % 50)
            .map(Tag::default())
            .collect();
    }
    env.execute("routing").unwrap();
    let mut owner: BTreeMap<i64, BTreeSet<usize>> = BTreeMap::new();
    for (n, s, _) in out.take() {
        owner.entry(n % 50).or_default().insert(s);
    }
    assert_eq!(owner.len(), 50);
    assert!(
        owner.values().all(|s| s.len() == 1),
        "a key went to two subtasks: {owner:?}"
    );
    let used: BTreeSet<usize> = owner.values().flatten().copied().collect();
    assert_eq!(used.len(), p, "50 keys spread over every subtask");
}

fn explicit_parallelism(p: usize) {
    let env = env(p);
    flow! { env =>
        let out = source(seq(300), Watermarks::no_watermarks())
            .map(Tag::default()).parallelism(3)
            .collect();
    }
    env.execute("parallelism").unwrap();
    let rows = out.take();
    assert_eq!(rows.len(), 300);
    assert!(
        rows.iter().all(|r| r.2 == 3),
        "every instance reports parallelism 3"
    );
    assert_eq!(
        rows.iter().map(|r| r.1).collect::<BTreeSet<_>>(),
        (0..3).collect()
    );
}

fn union(p: usize) {
    let env = env(p);
    flow! { env =>
        let odds = source(seq(1000), Watermarks::no_watermarks()).filter(|n| n % 2 == 1);
        let tens = from_collection(vec![10_000i64, 20_000]);
        let out = source(NumberSequence::new(-5, -1), Watermarks::no_watermarks())
            .union(odds, tens)
            .map(|n| n + 1)
            .collect();
    }
    env.execute("union").unwrap();
    let mut expected: Vec<i64> = (-5..=-1)
        .chain((1..=1000).filter(|n| n % 2 == 1))
        .chain([10_000, 20_000])
        .map(|n| n + 1)
        .collect();
    expected.sort();
    assert_eq!(sorted(out.take()), expected);
}

fn fan_out_and_several_sinks(p: usize) {
    let env = env(p);
    flow! { env =>
        let nums = source(seq(100), Watermarks::no_watermarks()).map(|n| n * 10);
        let all = nums.collect();
        let big = nums.filter(|n| *n > 500).collect();
        let keyed = nums.key_by(|n| n % 3).reduce(|a, b| a.max(b)).collect();
    }
    env.execute("fan-out").unwrap();
    assert_eq!(
        sorted(all.take()),
        (1..=100).map(|n| n * 10).collect::<Vec<_>>()
    );
    assert_eq!(
        sorted(big.take()),
        (51..=100).map(|n| n * 10).collect::<Vec<_>>()
    );
    assert_eq!(keyed.take().len(), 100);
}

fn several_jobs_in_one_env(p: usize) {
    let env = env(p);
    flow! { env =>
        let a = from_collection(vec![1, 2, 3]).map(|n| n * 2).collect();
    }
    flow! { env =>
        let b = source(seq(10), Watermarks::monotonous()).collect();
    }
    env.execute("two blocks").unwrap();
    assert_eq!(sorted(a.take()), vec![2, 4, 6]);
    assert_eq!(sorted(b.take()), (1..=10).collect::<Vec<_>>());
}

fn two_executes_run_two_jobs(p: usize) {
    // As Flink: `execute` runs what was declared since the last one.
    let env = env(p);
    flow! { env =>
        let a = from_collection(vec![1, 2, 3]).map(|n| n * 2).collect();
    }
    let first = env.execute("first").unwrap();
    flow! { env =>
        let b = source(seq(10), Watermarks::no_watermarks()).map(|n| n + 100).name("second map").collect();
    }
    let second = env.execute("second").unwrap();
    assert_eq!(sorted(a.take()), vec![2, 4, 6]);
    assert_eq!(sorted(b.take()), (101..=110).collect::<Vec<_>>());
    assert_eq!(
        (first.job_name.as_str(), second.job_name.as_str()),
        ("first", "second")
    );
    assert!(first.operator("second map").is_none());
    assert_eq!(second.operator("second map").map(|m| m.rows_in), Some(10));
    assert!(env.execute("third").is_err(), "nothing left to run");
}

fn collection_order_is_kept(p: usize) {
    let env = env(p);
    flow! { env =>
        let out = from_collection(vec!["c", "a", "b"]).collect();
    }
    env.execute("order").unwrap();
    // A collection is read by one subtask, and `collect` runs in one (Flink's
    // `execute_and_collect`): the rows of one upstream subtask keep their order.
    assert_eq!(out.take(), vec!["c", "a", "b"]);
}

fn collect_keeps_the_order_of_one_upstream_subtask(p: usize) {
    let env = env(p);
    flow! { env =>
        // One source subtask and one map subtask: before `collect` ran in one subtask, its
        // rows were spread over `p` collect subtasks and came back reordered.
        let out = source(seq(5000), Watermarks::no_watermarks()).parallelism(1)
            .map(|n| n * 2).parallelism(1)
            .collect();
    }
    env.execute("order").unwrap();
    assert_eq!(out.take(), (1..=5000).map(|n| n * 2).collect::<Vec<_>>());
}

fn collect_right_after_key_by(p: usize) {
    // A keyed stream collected as it is (with a reduce sharing its `key_by`): `collect` then
    // runs in the `key_by`'s stage.
    let env = env(p);
    flow! { env =>
        let keyed = source(seq(10), Watermarks::no_watermarks()).key_by(|n| n % 2);
        let sums = keyed.reduce(|a, b| a + b).collect();
        let rows = keyed.collect();
    }
    env.execute("collect a keyed stream").unwrap();
    assert_eq!(sorted(rows.take()), (1..=10).collect::<Vec<_>>());
    assert_eq!(sums.take().len(), 10);
}

fn a_sink_takes_its_own_parallelism_and_name(p: usize) {
    let dir = tempfile::tempdir().unwrap();
    let env = env(p);
    flow! { env =>
        source(seq(1000), Watermarks::no_watermarks())
            .map(|n| n + 1)
            .sink_to(FileSink::row_format(dir.path()))
            .parallelism(1)
            .name("files");
    }
    let result = env.execute("sink parallelism").unwrap();
    assert_eq!(result.operator("files").map(|m| m.rows_in), Some(1000));
    // One subtask wrote every part: `part-<uuid>-0-<n>`.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.is_empty());
    assert!(
        names.iter().all(|n| n.rsplit('-').nth(1) == Some("0")),
        "{names:?}"
    );
    let rows: usize = names
        .iter()
        .map(|n| {
            std::fs::read_to_string(dir.path().join(n))
                .unwrap()
                .lines()
                .count()
        })
        .sum();
    assert_eq!(rows, 1000);
}

#[test]
fn print_with_parallelism_1_runs_in_one_subtask() {
    let env = env(2);
    flow! { env =>
        source(seq(10), Watermarks::no_watermarks())
            .map(|n| n * 2)
            .print()
            .parallelism(1);
    }
    let plan = env.explain(flow::ExplainFormat::Text);
    assert!(
        plan.contains("stage 1 (parallelism 1)\n  #2 print <- #1 (rebalance)"),
        "{plan}"
    );
}

fn metrics_count_rows_per_operator(p: usize) {
    let env = env(p);
    flow! { env =>
        let out = source(seq(1000), Watermarks::no_watermarks())
            .flat_map(|n| vec![n; 2]).name("double")
            .filter(|n| n % 10 == 0).name("tens")
            .collect();
    }
    let result = env.execute("metrics").unwrap();
    assert_eq!(out.take().len(), 200);
    let double = result.operator("double").unwrap();
    assert_eq!((double.rows_in, double.rows_out), (1000, 2000));
    let tens = result.operator("tens").unwrap();
    assert_eq!((tens.rows_in, tens.rows_out), (2000, 200));
    assert_eq!(result.operators[0].rows_out, 1000, "source rows");
}

fn broadcast_sends_every_row_to_every_subtask(p: usize) {
    let env = StreamEnv::new().with_parallelism(p);
    flow! { env =>
        // A parallel source: without the broadcast each row would stay in its subtask.
        let out = source(NumberSequence::new(1, 3), Watermarks::no_watermarks())
            .broadcast()
            .map(|n| n * 10)
            .collect();
    }
    env.execute("broadcast").unwrap();
    // One copy of every row per subtask of the `map`.
    let expected: Vec<i64> = (0..p).flat_map(|_| [10, 20, 30]).collect();
    assert_eq!(sorted(out.take()), sorted(expected));
}

at_parallelism!(
    broadcast_sends_every_row_to_every_subtask,
    map,
    filter,
    flat_map,
    reduce_streaming,
    reduce_batch,
    batch_results_come_grouped_by_key,
    auto_mode_picks_batch_for_bounded_sources,
    key_selector_and_reduce_as_fns,
    rebalance,
    key_by_routes_each_key_to_one_subtask,
    explicit_parallelism,
    union,
    fan_out_and_several_sinks,
    several_jobs_in_one_env,
    two_executes_run_two_jobs,
    collection_order_is_kept,
    collect_keeps_the_order_of_one_upstream_subtask,
    collect_right_after_key_by,
    a_sink_takes_its_own_parallelism_and_name,
    metrics_count_rows_per_operator,
);
