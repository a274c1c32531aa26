//! Kafka positions in checkpoints: a job reading a topic is killed with SIGKILL at random
//! moments and restored with `--restore latest`; with the FileSink's two-phase commit its
//! output equals, row for row, that of a run that was never killed.

#![cfg(feature = "kafka")]

mod common;
mod kafka_common;

use common::{finished_rows, has_checkpoint, Rng};
use kafka_common::{bootstrap, produce_people, topic};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn run(topic: &str, out: &Path, checkpoints: &Path) -> Command {
    let mut cmd = common::example("fault_tolerance");
    cmd.args(["--job", "kafka-count", "--topic", topic])
        .args(["--bootstrap-servers", bootstrap()])
        .args(["--pace", "20", "--parallelism", "2"])
        .args(["--checkpoint-interval", "25"])
        .env("FLOW_CHECKPOINT_STORAGE_DELAY_MS", "40")
        .arg("--output")
        .arg(out)
        .arg("--checkpoint-dir")
        .arg(checkpoints)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
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
    let mut rng = Rng(0x5eed);
    let mut killed = 0;
    loop {
        let mut cmd = run(&t, &out, &checkpoints);
        if has_checkpoint(&checkpoints) {
            cmd.args(["--restore", "latest"]);
        }
        let before = finished_rows(&out).len();
        let mut child = cmd.spawn().unwrap();
        if killed < 6 {
            // Kill it mid-stream: once it committed output of its own (a Kafka consumer takes
            // a second or two to fetch its first records), after a random delay.
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while finished_rows(&out).len() <= before
                && child.try_wait().unwrap().is_none()
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_millis(rng.between(0, 600)));
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap();
                child.wait().unwrap();
                killed += 1;
                continue;
            }
        }
        let done = child.wait_with_output().unwrap();
        assert!(
            done.status.success(),
            "after {killed} kills: {}",
            String::from_utf8_lossy(&done.stderr)
        );
        break;
    }
    assert!(killed >= 4, "only {killed} runs were killed mid-way");
    let got = finished_rows(&out);
    assert_eq!(got.len(), expected.len(), "rows after {killed} kills");
    assert!(got == expected, "the rows differ after {killed} kills");
}
