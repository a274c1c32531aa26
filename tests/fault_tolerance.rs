//! Exactly-once state, end to end: the `fault_tolerance` example's jobs are killed with
//! SIGKILL at random moments and restarted with `--restore latest` each time; their finished
//! part files must equal, row for row, those of a run that never crashed. Also: restoring at
//! another parallelism, and the errors of a restore that cannot work.

mod common;

use common::{finished_rows, has_checkpoint, run_with_kills, signal, Kills, Rng};
use flow::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Job<'a> {
    name: &'a str,
    rows: u64,
    pace: u64,
}

impl Job<'_> {
    fn command(&self, out: &Path, checkpoints: &Path, parallelism: usize) -> Command {
        let mut cmd = common::example("fault_tolerance");
        cmd.args(["--job", self.name])
            .args(["--rows", &self.rows.to_string()])
            .args(["--pace", &self.pace.to_string()])
            .args(["--parallelism", &parallelism.to_string()])
            .args(["--checkpoint-interval", "25"])
            // Slow checkpoint storage: most of the time a checkpoint is in flight (its barrier
            // passed, its metadata not written yet), so that the kills land there too.
            .env("FLOW_CHECKPOINT_STORAGE_DELAY_MS", "40")
            .arg("--output")
            .arg(out)
            .arg("--checkpoint-dir")
            .arg(checkpoints)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    /// A run that is never interrupted.
    fn reference(&self, root: &Path, parallelism: usize) -> Vec<String> {
        let out = root.join("reference");
        let run = self
            .command(&out, &root.join("reference-checkpoints"), parallelism)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}: {}",
            self.name,
            String::from_utf8_lossy(&run.stderr)
        );
        finished_rows(&out)
    }

    /// Runs the job until it completes, killing it `kills` times after a random delay and
    /// restarting it from its latest checkpoint; returns the finished rows and how many runs
    /// were really killed (not already done).
    fn with_crashes(&self, root: &Path, kills: usize, rng: &mut Rng) -> (Vec<String>, usize) {
        let out = root.join("chaos");
        let checkpoints = root.join("chaos-checkpoints");
        let started = Instant::now();
        let killed = run_with_kills(
            &|| self.command(&out, &checkpoints, 2),
            &checkpoints,
            &Kills {
                kills,
                delay: (20, 400),
                progress: &|| 0,
                needed: 0,
            },
            rng,
        );
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "{} took {:?}",
            self.name,
            started.elapsed()
        );
        (finished_rows(&out), killed)
    }
}

/// How many times the chaos test kills each job.
const KILLS: usize = 20;

static JOBS: [Job<'static>; 3] = [
    Job {
        name: "state-access",
        rows: 600_000,
        pace: 50,
    },
    Job {
        name: "keyed-reduce",
        rows: 600_000,
        pace: 50,
    },
    Job {
        name: "event-time-window",
        rows: 600_000,
        pace: 50,
    },
];

