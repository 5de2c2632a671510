//! Telling screens that their content bundle changed.
//!
//! A screen learns its bundle version from a [`BundleNotice`] on `down/bundle`: when it says
//! hello (every connection), and whenever a write changes what it shows. The notice carries a
//! short-lived device token for `GET /api/v1/agent/bundle`; since only that screen can read
//! its own topics (mutual TLS, per-device topic confinement), only it gets the token.
//!
//! Triggers are coalesced: the API marks a tenant changed after a successful content or device
//! write, ingest marks a device connected; the task waits [`DEBOUNCE`], loads each changed
//! tenant's documents once, rebuilds the bundles of its online screens, and publishes a notice
//! to each screen whose bundle hash differs from the last one it was sent. Every
//! [`REFRESH`] the online screens are checked again, since the honours a bundle holds move
//! with the date.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use luach_broker::Publisher;
use luach_schemas::messages::BundleNotice;
use luach_schemas::{DeviceId, DownKind, TenantId, TopicPrefix};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::TenantContent;
use crate::auth::AuthService;
use crate::chain::Actor;
use crate::metrics::Metrics;
use crate::store::{DeviceFilter, DeviceStatus, PageRequest, SystemStore};

pub use luach_content::bundle::FETCH_PATH;
/// Quiet time after a trigger before bundles are rebuilt, so a burst of edits sends one notice.
pub const DEBOUNCE: Duration = Duration::from_millis(250);
/// How often online screens are checked even without a trigger.
pub const REFRESH: Duration = Duration::from_secs(3600);
/// Wait before a tenant whose refresh failed (a store error) is tried again.
pub const RETRY: Duration = Duration::from_secs(1);
/// Devices listed per store page while refreshing a tenant.
const PAGE: u32 = 500;

#[derive(Debug, Default)]
struct Pending {
    tenants: HashSet<TenantId>,
    devices: HashMap<DeviceId, TenantId>,
}

/// Handle for marking tenants and devices; cheap to clone, never blocks.
#[derive(Clone, Debug, Default)]
pub struct BundleNotifier {
    pending: Arc<Mutex<Pending>>,
    wake: Arc<Notify>,
}

impl BundleNotifier {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Something a tenant's screens may show has changed.
    pub fn tenant_changed(&self, tenant: TenantId) {
        self.lock().tenants.insert(tenant);
        self.wake.notify_one();
    }

    /// A screen (re)connected: it is sent a notice whatever its last one said.
    pub fn device_connected(&self, tenant: TenantId, device: DeviceId) {
        self.lock().devices.insert(device, tenant);
        self.wake.notify_one();
    }

    fn take(&self) -> Pending {
        std::mem::take(&mut *self.lock())
    }

    /// Runs the notifier until `shutdown`.
    pub async fn run(
        self,
        system: SystemStore,
        publisher: Publisher,
        auth: AuthService,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) {
        let mut worker = Worker {
            system,
            publisher,
            auth,
            metrics,
            sent: HashMap::new(),
        };
        let mut refresh = tokio::time::interval(REFRESH);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        refresh.tick().await;
        let mut retry = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(DEBOUNCE) => {}
                    }
                }
                _ = refresh.tick() => {
                    let tenants: HashSet<TenantId> = worker.sent.values().map(|(t, _)| t.clone()).collect();
                    self.lock().tenants.extend(tenants);
                }
                () = async {
                    match retry {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
            let failed = worker.apply(self.take()).await;
            // What failed is tried again (with whatever arrived meanwhile), so a screen that
            // said hello during a store hiccup still gets its notice.
            retry = (!failed.tenants.is_empty()).then(|| tokio::time::Instant::now() + RETRY);
            let mut pending = self.lock();
            pending.tenants.extend(failed.tenants);
            for (device, tenant) in failed.devices {
                pending.devices.entry(device).or_insert(tenant);
            }
        }
    }
}

