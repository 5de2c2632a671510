//! Enrolment records: pending requests, device certificates and bulk enrolment tokens.
//!
//! Pending requests and certificates are looked up by the device id a public caller names
//! (then proven with a poll secret or a key), and tokens by the digest of the token a device
//! presents, so those lookups take no [`TenantScope`]. Everything a tenant user reads or
//! changes (claiming, listing and revoking tokens, revoking a certificate) does take one, and
//! every implementation filters by it.
//!
//! Only digests of secrets are stored: the claim code, the poll secret and the token text
//! are shown once and never kept.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use luach_schemas::{DeviceId, TenantId};

use super::{StoreResult, TenantScope};

/// Where a pending enrolment request stands.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestState {
    /// Waiting for a tenant to claim the code.
    Pending,
    /// Claimed: the certificate waits for the device to fetch it.
    Issued {
        tenant_id: TenantId,
        certificate_pem: String,
    },
}

/// A device's request to be enrolled, created without a token.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrolmentRequest {
    pub device_id: DeviceId,
    /// Hex SHA-256 of the normalised claim code (unique among stored requests).
    pub claim_digest: String,
    /// Hex SHA-256 of the poll secret.
    pub poll_digest: String,
    pub csr_pem: String,
    /// Hex SHA-256 of the requested public key (DER SubjectPublicKeyInfo).
    pub key_fingerprint: String,
    pub platform: Option<String>,
    pub agent_version: Option<String>,
    pub created_at: DateTime<Utc>,
    /// After this the request is gone: the code cannot be claimed, the certificate not fetched.
    pub expires_at: DateTime<Utc>,
    pub state: RequestState,
}

/// The certificate a device currently holds. One per device: renewal and re-enrolment
/// replace it, revocation marks it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceCertificate {
    pub device_id: DeviceId,
    pub tenant_id: TenantId,
    /// Lower-case hex, as `luach_pki` reports it.
    pub serial: String,
    /// Hex SHA-256 of the certified public key (DER SubjectPublicKeyInfo).
    pub key_fingerprint: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub issued_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl DeviceCertificate {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

/// A tenant's bulk enrolment token: enrols up to `max_uses` devices into the tenant without a
/// claim code. Only its digest is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrolmentToken {
    /// Public id (for listing and revoking).
    pub id: String,
    /// Hex SHA-256 of the token text.
    pub digest: String,
    pub tenant_id: TenantId,
    pub name: String,
    pub max_uses: u32,
    pub uses: u32,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl EnrolmentToken {
    /// True when the token may enrol another device at `now`.
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at > now && self.uses < self.max_uses
    }
}

/// Storage of enrolment records.
#[async_trait]
pub trait EnrolmentRepo: Send + Sync {
    /// Stores a request, replacing any earlier request of the same device id. Fails with
    /// `Conflict` when another device's stored request has the same claim digest (the caller
    /// draws a new code).
    async fn put_request(&self, request: &EnrolmentRequest) -> StoreResult<()>;
    /// The stored request of a device, expired or not.
    async fn request(&self, device: &DeviceId) -> StoreResult<Option<EnrolmentRequest>>;
    /// The pending, unexpired request with this claim digest.
    async fn pending_by_claim(&self, claim_digest: &str, now: DateTime<Utc>) -> StoreResult<Option<EnrolmentRequest>>;
    /// Marks a pending, unexpired request issued in the scope's tenant, atomically: true only
    /// for the first caller and only while the request still has `claim_digest` (a request
    /// replaced since it was read is left alone). `keep_until` extends its expiry so the device
    /// has time to fetch the certificate.
    async fn issue_request(
        &self,
        scope: &TenantScope,
        device: &DeviceId,
        claim_digest: &str,
        certificate_pem: &str,
        now: DateTime<Utc>,
        keep_until: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Pending requests that have not expired.
    async fn count_pending(&self, now: DateTime<Utc>) -> StoreResult<u64>;
    /// Deletes expired requests; returns how many.
    async fn delete_expired_requests(&self, now: DateTime<Utc>) -> StoreResult<u64>;

    /// Records the scope's tenant's device certificate, replacing the device's previous one.
    async fn put_certificate(&self, scope: &TenantScope, certificate: &DeviceCertificate) -> StoreResult<()>;
    /// Renewal: replaces the scope's tenant's certificate of a device with `renewed`, atomically,
    /// only while the stored one still has `previous_serial` and is not revoked (a revocation
    /// that raced the renewal wins). True when replaced.
    async fn replace_certificate(
        &self,
        scope: &TenantScope,
        previous_serial: &str,
        renewed: &DeviceCertificate,
    ) -> StoreResult<bool>;
    /// For renewal and enrolment decisions: a device's current certificate, in any tenant.
    async fn certificate(&self, device: &DeviceId) -> StoreResult<Option<DeviceCertificate>>;
    /// A device's current certificate if it belongs to the scope's tenant.
    async fn certificate_in(&self, scope: &TenantScope, device: &DeviceId) -> StoreResult<Option<DeviceCertificate>>;
    /// Marks the scope's tenant's certificate of `device` revoked (kept revoked if it was).
    /// False when the tenant has no certificate for the device.
    async fn revoke_certificate(&self, scope: &TenantScope, device: &DeviceId, at: DateTime<Utc>) -> StoreResult<bool>;

    async fn insert_enrolment_token(&self, scope: &TenantScope, token: &EnrolmentToken) -> StoreResult<()>;
    /// The scope's tenant's tokens, newest first.
    async fn list_enrolment_tokens(&self, scope: &TenantScope) -> StoreResult<Vec<EnrolmentToken>>;
    /// Revokes one of the scope's tenant's tokens by public id. False when there is none.
    async fn revoke_enrolment_token(&self, scope: &TenantScope, id: &str, at: DateTime<Utc>) -> StoreResult<bool>;
    /// Counts one use of the token with this digest, atomically, if it is usable at `now`;
    /// returns it (with the use counted) or `None`.
    async fn use_enrolment_token(&self, digest: &str, now: DateTime<Utc>) -> StoreResult<Option<EnrolmentToken>>;
    /// Gives back a use counted by [`EnrolmentRepo::use_enrolment_token`] whose enrolment failed.
    async fn release_enrolment_token(&self, digest: &str) -> StoreResult<()>;
}
