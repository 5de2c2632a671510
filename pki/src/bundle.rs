//! A set of trusted CA certificates: old and new CA during a rotation.

use std::path::Path;

use time::OffsetDateTime;

use crate::PkiError;
use crate::encoding::{self, CERTIFICATE};
use crate::fs::{self, Mode};
use crate::inspect::{self, CertificateInfo};

/// Trusted CA certificates, in order. The first is the primary (see the crate docs: rumqttd
/// 0.20 trusts only the first certificate of its CA file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaBundle {
    cas: Vec<BundledCa>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct BundledCa {
    pem: String,
    der: Vec<u8>,
    info: CertificateInfo,
}

impl CaBundle {
    /// An empty bundle.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses concatenated `CERTIFICATE` PEM blocks; each must be a CA certificate.
    pub fn from_pem(pem: &str) -> Result<Self, PkiError> {
        const WHAT: &str = "CA bundle";
        let mut bundle = Self::new();
        for block in encoding::all_blocks(pem, WHAT)? {
            encoding::check_label(&block, WHAT, &[CERTIFICATE])?;
            bundle.push_der(block.into_contents())?;
        }
        Ok(bundle)
    }

    /// Appends a CA certificate (one PEM block). A certificate already present is not added
    /// twice.
    pub fn push(&mut self, ca_pem: &str) -> Result<(), PkiError> {
        self.push_der(inspect::certificate_der(ca_pem, "CA certificate")?)
    }

    fn push_der(&mut self, der: Vec<u8>) -> Result<(), PkiError> {
        let info = inspect::describe(&inspect::parse_der(&der, "CA certificate")?)?;
        if !info.is_ca {
            return Err(PkiError::NotACa { what: "CA certificate" });
        }
        if self.cas.iter().any(|c| c.der == der) {
            return Ok(());
        }
        let pem = encoding::encode(CERTIFICATE, &der);
        self.cas.push(BundledCa { pem, der, info });
        Ok(())
    }

    /// Drops CAs that have expired at `at` (the end of a rotation). Returns how many.
    pub fn remove_expired(&mut self, at: OffsetDateTime) -> usize {
        let before = self.cas.len();
        self.cas.retain(|c| c.info.not_after >= at);
        before - self.cas.len()
    }

    /// Number of CA certificates.
    pub fn len(&self) -> usize {
        self.cas.len()
    }

    /// True if the bundle holds no certificate.
    pub fn is_empty(&self) -> bool {
        self.cas.is_empty()
    }

    /// The CA certificates, in order.
    pub fn certificates(&self) -> impl Iterator<Item = &CertificateInfo> {
        self.cas.iter().map(|c| &c.info)
    }

    /// The bundle as concatenated PEM blocks.
    pub fn to_pem(&self) -> String {
        self.cas.iter().map(|c| c.pem.as_str()).collect()
    }

    /// Reads a bundle file.
    pub fn read(path: &Path) -> Result<Self, PkiError> {
        Self::from_pem(&fs::read_to_string(path)?)
    }

    /// Writes the bundle atomically (mode 0644), refusing to write an empty one.
    pub fn write(&self, path: &Path) -> Result<(), PkiError> {
        if self.is_empty() {
            return Err(PkiError::EmptyBundle);
        }
        fs::write_atomic(path, self.to_pem().as_bytes(), Mode::Public)
    }

    /// The CA in this bundle that issued `cert_pem` (name and signature checked, dates not).
    pub fn issuer_of(&self, cert_pem: &str) -> Result<&CertificateInfo, PkiError> {
        let der = inspect::certificate_der(cert_pem, "certificate")?;
        let cert = inspect::parse_der(&der, "certificate")?;
        self.issuer_of_parsed(&cert).map(|c| &c.info)
    }

    fn issuer_of_parsed(&self, cert: &x509_parser::certificate::X509Certificate<'_>) -> Result<&BundledCa, PkiError> {
        if self.is_empty() {
            return Err(PkiError::EmptyBundle);
        }
        let mut last = None;
        for ca in &self.cas {
            let parsed = inspect::parse_der(&ca.der, "CA certificate")?;
            match inspect::verify_parsed(cert, &parsed) {
                Ok(()) => return Ok(ca),
                Err(e @ PkiError::BadSignature) => last = Some(e),
                Err(_) => {}
            }
        }
        // Same name but a bad signature is worth saying; otherwise nobody here issued it.
        Err(last.unwrap_or_else(|| PkiError::UnknownIssuer {
            issuer: cert.issuer().to_string(),
        }))
    }

    /// Everything the control plane and the agent check before they store or trust a device
    /// certificate: issued by a CA of this bundle, valid at `at`, X.509 v3, not a CA, extended
    /// key usage clientAuth, an organisation (O) that is a valid topic prefix (the broker's
    /// tenant) and a common name (CN) that is a valid device id. Certificates of the first
    /// release carry the device id in both.
    pub fn verify_device_certificate(&self, cert_pem: &str, at: OffsetDateTime) -> Result<CertificateInfo, PkiError> {
        let der = inspect::certificate_der(cert_pem, "device certificate")?;
        let cert = inspect::parse_der(&der, "device certificate")?;
        self.issuer_of_parsed(&cert)?;
        let info = inspect::describe(&cert)?;
        info.check_valid_at(at)?;
        let fail = |reason: &str| Err(PkiError::NotADeviceCertificate(reason.to_owned()));
        if info.version != 3 {
            return fail("not an X.509 v3 certificate");
        }
        if info.is_ca {
            return fail("it is a CA certificate");
        }
        if !info.client_auth {
            return fail("extended key usage clientAuth missing");
        }
        match &info.organisation {
            None => return fail("subject has no organisation (O), which must be the topic prefix"),
            Some(o) => {
                luach_schemas::TopicPrefix::parse(o)?;
            }
        }
        match info.device_id() {
            None => return fail("subject has no organisational unit (OU), which must be the device id"),
            Some(id) => {
                luach_schemas::DeviceId::parse(id)?;
            }
        }
        if !info.names_device_in_cn() && info.common_name != info.organisation {
            return fail("subject common name (CN) differs from the organisation (O), the topic prefix");
        }
        Ok(info)
    }
}
