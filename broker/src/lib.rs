//! Embedded MQTT broker for Luach.
//!
//! `luach-server` runs [rumqttd] in-process so a single install needs nothing else. This crate
//! owns the broker's configuration (tuned for a fleet of many small, chatty devices rather than
//! rumqttd's throughput-oriented defaults, see [`BrokerSettings`]), the connection edge that
//! serves devices on the mutual-TLS port ([`edge`]), and hands the control plane an in-process
//! link ([`LocalLink`]) that sees every device's messages without a TCP loop-back client.
//!
//! Past the embedded broker's ceiling the same link can instead be a client connection to an
//! external broker ([`external`]): devices then connect to Mosquitto (or EMQX) configured with
//! the same jail.
//!
//! rumqttd keeps nothing across restarts and has no shutdown call; its threads live as long as
//! the process. Every delivery guarantee therefore lives in the control plane and the agent,
//! never in the broker.
//!
//! # Listeners and device isolation
//!
//! Two listeners, each optional ([`BrokerSettings::plain_listener`],
//! [`BrokerSettings::tls_listener`] with the files in [`BrokerSettings::tls`]):
//!
//! - **Mutual TLS** (devices), served by the [`edge`], the project's own code: TLS under a
//!   time-out in each connection's own task, caps on connections per source, in total and on
//!   handshakes in progress, a client certificate from the device CA(s) that is not refused
//!   ([`Revoked`]: revoked or superseded enrolments, by serial and by topic prefix), then MQTT
//!   3.1.1 with each device jailed to its certificate's organisation O: it publishes only
//!   `/tenants/{O}/up/{kind}` for the kinds in [`TopicRules`], subscribes only inside
//!   `/tenants/{O}/`, no retained messages, QoS ≤ 1, packet, message and byte rate limits.
//!   Anything else closes the connection.
//! - **Plain TCP** (development), served by rumqttd: no authentication and no topic
//!   restriction. Its clients see what edge devices send (the uplink passes the router) but
//!   cannot reach edge devices' sessions. Keep it off in production.
//!
//! The edge hands what devices send to the router through one local link, and delivers what
//! the control plane sends ([`Publisher`]) straight to the device's session: the router holds
//! one filter however large the fleet (see [`edge`] for why).
//!
//! # rumqttd 0.20 facts this design works around
//!
//! - Its TLS listener runs the handshake inside the accept loop without a time-out
//!   (`src/server/broker.rs:393-409`: one idle socket stalls every device), trusts only the
//!   first certificate of its CA file and has no CRL or custom verifier (`src/server/tls.rs`),
//!   and no call disconnects a client. The edge replaces that listener.
//! - `DataLog::matches` compares each new topic with every filter and `next_native_offset`
//!   each new filter with every topic seen, neither ever removed (`src/router/logs.rs`): a
//!   filter per device makes a fleet's reconnection quadratic. The edge keeps per-device
//!   filters out of the router.
//! - On the plain listener, rumqttd drops the older connection of a duplicate client id
//!   (`src/router/routing.rs:282-294`), so any client there may take any client id (the
//!   control plane's `luach-control-plane` included).
//! - libmosquitto clients send the host as SNI even when it is an IP address, and rustls answers
//!   an IP address in SNI with a `decode_error` alert: such clients connect by host name.

mod config;
pub mod edge;
pub mod external;
mod link;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

pub use config::{BrokerMode, BrokerSettings, TlsFiles};
pub use edge::tls::Revoked;
pub use edge::topics::TopicRules;
pub use edge::{Edge, EdgeCounts, EdgeSettings};
pub use external::{ExternalBroker, ExternalSettings, ExternalTls};
pub use link::{Inbound, LinkClosed, LocalLink, Publisher};

