//! [`TenantStore`]: one tenant's data, for one actor. Every method acts inside the scope's
//! tenant (none takes a tenant), records its changes in the tenant's audit chain as the
//! scope's actor, and enforces the tenant's quotas.

use chrono::{DateTime, Utc};
use luach_schemas::{DeviceId, TopicPrefix};
use serde::Serialize;

use super::docs::{Document, Stored};
use super::enrolment::{CertificateRecord, DeviceCertificate, EnrolmentToken, RequestState};
use super::handle::Inner;
use super::identity::{Quota, Tenant, User};
use super::model::{Device, DeviceFilter, DevicePatch, NewDevice, Page, PageRequest};
use super::scope::TenantScope;
use super::synagogue::{Synagogue, SynagogueId, SynagogueProfile};
use super::{StoreError, StoreResult, changes};
use crate::chain::{AuditRecord, Entry};

/// How often a device update is retried when another update won the race.
const UPDATE_ATTEMPTS: usize = 8;

/// What a tenant uses of its quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Usage {
    pub devices: u64,
    pub content_bytes: u64,
}

/// One tenant's data, for the scope's actor.
pub struct TenantStore<'a> {
    inner: &'a Inner,
    scope: &'a TenantScope,
}

impl<'a> TenantStore<'a> {
    pub(super) fn new(inner: &'a Inner, scope: &'a TenantScope) -> Self {
        Self { inner, scope }
    }

    pub fn scope(&self) -> &TenantScope {
        self.scope
    }

    fn entry(&self, change: crate::chain::Change, at: DateTime<Utc>) -> Entry {
        change.by(self.scope.actor(), at)
    }

    fn b(&self) -> &dyn super::backend::Backend {
        self.inner.backend.as_ref()
    }

