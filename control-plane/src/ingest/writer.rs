//! The writer: sole owner of presence state; applies batches to the store, then emits events.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::Utc;
use luach_schemas::{DeviceId, TenantId, UpMessage};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Batch, PresenceTracker, Work, observation};
use crate::commands::Commands;
use crate::live::LiveSink;
use crate::metrics::Metrics;
use crate::store::{DynStore, TenantScope};

/// How long an unknown, unregistrable device is remembered before the store is asked again.
const UNKNOWN_DEVICE_RETRY: Duration = Duration::from_secs(60);
/// Most messages folded into one batch.
const DEFAULT_BATCH_MAX: usize = 2_000;

/// Sends work to the writer (the API uses it to forget deleted devices).
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

/// Owns presence and applies observations in batches.
pub struct Writer {
    pub store: DynStore,
    pub live: LiveSink,
    pub commands: Commands,
    pub metrics: Metrics,
    pub tracker: PresenceTracker,
    pub auto_register: bool,
    pub batch_max: usize,
    pub sweep_every: Duration,
    /// Told of every hello, so a connecting screen learns its bundle version.
    pub bundles: Option<crate::bundle::BundleNotifier>,
    unknown: HashMap<DeviceId, Instant>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl Writer {
    pub fn new(
        store: DynStore,
        live: LiveSink,
        commands: Commands,
        metrics: Metrics,
        offline_after: Duration,
        auto_register: bool,
    ) -> Self {
        Self {
            store,
            live,
            commands,
            metrics,
            tracker: PresenceTracker::new(offline_after),
            auto_register,
            batch_max: DEFAULT_BATCH_MAX,
            // Check often enough that a silent device is noticed within ~1/4 of the timeout.
            sweep_every: (offline_after / 4).max(Duration::from_millis(500)),
            bundles: None,
            unknown: HashMap::new(),
        }
    }

    /// Runs until shutdown or until every sender is gone.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Work>, shutdown: CancellationToken) {
        let mut sweep = tokio::time::interval(self.sweep_every);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Batch::default();
        let mut works = Vec::with_capacity(self.batch_max);
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
                _ = sweep.tick() => self.tracker.expire(Utc::now(), &mut batch),
            }
            self.flush(&mut batch).await;
        }
        self.flush(&mut batch).await;
    }

    /// Applies a batch of work in arrival order, after resolving every device it mentions
    /// that this process has not seen yet with one store lookup (and, in development, one
    /// bulk registration) for the whole batch.
    async fn handle(&mut self, works: &mut Vec<Work>, batch: &mut Batch) {
        let mut resolved = self.resolve_new(works).await;
        for work in works.drain(..) {
            match work {
                Work::Forget(device) => {
                    self.tracker.forget(&device);
                    self.unknown.remove(&device);
                    resolved.remove(&device);
                }
                Work::Revoked(device) => {
                    tracing::info!(device_id = %device, "device revoked; its messages are dropped from now on");
                    self.tracker.revoke(&device, Utc::now(), batch);
                    self.unknown.remove(&device);
                    resolved.remove(&device);
                }
                Work::Observe {
                    device,
                    message,
                    received,
                } => {
                    let tenant = match self.tracker.tenant_of(&device).or_else(|| resolved.get(&device)) {
                        Some(t) => t.clone(),
                        None => {
                            self.metrics
                                .mqtt_bad_payloads
                                .with_label_values(&["unknown_device"])
                                .inc();
                            continue;
                        }
                    };
                    if let (Some(bundles), UpMessage::Hello(_)) = (&self.bundles, &message) {
                        bundles.device_connected(tenant.clone(), device.clone());
                    }
                    let (obs, ack) = observation(message);
                    if let Some(ack) = ack {
                        self.commands.acknowledge(&device, ack);
                    }
                    self.tracker.observe(&device, &tenant, obs, received, batch);
                }
            }
        }
    }

    /// Tenants of the devices in `works` that the tracker does not know yet.
    async fn resolve_new(&mut self, works: &[Work]) -> HashMap<DeviceId, TenantId> {
        let mut hellos = HashSet::new();
        let mut wanted = HashSet::new();
        for work in works {
            if let Work::Observe { device, message, .. } = work
                && self.tracker.tenant_of(device).is_none()
            {
                if matches!(message, UpMessage::Hello(_)) {
                    hellos.insert(device.clone());
                }
                wanted.insert(device.clone());
            }
        }
        // Devices recently found unregistered are not looked up again, unless they say hello
        // and may be registered.
        let may_register = |d: &DeviceId| self.auto_register && hellos.contains(d);
        wanted.retain(|d| may_register(d) || self.unknown.get(d).is_none_or(|t| t.elapsed() >= UNKNOWN_DEVICE_RETRY));
        if wanted.is_empty() {
            return HashMap::new();
        }
        let wanted: Vec<DeviceId> = wanted.into_iter().collect();
        let mut resolved = self.tenants_of(&wanted).await;
        let register: Vec<DeviceId> = wanted
            .iter()
            .filter(|d| may_register(d) && !resolved.contains_key(*d))
            .cloned()
            .collect();
        if !register.is_empty() {
            let scope = TenantScope::trusted(TenantId::builtin());
            let registered = self
                .metrics
                .time_store(
                    "devices.register",
                    self.store.register_devices(&scope, &register, Utc::now()),
                )
                .await;
            match registered {
                Ok(()) => {
                    tracing::info!(devices = register.len(), tenant_id = %scope.tenant(), "devices registered on first hello");
                    // Read back: an id taken concurrently elsewhere keeps its own tenant.
                    resolved.extend(self.tenants_of(&register).await);
                }
                Err(e) => tracing::error!(error = %e, devices = register.len(), "device registration failed"),
            }
        }
        for device in wanted.iter().filter(|d| !resolved.contains_key(*d)) {
            if self.unknown.insert(device.clone(), Instant::now()).is_none() {
                tracing::warn!(device_id = %device, "messages from unregistered device dropped");
            }
        }
        resolved
    }

    async fn tenants_of(&self, devices: &[DeviceId]) -> HashMap<DeviceId, TenantId> {
        let result = self
            .metrics
            .time_store("devices.tenants_of", self.store.tenants_of(devices))
            .await;
        result.unwrap_or_else(|e| {
            tracing::error!(error = %e, devices = devices.len(), "device lookup failed");
            HashMap::new()
        })
    }

    async fn flush(&mut self, batch: &mut Batch) {
        if batch.is_empty() {
            return;
        }
        let observed = batch.observed;
        let (writes, events) = batch.take();
        let result = self
            .metrics
            .time_store("presence.apply", self.store.apply_presence(&writes))
            .await;
        match result {
            Ok(()) => {
                self.metrics.ingest_stored.inc_by(observed);
                self.metrics.ingest_batches.inc();
            }
            // Keep the writes for the next flush (at the latest the next sweep tick). The
            // backlog is bounded: at most one coalesced write per device.
            Err(e) => {
                tracing::error!(error = %e, writes = writes.len(), "presence batch not stored; will retry");
                batch.requeue(writes);
            }
        }
        self.metrics
            .devices_connected
            .set(i64::try_from(self.tracker.online_count()).unwrap_or(i64::MAX));
        for event in events {
            self.live.send(event);
        }
    }
}