use edge::EdgeSetup;
use edge::uplink::Uplink;

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
    #[error("invalid mqtt settings: {0}")]
    Config(String),
    #[error("mqtt tls listener: {what} {path}: {source}")]
    TlsFile {
        what: &'static str,
        path: PathBuf,
        source: luach_pki::PkiError,
    },
    #[error("mqtt tls: {0}")]
    Tls(#[from] edge::tls::TlsSetupError),
    #[error("external mqtt broker {0}")]
    External(String),
}

/// What the edge needs to know about devices: the topics they may publish to, and the
/// certificates that no longer count (kept up to date by the embedding program through
/// [`Edge::refuse_prefix`] and [`Edge::refuse_serial`]).
#[derive(Debug, Clone)]
pub struct Devices {
    pub rules: TopicRules,
    pub revoked: Revoked,
}

/// A running embedded broker.
pub struct EmbeddedBroker {
    plain: Option<SocketAddr>,
    edge: Option<Edge>,
    /// rumqttd's listener thread, when the plain listener runs.
    thread: Option<JoinHandle<()>>,
    /// Keeps the router's channel open when no listener thread owns the broker.
    _router: Option<rumqttd::Broker>,
    _uplink: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("plain", &self.plain)
            .field("tls", &self.tls_addr())
            .finish_non_exhaustive()
    }
}

/// Client id of the control plane's link into the router.
const CONTROL_PLANE_LINK: &str = "luach-control-plane";
/// Client id of the edge's uplink into the router.
const EDGE_LINK: &str = "luach-edge";

impl EmbeddedBroker {
    /// Starts the broker with `settings`, returning it and the control plane's link, already
    /// subscribed to `ingest_filter` (which gets the large ingest buffer).
    ///
    /// The mutual-TLS port is served by the [`edge`] on the current tokio runtime, with
    /// `devices`' rules; the plain listener (development) by rumqttd. A listen port of 0
    /// picks a free port. Returns once every listener is bound.
    pub async fn start(
        settings: &BrokerSettings,
        ingest_filter: &str,
        devices: Devices,
    ) -> Result<(Self, LocalLink), BrokerError> {
        settings.validate().map_err(BrokerError::Config)?;
        let tls_files = match (settings.tls_listener, &settings.tls) {
            (false, _) => None,
            (true, Some(files)) => Some(files),
            (true, None) => {
                return Err(BrokerError::Config(
                    "tls_listener is on but no certificate files were given (BrokerSettings::tls)".into(),
                ));
            }
        };
        let acceptor = tls_files
            .map(|files| acceptor(files, devices.revoked.clone()))
            .transpose()?;
        let plain = settings
            .plain_listener
            .then(|| resolve_port(settings.listen))
            .transpose()?;
        let config = settings.to_rumqttd(plain, ingest_filter);
        let mut broker = rumqttd::Broker::new(config);
        let (tx, rx) = broker
            .link(CONTROL_PLANE_LINK)
            .map_err(|e| BrokerError::Link(e.to_string()))?;
        // Subscribed before any device can connect: the request is queued to the router ahead
        // of any device's messages, so nothing a device sends on connecting (its hello) can
        // reach the router before the control plane listens.
        let mut link = LocalLink::new(tx, rx, plain.is_some());
        link.subscribe(ingest_filter).await?;

        let mut edge = None;
        let mut uplink_thread = None;
        if let Some(acceptor) = acceptor {
            let (up_tx, _up_rx) = broker.link(EDGE_LINK).map_err(|e| BrokerError::Link(e.to_string()))?;
            let (uplink, thread) = Uplink::spawn(up_tx, settings.edge.uplink_queue)?;
            let listener = listen(settings.tls_listen).map_err(|source| BrokerError::Bind {
                addr: settings.tls_listen,
                source,
            })?;
            let started = Edge::start(
                &settings.edge,
                EdgeSetup {
                    listener,
                    acceptor,
                    revoked: devices.revoked,
                    max_connections: settings.max_connections,
                    max_packet: settings.max_packet_bytes(),
                    connect_timeout: Duration::from_millis(u64::from(settings.connect_timeout_ms)),
                    rules: devices.rules,
                    uplink,
                },
            )?;
            link.attach_edge(started.clone());
            edge = Some(started);
            uplink_thread = Some(thread);
        }

        let (thread, router) = match plain {
            Some(addr) => {
                let thread = std::thread::Builder::new().name("mqtt-broker".into()).spawn(move || {
                    if let Err(e) = broker.start() {
                        tracing::error!(error = %e, "embedded mqtt broker stopped");
                    }
                })?;
                wait_listening(&thread, addr, Duration::from_secs(10))?;
                (Some(thread), None)
            }
            None => (None, Some(broker)),
        };
        let broker = Self {
            plain,
            edge,
            thread,
            _router: router,
            _uplink: uplink_thread,
        };
        tracing::info!(plain = ?plain, tls = ?broker.tls_addr(), "embedded mqtt broker listening");
        Ok((broker, link))
    }

