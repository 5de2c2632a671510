//! Embedded MQTT broker for Luach.
//!
//! `luach-server` runs [rumqttd] in-process so a single install needs nothing else. This crate
//! owns the broker's configuration (tuned for a fleet of many small, chatty devices rather than
//! rumqttd's throughput-oriented defaults, see [`BrokerSettings`]) and hands the control plane
//! an in-process link ([`LocalLink`]) that sees every device's subtree without a TCP loop-back
//! client: one QoS 1 TCP subscription tops out around 2.4k msg/s, the in-process link does not.
//!
//! rumqttd keeps nothing across restarts and has no shutdown call; the broker threads live as
//! long as the process. Every delivery guarantee therefore lives in the control plane and the
//! agent, never in the broker.

mod config;
mod link;

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

pub use config::BrokerSettings;
pub use link::{Inbound, LinkClosed, LocalLink, Publisher};

/// Errors starting the broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("mqtt listener address {addr} is not available: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("could not open the in-process broker link: {0}")]
    Link(String),
    #[error("could not start the broker thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error("the broker did not start listening on {0} within {1:?}")]
    NotListening(SocketAddr, Duration),
    #[error(transparent)]
    Closed(#[from] LinkClosed),
}

/// A running embedded broker.
#[derive(Debug)]
pub struct EmbeddedBroker {
    listen: SocketAddr,
    thread: JoinHandle<()>,
}

impl EmbeddedBroker {
    /// Starts rumqttd with `settings`, returning the broker and the control plane's link,
    /// already subscribed to `ingest_filter` (which gets the large ingest buffer).
    ///
    /// A listen port of 0 picks a free port first (rumqttd cannot report the port it bound).
    /// Returns once the listener is bound.
    pub async fn start(settings: &BrokerSettings, ingest_filter: &str) -> Result<(Self, LocalLink), BrokerError> {
        let listen = resolve_port(settings.listen)?;
        let config = settings.to_rumqttd(listen, ingest_filter);
        let mut broker = rumqttd::Broker::new(config);
        let (tx, rx) = broker
            .link("luach-control-plane")
            .map_err(|e| BrokerError::Link(e.to_string()))?;
        let thread = std::thread::Builder::new().name("mqtt-broker".into()).spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded mqtt broker stopped");
            }
        })?;
        let broker = Self { listen, thread };
        broker.wait_listening(Duration::from_secs(10))?;
        tracing::info!(addr = %listen, "embedded mqtt broker listening");
        let mut link = LocalLink::new(tx, rx);
        link.subscribe(ingest_filter).await?;
        Ok((broker, link))
    }

    /// The address devices connect to.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// True while the broker's listener threads run (rumqttd's `start` returns only when
    /// every listener has stopped). Pair with [`Publisher::probe`] to check the router.
    pub fn listener_running(&self) -> bool {
        !self.thread.is_finished()
    }

    fn wait_listening(&self, limit: Duration) -> Result<(), BrokerError> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if is_listening(self.listen) {
                return Ok(());
            }
            if self.thread.is_finished() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(BrokerError::NotListening(self.listen, limit))
    }
}

/// True once something listens on `addr`: binding it ourselves fails with `AddrInUse`.
/// (Connecting instead would make rumqttd log an error for the probe connection.)
fn is_listening(addr: SocketAddr) -> bool {
    matches!(std::net::TcpListener::bind(addr), Err(e) if e.kind() == std::io::ErrorKind::AddrInUse)
}

fn resolve_port(addr: SocketAddr) -> Result<SocketAddr, BrokerError> {
    // Probe-bind even for a fixed port so a taken port fails with a clear message here rather
    // than as a log line from inside rumqttd's thread.
    let probe = std::net::TcpListener::bind(addr).map_err(|source| BrokerError::Bind { addr, source })?;
    let bound = probe
        .local_addr()
        .map_err(|source| BrokerError::Bind { addr, source })?;
    drop(probe);
    Ok(bound)
}