/// Files into PostgreSQL, exactly once: `files-to-postgres` (file positions, a keyed reduce,
/// a JdbcSink writing prepared transactions) killed 10 times and restored each time leaves the
/// table equal, row for row, to a run that never crashed, and no prepared transaction behind.
#[cfg(feature = "postgres")]
#[test]
fn files_to_postgres_killed_and_restored_equals_a_clean_run() {
    #[path = "jdbc_common/mod.rs"]
    mod jdbc_common;
    let db = jdbc_common::Db::fresh("ft_files");
    db.exec("CREATE TABLE ft_files.reference (key BIGINT, count BIGINT); CREATE TABLE ft_files.chaos (key BIGINT, count BIGINT)");
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    // 300,000 numbers: one big file (split in several ranges) and smaller ones.
    let nums = |r: std::ops::Range<i64>| r.map(|n| format!("{n}\n")).collect::<String>();
    std::fs::write(input.join("big.txt"), nums(1..150_001)).unwrap();
    for (i, start) in (150_001..300_001).step_by(30_000).enumerate() {
        std::fs::write(
            input.join(format!("part-{i}.txt")),
            nums(start..start + 30_000),
        )
        .unwrap();
    }
    let command = |table: &str, checkpoints: &Path| {
        let mut cmd = common::example("fault_tolerance");
        cmd.args([
            "--job",
            "files-to-postgres",
            "--pace",
            "50",
            "--parallelism",
            "2",
        ])
        .args([
            "--checkpoint-interval",
            "25",
            "--table",
            table,
            "--jdbc-url",
        ])
        .arg(jdbc_common::url())
        .arg("--input")
        .arg(&input)
        .arg("--checkpoint-dir")
        .arg(checkpoints)
        .env("FLOW_CHECKPOINT_STORAGE_DELAY_MS", "40")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        cmd
    };
    let reference = command("ft_files.reference", &root.path().join("ck-ref"))
        .output()
        .unwrap();
    assert!(
        reference.status.success(),
        "{}",
        String::from_utf8_lossy(&reference.stderr)
    );
    let mut rng = Rng(0x000f_11e5);
    let checkpoints = root.path().join("ck");
    let killed = run_with_kills(
        &|| command("ft_files.chaos", &checkpoints),
        &checkpoints,
        &Kills {
            kills: 10,
            delay: (20, 400),
            progress: &|| 0,
            needed: 0,
        },
        &mut rng,
    );
    assert!(killed >= 10, "only {killed} runs were killed mid-way");
    let rows = |t: &str| {
        db.rows(&format!(
            "SELECT key, count FROM ft_files.{t} ORDER BY key, count"
        ))
    };
    let expected = rows("reference");
    assert_eq!(expected.len(), 300_000);
    let got = rows("chaos");
    assert_eq!(got.len(), expected.len(), "rows after {killed} kills");
    assert!(got == expected, "rows differ after {killed} kills");
    assert_eq!(
        db.value(
            "SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'fault-tolerance-ft_files.%'"
        ),
        "0"
    );
}

/// 20 kills per job, each followed by a restart from the latest checkpoint: no row lost, none
/// duplicated.
#[test]
fn killed_jobs_restored_from_checkpoints_write_every_row_exactly_once() {
    let seed: u64 = std::env::var("FLOW_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f10e);
    eprintln!("chaos seed {seed} (set FLOW_CHAOS_SEED to replay; job i draws from seed + i)");
    for_each_job(|i, job| {
        let mut rng = Rng::new(seed.wrapping_add(i as u64));
        let root = tempfile::tempdir().unwrap();
        let expected = job.reference(root.path(), 2);
        assert!(!expected.is_empty());
        let (got, killed) = job.with_crashes(root.path(), KILLS, &mut rng);
        assert!(
            killed >= KILLS,
            "{}: only {killed} runs were killed mid-way (the job ended first)",
            job.name
        );
        assert_eq!(
            got.len(),
            expected.len(),
            "{}: {} rows after {killed} kills, {} without crashes",
            job.name,
            got.len(),
            expected.len()
        );
        assert!(
            got == expected,
            "{}: rows differ after {killed} kills",
            job.name
        );
    });
}

/// A checkpoint taken at parallelism 2 restored at 1 and at 4: keyed state moves with its key
/// groups, source positions with their readers.
#[test]
fn a_checkpoint_restores_at_another_parallelism() {
    for_each_job(|_, job| {
        let root = tempfile::tempdir().unwrap();
        let expected = job.reference(root.path(), 2);
        for p in [1, 4] {
            let run = root.path().join(format!("p{p}"));
            let out = run.join("out");
            let checkpoints = run.join("checkpoints");
            let mut child = job.command(&out, &checkpoints, 2).spawn().unwrap();
            while !has_checkpoint(&checkpoints) {
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(100));
            child.kill().unwrap();
            child.wait().unwrap();
            let done = job
                .command(&out, &checkpoints, p)
                .args(["--restore", "latest"])
                .output()
                .unwrap();
            assert!(
                done.status.success(),
                "{} restored at {p}: {}",
                job.name,
                String::from_utf8_lossy(&done.stderr)
            );
            assert!(
                finished_rows(&out) == expected,
                "{}: restored at parallelism {p}, the rows differ",
                job.name
            );
        }
    });
}

/// SIGTERM stops a streaming job with a savepoint (Flink's stop-with-savepoint): it exits
/// successfully naming the savepoint, the output up to it is committed, and the job started
/// again from it ends with the rows of a run that was never stopped.
#[test]
fn sigterm_stops_with_a_savepoint_that_restores_exactly() {
    for_each_job(|_, job| {
        let root = tempfile::tempdir().unwrap();
        let expected = job.reference(root.path(), 2);
        let out = root.path().join("out");
        let savepoints = root.path().join("savepoints");
        let mut cmd = job.command(&out, &root.path().join("unused"), 2);
        let child = cmd
            .args(["--savepoint-dir", savepoints.to_str().unwrap()])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        signal(&child, "TERM");
        let stopped = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&stopped.stderr);
        assert!(stopped.status.success(), "{}: {stderr}", job.name);
        let path = stderr
            .lines()
            .find_map(|l| {
                l.split_once("stopped with a savepoint: ")
                    .map(|(_, p)| p.to_string())
            })
            .unwrap_or_else(|| panic!("{}: no savepoint printed: {stderr}", job.name));
        assert!(Path::new(&path).join("_metadata").is_file(), "{path}");
        let partial = finished_rows(&out);
        assert!(
            partial.len() < expected.len(),
            "{}: stopped too late",
            job.name
        );
        let done = job
            .command(&out, &root.path().join("unused"), 2)
            .args(["--restore", &path])
            .output()
            .unwrap();
        assert!(
            done.status.success(),
            "{}: {}",
            job.name,
            String::from_utf8_lossy(&done.stderr)
        );
        assert!(
            finished_rows(&out) == expected,
            "{}: restored from the savepoint, the rows differ",
            job.name
        );
    });
}

