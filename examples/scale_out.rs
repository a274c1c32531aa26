//! A windowed word count over a Kafka topic that several instances of this binary share
//! (README, "Scaling out"): lines from `--input` (event time: each record's Kafka timestamp),
//! split into words, counted per word in 1-second tumbling event-time windows, written as JSON
//! to `--output`.
//!
//! ```text
//! # tansu-main: its consumer groups deal a leaving or dead instance's partitions to the others
//! # (the default test broker, noida-db, deals the members that stay nothing more once one left)
//! FLOW_KAFKA_BROKER=tansu-main scripts/kafka-broker start
//! # in three terminals (or on three machines, with --brokers pointing at the cluster):
//! cargo run --release --example scale_out -- --instance-group wc --instance-brokers 127.0.0.1:9092
//! ```
//!
//! With `--instance-group`, Kafka splits the input's partitions among the instances and the
//! `key_by` crosses them through the topic `wc-key_by-2-repartition`; without it, one process
//! reads every partition (the reference the tests compare the group with).
//!
//! With `--join window`, a two-input job instead: each line's first word and its last word,
//! two keyed streams, joined per word in 1-second tumbling event-time windows
//! (`window_join`), one JSON row per pair of lines; with `--join interval`, lines at most
//! 500 ms apart (`interval_join(..).between(-500, 500)`); with `--join connect`, the window
//! join written by hand as a keyed co-process function over the connected streams. In a
//! group both inputs cross instances through the operator's topic.
//!
//! With `--rekey map`, the words cross the instances twice: keyed, passed through a map,
//! and keyed again before the window count; with `--rekey window`, counted per window, and
//! the counts keyed again and summed per window (`--slow-rekey-ms MS` slows the stage between
//! the two down, so that an instance falls behind in event time).
//!
//! With `--output-dir DIR`, the window counts go to part files in `DIR` (a `FileSink`, text
//! lines `start end word count`) instead of `--output`: in a group, its parts are committed
//! at the group's commits; with `--processing-guarantee exactly-once`, with the group's Kafka
//! transactions (exactly once). With `--rebalance-output` too, they reach the sink through
//! `rebalance()`: the sink is a stage of its own, behind an in-process exchange, and commits
//! at the group's commits all the same (at least once: an exactly-once group refuses it).
//!
//! With `--table NAME`, the window counts go to the PostgreSQL table `NAME (window_start
//! BIGINT, window_end BIGINT, word TEXT, count BIGINT)` of `--jdbc-url` (a `JdbcSink`; the
//! table must exist): at least once, or, with `--processing-guarantee exactly-once`, an
//! exactly-once sink whose prepared transactions commit with the group's Kafka transactions
//! (so not with `--rebalance-output` then: behind the exchange no Kafka transaction commits
//! them, and the job is refused).

use flow::clap::{value_parser, Arg};
use flow::connectors::format::{Json, Utf8};
use flow::connectors::kafka::{DeliveryGuarantee, KafkaSink, KafkaSource};
use flow::prelude::*;
use flow::Sink;
use std::process::ExitCode;
use std::time::Duration;

/// A word at the event time of its line.
#[derive(Row, Clone, Debug)]
struct Word {
    word: String,
}

/// One window's count of one word.
#[derive(Row, Clone, Debug)]
struct WindowCount {
    start: i64,
    end: i64,
    word: String,
    count: i64,
}

/// With `--join`: a line whose first word is `word` and a line of the same 1-second window
/// (or at most 500 ms apart) whose last word is `word`, by their event times.
#[derive(Row, Clone, Debug)]
struct Pair {
    word: String,
    first: i64,
    last: i64,
}

/// With `--join connect`: the window join written by hand, a keyed co-process function over
/// the two keyed streams (Flink's `KeyedCoProcessFunction`). Per word and open 1-second
/// window it keeps the event times of the lines that start and that end with the word; a
/// row pairs with the other side's rows of its window so far, and a timer drops the window
/// once the watermark passed it.
#[derive(Clone, Default, KeyedState)]
struct PairsByHand {
    #[state]
    windows: MapState<i64, (Vec<i64>, Vec<i64>)>,
}

