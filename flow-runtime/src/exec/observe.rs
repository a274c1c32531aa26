//! Watching a running job from outside: `--metrics-addr` serves its metrics over HTTP while it
//! runs (the server itself is [`crate::web`], built with the `web` feature).

use super::checkpoint::Coordinator;
use super::live::Live;
use crate::Result;
use std::net::SocketAddr;
use std::sync::Arc;

/// How a job may be watched while it runs.
#[derive(Clone, Debug, Default)]
pub struct Observe {
    /// `--metrics-addr`: where `/metrics` (Prometheus) and `/api/metrics` (JSON) are served.
    pub(crate) metrics_addr: Option<SocketAddr>,
}

/// What serves a watched job; stops serving when dropped (at the job's end).
pub(crate) struct Serving {
    #[cfg(feature = "web")]
    _server: crate::web::Server,
}

impl Observe {
    /// Whether anything reads the job's counters while it runs (tasks publish them only then).
    pub(crate) fn watched(&self) -> bool {
        self.metrics_addr.is_some()
    }

    /// Starts serving `live` (bound before it returns: an address in use is an error here).
    pub(crate) fn serve(
        &self,
        live: &Arc<Live>,
        checkpoints: &Arc<Coordinator>,
    ) -> Result<Option<Serving>> {
        let Some(addr) = self.metrics_addr else {
            return Ok(None);
        };
        #[cfg(feature = "web")]
        {
            let (live, checkpoints) = (live.clone(), checkpoints.clone());
            let snapshot = Arc::new(move || live.snapshot(checkpoints.stats()));
            Ok(Some(Serving {
                _server: crate::web::Server::start(addr, snapshot)?,
            }))
        }
        #[cfg(not(feature = "web"))]
        {
            let _ = (live, checkpoints);
            Err(crate::Error::Config(format!(
                "--metrics-addr {addr}: this program was built without flow's `web` feature \
                 (on by default), which serves the metrics"
            )))
        }
    }
}

/// Parses `--metrics-addr`: `host:port` (`127.0.0.1:9249`) or a port alone (on 127.0.0.1).
pub(crate) fn parse_addr(s: &str) -> std::result::Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse::<SocketAddr>().map_err(|_| {
        format!("`{s}` is not an address: expected host:port such as 127.0.0.1:9249, or a port")
    })
}