    /// The address devices connect to: the plain listener's if it runs, else the TLS
    /// listener's.
    pub fn listen_addr(&self) -> SocketAddr {
        // `start` refuses settings without any listener, so one of them is set.
        self.plain
            .or(self.tls_addr())
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The plain-TCP listener's bound address, if it runs.
    pub fn plain_addr(&self) -> Option<SocketAddr> {
        self.plain
    }

    /// The mutual-TLS listener's bound address, if it runs.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.edge.as_ref().map(Edge::addr)
    }

    /// The edge serving the mutual-TLS port, if it runs.
    pub fn edge(&self) -> Option<&Edge> {
        self.edge.as_ref()
    }

    /// True while the plain listener's thread runs (rumqttd's `start` returns only when
    /// every listener has stopped), or always without it. Pair with [`Publisher::probe`] to
    /// check the router.
    pub fn listener_running(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| !t.is_finished())
    }

    /// Stops accepting devices on the edge and closes their sessions (rumqttd's plain
    /// listener has no stop call and lives as long as the process).
    pub fn stop(&self) {
        if let Some(edge) = &self.edge {
            edge.stop();
        }
    }
}

fn wait_listening(thread: &JoinHandle<()>, addr: SocketAddr, limit: Duration) -> Result<(), BrokerError> {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if is_listening(addr) {
            return Ok(());
        }
        if thread.is_finished() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(BrokerError::NotListening(addr, limit))
}

/// The edge's TLS acceptor from the listener's files, checked the way a device will use them:
/// the certificate chain parses and matches the key, the CA file holds at least one CA.
fn acceptor(tls: &TlsFiles, revoked: Revoked) -> Result<tokio_rustls::TlsAcceptor, BrokerError> {
    let read = |what: &'static str, path: &Path| {
        std::fs::read_to_string(path).map_err(|e| BrokerError::TlsFile {
            what,
            path: path.to_owned(),
            source: luach_pki::PkiError::Io {
                action: "read",
                path: path.to_owned(),
                source: e,
            },
        })
    };
    let file_error = |what: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| BrokerError::TlsFile { what, path, source }
    };
    let cert = read("cert_path", &tls.cert_path)?;
    luach_pki::inspect_chain(&cert).map_err(file_error("cert_path", &tls.cert_path))?;
    let key = luach_pki::Zeroizing::new(read("key_path", &tls.key_path)?);
    luach_pki::verify_key_matches(&cert, &key).map_err(file_error("key_path", &tls.key_path))?;
    let ca = read("ca_path", &tls.ca_path)?;
    luach_pki::CaBundle::from_pem(&ca).map_err(file_error("ca_path", &tls.ca_path))?;
    let config = edge::tls::server_config(&[&ca], &cert, &key, revoked)?;
    Ok(tokio_rustls::TlsAcceptor::from(config))
}