#[co_process_function]
impl PairsByHand {
    fn process1(&mut self, w: Word, ctx: &mut ProcessContext<'_, String>, out: &mut Vec<Pair>) {
        pair_by_hand(&mut self.windows, w, true, ctx, out);
    }
    fn process2(&mut self, w: Word, ctx: &mut ProcessContext<'_, String>, out: &mut Vec<Pair>) {
        pair_by_hand(&mut self.windows, w, false, ctx, out);
    }
    fn on_timer(&mut self, at: i64, _: &mut ProcessContext<'_, String>, _: &mut Vec<Pair>) {
        self.windows.remove(&(at + 1 - 1000));
    }
}

/// A line's first (`first`) or last word `w` in `PairsByHand`: paired with the other
/// side's lines of its window, then kept for those to come.
fn pair_by_hand(
    windows: &mut MapState<i64, (Vec<i64>, Vec<i64>)>,
    w: Word,
    first: bool,
    ctx: &mut ProcessContext<'_, String>,
    out: &mut Vec<Pair>,
) {
    let Some(t) = ctx.timestamp() else {
        return;
    };
    let start = t - t.rem_euclid(1000);
    if start + 999 <= ctx.current_watermark() {
        // Late: its window was dropped (as `window_join` drops such a row).
        return;
    }
    if !windows.contains(&start) {
        ctx.register_event_time_timer(start + 999);
    }
    let (firsts, lasts) = windows.entry_or_default(start);
    let pair = |first, last| Pair {
        word: w.word.clone(),
        first,
        last,
    };
    if first {
        out.extend(lasts.iter().map(|&last| pair(t, last)));
        firsts.push(t);
    } else {
        out.extend(firsts.iter().map(|&first| pair(first, t)));
        lasts.push(t);
    }
}