/// Runs `test` on each job of [`JOBS`] (with its index), the three at once, each on a thread
/// of its own: the jobs are paced (they mostly sleep), so together they take about as long
/// as the longest. Fails as the first job that fails.
fn for_each_job(test: impl Fn(usize, &Job<'static>) + Sync) {
    std::thread::scope(|s| {
        let test = &test;
        let runs: Vec<_> = (JOBS.iter().enumerate())
            .map(|(i, job)| s.spawn(move || test(i, job)))
            .collect();
        for run in runs {
            if let Err(panic) = run.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
}

/// The event-time window job of the drain tests: one subtask reads 1, 2, 3, ... (paced), so
/// a run that ends early has counted exactly the numbers 1 to some `n`.
const WINDOWS: Job<'static> = Job {
    name: "event-time-window",
    rows: 600_000,
    pace: 50,
};

/// Starts [`WINDOWS`] at parallelism 1 under `root` (with `extra` flags) and waits until it
/// runs: it took a checkpoint, so its signal handlers are in place.
fn running_windows(root: &Path, extra: &[&str]) -> std::process::Child {
    let checkpoints = root.join("checkpoints");
    let child = (WINDOWS
        .command(&root.join("out"), &checkpoints, 1)
        .args(extra))
    .spawn()
    .unwrap();
    let started = Instant::now();
    while !has_checkpoint(&checkpoints) {
        assert!(started.elapsed() < Duration::from_secs(60), "no checkpoint");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    child
}

/// The finished window counts under `out`, sorted, as `(start, key, count)`.
fn window_counts(out: &Path) -> Vec<(i64, i64, i64)> {
    let mut got: Vec<(i64, i64, i64)> = finished_rows(out)
        .iter()
        .map(|l| {
            let f: Vec<i64> = l.split(' ').map(|f| f.parse().unwrap()).collect();
            (f[0], f[1], f[2])
        })
        .collect();
    got.sort_unstable();
    got
}

/// What [`WINDOWS`] writes for the numbers 1 to `n`, sorted.
fn windows_of(n: i64) -> Vec<(i64, i64, i64)> {
    let mut counts = std::collections::BTreeMap::new();
    for n in 1..=n {
        *counts.entry((n - n % 1000, n % 10)).or_insert(0) += 1;
    }
    counts.into_iter().map(|((w, k), c)| (w, k, c)).collect()
}

/// Checks that the job drained mid-stream: the output under `out` holds every window of
/// exactly the numbers 1 to those it counted, and those are fewer than its input.
fn assert_drained(out: &Path, stderr: &str) {
    let got = window_counts(out);
    let read: i64 = got.iter().map(|r| r.2).sum();
    assert!(
        read > 0 && read < WINDOWS.rows as i64,
        "the job counted {read} of {} rows: not drained mid-stream:\n{stderr}",
        WINDOWS.rows
    );
    assert_eq!(got, windows_of(read), "drained after {read} rows");
}

/// SIGUSR1 drains a streaming job (as Flink's `stop --drain`): its source ends where it is, as
/// at the end of its input, so that every window of the rows it read fires, the part files
/// are committed and the job ends well.
#[test]
fn sigusr1_drains_a_job_and_every_window_of_the_rows_read_fires() {
    let root = tempfile::tempdir().unwrap();
    let child = running_windows(root.path(), &[]);
    signal(&child, "USR1");
    let drained = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&drained.stderr);
    assert!(drained.status.success(), "{stderr}");
    assert_drained(&root.path().join("out"), &stderr);
}

/// The first of a drain and a stop with a savepoint wins: a SIGTERM while the job drains is
/// ignored (it drains, and writes no savepoint); a SIGUSR1 while it stops is ignored (its
/// savepoint holds the open windows, none of which fired, so the job restored from it ends
/// with the output of a run never stopped). The signals come one after the other, so this
/// shows the rule; the race of two at once is the unit test's (`exec::signal`).
#[test]
fn the_first_of_a_drain_and_a_stop_with_a_savepoint_wins() {
    let root = tempfile::tempdir().unwrap();
    let savepoints = root.path().join("savepoints");
    let sp = ["--savepoint-dir", savepoints.to_str().unwrap()];
    let child = running_windows(root.path(), &sp);
    // At once: the job is still draining (were both pending together, the lower signal
    // number, SIGUSR1, would be handled first all the same).
    signal(&child, "USR1");
    signal(&child, "TERM");
    let drained = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&drained.stderr);
    assert!(drained.status.success(), "{stderr}");
    assert!(!stderr.contains("stopped with a savepoint"), "{stderr}");
    assert!(
        stderr.contains("SIGTERM ignored: the job drains"),
        "the ignored SIGTERM is not said: {stderr}"
    );
    assert_drained(&root.path().join("out"), &stderr);

    let root = tempfile::tempdir().unwrap();
    let savepoints = root.path().join("savepoints");
    let sp = ["--savepoint-dir", savepoints.to_str().unwrap()];
    let child = running_windows(root.path(), &sp);
    signal(&child, "TERM");
    // Later, so that SIGTERM is handled first; soon, while the job still stops (its
    // savepoint takes its storage delay, 40 ms), so that the ignored SIGUSR1 is said.
    std::thread::sleep(Duration::from_millis(10));
    signal(&child, "USR1");
    let stopped = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&stopped.stderr);
    assert!(stopped.status.success(), "{stderr}");
    assert!(
        stderr.contains("SIGUSR1 ignored: the job is stopping"),
        "the ignored SIGUSR1 is not said: {stderr}"
    );
    let path = stderr
        .lines()
        .find_map(|l| l.split_once("stopped with a savepoint: ").map(|(_, p)| p))
        .unwrap_or_else(|| panic!("no savepoint printed: {stderr}"));
    let out = root.path().join("out");
    assert!(
        window_counts(&out).len() < windows_of(WINDOWS.rows as i64).len(),
        "stopped too late"
    );
    let done = (WINDOWS.command(&out, &root.path().join("checkpoints"), 1))
        .args(["--restore", path])
        .output()
        .unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(
        window_counts(&out),
        windows_of(WINDOWS.rows as i64),
        "restored from the savepoint"
    );
}

/// A keyed sum over `rows` with a collect sink, checkpointing to `dir` (restoring `restore`),
/// for rows of type `$t`: the same plan whatever the type, so only the state's type differs.
macro_rules! run_sum {
    ($t:ty: $dir:expr, $restore:expr, $rows:expr, $name:expr) => {{
        let dir: &Path = $dir;
        let restore: Option<&Path> = $restore;
        let rows: Vec<$t> = $rows;
        let mut env = StreamEnv::new().with_checkpoint_dir(dir, 1);
        if let Some(r) = restore {
            env = env.with_restore(r.to_str().unwrap());
        }
        flow! { env =>
            let out = from_collection(rows, Watermarks::no_watermarks())
                .key_by(|n| *n)
                .reduce(|a, b| a + b)
                .collect();
        }
        env.execute($name).map(|_| out.take())
    }};
}

fn run_reduce(
    dir: &Path,
    restore: Option<&Path>,
    rows: Vec<i64>,
    name: &str,
) -> flow::Result<Vec<i64>> {
    run_sum!(i64: dir, restore, rows, name)
}

fn only_checkpoint(dir: &Path) -> PathBuf {
    let mut chk: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(chk.len(), 1, "{chk:?}");
    chk.pop().unwrap()
}

fn state_error(e: flow::Error) -> (String, Option<PathBuf>, String) {
    match e {
        flow::Error::State {
            operator,
            file,
            message,
        } => (operator, file, message),
        other => panic!("expected a state error, got {other}"),
    }
}

#[test]
fn a_missing_checkpoint_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("chk-9");
    let e = run_reduce(dir.path(), Some(&missing), vec![1i64], "job").unwrap_err();
    let msg = e.to_string();
    let (_, file, _) = state_error(e);
    assert_eq!(file, Some(missing.join("_metadata")), "{msg}");

    let e = StreamEnv::new().with_restore("latest");
    flow! { e => from_collection(vec![1i64], Watermarks::no_watermarks()).print(); }
    let msg = e.execute("job").unwrap_err().to_string();
    assert!(msg.contains("--checkpoint-dir"), "{msg}");
}

