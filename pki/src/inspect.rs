//! Reading certificates: what the control plane needs for renewal decisions and to validate
//! what it stores.

use std::net::IpAddr;

use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::PkiError;
use crate::encoding::{self, CERTIFICATE, KeyType};

/// What a certificate says about itself. Built by [`inspect_certificate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Serial number, lower-case hexadecimal without separators or leading zeros.
    pub serial: String,
    /// Subject distinguished name, e.g. `O=dev1, CN=dev1`.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// First organisation (O) of the subject: for device certificates the MQTT topic prefix
    /// (the tenant the broker jails the client to).
    pub organisation: Option<String>,
    /// First organisational unit (OU) of the subject: for device certificates the device id.
    pub organisational_unit: Option<String>,
    /// First common name (CN) of the subject: for device certificates the topic prefix again
    /// (an external broker's user name); in device certificates issued before the device id
    /// moved to OU, the device id.
    pub common_name: Option<String>,
    /// Start of validity (UTC).
    pub not_before: OffsetDateTime,
    /// End of validity (UTC).
    pub not_after: OffsetDateTime,
    /// X.509 version as people write it: 3 for v3 (rustls refuses client certificates below 3).
    pub version: u32,
    /// basicConstraints CA:TRUE.
    pub is_ca: bool,
    /// Extended key usage includes TLS client authentication.
    pub client_auth: bool,
    /// Extended key usage includes TLS server authentication.
    pub server_auth: bool,
    /// DNS names of the subject alternative name extension.
    pub dns_names: Vec<String>,
    /// IP addresses of the subject alternative name extension.
    pub ip_addresses: Vec<IpAddr>,
    /// Public key type, `None` for a type this crate does not accept (e.g. RSA).
    pub key_type: Option<KeyType>,
}

impl CertificateInfo {
    /// The device id of a device certificate: its OU, or for a certificate in the earlier form
    /// (`O={prefix}, CN={device id}`, no OU) its CN.
    pub fn device_id(&self) -> Option<&str> {
        self.organisational_unit.as_deref().or(self.common_name.as_deref())
    }

    /// True for a device certificate in the earlier form, whose CN is the device id rather than
    /// the topic prefix.
    pub fn names_device_in_cn(&self) -> bool {
        self.organisational_unit.is_none()
    }

    /// True if `at` lies within the validity period (both ends inclusive, as RFC 5280 says).
    pub fn is_valid_at(&self, at: OffsetDateTime) -> bool {
        self.not_before <= at && at <= self.not_after
    }

    /// Time left until expiry at `at` (negative once expired): the input to renewal decisions.
    pub fn remaining(&self, at: OffsetDateTime) -> time::Duration {
        self.not_after - at
    }

    /// Fraction of the validity period elapsed at `at`, clamped to 0..=1. Renew at e.g. 2/3.
    pub fn elapsed_fraction(&self, at: OffsetDateTime) -> f64 {
        let total = (self.not_after - self.not_before).as_seconds_f64();
        if total <= 0.0 {
            return 1.0;
        }
        ((at - self.not_before).as_seconds_f64() / total).clamp(0.0, 1.0)
    }

    pub(crate) fn check_valid_at(&self, at: OffsetDateTime) -> Result<(), PkiError> {
        if self.is_valid_at(at) {
            Ok(())
        } else {
            Err(PkiError::NotValidAt {
                at,
                not_before: self.not_before,
                not_after: self.not_after,
            })
        }
    }
}

/// Parses a PEM certificate (exactly one `CERTIFICATE` block) and describes it.
pub fn inspect_certificate(pem: &str) -> Result<CertificateInfo, PkiError> {
    let der = certificate_der(pem, "certificate")?;
    let cert = parse_der(&der, "certificate")?;
    describe(&cert)
}

/// Describes a DER certificate (as a TLS peer presents it).
pub fn inspect_certificate_der(der: &[u8]) -> Result<CertificateInfo, PkiError> {
    describe(&parse_der(der, "certificate")?)
}

/// Checks that the certificate in `cert_pem` was issued by the CA certificate in `ca_pem`:
/// the issuer name matches the CA's subject, the CA certificate is a CA, and the signature
/// verifies with the CA's public key. Validity dates are not checked (see
/// [`CertificateInfo::is_valid_at`]).
pub fn verify_signed_by(cert_pem: &str, ca_pem: &str) -> Result<(), PkiError> {
    let cert_der = certificate_der(cert_pem, "certificate")?;
    let ca_der = certificate_der(ca_pem, "CA certificate")?;
    let cert = parse_der(&cert_der, "certificate")?;
    let ca = parse_der(&ca_der, "CA certificate")?;
    verify_parsed(&cert, &ca)
}

