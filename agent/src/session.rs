//! One device's MQTT session: connect, hello, heartbeats, metrics, commands, reconnect.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use luach_schemas::messages::TelemetryData;
use luach_schemas::messages::{Ack, AckStatus, BundleNotice, Command, CommandAction, Event, Heartbeat, Hello, Metrics};
use luach_schemas::{
    DeviceId, DownKind, Envelope, Topic, TopicPrefix, UpKind, decode_bundle_notice, decode_down, decode_stored,
};
use rumqttc::{AsyncClient, ConnectReturnCode, Event as MqttEvent, LastWill, MqttOptions, NetworkOptions, Packet, QoS};
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior, interval_at};
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::credentials::TlsIdentity;
use crate::outbox::Outbox;
use crate::seen::{Seen, SeenCommands};

/// Requests queued towards the MQTT event loop; periodic messages are dropped when full.
const REQUEST_QUEUE: usize = 64;
/// While records wait in the telemetry queue, at most one batch is sent this often (a screen
/// back from an outage replays its backlog at up to 100 records a second, not all at once).
const REPLAY_EVERY: Duration = Duration::from_secs(1);
/// A batch without an answer from the control plane within this long is sent again.
const STORED_WAIT: Duration = Duration::from_secs(10);
/// Bytes an in-memory telemetry queue keeps (sessions given no queue of their own).
const IN_MEMORY_BUDGET: u64 = 1024 * 1024;

/// Settings of one device session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub device_id: DeviceId,
    pub host: String,
    pub port: u16,
    pub heartbeat_every: Duration,
    pub metrics_every: Duration,
    pub keep_alive: Duration,
    /// Mutual TLS with this identity; `None` = plain TCP (development listener only). The
    /// host must be one of the broker certificate's names.
    pub tls: Option<TlsIdentity>,
}

/// Counters shared by all sessions of a process (the simulator prints them).
#[derive(Debug, Default)]
pub struct SessionStats {
    pub connected: AtomicU64,
    pub connects: AtomicU64,
    /// Connection attempts that failed (refused, timed out) and connections lost.
    pub failures: AtomicU64,
    pub published: AtomicU64,
    pub commands: AtomicU64,
    /// Telemetry batches the control plane confirmed stored.
    pub telemetry_stored: AtomicU64,
}

/// The prefix of a session's topics: the certificate's organisation over mutual TLS, the
/// device id on the plain development listener.
fn prefix_of(config: &SessionConfig) -> TopicPrefix {
    match &config.tls {
        Some(identity) => identity.prefix().unwrap_or_else(|e| {
            tracing::warn!(device_id = %config.device_id, error = %e, "certificate names no usable prefix");
            TopicPrefix::from(&config.device_id)
        }),
        None => TopicPrefix::from(&config.device_id),
    }
}

/// A running device session.
#[derive(Debug)]
pub struct DeviceSession {
    config: SessionConfig,
    /// Where this session's topics live (see [`prefix_of`]).
    prefix: TopicPrefix,
    stats: Arc<SessionStats>,
    session: String,
    ip: Option<String>,
    tls_updates: Option<watch::Receiver<TlsIdentity>>,
    bundle_notices: Option<watch::Sender<Option<BundleNotice>>>,
    /// Carries out commands that act on the screen; `None`: they are answered unsupported.
    actions: Option<Arc<dyn crate::actions::Executor>>,
    /// Command ids seen, so each runs once (kept on disk with [`DeviceSession::with_seen`]).
    seen: SeenCommands,
    /// Telemetry waiting to be stored (kept on disk with [`DeviceSession::with_outbox`]).
    outbox: Outbox,
    /// When the batch awaiting its `stored` answer was sent.
    in_flight: Option<Instant>,
    /// Final answers that arrive outside a command's run (an update's outcome, reported by
    /// the version that runs after it), published while connected.
    reports: Option<tokio::sync::mpsc::UnboundedReceiver<crate::update::trial::Report>>,
}

/// The next report, or never (none configured, or their sender is gone).
async fn next_report(
    reports: &mut Option<tokio::sync::mpsc::UnboundedReceiver<crate::update::trial::Report>>,
) -> crate::update::trial::Report {
    if let Some(rx) = reports {
        if let Some(report) = rx.recv().await {
            return report;
        }
        *reports = None;
    }
    std::future::pending().await
}