struct Worker {
    system: SystemStore,
    publisher: Publisher,
    auth: AuthService,
    metrics: Metrics,
    /// The last hash sent to each screen, with its tenant.
    sent: HashMap<DeviceId, (TenantId, String)>,
}

impl Worker {
    /// Refreshes every tenant in `pending`; returns the work of the tenants that failed.
    async fn apply(&mut self, pending: Pending) -> Pending {
        let mut tenants = pending.tenants;
        tenants.extend(pending.devices.values().cloned());
        let mut failed = Pending::default();
        for tenant in tenants {
            let connected: HashSet<&DeviceId> = pending
                .devices
                .iter()
                .filter(|(_, t)| **t == tenant)
                .map(|(d, _)| d)
                .collect();
            if let Err(e) = self.refresh_tenant(&tenant, &connected).await {
                tracing::warn!(tenant_id = %tenant, error = %e, "bundle notices not sent; trying again");
                failed
                    .devices
                    .extend(connected.into_iter().map(|d| (d.clone(), tenant.clone())));
                failed.tenants.insert(tenant);
            }
        }
        failed
    }

    /// Rebuilds the bundles of `tenant`'s online screens (and of the just-connected ones) and
    /// notifies those whose bundle changed (and every just-connected one).
    async fn refresh_tenant(
        &mut self,
        tenant: &TenantId,
        connected: &HashSet<&DeviceId>,
    ) -> Result<(), crate::store::StoreError> {
        let scope = self.system.scope(tenant.clone(), Actor::system());
        let store = self.system.tenant(&scope);
        let content = TenantContent::load(&store, Utc::now().date_naive()).await?;
        let mut devices = Vec::new();
        for id in connected {
            if let Some(d) = store.device(id).await? {
                devices.push(d);
            }
        }
        let online = DeviceFilter {
            status: Some(DeviceStatus::Online),
            ..DeviceFilter::default()
        };
        let mut after = None;
        loop {
            let page = PageRequest { limit: PAGE, after };
            let page = store.devices(&online, &page).await?;
            after = page.items.last().map(|d| d.id.clone());
            let done = page.items.len() < PAGE as usize;
            devices.extend(page.items.into_iter().filter(|d| !connected.contains(&d.id)));
            if done {
                break;
            }
        }
        let ids: Vec<DeviceId> = devices.iter().map(|d| d.id.clone()).collect();
        let prefixes = self.system.prefixes_of(&ids).await?;
        for device in devices {
            let Some(prefix) = prefixes.get(&device.id) else {
                continue; // revoked meanwhile: it listens nowhere
            };
            let built = content.build_for(&device);
            let unchanged = self.sent.get(&device.id).is_some_and(|(_, sha)| *sha == built.sha256);
            if unchanged && !connected.contains(&device.id) {
                continue;
            }
            if self.notify(&device.id, tenant, prefix, &built.sha256).await {
                self.sent.insert(device.id, (tenant.clone(), built.sha256));
            }
        }
        Ok(())
    }

    /// Publishes one notice; false when the broker link is closed.
    async fn notify(&self, device: &DeviceId, tenant: &TenantId, prefix: &TopicPrefix, sha256: &str) -> bool {
        let (token, token_expires_at) = self.auth.device_token(device, tenant, prefix);
        let notice = BundleNotice {
            sha256: sha256.to_owned(),
            path: FETCH_PATH.to_owned(),
            token,
            token_expires_at,
        };
        let sent = crate::down::publish(
            &self.publisher,
            &self.metrics,
            prefix,
            DownKind::Bundle,
            uuid::Uuid::now_v7().to_string(),
            Utc::now(),
            notice,
        );
        if sent.await.is_err() {
            tracing::warn!(device_id = %device, "broker link closed; bundle notice not sent");
            return false;
        }
        tracing::debug!(device_id = %device, sha256, "bundle notice sent");
        true
    }
}
