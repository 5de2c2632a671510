//! The writer: sole owner of presence state; applies batches to the store, then emits events.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use luach_schemas::{DeviceId, TenantId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Batch, PresenceTracker, Work, observation};
use crate::commands::Commands;
use crate::live::LiveIo;
use crate::metrics::Metrics;
use crate::store::{DynStore, NewDevice, StoreError, TenantScope};

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

    /// Drops the writer's memory of a deleted device.
    pub async fn forget(&self, device: DeviceId) {
        // If the writer has stopped the process is shutting down; nothing to forget.
        let _ = self.tx.send(Work::Forget(device)).await;
    }
}

/// Owns presence and applies observations in batches.
pub struct Writer {
    pub store: DynStore,
    pub live: LiveIo,
    pub commands: Commands,
    pub metrics: Metrics,
    pub tracker: PresenceTracker,
    pub auto_register: bool,
    pub batch_max: usize,
    pub sweep_every: Duration,
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
        live: LiveIo,
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
            unknown: HashMap::new(),
        }
    }

    /// Runs until shutdown or until every sender is gone.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Work>, shutdown: CancellationToken) {
        let mut sweep = tokio::time::interval(self.sweep_every);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Batch::default();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                work = rx.recv() => {
                    let Some(work) = work else { break };
                    self.handle(work, &mut batch).await;
                    // Fold in everything already queued, up to the batch limit.
                    while batch.observed < self.batch_max as u64 {
                        match rx.try_recv() {
                            Ok(work) => self.handle(work, &mut batch).await,
                            Err(_) => break,
                        }
                    }
                }
                _ = sweep.tick() => self.tracker.expire(Utc::now(), &mut batch),
            }
            self.flush(&mut batch).await;
        }
        self.flush(&mut batch).await;
    }

    async fn handle(&mut self, work: Work, batch: &mut Batch) {
        match work {
            Work::Forget(device) => {
                self.tracker.forget(&device);
                self.unknown.remove(&device);
            }
            Work::Observe {
                device,
                message,
                received,
            } => {
                let is_hello = matches!(message, luach_schemas::UpMessage::Hello(_));
                let Some(tenant) = self.resolve(&device, is_hello).await else {
                    self.metrics
                        .mqtt_bad_payloads
                        .with_label_values(&["unknown_device"])
                        .inc();
                    return;
                };
                let (obs, ack) = observation(message);
                if let Some(ack) = ack {
                    self.commands.acknowledge(&device, ack);
                }
                self.tracker.observe(&device, &tenant, obs, received, batch);
            }
        }
    }

    /// The device's tenant: from memory, the store, or (in development, and only on a hello)
    /// by registering it.
    async fn resolve(&mut self, device: &DeviceId, is_hello: bool) -> Option<TenantId> {
        if let Some(t) = self.tracker.tenant_of(device) {
            return Some(t.clone());
        }
        let may_register = self.auto_register && is_hello;
        if !may_register
            && self
                .unknown
                .get(device)
                .is_some_and(|t| t.elapsed() < UNKNOWN_DEVICE_RETRY)
        {
            return None;
        }
        match self.store_tenant_of(device).await {
            Some(t) => return Some(t),
            None if !may_register => {
                tracing::warn!(device_id = %device, "message from unregistered device dropped");
                self.unknown.insert(device.clone(), Instant::now());
                return None;
            }
            None => {}
        }
        let scope = TenantScope::trusted(TenantId::builtin());
        let new = NewDevice {
            id: device.clone(),
            name: device.to_string(),
            tags: Vec::new(),
            group: None,
            notes: String::new(),
        };
        let started = Instant::now();
        let created = self.store.create(&scope, new, Utc::now()).await;
        self.metrics.observe_store(
            "devices.create",
            started.elapsed(),
            created.is_ok() || matches!(created, Err(StoreError::Conflict { .. })),
        );
        match created {
            Ok(d) => {
                tracing::info!(device_id = %device, tenant_id = %d.tenant_id, "device registered on first hello");
                Some(d.tenant_id)
            }
            // Registered concurrently (e.g. through the API): ask again.
            Err(StoreError::Conflict { .. }) => self.store_tenant_of(device).await,
            Err(e) => {
                tracing::error!(device_id = %device, error = %e, "device registration failed");
                None
            }
        }
    }

    async fn store_tenant_of(&self, device: &DeviceId) -> Option<TenantId> {
        let started = Instant::now();
        let result = self.store.tenant_of(device).await;
        self.metrics
            .observe_store("devices.tenant_of", started.elapsed(), result.is_ok());
        result.unwrap_or_else(|e| {
            tracing::error!(device_id = %device, error = %e, "device lookup failed");
            None
        })
    }

    async fn flush(&mut self, batch: &mut Batch) {
        if batch.is_empty() {
            return;
        }
        let observed = batch.observed;
        let (writes, events) = batch.take();
        let started = Instant::now();
        let result = self.store.apply_presence(&writes).await;
        self.metrics
            .observe_store("presence.apply", started.elapsed(), result.is_ok());
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
        for event in &events {
            self.live.emit(event).await;
        }
    }
}
