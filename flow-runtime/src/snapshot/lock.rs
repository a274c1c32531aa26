//! `flow.lock`: the state schema of every stateful operator that has a `.uid(..)`, by source
//! file, kept in the user's repository like `Cargo.lock`.
//!
//! `flow!` reads it when it expands: an operator whose entry names another fingerprint than
//! its state's is a compile error on the operator's tokens. The compiler computes the
//! fingerprints ([`StateSchema`](super::StateSchema)) after the macro ran, so the macro cannot
//! write them: a job run by a debug build adds the entries it lacks (never in release builds,
//! nor with `FLOW_LOCK=off`). A first build therefore never fails, and the lock fills in with
//! the first `cargo run` or `cargo test`.
//!
//! `FLOW_LOCK_FILE` names another lock file, when the job is built and when it runs.
//!
//! One line per operator: `<source file> <uid> <fingerprint>`, the file as rustc names it
//! (relative to the lock's directory when it is an absolute path inside it). Two `flow!`
//! blocks of one file that give operators of different state the same uid share a line whose
//! fingerprint is `*`: not checked.

use crate::plan::Plan;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::Path;

const HEADER: &str = "\
# flow.lock: the state schema of each stateful operator with a `.uid(..)`, by source file.
# A debug build's job run adds missing lines; a build fails when an operator's state schema
# changed since its line was written (give it a new uid, or migrate its old state with
# `.migrate_state(..)`). Commit this file.
";

/// An entry's fingerprint: a number, or `*` (two operators share the key: not checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Locked {
    /// The operator's state has this fingerprint.
    Schema(u64),
    /// Operators of different states share the key.
    Ambiguous,
}

/// The entries of a lock file's text: `(file, uid) -> fingerprint`. Lines that do not parse
/// are skipped.
pub fn parse(text: &str) -> BTreeMap<(String, String), Locked> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(file), Some(uid), Some(fp), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let locked = if fp == "*" {
            Locked::Ambiguous
        } else if let Ok(v) = u64::from_str_radix(fp, 16) {
            Locked::Schema(v)
        } else {
            continue;
        };
        out.insert((file.to_string(), uid.to_string()), locked);
    }
    out
}

/// The key file of a source file `file` (as rustc names it) for the lock in `lock_dir`.
pub fn key_file(file: &str, lock_dir: &Path) -> String {
    let path = Path::new(file);
    match path.strip_prefix(lock_dir) {
        Ok(rel) if path.is_absolute() => rel.to_string_lossy().into_owned(),
        _ => file.to_string(),
    }
}

fn render(entries: &BTreeMap<(String, String), Locked>) -> String {
    let mut text = String::from(HEADER);
    for ((file, uid), locked) in entries {
        match locked {
            Locked::Schema(v) => text.push_str(&format!("{file} {uid} {v:016x}\n")),
            Locked::Ambiguous => text.push_str(&format!("{file} {uid} *\n")),
        }
    }
    text
}