    /// The tenant's jobs and their executions.
    pub fn jobs(&self) -> super::jobs::TenantJobs<'a> {
        super::jobs::TenantJobs::new(self.inner, self.scope)
    }

    /// The tenant's alerts.
    pub fn alerts(&self) -> super::alerts::TenantAlerts<'a> {
        super::alerts::TenantAlerts::new(self.inner, self.scope)
    }

    /// The tenant's message log.
    pub fn deliveries(&self) -> super::outbox::TenantDeliveries<'a> {
        super::outbox::TenantDeliveries::new(self.inner, self.scope)
    }

    /// The tenant's telemetry history.
    pub fn telemetry(&self) -> super::telemetry::TenantTelemetry<'a> {
        super::telemetry::TenantTelemetry::new(self.inner, self.scope)
    }

    // ---- the tenant and its quota ----

    pub async fn record(&self) -> StoreResult<Option<Tenant>> {
        self.inner
            .timed("tenants.get", self.b().get_tenant(self.scope.tenant()))
            .await
    }

    /// The tenant's limits: its own quota, the installation's defaults where it sets none.
    pub async fn quota(&self) -> StoreResult<Quota> {
        let own = self.record().await?.map(|t| t.quota).unwrap_or_default();
        Ok(own.or(self.inner.quota_defaults))
    }

    pub async fn usage(&self) -> StoreResult<Usage> {
        let tenant = self.scope.tenant();
        Ok(Usage {
            devices: self
                .inner
                .timed("devices.count", self.b().count_devices(tenant))
                .await?,
            content_bytes: self
                .inner
                .timed("documents.bytes", self.b().content_bytes(tenant))
                .await?,
        })
    }

    // ---- devices ----

    /// Devices matching `filter`, ordered by id.
    pub async fn devices(&self, filter: &DeviceFilter, page: &PageRequest) -> StoreResult<Page<Device>> {
        self.inner
            .timed("devices.list", self.b().list_devices(self.scope.tenant(), filter, page))
            .await
    }

    pub async fn device(&self, id: &DeviceId) -> StoreResult<Option<Device>> {
        self.inner
            .timed("devices.get", self.b().get_device(self.scope.tenant(), id))
            .await
    }

    /// Records that the screen fetched (or confirmed it holds) bundle `sha256` at `at`.
    pub async fn record_bundle_fetch(&self, id: &DeviceId, sha256: &str, at: DateTime<Utc>) -> StoreResult<()> {
        self.inner
            .timed(
                "devices.bundle_fetch",
                self.b().record_bundle_fetch(self.scope.tenant(), id, sha256, at),
            )
            .await
    }

    /// Registers a device. `Conflict` when the id is taken in any tenant; `QuotaExceeded` when
    /// the tenant has as many devices as its quota allows (checked before the insert:
    /// concurrent creations can pass it together).
    pub async fn create_device(&self, new: NewDevice, now: DateTime<Utc>) -> StoreResult<Device> {
        if let Some(limit) = self.quota().await?.max_devices {
            let count = self
                .inner
                .timed("devices.count", self.b().count_devices(self.scope.tenant()))
                .await?;
            if count >= limit {
                return Err(StoreError::QuotaExceeded {
                    resource: "devices",
                    limit,
                });
            }
        }
        let device = Device::new(self.scope.tenant().clone(), new, stored_time(now));
        let entry = self.entry(changes::device_created(&device), now);
        self.inner
            .timed("devices.insert", self.b().insert_device(&device, entry))
            .await?;
        Ok(device)
    }

    /// Applies `patch` to the device (compare-and-set on its revision, retried when a
    /// concurrent update won). `None` when the tenant has no such device.
    pub async fn update_device(
        &self,
        id: &DeviceId,
        patch: &DevicePatch,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Device>> {
        for _ in 0..UPDATE_ATTEMPTS {
            let Some(current) = self.device(id).await? else {
                return Ok(None);
            };
            let next = current.patched(patch, stored_time(now));
            let entry = self.entry(changes::device_updated(&next, patch), now);
            if self
                .inner
                .timed(
                    "devices.replace",
                    self.b().replace_device(&next, current.revision, entry),
                )
                .await?
            {
                return Ok(Some(next));
            }
        }
        Err(StoreError::Contention)
    }

    /// Deletes a device and revokes its certificate (it can neither renew nor publish).
    pub async fn delete_device(&self, id: &DeviceId) -> StoreResult<bool> {
        let now = Utc::now();
        let tenant = self.scope.tenant();
        let entry = self.entry(changes::device_deleted(tenant.as_str(), id.as_str()), now);
        let deleted = self
            .inner
            .timed("devices.delete", self.b().delete_device(tenant, id, entry))
            .await?;
        if deleted {
            self.inner
                .timed(
                    "certificates.revoke",
                    self.b().revoke_certificate(tenant, id, now, None),
                )
                .await?;
        }
        Ok(deleted)
    }

    /// The topic prefix the device listens under, if it is the tenant's and has one.
    pub async fn topic_prefix(&self, id: &DeviceId) -> StoreResult<Option<TopicPrefix>> {
        if self.device(id).await?.is_none() {
            return Ok(None);
        }
        let mut found = self
            .inner
            .timed("devices.prefixes", self.b().prefixes_of(std::slice::from_ref(id)))
            .await?;
        Ok(found.remove(id))
    }

    // ---- documents ----

    /// Documents of type `T`, ordered by id, after `after`, at most `limit`.
    pub async fn list<T: Document>(&self, limit: u32, after: Option<&str>) -> StoreResult<Vec<Stored<T>>> {
        let docs = self
            .inner
            .timed(
                "documents.list",
                self.b().list_docs(self.scope.tenant(), T::KIND, limit, after),
            )
            .await?;
        docs.into_iter().map(Stored::from_doc).collect()
    }

    pub async fn get<T: Document>(&self, id: &str) -> StoreResult<Option<Stored<T>>> {
        self.inner
            .timed("documents.get", self.b().get_doc(self.scope.tenant(), T::KIND, id))
            .await?
            .map(Stored::from_doc)
            .transpose()
    }

    /// Creates or replaces a document; returns it and whether it was created.
    /// `QuotaExceeded` when the tenant's stored content would outgrow its quota.
    pub async fn put<T: Document>(&self, id: &str, input: T, now: DateTime<Utc>) -> StoreResult<(Stored<T>, bool)> {
        let tenant = self.scope.tenant();
        let body =
            serde_json::to_value(&input).map_err(|e| StoreError::Corrupt(format!("{}: {e}", T::KIND.as_str())))?;
        if let Some(limit) = self.quota().await?.max_content_bytes {
            let used = self
                .inner
                .timed("documents.bytes", self.b().content_bytes(tenant))
                .await?;
            let replaced = self
                .inner
                .timed("documents.get", self.b().get_doc(tenant, T::KIND, id))
                .await?
                .map_or(0, |d| d.body.to_string().len() as u64);
            let after = used.saturating_sub(replaced) + body.to_string().len() as u64;
            if after > limit {
                return Err(StoreError::QuotaExceeded {
                    resource: "content bytes",
                    limit,
                });
            }
        }
        let entry = self.entry(changes::doc_put(tenant.as_str(), T::KIND, id, &body), now);
        let (doc, created) = self
            .inner
            .timed(
                "documents.put",
                self.b().put_doc(tenant, T::KIND, id, &body, stored_time(now), entry),
            )
            .await?;
        Ok((Stored::from_doc(doc)?, created))
    }

    pub async fn delete<T: Document>(&self, id: &str) -> StoreResult<bool> {
        let tenant = self.scope.tenant();
        let entry = self.entry(changes::doc_deleted(tenant.as_str(), T::KIND, id), Utc::now());
        self.inner
            .timed("documents.delete", self.b().delete_doc(tenant, T::KIND, id, entry))
            .await
    }

    /// Synagogues ordered by id, at most `limit`.
    pub async fn synagogues(&self, limit: u32) -> StoreResult<Vec<Synagogue>> {
        let docs = self.list::<SynagogueProfile>(limit, None).await?;
        docs.into_iter().map(Synagogue::from_stored).collect()
    }

    pub async fn synagogue(&self, id: &SynagogueId) -> StoreResult<Option<Synagogue>> {
        let doc = self.get::<SynagogueProfile>(id.as_str()).await?;
        doc.map(Synagogue::from_stored).transpose()
    }

    pub async fn put_synagogue(
        &self,
        id: &SynagogueId,
        profile: SynagogueProfile,
        now: DateTime<Utc>,
    ) -> StoreResult<(Synagogue, bool)> {
        let (doc, created) = self.put(id.as_str(), profile, now).await?;
        Ok((Synagogue::from_stored(doc)?, created))
    }

    pub async fn delete_synagogue(&self, id: &SynagogueId) -> StoreResult<bool> {
        self.delete::<SynagogueProfile>(id.as_str()).await
    }

    // ---- users ----

    /// The tenant's users, ordered by email.
    pub async fn users(&self) -> StoreResult<Vec<User>> {
        self.inner
            .timed("users.list", self.b().list_users(Some(self.scope.tenant())))
            .await
    }

    /// A user of this tenant; users of other tenants are absent, like missing ones.
    pub async fn user(&self, id: &str) -> StoreResult<Option<User>> {
        let user = self.inner.timed("users.get", self.b().user_by_id(id)).await?;
        Ok(user.filter(|u| u.tenant_id.as_ref() == Some(self.scope.tenant())))
    }

    /// Saves a user of this tenant (the stored user must be the tenant's too). False when the
    /// tenant has no such user.
    pub async fn save_user(&self, user: &User) -> StoreResult<bool> {
        if user.tenant_id.as_ref() != Some(self.scope.tenant()) {
            return Ok(false);
        }
        let entry = self.entry(changes::user_saved(user, "user.update"), user.updated_at);
        self.inner.timed("users.save", self.b().save_user(user, entry)).await
    }

    /// Deletes a user of this tenant and every token of theirs.
    pub async fn delete_user(&self, id: &str) -> StoreResult<bool> {
        let tenant = self.scope.tenant();
        let entry = self.entry(changes::user_deleted(tenant.as_str(), id), Utc::now());
        self.inner
            .timed("users.delete", self.b().delete_user(tenant, id, entry))
            .await
    }

    // ---- enrolment ----

    /// Marks the pending request of `device` (still with `claim_digest`) issued in this tenant
    /// with its certificate: true only for the first claimer.
    pub async fn claim_request(
        &self,
        device: &DeviceId,
        claim_digest: &str,
        certificate_pem: &str,
        now: DateTime<Utc>,
        keep_until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let issued = RequestState::Issued {
            tenant_id: self.scope.tenant().clone(),
            certificate_pem: certificate_pem.to_owned(),
        };
        self.inner
            .timed(
                "enrolment.transition",
                self.b()
                    .transition_request(device, claim_digest, &RequestState::Pending, &issued, now, keep_until),
            )
            .await
    }

    /// Records a certificate issued to one of the tenant's devices as its current one (the
    /// previous one, if any, is superseded and its prefix stops resolving).
    pub async fn issue_certificate(
        &self,
        cert: &DeviceCertificate,
        via: &str,
        rekey: bool,
        previous_tenant: Option<&str>,
    ) -> StoreResult<()> {
        if cert.tenant_id != *self.scope.tenant() {
            return Err(StoreError::Corrupt("certificate outside the scope's tenant".into()));
        }
        let entry = self.entry(
            changes::device_enrolled(cert, via, rekey, previous_tenant),
            cert.issued_at,
        );
        self.inner
            .timed("certificates.put", self.b().put_certificate(cert, entry))
            .await
    }

    /// The device's current certificate, if the device is this tenant's.
    pub async fn certificate(&self, device: &DeviceId) -> StoreResult<Option<DeviceCertificate>> {
        let cert = self
            .inner
            .timed("certificates.get", self.b().certificate(device))
            .await?;
        Ok(cert.filter(|c| c.tenant_id == *self.scope.tenant()))
    }

    /// Every certificate issued to the device while it was this tenant's, newest first.
    pub async fn certificate_history(&self, device: &DeviceId) -> StoreResult<Vec<CertificateRecord>> {
        self.inner
            .timed(
                "certificates.history",
                self.b().certificate_history(self.scope.tenant(), device),
            )
            .await
    }

    /// Revokes the device's certificate; false when the tenant has none for it.
    pub async fn revoke_certificate(&self, device: &DeviceId, at: DateTime<Utc>) -> StoreResult<bool> {
        let tenant = self.scope.tenant();
        let entry = self.entry(changes::certificate_revoked(tenant.as_str(), device.as_str()), at);
        self.inner
            .timed(
                "certificates.revoke",
                self.b().revoke_certificate(tenant, device, at, Some(entry)),
            )
            .await
    }

    /// The tenant's bulk enrolment tokens, newest first.
    pub async fn enrolment_tokens(&self) -> StoreResult<Vec<EnrolmentToken>> {
        self.inner
            .timed(
                "enrolment_tokens.list",
                self.b().list_enrolment_tokens(self.scope.tenant()),
            )
            .await
    }

    pub async fn create_enrolment_token(&self, token: &EnrolmentToken) -> StoreResult<()> {
        if token.tenant_id != *self.scope.tenant() {
            return Err(StoreError::Corrupt("token outside the scope's tenant".into()));
        }
        let entry = self.entry(changes::enrolment_token_created(token), token.created_at);
        self.inner
            .timed("enrolment_tokens.insert", self.b().insert_enrolment_token(token, entry))
            .await
    }

    /// Revokes one of the tenant's tokens; false when it has none with this id.
    pub async fn revoke_enrolment_token(&self, id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        let tenant = self.scope.tenant();
        let entry = self.entry(changes::enrolment_token_revoked(tenant.as_str(), id), at);
        self.inner
            .timed(
                "enrolment_tokens.revoke",
                self.b().revoke_enrolment_token(tenant, id, at, entry),
            )
            .await
    }

    // ---- audit ----

    /// The tenant's audit records after `after`, oldest first, at most `limit`.
    pub async fn audit(&self, after: i64, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        self.inner
            .timed(
                "audit.records",
                self.b().audit_records(self.scope.tenant().as_str(), after, Some(limit)),
            )
            .await
    }
}

/// `t` at the stores' precision (milliseconds), so what a write returns equals what a read
/// of it returns.
pub(super) fn stored_time(t: DateTime<Utc>) -> DateTime<Utc> {
    chrono::TimeZone::timestamp_millis_opt(&Utc, t.timestamp_millis())
        .single()
        .unwrap_or(t)
}
