//! `--metrics-addr`: a running job's metrics over HTTP, scraped while it runs and checked
//! against the rows it was sent.
#![cfg(feature = "web")]

#[cfg(feature = "kafka")]
mod kafka_common;

use flow::prelude::*;
use flow::{Poll, Source, SourceOutput, SourceReader};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The numbers `0..n`, then nothing until `release` is set: a job that stays up with counts
/// known in advance.
struct Gated {
    n: u64,
    release: Arc<AtomicBool>,
}

struct GatedReader {
    next: u64,
    end: u64,
    release: Arc<AtomicBool>,
}

impl Source for Gated {
    type Row = u64;
    type Reader = GatedReader;
    fn is_bounded(&self) -> bool {
        true
    }
    fn into_readers(self, parallelism: usize, _: &Watermarks) -> flow::Result<Vec<GatedReader>> {
        let p = parallelism as u64;
        Ok((0..p)
            .map(|i| GatedReader {
                next: self.n * i / p,
                end: self.n * (i + 1) / p,
                release: self.release.clone(),
            })
            .collect())
    }
}

impl SourceReader for GatedReader {
    type Row = u64;
    fn poll<O: SourceOutput<u64>>(&mut self, out: &mut O, max_rows: usize) -> flow::Result<Poll> {
        let stop = self.end.min(self.next + max_rows as u64);
        while self.next < stop {
            out.collect(self.next);
            self.next += 1;
        }
        Ok(if self.next < self.end {
            Poll::Ready
        } else if self.release.load(Ordering::Relaxed) {
            Poll::Finished
        } else {
            Poll::Idle
        })
    }
}

/// A port nobody listens on now.
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// `GET path` over HTTP/1.1: the status line and the body.
fn get(addr: SocketAddr, path: &str) -> std::io::Result<(String, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Ok((
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    ))
}

/// The values of the samples of `metric` whose labels contain `label` (`operator="name"`),
/// in the order served.
fn samples(text: &str, metric: &str, label: &str) -> Vec<u64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
}

/// The sum of the samples of `metric` over the subtasks of the operator named `operator`.
fn sample(text: &str, metric: &str, operator: &str) -> Option<u64> {
    let values = samples(text, metric, &format!("operator=\"{operator}\""));
    (!values.is_empty()).then(|| values.iter().sum())
}

