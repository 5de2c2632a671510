//! The writer: sole owner of presence state; resolves topic prefixes to devices, applies
//! batches to the store, then emits events.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use luach_broker::Publisher;
use luach_schemas::messages::{Stored, TelemetryBatch, TelemetryData};
use luach_schemas::{DeviceId, DownKind, TenantId, TopicPrefix, UpMessage};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Batch, Observation, PresenceTracker, Work, observation};
use crate::commands::Commands;
use crate::live::LiveSink;
use crate::metrics::Metrics;
use crate::store::{DeviceStatus, Retention, StreamReport, SystemStore, TelemetryRow};

/// How long an unknown prefix is remembered before the store is asked again.
const UNKNOWN_PREFIX_RETRY: Duration = Duration::from_secs(60);
/// Most messages folded into one batch.
const DEFAULT_BATCH_MAX: usize = 2_000;
/// Resolved prefixes are forgotten this often, so a revocation made through another replica
/// takes effect here too.
const ROUTE_TTL: Duration = Duration::from_secs(300);
/// A telemetry metrics record this fresh also updates the screen's latest metrics; older ones
/// (a backlog replayed after an outage) go to history only.
const LIVE_METRICS_AGE: chrono::TimeDelta = chrono::TimeDelta::minutes(2);

/// A telemetry batch waiting for the next flush.
struct PendingTelemetry {
    prefix: TopicPrefix,
    route: Route,
    batch: TelemetryBatch,
    received: DateTime<Utc>,
}

/// Sends work to the writer (the API uses it to forget deleted or revoked devices).
#[derive(Debug, Clone)]
pub struct IngestHandle {
    tx: mpsc::Sender<Work>,
}

impl IngestHandle {
    pub fn new(tx: mpsc::Sender<Work>) -> Self {
        Self { tx }
    }

    /// Drops the writer's memory of a deleted or newly enrolled device.
    pub async fn forget(&self, device: DeviceId) {
        // If the writer has stopped the process is shutting down; nothing to forget.
        let _ = self.tx.send(Work::Forget(device)).await;
    }

    /// Takes a device whose certificate was revoked offline and drops its later messages.
    pub async fn revoked(&self, device: DeviceId) {
        let _ = self.tx.send(Work::Revoked(device)).await;
    }
}

/// Where a prefix's messages go.
#[derive(Debug, Clone)]
struct Route {
    device: DeviceId,
    tenant: TenantId,
}

