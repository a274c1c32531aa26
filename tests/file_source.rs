//! `FileSource`: text, CSV and JSON-lines files (some gzip) in a directory tree, read at
//! parallelism 1 and 2 with every line exactly once; a big file split across readers;
//! monitoring picks up files written while the job runs; bad lines under each policy; a job
//! restored from a checkpoint resumes in the middle of a file.

mod common;

use common::{crash_once_checkpointed, finished_rows, sorted};
use flow::connectors::bad_records::DeadLetter;
use flow::prelude::*;
use flow::{Sink, SinkWriter};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Row, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Person {
    name: String,
    age: u32,
}

fn env(p: usize) -> StreamEnv {
    StreamEnv::new().with_parallelism(p)
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    if path.extension().is_some_and(|e| e == "gz") {
        // Two gzip members: readers must go on after the first.
        let (a, b) = text.split_at(text.len() / 2);
        let mut out = Vec::new();
        for part in [a, b] {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(part.as_bytes()).unwrap();
            out.extend(gz.finish().unwrap());
        }
        std::fs::write(path, out).unwrap();
    } else {
        std::fs::write(path, text).unwrap();
    }
}

/// `n` lines `prefix-i`.
fn lines(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

fn text_files_in_a_tree(p: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut want = Vec::new();
    for (name, n) in [("a.txt", 100), ("sub/b.txt.gz", 3000), ("sub/deeper/c", 7)] {
        let l = lines(name, n);
        write(&dir.path().join(name), &(l.join("\n") + "\n"));
        want.extend(l);
    }
    // Hidden and `_`-prefixed files and directories are not read (Flink's default filter).
    write(&dir.path().join(".x.inprogress"), "hidden\n");
    write(&dir.path().join("_SUCCESS"), "marker\n");
    write(&dir.path().join(".hidden/d.txt"), "hidden\n");
    // The last line needs no line break; a blank one is a row of text.
    write(&dir.path().join("e.txt"), "e-0\n\ne-2");
    want.extend(["e-0".to_string(), String::new(), "e-2".to_string()]);
    let env = env(p);
    flow! { env =>
        let rows = source(FileSource::text_lines(dir.path()), Watermarks::no_watermarks()).collect();
    }
    env.execute("text").unwrap();
    assert_eq!(sorted(rows.take()), sorted(want));
}

fn csv_and_json_lines(p: usize) {
    let dir = tempfile::tempdir().unwrap();
    let people: Vec<Person> = (0..500)
        .map(|i| Person {
            name: format!("p, {i}"),
            age: i,
        })
        .collect();
    // CSV with a header whose columns are in another order, quoted names; JSON lines.
    let csv: String = people
        .iter()
        .map(|x| format!("{};\"{}\"\n", x.age, x.name))
        .collect();
    write(&dir.path().join("csv/1.csv"), &format!("age;name\n{csv}"));
    write(
        &dir.path().join("csv/2.csv.gz"),
        &format!("age;name\r\n{csv}\r\n"),
    );
    let json: String = people
        .iter()
        .map(|x| format!("{{\"name\":\"{}\",\"age\":{}}}\n", x.name, x.age))
        .collect();
    write(&dir.path().join("json/1.jsonl"), &json);
    write(&dir.path().join("json/2.jsonl.gz"), &format!("{json}\n\n"));
    let env = env(p);
    let csv_format = Csv::<Person>::new().has_header(true).delimiter(b';');
    flow! { env =>
        let from_csv = source(FileSource::for_record_stream_format(csv_format, dir.path().join("csv")), Watermarks::no_watermarks()).collect();
        let from_json = source(FileSource::<Json<Person>>::json_lines(dir.path().join("json")), Watermarks::no_watermarks()).collect();
    }
    env.execute("csv and json").unwrap();
    let twice = sorted(people.iter().chain(&people).cloned().collect());
    assert_eq!(sorted(from_csv.take()), twice);
    assert_eq!(sorted(from_json.take()), twice);
}

fn a_big_file_is_split_across_readers(p: usize) {
    let dir = tempfile::tempdir().unwrap();
    let l = lines("big", 20_000);
    write(&dir.path().join("in/big.txt"), &(l.join("\n") + "\n"));
    let out = dir.path().join("out");
    let env = env(p);
    flow! { env =>
        source(FileSource::text_lines(dir.path().join("in")).split_size(50_000), Watermarks::no_watermarks())
            .sink_to(FileSink::row_format(&out));
    }
    env.execute("split").unwrap();
    assert_eq!(finished_rows(&out), sorted(l));
    // The source and the sink are chained: one part file per reader, each with rows.
    let parts = std::fs::read_dir(&out).unwrap().count();
    assert_eq!(parts, p, "each reader read a share of the one file");
}

fn bad_csv_lines(dir: &Path) -> Vec<(String, i64, &'static str)> {
    // Two files, each with a header; bad lines: a number that is not one, too few fields,
    // an unterminated quote. (file, line, why)
    let mut bad = Vec::new();
    for f in ["a.csv", "b.csv"] {
        let mut text = String::from("name,age\n");
        for i in 0..3000 {
            let line = 2 + i as i64;
            match i % 1000 {
                17 => {
                    text.push_str("ann,old\n");
                    bad.push((f.to_string(), line, "field 2 (`age`)"));
                }
                400 => {
                    text.push_str("bo\n");
                    bad.push((f.to_string(), line, "end of row"));
                }
                999 => {
                    text.push_str("\"cy,7\n");
                    bad.push((f.to_string(), line, "unterminated"));
                }
                _ => text.push_str(&format!("n{i},{i}\n")),
            }
        }
        write(&dir.join(f), &text);
    }
    bad
}

fn csv_source(dir: &Path, policy: BadRecords) -> FileSource<Csv<Person>> {
    // Small splits: line numbers in the middle of a file are counted, not guessed.
    FileSource::for_record_stream_format(Csv::<Person>::new().has_header(true), dir)
        .split_size(10_000)
        .bad_records(policy)
}

#[test]
fn a_bad_line_fails_the_job_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    bad_csv_lines(dir.path());
    let env = env(1);
    let src = csv_source(dir.path(), BadRecords::fail());
    flow! { env =>
        source(src, Watermarks::no_watermarks()).sink_to(DiscardSink);
    }
    let e = env.execute("fail").unwrap_err().to_string();
    assert!(
        e.contains("a.csv` line 19") && e.contains("field 2 (`age`)"),
        "{e}"
    );
}

