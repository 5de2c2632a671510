//! Device enrolment: how a screen gets the certificate it connects to the broker with.
//!
//! ```text
//!  screen                               control plane                         tenant admin
//!  key + CSR ── POST /enrolment/requests ──▶ pending request (code, poll secret as digests)
//!  shows XXXX-XXXX                                                  ◀── POST /enrolment/claims {claim_code}
//!  GET /enrolment/requests/{id} (poll secret) ◀── certificate issued into the admin's tenant
//!  mTLS to the broker (O = device id) ─────────▶ rumqttd jails it to /tenants/{id}/…
//!  POST /devices/{id}/certificate (same key) ──▶ renewed before expiry, unless revoked
//! ```
//!
//! - [`pki::DevicePki`] keeps the device CA in `pki.ca_dir`, creates it on first start, and
//!   writes the broker's TLS files (its certificate, and the one CA it trusts). CA rotation is
//!   by cross-certificate ([`pki::rotate`], [`pki::finish_rotation`]).
//! - [`service::EnrolmentService`] decides: a claim code (`XXXX-XXXX`, [`code`]) enrols a
//!   device into the claimer's tenant; a tenant's bulk token (`le_…`) enrols devices at once,
//!   but never replaces a current certificate's key or revives a revoked device; a device id
//!   registered in one tenant is never moved to another. Renewal needs a CSR for the key of
//!   the device's current, unrevoked certificate.
//! - Revocation (or deleting the device) marks the certificate revoked: renewal is refused and
//!   the ingest pipeline drops the device's messages. rumqttd can neither check revocation nor
//!   drop a live connection, so a revoked device keeps its broker session (confined to its own
//!   topics) until it disconnects, and can reconnect until its certificate expires: device
//!   certificates are therefore short-lived (`pki.device_cert_lifetime_secs`, 30 days).
//!
//! Secrets (claim codes, poll secrets, tokens) are stored as SHA-256 digests and compared in
//! constant time; none is ever logged.

pub mod code;
pub mod pki;
pub mod service;

pub use pki::{DeviceCertificatePem, DevicePki};
pub use service::{EnrolmentError, EnrolmentService, NewToken, PollOutcome, RequestInput, RequestOutcome};
