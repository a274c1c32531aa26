//! SQL tables on Kafka (`'connector' = 'kafka'`) against the real test broker: JSON rows read
//! from one topic, queried, and written to another. The tables' options are SQL text fixed
//! when the program is built, so they name the test broker's default address and fixed topics;
//! each run tells its own rows apart by their ids.
#![cfg(feature = "kafka")]

mod kafka_common;

use flow::connectors::format::Json;
use flow::prelude::*;
use kafka_common::{bootstrap, ensure_topic, produce_people, produce_raw, read_all, Person};

#[test]
fn a_kafka_table_is_queried_into_another() {
    assert_eq!(
        bootstrap(),
        "127.0.0.1:9092",
        "the SQL of this test names the test broker at its default address"
    );
    ensure_topic("flow-sql-people", 2);
    ensure_topic("flow-sql-shouted", 2);
    // Ids of this run only: the topics keep the rows of earlier runs.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let base = (nanos % 10_000_000) as i64 * 100;
    produce_people("flow-sql-people", base, base + 99);

    let env = StreamEnv::new().with_parallelism(2);
    flow! { env =>
        execute_sql("
            CREATE TABLE people (id INT, name STRING) WITH (
              'connector' = 'kafka',
              'topic' = 'flow-sql-people',
              'properties.bootstrap.servers' = '127.0.0.1:9092',
              'properties.group.id' = 'flow-sql',
              'scan.startup.mode' = 'earliest-offset',
              'scan.bounded.mode' = 'latest-offset',
              'format' = 'json'
            )
        ");
        execute_sql("
            CREATE TABLE shouted (id INT, name STRING) WITH (
              'connector' = 'kafka',
              'topic' = 'flow-sql-shouted',
              'properties.bootstrap.servers' = '127.0.0.1:9092',
              'format' = 'json'
            )
        ");
        execute_sql("INSERT INTO shouted SELECT id, UPPER(name) FROM people WHERE MOD(id, 2) = 0");
    }
    env.execute("kafka sql").unwrap();
    let mut ours: Vec<Person> = read_all("flow-sql-shouted", Json::<Person>::new(), 2)
        .into_iter()
        .filter(|p| (base..base + 100).contains(&(p.id as i64)))
        .collect();
    ours.sort();
    let expected: Vec<Person> = (base..base + 100)
        .filter(|n| n % 2 == 0)
        .map(|n| Person {
            id: n as i32,
            name: format!("P{n}"),
        })
        .collect();
    assert_eq!(ours, expected);
}

#[test]
fn a_bad_kafka_table_fails_the_job_at_start_naming_the_problem() {
    let env = StreamEnv::new();
    flow! { env =>
        execute_sql("
            CREATE TABLE broken (id INT) WITH (
              'connector' = 'kafka',
              'topic' = 'flow-sql-people',
              'properties.bootstrap.servers' = '127.0.0.1:9092',
              'properties.group.id' = 'flow-sql',
              'properties.no.such.setting' = 'x',
              'format' = 'json'
            )
        ");
        let rows = sql_query("SELECT id FROM broken").to_append_stream().collect();
    }
    let err = env.execute("bad kafka table").unwrap_err().to_string();
    assert!(err.contains("no.such.setting"), "{err}");
    let _ = rows;
}

/// A record of a JSON table that is not JSON fails the job naming its topic and offset; with
/// `'json.ignore-parse-errors' = 'true'` it is skipped and counted.
#[test]
fn a_bad_json_record_fails_a_kafka_table_or_is_skipped_and_counted() {
    ensure_topic("flow-sql-mixed", 1);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let base = (nanos % 10_000_000) as i32 * 100;
    produce_raw(
        "flow-sql-mixed",
        vec![
            format!("{{\"id\": {base}, \"name\": \"a\"}}").into_bytes(),
            b"not json".to_vec(),
            format!("{{\"id\": {}, \"name\": \"b\"}}", base + 1).into_bytes(),
        ],
    );

    let env = StreamEnv::new();
    flow! { env =>
        execute_sql("
            CREATE TABLE strict (id INT, name STRING) WITH (
              'connector' = 'kafka',
              'topic' = 'flow-sql-mixed',
              'properties.bootstrap.servers' = '127.0.0.1:9092',
              'scan.startup.mode' = 'earliest-offset',
              'scan.bounded.mode' = 'latest-offset',
              'format' = 'json'
            )
        ");
        let rows = sql_query("SELECT id FROM strict").to_append_stream().collect();
    }
    let err = env.execute("strict json").unwrap_err().to_string();
    // Earlier runs left their own bad record before this run's: one of them is named.
    assert!(
        err.contains("topic `flow-sql-mixed` partition 0 offset"),
        "{err}"
    );
    let _ = rows;

    let env = StreamEnv::new();
    flow! { env =>
        execute_sql("
            CREATE TABLE lenient (id INT, name STRING) WITH (
              'connector' = 'kafka',
              'topic' = 'flow-sql-mixed',
              'properties.bootstrap.servers' = '127.0.0.1:9092',
              'scan.startup.mode' = 'earliest-offset',
              'scan.bounded.mode' = 'latest-offset',
              'format' = 'json',
              'json.ignore-parse-errors' = 'true'
            )
        ");
        let rows = sql_query("SELECT id, name FROM lenient").to_append_stream().collect();
    }
    let result = env.execute("lenient json").unwrap();
    let ours: Vec<(Option<i32>, Option<String>)> = rows
        .take()
        .into_iter()
        .filter(|r| r.0.is_some_and(|id| (base..base + 2).contains(&id)))
        .collect();
    assert_eq!(
        ours,
        vec![
            (Some(base), Some("a".to_string())),
            (Some(base + 1), Some("b".to_string()))
        ]
    );
    let skipped: u64 = result.operators.iter().map(|o| o.skipped_records).sum();
    assert!(
        skipped >= 1,
        "the bad record is counted: {:?}",
        result.operators
    );
}
