//! External broker mode: the control plane as a client of an existing MQTT broker
//! (Mosquitto, EMQX…) instead of embedding one.
//!
//! Past the embedded broker's measured ceiling (BENCHMARKS.md), devices connect to a broker
//! built for large fleets and `luach-server` connects to it like any client, over mutual TLS
//! with a certificate of its own ([`ExternalTls`]). The broker does what the edge does on the
//! embedded path, by configuration ([`mosquitto`] writes it for Mosquitto): each device
//! authenticates with its certificate, whose subject is its user name, and an ACL confines it
//! to its own topic prefix; a certificate revocation list refuses revoked and superseded
//! enrolments at connect.
//!
//! Control-plane replicas subscribe to the device traffic through one *shared* subscription
//! (`$share/{group}/{filter}`), so the broker hands each message to one replica of the group
//! and uplink work splits between them. Each replica connects with its own client id; what it
//! publishes to a device goes through the broker, so it reaches the device whichever replica
//! sent it.
//!
//! Delivery: the connection uses a clean session and QoS 1 both ways. A message a device sent
//! while no replica was connected is not kept for the control plane: agents send their state
//! again (hello on every connection, heartbeats, telemetry until the control plane answers
//! that it stored it), and the command outbox sends commands again, as on the embedded path.

pub mod mosquitto;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::edge::tls::{TlsSetupError, certificates};
use crate::{BrokerError, Inbound, LinkClosed, LocalLink};

/// `[mqtt.external]`: where the external broker is and how the control plane uses it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExternalSettings {
    /// Host name of the broker's control-plane listener. It must be a name in the broker's
    /// certificate (checked against the device CA, which issues that certificate).
    pub host: String,
    /// Port of the control-plane listener (mutual TLS).
    pub port: u16,
    /// Shared-subscription group: replicas in one group split device traffic between them.
    pub share_group: String,
    /// Prefix of this replica's client id; a random suffix keeps replicas apart.
    pub client_id_prefix: String,
    /// MQTT keep-alive of the connection, in seconds (5 to 600).
    pub keep_alive_secs: u16,
    /// Device messages buffered between the connection and the ingest reader; when it is full
    /// the connection stops reading and the broker queues (then, past its own limits, drops).
    pub inbound_queue: usize,
    /// Messages to devices queued while the connection is down; past this, publishing fails
    /// (the command outbox sends again later).
    pub outbound_queue: usize,
    /// How long start-up waits for the first connection before it fails with the reason.
    pub connect_timeout_secs: u16,
    /// Directory of the broker's generated files (`luach-server broker-config mosquitto
    /// --out`), which the server rewrites after every change to who may connect (the device
    /// ACL and the CRL). Unset: the server writes nothing and the operator runs
    /// `broker-config` after such changes.
    pub config_dir: Option<std::path::PathBuf>,
    /// Program and arguments run after each rewrite, to make the broker re-read its files
    /// (Mosquitto: `["systemctl", "reload", "mosquitto"]` or `["pkill", "-HUP", "-x",
    /// "mosquitto"]`). Run without a shell.
    pub reload_command: Vec<String>,
}

impl Default for ExternalSettings {
    fn default() -> Self {
        Self {
            host: "localhost".into(),
            port: 8884,
            share_group: "luach".into(),
            client_id_prefix: "luach-control-plane".into(),
            keep_alive_secs: 30,
            inbound_queue: 16_384,
            outbound_queue: 16_384,
            connect_timeout_secs: 30,
            config_dir: None,
            reload_command: Vec::new(),
        }
    }
}

impl ExternalSettings {
    /// Checks the values before anything connects.
    pub fn validate(&self) -> Result<(), String> {
        if self.host.trim().is_empty() || self.host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("external.host: {:?} is not a host name", self.host));
        }
        if self.port == 0 {
            return Err("external.port must not be 0".into());
        }
        let topic_safe = |s: &str| !s.is_empty() && s.len() <= 64 && !s.contains(['/', '+', '#', '\0']);
        if !topic_safe(&self.share_group) {
            return Err("external.share_group: 1 to 64 characters without '/', '+' or '#'".into());
        }
        if !topic_safe(&self.client_id_prefix) || self.client_id_prefix.len() > 40 {
            return Err("external.client_id_prefix: 1 to 40 characters without '/', '+' or '#'".into());
        }
        if !(5..=600).contains(&self.keep_alive_secs) {
            return Err("external.keep_alive_secs must be between 5 and 600".into());
        }
        if self.inbound_queue == 0 || self.outbound_queue == 0 || self.connect_timeout_secs == 0 {
            return Err("external.inbound_queue, outbound_queue and connect_timeout_secs must be positive".into());
        }
        Ok(())
    }

    /// The subscription that carries `filter` for this replica's group.
    pub fn shared_filter(&self, filter: &str) -> String {
        format!("$share/{}/{filter}", self.share_group)
    }
}