fn run() -> flow::Result<()> {
    let args = StreamEnv::command("scale_out")
        .arg(
            Arg::new("brokers")
                .long("brokers")
                .value_name("HOST:PORT")
                .default_value("127.0.0.1:9092")
                .help("The Kafka brokers of the input and output topics"),
        )
        .arg(
            Arg::new("input")
                .long("input")
                .value_name("TOPIC")
                .default_value("scale_out_lines")
                .help("The topic of text lines (it must exist)"),
        )
        .arg(
            Arg::new("output")
                .long("output")
                .value_name("TOPIC")
                .default_value("scale_out_counts")
                .help("The topic the window counts go to, as JSON (it must exist)"),
        )
        .arg(
            Arg::new("output-dir")
                .long("output-dir")
                .value_name("DIR")
                .conflicts_with("join")
                .help("Write the window counts to part files in DIR instead of --output (a FileSink: text lines `start end word count`; in a group its parts commit at the group's commits, with its Kafka transactions under --processing-guarantee exactly-once)"),
        )
        .arg(
            Arg::new("table")
                .long("table")
                .value_name("NAME")
                .help("Write the window counts to the PostgreSQL table NAME (window_start BIGINT, window_end BIGINT, word TEXT, count BIGINT) of --jdbc-url instead of --output (a JdbcSink; exactly-once with --processing-guarantee exactly-once)"),
        )
        .arg(
            Arg::new("jdbc-url")
                .long("jdbc-url")
                .value_name("URL")
                .default_value("postgresql://flow:flow@127.0.0.1:15432/flow")
                .help("The PostgreSQL database of --table"),
        )
        .arg(
            Arg::new("rebalance-output")
                .long("rebalance-output")
                .action(flow::clap::ArgAction::SetTrue)
                .requires("output-dir")
                .help("With --output-dir: send the window counts to the FileSink through rebalance() (the sink a stage of its own, behind an in-process exchange)"),
        )
        .arg(
            Arg::new("rebalance-input")
                .long("rebalance-input")
                .action(flow::clap::ArgAction::SetTrue)
                .conflicts_with_all(["rebalance-output", "join"])
                .help("Send the lines to the word splitting through rebalance() (an in-process exchange before the key_by: the source's chain writes no repartition topic itself, and a leaving source waits for the others to read its partitions on)"),
        )
        .arg(
            Arg::new("dead-letters")
                .long("dead-letters")
                .value_name("DIR")
                .help("Write input records that are not UTF-8 to part files in DIR (a FileSink of dead letters: `topic partition offset error payload`) and go on; without it such a record fails the job"),
        )
        .arg(
            Arg::new("source-group")
                .long("source-group")
                .value_name("NAME")
                .help("The input's consumer group (default: the instance group, or `scale_out`)"),
        )
        .arg(
            Arg::new("stop-when-idle")
                .long("stop-when-idle")
                .value_name("SECS")
                .value_parser(value_parser!(u64).range(1..))
                .help("End once the input delivered nothing for SECS seconds (after its first record); without it the job runs until stopped: SIGTERM leaves the group (or stops the job), SIGUSR1 drains it (the input ends where it is, the last windows fire)"),
        )
        .arg(
            Arg::new("rekey")
                .long("rekey")
                .value_name("KIND")
                .value_parser(["map", "window"])
                .conflicts_with_all(["join", "rebalance-input", "rebalance-output"])
                .help("Cross the instances twice, through a second key_by: the words keyed, then passed through a map and keyed again before the window count (map), or counted per window and the counts keyed again and summed per window (window)"),
        )
        .arg(
            Arg::new("slow-rekey-ms")
                .long("slow-rekey-ms")
                .value_name("MS")
                .value_parser(value_parser!(u64))
                .requires("rekey")
                .help("With --rekey: the stage between the two key_bys sleeps MS ms per word (the map per row; the window count per word it counts), so that the instance falls behind in event time (run it with --scheduling threads)"),
        )
        .arg(
            Arg::new("join")
                .long("join")
                .value_name("KIND")
                .value_parser(["window", "interval", "connect"])
                .help("Run a two-input job instead: lines' first and last words joined per word, in 1-second windows (window; connect: the same by a co-process function) or at most 500 ms apart (interval), one JSON pair per two lines, to --output"),
        )
        .get_matches();
    let env = StreamEnv::from_matches(&args);
    let get = |name: &str| args.get_one::<String>(name).cloned();
    let brokers = get("brokers").expect("has a default");
    let group = get("source-group")
        .or_else(|| env.instances().map(|i| i.group.clone()))
        .unwrap_or_else(|| "scale_out".into());
    let mut lines = KafkaSource::builder()
        .bootstrap_servers(&brokers)
        .topic(get("input").expect("has a default"))
        .group_id(group)
        .format(Utf8);
    if let Some(secs) = args.get_one::<u64>("stop-when-idle") {
        lines = lines.stop_when_idle(Duration::from_secs(*secs));
    }
    if let Some(dir) = get("dead-letters") {
        lines = lines.bad_records(BadRecords::dead_letter(FileSink::row_format(dir)));
    }
    let lines = lines.build()?;
    let output = get("output").expect("has a default");
    if let Some(kind) = get("join") {
        return join(env, lines, &brokers, &output, &kind);
    }
    let slow = Duration::from_millis(*args.get_one::<u64>("slow-rekey-ms").unwrap_or(&0));
    let rebalanced = if args.get_flag("rebalance-input") {
        Rebalanced::Input
    } else if args.get_flag("rebalance-output") {
        Rebalanced::Output
    } else if get("rekey").as_deref() == Some("map") {
        Rebalanced::RekeyMap(slow)
    } else if get("rekey").as_deref() == Some("window") {
        Rebalanced::RekeyWindow(slow)
    } else {
        Rebalanced::No
    };
    if let Some(dir) = get("output-dir") {
        return count_words(env, lines, FileSink::row_format(dir), rebalanced);
    }
    if let Some(table) = get("table") {
        #[cfg(feature = "postgres")]
        {
            use flow::connectors::jdbc::{
                JdbcConnectionOptions, JdbcExactlyOnceOptions, JdbcExecutionOptions, JdbcSink,
                Params,
            };
            let url = get("jdbc-url").expect("has a default");
            let sql = format!(
                "INSERT INTO {table} (window_start, window_end, word, count) VALUES ($1, $2, $3, $4)"
            );
            fn bind<'a>(c: &'a WindowCount, p: &mut Params<'a>) {
                p.add(&c.start).add(&c.end).add(&c.word).add(&c.count);
            }
            let execution = JdbcExecutionOptions::default();
            let mut sink = JdbcSink::sink(sql, bind, execution, JdbcConnectionOptions::new(url));
            if env.instances().is_some_and(|i| i.exactly_once) {
                // Prepared at each of the group's commits, committed with its Kafka transaction.
                sink = sink.exactly_once(JdbcExactlyOnceOptions::default());
            }
            return count_words(env, lines, sink, rebalanced);
        }
        #[cfg(not(feature = "postgres"))]
        return Err(flow::Error::Config(format!(
            "--table {table} needs the `postgres` feature"
        )));
    }
    let mut counts = KafkaSink::builder()
        .bootstrap_servers(&brokers)
        .topic(output)
        .format(Json::<WindowCount>::new());
    if env.instances().is_some_and(|i| i.exactly_once) {
        // `--processing-guarantee exactly-once`: the counts go into the transactions of the
        // repartition topic's readers, which commit the rows they counted (no transactional
        // id prefix: the readers' transactions have their ids).
        counts = counts.delivery_guarantee(DeliveryGuarantee::ExactlyOnce);
    }
    count_words(env, lines, counts.build()?, rebalanced)
}