fn bad_lines_skipped_and_counted(p: usize) {
    let dir = tempfile::tempdir().unwrap();
    let bad = bad_csv_lines(dir.path());
    let env = env(p);
    let src = csv_source(dir.path(), BadRecords::skip());
    let counts = src.bad_record_counts();
    flow! { env =>
        let rows = source(src, Watermarks::no_watermarks()).collect();
    }
    let result = env.execute("skip").unwrap();
    assert_eq!(rows.take().len(), 6000 - bad.len());
    assert_eq!(counts.skipped(), bad.len() as u64);
    assert_eq!(result.operators[0].skipped_records, bad.len() as u64);
}

fn bad_lines_dead_lettered(p: usize) {
    let dir = tempfile::tempdir().unwrap();
    let bad = bad_csv_lines(dir.path());
    let dead = CollectHandle::<DeadLetter>::new();
    let env = env(p);
    let src = csv_source(dir.path(), BadRecords::dead_letter(dead.sink()));
    flow! { env =>
        let rows = source(src, Watermarks::no_watermarks()).collect();
    }
    let result = env.execute("dead letters").unwrap();
    assert_eq!(rows.take().len(), 6000 - bad.len());
    assert_eq!(result.operators[0].dead_lettered_records, bad.len() as u64);
    let mut dead = dead.take();
    dead.sort_by(|a, b| (&a.source, a.offset).cmp(&(&b.source, b.offset)));
    assert_eq!(dead.len(), bad.len());
    for (d, (file, line, why)) in dead.iter().zip(&bad) {
        assert!(d.source.ends_with(file.as_str()), "{d:?}");
        assert_eq!(d.offset, *line, "{d:?}");
        assert!(d.error.contains(why), "{d:?}");
        let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
        assert_eq!(
            d.payload,
            text.lines().nth(*line as usize - 1).unwrap().as_bytes()
        );
    }
}