/// The control plane's TLS identity at the external broker (PEM). The key never appears in
/// `Debug` output.
#[derive(Clone)]
pub struct ExternalTls {
    /// CA(s) the broker's server certificate must chain to.
    pub ca_pem: String,
    /// The control plane's client certificate chain, leaf first.
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: luach_pki::Zeroizing<String>,
}

impl std::fmt::Debug for ExternalTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalTls").finish_non_exhaustive()
    }
}

impl ExternalTls {
    fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for ca in certificates(&self.ca_pem, "external broker CA")? {
            roots.add(ca)?;
        }
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|e| TlsSetupError::Pem {
            what: "control-plane client key",
            reason: e.to_string(),
        })?;
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(certificates(&self.cert_pem, "control-plane client certificate")?, key)?;
        Ok(Arc::new(config))
    }
}

/// What the connection has done, for `/metrics` and readiness.
#[derive(Debug, Default)]
pub struct ExternalCounts {
    /// Connections the broker accepted (the first and every reconnection).
    pub connects: AtomicU64,
    /// Connections lost or refused.
    pub failures: AtomicU64,
    /// Device messages received.
    pub received: AtomicU64,
    /// Messages published to devices.
    pub published: AtomicU64,
}

/// The control plane's handle on its connection to the external broker.
#[derive(Clone)]
pub(crate) struct Connection {
    client: AsyncClient,
    connected: Arc<AtomicBool>,
    counts: Arc<ExternalCounts>,
}

impl Connection {
    pub(crate) fn publish(&self, topic: String, payload: Bytes) -> Result<(), LinkClosed> {
        self.client
            .try_publish(topic, QoS::AtLeastOnce, false, payload)
            .map_err(|e| LinkClosed(format!("external broker: {e}")))?;
        self.counts.published.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn probe(&self) -> Result<(), LinkClosed> {
        if self.connected.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err(LinkClosed("not connected to the external broker".into()))
        }
    }
}

/// A running connection to an external broker.
pub struct ExternalBroker {
    settings: ExternalSettings,
    client_id: String,
    connected: Arc<AtomicBool>,
    counts: Arc<ExternalCounts>,
    stop: CancellationToken,
}

