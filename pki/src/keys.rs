//! Private keys: the device's own key and its certificate signing request.

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PublicKeyData};
use x509_parser::certificate::X509Certificate;
use zeroize::Zeroizing;

use crate::PkiError;
use crate::encoding::{self, CERTIFICATE_REQUEST, KeyType, PRIVATE_KEY};
use crate::inspect;

/// A device's private key. Generated on the device; only its CSR leaves it.
pub struct DeviceKey {
    key: KeyPair,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKey")
            .field("key_type", &self.key_type())
            .finish_non_exhaustive()
    }
}

impl DeviceKey {
    /// A fresh ECDSA P-256 key from the operating system's random source.
    pub fn generate() -> Result<Self, PkiError> {
        Self::generate_for(KeyType::EcdsaP256)
    }

    /// A fresh key of the given type.
    pub fn generate_for(key_type: KeyType) -> Result<Self, PkiError> {
        let key = KeyPair::generate_for(key_type.signature_algorithm()).map_err(PkiError::signing)?;
        Ok(Self { key })
    }

    /// Reads a PKCS#8 `PRIVATE KEY` PEM block.
    pub fn from_pem(pem: &str) -> Result<Self, PkiError> {
        Ok(Self {
            key: parse_private_key(pem, "device key")?,
        })
    }

    /// The key as a PKCS#8 `PRIVATE KEY` PEM block (what OpenSSL, rustls and mosquitto read).
    /// Wiped from memory when dropped.
    pub fn to_pem(&self) -> Zeroizing<String> {
        private_key_pem(&self.key)
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        // Every constructor checked the type already.
        KeyType::of_algorithm(self.key.algorithm()).unwrap_or(KeyType::EcdsaP256)
    }

    /// The public key as a `PUBLIC KEY` (SubjectPublicKeyInfo) PEM block.
    pub fn public_key_pem(&self) -> String {
        self.key.public_key_pem()
    }

    /// A certificate signing request for `device_id`, signed with this key.
    ///
    /// The subject (O = CN = device id) is informational: the CA ignores it and writes its own.
    pub fn csr_pem(&self, device_id: &str) -> Result<String, PkiError> {
        self.request(device_id, None)
    }

    /// A certificate signing request carrying `challenge` (a renewal nonce the control plane
    /// handed out) in its subject's serialNumber attribute: the request's self-signature covers
    /// it, so a captured request cannot be replayed for a later renewal.
    pub fn csr_pem_with_challenge(&self, device_id: &str, challenge: &str) -> Result<String, PkiError> {
        self.request(device_id, Some(challenge))
    }

    fn request(&self, device_id: &str, challenge: Option<&str>) -> Result<String, PkiError> {
        luach_schemas::DeviceId::parse(device_id)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, device_id);
        dn.push(DnType::CommonName, device_id);
        if let Some(c) = challenge {
            dn.push(DnType::CustomDnType(crate::csr::SERIAL_NUMBER_OID.to_vec()), c);
        }
        params.distinguished_name = dn;
        let csr = params.serialize_request(&self.key).map_err(PkiError::signing)?;
        csr.pem().map_err(PkiError::signing)
    }

    /// Checks that `cert_pem` certifies this key (e.g. what the control plane sent back).
    pub fn check_certificate(&self, cert_pem: &str) -> Result<(), PkiError> {
        let der = inspect::certificate_der(cert_pem, "certificate")?;
        let cert = inspect::parse_der(&der, "certificate")?;
        check_pair(&cert, &self.key)
    }

    #[cfg(test)]
    pub(crate) fn key_pair(&self) -> &KeyPair {
        &self.key
    }
}

/// Reads a PKCS#8 private key of a supported type.
pub(crate) fn parse_private_key(pem: &str, what: &'static str) -> Result<KeyPair, PkiError> {
    let der = Zeroizing::new(encoding::single_block(pem, what, &[PRIVATE_KEY])?);
    let key = KeyPair::try_from(der.as_slice()).map_err(|e| PkiError::PrivateKey {
        what,
        reason: e.to_string(),
    })?;
    KeyType::of_algorithm(key.algorithm())?;
    Ok(key)
}

pub(crate) fn private_key_pem(key: &KeyPair) -> Zeroizing<String> {
    let der = Zeroizing::new(key.serialize_der());
    Zeroizing::new(encoding::encode(PRIVATE_KEY, &der))
}

/// The certificate's public key is the key pair's.
pub(crate) fn check_pair(cert: &X509Certificate<'_>, key: &KeyPair) -> Result<(), PkiError> {
    let spki = cert.public_key();
    let same_type = KeyType::of_spki(spki).ok() == KeyType::of_algorithm(key.algorithm()).ok();
    if same_type && spki.subject_public_key.data.as_ref() == key.der_bytes() {
        Ok(())
    } else {
        Err(PkiError::KeyMismatch)
    }
}

/// Labels accepted for a CSR.
pub(crate) const CSR_LABELS: &[&str] = &[CERTIFICATE_REQUEST, encoding::NEW_CERTIFICATE_REQUEST];