/// Scrapes `/metrics` until `done` says yes (or 20 s pass); gives the last text.
fn scrape_until(addr: SocketAddr, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok((status, body)) = get(addr, "/metrics") {
            assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
            if done(&body) || Instant::now() > deadline {
                return body;
            }
        } else if Instant::now() > deadline {
            panic!("the metrics endpoint at {addr} never answered");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn metrics_are_served_while_the_job_runs_and_count_every_row() {
    let addr = free_addr();
    let release = Arc::new(AtomicBool::new(false));
    let env = StreamEnv::new().with_parallelism(2).with_metrics_addr(addr);
    let gated = Gated {
        n: 10_000,
        release: release.clone(),
    };
    flow! { env =>
        source(gated)
            .name("numbers")
            .map(|x: u64| x * 3)
            .name("triple")
            .filter(|x: &u64| x % 2 == 0)
            .name("evens")
            .key_by(|x| x % 7)
            .map(|x: u64| x + 1)
            .name("plus one")
            .sink_to(DiscardSink)
            .name("discard");
    }
    let job = std::thread::spawn(move || env.execute("watched"));

    // The source sent all its rows and waits: every counter reaches its final value while the
    // job still runs.
    let text = scrape_until(addr, |t| {
        sample(t, "flow_operator_numRecordsIn_total", "discard") == Some(5_000)
    });
    for (operator, rows_in, rows_out) in [
        ("numbers", 0, 10_000),
        ("triple", 10_000, 10_000),
        ("evens", 10_000, 5_000),
        ("plus one", 5_000, 5_000),
        ("discard", 5_000, 5_000),
    ] {
        assert_eq!(
            sample(&text, "flow_operator_numRecordsIn_total", operator),
            Some(rows_in),
            "rows into {operator}:\n{text}"
        );
        assert_eq!(
            sample(&text, "flow_operator_numRecordsOut_total", operator),
            Some(rows_out),
            "rows out of {operator}:\n{text}"
        );
    }
    // One series per subtask (Flink's `subtask_index`), which add up to the operator's rows.
    let discard = samples(
        &text,
        "flow_operator_numRecordsIn_total",
        "operator=\"discard\"",
    );
    assert_eq!(discard.len(), 2, "{text}");
    assert!(text.contains("subtask_index=\"1\""), "{text}");
    assert!(text.contains("# TYPE flow_uptime_seconds gauge"), "{text}");
    assert!(
        text.contains("flow_job_numberOfFailedCheckpoints_total{job=\"watched\"} 0"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "{text}");

    // The JSON endpoint says the same.
    let (status, body) = get(addr, "/api/metrics").unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["job"], "watched");
    let ops = json["operators"].as_array().unwrap();
    let op = |name: &str| ops.iter().find(|o| o["name"] == name).unwrap().clone();
    assert_eq!(op("evens")["numRecordsIn"], 10_000);
    assert_eq!(op("evens")["numRecordsOut"], 5_000);
    assert_eq!(op("discard")["numRecordsIn"], 5_000);
    assert!(op("evens")["location"]
        .as_str()
        .unwrap()
        .contains("metrics.rs"));
    // The job runs fused (one parallelism, only `key_by` between stages): a task per
    // subtask, each running its source's split and its share of the keyed stage.
    let subtasks = json["subtasks"].as_array().unwrap();
    assert_eq!(subtasks.len(), 2, "{body}");
    // Per subtask, each operator's share: the keyed stage's subtasks split the rows the
    // source's subtasks sent between them (the `key_by`'s rows out in a subtask are the rows
    // of its keys, from both).
    for (name, total) in [("numbers", 10_000), ("evens", 5_000), ("plus one", 5_000)] {
        let shares: Vec<u64> = subtasks
            .iter()
            .flat_map(|s| s["operators"].as_array().unwrap())
            .filter(|o| o["name"] == name)
            .map(|o| o["numRecordsOut"].as_u64().unwrap())
            .collect();
        assert_eq!(shares.len(), 2, "{name}: {shares:?}");
        assert_eq!(shares.iter().sum::<u64>(), total, "{name}: {shares:?}");
    }
    let key_by = |field: &str| -> Vec<u64> {
        subtasks
            .iter()
            .flat_map(|s| s["operators"].as_array().unwrap())
            .filter(|o| o["name"] == "key_by")
            .map(|o| o[field].as_u64().unwrap())
            .collect()
    };
    assert_eq!(key_by("numRecordsIn").iter().sum::<u64>(), 5_000);
    assert_eq!(key_by("numRecordsOut").iter().sum::<u64>(), 5_000);
    let plus_one_in: Vec<u64> = subtasks
        .iter()
        .flat_map(|s| s["operators"].as_array().unwrap())
        .filter(|o| o["name"] == "plus one")
        .map(|o| o["numRecordsIn"].as_u64().unwrap())
        .collect();
    assert!(plus_one_in.iter().all(|&n| n > 0), "{plus_one_in:?}");
    assert_eq!(plus_one_in.iter().sum::<u64>(), 5_000);
    assert_eq!(plus_one_in, key_by("numRecordsOut"));
    // The plan as `--explain dot` prints it.
    let (status, dot) = get(addr, "/api/plan.dot").unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        dot.starts_with("digraph flow {") && dot.contains("plus one"),
        "{dot}"
    );

    // The source has nothing more to send and the rest nothing to do: over a second, every
    // subtask says it was idle most of it.
    std::thread::sleep(Duration::from_millis(1_200));
    let (_, body) = get(addr, "/api/metrics").unwrap();
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    for s in json["subtasks"].as_array().unwrap() {
        let idle = s["idleTimeMsPerSecond"].as_f64().unwrap();
        assert!(idle > 500.0, "an idle subtask: {s}");
        assert!(s["busyTimeMsPerSecond"].as_f64().unwrap() < 500.0, "{s}");
    }

    // A client that leaves mid-request costs the job nothing.
    let mut rude = TcpStream::connect(addr).unwrap();
    rude.write_all(b"GET /metr").unwrap();
    drop(rude);
    assert_eq!(get(addr, "/metrics").unwrap().0, "HTTP/1.1 200 OK");

    release.store(true, Ordering::Relaxed);
    let result = job.join().unwrap().unwrap();
    assert_eq!(result.operator("discard").unwrap().rows_in, 5_000);
    // The endpoint ends with the job.
    assert!(
        get(addr, "/metrics").is_err(),
        "still serving after the job"
    );
}

#[test]
fn an_address_in_use_fails_the_job_at_start_naming_it() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    for (flag, env) in [
        ("--metrics-addr", StreamEnv::new().with_metrics_addr(addr)),
        ("--web-ui", StreamEnv::new().with_web_ui(addr)),
    ] {
        flow! { env =>
            from_collection(vec![1, 2, 3]).sink_to(DiscardSink);
        }
        let err = env.execute("taken").unwrap_err().to_string();
        assert!(
            err.contains(&format!("{flag} {addr}")),
            "names the flag and the address: {err}"
        );
    }
}