/// Sockets the kernel queues for the edge's accept loop (tokio's default is 1,024): a fleet
/// reconnecting at once waits here while handshake places are taken, instead of having its
/// SYNs dropped and retried a second later.
const EDGE_BACKLOG: u32 = 8192;

fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(EDGE_BACKLOG)
}

/// True once something listens on `addr`. On Linux the kernel's socket table says so without
/// touching the port; elsewhere binding it ourselves fails with `AddrInUse`. (That probe holds
/// the port for an instant, and a rumqttd bind landing in that instant fails, so it is only the
/// fallback. Connecting instead would make rumqttd log an error for the probe connection.)
fn is_listening(addr: SocketAddr) -> bool {
    if let Some(listening) = listening_in_socket_table(addr) {
        return listening;
    }
    matches!(std::net::TcpListener::bind(addr), Err(e) if e.kind() == std::io::ErrorKind::AddrInUse)
}

/// Whether `/proc/self/net/tcp` (or `tcp6`: the process's network namespace, readable also under
/// systemd's `ProcSubset=pid`) lists a socket in state LISTEN (`0A`) on `addr`; `None` where the
/// table cannot be read. Addresses there are hexadecimal, each 32-bit word in the
/// machine's byte order, the port big-endian.
fn listening_in_socket_table(addr: SocketAddr) -> Option<bool> {
    let (file, ip) = match addr.ip() {
        std::net::IpAddr::V4(ip) => ("/proc/self/net/tcp", ip.octets().to_vec()),
        std::net::IpAddr::V6(ip) => ("/proc/self/net/tcp6", ip.octets().to_vec()),
    };
    let table = std::fs::read_to_string(file).ok()?;
    let local: String = ip
        .chunks(4)
        .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
        .collect::<String>()
        + &format!(":{:04X}", addr.port());
    Some(table.lines().skip(1).any(|line| {
        let mut fields = line.split_whitespace();
        let (Some(_), Some(address), Some(_), Some(state)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return false;
        };
        state == "0A" && address == local
    }))
}

/// Ports tried for a listen port of 0: below Linux's default ephemeral range (32768–60999), so
/// an outgoing connection of this or another process cannot be given the port in the moment
/// between choosing it and rumqttd binding it (rumqttd binds by address and cannot report the
/// port of a port-0 bind).
const PICKED_PORTS: std::ops::Range<u16> = 20_000..32_768;

/// A random number without a dependency: `RandomState` is seeded randomly for every instance.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new().build_hasher().finish()
}

fn resolve_port(addr: SocketAddr) -> Result<SocketAddr, BrokerError> {
    if addr.port() == 0 {
        let span = u64::from(PICKED_PORTS.end - PICKED_PORTS.start);
        for _ in 0..64 {
            let offset = u16::try_from(random_u64() % span).unwrap_or(0);
            let candidate = SocketAddr::new(addr.ip(), PICKED_PORTS.start + offset);
            if let Ok(probe) = std::net::TcpListener::bind(candidate) {
                drop(probe);
                return Ok(candidate);
            }
        }
    }
    // Probe-bind even for a fixed port so a taken port fails with a clear message here rather
    // than as a log line from inside rumqttd's thread.
    let probe = std::net::TcpListener::bind(addr).map_err(|source| BrokerError::Bind { addr, source })?;
    let bound = probe
        .local_addr()
        .map_err(|source| BrokerError::Bind { addr, source })?;
    drop(probe);
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_table_sees_a_listener_come_and_go() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        // On Linux the table must answer and see the listener; elsewhere the probe does.
        let seen = listening_in_socket_table(addr);
        if cfg!(target_os = "linux") {
            assert_eq!(seen, Some(true), "{addr} listening but not found");
        }
        assert!(is_listening(addr));
        drop(listener);
        if let Some(seen) = listening_in_socket_table(addr) {
            assert!(!seen, "{addr} closed but still found");
        }
        assert!(!is_listening(addr));
    }
}
