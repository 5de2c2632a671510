//! The connection edge: the project's own front for devices on the mutual-TLS port, in front
//! of the embedded broker.
//!
//! ```text
//!  device ──TLS──▶ front door ──▶ session ──▶ uplink thread ──▶ rumqttd router ──▶ control plane
//!  (mTLS, MQTT    (gate, TLS +     (jail,      (one local link,   (one filter:     (LocalLink)
//!   3.1.1)         CONNECT under    limits,     batches)           /tenants/+/up/#)
//!                  time-outs)       keep-alive)
//!  device ◀──────────────────────── session ◀── registry (prefix → queue) ◀── Publisher
//! ```
//!
//! Pieces: the front door accepts, admits and takes each socket through TLS and its CONNECT
//! in the socket's own task ([`front`]); admission caps are taken before any TLS is read
//! ([`gate`]); TLS refuses revoked and superseded certificates at the handshake and gives up
//! on idle sockets ([`tls`]); each device's [`session`] enforces its jail ([`topics`]) and
//! rates ([`rate`]); what devices send reaches the router through one shared link
//! ([`uplink`]); what the control plane sends goes straight to the device's session
//! ([`registry`]).
//!
//! Why the downlink bypasses the router: rumqttd keeps every subscription filter and every
//! topic it has seen for the life of the process and compares each new topic with every
//! filter and each new filter with every topic (`DataLog::matches`, `next_native_offset`),
//! on one thread. A filter per screen makes bringing N screens online cost about 4·N²
//! comparisons, again after every restart. Through the edge the router holds one filter and
//! sees one connection whatever the fleet size; a message for a screen costs a hash lookup.
//! What is given up: rumqttd no longer queues a screen's messages while it reconnects — it
//! never kept them across a disconnect of a clean session either, and the control plane's
//! command outbox redelivers what a screen has not acknowledged.

pub mod front;
pub mod gate;
pub mod rate;
pub mod registry;
pub mod session;
pub mod tls;
pub mod topics;
pub mod uplink;

#[cfg(test)]
pub(crate) mod testing;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use self::front::{Arrival, FrontLimits};
use self::gate::{Gate, GateLimits};
use self::rate::RateLimits;
use self::registry::{Delivery, Down, Registry};
use self::session::{SessionLimits, Shared};
use self::tls::Revoked;
use self::topics::{TopicRules, down_prefix};
use self::uplink::Uplink;

/// The edge's limits, in `luach-server`'s `[mqtt.edge]` table. Every one is explicit; the
/// defaults suit screens (a heartbeat, metrics and a telemetry batch now and then) with a
/// wide margin, and a host serving many synagogue networks.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeSettings {
    /// Connections open at once from one IPv4 address or IPv6 /64. A synagogue's screens share
    /// one address behind its router: raise it for a network with more screens than this.
    pub max_connections_per_source: usize,
    /// TLS handshakes and CONNECTs in progress at once; a socket beyond it is closed at once,
    /// before any TLS is read (the device retries with its back-off).
    pub max_handshakes: usize,
    /// Seconds a socket has to finish its TLS handshake.
    pub handshake_timeout_secs: u64,
    /// Messages a second a device may send, sustained, and the burst above it.
    pub messages_per_sec: u64,
    pub message_burst: u64,
    /// Payload bytes a second a device may send, sustained, and the burst above it.
    pub bytes_per_sec: u64,
    pub byte_burst: u64,
    /// Subscriptions a device may hold (inside its own `/tenants/{prefix}/`).
    pub max_subscriptions: usize,
    /// Sessions (MQTT client ids) one device certificate's prefix may hold at once: the
    /// screen's agent, and a technician's tool beside it.
    pub max_sessions_per_prefix: usize,
    /// QoS 1 messages sent to a device and awaiting its PUBACK.
    pub max_inflight: u16,
    /// Messages queued for a device that has not read them yet; more are dropped (the
    /// command outbox sends again).
    pub downlink_queue: usize,
    /// Seconds a write to a device may take before it counts as gone.
    pub write_timeout_secs: u64,
    /// Longest keep-alive honoured, seconds; a device asking for none or more gets this.
    pub max_keep_alive_secs: u16,
    /// Messages from all devices queued for the broker's router.
    pub uplink_queue: usize,
}

impl Default for EdgeSettings {
    fn default() -> Self {
        Self {
            max_connections_per_source: 4096,
            max_handshakes: 512,
            handshake_timeout_secs: 10,
            messages_per_sec: 10,
            message_burst: 100,
            bytes_per_sec: 64 * 1024,
            byte_burst: 256 * 1024,
            max_subscriptions: 4,
            max_sessions_per_prefix: 4,
            max_inflight: 16,
            downlink_queue: 64,
            write_timeout_secs: 30,
            max_keep_alive_secs: 1200,
            uplink_queue: 16 * 1024,
        }
    }
}

impl EdgeSettings {
    pub(crate) fn validate(&self) -> Result<(), String> {
        let positive = [
            ("max_connections_per_source", self.max_connections_per_source as u64),
            ("max_handshakes", self.max_handshakes as u64),
            ("handshake_timeout_secs", self.handshake_timeout_secs),
            ("messages_per_sec", self.messages_per_sec),
            ("message_burst", self.message_burst),
            ("bytes_per_sec", self.bytes_per_sec),
            ("byte_burst", self.byte_burst),
            ("max_subscriptions", self.max_subscriptions as u64),
            ("max_sessions_per_prefix", self.max_sessions_per_prefix as u64),
            ("max_inflight", u64::from(self.max_inflight)),
            ("downlink_queue", self.downlink_queue as u64),
            ("write_timeout_secs", self.write_timeout_secs),
            ("max_keep_alive_secs", u64::from(self.max_keep_alive_secs)),
            ("uplink_queue", self.uplink_queue as u64),
        ];
        match positive.iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err(format!("edge.{name} must be positive")),
            None => Ok(()),
        }
    }
}