/// The next renewed identity, or never (no updates, or their sender is gone).
async fn next_identity(updates: &mut Option<watch::Receiver<TlsIdentity>>) -> TlsIdentity {
    if let Some(rx) = updates {
        if rx.changed().await.is_ok() {
            return rx.borrow_and_update().clone();
        }
        *updates = None;
    }
    std::future::pending().await
}

fn new_session_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn envelope<T: Serialize>(kind: UpKind, body: T) -> Vec<u8> {
    Envelope::new(uuid::Uuid::now_v7().to_string(), kind.as_str(), Utc::now(), body).to_bytes()
}

impl DeviceSession {
    pub fn new(config: SessionConfig, stats: Arc<SessionStats>) -> Self {
        let ip = crate::identity::local_ip_towards(&config.host, config.port);
        Self {
            prefix: prefix_of(&config),
            config,
            stats,
            session: new_session_id(),
            ip,
            tls_updates: None,
            bundle_notices: None,
            actions: None,
            seen: SeenCommands::in_memory(),
            outbox: Outbox::in_memory(IN_MEMORY_BUDGET),
            in_flight: None,
            reports: None,
        }
    }

    /// Publishes each report from `reports` as its command's answer (and records it in the
    /// seen set), while connected.
    pub fn with_reports(mut self, reports: tokio::sync::mpsc::UnboundedReceiver<crate::update::trial::Report>) -> Self {
        self.reports = Some(reports);
        self
    }

    /// Queues telemetry in `outbox` (kept in the state directory across restarts).
    pub fn with_outbox(mut self, outbox: Outbox) -> Self {
        self.outbox = outbox;
        self
    }

    /// Uses each identity sent on `updates` (renewed certificates) from the next connection on.
    pub fn with_tls_updates(mut self, updates: watch::Receiver<TlsIdentity>) -> Self {
        self.tls_updates = Some(updates);
        self
    }

    /// Passes every bundle notice received to `notices` (the bundle fetcher).
    pub fn with_bundle_notices(mut self, notices: watch::Sender<Option<BundleNotice>>) -> Self {
        self.bundle_notices = Some(notices);
        self
    }

    /// Remembers command ids in `seen` (kept in the state directory across restarts).
    pub fn with_seen(mut self, seen: SeenCommands) -> Self {
        self.seen = seen;
        self
    }

    /// Carries out screenshots, display and other commands with `actions`.
    pub fn with_actions(mut self, actions: impl crate::actions::Executor + 'static) -> Self {
        self.actions = Some(Arc::new(actions));
        self
    }

    /// [`DeviceSession::with_actions`] with an executor shared by several sessions.
    pub fn with_shared_actions(mut self, actions: Arc<dyn crate::actions::Executor>) -> Self {
        self.actions = Some(actions);
        self
    }

    fn bundle_notice(&self, payload: &[u8]) {
        let Some(notices) = &self.bundle_notices else { return };
        match decode_bundle_notice(payload) {
            Ok(env) => {
                notices.send_replace(Some(env.body));
            }
            Err(e) => {
                tracing::warn!(device_id = %self.config.device_id, error = %e, "unreadable bundle notice ignored")
            }
        }
    }

    /// Where a message goes: the screen's one uplink topic, whatever its kind (the envelope
    /// names it). Servers from before this layout read only `up/{kind}`; agents are updated
    /// by their server, so an agent never meets an older one.
    fn topic(&self) -> String {
        Topic::Uplink(self.prefix.clone()).to_string()
    }

    fn last_will(&self) -> LastWill {
        LastWill::new(
            self.topic(),
            envelope(
                UpKind::Event,
                Event::Offline {
                    session: self.session.clone(),
                },
            ),
            QoS::AtLeastOnce,
            false,
        )
    }

    fn options(&self) -> MqttOptions {
        let mut o = MqttOptions::new(
            self.config.device_id.as_str(),
            self.config.host.clone(),
            self.config.port,
        );
        o.set_keep_alive(self.config.keep_alive);
        o.set_clean_session(true);
        o.set_max_packet_size(
            luach_schemas::MAX_PAYLOAD_BYTES * 4,
            luach_schemas::MAX_PAYLOAD_BYTES * 4,
        );
        o.set_last_will(self.last_will());
        if let Some(tls) = &self.config.tls {
            o.set_transport(tls.transport());
        }
        o
    }

