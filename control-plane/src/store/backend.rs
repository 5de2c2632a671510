//! What a storage backend does: store, look up and compare-and-set. Nothing here decides
//! anything: who may act, what a patch means, which enrolment transitions are allowed and what
//! the audit record says are decided above, in the handles ([`super::TenantStore`],
//! [`super::SystemStore`]) and the services. Every write that is audited takes its
//! [`Entry`] and appends it in the same transaction, after the change took effect.
//!
//! The traits are crate-private: the only way to reach a backend is through a handle, and the
//! only handle an HTTP handler holds is scoped to its caller's tenant.

use std::collections::HashMap;
use std::ops::Range;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use luach_schemas::{DeviceId, TenantId, TopicPrefix};
use serde_json::Value;

use super::StoreResult;
use super::alerts::{AlertFilter, AlertRecord, AlertState};
use super::docs::{DocKind, StoredDoc};
use super::enrolment::{
    BrokerCertificate, CertificateRecord, DeviceCertificate, EnrolmentRequest, EnrolmentToken, RequestState,
};
use super::identity::{Revoke, Tenant, TokenKind, TokenRecord, User};
use super::jobs::{ExecFilter, ExecState, ExecUpdate, Execution, JobFilter, JobMove, JobRecord, Tally};
use super::migrate::Applied;
use super::model::{Device, DeviceFilter, DeviceStatus, Page, PageRequest, PresenceWrite};
use super::outbox::Delivery;
use super::telemetry::{After, HourRow, StreamReport, TelemetryRow};
use crate::chain::{AuditRecord, Entry, Heads};

