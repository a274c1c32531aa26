//! The Kafka benchmarks' broker and names (`#[path]`-included by each).
#![allow(dead_code)]

use flow::connectors::kafka::rdkafka::error::{KafkaError, RDKafkaErrorCode};
use flow::connectors::kafka::rdkafka::producer::{BaseProducer, BaseRecord};
use flow::connectors::kafka::rdkafka::ClientConfig;
use std::process::Command;
use std::time::Duration;

/// An idempotent producer (`acks=all`, `linger.ms=5`) to `servers`, as flow's sink sets it.
pub fn producer(servers: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "30000")
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

/// Sends `record`, serving delivery reports while the producer's queue is full.
pub fn send_record(p: &BaseProducer, mut record: BaseRecord<'_, [u8], [u8]>) {
    loop {
        match p.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                p.poll(Duration::from_millis(10));
            }
            Err((e, _)) => panic!("send: {e}"),
        }
    }
}

/// `name` as a number, or `default`.
pub fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `prefix` made unique by the time.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{nanos}")
}

/// Runs `scripts/kafka-broker <command>` for the broker of `engine` (tansu's sqlite or memory
/// engine, or noida-db), each on a port and with state of its own: [`address`].
pub fn broker_script(command: &str, engine: &str) {
    let mut cmd = Command::new("bash");
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka-broker"))
        .arg(command);
    match engine {
        "sqlite" => {
            cmd.env("FLOW_KAFKA_BROKER", "tansu")
                .env("FLOW_KAFKA_ENGINE", "sqlite")
                .env("FLOW_KAFKA_PORT", "19294")
                .env(
                    "FLOW_KAFKA_STATE_DIR",
                    concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/target/kafka-broker-bench-sqlite"
                    ),
                );
        }
        "memory" => {
            cmd.env("FLOW_KAFKA_BROKER", "tansu")
                .env("FLOW_KAFKA_ENGINE", "memory")
                .env("FLOW_KAFKA_PORT", "19292")
                .env(
                    "FLOW_KAFKA_STATE_DIR",
                    concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/target/kafka-broker-bench-memory"
                    ),
                );
        }
        "noida" => {
            cmd.env("FLOW_KAFKA_BROKER", "noida")
                .env("FLOW_KAFKA_PORT", "19393")
                .env(
                    "FLOW_KAFKA_STATE_DIR",
                    concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/target/kafka-broker-bench-noida"
                    ),
                );
        }
        other => panic!("FLOW_BENCH_KAFKA_ENGINE must be sqlite, memory or noida, not {other}"),
    }
    // A fresh store every start: the benches write fresh topics.
    cmd.env_remove("FLOW_KAFKA_KEEP_DATA");
    let status = cmd.status().expect("run scripts/kafka-broker");
    assert!(status.success(), "scripts/kafka-broker {command} failed");
}

/// The address of the broker [`broker_script`] starts for `engine`.
pub fn address(engine: &str) -> &'static str {
    match engine {
        "sqlite" => "127.0.0.1:19294",
        "memory" => "127.0.0.1:19292",
        "noida" => "127.0.0.1:19393",
        other => panic!("FLOW_BENCH_KAFKA_ENGINE must be sqlite, memory or noida, not {other}"),
    }
}