    fn publish(&self, client: &AsyncClient, kind: UpKind, payload: Vec<u8>) {
        // Never block the event loop: when the queue is full a periodic message is dropped and
        // the next one carries the same information.
        if client
            .try_publish(self.topic(), QoS::AtLeastOnce, false, payload)
            .is_ok()
        {
            self.stats.published.fetch_add(1, Ordering::Relaxed);
        } else {
            tracing::debug!(device_id = %self.config.device_id, kind = kind.as_str(), "request queue full; message dropped");
        }
    }

    /// Sends the oldest queued records, unless a batch is still awaiting its answer.
    fn send_telemetry(&mut self, client: &AsyncClient) {
        if self.in_flight.is_some_and(|sent| sent.elapsed() < STORED_WAIT) {
            return;
        }
        let Some(batch) = self.outbox.batch() else { return };
        let payload = envelope(UpKind::Telemetry, batch);
        if client
            .try_publish(self.topic(), QoS::AtLeastOnce, false, payload)
            .is_ok()
        {
            self.stats.published.fetch_add(1, Ordering::Relaxed);
            self.in_flight = Some(Instant::now());
        }
    }

    /// The control plane stored a batch: its records leave the queue.
    fn telemetry_stored(&mut self, payload: &[u8]) {
        match decode_stored(payload) {
            Ok(env) => {
                if self.outbox.stored(&env.body) {
                    self.in_flight = None;
                    self.stats.telemetry_stored.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => {
                tracing::warn!(device_id = %self.config.device_id, error = %e, "unreadable telemetry answer ignored")
            }
        }
    }

    /// The version this screen reports.
    fn version(&self) -> String {
        self.actions
            .as_ref()
            .and_then(|a| a.agent_version())
            .unwrap_or_else(|| crate::sampler::agent_version().to_owned())
    }

    /// Metrics as reported: the shared sample with this screen's version.
    fn metrics_of(&self, sample: &watch::Receiver<Metrics>) -> Metrics {
        Metrics {
            agent_version: self.version(),
            ..sample.borrow().clone()
        }
    }

    fn hello_of(&self, agent_version: String) -> Hello {
        Hello {
            agent_version,
            session: self.session.clone(),
            platform: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            ip: self.ip.clone(),
            uptime_s: sysinfo::System::uptime(),
        }
    }

    fn hello(&self, client: &AsyncClient) {
        let hello = self.hello_of(self.version());
        self.publish(client, UpKind::Hello, envelope(UpKind::Hello, hello));
    }

    /// Whether the command `id` should run; a repeat is answered from the seen set.
    fn first_time(
        &self,
        client: &AsyncClient,
        seen: &SeenCommands,
        id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> bool {
        let (status, detail) = match seen.receive(id, expires_at) {
            Seen::New => return true,
            Seen::Running => return false,
            Seen::Done(status, detail) => (status, detail),
            Seen::Interrupted => {
                let detail = Some("the agent restarted while this command ran; it is not run again".to_owned());
                seen.finish(id, AckStatus::Error, detail.clone());
                (AckStatus::Error, detail)
            }
        };
        tracing::info!(device_id = %self.config.device_id, command_id = %id, "repeated command answered again, not run");
        self.acknowledge(client, id.to_owned(), status, detail);
        false
    }

    fn acknowledge(&self, client: &AsyncClient, command_id: String, status: AckStatus, detail: Option<String>) {
        let ack = Ack {
            command_id,
            status,
            detail,
        };
        self.publish(client, UpKind::Ack, envelope(UpKind::Ack, ack));
    }

    fn answer(&self, client: &AsyncClient, seen: &SeenCommands, payload: &[u8]) {
        let (command_id, status, detail) = match decode_down(DownKind::Command, payload) {
            Ok(env) => {
                let Command {
                    command_id,
                    expires_at,
                    action,
                } = env.body;
                if expires_at.is_some_and(|t| t < Utc::now()) {
                    tracing::info!(device_id = %self.config.device_id, %command_id, "expired command ignored");
                    return;
                }
                if !self.first_time(client, seen, &command_id, expires_at) {
                    return;
                }
                self.stats.commands.fetch_add(1, Ordering::Relaxed);
                match (action, &self.actions) {
                    (CommandAction::Ping, _) => (command_id, AckStatus::Ok, Some("pong".to_owned())),
                    // The session knows the agent (its queue, its log); no screen work.
                    (CommandAction::Diagnostics, _) => (
                        command_id,
                        AckStatus::Ok,
                        Some(crate::diagnostics::report(&self.outbox)),
                    ),
                    (action, None) => (
                        command_id,
                        AckStatus::Unsupported,
                        Some(format!("this agent has no screen to carry out {}", action.name())),
                    ),
                    (action, Some(actions)) => {
                        // Off the MQTT loop: "received" now, the outcome when the work is done.
                        self.acknowledge(client, command_id.clone(), AckStatus::Received, None);
                        let actions = actions.clone();
                        let client = client.clone();
                        let topic = self.topic();
                        let stats = self.stats.clone();
                        let seen = seen.clone();
                        let hello = (self.topic(), self.hello_of(self.version()));
                        tokio::spawn(async move {
                            let (status, detail) = actions.run(&command_id, action).await;
                            seen.finish(&command_id, status, detail.clone());
                            // A screen that now runs another version (a simulated update) says
                            // so before the outcome, as it would after a restart.
                            if let Some(now) = actions.agent_version().filter(|v| *v != hello.1.agent_version) {
                                let (topic, hello) = hello;
                                let hello = Hello {
                                    agent_version: now,
                                    ..hello
                                };
                                let _ = client
                                    .publish(topic, QoS::AtLeastOnce, false, envelope(UpKind::Hello, hello))
                                    .await;
                            }
                            let ack = Ack {
                                command_id: command_id.clone(),
                                status,
                                detail,
                            };
                            let payload = envelope(UpKind::Ack, ack);
                            if client.publish(topic, QoS::AtLeastOnce, false, payload).await.is_ok() {
                                stats.published.fetch_add(1, Ordering::Relaxed);
                            }
                            // Queued ahead of the goodbye, so it leaves before a stop it asks for.
                            actions.acknowledged(&command_id);
                        });
                        return;
                    }
                }
            }
            Err(e) => {
                // A command this version does not understand still gets an answer, if it
                // carries an id to answer to.
                let id = serde_json::from_slice::<serde_json::Value>(payload).ok().and_then(|v| {
                    v.pointer("/body/command_id")
                        .and_then(|c| c.as_str())
                        .map(str::to_owned)
                });
                let Some(id) = id else {
                    tracing::warn!(device_id = %self.config.device_id, error = %e, "unreadable command ignored");
                    return;
                };
                if !self.first_time(client, seen, &id, None) {
                    return;
                }
                (id, AckStatus::Unsupported, Some(e.to_string()))
            }
        };
        seen.finish(&command_id, status, detail.clone());
        self.acknowledge(client, command_id, status, detail);
    }

    /// Runs until `shutdown`, reconnecting as needed; says goodbye on a clean stop.
    pub async fn run(mut self, metrics: watch::Receiver<Metrics>, shutdown: CancellationToken) {
        let (client, mut eventloop) = AsyncClient::new(self.options(), REQUEST_QUEUE);
        let mut net = NetworkOptions::new();
        // rumqttc leaves Nagle on: +40 ms on every command/ack round trip.
        net.set_tcp_nodelay(true);
        net.set_connection_timeout(10);
        eventloop.set_network_options(net);

        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let seen = self.seen.clone();
        let mut connected = false;
        let start = Instant::now();
        let mut heartbeat = interval_at(start + self.config.heartbeat_every, self.config.heartbeat_every);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut metrics_tick = interval_at(start + self.config.metrics_every, self.config.metrics_every);
        metrics_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut replay = tokio::time::interval(REPLAY_EVERY);
        replay.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut down = Topic::down_filter(&self.prefix);
        // While set, the next connection attempt waits until then (backoff).
        let mut retry_at: Option<Instant> = None;

        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = heartbeat.tick(), if connected => {
                    let hb = Heartbeat { session: self.session.clone(), uptime_s: sysinfo::System::uptime() };
                    self.publish(&client, UpKind::Heartbeat, envelope(UpKind::Heartbeat, hb));
                }
                _ = metrics_tick.tick() => {
                    // Queued whether or not the broker is reachable: nothing is lost offline.
                    let m = self.metrics_of(&metrics);
                    self.outbox.push(Utc::now(), TelemetryData::Metrics { metrics: m });
                }
                _ = self.outbox.pushed(), if connected => self.send_telemetry(&client),
                report = next_report(&mut self.reports), if connected => {
                    tracing::info!(device_id = %self.config.device_id, command_id = %report.command_id, status = ?report.status, "reporting a command's outcome");
                    seen.finish(&report.command_id, report.status, report.detail.clone());
                    self.acknowledge(&client, report.command_id, report.status, report.detail);
                }
                _ = replay.tick(), if connected => self.send_telemetry(&client),
                identity = next_identity(&mut self.tls_updates) => {
                    // The live connection keeps its handshake; the next one presents this.
                    eventloop.mqtt_options.set_transport(identity.transport());
                    self.config.tls = Some(identity);
                    self.prefix = prefix_of(&self.config);
                    down = Topic::down_filter(&self.prefix);
                }
                _ = tokio::time::sleep_until(retry_at.unwrap_or_else(Instant::now)), if retry_at.is_some() => {
                    retry_at = None;
                }
                event = eventloop.poll(), if retry_at.is_none() => match event {
                    Ok(MqttEvent::Incoming(Packet::ConnAck(ack))) if ack.code == ConnectReturnCode::Success => {
                        connected = true;
                        backoff.reset();
                        self.stats.connected.fetch_add(1, Ordering::Relaxed);
                        self.stats.connects.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(device_id = %self.config.device_id, session = %self.session, "connected");
                        if client.try_subscribe(down.clone(), QoS::AtLeastOnce).is_err() {
                            tracing::warn!(device_id = %self.config.device_id, "could not queue command subscription");
                        }
                        self.hello(&client);
                        // Metrics right after hello, so a fresh screen shows numbers at once
                        // (the live value; its history comes through the telemetry queue).
                        let m = self.metrics_of(&metrics);
                        self.publish(&client, UpKind::Metrics, envelope(UpKind::Metrics, m));
                        self.in_flight = None;
                        self.send_telemetry(&client);
                    }
                    Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                        match Topic::parse(&p.topic) {
                            Ok(Topic::Down(_, DownKind::Command)) => self.answer(&client, &seen, &p.payload),
                            Ok(Topic::Down(_, DownKind::Bundle)) => self.bundle_notice(&p.payload),
                            Ok(Topic::Down(_, DownKind::Stored)) => self.telemetry_stored(&p.payload),
                            _ => {}
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.stats.failures.fetch_add(1, Ordering::Relaxed);
                        if connected {
                            connected = false;
                            self.stats.connected.fetch_sub(1, Ordering::Relaxed);
                        }
                        self.in_flight = None;
                        // The next connection is a new session with its own last will.
                        self.session = new_session_id();
                        eventloop.mqtt_options.set_last_will(self.last_will());
                        let delay = backoff.next_delay(&mut rand::rng());
                        tracing::warn!(device_id = %self.config.device_id, error = %e, retry_in_ms = delay.as_millis() as u64, "mqtt connection lost");
                        // Wait in the loop, not here: metrics are still recorded meanwhile.
                        retry_at = Some(Instant::now() + delay);
                    }
                }
            }
        }
        if connected {
            let bye = envelope(
                UpKind::Event,
                Event::Goodbye {
                    session: self.session.clone(),
                },
            );
            let _ = client.try_publish(self.topic(), QoS::AtLeastOnce, false, bye);
            let _ = client.try_disconnect();
            // Let the event loop flush the goodbye and the disconnect.
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while let Ok(ev) = eventloop.poll().await {
                    if matches!(ev, MqttEvent::Outgoing(rumqttc::Outgoing::Disconnect)) {
                        break;
                    }
                }
            })
            .await;
            self.stats.connected.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
