//! How a reader of a broker rides out an outage: errors that mean "unreachable" start a
//! clock, librdkafka keeps retrying, a metadata request every 2 s tells when the broker is
//! back, and an outage longer than the limit fails the job with the last error. Shared by the
//! [`KafkaSource`](super::KafkaSource) and the readers of repartition topics.

use super::fmt_duration;
use rdkafka::client::Client;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientContext;
use std::time::{Duration, Instant};

/// How often an unreachable broker is asked whether it answers again.
const PROBE_EVERY: Duration = Duration::from_secs(2);

pub(crate) struct Downtime {
    /// How long the broker may be unreachable.
    limit: Duration,
    /// How long one probe waits for an answer.
    probe_timeout: Duration,
    /// Since when the broker has been unreachable, if it is.
    since: Option<Instant>,
    last_probe: Instant,
    /// The last connection error, for the message when the reader gives up.
    last_error: String,
}

impl Downtime {
    pub(crate) fn new(limit: Duration, connect_timeout: Duration) -> Self {
        Downtime {
            limit,
            probe_timeout: connect_timeout.min(PROBE_EVERY),
            since: None,
            last_probe: Instant::now(),
            last_error: String::new(),
        }
    }

    /// How long the broker may be unreachable.
    pub(crate) fn limit(&self) -> Duration {
        self.limit
    }

    /// Whether `e` says the broker is unreachable (librdkafka retries), rather than that
    /// something is wrong with the request.
    pub(crate) fn is_unreachable(e: &KafkaError) -> bool {
        e.rdkafka_error_code()
            .is_some_and(Self::is_unreachable_code)
    }

    /// [`Downtime::is_unreachable`] of an error code.
    pub(crate) fn is_unreachable_code(code: RDKafkaErrorCode) -> bool {
        matches!(
            code,
            RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::Resolve
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
        )
    }

    /// Records that the broker was unreachable (`e`); the clock starts at the first such
    /// error. True when this error starts an outage.
    pub(crate) fn unreachable(&mut self, e: &KafkaError) -> bool {
        self.last_error = e.to_string();
        let starts = self.since.is_none();
        self.since.get_or_insert_with(Instant::now);
        starts
    }

    /// Whether the broker is unreachable now, as far as the reader knows.
    pub(crate) fn is_down(&self) -> bool {
        self.since.is_some()
    }

    /// The broker answered (a record arrived). True when this ends an outage.
    pub(crate) fn answered(&mut self) -> bool {
        self.since.take().is_some()
    }

    /// While the broker is unreachable: whether it answers again (asked every 2 s), or has
    /// been away longer than the limit, which is the error returned.
    pub(crate) fn check<C: ClientContext>(&mut self, client: &Client<C>) -> Result<(), String> {
        let Some(since) = self.since else {
            return Ok(());
        };
        let now = Instant::now();
        if now.duration_since(self.last_probe) >= PROBE_EVERY {
            self.last_probe = now;
            if client.fetch_metadata(None, self.probe_timeout).is_ok() {
                self.since = None;
                return Ok(());
            }
        }
        if now.duration_since(since) >= self.limit {
            return Err(format!(
                "the broker has been unreachable for {} (librdkafka retried meanwhile): {}",
                fmt_duration(self.limit),
                self.last_error
            ));
        }
        Ok(())
    }
}
