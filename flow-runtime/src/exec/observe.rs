//! Watching a running job: `--metrics-addr` serves its metrics over HTTP while it runs and
//! `--web-ui` a dashboard (the server itself is `crate::web`, built with the `web` feature), and a bounded job on a
//! terminal draws a progress bar on stderr (`progress.rs`, feature `progress`) unless
//! `--no-progress`.

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
    /// `--web-ui`: where the dashboard is served (and `/metrics`, `/api/metrics` too).
    pub(crate) web_ui: Option<SocketAddr>,
    /// `--web-public`: the two may listen on a non-loopback address.
    pub(crate) public: bool,
    /// A progress bar for a bounded job when stderr is a terminal (off: `--no-progress`).
    pub(crate) progress: bool,
}

/// What watches a job; stops when dropped (at the job's end): the server stops serving, the
/// bar is cleared.
pub(crate) struct Watching {
    #[cfg(feature = "web")]
    _servers: Vec<crate::web::Server>,
    #[cfg(feature = "progress")]
    _bar: Option<super::progress::Bar>,
}

impl Observe {
    /// Whether a job (`bounded` or not) gets a progress bar: asked for, bounded, stderr a
    /// terminal, and the bar built in (feature `progress`).
    fn bar(&self, bounded: bool) -> bool {
        use std::io::IsTerminal;
        cfg!(feature = "progress") && self.progress && bounded && std::io::stderr().is_terminal()
    }

    /// Whether anything reads the job's counters while it runs (tasks publish them only then).
    pub(crate) fn watched(&self, bounded: bool) -> bool {
        self.metrics_addr.is_some() || self.web_ui.is_some() || self.bar(bounded)
    }

    /// Starts serving `live` (bound before it returns: an address in use is an error here)
    /// and drawing its progress.
    pub(crate) fn start(
        &self,
        live: &Arc<Live>,
        checkpoints: &Arc<Coordinator>,
        bounded: bool,
    ) -> Result<Watching> {
        let wanted = [
            (self.metrics_addr, "--metrics-addr", false),
            (self.web_ui, "--web-ui", true),
        ];
        #[cfg(feature = "web")]
        let mut servers = Vec::new();
        for (addr, flag, dashboard) in wanted {
            let Some(addr) = addr else { continue };
            if !addr.ip().is_loopback() && !self.public {
                return Err(crate::Error::Config(format!(
                    "{flag} {addr}: not a loopback address, which would expose the job's \
                     metrics to the network with no authentication; pass --web-public to \
                     serve them there (or listen on 127.0.0.1)"
                )));
            }
            #[cfg(feature = "web")]
            {
                let (live, checkpoints) = (live.clone(), checkpoints.clone());
                let snapshot = Arc::new(move || live.snapshot(checkpoints.stats()));
                servers.push(crate::web::Server::start(addr, flag, snapshot, dashboard)?);
            }
            #[cfg(not(feature = "web"))]
            {
                let _ = (checkpoints, dashboard);
                return Err(crate::Error::Config(format!(
                    "{flag} {addr}: this program was built without flow's `web` feature \
                     (on by default), which serves it"
                )));
            }
        }
        #[cfg(feature = "progress")]
        let bar = if self.bar(bounded) {
            super::progress::Bar::start(live.clone())
        } else {
            None
        };
        let _ = (live, bounded);
        Ok(Watching {
            #[cfg(feature = "web")]
            _servers: servers,
            #[cfg(feature = "progress")]
            _bar: bar,
        })
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