impl std::fmt::Debug for ExternalBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalBroker")
            .field("host", &self.settings.host)
            .field("port", &self.settings.port)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl ExternalBroker {
    /// Connects to the broker in `settings` with `tls`, subscribes to `ingest_filter` through
    /// the replicas' shared subscription, and returns once the broker accepted the connection
    /// and the subscription, with the link the control plane reads and publishes through.
    /// Afterwards the connection reconnects by itself (1 s, doubling to 30 s), subscribing
    /// again each time.
    pub async fn connect(
        settings: &ExternalSettings,
        tls: &ExternalTls,
        ingest_filter: &str,
    ) -> Result<(Self, LocalLink), BrokerError> {
        settings.validate().map_err(BrokerError::Config)?;
        let client_id = format!("{}-{:016x}", settings.client_id_prefix, crate::random_u64());
        let mut options = MqttOptions::new(client_id.clone(), settings.host.clone(), settings.port);
        options
            .set_keep_alive(Duration::from_secs(u64::from(settings.keep_alive_secs)))
            .set_clean_session(true)
            .set_request_channel_capacity(settings.outbound_queue)
            .set_max_packet_size(1024 * 1024, 1024 * 1024)
            .set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                tls.client_config()?,
            )));
        let (client, events) = AsyncClient::new(options, settings.outbound_queue);
        let (tx, rx) = mpsc::channel(settings.inbound_queue);
        let connected = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(ExternalCounts::default());
        let stop = CancellationToken::new();
        let (first_tx, first_rx) = tokio::sync::oneshot::channel();
        let task = Task {
            client: client.clone(),
            filter: settings.shared_filter(ingest_filter),
            tx,
            connected: connected.clone(),
            counts: counts.clone(),
            first: Some(first_tx),
        };
        tokio::spawn(task.run(events, stop.clone()));
        let limit = Duration::from_secs(u64::from(settings.connect_timeout_secs));
        let outcome = tokio::time::timeout(limit, first_rx).await;
        let failed = |why: String| {
            stop.cancel();
            Err(BrokerError::External(format!(
                "{}:{}: {why}",
                settings.host, settings.port
            )))
        };
        match outcome {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(why))) => return failed(why),
            Ok(Err(_)) => return failed("the connection task stopped".into()),
            Err(_) => return failed(format!("no connection within {limit:?}")),
        }
        tracing::info!(host = %settings.host, port = settings.port, %client_id, "connected to the external mqtt broker");
        let link = LocalLink::external(
            rx,
            Connection {
                client,
                connected: connected.clone(),
                counts: counts.clone(),
            },
        );
        Ok((
            Self {
                settings: settings.clone(),
                client_id,
                connected,
                counts,
                stop,
            },
            link,
        ))
    }

    /// Whether the connection is up now.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// This replica's client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// What the connection has done so far.
    pub fn counts(&self) -> &ExternalCounts {
        &self.counts
    }

    /// Closes the connection (the link then ends).
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for ExternalBroker {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The event loop: drives the connection, hands device messages to the link, subscribes
/// after every (re)connection.
struct Task {
    client: AsyncClient,
    filter: String,
    tx: mpsc::Sender<Inbound>,
    connected: Arc<AtomicBool>,
    counts: Arc<ExternalCounts>,
    /// Told the outcome of the first connection (accepted and subscribed, or why not).
    first: Option<tokio::sync::oneshot::Sender<Result<(), String>>>,
}

impl Task {
    async fn run(mut self, mut events: EventLoop, stop: CancellationToken) {
        let mut backoff = Duration::from_secs(1);
        loop {
            let event = tokio::select! {
                () = stop.cancelled() => break,
                event = events.poll() => event,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    self.counts.connects.fetch_add(1, Ordering::Relaxed);
                    backoff = Duration::from_secs(1);
                    // A clean session: the subscription is made again on every connection.
                    if let Err(e) = self.client.try_subscribe(self.filter.clone(), QoS::AtLeastOnce) {
                        self.fail_first(format!("subscribing to {}: {e}", self.filter));
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    let granted = ack
                        .return_codes
                        .iter()
                        .all(|c| matches!(c, rumqttc::SubscribeReasonCode::Success(_)));
                    if granted {
                        self.connected.store(true, Ordering::Relaxed);
                        if let Some(first) = self.first.take() {
                            let _ = first.send(Ok(()));
                        }
                    } else {
                        // The broker's ACL does not let this identity read device traffic.
                        tracing::error!(filter = %self.filter, "the external broker refused the control plane's subscription; check its ACL");
                        self.fail_first(format!(
                            "the broker refused the subscription to {} (check the control plane's ACL entry)",
                            self.filter
                        ));
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    self.counts.received.fetch_add(1, Ordering::Relaxed);
                    let inbound = Inbound {
                        topic: publish.topic.into_bytes().into(),
                        payload: publish.payload,
                    };
                    // Waiting here stops the connection reading: the broker queues.
                    let sent = tokio::select! {
                        () = stop.cancelled() => break,
                        sent = self.tx.send(inbound) => sent,
                    };
                    if sent.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    self.connected.store(false, Ordering::Relaxed);
                    self.counts.failures.fetch_add(1, Ordering::Relaxed);
                    if self.first.is_some() {
                        self.fail_first(e.to_string());
                        break;
                    }
                    tracing::warn!(error = %e, retry_in = ?backoff, "external mqtt broker connection lost");
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        self.connected.store(false, Ordering::Relaxed);
        let _ = self.client.try_disconnect();
    }

    fn fail_first(&mut self, why: String) {
        if let Some(first) = self.first.take() {
            let _ = first.send(Err(why));
        }
    }
}