#[test]
fn a_checkpoint_of_another_job_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    run_reduce(dir.path(), None, vec![1i64, 2], "counts").unwrap();
    let chk = only_checkpoint(dir.path());
    let e = run_reduce(dir.path(), Some(&chk), vec![1i64], "other").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("`counts`") && msg.contains("`other`"), "{msg}");
    assert!(chk.join("_metadata").is_file(), "nothing is removed");
}

#[test]
fn state_of_another_type_is_an_error_naming_the_operator_and_file() {
    let dir = tempfile::tempdir().unwrap();
    run_reduce(dir.path(), None, vec![1i64, 2], "counts").unwrap();
    let chk = only_checkpoint(dir.path());
    let before: Vec<_> = std::fs::read_dir(&chk)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let e = run_sum!(i32: dir.path(), Some(&chk), vec![1i32], "counts").unwrap_err();
    let msg = e.to_string();
    let (operator, file, message) = state_error(e);
    assert!(operator.starts_with("reduce-"), "{msg}");
    let file = file.expect("names the file");
    assert!(file.starts_with(&chk), "{msg}");
    assert!(message.contains("i64") && message.contains("i32"), "{msg}");
    assert!(message.contains("uid"), "says what to do: {msg}");
    let after: Vec<_> = std::fs::read_dir(&chk)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(before, after, "the checkpoint is left as it was");
}