/// Everything [`Edge::start`] needs besides the settings.
pub struct EdgeSetup {
    pub listener: TcpListener,
    pub acceptor: TlsAcceptor,
    pub revoked: Revoked,
    /// Connections in total (devices on this edge).
    pub max_connections: usize,
    /// Largest packet a device may send.
    pub max_packet: usize,
    /// Time from the handshake to a complete CONNECT.
    pub connect_timeout: Duration,
    pub rules: TopicRules,
    pub uplink: Uplink,
}

/// The running edge's handle: delivers to devices, refuses certificates, reports counts.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Edge {
    shared: Arc<Shared>,
    revoked: Revoked,
    gate: Gate,
    addr: SocketAddr,
    stop: CancellationToken,
}

/// A snapshot of the edge's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EdgeCounts {
    /// Sockets open (handshaking or connected) and of those still handshaking.
    pub open: usize,
    pub handshaking: usize,
    /// Device sessions registered.
    pub sessions: usize,
    pub sessions_started: u64,
    pub ended_clean: u64,
    pub ended_lost: u64,
    pub taken_over: u64,
    pub refused: u64,
    pub violations: u64,
    pub over_rate: u64,
    pub bad_will: u64,
    pub downlink_queued: u64,
    pub downlink_offline: u64,
    pub downlink_full: u64,
}

impl Edge {
    /// Starts accepting devices on `setup.listener` (on the current tokio runtime) until
    /// [`Edge::stop`].
    pub fn start(settings: &EdgeSettings, setup: EdgeSetup) -> std::io::Result<Self> {
        let addr = setup.listener.local_addr()?;
        let gate = Gate::new(GateLimits {
            max_total: setup.max_connections,
            max_per_source: settings.max_connections_per_source,
            max_handshakes: settings.max_handshakes,
        });
        let front = FrontLimits {
            handshake: Duration::from_secs(settings.handshake_timeout_secs),
            connect: setup.connect_timeout,
            max_packet: setup.max_packet,
        };
        let shared = Arc::new(Shared {
            registry: Registry::default(),
            uplink: setup.uplink,
            rules: setup.rules,
            limits: SessionLimits {
                max_packet: setup.max_packet,
                rate: RateLimits {
                    messages_per_sec: settings.messages_per_sec,
                    message_burst: settings.message_burst,
                    bytes_per_sec: settings.bytes_per_sec,
                    byte_burst: settings.byte_burst,
                },
                max_subscriptions: settings.max_subscriptions,
                max_sessions_per_prefix: settings.max_sessions_per_prefix,
                max_inflight: settings.max_inflight,
                downlink_queue: settings.downlink_queue,
                write_timeout: Duration::from_secs(settings.write_timeout_secs),
                max_keep_alive: Duration::from_secs(u64::from(settings.max_keep_alive_secs)),
            },
            counts: Default::default(),
            stop: CancellationToken::new(),
        });
        let stop = shared.stop.clone();
        let sessions = shared.clone();
        tokio::spawn(front::serve(
            setup.listener,
            gate.clone(),
            setup.acceptor,
            front,
            move |arrival: Arrival| session::run(arrival, sessions.clone()),
            stop.clone(),
        ));
        Ok(Self {
            shared,
            revoked: setup.revoked,
            gate,
            addr,
            stop,
        })
    }

    /// The address devices connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Hands a message to the device whose downlink topic it is. `None` when `topic` is not a
    /// device's downlink topic.
    pub fn deliver(&self, topic: &str, payload: Bytes) -> Option<Delivery> {
        let prefix = down_prefix(topic)?;
        Some(self.shared.registry.deliver(
            prefix,
            Down {
                topic: topic.to_owned(),
                payload,
            },
        ))
    }

    /// Refuses the certificate `serial` from now on and closes its sessions.
    pub fn refuse_serial(&self, serial: &str) {
        self.revoked.insert(serial);
        self.shared.registry.refuse_serial(&serial.to_ascii_lowercase());
    }

    /// Refuses every certificate of the enrolment with topic prefix `prefix` (revoked, or
    /// superseded by a new enrolment) and closes its session.
    pub fn refuse_prefix(&self, prefix: &str) {
        self.revoked.insert_prefix(prefix);
        self.shared.registry.refuse_prefix(prefix);
    }

    /// Refused certificate serials and enrolments (topic prefixes).
    pub fn refused(&self) -> (usize, usize) {
        self.revoked.len()
    }

    /// True while a device with this topic prefix is connected.
    pub fn is_connected(&self, prefix: &str) -> bool {
        self.shared.registry.is_connected(prefix)
    }

    /// Stops accepting and closes every session.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    pub fn counts(&self) -> EdgeCounts {
        let (open, handshaking) = self.gate.open();
        let c = &self.shared.counts;
        let d = self.shared.registry.counts();
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        EdgeCounts {
            open,
            handshaking,
            sessions: self.shared.registry.len(),
            sessions_started: n(&c.connected),
            ended_clean: n(&c.ended_clean),
            ended_lost: n(&c.ended_lost),
            taken_over: n(&c.taken_over),
            refused: n(&c.refused),
            violations: n(&c.violations),
            over_rate: n(&c.over_rate),
            bad_will: n(&c.bad_will),
            downlink_queued: n(&d.queued),
            downlink_offline: n(&d.offline),
            downlink_full: n(&d.full),
        }
    }
}
