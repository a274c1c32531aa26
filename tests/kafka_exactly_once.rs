//! Kafka positions in checkpoints: a job reading a topic is killed with SIGKILL at random
//! moments and restored with `--restore latest`; with the FileSink's two-phase commit its
//! output equals, row for row, that of a run that was never killed. And Kafka to Kafka: the
//! same job writing through the exactly-once Kafka sink (transactions, on the noida-db broker)
//! is killed 20 times; a `read_committed` consumer then sees every output row once.

#![cfg(feature = "kafka")]

mod common;
mod kafka_common;

use common::{finished_rows, latest_checkpoint, run_with_kills, Kills, Rng};
use flow::connectors::format::Json;
use flow::prelude::*;
use kafka_common::{bootstrap, produce_people, produce_people_to, read_committed, topic, topic_on};
use std::path::Path;
use std::process::{Command, Stdio};

/// The `fault_tolerance` example's `job` at parallelism 2, reading `topic` of `servers`,
/// slowed down by `pace`, with checkpoints every 25 ms into `checkpoints` (on storage slowed
/// down, so that kills land while one is in flight too).
fn chaos_job(job: &str, servers: &str, topic: &str, pace: &str, checkpoints: &Path) -> Command {
    chaos_job_at(2, job, servers, topic, pace, checkpoints)
}

/// [`chaos_job`] at `parallelism`.
fn chaos_job_at(
    parallelism: usize,
    job: &str,
    servers: &str,
    topic: &str,
    pace: &str,
    checkpoints: &Path,
) -> Command {
    let mut cmd = common::example("fault_tolerance");
    let p = parallelism.to_string();
    cmd.args(["--job", job, "--topic", topic])
        .args(["--bootstrap-servers", servers])
        .args(["--pace", pace, "--parallelism", &p])
        .args(["--checkpoint-interval", "25"])
        .env("FLOW_CHECKPOINT_STORAGE_DELAY_MS", "40")
        .arg("--checkpoint-dir")
        .arg(checkpoints)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn run(topic: &str, out: &Path, checkpoints: &Path) -> Command {
    let mut cmd = chaos_job("kafka-count", bootstrap(), topic, "20", checkpoints);
    cmd.arg("--output").arg(out);
    cmd
}

#[test]
fn a_killed_kafka_job_restored_from_checkpoints_writes_every_row_once() {
    let t = topic("exactly-once-in", 2);
    produce_people(&t, 0, 99_999);
    let root = tempfile::tempdir().unwrap();
    let reference = run(&t, &root.path().join("ref"), &root.path().join("ref-ck"))
        .output()
        .unwrap();
    assert!(
        reference.status.success(),
        "{}",
        String::from_utf8_lossy(&reference.stderr)
    );
    let expected = finished_rows(&root.path().join("ref"));
    assert!(!expected.is_empty());

    let (out, checkpoints) = (root.path().join("out"), root.path().join("ck"));
    // Kill it mid-stream: once it committed output of its own (a Kafka consumer takes a
    // second or two to fetch its first records), after a random delay.
    let killed = run_with_kills(
        &|| run(&t, &out, &checkpoints),
        &checkpoints,
        &Kills {
            kills: 6,
            delay: (0, 600),
            progress: &|| finished_rows(&out).len() as u64,
            needed: 1,
        },
        &mut Rng(0x5eed),
    );
    assert!(killed >= 4, "only {killed} runs were killed mid-way");
    let got = finished_rows(&out);
    assert_eq!(got.len(), expected.len(), "rows after {killed} kills");
    assert!(got == expected, "the rows differ after {killed} kills");
}

/// The `kafka-to-kafka` job's output row.
#[derive(Row, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct KeyCount {
    key: i64,
    count: i64,
}

fn kafka_to_kafka(input: &str, output: &str, checkpoints: &Path) -> Command {
    kafka_to_kafka_at(2, input, output, checkpoints)
}