#[test]
fn a_corrupt_state_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    run_reduce(dir.path(), None, vec![1i64, 2, 3], "counts").unwrap();
    let chk = only_checkpoint(dir.path());
    let state = std::fs::read_dir(&chk)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("reduce-")
        })
        .expect("the reduce's state file");
    let bytes = std::fs::read(&state).unwrap();
    std::fs::write(&state, &bytes[..bytes.len() - 3]).unwrap();
    let e = run_reduce(dir.path(), Some(&chk), vec![1i64], "counts").unwrap_err();
    let msg = e.to_string();
    let (_, file, message) = state_error(e);
    assert_eq!(file.as_deref(), Some(state.as_path()), "{msg}");
    assert!(message.contains("corrupt"), "{msg}");

    std::fs::remove_file(&state).unwrap();
    let e = run_reduce(dir.path(), Some(&chk), vec![1i64], "counts").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains(&state.display().to_string()), "{msg}");
}

#[test]
fn restored_state_continues_where_the_checkpoint_left_it() {
    // The first run ends with a final checkpoint: every key's sum, the source at its end.
    let dir = tempfile::tempdir().unwrap();
    let first = run_reduce(dir.path(), None, vec![1i64, 1, 2], "sums").unwrap();
    assert_eq!(first.len(), 3);
    let chk = only_checkpoint(dir.path());
    // Restored, the collection source skips the 3 rows it emitted and reads the 2 after them;
    // the sums go on from the saved ones.
    let mut again = run_reduce(dir.path(), Some(&chk), vec![1i64, 1, 2, 1, 2], "sums").unwrap();
    again.sort();
    assert_eq!(again, [3, 4]);
}

