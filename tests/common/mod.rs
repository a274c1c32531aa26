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

/// A small deterministic generator (xorshift), so that a failing schedule can be replayed.
pub struct Rng(pub u64);

impl Rng {
    /// A number in `lo..hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        lo + self.0 % (hi - lo)
    }
}