/// Owns presence and applies observations in batches.
pub struct Writer {
    pub system: SystemStore,
    pub live: LiveSink,
    pub commands: Commands,
    pub metrics: Metrics,
    pub tracker: PresenceTracker,
    pub auto_register: bool,
    pub batch_max: usize,
    pub sweep_every: Duration,
    /// A device silent for this long is taken offline.
    offline_after: Duration,
    /// Devices online in the store, as last counted and moved since.
    online: i64,
    /// Told of every hello, so a connecting screen learns its bundle version.
    pub bundles: Option<crate::bundle::BundleNotifier>,
    /// Given every acknowledgement of a job's command, and woken when a screen comes online.
    pub jobs: Option<crate::jobs::Jobs>,
    /// Answers stored telemetry batches (`down/stored`); without it nothing is answered and
    /// screens send their records again.
    pub publisher: Option<Publisher>,
    /// How long telemetry history is kept (records older than the raw window are not stored).
    pub retention: Retention,
    telemetry: Vec<PendingTelemetry>,
    /// Resolved prefixes (the store is asked once per prefix, not per message).
    routes: HashMap<TopicPrefix, Route>,
    routes_since: Instant,
    unknown: HashMap<TopicPrefix, Instant>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl Writer {
    pub fn new(
        system: SystemStore,
        live: LiveSink,
        commands: Commands,
        metrics: Metrics,
        offline_after: Duration,
        auto_register: bool,
    ) -> Self {
        Self {
            system,
            live,
            commands,
            metrics,
            tracker: PresenceTracker::new(offline_after),
            auto_register,
            batch_max: DEFAULT_BATCH_MAX,
            // Check often enough that a silent device is noticed within ~1/4 of the timeout.
            sweep_every: (offline_after / 4).max(Duration::from_millis(500)),
            offline_after,
            online: 0,
            bundles: None,
            jobs: None,
            publisher: None,
            retention: Retention::default(),
            telemetry: Vec::new(),
            routes: HashMap::new(),
            routes_since: Instant::now(),
            unknown: HashMap::new(),
        }
    }

    /// Runs until shutdown or until every sender is gone.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Work>, shutdown: CancellationToken) {
        let mut sweep = tokio::time::interval(self.sweep_every);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Batch::default();
        let mut works = Vec::with_capacity(self.batch_max);
        self.count_online().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                work = rx.recv() => {
                    let Some(work) = work else { break };
                    works.push(work);
                    // Take everything already queued, up to the batch limit.
                    while works.len() < self.batch_max {
                        match rx.try_recv() {
                            Ok(work) => works.push(work),
                            Err(_) => break,
                        }
                    }
                    self.handle(&mut works, &mut batch).await;
                }
                _ = sweep.tick() => {
                    self.sweep().await;
                    if self.routes_since.elapsed() >= ROUTE_TTL {
                        self.routes.clear();
                        self.routes_since = Instant::now();
                    }
                }
            }
            self.flush(&mut batch).await;
        }
        self.flush(&mut batch).await;
    }

    /// Takes offline, in the store, every device silent for longer than `offline_after`
    /// (whichever replica last heard it), and announces those this process moved.
    async fn sweep(&mut self) {
        let cutoff = Utc::now() - chrono::Duration::from_std(self.offline_after).unwrap_or(chrono::Duration::MAX);
        match self.system.expire_presence(cutoff).await {
            Ok(moved) => {
                let at = Utc::now();
                for (device, tenant) in moved {
                    self.tracker.expired(&device);
                    self.live.send(crate::live::LiveEvent::Offline {
                        device_id: device,
                        tenant_id: tenant,
                        at,
                        reason: "heartbeat_timeout",
                    });
                }
            }
            Err(e) => tracing::error!(error = %e, "presence sweep failed; trying again next time"),
        }
        self.count_online().await;
    }

    /// Sets the online gauge from the store (other replicas move devices too).
    async fn count_online(&mut self) {
        match self.system.count_online().await {
            Ok(n) => {
                self.online = i64::try_from(n).unwrap_or(i64::MAX);
                self.metrics.devices_connected.set(self.online);
            }
            Err(e) => tracing::warn!(error = %e, "online devices not counted"),
        }
    }

    /// Drops every route to `device` (its prefix changed or it is gone).
    fn unroute(&mut self, device: &DeviceId) {
        self.routes.retain(|_, r| r.device != *device);
        self.unknown.clear();
    }

    /// Applies a batch of work in arrival order, after resolving every prefix it mentions that
    /// this process has not seen yet with one store lookup (and, in development, one bulk
    /// registration) for the whole batch.
    async fn handle(&mut self, works: &mut Vec<Work>, batch: &mut Batch) {
        self.resolve_new(works).await;
        for work in works.drain(..) {
            match work {
                Work::Forget(device) => {
                    self.tracker.forget(&device);
                    self.unroute(&device);
                }
                Work::Revoked(device) => {
                    tracing::info!(device_id = %device, "device revoked; its messages are dropped from now on");
                    self.tracker.revoke(&device, Utc::now(), batch);
                    self.unroute(&device);
                }
                Work::Observe {
                    prefix,
                    message,
                    received,
                } => {
                    let Some(route) = self.routes.get(&prefix).cloned() else {
                        self.metrics
                            .mqtt_bad_payloads
                            .with_label_values(&["unknown_device"])
                            .inc();
                        continue;
                    };
                    if let (Some(bundles), UpMessage::Hello(_)) = (&self.bundles, &message) {
                        bundles.device_connected(route.tenant.clone(), route.device.clone());
                    }
                    if let UpMessage::Telemetry(env) = message {
                        let obs = live_metrics(&env.body, received);
                        self.tracker.observe(&route.device, &route.tenant, obs, received, batch);
                        self.telemetry.push(PendingTelemetry {
                            prefix,
                            route,
                            batch: env.body,
                            received,
                        });
                        continue;
                    }
                    let (obs, ack) = observation(message);
                    if let Some(ack) = ack {
                        if let Some(jobs) = &self.jobs
                            && jobs.ack(&route.tenant, &route.device, &ack)
                        {
                            // A job's execution: the engine records its outcome.
                        } else {
                            self.commands.acknowledge(&route.device, ack);
                        }
                    }
                    self.tracker.observe(&route.device, &route.tenant, obs, received, batch);
                }
            }
        }
    }

    /// Resolves the prefixes in `works` that have no route yet.
    async fn resolve_new(&mut self, works: &[Work]) {
        let mut hellos = HashSet::new();
        let mut wanted = HashSet::new();
        for work in works {
            if let Work::Observe { prefix, message, .. } = work
                && !self.routes.contains_key(prefix)
            {
                if matches!(message, UpMessage::Hello(_)) {
                    hellos.insert(prefix.clone());
                }
                wanted.insert(prefix.clone());
            }
        }
        // Prefixes recently found unknown are not looked up again, unless they say hello and
        // may be registered.
        let auto_register = self.auto_register;
        let may_register = |p: &TopicPrefix| auto_register && hellos.contains(p);
        wanted.retain(|p| may_register(p) || self.unknown.get(p).is_none_or(|t| t.elapsed() >= UNKNOWN_PREFIX_RETRY));
        if wanted.is_empty() {
            return;
        }
        let wanted: Vec<TopicPrefix> = wanted.into_iter().collect();
        self.route(&wanted).await;
        // Development: a screen on the plain listener that says hello under an unknown prefix
        // is registered in the built-in tenant with its prefix as its id.
        let register: Vec<DeviceId> = wanted
            .iter()
            .filter(|p| may_register(p) && !self.routes.contains_key(*p))
            .filter_map(|p| DeviceId::parse(p.as_str()).ok())
            .collect();
        if !register.is_empty() {
            let tenant = TenantId::builtin();
            match self.system.register_devices(&tenant, &register, Utc::now()).await {
                Ok(()) => {
                    tracing::info!(devices = register.len(), tenant_id = %tenant, "devices registered on first hello");
                    // Read back: an id taken concurrently elsewhere keeps its own tenant.
                    let again: Vec<TopicPrefix> = register.iter().map(TopicPrefix::from).collect();
                    self.route(&again).await;
                }
                Err(e) => tracing::error!(error = %e, devices = register.len(), "device registration failed"),
            }
        }
        for prefix in wanted.iter().filter(|p| !self.routes.contains_key(*p)) {
            if self.unknown.insert(prefix.clone(), Instant::now()).is_none() {
                tracing::warn!(prefix = %prefix, "messages under an unknown topic prefix dropped");
            }
        }
    }

    async fn route(&mut self, prefixes: &[TopicPrefix]) {
        match self.system.resolve_prefixes(prefixes).await {
            Ok(found) => {
                for (prefix, (device, tenant)) in found {
                    self.unknown.remove(&prefix);
                    self.routes.insert(prefix, Route { device, tenant });
                }
            }
            Err(e) => tracing::error!(error = %e, prefixes = prefixes.len(), "device lookup failed"),
        }
    }

    /// Stores the pending telemetry batches (each record once) and answers each screen with
    /// the ranges stored. On a store error nothing is answered: the screens send again.
    async fn flush_telemetry(&mut self) {
        if self.telemetry.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.telemetry);
        let now = Utc::now();
        let mut rows = Vec::new();
        let mut streams: HashMap<(DeviceId, String), StreamReport> = HashMap::new();
        let mut too_old = 0u64;
        for p in &pending {
            let (_, last) = p.batch.range();
            let report = streams
                .entry((p.route.device.clone(), p.batch.stream.clone()))
                .or_insert_with(|| StreamReport {
                    tenant_id: p.route.tenant.clone(),
                    device_id: p.route.device.clone(),
                    stream: p.batch.stream.clone(),
                    dropped: 0,
                    highest_seq: 0,
                    stored: 0,
                    missing: 0,
                    updated_at: now,
                });
            report.dropped = report.dropped.max(p.batch.dropped);
            report.highest_seq = report.highest_seq.max(last);
            for r in &p.batch.records {
                if self.retention.too_old(r.at, now) {
                    too_old += 1;
                    continue;
                }
                let body = match &r.data {
                    TelemetryData::Metrics { metrics } => serde_json::to_value(metrics),
                    TelemetryData::Event { name, detail } => Ok(serde_json::json!({"name": name, "detail": detail})),
                };
                let Ok(body) = body else { continue };
                rows.push(TelemetryRow {
                    tenant_id: p.route.tenant.clone(),
                    device_id: p.route.device.clone(),
                    stream: p.batch.stream.clone(),
                    seq: r.seq,
                    at: r.at,
                    received: p.received,
                    kind: r.data.kind().to_owned(),
                    body,
                });
            }
        }
        let streams: Vec<StreamReport> = streams.into_values().collect();
        let new = match self.system.store_telemetry(&rows, &streams).await {
            Ok(new) => new,
            Err(e) => {
                tracing::error!(error = %e, records = rows.len(), "telemetry not stored; screens will send it again");
                return;
            }
        };
        let outcomes = &self.metrics.telemetry_records;
        outcomes.with_label_values(&["stored"]).inc_by(new);
        outcomes
            .with_label_values(&["duplicate"])
            .inc_by((rows.len() as u64).saturating_sub(new));
        outcomes.with_label_values(&["too_old"]).inc_by(too_old);
        let Some(publisher) = &self.publisher else { return };
        for p in pending {
            let (first, last) = p.batch.range();
            let stored = Stored {
                stream: p.batch.stream,
                first,
                last,
            };
            let id = uuid::Uuid::now_v7().to_string();
            let sent = crate::down::publish(publisher, &self.metrics, &p.prefix, DownKind::Stored, id, now, stored);
            if sent.await.is_err() {
                return;
            }
        }
    }

    async fn flush(&mut self, batch: &mut Batch) {
        self.flush_telemetry().await;
        if batch.is_empty() {
            return;
        }
        let observed = batch.observed;
        let mut taken = batch.take();
        let events = match self.system.apply_presence(&taken.writes).await {
            Ok(moved) => {
                self.metrics.ingest_stored.inc_by(observed);
                self.metrics.ingest_batches.inc();
                for (_, status) in &moved {
                    self.online += match status {
                        DeviceStatus::Online => 1,
                        DeviceStatus::Offline => -1,
                    };
                }
                self.metrics.devices_connected.set(self.online.max(0));
                let mut events = taken.transition_events(&moved);
                events.extend(taken.events);
                events
            }
            // Keep the writes for the next flush (at the latest the next sweep tick). The
            // backlog is bounded: at most one coalesced write per device. Metrics events
            // still go out: they report what the screen sent, not a stored change.
            Err(e) => {
                tracing::error!(error = %e, writes = taken.writes.len(), "presence batch not stored; will retry");
                let events = std::mem::take(&mut taken.events);
                batch.requeue(taken);
                events
            }
        };
        if let Some(jobs) = &self.jobs
            && events
                .iter()
                .any(|e| matches!(e, crate::live::LiveEvent::Online { .. }))
        {
            // A screen that came back gets its waiting executions now, not at the next tick.
            jobs.wake();
        }
        for event in events {
            self.live.send(event);
        }
    }
}

/// What a telemetry batch tells about presence: its newest metrics sample when that is fresh
/// (the screen's latest numbers), activity otherwise.
fn live_metrics(batch: &TelemetryBatch, received: DateTime<Utc>) -> Observation {
    batch
        .records
        .iter()
        .rev()
        .find_map(|r| match &r.data {
            TelemetryData::Metrics { metrics } if received - r.at <= LIVE_METRICS_AGE => {
                Some(Observation::Metrics(metrics.clone()))
            }
            _ => None,
        })
        .unwrap_or(Observation::Activity)
}
