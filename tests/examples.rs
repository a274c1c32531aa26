//! The seed's programs, run as the example binaries users run, against Flink's golden outputs
//! in `../shared/golden/`, and their command lines with bad flags.

mod common;

use common::example;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn golden(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/golden")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("example starts");
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn state_access_demo(parallelism: usize) {
    let dir = tempfile::tempdir().unwrap();
    let out_dir: PathBuf = dir.path().join("out");
    run(example("state_access_demo").args([
        "--output",
        out_dir.to_str().unwrap(),
        "--parallelism",
        &parallelism.to_string(),
    ]));
    let mut rows = String::new();
    let mut names = Vec::new();
    for e in std::fs::read_dir(&out_dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains("inprogress"), "{name} left in progress");
        rows.push_str(&std::fs::read_to_string(out_dir.join(&name)).unwrap());
        names.push(name);
    }
    // Flink's part names: <prefix>-<uuid>-<subtask>-<count><suffix>.
    for name in &names {
        let rest = name
            .strip_prefix("pre-")
            .unwrap_or_else(|| panic!("{name}: no prefix"));
        let rest = rest
            .strip_suffix("suf")
            .unwrap_or_else(|| panic!("{name}: no suffix"));
        let parts: Vec<&str> = rest.rsplitn(3, '-').collect();
        assert_eq!(parts.len(), 3, "{name}");
        let (count, subtask, uuid) = (parts[0], parts[1], parts[2]);
        assert_eq!(count, "0", "{name}: one part per subtask");
        assert!(subtask.parse::<usize>().unwrap() < parallelism, "{name}");
        assert_eq!(uuid.len(), 36, "{name}: uuid");
    }
    assert!(!names.is_empty() && names.len() <= parallelism);
    assert_eq!(
        sorted_lines(&rows),
        sorted_lines(&golden("state_access_demo.txt"))
    );
}

#[test]
fn state_access_demo_p1() {
    state_access_demo(1);
}

#[test]
fn state_access_demo_p2() {
    state_access_demo(2);
}

#[test]
fn state_access_demo_p4() {
    state_access_demo(4);
}

/// The seed's job with checkpoints every millisecond into a checkpoint directory: its keyed
/// state and its FileSink take part in them, and the output is still Flink's.
#[test]
fn state_access_demo_with_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let (out_dir, checkpoints) = (dir.path().join("out"), dir.path().join("ck"));
    run(example("state_access_demo")
        .args(["--output", out_dir.to_str().unwrap(), "--parallelism", "2"])
        .args(["--checkpoint-dir", checkpoints.to_str().unwrap()])
        .args(["--checkpoint-interval", "1"]));
    let mut rows = String::new();
    for e in std::fs::read_dir(&out_dir).unwrap() {
        let e = e.unwrap();
        assert!(
            !e.file_name().to_string_lossy().starts_with('.'),
            "a part left hidden"
        );
        rows.push_str(&std::fs::read_to_string(e.path()).unwrap());
    }
    assert_eq!(
        sorted_lines(&rows),
        sorted_lines(&golden("state_access_demo.txt"))
    );
    // The final checkpoint holds the keyed state of the stateful map.
    let chk: Vec<_> = std::fs::read_dir(&checkpoints).unwrap().flatten().collect();
    assert_eq!(chk.len(), 1, "one checkpoint retained");
    let files: Vec<String> = std::fs::read_dir(chk[0].path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(files.iter().any(|f| f == "_metadata"), "{files:?}");
    assert!(files.iter().any(|f| f.starts_with("map-3.")), "{files:?}");
}

#[test]
fn word_count_streaming_prints_every_update_in_order() {
    let out = run(example("word_count").args(["--mode", "streaming"]));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        golden("word_split_reduce.streaming.txt")
    );
}

#[test]
fn word_count_batch_prints_the_final_row_per_key() {
    let out = run(example("word_count").args(["--mode", "batch"]));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        sorted_lines(&stdout),
        sorted_lines(&golden("word_split_reduce.batch.txt"))
    );
}

#[test]
fn word_count_at_parallelism_2_prefixes_the_subtask() {
    let out = run(example("word_count").args(["--mode", "batch", "--parallelism", "2"]));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<String> = stdout
        .lines()
        .map(|l| {
            let (subtask, row) = l
                .split_once("> ")
                .unwrap_or_else(|| panic!("no `N> ` prefix: {l}"));
            assert!(["1", "2"].contains(&subtask), "{l}");
            row.to_string()
        })
        .collect();
    let mut rows = rows;
    rows.sort();
    assert_eq!(rows, sorted_lines(&golden("word_split_reduce.batch.txt")));
}

