//! The disk state backend (`--state-backend disk`), end to end with the `fault_tolerance`
//! example: state ten times larger than its cache gives the memory backend's output in
//! bounded memory; killed and restored runs write every row exactly once; and a bad state
//! directory or a full disk is an error naming it.

mod common;

use common::{finished_rows, run_with_kills, Kills, Rng};
use std::path::Path;
use std::process::{Command, Stdio};

/// `fault_tolerance --job JOB` writing to `out`, with `extra` flags.
fn job(name: &str, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = common::example("fault_tolerance");
    cmd.args(["--job", name])
        .arg("--output")
        .arg(out)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `cmd` to its end; its peak resident memory in MiB, as the job reports it (its own
/// `VmHWM`: a child's `getrusage` peak would count this test process's memory), and its
/// stderr. Fails unless it succeeded.
fn run_measured(mut cmd: Command) -> (u64, String) {
    let run = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(run.status.success(), "the job failed: {stderr}");
    let peak = stderr
        .split("peak memory ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|mib| mib.parse().ok())
        .unwrap_or_else(|| panic!("the job reported no peak memory: {stderr}"));
    (peak, stderr)
}

/// Runs `job` with `args` on the memory backend, then on the disk backend with a 4 MiB cache
/// under `state_dir`: checks both give the same rows (`rows` of them; compared sorted) and
/// that the disk backend peaks well under the memory backend's memory.
fn same_rows_in_bounded_memory(name: &str, args: &[&str], rows: usize, state_dir: &Path) {
    let root = tempfile::tempdir().unwrap();
    let (memory_mib, _) = run_measured(job(name, &root.path().join("memory"), args));
    let mut disk = job(name, &root.path().join("disk"), args);
    disk.args(["--state-backend", "disk", "--state-cache-mb", "4"])
        .arg("--state-dir")
        .arg(state_dir);
    let (disk_mib, _) = run_measured(disk);
    eprintln!("{name}: peak memory: memory backend {memory_mib} MiB, disk backend {disk_mib} MiB");
    let expected = finished_rows(&root.path().join("memory"));
    assert_eq!(expected.len(), rows);
    assert!(
        finished_rows(&root.path().join("disk")) == expected,
        "{name}: the disk backend's rows differ from the memory backend's"
    );
    assert!(
        memory_mib >= 60,
        "{name}: the memory backend peaked at {memory_mib} MiB: the state is too small to tell"
    );
    assert!(
        disk_mib * 5 < memory_mib * 3,
        "{name}: the disk backend peaked at {disk_mib} MiB, the memory backend at {memory_mib} MiB"
    );
}

/// A million keys of rolling counts (a 50 MiB hash map in memory, 80 MiB while it grows) with
/// a 4 MiB cache: the same rows as the memory backend, in well under its memory; the store is
/// gone after.
#[test]
fn state_ten_times_its_cache_gives_the_memory_backend_s_rows_in_bounded_memory() {
    let state_dir = tempfile::tempdir().unwrap();
    same_rows_in_bounded_memory(
        "keyed-reduce",
        &["--keys", "1000000", "--rows", "1500000"],
        1_500_000,
        state_dir.path(),
    );
    let left: Vec<_> = std::fs::read_dir(state_dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "the store was left behind: {left:?}");
}

/// A window job with 61 windows of 20,000 keys open at once (watermarks 60 s behind): the
/// panes beyond a 4 MiB cache move to the store and fire from it (in their keys' byte order,
/// not their arrival order: the rows are compared sorted), with the memory backend's rows in
/// well under its memory. A row per key and window: 80 seconds of 20,000 keys.
#[test]
fn many_open_windows_on_the_disk_backend_give_the_memory_backend_s_rows_in_bounded_memory() {
    let state_dir = tempfile::tempdir().unwrap();
    same_rows_in_bounded_memory(
        "window-backlog",
        &["--keys", "20000", "--rows", "1600000"],
        80 * 20_000,
        state_dir.path(),
    );
}

/// The chaos test of exactly-once state, on the disk backend with more keys than its cache
/// holds: 10 kills per job, each followed by a restart from the latest checkpoint into a new
/// store, and the rows equal those of a run that never crashed. `window-backlog` (80 windows
/// of 5,000 keys, 60 open at once) checkpoints and restores panes moved to the store.
#[test]
fn killed_jobs_on_the_disk_backend_write_every_row_exactly_once() {
    let mut rng = Rng(0xd15c_5eed);
    for (name, keys) in [
        ("state-access", "100000"),
        ("keyed-reduce", "100000"),
        ("window-backlog", "5000"),
    ] {
        let root = tempfile::tempdir().unwrap();
        let command = |out: &Path, checkpoints: &Path| {
            let mut cmd = job(
                name,
                out,
                &[
                    "--keys",
                    keys,
                    "--rows",
                    "400000",
                    "--pace",
                    "100",
                    "--parallelism",
                    "2",
                    "--checkpoint-interval",
                    "25",
                    "--state-backend",
                    "disk",
                    "--state-cache-mb",
                    "1",
                ],
            );
            cmd.arg("--checkpoint-dir")
                .arg(checkpoints)
                .arg("--state-dir")
                .arg(root.path().join("state"));
            cmd
        };
        let reference = root.path().join("reference");
        let run = command(&reference, &root.path().join("reference-checkpoints"))
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let expected = finished_rows(&reference);
        assert_eq!(expected.len(), 400_000);
        let chaos = root.path().join("chaos");
        let checkpoints = root.path().join("chaos-checkpoints");
        let killed = run_with_kills(
            &|| command(&chaos, &checkpoints),
            &checkpoints,
            &Kills {
                kills: 10,
                delay: (20, 400),
                progress: &|| 0,
                needed: 0,
            },
            &mut rng,
        );
        assert!(
            killed >= 10,
            "{name}: only {killed} runs were killed mid-way"
        );
        let got = finished_rows(&chaos);
        assert_eq!(got.len(), expected.len(), "{name}: after {killed} kills");
        assert!(got == expected, "{name}: rows differ after {killed} kills");
    }
}

/// A `--state-dir` that is a file is refused at start, naming it.
#[test]
fn a_state_dir_that_is_a_file_is_an_error_naming_it() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let run = job(
        "keyed-reduce",
        &root.path().join("out"),
        &["--state-backend", "disk"],
    )
    .arg("--state-dir")
    .arg(&file)
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        stderr.contains(&file.display().to_string()),
        "the error does not name the directory: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A full disk under the store (a 2 MiB tmpfs, mounted in a user and mount namespace of the
/// job's own) fails the job with an error naming the store, never a panic nor a silent loss.
#[test]
fn a_full_disk_under_the_store_is_an_error_naming_it() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("small-disk");
    std::fs::create_dir(&state).unwrap();
    let out = root.path().join("out");
    let inner = job(
        "keyed-reduce",
        &out,
        &[
            "--keys",
            "1000000",
            "--rows",
            "2000000",
            "--state-backend",
            "disk",
            "--state-cache-mb",
            "1",
        ],
    );
    let mut argv = vec![inner.get_program().to_string_lossy().into_owned()];
    argv.extend(inner.get_args().map(|a| a.to_string_lossy().into_owned()));
    let script = format!(
        "mount -t tmpfs -o size=2m tmpfs '{dir}' && exec \"$@\" --state-dir '{dir}'",
        dir = state.display()
    );
    let run = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            &script,
            "sh",
        ])
        .args(&argv)
        .stdout(Stdio::null())
        .output()
        .expect("unshare (util-linux) runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        !stderr.contains("mount:") && !stderr.contains("unshare:"),
        "the test cannot make a small disk here: {stderr}"
    );
    assert!(!run.status.success(), "the job succeeded on a full disk");
    assert!(
        stderr.contains("state store") && stderr.contains(&state.display().to_string()),
        "the error does not name the store: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A store left behind by a killed run of the same job is removed by the next run; another
/// job's, and a live run's, are left alone.
#[test]
fn a_killed_run_s_store_is_removed_by_the_next_run_of_the_job() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let dead = gone.id();
    let ours = state.join(format!("flow-fault_tolerance_keyed-reduce-{dead}"));
    let other_job = state.join(format!("flow-other_job-{dead}"));
    let alive = state.join(format!(
        "flow-fault_tolerance_keyed-reduce-{}",
        std::process::id()
    ));
    for dir in [&ours, &other_job, &alive] {
        std::fs::create_dir_all(dir.join("keyspaces")).unwrap();
        std::fs::write(dir.join("keyspaces/data"), "left behind").unwrap();
    }
    let run = job(
        "keyed-reduce",
        &root.path().join("out"),
        &["--rows", "1000", "--state-backend", "disk"],
    )
    .arg("--state-dir")
    .arg(&state)
    .output()
    .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(!ours.exists(), "the killed run's store is still there");
    assert!(other_job.exists(), "another job's store was removed");
    assert!(alive.exists(), "a live process's store was removed");
}