/// Tenant-owned screens.
#[async_trait]
pub(crate) trait DeviceBackend: Send + Sync {
    /// The tenant's devices matching `filter`, ordered by id.
    async fn list_devices(
        &self,
        tenant: &TenantId,
        filter: &DeviceFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Device>>;
    async fn get_device(&self, tenant: &TenantId, id: &DeviceId) -> StoreResult<Option<Device>>;
    async fn count_devices(&self, tenant: &TenantId) -> StoreResult<u64>;
    /// Inserts a device (its topic prefix is its id until it is enrolled). Fails with
    /// `Conflict` when the id is taken in any tenant: ids are global.
    async fn insert_device(&self, device: &Device, audit: Entry) -> StoreResult<()>;
    /// Writes the operator-owned fields (name, tags, group, notes, `updated_at`) of `device`
    /// and sets its revision to `device.revision`, only while the stored revision is
    /// `expected`. False when the device changed meanwhile or is gone.
    async fn replace_device(&self, device: &Device, expected: i64, audit: Entry) -> StoreResult<bool>;
    async fn delete_device(&self, tenant: &TenantId, id: &DeviceId, audit: Entry) -> StoreResult<bool>;
    /// Records that the device fetched (or confirmed it holds) bundle `sha256` at `at`; never
    /// moves `bundle_fetched_at` back. Not an operator change: the revision stays.
    async fn record_bundle_fetch(
        &self,
        tenant: &TenantId,
        id: &DeviceId,
        sha256: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
}

/// Tenant-owned documents of every [`DocKind`].
#[async_trait]
pub(crate) trait DocBackend: Send + Sync {
    async fn list_docs(
        &self,
        tenant: &TenantId,
        kind: DocKind,
        limit: u32,
        after: Option<&str>,
    ) -> StoreResult<Vec<StoredDoc>>;
    async fn get_doc(&self, tenant: &TenantId, kind: DocKind, id: &str) -> StoreResult<Option<StoredDoc>>;
    /// Creates or replaces; `created_at` survives replacement. Returns the stored document and
    /// whether it was created.
    async fn put_doc(
        &self,
        tenant: &TenantId,
        kind: DocKind,
        id: &str,
        body: &Value,
        now: DateTime<Utc>,
        audit: Entry,
    ) -> StoreResult<(StoredDoc, bool)>;
    async fn delete_doc(&self, tenant: &TenantId, kind: DocKind, id: &str, audit: Entry) -> StoreResult<bool>;
    /// Bytes of the tenant's stored documents (their JSON bodies), for the content quota.
    async fn content_bytes(&self, tenant: &TenantId) -> StoreResult<u64>;
}

/// The MQTT ingest pipeline's device-wide operations, keyed by what the broker authenticated.
#[async_trait]
pub(crate) trait IngestBackend: Send + Sync {
    /// The device and tenant behind each known topic prefix. A revoked device has no prefix,
    /// and a re-enrolled one has a new one, so their old certificates resolve to nothing.
    async fn resolve_prefixes(
        &self,
        prefixes: &[TopicPrefix],
    ) -> StoreResult<HashMap<TopicPrefix, (DeviceId, TenantId)>>;
    /// The current topic prefix of each of `devices` that has one.
    async fn prefixes_of(&self, devices: &[DeviceId]) -> StoreResult<HashMap<DeviceId, TopicPrefix>>;
    /// Registers `ids` in `tenant` with default fields (name = id, prefix = id), leaving ids
    /// that exist in any tenant, and ids with any certificate history, untouched.
    async fn register_devices(&self, tenant: &TenantId, ids: &[DeviceId], now: DateTime<Utc>) -> StoreResult<()>;
    /// Applies coalesced presence writes (one transaction where supported). A status is set
    /// only where it differs from the stored one; returns the devices whose status changed,
    /// so that of several replicas writing the same status, exactly one sees the transition.
    async fn apply_presence(&self, batch: &[PresenceWrite]) -> StoreResult<Vec<(DeviceId, DeviceStatus)>>;
    /// Marks every online device offline; returns how many changed.
    async fn mark_all_offline(&self) -> StoreResult<u64>;
    /// Marks offline every online device last seen before `cutoff` (or never); returns the
    /// devices that moved, each moved by exactly one caller.
    async fn expire_presence(&self, cutoff: DateTime<Utc>) -> StoreResult<Vec<(DeviceId, TenantId)>>;
    /// Devices online now, in every tenant.
    async fn count_online(&self) -> StoreResult<u64>;
}

/// Named leases, so that of several replicas one runs each singleton task.
#[async_trait]
pub(crate) trait LeaseBackend: Send + Sync {
    /// Takes or renews lease `name` for `holder` until `until`, if it is free, expired at
    /// `now`, or already `holder`'s. True when `holder` holds it now.
    async fn take_lease(&self, name: &str, holder: &str, now: DateTime<Utc>, until: DateTime<Utc>)
    -> StoreResult<bool>;
    /// Gives lease `name` up if `holder` holds it.
    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()>;
}

/// Tenants, users and the tokens issued to them.
#[async_trait]
pub(crate) trait IdentityBackend: Send + Sync {
    /// Fails with `Conflict` when the id exists.
    async fn create_tenant(&self, tenant: &Tenant, audit: Entry) -> StoreResult<()>;
    /// Replaces a tenant record (name, quota). False when there is none.
    async fn save_tenant(&self, tenant: &Tenant, audit: Entry) -> StoreResult<bool>;
    async fn get_tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>>;
    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>>;

    /// Fails with `Conflict` when the email is taken.
    async fn create_user(&self, user: &User, audit: Entry) -> StoreResult<()>;
    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>>;
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    /// Users of `tenant` (`None`: installation users), ordered by email.
    async fn list_users(&self, tenant: Option<&TenantId>) -> StoreResult<Vec<User>>;
    /// Replaces a user while it still belongs to `user.tenant_id`. False when there is none.
    async fn save_user(&self, user: &User, audit: Entry) -> StoreResult<bool>;
    /// Deletes a user of `tenant` and every token of theirs.
    async fn delete_user(&self, tenant: &TenantId, id: &str, audit: Entry) -> StoreResult<bool>;
    /// Records the second-factor time step just accepted for `user_id`, only if it is later
    /// than every step accepted before: true for exactly one of two logins with one code.
    async fn advance_totp_step(&self, user_id: &str, step: i64) -> StoreResult<bool>;

    async fn insert_token(&self, token: &TokenRecord, audit: Option<Entry>) -> StoreResult<()>;
    async fn token(&self, hash: &str) -> StoreResult<Option<TokenRecord>>;
    /// Marks a refresh token used: true only for the first caller, while it is not revoked.
    async fn consume_token(&self, hash: &str, at: DateTime<Utc>) -> StoreResult<bool>;
    /// Revokes matching tokens not yet revoked; returns how many. The entry is appended when
    /// at least one was revoked.
    async fn revoke_tokens(&self, which: Revoke<'_>, at: DateTime<Utc>, audit: Option<Entry>) -> StoreResult<u64>;
    /// True while a login session (refresh family) of `user_id` has an unrevoked token.
    async fn session_live(&self, user_id: &str, family: &str) -> StoreResult<bool>;
    /// A user's tokens of `kind`, newest first.
    async fn list_tokens(&self, user_id: &str, kind: TokenKind) -> StoreResult<Vec<TokenRecord>>;
    /// Records that a personal token was used (best effort).
    async fn touch_token(&self, hash: &str, at: DateTime<Utc>) -> StoreResult<()>;
}

/// Enrolment requests, device certificates, renewal nonces and bulk enrolment tokens.
#[async_trait]
pub(crate) trait EnrolmentBackend: Send + Sync {
    /// Stores a request, replacing any earlier request of the device. `Conflict` when another
    /// device's request has the same claim digest.
    async fn put_request(&self, request: &EnrolmentRequest) -> StoreResult<()>;
    async fn request(&self, device: &DeviceId) -> StoreResult<Option<EnrolmentRequest>>;
    /// The unexpired request in state `pending` with this claim digest.
    async fn pending_by_claim(&self, claim_digest: &str, now: DateTime<Utc>) -> StoreResult<Option<EnrolmentRequest>>;
    /// Compare-and-set of a request's state: moves the request of `device` that still has
    /// `claim_digest`, is in state `from` and has not expired at `now` to `to`, extending its
    /// expiry to at least `keep_until`. True when it moved.
    async fn transition_request(
        &self,
        device: &DeviceId,
        claim_digest: &str,
        from: &RequestState,
        to: &RequestState,
        now: DateTime<Utc>,
        keep_until: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Unexpired pending requests, all of them or from one source.
    async fn count_pending(&self, now: DateTime<Utc>, source: Option<&str>) -> StoreResult<u64>;
    async fn delete_expired_requests(&self, now: DateTime<Utc>) -> StoreResult<u64>;

    /// Issues `certificate` as the device's current one: the previous current certificate
    /// (if any) ends as `superseded`, the history keeps both, and the device's topic prefix
    /// becomes the certificate's.
    async fn put_certificate(&self, certificate: &DeviceCertificate, audit: Entry) -> StoreResult<()>;
    /// Renewal: replaces the current certificate of `renewed.device_id` in `renewed.tenant_id`
    /// only while it still has `previous_serial` and is not revoked; the previous one ends as
    /// `renewed`. True when replaced.
    async fn renew_certificate(
        &self,
        previous_serial: &str,
        renewed: &DeviceCertificate,
        audit: Entry,
    ) -> StoreResult<bool>;
    /// The current certificate of a device, in any tenant.
    async fn certificate(&self, device: &DeviceId) -> StoreResult<Option<DeviceCertificate>>;
    /// Every certificate issued to a device while it belonged to `tenant`, newest first.
    async fn certificate_history(&self, tenant: &TenantId, device: &DeviceId) -> StoreResult<Vec<CertificateRecord>>;
    /// Certificates still in their validity period at `now` that may no longer connect: every
    /// certificate of an enrolment (a topic prefix) that ended as revoked or superseded,
    /// renewed ones included. `(serial, prefix)`, in any tenant.
    async fn refused_certificates(&self, now: DateTime<Utc>) -> StoreResult<Vec<(String, TopicPrefix)>>;
    /// Every certificate still in its validity period at `now`, in any tenant, with its form
    /// and whether its enrolment was refused (what an external broker's ACL names), sorted
    /// by serial.
    async fn broker_certificates(&self, now: DateTime<Utc>) -> StoreResult<Vec<BrokerCertificate>>;
    /// Revokes the current certificate of `device` in `tenant` (kept revoked if it was) and
    /// clears the device's topic prefix. False when the tenant has no certificate for it.
    async fn revoke_certificate(
        &self,
        tenant: &TenantId,
        device: &DeviceId,
        at: DateTime<Utc>,
        audit: Option<Entry>,
    ) -> StoreResult<bool>;

    /// Stores a renewal nonce's digest for `device` (replacing older ones beyond the newest
    /// few) until `expires_at`.
    async fn put_nonce(&self, device: &DeviceId, digest: &str, expires_at: DateTime<Utc>) -> StoreResult<()>;
    /// Consumes a nonce: true exactly once for an unexpired nonce of `device`.
    async fn take_nonce(&self, device: &DeviceId, digest: &str, now: DateTime<Utc>) -> StoreResult<bool>;

    async fn insert_enrolment_token(&self, token: &EnrolmentToken, audit: Entry) -> StoreResult<()>;
    /// The tenant's tokens, newest first.
    async fn list_enrolment_tokens(&self, tenant: &TenantId) -> StoreResult<Vec<EnrolmentToken>>;
    async fn revoke_enrolment_token(
        &self,
        tenant: &TenantId,
        id: &str,
        at: DateTime<Utc>,
        audit: Entry,
    ) -> StoreResult<bool>;
    /// Counts one use of the token with this digest if it is usable at `now`; returns it.
    async fn use_enrolment_token(&self, digest: &str, now: DateTime<Utc>) -> StoreResult<Option<EnrolmentToken>>;
    /// Gives back a use whose enrolment failed.
    async fn release_enrolment_token(&self, digest: &str) -> StoreResult<()>;
}

/// The audit chains.
#[async_trait]
pub(crate) trait AuditBackend: Send + Sync {
    /// Appends an entry that records no other write (sign-ins).
    async fn append_audit(&self, audit: Entry) -> StoreResult<()>;
    /// One tenant's records with `seq` > `after`, in order, at most `limit` (all: `None`).
    async fn audit_records(&self, tenant: &str, after: i64, limit: Option<u32>) -> StoreResult<Vec<AuditRecord>>;
    /// The newest record of every chain.
    async fn audit_heads(&self) -> StoreResult<Heads>;
}

/// Jobs and their executions (see [`super::jobs`]).
#[async_trait]
pub(crate) trait JobBackend: Send + Sync {
    /// Inserts a job and every execution in one transaction, with its audit entry. `Conflict`
    /// when the tenant has a job with the same idempotency key.
    async fn insert_job(&self, job: &JobRecord, executions: &[Execution], audit: Entry) -> StoreResult<()>;
    async fn get_job(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<JobRecord>>;
    /// The job created with an idempotency key.
    async fn job_by_key(&self, tenant: &TenantId, key: &str) -> StoreResult<Option<JobRecord>>;
    /// Forgets a job's idempotency key (it outlived its life and may be used again).
    async fn clear_job_key(&self, tenant: &TenantId, id: &str) -> StoreResult<()>;
    /// The tenant's jobs, newest first; `after` is the last id of the previous page. Also
    /// returns how many match in all.
    async fn list_jobs(
        &self,
        tenant: &TenantId,
        filter: &JobFilter,
        limit: u32,
        after: Option<&str>,
    ) -> StoreResult<(Vec<JobRecord>, u64)>;
    /// Compare-and-set of a job's state (and reason), with its audit entry when given.
    async fn set_job_state(
        &self,
        tenant: &TenantId,
        id: &str,
        change: &JobMove,
        audit: Option<Entry>,
    ) -> StoreResult<bool>;
    /// Executions of a job at positions `seqs` per state, how many were ever sent
    /// (`attempt` ≥ 1), and when the last of them became final.
    async fn job_counts(&self, tenant: &TenantId, id: &str, seqs: Range<u32>) -> StoreResult<Tally>;
    /// Compare-and-set of a staged roll-out's open phase.
    async fn set_job_phase(
        &self,
        tenant: &TenantId,
        id: &str,
        from: u32,
        to: u32,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// A job's executions in roll-out order; `after` is the last `seq` of the previous page.
    async fn list_executions(
        &self,
        tenant: &TenantId,
        job: &str,
        filter: &ExecFilter,
        limit: u32,
        after: Option<u32>,
    ) -> StoreResult<(Vec<Execution>, u64)>;
    async fn get_execution(&self, tenant: &TenantId, job: &str, seq: u32) -> StoreResult<Option<Execution>>;
    /// A screen's executions across the tenant's jobs, newest job first.
    async fn device_executions(&self, tenant: &TenantId, device: &DeviceId, limit: u32) -> StoreResult<Vec<Execution>>;
    /// Applies each compare-and-set in one transaction; says which applied.
    async fn update_executions(&self, tenant: &TenantId, job: &str, updates: &[ExecUpdate]) -> StoreResult<Vec<bool>>;
    /// Moves every execution of `job` in `from` to `to` with `detail`; returns how many moved.
    async fn move_executions(
        &self,
        tenant: &TenantId,
        job: &str,
        from: ExecState,
        to: ExecState,
        detail: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;
    /// Deletes the jobs that ended (completed, aborted, cancelled) before `cutoff`, with their
    /// executions; returns how many jobs.
    async fn delete_jobs_ended_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64>;
    /// Running and paused jobs of every tenant, oldest first.
    async fn active_jobs(&self) -> StoreResult<Vec<JobRecord>>;
    /// Which of the tenant's `devices` are online, with the topic prefix they listen under.
    async fn online_prefixes(
        &self,
        tenant: &TenantId,
        devices: &[DeviceId],
    ) -> StoreResult<HashMap<DeviceId, TopicPrefix>>;
}

/// Alerts (see [`super::alerts`]).
#[async_trait]
pub(crate) trait AlertBackend: Send + Sync {
    /// Inserts an alert and the messages that tell of it ([`super::outbox`]) in one transaction.
    async fn insert_alert(&self, alert: &AlertRecord, deliveries: &[Delivery]) -> StoreResult<()>;
    async fn get_alert(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<AlertRecord>>;
    /// The tenant's alerts matching `filter`, newest first; `after` is the last id of the
    /// previous page. Also returns how many match in all.
    async fn list_alerts(
        &self,
        tenant: &TenantId,
        filter: &AlertFilter,
        limit: u32,
        after: Option<&str>,
    ) -> StoreResult<(Vec<AlertRecord>, u64)>;
    /// Writes `next` (same tenant and id) while the stored alert is in `from`, with its audit
    /// entry when given and the messages that tell of it, in one transaction. False (and
    /// nothing written) when it moved meanwhile or is gone.
    async fn move_alert(
        &self,
        next: &AlertRecord,
        from: AlertState,
        audit: Option<Entry>,
        deliveries: &[Delivery],
    ) -> StoreResult<bool>;
    /// Deletes every tenant's alerts resolved before `cutoff`; returns how many.
    async fn delete_alerts_resolved_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64>;
}

/// The notification outbox (see [`super::outbox`]); messages are inserted with the change
/// they tell of ([`AlertBackend`]).
#[async_trait]
pub(crate) trait OutboxBackend: Send + Sync {
    /// Inserts messages that tell of no stored change.
    async fn insert_deliveries(&self, deliveries: &[Delivery]) -> StoreResult<()>;
    /// Pending messages of every tenant whose `next_at` has come, oldest first.
    async fn due_deliveries(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Delivery>>;
    /// Deletes every tenant's sent and failed messages whose id is below `id_below` (ids are
    /// time-ordered: see [`super::outbox::id_floor`]); returns how many.
    async fn delete_deliveries_settled_below(&self, id_below: &str) -> StoreResult<u64>;
    /// Writes `next` while the stored message is pending after `attempts` attempts.
    async fn settle_delivery(&self, next: &Delivery, attempts: u32) -> StoreResult<bool>;
    /// The tenant's messages, newest first, and how many in all.
    async fn list_deliveries(
        &self,
        tenant: &TenantId,
        limit: u32,
        after: Option<&str>,
    ) -> StoreResult<(Vec<Delivery>, u64)>;
}

/// Telemetry history (see [`super::telemetry`]).
#[async_trait]
pub(crate) trait TelemetryBackend: Send + Sync {
    /// Stores the rows not stored yet (one per tenant, device, stream and seq) and raises each
    /// stream's report to the highest `dropped` and `highest_seq` seen; returns how many rows
    /// were new.
    async fn insert_telemetry(&self, rows: &[TelemetryRow], streams: &[StreamReport]) -> StoreResult<u64>;
    /// A device's records in (stream, seq) order after `after`, `kind` only when given, with
    /// how many match in all.
    async fn telemetry_records(
        &self,
        tenant: &TenantId,
        device: &DeviceId,
        kind: Option<&str>,
        after: Option<&After>,
        limit: u32,
    ) -> StoreResult<(Vec<TelemetryRow>, u64)>;
    /// A device's streams with their reports and the records of each in history.
    async fn telemetry_streams(&self, tenant: &TenantId, device: &DeviceId) -> StoreResult<Vec<StreamReport>>;
    /// `metric` of every raw metrics record of a device made in `[from, to)`.
    async fn metric_samples(
        &self,
        tenant: &TenantId,
        device: &DeviceId,
        metric: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<(DateTime<Utc>, f64)>>;
    /// Hourly rows of `metric` of a device for hours starting in `[from, to)`.
    async fn metric_hours(
        &self,
        tenant: &TenantId,
        device: &DeviceId,
        metric: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<HourRow>>;
    /// Devices with raw records made before `cutoff`.
    async fn telemetry_devices_before(&self, cutoff: DateTime<Utc>) -> StoreResult<Vec<(TenantId, DeviceId)>>;
    /// A device's raw metrics records made before `cutoff`: when, and the sample.
    async fn metrics_before(
        &self,
        tenant: &TenantId,
        device: &DeviceId,
        cutoff: DateTime<Utc>,
    ) -> StoreResult<Vec<(DateTime<Utc>, Value)>>;
    /// Inserts each hourly row whose (tenant, device, metric, hour) is not stored yet.
    async fn insert_hours_absent(&self, rows: &[HourRow]) -> StoreResult<()>;
    /// Deletes a device's raw records made before `cutoff`; returns how many.
    async fn delete_telemetry_before(
        &self,
        tenant: &TenantId,
        device: &DeviceId,
        cutoff: DateTime<Utc>,
    ) -> StoreResult<u64>;
    /// Deletes hourly rows of hours before `cutoff`; returns how many.
    async fn delete_hours_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64>;
}

/// A storage backend: every aggregate, plus its schema and health.
#[async_trait]
pub(crate) trait Backend:
    DeviceBackend
    + DocBackend
    + IngestBackend
    + IdentityBackend
    + EnrolmentBackend
    + AuditBackend
    + JobBackend
    + TelemetryBackend
    + AlertBackend
    + OutboxBackend
    + LeaseBackend
    + super::backup::BackupBackend
{
    /// Applies the migrations the database lacks, in order; returns what ran.
    async fn migrate(&self, dry_run: bool) -> StoreResult<Vec<Applied>>;
    /// Round trip to the backend, for readiness.
    async fn ping(&self) -> StoreResult<()>;
    /// "sqlite" or "mongodb".
    fn name(&self) -> &'static str;
}
