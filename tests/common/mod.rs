//! Helpers shared by the integration tests.
#![allow(dead_code)]

/// Generates `p1::name` and `p2::name` tests calling `name(parallelism)`.
#[macro_export]
macro_rules! at_parallelism {
    ($($name:ident),* $(,)?) => {
        mod p1 { $( #[test] fn $name() { super::$name(1) } )* }
        mod p2 { $( #[test] fn $name() { super::$name(2) } )* }
    };
}

/// Sorted copy.
pub fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// An example binary built by `cargo test` next to the test binary.
pub fn example(name: &str) -> std::process::Command {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target profile directory");
    let bin = dir.join("examples").join(name);
    assert!(
        bin.exists(),
        "{} is not built: run `cargo test` (which builds examples) or `cargo build --examples`",
        bin.display()
    );
    std::process::Command::new(bin)
}

/// Every line of the finished (not hidden) part files under `dir`, sorted; none may end
/// mid-line.
pub fn finished_rows(dir: &std::path::Path) -> Vec<String> {
    let mut rows = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{name} ends mid-line"
        );
        rows.extend(text.lines().map(str::to_string));
    }
    rows.sort();
    rows
}

/// Whether `dir` holds a completed checkpoint (a folder with `_metadata`).
pub fn has_checkpoint(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().join("_metadata").is_file())
    })
}

/// A user failure for restore tests, called with each row `n`: past row `from`, once a
/// checkpoint completed in `dir`, panics ("crash at row n") on a row divisible by 7; until
/// then it slows every 4th row by a millisecond, so that a checkpoint completes before the
/// input ends even when writing one is slow (a CI machine's fsync took half a second, and
/// the job ended without the crash its test wanted).
#[allow(dead_code)]
pub fn crash_once_checkpointed(dir: &std::path::Path, n: i64, from: i64) {
    if n <= from {
        return;
    }
    if has_checkpoint(dir) {
        if n % 7 == 0 {
            panic!("crash at row {n}");
        }
    } else if n % 4 == 0 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The number of the newest completed checkpoint in `dir` (0: none).
pub fn latest_checkpoint(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("_metadata").is_file())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("chk-"))
                .and_then(|n| n.parse().ok())
        })
        .max()
        .unwrap_or(0)
}

/// How [`run_with_kills`] kills a job.
pub struct Kills<'a> {
    /// How many runs to kill before letting one finish.
    pub kills: usize,
    /// The random delay before a kill, in milliseconds: `lo..hi`.
    pub delay: (u64, u64),
    /// A measure of the job's progress (finished rows, the latest checkpoint) and how much
    /// it must grow in a run before the delay starts (0: none), so that every run gets on.
    pub progress: &'a dyn Fn() -> u64,
    pub needed: u64,
}

/// Runs `command()` until a run ends, adding `--restore latest` once `checkpoints` holds a
/// checkpoint, and killing the run with SIGKILL `k.kills` times (see [`Kills`]); the run that
/// is not killed must succeed. Returns how many runs were killed mid-way (not already done).
pub fn run_with_kills(
    command: &dyn Fn() -> std::process::Command,
    checkpoints: &std::path::Path,
    k: &Kills<'_>,
    rng: &mut Rng,
) -> usize {
    use std::time::{Duration, Instant};
    let mut killed = 0;
    loop {
        let mut cmd = command();
        if has_checkpoint(checkpoints) {
            cmd.args(["--restore", "latest"]);
        }
        let before = (k.progress)();
        let mut child = cmd.spawn().unwrap();
        if killed < k.kills {
            let deadline = Instant::now() + Duration::from_secs(30);
            while (k.progress)() < before + k.needed
                && child.try_wait().unwrap().is_none()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_millis(rng.between(k.delay.0, k.delay.1)));
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
        return killed;
    }
}

/// A small deterministic generator (xorshift), so that a failing schedule can be replayed.
pub struct Rng(pub u64);

impl Rng {
    /// A generator from `seed`; a zero seed (which xorshift would keep at zero) is taken as
    /// another.
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// A number in `lo..hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        lo + self.0 % (hi - lo)
    }
}

/// Sends `signal` (`TERM`, `USR1`, ...) to `child`, with `kill`.
#[allow(dead_code)] // not every test binary sends signals
pub fn signal(child: &std::process::Child, signal: &str) {
    let kill = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success(), "kill -{signal}");
}