/// Adds the schemas the job's operators reported (`(block, node, fingerprint)`) that their
/// blocks' lock files lack. Debug builds only; errors are logged, never fail the job.
pub(crate) fn record(plans: &[&'static Plan], schemas: &[(usize, u32, u64, u64)]) {
    if !cfg!(debug_assertions) || std::env::var("FLOW_LOCK").is_ok_and(|v| v == "off") {
        return;
    }
    // The lock the macro read (`FLOW_LOCK_FILE` when the job was built), or the one
    // `FLOW_LOCK_FILE` names now.
    let over = std::env::var("FLOW_LOCK_FILE").ok();
    let mut by_lock: BTreeMap<String, Vec<Found>> = BTreeMap::new();
    for &(graph, node, fp, from) in schemas {
        let Some(plan) = plans.get(graph) else {
            continue;
        };
        let Some(n) = plan.nodes.get(node as usize) else {
            continue;
        };
        let Some(uid) = n.uid else { continue };
        let lock = over.as_deref().unwrap_or(plan.lock);
        if lock.is_empty() {
            continue;
        }
        let file = n.location.rsplitn(3, ':').last().unwrap_or(n.location);
        let dir = Path::new(lock).parent().unwrap_or(Path::new("."));
        by_lock.entry(lock.to_string()).or_default().push(Found {
            file: key_file(file, dir),
            uid: uid.to_string(),
            schema: fp,
            migrated_from: from,
        });
    }
    for (lock, found) in by_lock {
        if let Err(e) = merge(Path::new(&lock), &found) {
            tracing::warn!(lock, error = %e, "cannot update flow.lock");
        }
    }
}

/// Merges `found` into the lock at `path`, under an exclusive lock of its directory (tests
/// and jobs of one repository may finish at once).
/// An operator's schema as a run found it.
struct Found {
    file: String,
    uid: String,
    schema: u64,
    /// The schema its `.migrate_state(..)` reads (0: none).
    migrated_from: u64,
}

fn merge(path: &Path, found: &[Found]) -> std::io::Result<()> {
    let Some(dir) = path.parent().filter(|d| d.is_dir()) else {
        // A binary run away from its source tree: nothing to record.
        return Ok(());
    };
    let guard = fs::File::open(dir)?;
    guard.lock()?;
    let before = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let mut entries = parse(&before);
    let mut changed = false;
    for f in found {
        let key = (f.file.clone(), f.uid.clone());
        match entries.get(&key) {
            None => {
                entries.insert(key, Locked::Schema(f.schema));
                changed = true;
            }
            // Migrated (`.migrate_state(..)` reads the recorded schema): from now on its
            // checkpoints hold the new one.
            Some(Locked::Schema(v)) if *v != f.schema && *v == f.migrated_from => {
                entries.insert(key, Locked::Schema(f.schema));
                changed = true;
            }
            Some(Locked::Schema(v)) if *v != f.schema => {
                // The build passed, so another block of the file gives this uid to an
                // operator of another state: the key cannot tell them apart.
                entries.insert(key, Locked::Ambiguous);
                changed = true;
            }
            Some(_) => {}
        }
    }
    if changed {
        let tmp = path.with_extension("lock.tmp");
        let mut f = fs::File::create(&tmp)?;
        f.write_all(render(&entries).as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        tracing::info!(lock = %path.display(), "flow.lock updated");
    }
    drop(guard);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_reads_back_what_it_wrote() {
        let mut entries = BTreeMap::new();
        entries.insert(
            ("src/main.rs".into(), "counts".into()),
            Locked::Schema(0xabc),
        );
        entries.insert(("src/main.rs".into(), "totals".into()), Locked::Ambiguous);
        let text = render(&entries);
        assert!(
            text.contains("src/main.rs counts 0000000000000abc\n"),
            "{text}"
        );
        assert_eq!(parse(&text), entries);
    }

    #[test]
    fn absolute_files_inside_the_lock_directory_become_relative() {
        let dir = Path::new("/repo");
        assert_eq!(key_file("/repo/tests/a.rs", dir), "tests/a.rs");
        assert_eq!(key_file("src/main.rs", dir), "src/main.rs");
        assert_eq!(key_file("/elsewhere/a.rs", dir), "/elsewhere/a.rs");
    }

    #[test]
    fn merging_adds_missing_entries_and_marks_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flow.lock");
        merge(&path, &[found("x", 1, 0)]).unwrap();
        merge(&path, &[found("x", 1, 0), found("y", 2, 0)]).unwrap();
        let entries = parse(&fs::read_to_string(&path).unwrap());
        assert_eq!(entries[&("a.rs".into(), "x".into())], Locked::Schema(1));
        assert_eq!(entries[&("a.rs".into(), "y".into())], Locked::Schema(2));
        merge(&path, &[found("x", 3, 0)]).unwrap();
        let entries = parse(&fs::read_to_string(&path).unwrap());
        assert_eq!(entries[&("a.rs".into(), "x".into())], Locked::Ambiguous);
    }

    fn found(uid: &str, schema: u64, migrated_from: u64) -> Found {
        Found {
            file: "a.rs".into(),
            uid: uid.into(),
            schema,
            migrated_from,
        }
    }

    #[test]
    fn a_migrated_operator_s_entry_takes_its_new_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flow.lock");
        merge(&path, &[found("x", 1, 0), found("y", 5, 0)]).unwrap();
        // `x` migrates from the recorded 1 to 2; `y`'s migration reads another schema than
        // the recorded one (a second block of the file, say): ambiguous as before.
        merge(&path, &[found("x", 2, 1), found("y", 6, 4)]).unwrap();
        let entries = parse(&fs::read_to_string(&path).unwrap());
        assert_eq!(entries[&("a.rs".into(), "x".into())], Locked::Schema(2));
        assert_eq!(entries[&("a.rs".into(), "y".into())], Locked::Ambiguous);
    }
}