fn fails(cmd: &mut Command, code: i32, needle: &str) {
    let out = cmd.output().expect("example starts");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
}

#[test]
fn bad_flags_exit_with_a_clear_error() {
    fails(
        example("state_access_demo").args(["--parallelism", "0"]),
        2,
        "0 is not in 1..=128",
    );
    fails(
        example("state_access_demo").args(["--parallelism", "two"]),
        2,
        "invalid value 'two'",
    );
    fails(
        example("word_count").args(["--mode", "fast"]),
        2,
        "invalid value 'fast'",
    );
    fails(
        example("word_count").arg("--paralelism"),
        2,
        "--parallelism",
    );
    // An instance id names Kafka group members: no spaces, and only in an instance group.
    let in_group = ["--instance-group", "g", "--instance-brokers", "127.0.0.1:1"];
    fails(
        example("word_count")
            .args(in_group)
            .args(["--instance-id", "a b"]),
        2,
        "`a b` is not an instance id",
    );
    fails(
        example("word_count").args(["--instance-id", "a"]),
        2,
        "--instance-group",
    );
    // Kafka brokers take session timeouts from 6 s (and at most 30 min by default).
    fails(
        example("word_count")
            .args(in_group)
            .args(["--session-timeout", "3"]),
        2,
        "--session-timeout",
    );
    // The outage limit is whole seconds, at least ten, and only in an instance group.
    fails(
        example("word_count")
            .args(in_group)
            .args(["--max-broker-downtime", "5"]),
        2,
        "5 is not in 10..=3600",
    );
    fails(
        example("word_count").args(["--max-broker-downtime", "15"]),
        2,
        "--instance-group",
    );
    // Exactly-once names its transactional ids after the instance id.
    fails(
        example("word_count")
            .args(in_group)
            .args(["--processing-guarantee", "exactly-once"]),
        2,
        "--instance-id",
    );
    fails(
        example("word_count").args(in_group).args([
            "--instance-id",
            "a",
            "--processing-guarantee",
            "once",
        ]),
        2,
        "invalid value 'once'",
    );
}

#[test]
fn an_output_directory_that_cannot_be_created_is_an_error() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let below = file.path().join("out");
    fails(
        example("state_access_demo").args([
            "--output",
            below.to_str().unwrap(),
            "--parallelism",
            "2",
        ]),
        1,
        "create directory",
    );
}

#[test]
fn help_lists_the_flags() {
    let out = run(example("state_access_demo").arg("--help"));
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in ["--parallelism", "--mode", "--explain", "--output"] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
}

#[test]
fn explain_prints_the_plan_instead_of_running() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(example("state_access_demo")
        .args(["--explain", "--parallelism", "2", "--output"])
        .arg(dir.path().join("o")));
    let plan = String::from_utf8(out.stdout).unwrap();
    assert!(plan.contains("stage 1 (parallelism 2)"), "{plan}");
    assert!(plan.contains("map(count_first_two)"), "{plan}");
    assert!(plan.contains("(hash)"), "{plan}");
    assert!(plan.contains("examples/state_access_demo.rs:"), "{plan}");
    assert!(!dir.path().join("o").exists(), "nothing ran");
    let dot = run(example("word_count").args(["--explain", "dot"]));
    assert!(String::from_utf8(dot.stdout)
        .unwrap()
        .starts_with("digraph flow {"));
}

fn windowed_word_count(parallelism: usize) {
    let out = run(example("windowed_word_count").args([
        "--events",
        "3000",
        "--parallelism",
        &parallelism.to_string(),
    ]));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut total = 0u64;
    let mut windows = std::collections::BTreeSet::new();
    for line in stdout.lines() {
        let line = line.split_once("> ").map_or(line, |(_, row)| row);
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 4, "`start end word count`: {line}");
        let (start, end): (i64, i64) = (f[0].parse().unwrap(), f[1].parse().unwrap());
        assert_eq!(end - start, 1000, "1-second windows: {line}");
        assert_eq!(start % 1000, 0, "aligned windows: {line}");
        windows.insert(start);
        total += f[3].parse::<u64>().unwrap();
    }
    assert_eq!(
        total, 3000,
        "every event counted once (none is late: 200 ms jitter, 200 ms delay)"
    );
    assert_eq!(
        windows.len(),
        31,
        "3000 events 10 ms apart, jittered up to 200 ms: 31 windows"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("0 late rows"), "{stderr}");
}