/// A keyed sum with `.uid("sums")`, optionally with a `map` added before it.
fn sums_with_uid(
    dir: &Path,
    restore: Option<&Path>,
    rows: Vec<i64>,
    extra_map: bool,
) -> flow::Result<Vec<i64>> {
    let mut env = StreamEnv::new().with_checkpoint_dir(dir, 1);
    if let Some(r) = restore {
        env = env.with_restore(r.to_str().unwrap());
    }
    if extra_map {
        flow! { env =>
            let out = from_collection(rows, Watermarks::no_watermarks())
                .filter(|n| *n > 0)
                .key_by(|n| *n)
                .reduce(|a, b| a + b)
                .uid("sums")
                .collect();
        }
        env.execute("sums").map(|_| out.take())
    } else {
        flow! { env =>
            let out = from_collection(rows, Watermarks::no_watermarks())
                .key_by(|n| *n)
                .reduce(|a, b| a + b)
                .uid("sums")
                .collect();
        }
        env.execute("sums").map(|_| out.take())
    }
}

#[test]
fn a_uid_keeps_an_operator_s_state_when_the_pipeline_before_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    sums_with_uid(dir.path(), None, vec![1, 1, 2], false).unwrap();
    let chk = only_checkpoint(dir.path());
    let files: Vec<String> = std::fs::read_dir(&chk)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(files.iter().any(|f| f.starts_with("sums.")), "{files:?}");
    // A map added before the reduce moves it in the plan; its uid keeps its state.
    let mut again = sums_with_uid(dir.path(), Some(&chk), vec![1, 1, 2, 1, 2], true).unwrap();
    again.sort();
    assert_eq!(again, [3, 4]);
}

#[test]
fn state_for_an_operator_the_job_lacks_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    sums_with_uid(dir.path(), None, vec![1, 2], false).unwrap();
    let chk = only_checkpoint(dir.path());
    // The same job name, but a plan without the `sums` operator.
    let env = StreamEnv::new().with_restore(chk.to_str().unwrap());
    flow! { env =>
        let out = from_collection(vec![1i64], Watermarks::no_watermarks())
            .key_by(|n| *n)
            .reduce(|a, b| a + b)
            .collect();
    }
    let e = env.execute("sums").unwrap_err();
    let msg = e.to_string();
    let (operator, file, message) = state_error(e);
    assert_eq!(operator, "sums", "{msg}");
    assert_eq!(file, Some(chk.join("_metadata")), "{msg}");
    assert!(message.contains("no operator"), "{msg}");
    drop(out);

    // Allowed to drop it, the job starts: the source skips the 2 rows it had emitted, the
    // reduce (not in the checkpoint) starts empty.
    let env = StreamEnv::new()
        .with_restore(chk.to_str().unwrap())
        .with_allow_non_restored_state(true);
    flow! { env =>
        let out = from_collection(vec![1i64, 2, 5, 5], Watermarks::no_watermarks())
            .key_by(|n| *n)
            .reduce(|a, b| a + b)
            .collect();
    }
    env.execute("sums").unwrap();
    assert_eq!(out.take(), [5, 10]);
}

fn slow(n: i64) -> i64 {
    if n % 1000 == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    n
}

/// Without `--checkpoint-dir` a source's positions and a sink's pending files need no
/// storage (they are committed when the checkpoint completes), so a stateless job still
/// checkpoints; keyed state would be lost, so a stateful job's operator declines.
#[test]
fn without_a_checkpoint_dir_only_operators_with_state_decline() {
    let out = tempfile::tempdir().unwrap();
    let env = StreamEnv::new().with_checkpoint_interval(Some(Duration::from_millis(10)));
    flow! { env =>
        source(NumberSequence::new(1, 300_000), Watermarks::no_watermarks())
            .map(slow)
            .sink_to(FileSink::row_format(out.path()));
    }
    let stateless = env.execute("stateless").unwrap();
    assert!(
        stateless.checkpoints.completed > 0,
        "{:?}",
        stateless.checkpoints
    );
    assert_eq!(finished_rows(out.path()).len(), 300_000);

    let env = StreamEnv::new().with_checkpoint_interval(Some(Duration::from_millis(10)));
    flow! { env =>
        let sums = source(NumberSequence::new(1, 300_000), Watermarks::no_watermarks())
            .map(slow)
            .key_by(|n| n % 7)
            .reduce(|a, b| a + b)
            .collect();
    }
    let stateful = env.execute("stateful").unwrap();
    assert_eq!(
        stateful.checkpoints.completed, 0,
        "{:?}",
        stateful.checkpoints
    );
    assert_eq!(sums.take().len(), 300_000);
}