/// Where the word count has an in-process exchange (`rebalance()`), or a second `key_by`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rebalanced {
    No,
    /// Between the source and the word splitting.
    Input,
    /// Between the window counts and their sink.
    Output,
    /// The words keyed, passed through a map that sleeps this long per row, and keyed again.
    RekeyMap(Duration),
    /// The words counted per window (sleeping this long per word), the counts keyed again
    /// and summed per window.
    RekeyWindow(Duration),
}

/// Sleeps `slow` (when not zero): the map between two `key_by`s of `--slow-rekey-ms`.
fn slow_down(slow: Duration) {
    if !slow.is_zero() {
        std::thread::sleep(slow);
    }
}

/// The words of `line`.
fn words(line: &str) -> impl Iterator<Item = Word> + '_ {
    line.split_whitespace().map(|w| Word { word: w.to_owned() })
}

/// The word count: `lines` split into words, counted per word and 1-second window, into
/// `counts` (`rebalanced`: with a `rebalance()` where it says).
fn count_words<S: Sink<WindowCount>>(
    env: StreamEnv,
    lines: KafkaSource<Utf8>,
    counts: S,
    rebalanced: Rebalanced,
) -> flow::Result<()> {
    let count = |word: &String, window: &TimeWindow, rows: &[Word], out: &mut Vec<WindowCount>| {
        out.push(WindowCount {
            start: window.start,
            end: window.end,
            word: word.clone(),
            count: rows.len() as i64,
        })
    };
    let watermarks = Watermarks::bounded_out_of_orderness(Duration::from_secs(1));
    if rebalanced == Rebalanced::Output {
        flow! { env =>
            source(lines, watermarks)
                .flat_map(|line: String, out: &mut Vec<Word>| out.extend(words(&line)))
                .key_by(|w| w.word.clone())
                .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
                .process(count)
                .name("count per window")
                .rebalance()
                .sink_to(counts);
        }
    } else if rebalanced == Rebalanced::Input {
        flow! { env =>
            source(lines, watermarks)
                .rebalance()
                .flat_map(|line: String, out: &mut Vec<Word>| out.extend(words(&line)))
                .key_by(|w| w.word.clone())
                .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
                .process(count)
                .name("count per window")
                .sink_to(counts);
        }
    } else if let Rebalanced::RekeyMap(slow) = rebalanced {
        let pass = move |w: Word| {
            slow_down(slow);
            w
        };
        flow! { env =>
            source(lines, watermarks)
                .flat_map(|line: String, out: &mut Vec<Word>| out.extend(words(&line)))
                .key_by(|w| w.word.clone())
                .map(pass)
                .name("rekey")
                .key_by(|w| w.word.clone())
                .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
                .process(count)
                .name("count per window")
                .sink_to(counts);
        }
    } else if let Rebalanced::RekeyWindow(slow) = rebalanced {
        let count =
            move |word: &String, window: &TimeWindow, rows: &[Word], out: &mut Vec<WindowCount>| {
                slow_down(slow * rows.len() as u32);
                count(word, window, rows, out)
            };
        // The counts of a window come out at its last millisecond, in the same window.
        let sum = |word: &String,
                   window: &TimeWindow,
                   rows: &[WindowCount],
                   out: &mut Vec<WindowCount>| {
            out.push(WindowCount {
                start: window.start,
                end: window.end,
                word: word.clone(),
                count: rows.iter().map(|c| c.count).sum(),
            })
        };
        flow! { env =>
            source(lines, watermarks)
                .flat_map(|line: String, out: &mut Vec<Word>| out.extend(words(&line)))
                .key_by(|w| w.word.clone())
                .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
                .process(count)
                .name("count per window")
                .key_by(|c| c.word.clone())
                .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
                .process(sum)
                .name("sum per window")
                .sink_to(counts);
        }
    } else {
        flow! { env =>
            source(lines, watermarks)
                .flat_map(|line: String, out: &mut Vec<Word>| out.extend(words(&line)))
                .key_by(|w| w.word.clone())
                .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
                .process(count)
                .name("count per window")
                .sink_to(counts);
        }
    }
    let result = env.execute("scale_out")?;
    if let Some(m) = result.operator("count per window") {
        // With `--rekey window` the rows the sums drop as late count too.
        let late = m.late_rows + result.operator("sum per window").map_or(0, |s| s.late_rows);
        eprintln!(
            "scale_out: {} words counted here, {} window counts, {} late rows dropped",
            m.rows_in, m.rows_out, late
        );
    }
    Ok(())
}