/// Dead letters into a `FileSink`: the sink's parts are committed with the source's
/// checkpoints and at the end, as any sink's, so the bad lines are in finished files.
#[test]
fn dead_letters_into_a_file_sink_are_committed() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let bad = bad_csv_lines(&input);
    let dead = dir.path().join("dead");
    let env = env(2);
    let src = csv_source(&input, BadRecords::dead_letter(FileSink::row_format(&dead)));
    flow! { env =>
        let rows = source(src, Watermarks::no_watermarks()).collect();
    }
    env.execute("dead letters to files").unwrap();
    assert_eq!(rows.take().len(), 6000 - bad.len());
    let letters = finished_rows(&dead);
    assert_eq!(letters.len(), bad.len(), "{letters:?}");
    for (file, line, why) in &bad {
        assert!(
            letters
                .iter()
                .any(|l| l.contains(&format!("{file} 0 {line} ")) && l.contains(why)),
            "{file} line {line} not in {letters:?}"
        );
    }
}

#[test]
fn a_missing_path_fails_at_start() {
    let env = env(1);
    flow! { env =>
        source(FileSource::text_lines("/nonexistent/flow-input"), Watermarks::no_watermarks()).sink_to(DiscardSink);
    }
    let e = env.execute("missing").unwrap_err().to_string();
    assert!(
        e.contains("/nonexistent/flow-input") && e.contains("does not exist"),
        "{e}"
    );
}

/// A job with a source that cannot start fails before any of its tasks runs: the sink of
/// another branch is not even opened (it would connect to its database, create its files).
#[test]
fn a_missing_path_fails_the_job_before_any_task_runs() {
    let env = env(1);
    let opened = Opened::default();
    let sink = opened.clone();
    flow! { env =>
        source(FileSource::text_lines("/nonexistent/flow-input"), Watermarks::no_watermarks()).sink_to(DiscardSink);
        source(NumberSequence::new(1, 1_000_000), Watermarks::no_watermarks()).sink_to(sink);
    }
    let e = env.execute("missing").unwrap_err().to_string();
    assert!(e.contains("/nonexistent/flow-input"), "{e}");
    // (Tasks that started would have opened it within the job's few milliseconds.)
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        opened.0.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "a task ran"
    );
}

/// A sink that counts its writers opened.
#[derive(Clone, Default)]
struct Opened(Arc<std::sync::atomic::AtomicUsize>);

impl Sink<i64> for Opened {
    type Writer = Opened;
    fn create_writer(&self, _: &RuntimeContext) -> flow::Result<Opened> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(self.clone())
    }
}

impl SinkWriter<i64> for Opened {
    fn write(&mut self, _: i64, _: flow::Timestamp) {}
}

/// The rows a sink received so far, readable while the job runs.
#[derive(Clone, Default)]
struct Live(Arc<Mutex<Vec<String>>>);

impl Sink<String> for Live {
    type Writer = Live;
    fn create_writer(&self, _: &RuntimeContext) -> flow::Result<Live> {
        Ok(self.clone())
    }
}

impl SinkWriter<String> for Live {
    fn write(&mut self, row: String, _: flow::Timestamp) {
        self.0.lock().unwrap().push(row);
    }
}

