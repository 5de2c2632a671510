//! Checking a certificate signing request before anything is issued for it.

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

use crate::PkiError;
use crate::encoding::{self, KeyType};
use crate::keys::CSR_LABELS;

/// What a verified certificate signing request proves: its requester holds the private key of
/// this public key. Built by [`verify_csr`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrInfo {
    /// The requested key's type (one this crate accepts).
    pub key_type: KeyType,
    /// The public key as a DER SubjectPublicKeyInfo: compare it (or a digest of it) to decide
    /// whether two requests, or a request and an earlier certificate, are for the same key.
    pub public_key_der: Vec<u8>,
    /// The subject's serialNumber attribute, where a renewing device puts the nonce it was
    /// given (see [`crate::DeviceKey::csr_pem_with_challenge`]).
    pub challenge: Option<String>,
}

/// The serialNumber attribute type (2.5.4.5).
pub(crate) const SERIAL_NUMBER_OID: [u64; 4] = [2, 5, 4, 5];

/// Checks a CSR the way [`crate::DeviceCa::issue_device_certificate`] does (one
/// `CERTIFICATE REQUEST` PEM block, a supported key type, a self-signature that verifies),
/// without issuing anything. The CSR's subject and extensions are not looked at.
pub fn verify_csr(csr_pem: &str) -> Result<CsrInfo, PkiError> {
    const WHAT: &str = "certificate signing request";
    let der = encoding::single_block(csr_pem, WHAT, CSR_LABELS)?;
    encoding::check_signed_envelope(&der, WHAT, encoding::Signed::Request)?;
    let (rest, csr) = X509CertificationRequest::from_der(&der).map_err(|e| PkiError::Der {
        what: WHAT,
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(PkiError::Der {
            what: WHAT,
            reason: format!("{} trailing bytes after the request", rest.len()),
        });
    }
    let spki = &csr.certification_request_info.subject_pki;
    let key_type = KeyType::of_spki(spki)?;
    csr.verify_signature().map_err(|_| PkiError::CsrSignature)?;
    let serial_number = x509_parser::oid_registry::OID_X509_SERIALNUMBER;
    let challenge = csr
        .certification_request_info
        .subject
        .iter_attributes()
        .find(|a| *a.attr_type() == serial_number)
        .and_then(|a| a.as_str().ok())
        .map(str::to_owned);
    Ok(CsrInfo {
        key_type,
        public_key_der: spki.raw.to_vec(),
        challenge,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DeviceKey;

    #[test]
    fn same_key_same_public_key_and_garbage_refused() {
        let key = DeviceKey::generate().expect("key");
        let a = verify_csr(&key.csr_pem("dev1").expect("csr")).expect("valid");
        let b = verify_csr(&key.csr_pem("dev2").expect("csr")).expect("valid");
        assert_eq!(a.key_type, KeyType::EcdsaP256);
        assert_eq!(a.public_key_der, b.public_key_der);
        assert_eq!(a.challenge, None);
        let challenged = verify_csr(&key.csr_pem_with_challenge("dev1", "n0nce").expect("csr")).expect("valid");
        assert_eq!(challenged.challenge.as_deref(), Some("n0nce"));
        assert_eq!(challenged.public_key_der, a.public_key_der);
        let other = DeviceKey::generate().expect("key");
        let c = verify_csr(&other.csr_pem("dev1").expect("csr")).expect("valid");
        assert_ne!(a.public_key_der, c.public_key_der);
        for garbage in [
            "",
            "hello",
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        ] {
            assert!(verify_csr(garbage).is_err(), "{garbage:?}");
        }
    }
}
