//! The handles HTTP handlers hold: [`Store`] (cheap to clone, part of the application state),
//! which opens a [`TenantStore`] for a [`TenantScope`] and an [`InstallationStore`] for an
//! [`InstallationScope`], and nothing else. Every store operation runs through
//! [`Inner::timed`]: its latency and failures are recorded under its name.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use luach_schemas::TenantId;

use super::backend::Backend;
use super::identity::{Quota, Tenant, User};
use super::scope::{InstallationScope, TenantScope};
use super::tenant::TenantStore;
use super::{StoreResult, changes};
use crate::chain::{AuditRecord, INSTALLATION};
use crate::metrics::Metrics;

/// What every handle shares: the backend, the metrics it reports to, installation defaults.
pub(super) struct Inner {
    pub(super) backend: Arc<dyn Backend>,
    metrics: Metrics,
    pub(super) quota_defaults: Quota,
}

impl Inner {
    pub(super) fn new(backend: Arc<dyn Backend>, metrics: Metrics, quota_defaults: Quota) -> Arc<Self> {
        Arc::new(Self {
            backend,
            metrics,
            quota_defaults,
        })
    }

    /// The one place store operations are awaited: records latency and failures under `op`.
    pub(super) async fn timed<T>(
        &self,
        op: &'static str,
        operation: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let started = Instant::now();
        let result = operation.await;
        self.metrics
            .store_duration
            .with_label_values(&[op])
            .observe(started.elapsed().as_secs_f64());
        if result.is_err() {
            self.metrics.store_errors.with_label_values(&[op]).inc();
        }
        result
    }
}

/// The store as HTTP handlers see it: tenant data through a scope, installation data through
/// an installation scope, and health. It offers no lookup that crosses tenants.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.backend.name())
            .finish_non_exhaustive()
    }
}

impl Store {
    pub(super) fn new(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    /// The data of the scope's tenant, acted on by the scope's actor.
    pub fn tenant<'a>(&'a self, scope: &'a TenantScope) -> TenantStore<'a> {
        TenantStore::new(&self.inner, scope)
    }

    /// Tenants and their quotas, for super admins.
    pub fn installation<'a>(&'a self, scope: &'a InstallationScope) -> InstallationStore<'a> {
        InstallationStore::new(&self.inner, scope)
    }

    /// Round trip to the backend, for readiness.
    pub async fn ping(&self) -> StoreResult<()> {
        self.inner.timed("store.ping", self.inner.backend.ping()).await
    }

    /// "sqlite" or "mongodb".
    pub fn backend(&self) -> &'static str {
        self.inner.backend.name()
    }
}

/// Installation-wide records: tenants, their quotas, and the installation's audit chain.
pub struct InstallationStore<'a> {
    inner: &'a Inner,
    scope: &'a InstallationScope,
}

impl<'a> InstallationStore<'a> {
    pub(super) fn new(inner: &'a Inner, scope: &'a InstallationScope) -> Self {
        Self { inner, scope }
    }

    pub async fn tenants(&self) -> StoreResult<Vec<Tenant>> {
        self.inner
            .timed("tenants.list", self.inner.backend.list_tenants())
            .await
    }

    pub async fn tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        self.inner.timed("tenants.get", self.inner.backend.get_tenant(id)).await
    }

    /// Creates a tenant; `Conflict` when the id exists.
    pub async fn create_tenant(&self, id: TenantId, name: String, now: DateTime<Utc>) -> StoreResult<Tenant> {
        let tenant = Tenant {
            id,
            name,
            created_at: now,
            quota: Quota::default(),
        };
        let entry = changes::tenant_created(&tenant).by(self.scope.actor(), now);
        self.inner
            .timed("tenants.create", self.inner.backend.create_tenant(&tenant, entry))
            .await?;
        Ok(tenant)
    }

    /// Stores `docs` under their ids in tenant `id`, as this scope's actor: a new tenant's
    /// starting documents (its default alert rules).
    pub async fn seed<T: super::Document>(
        &self,
        id: &TenantId,
        docs: Vec<(&str, T)>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let scope = TenantScope::mint(id.clone(), self.scope.actor().clone());
        let store = TenantStore::new(self.inner, &scope);
        for (doc_id, doc) in docs {
            store.put(doc_id, doc, now).await?;
        }
        Ok(())
    }

    /// Sets a tenant's quota (unset fields: the installation default); recorded in the
    /// installation's chain and in the tenant's. `None` when there is no such tenant.
    pub async fn set_quota(&self, id: &TenantId, quota: Quota, now: DateTime<Utc>) -> StoreResult<Option<Tenant>> {
        let Some(mut tenant) = self.tenant(id).await? else {
            return Ok(None);
        };
        let previous = tenant.quota;
        tenant.quota = quota;
        let entry = changes::quota_set(&tenant, INSTALLATION, &previous).by(self.scope.actor(), now);
        if !self
            .inner
            .timed("tenants.save", self.inner.backend.save_tenant(&tenant, entry))
            .await?
        {
            return Ok(None);
        }
        let own = changes::quota_set(&tenant, tenant.id.as_str(), &previous).by(self.scope.actor(), now);
        self.inner
            .timed("audit.append", self.inner.backend.append_audit(own))
            .await?;
        Ok(Some(tenant))
    }

    /// The installation's own users (super admins).
    pub async fn users(&self) -> StoreResult<Vec<User>> {
        self.inner
            .timed("users.list", self.inner.backend.list_users(None))
            .await
    }

    /// The installation's audit chain (tenants, super admins, sign-ins of unknown emails).
    pub async fn audit(&self, after: i64, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        self.inner
            .timed(
                "audit.records",
                self.inner.backend.audit_records(INSTALLATION, after, Some(limit)),
            )
            .await
    }

    /// The installation defaults a tenant's unset quota fields follow.
    pub fn quota_defaults(&self) -> Quota {
        self.inner.quota_defaults
    }
}
