//! [`SystemStore`]: the lookups that must cross tenants, and the only place scopes are minted.
//!
//! Held by the services that act before a tenant is known or for every tenant at once:
//! authentication (an email, a token digest), enrolment (a device id, a claim code, a bulk
//! token), the ingest pipeline (a topic prefix), the bundle notifier, the audit checkpoint and
//! the admin CLI. It is never part of the HTTP handlers' state.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use luach_schemas::{DeviceId, TenantId, TopicPrefix};

use super::enrolment::{BrokerCertificate, DeviceCertificate, EnrolmentRequest, EnrolmentToken, RequestState};
use super::handle::{Inner, InstallationStore, Store};
use super::identity::{Revoke, Tenant, TokenKind, TokenRecord, User};
use super::migrate::Applied;
use super::model::{DeviceStatus, PresenceWrite};
use super::scope::{InstallationScope, TenantScope};
use super::tenant::TenantStore;
use super::{StoreResult, changes};
use crate::chain::{Actor, AuditRecord, Entry, Heads, INSTALLATION};

/// Cross-tenant access for trusted services.
#[derive(Clone)]
pub struct SystemStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SystemStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemStore")
            .field("backend", &self.inner.backend.name())
            .finish_non_exhaustive()
    }
}

impl SystemStore {
    pub(super) fn new(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    /// A scope for `actor` inside `tenant`. Callers have established that the actor may act
    /// there: a signed-in user of the tenant, a screen enrolled in it, the server itself.
    pub fn scope(&self, tenant: TenantId, actor: Actor) -> TenantScope {
        TenantScope::mint(tenant, actor)
    }

    /// An installation scope for `actor`: a super admin, the CLI, or the server.
    pub fn installation_scope(&self, actor: Actor) -> InstallationScope {
        InstallationScope::mint(actor)
    }

    /// The handle HTTP handlers get: scoped access only.
    pub fn store(&self) -> Store {
        Store::new(Arc::clone(&self.inner))
    }

    pub fn tenant<'a>(&'a self, scope: &'a TenantScope) -> TenantStore<'a> {
        TenantStore::new(&self.inner, scope)
    }

    pub fn installation<'a>(&'a self, scope: &'a InstallationScope) -> InstallationStore<'a> {
        InstallationStore::new(&self.inner, scope)
    }

    /// Applies pending migrations (or, with `dry_run`, lists them).
    pub async fn migrate(&self, dry_run: bool) -> StoreResult<Vec<Applied>> {
        self.inner
            .timed("store.migrate", self.inner.backend.migrate(dry_run))
            .await
    }

    pub fn backend(&self) -> &'static str {
        self.inner.backend.name()
    }

