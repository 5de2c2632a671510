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
//!
//! # Listeners and device isolation
//!
//! Two listeners, each optional ([`BrokerSettings::plain_listener`],
//! [`BrokerSettings::tls_listener`] with the files in [`BrokerSettings::tls`]):
//!
//! - **Plain TCP** (development): no authentication and no topic restriction.
//! - **Mutual TLS** (devices): rumqttd is built with `use-rustls,verify-client-cert,
//!   validate-tenant-prefix`. A client must present a certificate that chains to the CA in
//!   `ca_path` (rustls `WebPkiClientVerifier`: X.509 v3, clientAuth, in its validity period),
//!   and its subject must carry an alphanumeric organisation O (rumqttd
//!   `src/server/tls.rs:62-85`). rumqttd then prefixes its client id with `O.`
//!   (`src/server/broker.rs:531-536`, `src/router/connection.rs:46-55`), so no device can take
//!   over another's session, and confines it to `/tenants/{O}/`: a publish elsewhere
//!   (`src/router/routing.rs:1219-1228`), a will message elsewhere (`:1290-1299`) or a
//!   subscription filter outside it (`:1728-1734`, so `#` and `/tenants/+/#` too) is an error
//!   that disconnects the client.
//!
//! The tenant prefix is derived only from a TLS client certificate: the plain listener passes
//! no tenant (`src/server/broker.rs:369-378`) and the control plane's in-process
//! [`LocalLink`] is built without one (`src/link/local.rs:59`), so both keep seeing and
//! publishing to every `/tenants/{device}/…` subtree exactly as without the features. The
//! plain listener is unauthenticated and lets a client pick any client id, including a TLS
//! device's `{device}.{id}` or the control plane's `luach-control-plane` (rumqttd drops the
//! older connection of a duplicate id, `src/router/routing.rs:282-294`): keep it off in
//! production.
//!
//! # Revocation: what rumqttd 0.20 can and cannot do
//!
//! - **No CRL or OCSP.** The client verifier is built from the first certificate of `ca_path`
//!   with no CRLs (`src/server/tls.rs:217-237`), and [`rumqttd::TlsConfig`] holds only three
//!   paths: there is no way to inject a custom rustls `ClientCertVerifier`.
//! - **Only the first CA certificate is trusted** (`src/server/tls.rs:221-223` takes
//!   `certs(..).next()`), so a CA bundle cannot be used for rotation; this crate refuses a
//!   `ca_path` with more than one certificate rather than silently ignoring the rest.
//! - **Files are re-read for every connection** (`TLSAcceptor::new` is called per accept,
//!   `src/server/broker.rs:373`): replacing `ca_path`, `cert_path` or `key_path` atomically
//!   takes effect for the next connection without a restart; connected clients stay.
//! - **No API disconnects a client.** rumqttd has no admin call for it; the only lever is the
//!   duplicate client id takeover above, which needs a router handle that [`rumqttd::Broker`]
//!   hides once started. TLS checks certificates only during the handshake, so a connected
//!   device stays connected past its certificate's expiry until it reconnects.
//!
//! The strongest available combination: short-lived device certificates renewed over the
//! device's own session, renewal refused for a revoked device, and the control plane ignoring
//! messages from revoked devices (the prefix jail means nothing else receives them). Re-keying
//! the CA (new `ca_path`) revokes everyone at once.
//!
//! # Known weaknesses (rumqttd 0.20)
//!
//! - rumqttd performs the TLS handshake inside its accept loop, without a timeout
//!   (`src/server/broker.rs:393-409`): one client that opens a TCP connection to the TLS port
//!   and sends nothing stalls every other TLS connection until it goes away (checked: a
//!   device's connect waited the full 5 s an idle socket stayed open). Keep the TLS port behind
//!   something that bounds handshakes, or accept the risk on trusted networks.
//! - A publish or subscription outside the device's prefix disconnects the client without an
//!   MQTT error code (`src/router/routing.rs:625-638`, `:661-667`): at QoS 0 the client cannot
//!   tell its message was dropped.
//! - Clients must connect by host name, not IP address: rustls 0.22 answers an IP address in
//!   SNI with a `decode_error` alert (rustls `src/msgs/handshake.rs:225-237`), and libmosquitto
//!   (mosquitto_pub, many OpenSSL-based clients) sends the host as SNI even when it is an IP.
//!   rustls clients (rumqttc) and Python's `ssl` omit SNI for IP addresses and are unaffected.

mod config;
pub mod edge;
mod link;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