#[test]
fn a_non_loopback_address_needs_web_public() {
    for (flag, env) in [
        (
            "--metrics-addr",
            StreamEnv::new().with_metrics_addr("0.0.0.0:0".parse().unwrap()),
        ),
        (
            "--web-ui",
            StreamEnv::new().with_web_ui("0.0.0.0:0".parse().unwrap()),
        ),
    ] {
        flow! { env =>
            from_collection(vec![1, 2, 3]).sink_to(DiscardSink);
        }
        let err = env.execute("exposed").unwrap_err().to_string();
        assert!(
            err.contains(&format!("{flag} 0.0.0.0:0")) && err.contains("--web-public"),
            "{err}"
        );
    }
    let env = StreamEnv::new()
        .with_metrics_addr("0.0.0.0:0".parse().unwrap())
        .with_web_public(true);
    flow! { env =>
        from_collection(vec![1, 2, 3]).sink_to(DiscardSink);
    }
    env.execute("public").unwrap();
    let parsed = StreamEnv::command("job").try_get_matches_from(["job", "--web-public"]);
    assert!(parsed.is_ok());
}

#[test]
fn the_web_flags_take_an_address_or_a_port() {
    for flag in ["--metrics-addr", "--web-ui"] {
        let parse = |v: &str| StreamEnv::command("job").try_get_matches_from(["job", flag, v]);
        assert!(parse("127.0.0.1:9249").is_ok());
        assert!(parse("9249").is_ok());
        let err = parse("nine").unwrap_err().to_string();
        assert!(err.contains("expected host:port"), "{flag}: {err}");
    }
}