    /// Deletes the jobs that ended before `cutoff`, with their executions; returns how many.
    pub async fn delete_jobs_ended_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        self.inner
            .timed("jobs.delete_ended", self.inner.backend.delete_jobs_ended_before(cutoff))
            .await
    }

    /// Deletes every tenant's alerts resolved before `cutoff`; returns how many.
    pub async fn delete_alerts_resolved_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        self.inner
            .timed(
                "alerts.delete_resolved",
                self.inner.backend.delete_alerts_resolved_before(cutoff),
            )
            .await
    }

    /// Deletes every tenant's sent and failed messages queued before `cutoff`; returns how many.
    pub async fn delete_deliveries_settled_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        let floor = super::outbox::id_floor(cutoff);
        self.inner
            .timed(
                "deliveries.delete_settled",
                self.inner.backend.delete_deliveries_settled_below(&floor),
            )
            .await
    }

    /// Pending messages of every tenant that are due at `now`, oldest first (at most `limit`).
    pub async fn due_deliveries(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<super::Delivery>> {
        self.inner
            .timed("deliveries.due", self.inner.backend.due_deliveries(now, limit))
            .await
    }

    /// Records the outcome of an attempt: `next` replaces `from` while it is still pending after
    /// `from.attempts` attempts. False when another sender got there first.
    pub async fn settle_delivery(&self, from: &super::Delivery, next: &super::Delivery) -> StoreResult<bool> {
        super::outbox::check_move(from, next)?;
        self.inner
            .timed(
                "deliveries.settle",
                self.inner.backend.settle_delivery(next, from.attempts),
            )
            .await
    }

    // ---- backup (see `store::backup`) ----

    /// The tables a backup holds, in the order a restore writes them.
    pub(crate) fn backup_tables(&self) -> Vec<super::backup::Table> {
        self.inner.backend.backup_tables()
    }

    /// Reads every row of `scope` in one consistent snapshot into `sink`.
    pub async fn export(
        &self,
        scope: &super::backup::BackupScope,
        sink: Box<dyn super::backup::RowSink>,
    ) -> StoreResult<Box<dyn super::backup::RowSink>> {
        self.inner
            .timed("backup.export", self.inner.backend.export(scope, sink))
            .await
    }

    /// Writes backed-up rows into `table` as they are.
    pub async fn import(&self, table: &'static str, rows: Vec<serde_json::Value>) -> StoreResult<()> {
        self.inner
            .timed("backup.import", self.inner.backend.import(table, rows))
            .await
    }

    /// Deletes the rows of `scope` in `table` (undoing a failed restore).
    pub async fn delete_rows(&self, table: &'static str, scope: &super::backup::BackupScope) -> StoreResult<u64> {
        self.inner
            .timed("backup.delete", self.inner.backend.delete_rows(table, scope))
            .await
    }

    /// How many rows of `scope` the store holds in `table`.
    pub async fn count_rows(&self, table: &'static str, scope: &super::backup::BackupScope) -> StoreResult<u64> {
        self.inner
            .timed("backup.count", self.inner.backend.count_rows(table, scope))
            .await
    }

    // ---- telemetry ----

    /// Stores telemetry records once each and raises the streams' reports; returns how many
    /// records were new.
    pub async fn store_telemetry(
        &self,
        rows: &[super::TelemetryRow],
        streams: &[super::StreamReport],
    ) -> StoreResult<u64> {
        self.inner
            .timed("telemetry.insert", self.inner.backend.insert_telemetry(rows, streams))
            .await
    }

    /// Rolls raw metrics past the raw retention up into hours, deletes those raw records and
    /// the hours past the hourly retention (see [`super::telemetry`]); returns the raw
    /// records and hours deleted.
    pub async fn compact_telemetry(&self, retention: super::Retention, now: DateTime<Utc>) -> StoreResult<(u64, u64)> {
        let b = self.inner.backend.as_ref();
        let cutoff = retention.raw_cutoff(now);
        let mut raw_deleted = 0;
        let devices = self
            .inner
            .timed("telemetry.devices_before", b.telemetry_devices_before(cutoff))
            .await?;
        for (tenant, device) in devices {
            let records = self
                .inner
                .timed("telemetry.metrics_before", b.metrics_before(&tenant, &device, cutoff))
                .await?;
            let hours = super::telemetry::roll_up(&tenant, &device, &records);
            self.inner
                .timed("telemetry.hours_insert", b.insert_hours_absent(&hours))
                .await?;
            raw_deleted += self
                .inner
                .timed("telemetry.delete", b.delete_telemetry_before(&tenant, &device, cutoff))
                .await?;
        }
        let hours_deleted = self
            .inner
            .timed(
                "telemetry.hours_delete",
                b.delete_hours_before(retention.hourly_cutoff(now)),
            )
            .await?;
        Ok((raw_deleted, hours_deleted))
    }

    // ---- identity ----

    pub async fn get_tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        self.inner.timed("tenants.get", self.inner.backend.get_tenant(id)).await
    }

    pub async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        self.inner.timed("users.get", self.inner.backend.user_by_id(id)).await
    }

    pub async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        self.inner
            .timed("users.by_email", self.inner.backend.user_by_email(email))
            .await
    }

    /// Creates a user (checked and authorised by the caller); `Conflict` when the email is taken.
    pub async fn create_user(&self, user: &User, actor: &Actor) -> StoreResult<()> {
        let entry = changes::user_saved(user, "user.create").by(actor, user.created_at);
        self.inner
            .timed("users.create", self.inner.backend.create_user(user, entry))
            .await
    }

    /// Saves a user whose own credentials changed (password, second factor).
    pub async fn save_user(&self, user: &User, actor: &Actor) -> StoreResult<bool> {
        let entry = changes::user_saved(user, "user.update").by(actor, user.updated_at);
        self.inner
            .timed("users.save", self.inner.backend.save_user(user, entry))
            .await
    }

    /// Accepts a second-factor time step once: true only if it is later than any accepted.
    pub async fn advance_totp_step(&self, user_id: &str, step: i64) -> StoreResult<bool> {
        self.inner
            .timed("users.totp_step", self.inner.backend.advance_totp_step(user_id, step))
            .await
    }

    /// Stores a session's refresh token (not audited: sign-ins are).
    pub async fn insert_refresh_token(&self, token: &TokenRecord) -> StoreResult<()> {
        self.inner
            .timed("tokens.insert", self.inner.backend.insert_token(token, None))
            .await
    }

    /// Stores a personal access token of `user`, audited.
    pub async fn insert_personal_token(&self, user: &User, token: &TokenRecord, actor: &Actor) -> StoreResult<()> {
        let entry = changes::personal_token_created(user, token).by(actor, token.created_at);
        self.inner
            .timed("tokens.insert", self.inner.backend.insert_token(token, Some(entry)))
            .await
    }

    pub async fn token(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        self.inner.timed("tokens.get", self.inner.backend.token(hash)).await
    }

    pub async fn consume_token(&self, hash: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        self.inner
            .timed("tokens.consume", self.inner.backend.consume_token(hash, at))
            .await
    }

    /// Revokes tokens; `audit` is appended when any was revoked (sessions ending at logout
    /// are not audited; personal tokens and credential ends are).
    pub async fn revoke_tokens(&self, which: Revoke<'_>, at: DateTime<Utc>, audit: Option<Entry>) -> StoreResult<u64> {
        self.inner
            .timed("tokens.revoke", self.inner.backend.revoke_tokens(which, at, audit))
            .await
    }

    /// Revokes one personal token of `user`, audited.
    pub async fn revoke_personal_token(
        &self,
        user: &User,
        id: &str,
        at: DateTime<Utc>,
        actor: &Actor,
    ) -> StoreResult<u64> {
        let entry = changes::personal_token_revoked(user, id).by(actor, at);
        let which = Revoke::Family {
            user: &user.id,
            family: id,
        };
        self.revoke_tokens(which, at, Some(entry)).await
    }

    /// Ends every session and personal token of `user`, audited with `reason`.
    pub async fn end_credentials(
        &self,
        user: &User,
        reason: &str,
        at: DateTime<Utc>,
        actor: &Actor,
    ) -> StoreResult<u64> {
        let entry = changes::credentials_ended(user, reason).by(actor, at);
        self.revoke_tokens(Revoke::AllOfUser(&user.id), at, Some(entry)).await
    }

    pub async fn session_live(&self, user_id: &str, family: &str) -> StoreResult<bool> {
        self.inner
            .timed("tokens.session_live", self.inner.backend.session_live(user_id, family))
            .await
    }

    pub async fn list_tokens(&self, user_id: &str, kind: TokenKind) -> StoreResult<Vec<TokenRecord>> {
        self.inner
            .timed("tokens.list", self.inner.backend.list_tokens(user_id, kind))
            .await
    }

    pub async fn touch_token(&self, hash: &str, at: DateTime<Utc>) -> StoreResult<()> {
        self.inner
            .timed("tokens.touch", self.inner.backend.touch_token(hash, at))
            .await
    }

    /// Records a sign-in attempt: in the user's chain (tenant users) or the installation's
    /// (super admins, and unknown emails under their digest).
    pub async fn record_login(
        &self,
        user: Option<&User>,
        email_digest: &str,
        ok: bool,
        reason: &str,
        peer: Option<&str>,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (chain, target, actor) = match user {
            Some(u) => (
                u.tenant_id.as_ref().map_or(INSTALLATION, |t| t.as_str()).to_owned(),
                format!("users/{}", u.id),
                Actor::user(&u.id, &u.email),
            ),
            None => (
                INSTALLATION.to_owned(),
                format!("emails/{email_digest}"),
                Actor::system(),
            ),
        };
        let entry = changes::login(&chain, target, ok, reason, peer).by(&actor, at);
        self.inner
            .timed("audit.append", self.inner.backend.append_audit(entry))
            .await
    }

    // ---- enrolment ----

    pub async fn put_request(&self, request: &EnrolmentRequest) -> StoreResult<()> {
        self.inner
            .timed("enrolment.put", self.inner.backend.put_request(request))
            .await
    }

    pub async fn request(&self, device: &DeviceId) -> StoreResult<Option<EnrolmentRequest>> {
        self.inner
            .timed("enrolment.get", self.inner.backend.request(device))
            .await
    }

    pub async fn pending_by_claim(
        &self,
        claim_digest: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<EnrolmentRequest>> {
        self.inner
            .timed(
                "enrolment.by_claim",
                self.inner.backend.pending_by_claim(claim_digest, now),
            )
            .await
    }

    /// Compare-and-set of a request's state (the allowed moves are the lifecycle's).
    pub async fn transition_request(
        &self,
        request: &EnrolmentRequest,
        to: &RequestState,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.inner
            .timed(
                "enrolment.transition",
                self.inner.backend.transition_request(
                    &request.device_id,
                    &request.claim_digest,
                    &request.state,
                    to,
                    now,
                    request.expires_at,
                ),
            )
            .await
    }

    pub async fn count_pending(&self, now: DateTime<Utc>, source: Option<&str>) -> StoreResult<u64> {
        self.inner
            .timed("enrolment.count_pending", self.inner.backend.count_pending(now, source))
            .await
    }

    pub async fn delete_expired_requests(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.inner
            .timed("enrolment.expire", self.inner.backend.delete_expired_requests(now))
            .await
    }

    /// A device's current certificate, in whichever tenant it is.
    pub async fn certificate(&self, device: &DeviceId) -> StoreResult<Option<DeviceCertificate>> {
        self.inner
            .timed("certificates.get", self.inner.backend.certificate(device))
            .await
    }

    /// Renewal of a certificate for the same key, audited in the device's tenant as the device.
    pub async fn renew_certificate(&self, previous_serial: &str, renewed: &DeviceCertificate) -> StoreResult<bool> {
        let actor = Actor::device(renewed.device_id.as_str());
        let entry = changes::certificate_renewed(renewed, previous_serial).by(&actor, renewed.issued_at);
        self.inner
            .timed(
                "certificates.renew",
                self.inner.backend.renew_certificate(previous_serial, renewed, entry),
            )
            .await
    }

    pub async fn put_nonce(&self, device: &DeviceId, digest: &str, expires_at: DateTime<Utc>) -> StoreResult<()> {
        self.inner
            .timed("nonces.put", self.inner.backend.put_nonce(device, digest, expires_at))
            .await
    }

    pub async fn take_nonce(&self, device: &DeviceId, digest: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        self.inner
            .timed("nonces.take", self.inner.backend.take_nonce(device, digest, now))
            .await
    }

    pub async fn use_enrolment_token(&self, digest: &str, now: DateTime<Utc>) -> StoreResult<Option<EnrolmentToken>> {
        self.inner
            .timed(
                "enrolment_tokens.use",
                self.inner.backend.use_enrolment_token(digest, now),
            )
            .await
    }

    pub async fn release_enrolment_token(&self, digest: &str) -> StoreResult<()> {
        self.inner
            .timed(
                "enrolment_tokens.release",
                self.inner.backend.release_enrolment_token(digest),
            )
            .await
    }

    // ---- ingest ----

    pub async fn resolve_prefixes(
        &self,
        prefixes: &[TopicPrefix],
    ) -> StoreResult<HashMap<TopicPrefix, (DeviceId, TenantId)>> {
        self.inner
            .timed("devices.resolve", self.inner.backend.resolve_prefixes(prefixes))
            .await
    }

    pub async fn prefixes_of(&self, devices: &[DeviceId]) -> StoreResult<HashMap<DeviceId, TopicPrefix>> {
        self.inner
            .timed("devices.prefixes", self.inner.backend.prefixes_of(devices))
            .await
    }

    /// Development: registers unknown screens of the plain listener in `tenant`.
    pub async fn register_devices(&self, tenant: &TenantId, ids: &[DeviceId], now: DateTime<Utc>) -> StoreResult<()> {
        self.inner
            .timed(
                "devices.register",
                self.inner.backend.register_devices(tenant, ids, now),
            )
            .await
    }

    /// Applies presence writes; returns the status transitions that took place (see
    /// [`IngestBackend::apply_presence`](super::backend::IngestBackend)).
    pub async fn apply_presence(&self, batch: &[PresenceWrite]) -> StoreResult<Vec<(DeviceId, DeviceStatus)>> {
        self.inner
            .timed("presence.apply", self.inner.backend.apply_presence(batch))
            .await
    }

    /// Takes offline the online devices last seen before `cutoff`; returns those this call
    /// moved.
    pub async fn expire_presence(&self, cutoff: DateTime<Utc>) -> StoreResult<Vec<(DeviceId, TenantId)>> {
        self.inner
            .timed("presence.expire", self.inner.backend.expire_presence(cutoff))
            .await
    }

    /// Devices online now, in every tenant.
    pub async fn count_online(&self) -> StoreResult<u64> {
        self.inner
            .timed("presence.count", self.inner.backend.count_online())
            .await
    }

    /// Takes or renews lease `name` for `holder` until `until` (see [`crate::lease`]).
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.inner
            .timed("lease.take", self.inner.backend.take_lease(name, holder, now, until))
            .await
    }

    /// Gives lease `name` up if `holder` holds it.
    pub async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        self.inner
            .timed("lease.release", self.inner.backend.release_lease(name, holder))
            .await
    }

    /// Unexpired certificates that may no longer connect (see
    /// [`EnrolmentBackend::refused_certificates`](super::backend::EnrolmentBackend)).
    pub async fn refused_certificates(&self, now: DateTime<Utc>) -> StoreResult<Vec<(String, TopicPrefix)>> {
        self.inner
            .timed("certificates.refused", self.inner.backend.refused_certificates(now))
            .await
    }

    /// Unexpired certificates as a broker's ACL names them (see
    /// [`EnrolmentBackend::broker_certificates`](super::backend::EnrolmentBackend)).
    pub async fn broker_certificates(&self, now: DateTime<Utc>) -> StoreResult<Vec<BrokerCertificate>> {
        self.inner
            .timed("certificates.broker", self.inner.backend.broker_certificates(now))
            .await
    }

    pub async fn mark_all_offline(&self) -> StoreResult<u64> {
        self.inner
            .timed("presence.reset", self.inner.backend.mark_all_offline())
            .await
    }

    // ---- audit ----

    pub async fn audit_records(&self, tenant: &str, after: i64, limit: Option<u32>) -> StoreResult<Vec<AuditRecord>> {
        self.inner
            .timed("audit.records", self.inner.backend.audit_records(tenant, after, limit))
            .await
    }

    pub async fn audit_heads(&self) -> StoreResult<Heads> {
        self.inner.timed("audit.heads", self.inner.backend.audit_heads()).await
    }

    /// Running and paused jobs of every tenant, oldest first (the job engine's work list).
    pub async fn active_jobs(&self) -> StoreResult<Vec<super::JobRecord>> {
        self.inner.timed("jobs.active", self.inner.backend.active_jobs()).await
    }
}