/// [`kafka_to_kafka`] at `parallelism`.
fn kafka_to_kafka_at(parallelism: usize, input: &str, output: &str, checkpoints: &Path) -> Command {
    let servers = bootstrap();
    let mut cmd = chaos_job_at(
        parallelism,
        "kafka-to-kafka",
        servers,
        input,
        "5",
        checkpoints,
    );
    cmd.args(["--output-topic", output]);
    cmd
}

/// The committed output of `kafka-to-kafka` over `rows` rows: the rolling count of each key
/// `id % 100`, 1, 2, ..., its number of rows, once each, sorted.
fn rolling_counts(rows: i64) -> Vec<KeyCount> {
    let per_key = rows / 100;
    (0..100)
        .flat_map(|key| (1..=per_key).map(move |count| KeyCount { key, count }))
        .collect()
}

#[test]
fn a_killed_kafka_to_kafka_job_commits_every_output_row_once() {
    const ROWS: i64 = 150_000;
    const KILLS: usize = 20;
    let servers = bootstrap();
    let input = topic_on(servers, "k2k-in", 2);
    let output = topic_on(servers, "k2k-out", 2);
    produce_people_to(servers, &input, 0, ROWS - 1);
    let root = tempfile::tempdir().unwrap();
    let checkpoints = root.path().join("ck");
    let started = std::time::Instant::now();
    // Once the run completed two checkpoints of its own (its consumer fetches rows, and every
    // run makes progress), after a random delay: mid-transaction, mid-checkpoint, between the
    // two.
    let killed = run_with_kills(
        &|| kafka_to_kafka(&input, &output, &checkpoints),
        &checkpoints,
        &Kills {
            kills: KILLS,
            delay: (0, 300),
            progress: &|| latest_checkpoint(&checkpoints),
            needed: 2,
        },
        &mut Rng(0x004b_324b),
    );
    let mut got = read_committed(servers, &output, Json::<KeyCount>::new());
    got.sort();
    let expected = rolling_counts(ROWS);
    assert_eq!(
        got.len(),
        expected.len(),
        "committed rows after {killed} kills (in {:?})",
        started.elapsed()
    );
    assert!(
        got == expected,
        "the committed rows differ after {killed} kills"
    );
    assert!(
        killed >= KILLS,
        "only {killed} runs were killed mid-way (the job ended first)"
    );
}

/// The same job killed at one parallelism and restored at another each time (2, 3, 1, 4, 2,
/// ...): a restore commits the transactions the checkpoint holds for every old subtask
/// (those of subtasks the new run does not have too) and aborts what they left open, so a
/// `read_committed` consumer sees every output row once.
#[test]
fn a_kafka_to_kafka_job_restored_at_other_parallelisms_commits_every_output_row_once() {
    const ROWS: i64 = 60_000;
    const KILLS: usize = 8;
    const PARALLELISMS: [usize; 4] = [2, 3, 1, 4];
    let servers = bootstrap();
    let input = topic_on(servers, "k2k-rescale-in", 4);
    let output = topic_on(servers, "k2k-rescale-out", 2);
    produce_people_to(servers, &input, 0, ROWS - 1);
    let root = tempfile::tempdir().unwrap();
    let checkpoints = root.path().join("ck");
    let runs = std::cell::Cell::new(0);
    let killed = run_with_kills(
        &|| {
            let p = PARALLELISMS[runs.get() % PARALLELISMS.len()];
            runs.set(runs.get() + 1);
            kafka_to_kafka_at(p, &input, &output, &checkpoints)
        },
        &checkpoints,
        &Kills {
            kills: KILLS,
            delay: (0, 300),
            progress: &|| latest_checkpoint(&checkpoints),
            needed: 2,
        },
        &mut Rng(0x0005_ca1e),
    );
    assert!(
        killed >= KILLS,
        "only {killed} runs were killed mid-way (the job ended first)"
    );
    let mut got = read_committed(servers, &output, Json::<KeyCount>::new());
    got.sort();
    let expected = rolling_counts(ROWS);
    assert_eq!(
        got.len(),
        expected.len(),
        "committed rows after {killed} kills at parallelisms {PARALLELISMS:?}"
    );
    assert!(
        got == expected,
        "the committed rows differ after {killed} kills"
    );
}