pub use config::{BrokerSettings, TlsFiles};
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
    #[error("invalid mqtt settings: {0}")]
    Config(String),
    #[error("mqtt tls listener: {what} {path}: {source}")]
    TlsFile {
        what: &'static str,
        path: PathBuf,
        source: luach_pki::PkiError,
    },
    #[error(
        "mqtt tls listener: ca_path {path} holds {count} certificates; rumqttd trusts only the first, \
         so it must hold exactly one (rotate the device CA with a cross-certificate)"
    )]
    TlsCaBundle { path: PathBuf, count: usize },
}

/// A running embedded broker.
#[derive(Debug)]
pub struct EmbeddedBroker {
    plain: Option<SocketAddr>,
    tls: Option<SocketAddr>,
    thread: JoinHandle<()>,
}

impl EmbeddedBroker {
    /// Starts rumqttd with `settings`, returning the broker and the control plane's link,
    /// already subscribed to `ingest_filter` (which gets the large ingest buffer).
    ///
    /// A listen port of 0 picks a free port first (rumqttd cannot report the port it bound).
    /// The TLS listener's files are checked first (rumqttd itself reads them only when a client
    /// connects). Returns once every listener is bound.
    pub async fn start(settings: &BrokerSettings, ingest_filter: &str) -> Result<(Self, LocalLink), BrokerError> {
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
        if let Some(files) = tls_files {
            check_tls_files(files)?;
        }
        let plain = settings
            .plain_listener
            .then(|| resolve_port(settings.listen))
            .transpose()?;
        let tls = tls_files.map(|_| resolve_port(settings.tls_listen)).transpose()?;
        let config = settings.to_rumqttd(plain, tls, ingest_filter);
        let mut broker = rumqttd::Broker::new(config);
        let (tx, rx) = broker
            .link("luach-control-plane")
            .map_err(|e| BrokerError::Link(e.to_string()))?;
        // Subscribed before a listener can accept a device: the request is queued to the
        // router ahead of any device's messages, so nothing a device sends on connecting (its
        // hello) can reach the router before the control plane listens.
        let mut link = LocalLink::new(tx, rx);
        link.subscribe(ingest_filter).await?;
        let thread = std::thread::Builder::new().name("mqtt-broker".into()).spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded mqtt broker stopped");
            }
        })?;
        let broker = Self { plain, tls, thread };
        for addr in plain.iter().chain(tls.iter()) {
            broker.wait_listening(*addr, Duration::from_secs(10))?;
        }
        tracing::info!(plain = ?plain, tls = ?tls, "embedded mqtt broker listening");
        Ok((broker, link))
    }

    /// The address devices connect to: the plain listener's if it runs, else the TLS
    /// listener's.
    pub fn listen_addr(&self) -> SocketAddr {
        // `start` refuses settings without any listener, so one of them is set.
        self.plain
            .or(self.tls)
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The plain-TCP listener's bound address, if it runs.
    pub fn plain_addr(&self) -> Option<SocketAddr> {
        self.plain
    }

    /// The mutual-TLS listener's bound address, if it runs.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls
    }

    /// True while the broker's listener threads run (rumqttd's `start` returns only when
    /// every listener has stopped). Pair with [`Publisher::probe`] to check the router.
    pub fn listener_running(&self) -> bool {
        !self.thread.is_finished()
    }

    fn wait_listening(&self, addr: SocketAddr, limit: Duration) -> Result<(), BrokerError> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if is_listening(addr) {
                return Ok(());
            }
            if self.thread.is_finished() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(BrokerError::NotListening(addr, limit))
    }
}

/// Checks what rumqttd would otherwise only find out (and log) when a device connects: the
/// certificate chain parses and matches the key, and the CA file holds exactly one CA.
fn check_tls_files(tls: &TlsFiles) -> Result<(), BrokerError> {
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
    let ca =
        luach_pki::CaBundle::from_pem(&read("ca_path", &tls.ca_path)?).map_err(file_error("ca_path", &tls.ca_path))?;
    if ca.len() != 1 {
        return Err(BrokerError::TlsCaBundle {
            path: tls.ca_path.clone(),
            count: ca.len(),
        });
    }
    Ok(())
}

/// True once something listens on `addr`: binding it ourselves fails with `AddrInUse`.
/// (Connecting instead would make rumqttd log an error for the probe connection.)
fn is_listening(addr: SocketAddr) -> bool {
    matches!(std::net::TcpListener::bind(addr), Err(e) if e.kind() == std::io::ErrorKind::AddrInUse)
}

/// Ports tried for a listen port of 0: below Linux's default ephemeral range (32768–60999), so
/// an outgoing connection of this or another process cannot be given the port in the moment
/// between choosing it and rumqttd binding it (rumqttd binds by address and cannot report the
/// port of a port-0 bind).
const PICKED_PORTS: std::ops::Range<u16> = 20_000..32_768;

/// A random number without a dependency: `RandomState` is seeded randomly for every instance.
fn random_u64() -> u64 {
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
