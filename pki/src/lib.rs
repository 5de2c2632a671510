//! Device trust for Luach: the installation's device CA and the certificates it issues.
//!
//! # Trust model
//!
//! Each installation has one device CA ([`DeviceCa`]), created and kept by the control plane
//! (`ca.key` mode 0600). A screen generates its own key ([`DeviceKey`]) and sends only a
//! certificate signing request (CSR) while it enrols with a claim code; the control plane
//! decides which device id the claim belongs to and asks the CA for a certificate
//! ([`DeviceCa::issue_device_certificate`]) with subject O = a topic prefix drawn afresh for
//! each enrolment and CN = device id, extended key usage clientAuth, X.509 v3. The embedded
//! MQTT broker (rumqttd, TLS listener with client certificate verification) trusts the CA and,
//! with the `validate-tenant-prefix` feature, jails a client to the topic subtree
//! `/tenants/{O}/` and renames its client id to `{O}.{client id}`; so the certificate's O field
//! *is* the device's authority on the broker, and a certificate that was revoked or superseded
//! names a prefix the control plane no longer answers to.
//! The broker's own TLS certificate comes from the same CA
//! ([`DeviceCa::issue_server_certificate`]), so a device needs exactly one trust anchor.
//!
//! # Why the CSR's subject and extensions are ignored
//!
//! Whoever sends a CSR controls everything in it. Copying its subject would let a device ask
//! for `O=otherdevice` (another device's topics) and copying its extensions would let it ask
//! for `CA:TRUE` or serverAuth. The CSR only proves possession of the private key (its
//! self-signature is verified, and a CSR that does not verify is refused); every field of the
//! certificate is chosen here from the device id the control plane vouches for.
//!
//! # Key type
//!
//! ECDSA P-256 (with SHA-256) for the CA, the broker and the keys devices generate: the one
//! family every client we care about handles (rustls/webpki in the broker and agent, OpenSSL
//! behind mosquitto and paho, Android's TLS stack), small and fast on weak hardware. CSRs for
//! P-384 and Ed25519 keys are accepted too, since webpki and OpenSSL verify them; RSA and
//! anything else is refused ([`KeyType`]).
//!
//! # Lifetimes, renewal and revocation
//!
//! rumqttd 0.20 checks no CRL and cannot disconnect a client (see `luach-broker`'s docs), so
//! a revoked certificate keeps working until it expires. Issue device certificates for a short
//! time (days to weeks) and renew them over the device's mTLS session when
//! [`CertificateInfo::elapsed_fraction`] passes about 2/3; refusing renewal is how a device is
//! revoked, and the control plane ignores traffic from revoked devices until then. The prefix
//! jail keeps a revoked device from reaching any other device meanwhile.
//!
//! # Rotation
//!
//! The control plane checks device certificates against a [`CaBundle`] (old and new CA).
//! rumqttd 0.20 trusts only the *first* certificate of its CA file, so the broker cannot hold
//! a bundle; rotate with a cross-certificate instead: (1) generate the new CA and
//! [`DeviceCa::cross_certify`] it with the old one; (2) issue renewals from the new CA and give
//! devices `[device certificate, cross-certificate]` as their chain, which the broker (still
//! trusting the old CA) accepts; (3) once every certificate from the old CA has expired,
//! replace the broker's CA file with the new CA (rumqttd re-reads it for every connection).
//!
//! # Errors
//!
//! Every parse and verify failure is a [`PkiError`]; no input (random bytes, truncated PEM, a
//! certificate where a CSR belongs, a forged CSR) makes this crate panic.

mod bundle;
mod ca;
mod csr;
mod encoding;
mod error;
mod fs;
mod inspect;
mod keys;

pub use bundle::CaBundle;
pub use ca::{BACKDATE, CA_CERT_FILE, CA_KEY_FILE, DeviceCa, IssuedCertificate, IssuedKeyPair};
pub use csr::{CsrInfo, verify_csr};
pub use encoding::KeyType;
pub use error::PkiError;
pub use fs::{Mode as FileMode, write_atomic};
pub use inspect::{
    CertificateInfo, inspect_certificate, inspect_certificate_der, inspect_chain, verify_key_matches, verify_signed_by,
};
pub use keys::DeviceKey;
pub use time::{Duration, OffsetDateTime};
pub use zeroize::Zeroizing;

#[cfg(test)]
mod tests;
