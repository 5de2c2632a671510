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

use std::net::{SocketAddr, TcpStream};
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
}

/// A running embedded broker.
#[derive(Debug)]
pub struct EmbeddedBroker {
    listen: SocketAddr,
    thread: JoinHandle<()>,
}

impl EmbeddedBroker {
    /// Starts rumqttd with `settings`, returning the broker and the control plane's link.
    ///
    /// A listen port of 0 picks a free port first (rumqttd cannot report the port it bound).
    /// Returns once the listener accepts TCP connections.
    pub fn start(settings: &BrokerSettings) -> Result<(Self, LocalLink), BrokerError> {
        let listen = resolve_port(settings.listen)?;
        let config = settings.to_rumqttd(listen);
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
        Ok((broker, LocalLink::new(tx, rx)))
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
            if mqtt_handshake(connectable(self.listen)).is_ok() {
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

/// Connects as an MQTT 3.1.1 client, waits for CONNACK and disconnects cleanly: proof that
/// the listener is up and speaking MQTT (and no error in the broker's log).
fn mqtt_handshake(addr: SocketAddr) -> std::io::Result<()> {
    use std::io::{Read, Write};
    const CLIENT_ID: &[u8] = b"luach-startup-probe";
    let mut connect = vec![0x10, 0];
    connect.extend_from_slice(&[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x0a]);
    connect.extend_from_slice(&(CLIENT_ID.len() as u16).to_be_bytes());
    connect.extend_from_slice(CLIENT_ID);
    connect[1] = (connect.len() - 2) as u8;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(&connect)?;
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack)?;
    if connack[0] != 0x20 || connack[3] != 0 {
        return Err(std::io::Error::other("broker refused the probe connection"));
    }
    stream.write_all(&[0xe0, 0x00])
}

/// An unspecified listen address (0.0.0.0) is reached through loopback.
fn connectable(addr: SocketAddr) -> SocketAddr {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(match a {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    a
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
