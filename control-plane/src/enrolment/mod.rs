//! Device enrolment: how a screen gets the certificate it connects to the broker with.
//!
//! ```text
//!  screen                               control plane                         tenant admin
//!  key + CSR ── POST /enrolment/requests ──▶ pending request (code, poll secret as digests)
//!  shows XXXX-XXXX                                                  ◀── POST /enrolment/claims {claim_code}
//!  GET /enrolment/requests/{id} (poll secret) ◀── certificate issued into the admin's tenant
//!  mTLS to the broker (O = prefix) ────────────▶ rumqttd jails it to /tenants/{prefix}/…
//!  POST /devices/{id}/certificate/nonce ───────▶ a single-use nonce
//!  POST /devices/{id}/certificate (same key,   ▶ renewed before expiry (same prefix), unless
//!       nonce in the CSR's subject)               revoked
//! ```
//!
//! - [`pki::DevicePki`] keeps the device CA in `pki.ca_dir`, creates it on first start, and
//!   writes the broker's TLS files (its certificate, and the one CA it trusts). CA rotation is
//!   by cross-certificate ([`pki::rotate`], [`pki::finish_rotation`]).
//! - [`service::EnrolmentService`] decides: a claim code (`XXXX-XXXX`, [`code`]) enrols a
//!   device into the claimer's tenant; a tenant's bulk token (`le_…`) enrols devices at once,
//!   but never replaces a current certificate's key or revives a revoked device; a device id
//!   registered in one tenant is never moved to another, nor is a screen enrolled in another
//!   tenant claimed; replacing the key of a screen enrolled in the claimer's own tenant needs
//!   an explicit `rekey` (the claim preview shows it first). Requests move through an explicit
//!   state machine ([`lifecycle`]). Renewal needs a CSR for the key of the device's current,
//!   unrevoked certificate carrying a fresh single-use nonce.
//! - **Every enrolment draws a fresh topic prefix**, the certificate's organisation (O), so the
//!   broker jails the certificate to `/tenants/{prefix}/…`. Revocation (or deleting the device)
//!   clears the device's prefix, and a new enrolment replaces it: an old certificate keeps
//!   connecting (rumqttd 0.20 checks no revocation and cannot drop a live connection) but its
//!   prefix resolves to nothing, so ingest drops what it publishes, it receives no bundle
//!   notices, and the device tokens it was sent stop working. Device certificates are also
//!   short-lived (`pki.device_cert_lifetime_secs`, 30 days).
//!
//! Secrets (claim codes, poll secrets, tokens) are stored as SHA-256 digests and compared in
//! constant time; none is ever logged.

pub mod code;
pub mod lifecycle;
pub mod pki;
pub mod service;

pub use pki::{DeviceCertificatePem, DevicePki};
pub use service::{
    ClaimPreview, Claimed, EnrolmentError, EnrolmentService, NewToken, Nonce, PollOutcome, RequestInput, RequestOutcome,
};
