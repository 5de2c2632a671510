//! Enrolment records: requests, device certificates (the current one and the history, by
//! serial), renewal nonces and bulk enrolment tokens.
//!
//! Requests and certificates are looked up by the device id a public caller names (then proven
//! with a poll secret or a key), and bulk tokens by the digest a device presents, through the
//! [`SystemStore`](super::SystemStore); what a tenant user reads or changes goes through their
//! [`TenantStore`](super::TenantStore). Only digests of secrets are stored: the claim code, the
//! poll secret, renewal nonces and token texts are shown once and never kept.

use chrono::{DateTime, Utc};
use luach_schemas::{DeviceId, TenantId, TopicPrefix};
use serde::Serialize;

/// Where an enrolment request stands (the transitions are [`crate::enrolment::lifecycle`]).
#[derive(Debug, Clone, PartialEq)]
pub enum RequestState {
    /// Waiting for a tenant to claim the code.
    Pending,
    /// Claimed: the certificate waits for the device to fetch it.
    Issued {
        tenant_id: TenantId,
        certificate_pem: String,
    },
    /// The device fetched its certificate; kept (and answered again) until the request expires.
    Delivered {
        tenant_id: TenantId,
        certificate_pem: String,
    },
}

impl RequestState {
    /// The stored name of the state.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Issued { .. } => "issued",
            Self::Delivered { .. } => "delivered",
        }
    }

    /// How both backends store the state: (status, tenant, certificate).
    pub(super) fn stored(&self) -> (&'static str, Option<String>, Option<String>) {
        match self {
            Self::Pending => ("pending", None, None),
            Self::Issued {
                tenant_id,
                certificate_pem,
            }
            | Self::Delivered {
                tenant_id,
                certificate_pem,
            } => (
                self.as_str(),
                Some(tenant_id.to_string()),
                Some(certificate_pem.clone()),
            ),
        }
    }

    /// The state stored as (status, tenant, certificate); `None` for a combination no state
    /// is stored as.
    pub(super) fn from_stored(status: &str, tenant: Option<TenantId>, certificate: Option<String>) -> Option<Self> {
        match (status, tenant, certificate) {
            ("pending", _, _) => Some(Self::Pending),
            ("issued", Some(tenant_id), Some(certificate_pem)) => Some(Self::Issued {
                tenant_id,
                certificate_pem,
            }),
            ("delivered", Some(tenant_id), Some(certificate_pem)) => Some(Self::Delivered {
                tenant_id,
                certificate_pem,
            }),
            _ => None,
        }
    }
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
    /// Where the request came from (the rate-limit key of its client address), so one source
    /// cannot fill the pending requests.
    pub source: String,
}

/// An unexpired device certificate as a broker's access rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerCertificate {
    pub serial: String,
    pub device_id: DeviceId,
    pub prefix: TopicPrefix,
    /// Issued in the earlier subject form, whose CN is the device id (now the OU; CN is the
    /// prefix).
    pub device_in_cn: bool,
    /// Its enrolment (prefix) ended as revoked or superseded: it may no longer connect.
    pub refused: bool,
}

/// The certificate a device currently holds. One per device: renewal and re-enrolment
/// replace it, revocation marks it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceCertificate {
    pub device_id: DeviceId,
    pub tenant_id: TenantId,
    /// The certificate's organisation: the topic prefix the device's messages arrive on. Fresh
    /// for each enrolment, kept by renewals (same key).
    pub prefix: TopicPrefix,
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

/// How a certificate stopped being a device's current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CertificateEnd {
    /// Replaced by a renewal for the same key (same enrolment, same prefix).
    Renewed,
    /// Replaced by a new enrolment (a new key and a new prefix).
    Superseded,
    /// Revoked by the tenant, or with the device's deletion.
    Revoked,
}

impl CertificateEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Renewed => "renewed",
            Self::Superseded => "superseded",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Renewed, Self::Superseded, Self::Revoked]
            .into_iter()
            .find(|e| e.as_str() == s)
    }
}

/// One issued certificate, tracked by serial for as long as the installation lives.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct CertificateRecord {
    pub serial: String,
    pub device_id: DeviceId,
    pub tenant_id: TenantId,
    pub prefix: TopicPrefix,
    pub key_fingerprint: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub issued_at: DateTime<Utc>,
    /// When and how it stopped being current; `None` while it is the device's certificate.
    pub ended_at: Option<DateTime<Utc>>,
    pub end: Option<CertificateEnd>,
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