#[test]
fn windowed_word_count_p1() {
    windowed_word_count(1);
}

#[test]
fn windowed_word_count_p2() {
    windowed_word_count(2);
}

/// `file_word_count` over a directory (a gzip file too) in batch mode: the final count of
/// every word, once, whatever the parallelism.
fn file_word_count(parallelism: usize) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(input.join("sub")).unwrap();
    std::fs::write(
        input.join("a.txt"),
        "To be, or not to be:\nthat is the question.\n",
    )
    .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, b"Be quick.\n\nTHE END").unwrap();
    std::fs::write(input.join("sub/b.txt.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(input.join("_ignored.txt"), "ignored words\n").unwrap();
    let out = dir.path().join("out");
    let run_out = run(example("file_word_count").args([
        "--input".as_ref(),
        input.as_os_str(),
        "--output".as_ref(),
        out.as_os_str(),
        "--mode".as_ref(),
        "batch".as_ref(),
        "--parallelism".as_ref(),
        parallelism.to_string().as_ref(),
    ]));
    assert_eq!(
        common::finished_rows(&out),
        vec![
            "be 3",
            "end 1",
            "is 1",
            "not 1",
            "or 1",
            "question 1",
            "quick 1",
            "that 1",
            "the 2",
            "to 2"
        ]
    );
    let stderr = String::from_utf8_lossy(&run_out.stderr);
    assert!(stderr.contains("5 lines read"), "{stderr}");
}

#[test]
fn file_word_count_p1() {
    file_word_count(1);
}

#[test]
fn file_word_count_p2() {
    file_word_count(2);
}

/// A child process killed when the test ends, failed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `file_word_count --monitor` never ends by itself: SIGUSR1 drains it. It ends well, its
/// part files holding every update of the lines it read, those of a file added while it ran
/// too, each once.
#[test]
fn file_word_count_monitoring_a_directory_ends_when_drained() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("a.txt"), "to be or not to be\n").unwrap();
    let (out, checkpoints) = (dir.path().join("out"), dir.path().join("checkpoints"));
    // Its stderr goes to a file: a pipe nobody reads while it runs could fill up.
    let log = dir.path().join("stderr");
    let mut child = KillOnDrop(
        example("file_word_count")
            .args(["--input".as_ref(), input.as_os_str()])
            .args(["--output".as_ref(), out.as_os_str()])
            .args(["--checkpoint-dir".as_ref(), checkpoints.as_os_str()])
            .args(["--monitor", "20", "--checkpoint-interval", "50"])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    // Committed at a checkpoint: the job runs, its signal handlers in place.
    let committed = |row: &str| {
        let start = std::time::Instant::now();
        while !common::finished_rows(&out).iter().any(|r| r == row) {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(60),
                "`{row}` not committed in 60 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    committed("be 2");
    // Named `.b.txt` (skipped) while it is written, then `b.txt`.
    std::fs::write(input.join(".b.txt"), "be quick\n").unwrap();
    std::fs::rename(input.join(".b.txt"), input.join("b.txt")).unwrap();
    committed("quick 1");
    common::signal(&child.0, "USR1");
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "not ended 60 s after SIGUSR1"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("file_word_count: 2 lines read"), "{stderr}");
    assert_eq!(
        common::finished_rows(&out),
        ["be 1", "be 2", "be 3", "not 1", "or 1", "quick 1", "to 1", "to 2"]
    );
}

#[test]
fn file_word_count_names_a_missing_input() {
    fails(
        example("file_word_count").args(["--input", "/nonexistent/words"]),
        1,
        "/nonexistent/words` does not exist",
    );
}

/// `jdbc_sink` into a table of its own: every generated order that passes the filter, once,
/// and a second run (an upsert) changes nothing.
#[cfg(feature = "postgres")]
#[test]
fn jdbc_sink_writes_the_filtered_orders_and_a_rerun_changes_nothing() {
    #[path = "jdbc_common/mod.rs"]
    mod jdbc_common;
    let db = jdbc_common::Db::fresh("example_jdbc");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "--url".to_string(),
            jdbc_common::url(),
            "--table".into(),
            "example_jdbc.orders".into(),
            "--rows".into(),
            "5000".into(),
            "--parallelism".into(),
            "2".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let out = run(example("jdbc_sink").args(args(&[])));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let written: u64 = stderr
        .split("jdbc_sink: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stderr}"));
    let count = |db: &jdbc_common::Db| -> u64 {
        db.value("SELECT count(*) FROM example_jdbc.orders")
            .parse()
            .unwrap()
    };
    assert!(written > 0 && written < 5000, "{stderr}");
    assert_eq!(count(&db), written);
    assert_eq!(
        db.value(
            "SELECT count(*) FROM example_jdbc.orders WHERE quantity * floor(price)::int < 100"
        ),
        "0"
    );
    let digest = "SELECT md5(string_agg(id || ':' || customer || ':' || quantity || ':' || price, ',' ORDER BY id)) FROM example_jdbc.orders";
    let before = db.value(digest);
    run(example("jdbc_sink").args(args(&["--exactly-once", "--checkpoint-interval", "50"])));
    assert_eq!(count(&db), written, "a rerun wrote other rows");
    assert_eq!(db.value(digest), before, "a rerun changed rows");
}

