//! The one error type of this crate.

use std::path::PathBuf;

use time::OffsetDateTime;

/// Everything that can go wrong parsing, verifying, issuing or storing certificates and keys.
///
/// Messages name the input (`what`) so an operator or API client can tell which file or field
/// was bad; they never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{what} is not valid PEM: {reason}")]
    Pem { what: &'static str, reason: String },
    #[error("{what} contains no PEM block")]
    NoPem { what: &'static str },
    #[error("{what} contains {count} PEM blocks; expected exactly one")]
    PemCount { what: &'static str, count: usize },
    #[error("{what} is a PEM block labelled {found:?}; expected {expected:?}")]
    WrongPemLabel {
        what: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("{what} is not a well-formed DER structure: {reason}")]
    Der { what: &'static str, reason: String },
    #[error("{what} is not a usable private key: {reason}")]
    PrivateKey { what: &'static str, reason: String },
    #[error("the certificate signing request's signature does not verify with the public key it carries")]
    CsrSignature,
    #[error("unsupported key type {found}; supported: ECDSA P-256, ECDSA P-384, Ed25519")]
    UnsupportedKeyType { found: String },
    #[error("invalid device id: {0}")]
    DeviceId(#[from] luach_schemas::IdError),
    #[error("invalid common name: {0}")]
    CommonName(String),
    #[error("invalid validity period: {0}")]
    Validity(String),
    #[error("invalid subject alternative name {name:?}: {reason}")]
    SubjectAltName { name: String, reason: String },
    #[error("the private key does not belong to the certificate")]
    KeyMismatch,
    #[error("the certificate's issuer ({issuer}) is not the CA ({ca})")]
    IssuerMismatch { issuer: String, ca: String },
    #[error("the certificate's signature does not verify with the CA's public key")]
    BadSignature,
    #[error("{what} is not a CA certificate (basicConstraints CA:TRUE missing)")]
    NotACa { what: &'static str },
    #[error("the certificate is not valid at {at}: valid from {not_before} until {not_after}")]
    NotValidAt {
        at: OffsetDateTime,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    },
    #[error("not a device certificate: {0}")]
    NotADeviceCertificate(String),
    #[error("no CA in the bundle issued this certificate (issuer {issuer})")]
    UnknownIssuer { issuer: String },
    #[error("the CA bundle contains no certificate")]
    EmptyBundle,
    #[error("could not create the certificate: {0}")]
    Signing(String),
    #[error("private key file {path} is accessible by other users (mode {mode:o}); it must be 0600")]
    InsecureKeyFile { path: PathBuf, mode: u32 },
    #[error("could not {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl PkiError {
    pub(crate) fn signing(e: rcgen::Error) -> Self {
        Self::Signing(e.to_string())
    }

    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }
}