impl Live {
    /// Waits until `row` arrived (10 s at most).
    fn wait_for(&self, row: &str) {
        let start = Instant::now();
        while !self.0.lock().unwrap().iter().any(|r| r == row) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "`{row}` was not read while the job ran"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn monitoring_picks_up_new_files(p: usize) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    write(&root.join("0.txt"), &(lines("0", 10).join("\n") + "\n"));
    let src = FileSource::text_lines(&root).monitor_continuously(Duration::from_millis(20));
    let stop = src.stop_handle();
    let live = Live::default();
    let env = env(p);
    flow! { env =>
        source(src, Watermarks::no_watermarks()).sink_to(live.clone());
    }
    let job = std::thread::spawn(move || env.execute("monitor"));
    let mut want = lines("0", 10);
    live.wait_for("0-9");
    for f in 1..=5 {
        // Written hidden, then renamed in: a reader never sees half a file.
        let l = lines(&f.to_string(), 100 * f);
        write(&root.join(format!(".{f}.tmp")), &(l.join("\n") + "\n"));
        std::fs::rename(
            root.join(format!(".{f}.tmp")),
            root.join(format!("{f}.txt")),
        )
        .unwrap();
        // Each file is read while the job runs, not only at the stop.
        live.wait_for(l.last().unwrap());
        want.extend(l);
        // A file already read that changes is not read again.
        if f == 3 {
            write(&root.join("0.txt"), "changed\n");
        }
    }
    // Files written just before the stop are read too.
    write(&root.join("6.txt"), "6-0\n");
    want.push("6-0".into());
    stop.stop();
    job.join().unwrap().unwrap();
    assert_eq!(sorted(live.0.lock().unwrap().clone()), sorted(want));
}

const ROWS: usize = 6_000;

/// Line `n` read by the job: slowed down so that checkpoints (every 5 ms) fall between the
/// rows; with `crash`, a user panic past a third of the input once a checkpoint completed
/// (see `crash_once_checkpointed`).
fn row(line: &str, crash: Option<&'static Path>) -> i64 {
    let n: i64 = line.parse().unwrap();
    if let Some(ck) = crash {
        crash_once_checkpointed(ck, n, (ROWS / 3) as i64);
    }
    if n % 20 == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    n * 10
}

fn numbered_files(dir: &Path) {
    // A big file (split in four), a gzip file and small ones: positions in all of them.
    let nums = |r: std::ops::Range<usize>| r.map(|n| format!("{n}\n")).collect::<String>();
    write(&dir.join("big.txt"), &nums(0..3000));
    write(&dir.join("z.txt.gz"), &nums(3000..4500));
    for (i, start) in (4500..ROWS).step_by(500).enumerate() {
        write(&dir.join(format!("s/{i}.txt")), &nums(start..start + 500));
    }
}

fn run(
    input: &Path,
    out: &Path,
    checkpoints: &Path,
    p: usize,
    crash: Option<&'static Path>,
    restore: bool,
) -> flow::Result<flow::JobResult> {
    let mut env = env(p)
        .with_checkpoint_interval(Some(Duration::from_millis(5)))
        .with_checkpoint_dir(checkpoints, 1);
    if restore {
        env = env.with_restore("latest");
    }
    let src = FileSource::text_lines(input).split_size(4_000);
    flow! { env =>
        source(src, Watermarks::no_watermarks())
            .map(move |l| row(&l, crash))
            .sink_to(FileSink::row_format(out));
    }
    env.execute("files")
}

/// Crashes a job after a checkpoint, restores it at `p2`: the finished files hold every line
/// once, as a run without the crash.
fn restore_in_the_middle_of_files(p1: usize, p2: usize) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    numbered_files(&input);
    let expected: Vec<String> = sorted((0..ROWS as i64).map(|n| (n * 10).to_string()).collect());
    let out = dir.path().join("out");
    let ck: &'static Path = Box::leak(dir.path().join("ck").into_boxed_path());
    let e = run(&input, &out, ck, p1, Some(ck), false).expect_err("the first run crashes");
    assert!(e.to_string().contains("crash at row"), "{e}");
    let before = finished_rows(&out).len();
    assert!(before < ROWS, "the crash came after every row");
    run(&input, &out, ck, p2, None, true).unwrap();
    let got = finished_rows(&out);
    assert_eq!(got.len(), ROWS, "{before} rows before the crash");
    assert!(got == expected, "rows differ");
}

#[test]
fn restore_in_the_middle_of_files_p1() {
    restore_in_the_middle_of_files(1, 1);
}

#[test]
fn restore_in_the_middle_of_files_p2() {
    restore_in_the_middle_of_files(2, 2);
}

#[test]
fn restore_in_the_middle_of_files_at_another_parallelism() {
    restore_in_the_middle_of_files(2, 1);
    restore_in_the_middle_of_files(1, 2);
}

at_parallelism!(
    text_files_in_a_tree,
    csv_and_json_lines,
    a_big_file_is_split_across_readers,
    bad_lines_skipped_and_counted,
    bad_lines_dead_lettered,
    monitoring_picks_up_new_files,
);