#[test]
fn a_slow_operator_backpressures_its_upstream_and_the_metrics_say_so() {
    let addr = free_addr();
    let release = Arc::new(AtomicBool::new(true));
    let slow = Arc::new(AtomicBool::new(true));
    // A thread per task: on workers a task's busy time also holds the turns its worker gave
    // to the slow map between two of the source's batches (README, "Watching a job").
    let env = StreamEnv::new()
        .with_parallelism(2)
        .with_scheduling(flow::Scheduling::Threads)
        .with_metrics_addr(addr);
    let numbers = Gated {
        n: 1_000_000,
        release,
    };
    let slowly = slow.clone();
    // One keyed subtask for two source subtasks: a stage of its own (a job whose stages
    // all have one parallelism and only `key_by` between them runs fused, each source
    // subtask and its share of the keyed rows in one task).
    flow! { env =>
        source(numbers)
            .name("numbers")
            .key_by(|x| *x)
            .map(move |x: u64| {
                if slowly.load(Ordering::Relaxed) {
                    // Spinning, not sleeping: a sleep of 50 us lasts as long as the host's
                    // timer slack makes it, and at a few thousand rows a second a source
                    // waits over a second for room in a channel of 8,192-row batches, and
                    // tells its metrics only between two waits.
                    let until = Instant::now() + Duration::from_micros(20);
                    while Instant::now() < until {
                        std::hint::spin_loop();
                    }
                }
                x
            })
            .name("slow")
            .parallelism(1)
            .sink_to(DiscardSink);
    }
    let job = std::thread::spawn(move || env.execute("backpressure"));
    // The source's channels fill up: it spends its time waiting for room, the slow map
    // working. Rates are measured between reads a second or more apart.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (source, keyed) = loop {
        // Refused until the job has bound its address.
        let Ok((_, body)) = get(addr, "/api/metrics") else {
            assert!(Instant::now() < deadline, "the endpoint never answered");
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        let subtasks = json["subtasks"].as_array().unwrap().clone();
        let stage = |st: u64| -> Vec<serde_json::Value> {
            subtasks
                .iter()
                .filter(|s| s["stage"] == st)
                .cloned()
                .collect()
        };
        let (source, keyed) = (stage(0), stage(1));
        let backpressured =
            |s: &serde_json::Value| s["backPressuredTimeMsPerSecond"].as_f64().unwrap();
        if source.iter().all(|s| backpressured(s) > 500.0) || Instant::now() > deadline {
            break (source, keyed);
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    slow.store(false, Ordering::Relaxed);
    for s in &source {
        assert!(
            s["backPressuredTimeMsPerSecond"].as_f64().unwrap() > 500.0,
            "the source waits for the slow map: {s}"
        );
    }
    for s in &keyed {
        assert!(
            s["busyTimeMsPerSecond"].as_f64().unwrap() > 500.0,
            "the slow map works: {s}"
        );
    }
    job.join().unwrap().unwrap();
}

#[test]
fn watermarks_in_and_out_of_each_subtask_and_failed_checkpoints() {
    let addr = free_addr();
    let release = Arc::new(AtomicBool::new(false));
    // A keyed reduce keeps state and no checkpoint directory saves it: its subtasks decline
    // the first checkpoint, which fails (and no more are taken).
    let env = StreamEnv::new()
        .with_parallelism(2)
        .with_metrics_addr(addr)
        .with_checkpoint_interval(Some(Duration::from_millis(100)));
    let numbers = Gated {
        n: 10_000,
        release: release.clone(),
    };
    flow! { env =>
        source(numbers)
            .name("numbers")
            .assign_timestamps_and_watermarks(Watermarks::monotonous(), |x: &u64| *x as i64)
            .key_by(|x| x % 10)
            .reduce(|a, b| a + b)
            .name("sum")
            .sink_to(DiscardSink);
    }
    let job = std::thread::spawn(move || env.execute("watermarks"));
    // Every row and the watermark after the last one reached the keyed stage (the tasks
    // publish independently: until then one may show a watermark the other has not yet).
    let text = scrape_until(addr, |t| {
        let input = samples(t, "flow_task_currentInputWatermark", "stage=\"0.1\"");
        sample(t, "flow_operator_numRecordsIn_total", "sum") == Some(10_000)
            && input.len() == 2
            && input.iter().all(|&w| w >= 4_000)
            && samples(t, "flow_task_currentOutputWatermark", "stage=\"0.0\"").len() == 2
            && t.contains("flow_job_numberOfFailedCheckpoints_total{job=\"watermarks\"} 1")
    });
    assert!(
        text.contains("flow_job_numberOfFailedCheckpoints_total{job=\"watermarks\"} 1"),
        "{text}"
    );
    // The sources generated watermarks up to their last row (the lowest over both: the
    // first subtask's numbers are 0..5000), and the keyed subtasks got the lowest of them.
    let out = samples(&text, "flow_task_currentOutputWatermark", "stage=\"0.0\"");
    assert_eq!(out.len(), 2, "{text}");
    assert!(out.iter().all(|&w| w >= 4_000), "{out:?}");
    let input = samples(&text, "flow_task_currentInputWatermark", "stage=\"0.1\"");
    assert!(
        input
            .iter()
            .all(|&w| w > 0 && w <= *out.iter().min().unwrap()),
        "{input:?} of {out:?}"
    );
    assert!(
        samples(&text, "flow_task_currentInputWatermark", "stage=\"0.0\"").is_empty(),
        "a source has no input watermark:\n{text}"
    );
    release.store(true, Ordering::Relaxed);
    let result = job.join().unwrap().unwrap();
    assert_eq!(result.checkpoints.failed, 1);
}

/// `/api/metrics` as JSON, once the endpoint answers.
fn json_metrics(addr: SocketAddr) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match get(addr, "/api/metrics") {
            Ok((_, body)) => return serde_json::from_str(&body).unwrap(),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("the endpoint at {addr} never answered: {e}"),
        }
    }
}