/// Flink's print connector writes a row `2 aaa` of the golden file as `+I[2, aaa]`.
fn as_table_rows(golden_text: &str) -> Vec<String> {
    golden_text
        .lines()
        .map(|l| {
            let (n, w) = l.split_once(' ').expect("`count word`");
            format!("+I[{n}, {w}]")
        })
        .collect()
}

#[test]
fn table_sink_prints_every_update_as_flink_prints_rows() {
    let out = run(example("table_sink").args(["--mode", "streaming"]));
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        lines,
        as_table_rows(&golden("word_split_reduce.streaming.txt"))
    );
}

#[test]
fn table_sink_in_batch_mode_and_in_parallel() {
    let out = run(example("table_sink").args(["--mode", "batch"]));
    let mut expected = as_table_rows(&golden("word_split_reduce.batch.txt"));
    expected.sort();
    assert_eq!(
        sorted_lines(&String::from_utf8(out.stdout).unwrap()),
        expected
    );
    // A parallel print sink puts the 1-based subtask in front, as Flink's.
    let out = run(example("table_sink").args(["--mode", "batch", "--parallelism", "2"]));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut rows: Vec<String> = text
        .lines()
        .map(|l| {
            let (subtask, row) = l
                .split_once("> ")
                .unwrap_or_else(|| panic!("no subtask: {l}"));
            assert!(subtask == "1" || subtask == "2", "{l}");
            row.to_string()
        })
        .collect();
    rows.sort();
    assert_eq!(rows, expected);
}

#[test]
fn table_source_reads_ten_generated_rows() {
    let out = run(example("table_source").args(["--parallelism", "2"]));
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = text
        .lines()
        .map(|l| l.split_once("> ").map_or(l, |x| x.1))
        .collect();
    assert_eq!(rows.len(), 10, "{text}");
    for row in rows {
        // `a b`: a random INT and a random 100-character string, as Flink's datagen.
        let (a, b) = row.split_once(' ').unwrap_or_else(|| panic!("{row}"));
        a.parse::<i32>().unwrap_or_else(|_| panic!("{row}"));
        assert_eq!(b.len(), 100, "{row}");
        assert!(b.bytes().all(|c| c.is_ascii_hexdigit()), "{row}");
    }
}

#[test]
fn table_conversion_gives_append_retract_and_changelog_streams() {
    let out = run(&mut example("table_conversion"));
    let mut lines = sorted_lines(&String::from_utf8(out.stdout).unwrap());
    lines.dedup();
    assert_eq!(
        lines,
        vec![
            "+I[10, HI]",
            "+I[20, HELLO]",
            "append: 10 HI",
            "append: 20 HELLO",
            "retract: true 10 HI",
            "retract: true 20 HELLO",
        ]
    );
}

/// `script` (util-linux) runs `command` on a pseudo-terminal and gives what the terminal
/// showed; the example's stdout goes to /dev/null, so that is its stderr.
fn on_a_terminal(example_args: &str) -> String {
    let bin = PathBuf::from(example("windowed_word_count").get_program());
    let command = format!("{} {example_args} > /dev/null", bin.display());
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("`script` (util-linux) runs");
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_bounded_job_on_a_terminal_draws_its_progress_and_into_a_pipe_nothing() {
    let args = "--events 2000000 --parallelism 2";
    let shown = on_a_terminal(args);
    assert!(
        shown.contains("% ") && shown.contains(" rows/s") && shown.contains("ETA"),
        "a progress bar on the terminal: {shown:?}"
    );
    assert!(
        !on_a_terminal(&format!("{args} --no-progress")).contains("rows/s"),
        "--no-progress draws none"
    );
    let piped = run(example("windowed_word_count").args(args.split(' ')));
    let err = String::from_utf8_lossy(&piped.stderr);
    assert!(!err.contains("rows/s"), "no bar into a pipe: {err}");
}