/// The `--join kind` job: two keyed streams of one source, window-joined, interval-joined,
/// or connected and paired by a co-process function.
fn join(
    env: StreamEnv,
    lines: KafkaSource<Utf8>,
    brokers: &str,
    output: &str,
    kind: &str,
) -> flow::Result<()> {
    let pairs = KafkaSink::builder()
        .bootstrap_servers(brokers)
        .topic(output)
        .format(Json::<Pair>::new())
        .build()?;
    let word = |line: &str, last: bool| {
        let mut words = line.split_whitespace();
        let w = if last {
            words.next_back()
        } else {
            words.next()
        };
        Word {
            word: w.unwrap_or_default().to_owned(),
        }
    };
    // The pair of two lines, by their event times (a join function's context has them).
    let pair = |a: &Word, first: i64, last: i64| Pair {
        word: a.word.clone(),
        first,
        last,
    };
    if kind == "connect" {
        flow! { env =>
            let lines = source(lines, Watermarks::bounded_out_of_orderness(Duration::from_secs(1)));
            let firsts = lines.map(move |l: String| word(&l, false)).key_by(|w| w.word.clone());
            let lasts = lines.map(move |l: String| word(&l, true)).key_by(|w| w.word.clone());
            firsts
                .connect(lasts)
                .process(PairsByHand::default())
                .name("pairs")
                .sink_to(pairs);
        }
    } else if kind == "window" {
        flow! { env =>
            let lines = source(lines, Watermarks::bounded_out_of_orderness(Duration::from_secs(1)));
            let firsts = lines.map(move |l: String| word(&l, false)).key_by(|w| w.word.clone());
            let lasts = lines.map(move |l: String| word(&l, true)).key_by(|w| w.word.clone());
            firsts
                .window_join(lasts, TumblingEventTimeWindows::of(Duration::from_secs(1)))
                .process(move |a, _b, ctx, out| out.push(pair(a, ctx.left_timestamp(), ctx.right_timestamp())))
                .name("pairs")
                .sink_to(pairs);
        }
    } else {
        flow! { env =>
            let lines = source(lines, Watermarks::bounded_out_of_orderness(Duration::from_secs(1)));
            let firsts = lines.map(move |l: String| word(&l, false)).key_by(|w| w.word.clone());
            let lasts = lines.map(move |l: String| word(&l, true)).key_by(|w| w.word.clone());
            firsts
                .interval_join(lasts)
                .between(-500, 500)
                .process(move |a, _b, ctx, out| out.push(pair(a, ctx.left_timestamp(), ctx.right_timestamp())))
                .name("pairs")
                .sink_to(pairs);
        }
    }
    let result = env.execute("scale_out --join")?;
    if let Some(m) = result.operator("pairs") {
        eprintln!(
            "scale_out: {} words joined here, {} pairs, {} late rows dropped",
            m.rows_in, m.rows_out, m.late_rows
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
