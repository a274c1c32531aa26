//! At-least-once through failures against a real broker: the source commits only offsets whose
//! rows the sink had written (checkpoints), so a job that crashes, or whose broker goes away
//! mid-job, loses no row when it is run again.
#![cfg(feature = "kafka")]

mod kafka_common;

use flow::prelude::*;
use kafka_common::{
    assert_at_least_once, bootstrap, committed_sum, produce_people_to, read_all_from, topic,
    unique, OwnBroker, Person,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 4;

/// Copies `from` to `to` through a map that counts rows in `seen` and panics at the first
/// row once `crash` is set: unbounded, or bounded for the rerun.
#[allow(clippy::too_many_arguments)]
fn copy_job(
    servers: &str,
    from: &str,
    to: &str,
    group: &str,
    bounded: bool,
    seen: Arc<AtomicUsize>,
    crash: Arc<AtomicBool>,
    timeouts: Duration,
) -> flow::Result<flow::JobResult> {
    let env = StreamEnv::new()
        .with_parallelism(2)
        .with_checkpoint_interval(Some(Duration::from_millis(100)));
    let mut src = KafkaSource::builder()
        .bootstrap_servers(servers)
        .topic(from)
        .group_id(group)
        .connect_timeout(timeouts)
        .max_broker_downtime(timeouts)
        .format(Json::<Person>::new());
    if bounded {
        src = src.bounded();
    }
    let src = src.build()?;
    let sink = KafkaSink::builder()
        .bootstrap_servers(servers)
        .topic(to)
        .delivery_timeout(timeouts)
        .format(Json::<Person>::new())
        .key_field("id")
        .build()?;
    flow! { env =>
        source(src, Watermarks::no_watermarks())
            .rebalance()
            .map(move |p: Person| {
                let n = seen.fetch_add(1, Ordering::Relaxed) + 1;
                if crash.load(Ordering::Relaxed) {
                    panic!("crash at row {n}");
                }
                p
            })
            .name("copy")
            .sink_to(sink);
    }
    env.execute("copy")
}

fn ids(rows: Vec<Person>) -> Vec<i32> {
    rows.into_iter().map(|p| p.id).collect()
}

/// The job crashes once checkpoints committed some offsets, with rows in flight; the rerun
/// from the committed offsets writes every row not written before (some twice, none lost).
#[test]
fn a_crashed_job_rerun_from_committed_offsets_loses_no_row() {
    const N: i64 = 20_000;
    const MORE: i64 = 1_000;
    let servers = bootstrap();
    let (from, to) = (
        topic("delivery-crash-in", PARTITIONS),
        topic("delivery-crash-out", PARTITIONS),
    );
    let group = unique("delivery-crash");
    produce_people_to(servers, &from, 1, N);

    let (seen, crash) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let job = {
        let (from, to, group, seen, crash) = (
            from.clone(),
            to.clone(),
            group.clone(),
            seen.clone(),
            crash.clone(),
        );
        std::thread::spawn(move || {
            copy_job(
                servers,
                &from,
                &to,
                &group,
                false,
                seen,
                crash,
                Duration::from_secs(10),
            )
        })
    };
    let start = Instant::now();
    while committed_sum(servers, &group, &from, PARTITIONS) == 0 {
        assert!(!job.is_finished(), "the job ended early");
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no checkpoint committed offsets within 60 s ({} rows read)",
            seen.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    crash.store(true, Ordering::Relaxed);
    // Rows for the map to crash on, should it have read everything already.
    produce_people_to(servers, &from, N + 1, N + MORE);
    let err = job.join().unwrap().expect_err("the first run crashes");
    assert!(err.to_string().contains("crash at row"), "{err}");
    let committed = committed_sum(servers, &group, &from, PARTITIONS);
    let read = seen.load(Ordering::Relaxed) as i64;
    assert!(
        committed > 0 && committed < read,
        "offsets committed before the crash ({committed}) cover only rows read before it ({read})"
    );

    let rerun = copy_job(
        servers,
        &from,
        &to,
        &group,
        true,
        Arc::default(),
        Arc::default(),
        Duration::from_secs(10),
    )
    .expect("the rerun");
    let reread = rerun.operator("copy").unwrap().rows_in;
    assert_eq!(
        reread,
        (N + MORE - committed) as u64,
        "the rerun starts at the committed offsets"
    );
    let written = ids(read_all_from(servers, &to, Json::<Person>::new(), 2));
    let duplicates = assert_at_least_once(written, 1, (N + MORE) as i32);
    eprintln!(
        "read {read} rows before the crash, committed {committed}; {duplicates} rows written twice"
    );
}

#[test]
fn a_broker_gone_mid_job_fails_it_and_a_rerun_loses_no_row() {
    const N: i64 = 40_000;
    let broker = OwnBroker::start(19192, "restart");
    let servers = broker.servers();
    let admin = flow::connectors::kafka::KafkaAdmin::connect(&servers).unwrap();
    let (from, to) = (unique("delivery-gone-in"), unique("delivery-gone-out"));
    admin.create_topic(&from, PARTITIONS).unwrap();
    admin.create_topic(&to, PARTITIONS).unwrap();
    drop(admin);
    let group = unique("delivery-gone");
    produce_people_to(&servers, &from, 1, N);

    let seen = Arc::new(AtomicUsize::new(0));
    let job = {
        let (servers, from, to, group, seen) = (
            servers.clone(),
            from.clone(),
            to.clone(),
            group.clone(),
            seen.clone(),
        );
        std::thread::spawn(move || {
            copy_job(
                &servers,
                &from,
                &to,
                &group,
                false,
                seen,
                Arc::default(),
                Duration::from_secs(3),
            )
        })
    };
    let start = Instant::now();
    while seen.load(Ordering::Relaxed) < 5_000 {
        assert!(!job.is_finished(), "the job ended early");
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the job did not get going: {} rows",
            seen.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    broker.stop();
    let stopped = Instant::now();
    let err = job
        .join()
        .unwrap()
        .expect_err("the job fails without its broker");
    let msg = err.to_string();
    eprintln!(
        "broker stopped after {} rows; the job failed {:?} later: {msg}",
        seen.load(Ordering::Relaxed),
        stopped.elapsed()
    );
    assert!(
        stopped.elapsed() < Duration::from_secs(30),
        "took {:?}",
        stopped.elapsed()
    );
    assert!(
        msg.contains("unreachable")
            || msg.contains("not delivered")
            || msg.contains("not acknowledged"),
        "{msg}"
    );

    broker.restart();
    copy_job(
        &servers,
        &from,
        &to,
        &group,
        true,
        Arc::default(),
        Arc::default(),
        Duration::from_secs(10),
    )
    .expect("the rerun");
    let duplicates = assert_at_least_once(
        ids(read_all_from(&servers, &to, Json::<Person>::new(), 2)),
        1,
        N as i32,
    );
    eprintln!("{duplicates} rows written twice");
}