/// The source subtasks' partitions in `json`: `(offset, pending)` each.
fn partitions(json: &serde_json::Value) -> Vec<(i64, i64)> {
    json["subtasks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["partitions"].as_array().unwrap())
        .map(|p| {
            (
                p["currentOffset"].as_i64().unwrap(),
                p["pendingRecords"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// A map that takes 200 µs a row while `hold` is set: the Kafka reader in the same thread
/// falls behind (and still publishes its metrics between batches).
#[cfg(feature = "kafka")]
fn held(hold: &Arc<AtomicBool>) -> impl Fn(kafka_common::Person) -> i32 + Clone {
    let hold = hold.clone();
    move |p: kafka_common::Person| {
        if hold.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_micros(200));
        }
        p.id
    }
}

/// A job reading `topic` from its start (to its end offsets when `bounded`) through
/// [`held`], serving its metrics at `addr`; with the source's stop handle.
#[cfg(feature = "kafka")]
fn held_kafka_job(
    topic: &str,
    bounded: bool,
    addr: SocketAddr,
    hold: &Arc<AtomicBool>,
) -> (
    std::thread::JoinHandle<flow::Result<flow::JobResult>>,
    flow::StopHandle,
) {
    use flow::connectors::kafka::{KafkaSource, StartingOffsets};
    use kafka_common::{bootstrap, Person};
    let builder = KafkaSource::builder()
        .bootstrap_servers(bootstrap())
        .topic(topic)
        .format(Json::<Person>::new())
        .starting_offsets(StartingOffsets::Earliest);
    let src = if bounded { builder.bounded() } else { builder }
        .build()
        .unwrap();
    let stop = src.stop_handle();
    let env = StreamEnv::new().with_metrics_addr(addr);
    let wait = held(hold);
    flow! { env =>
        source(src, Watermarks::no_watermarks()).map(wait).sink_to(DiscardSink);
    }
    (std::thread::spawn(move || env.execute("held kafka")), stop)
}

#[cfg(feature = "kafka")]
#[test]
fn kafka_consumer_lag_per_partition_and_the_progress_of_a_bounded_read() {
    use kafka_common::{produce_people, topic};
    let t = topic("metrics-lag", 2);
    produce_people(&t, 1, 20_000);

    // Unbounded: the lag is the end the consumer last fetched minus its position.
    let addr = free_addr();
    let hold = Arc::new(AtomicBool::new(true));
    let (job, stop) = held_kafka_job(&t, false, addr, &hold);
    let deadline = Instant::now() + Duration::from_secs(30);
    let behind = loop {
        let p = partitions(&json_metrics(addr));
        if p.len() == 2 && p.iter().map(|(o, l)| o + l).sum::<i64>() == 20_000 {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "no lag of both partitions: {p:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        behind.iter().map(|(_, lag)| lag).sum::<i64>() > 10_000,
        "the held job is behind: {behind:?}"
    );
    let text = get(addr, "/metrics").unwrap().1;
    assert!(
        text.contains("flow_source_pendingRecords{") && text.contains("partition=\"1\""),
        "{text}"
    );
    hold.store(false, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let p = partitions(&json_metrics(addr));
        if p.iter().all(|(_, lag)| *lag == 0) && p.iter().map(|(o, _)| o).sum::<i64>() == 20_000 {
            break;
        }
        assert!(Instant::now() < deadline, "the lag never went to 0: {p:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.stop();
    job.join().unwrap().unwrap();

    // Bounded: records handed on of those up to the end offsets seen at the start.
    let addr = free_addr();
    hold.store(true, Ordering::Relaxed);
    let (job, _) = held_kafka_job(&t, true, addr, &hold);
    let deadline = Instant::now() + Duration::from_secs(30);
    let progress = loop {
        let json = json_metrics(addr);
        let progress = json["subtasks"][0]["progress"].clone();
        if progress.is_object() && partitions(&json).len() == 2 {
            break progress;
        }
        assert!(Instant::now() < deadline, "no progress: {json}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(progress["total"], 20_000, "{progress}");
    assert!(progress["done"].as_u64().unwrap() < 20_000, "{progress}");
    hold.store(false, Ordering::Relaxed);
    let result = job.join().unwrap().unwrap();
    assert_eq!(result.operators[0].rows_out, 20_000);
}