/// Parses a certificate chain: one or more `CERTIFICATE` PEM blocks, leaf first (what a TLS
/// server or client presents).
pub fn inspect_chain(pem: &str) -> Result<Vec<CertificateInfo>, PkiError> {
    const WHAT: &str = "certificate chain";
    encoding::all_blocks(pem, WHAT)?
        .iter()
        .map(|block| {
            encoding::check_label(block, WHAT, &[CERTIFICATE])?;
            describe(&parse_der(block.contents(), WHAT)?)
        })
        .collect()
}

/// Checks that `key_pem` (PKCS#8) is the private key of the first certificate in `cert_pem`
/// (a single certificate or a chain, leaf first), e.g. before handing a TLS listener the pair.
pub fn verify_key_matches(cert_pem: &str, key_pem: &str) -> Result<(), PkiError> {
    const WHAT: &str = "certificate chain";
    let key = crate::keys::parse_private_key(key_pem, "private key")?;
    let blocks = encoding::all_blocks(cert_pem, WHAT)?;
    let leaf = blocks.first().ok_or(PkiError::NoPem { what: WHAT })?;
    encoding::check_label(leaf, WHAT, &[CERTIFICATE])?;
    let cert = parse_der(leaf.contents(), WHAT)?;
    crate::keys::check_pair(&cert, &key)
}

pub(crate) fn certificate_der(pem: &str, what: &'static str) -> Result<Vec<u8>, PkiError> {
    encoding::single_block(pem, what, &[CERTIFICATE])
}

pub(crate) fn parse_der<'a>(der: &'a [u8], what: &'static str) -> Result<X509Certificate<'a>, PkiError> {
    encoding::check_signed_envelope(der, what, encoding::Signed::Certificate)?;
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| PkiError::Der {
        what,
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(PkiError::Der {
            what,
            reason: format!("{} trailing bytes after the certificate", rest.len()),
        });
    }
    Ok(cert)
}

pub(crate) fn verify_parsed(cert: &X509Certificate<'_>, ca: &X509Certificate<'_>) -> Result<(), PkiError> {
    if !ca.is_ca() {
        return Err(PkiError::NotACa { what: "CA certificate" });
    }
    if cert.issuer().as_raw() != ca.subject().as_raw() {
        return Err(PkiError::IssuerMismatch {
            issuer: cert.issuer().to_string(),
            ca: ca.subject().to_string(),
        });
    }
    cert.verify_signature(Some(ca.public_key()))
        .map_err(|_| PkiError::BadSignature)
}

pub(crate) fn describe(cert: &X509Certificate<'_>) -> Result<CertificateInfo, PkiError> {
    let bad = |what: &str, e: x509_parser::error::X509Error| PkiError::Der {
        what: "certificate",
        reason: format!("{what}: {e}"),
    };
    let subject = cert.subject();
    let eku = cert.extended_key_usage().map_err(|e| bad("extended key usage", e))?;
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    if let Some(san) = cert
        .subject_alternative_name()
        .map_err(|e| bad("subject alternative name", e))?
    {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns_names.push((*d).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        ip_addresses.push(ip);
                    }
                }
                _ => {}
            }
        }
    }
    let basic = cert.basic_constraints().map_err(|e| bad("basic constraints", e))?;
    Ok(CertificateInfo {
        serial: cert.serial.to_str_radix(16),
        subject: subject.to_string(),
        issuer: cert.issuer().to_string(),
        organisation: first_text(subject.iter_organization()),
        organisational_unit: first_text(subject.iter_organizational_unit()),
        common_name: first_text(subject.iter_common_name()),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        version: cert.version().0.saturating_add(1),
        is_ca: basic.is_some_and(|b| b.value.ca),
        client_auth: eku.as_ref().is_some_and(|e| e.value.client_auth),
        server_auth: eku.as_ref().is_some_and(|e| e.value.server_auth),
        dns_names,
        ip_addresses,
        key_type: KeyType::of_spki(cert.public_key()).ok(),
    })
}

fn first_text<'a, 'b: 'a>(
    mut attrs: impl Iterator<Item = &'a x509_parser::x509::AttributeTypeAndValue<'b>>,
) -> Option<String> {
    attrs.next().and_then(|a| a.as_str().ok()).map(str::to_owned)
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}
