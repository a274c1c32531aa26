//! The Kafka connectors' settings: where reading starts, what happens to bad records, and the
//! client properties shared by sources, sinks and the admin client.

use flow_runtime::{Result, Timestamp};
use rdkafka::ClientConfig;
use std::time::Duration;

/// Where a [`KafkaSource`](super::KafkaSource) starts reading each partition (Flink's
/// `OffsetsInitializer`).
///
/// # Default
/// [`StartingOffsets::Committed`] with fallback [`OffsetReset::Earliest`]: resume where the
/// group left off, and read a partition the group never committed from its beginning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartingOffsets {
    /// The earliest offset still in the partition.
    Earliest,
    /// The end of the partition: only records produced after the start.
    Latest,
    /// The group's committed offset; `fallback` where the group has none.
    Committed {
        /// Where to start in a partition without a committed offset.
        fallback: OffsetReset,
    },
    /// The first record whose timestamp is at or after this one (milliseconds since the
    /// epoch); the end of the partition when there is none.
    Timestamp(Timestamp),
}

impl Default for StartingOffsets {
    fn default() -> Self {
        StartingOffsets::Committed {
            fallback: OffsetReset::Earliest,
        }
    }
}

/// What a [`KafkaSink`](super::KafkaSink) promises about its rows after a failure (Flink's
/// `DeliveryGuarantee`).
///
/// # Default
/// [`DeliveryGuarantee::AtLeastOnce`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeliveryGuarantee {
    /// Every row is written; a job restarted from a checkpoint may write again rows the failed
    /// run wrote after that checkpoint.
    #[default]
    AtLeastOnce,
    /// Every row is written once, as seen by `read_committed` consumers: each checkpoint's
    /// rows are one Kafka transaction, committed when the checkpoint completes.
    ExactlyOnce,
}

/// Where to start in a partition without a committed offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetReset {
    /// The earliest offset still in the partition.
    Earliest,
    /// The end of the partition.
    Latest,
}

/// The environment variable whose value (librdkafka's `debug` contexts, e.g. `cgrp,fetch`)
/// every Kafka client of the job takes: a diagnostic for group and broker troubles.
pub(crate) const DEBUG_ENV: &str = "FLOW_KAFKA_DEBUG";

/// The client settings every Kafka connector has: brokers, extra librdkafka properties and how
/// long to wait for the broker at start.
#[derive(Clone, Debug)]
pub(crate) struct ClientSettings {
    pub(crate) bootstrap_servers: String,
    pub(crate) properties: Vec<(String, String)>,
    pub(crate) connect_timeout: Duration,
}

impl ClientSettings {
    /// 10 s: the broker must answer a metadata request within it when a connector starts.
    pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

    pub(crate) fn new() -> Self {
        ClientSettings {
            bootstrap_servers: String::new(),
            properties: Vec::new(),
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// The librdkafka configuration: `defaults` first, then the user's properties over them.
    pub(crate) fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers);
        for (k, v) in defaults {
            c.set(*k, *v);
        }
        // librdkafka's own logs for every client of the job (e.g. `cgrp` for consumer
        // groups), shown with RUST_LOG=librdkafka=debug; a connector's `debug` property wins.
        if let Ok(contexts) = std::env::var(DEBUG_ENV) {
            if !contexts.is_empty() {
                c.set("debug", contexts);
            }
        }
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }

    pub(crate) fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Checks the settings and the [`DEBUG_ENV`] environment variable.
    pub(crate) fn validate(&self, connector: &str) -> Result<()> {
        self.validate_with(connector, std::env::var(DEBUG_ENV).ok().as_deref())
    }

    /// [`validate`](Self::validate) with `debug_env` as the variable's value.
    fn validate_with(&self, connector: &str, debug_env: Option<&str>) -> Result<()> {
        if self.bootstrap_servers.trim().is_empty() {
            return Err(flow_runtime::Error::Config(format!(
                "{connector}: no bootstrap servers: call `.bootstrap_servers(\"host:port\")`"
            )));
        }
        if self.connect_timeout.is_zero() {
            return Err(flow_runtime::Error::Config(format!(
                "{connector}: the connect timeout must be positive"
            )));
        }
        match self.property("debug") {
            // The connector's own `debug` wins over the variable (`client_config`).
            Some(_) => Ok(()),
            None => check_debug_contexts(connector, debug_env),
        }
    }
}

/// The properties that make a group member's session time out after `session`:
/// `session.timeout.ms`, and a `max.poll.interval.ms` of at least that (librdkafka refuses
/// one below the session timeout; its default, 5 min, otherwise).
pub(crate) fn session_properties(session: Duration) -> [(&'static str, String); 2] {
    let max_poll = session.max(Duration::from_secs(300));
    [
        ("session.timeout.ms", session.as_millis().to_string()),
        ("max.poll.interval.ms", max_poll.as_millis().to_string()),
    ]
}

/// Refuses a [`DEBUG_ENV`] value that librdkafka would refuse (an unknown debug context), with
/// an error that names the variable: else the first client of the job fails with librdkafka's
/// words about a `debug` property the user never set.
fn check_debug_contexts(connector: &str, value: Option<&str>) -> Result<()> {
    let Some(contexts) = value.filter(|v| !v.is_empty()) else {
        return Ok(());
    };
    match ClientConfig::new()
        .set("debug", contexts)
        .create_native_config()
    {
        Ok(_) => Ok(()),
        Err(e) => Err(flow_runtime::Error::Config(format!(
            "{connector}: {DEBUG_ENV}={contexts:?} is not a list of librdkafka debug contexts \
             (such as `cgrp,fetch` or `all`): {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_properties_override_defaults() {
        let mut s = ClientSettings::new();
        s.bootstrap_servers = "127.0.0.1:9092".into();
        s.properties.push(("linger.ms".into(), "50".into()));
        let c = s.client_config(&[("linger.ms", "5"), ("acks", "all")]);
        assert_eq!(c.get("linger.ms"), Some("50"));
        assert_eq!(c.get("acks"), Some("all"));
        assert_eq!(c.get("bootstrap.servers"), Some("127.0.0.1:9092"));
        assert_eq!(s.property("linger.ms"), Some("50"));
        assert!(s.validate_with("KafkaSource", None).is_ok());
        s.bootstrap_servers = " ".into();
        let e = s
            .validate_with("KafkaSource", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no bootstrap servers"), "{e}");
    }

    #[test]
    fn a_debug_environment_value_librdkafka_refuses_is_named() {
        // The variable itself is not set here: tests of this binary run in parallel.
        assert!(check_debug_contexts("KafkaSource", None).is_ok());
        assert!(check_debug_contexts("KafkaSource", Some("")).is_ok());
        assert!(check_debug_contexts("KafkaSource", Some("cgrp,fetch")).is_ok());
        let e = check_debug_contexts("KafkaSource", Some("cgrp,groups-please"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("KafkaSource") && e.contains("FLOW_KAFKA_DEBUG=\"cgrp,groups-please\""),
            "{e}"
        );
        // Through the settings; a connector's own `debug` property is what librdkafka gets.
        let mut s = ClientSettings::new();
        s.bootstrap_servers = "127.0.0.1:9092".into();
        assert!(s.validate_with("KafkaSink", Some("nonsense")).is_err());
        s.properties.push(("debug".into(), "cgrp".into()));
        assert!(s.validate_with("KafkaSink", Some("nonsense")).is_ok());
    }
}
