//! The installation's device certificate authority.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SanType,
    SerialNumber, SubjectPublicKeyInfo,
};
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::extensions::ParsedExtension;
use zeroize::Zeroizing;

use crate::PkiError;
use crate::encoding::KeyType;
use crate::fs::{self, Mode};
use crate::inspect::{self, CertificateInfo};
use crate::keys;

/// File name of the CA certificate inside the directory given to [`DeviceCa::save`].
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the CA private key (mode 0600) inside that directory.
pub const CA_KEY_FILE: &str = "ca.key";

/// How far certificates this CA creates for itself and the broker are back-dated, so a peer
/// whose clock runs a little slow does not reject a certificate issued a moment ago.
pub const BACKDATE: Duration = Duration::hours(1);

/// A certificate this CA issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    /// The certificate, one PEM block.
    pub pem: String,
    /// Serial number, lower-case hex (as in [`CertificateInfo::serial`]).
    pub serial: String,
    /// Start of validity as written in the certificate (whole seconds).
    pub not_before: OffsetDateTime,
    /// End of validity as written in the certificate.
    pub not_after: OffsetDateTime,
}

/// A freshly issued certificate with the private key generated for it (the broker's TLS
/// identity). The key is wiped from memory when dropped.
pub struct IssuedKeyPair {
    /// The certificate.
    pub certificate: IssuedCertificate,
    /// Its PKCS#8 private key, one `PRIVATE KEY` PEM block.
    pub key_pem: Zeroizing<String>,
}

impl std::fmt::Debug for IssuedKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKeyPair")
            .field("certificate", &self.certificate)
            .finish_non_exhaustive()
    }
}

/// The device CA: a self-signed ECDSA P-256 certificate and its private key.
pub struct DeviceCa {
    cert_pem: String,
    /// The CA's subject (exact encoding) and key identifier, as rcgen needs them for signing.
    issuer_params: CertificateParams,
    /// DER of the CA's subject name, to check issued certificates name it byte for byte.
    subject_der: Vec<u8>,
    info: CertificateInfo,
    key: KeyPair,
}

impl std::fmt::Debug for DeviceCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCa")
            .field("subject", &self.info.subject)
            .field("serial", &self.info.serial)
            .field("not_after", &self.info.not_after)
            .finish_non_exhaustive()
    }
}

impl DeviceCa {
    /// Creates a new CA with a fresh P-256 key, valid from now (minus [`BACKDATE`]) for
    /// `validity`. `common_name` should be unique per CA generation (e.g. include the year),
    /// which keeps old and new CAs apart during a rotation.
    pub fn generate(common_name: &str, validity: Duration) -> Result<Self, PkiError> {
        check_common_name(common_name)?;
        let now = OffsetDateTime::now_utc();
        let (not_before, not_after) = (now - BACKDATE, now + validity);
        check_validity(not_before, not_after)?;
        let key = KeyPair::generate_for(KeyType::EcdsaP256.signature_algorithm()).map_err(PkiError::signing)?;
        let params = ca_params(common_name, not_before, not_after, BasicConstraints::Constrained(1));
        let cert = params.self_signed(&key).map_err(PkiError::signing)?;
        Self::from_parts(cert.pem(), key)
    }

    /// Restores a CA from its certificate and PKCS#8 private key, checking that they belong
    /// together and that the certificate is a CA.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let key = keys::parse_private_key(key_pem, "CA private key")?;
        Self::from_parts(cert_pem.to_owned(), key)
    }

    fn from_parts(cert_pem: String, key: KeyPair) -> Result<Self, PkiError> {
        const WHAT: &str = "CA certificate";
        let cert_der = inspect::certificate_der(&cert_pem, WHAT)?;
        let cert = inspect::parse_der(&cert_der, WHAT)?;
        keys::check_pair(&cert, &key)?;
        let info = inspect::describe(&cert)?;
        if !info.is_ca {
            return Err(PkiError::NotACa { what: WHAT });
        }
        let issuer_params = name_params(&cert, WHAT)?;
        let subject_der = cert.subject().as_raw().to_vec();
        Ok(Self {
            cert_pem,
            issuer_params,
            subject_der,
            info,
            key,
        })
    }

    /// The certificate and the private key as PEM (the key is wiped from memory when dropped).
    pub fn to_pem(&self) -> (String, Zeroizing<String>) {
        (self.cert_pem.clone(), keys::private_key_pem(&self.key))
    }

    /// Writes [`CA_CERT_FILE`] (0644) and [`CA_KEY_FILE`] (0600) into `dir`, each atomically.
    /// The key is written first, so a crash never leaves a certificate without its key.
    pub fn save(&self, dir: &Path) -> Result<(), PkiError> {
        let (cert, key) = self.to_pem();
        fs::write_atomic(&dir.join(CA_KEY_FILE), key.as_bytes(), Mode::Private)?;
        fs::write_atomic(&dir.join(CA_CERT_FILE), cert.as_bytes(), Mode::Public)
    }

    /// Reads a CA written by [`DeviceCa::save`]. Refuses a key file that group or others can
    /// access.
    pub fn load(dir: &Path) -> Result<Self, PkiError> {
        let key = fs::read_private(&dir.join(CA_KEY_FILE))?;
        let cert = fs::read_to_string(&dir.join(CA_CERT_FILE))?;
        Self::from_pem(&cert, &key)
    }

    /// The CA certificate (one PEM block): what devices and the broker trust.
    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }

    /// What the CA certificate says (subject, serial, validity…).
    pub fn info(&self) -> &CertificateInfo {
        &self.info
    }

    /// Signs a device's CSR.
    ///
    /// The CSR must be a single `CERTIFICATE REQUEST` PEM block whose signature verifies with
    /// the public key it carries (proof the requester holds the private key), for an ECDSA
    /// P-256/P-384 or Ed25519 key. Everything else it asks for (subject, extensions) is
    /// ignored: the certificate gets subject O = `prefix` (the MQTT topic prefix the broker
    /// jails the device to, fresh for each enrolment), OU = `device_id` and CN = `prefix`
    /// again (the identity an external broker takes as the user name, so one pattern in its
    /// ACL confines every screen to `/tenants/{user name}/`), X.509 v3,
    /// basicConstraints CA:FALSE, key usage digitalSignature, extended key usage clientAuth,
    /// and a random positive 126-bit serial.
    pub fn issue_device_certificate(
        &self,
        csr_pem: &str,
        device_id: &str,
        prefix: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<IssuedCertificate, PkiError> {
        luach_schemas::DeviceId::parse(device_id)?;
        luach_schemas::TopicPrefix::parse(prefix)?;
        self.check_within_ca(not_before, not_after)?;
        let public_key = verified_csr_key(csr_pem)?;
        let mut params = leaf_params(not_before, not_after);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, prefix);
        dn.push(DnType::OrganizationalUnitName, device_id);
        dn.push(DnType::CommonName, prefix);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(&params, &public_key)
    }

    /// Issues the broker's TLS server certificate with a fresh P-256 key, valid from now
    /// (minus [`BACKDATE`]) for `validity`. Each entry of `sans` becomes an IP address SAN if
    /// it parses as one, a DNS name SAN otherwise; the first is also the subject CN.
    pub fn issue_server_certificate(&self, sans: &[String], validity: Duration) -> Result<IssuedKeyPair, PkiError> {
        let Some(first) = sans.first() else {
            return Err(PkiError::SubjectAltName {
                name: String::new(),
                reason: "at least one DNS name or IP address is required".into(),
            });
        };
        let now = OffsetDateTime::now_utc();
        let (not_before, not_after) = (now - BACKDATE, now + validity);
        self.check_within_ca(not_before, not_after)?;
        let mut params = leaf_params(not_before, not_after);
        params.subject_alt_names = sans.iter().map(|s| san(s)).collect::<Result<_, _>>()?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, first.as_str());
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate_for(KeyType::EcdsaP256.signature_algorithm()).map_err(PkiError::signing)?;
        let certificate = self.sign(&params, &key)?;
        Ok(IssuedKeyPair {
            certificate,
            key_pem: keys::private_key_pem(&key),
        })
    }

    /// Issues a client certificate (extended key usage clientAuth) with subject CN =
    /// `common_name` and no organisation, with a fresh P-256 key, valid from now (minus
    /// [`BACKDATE`]) for `validity`: the control plane's identity at an external broker. A
    /// device certificate always names an organisation (its topic prefix), so a broker that
    /// takes the certificate subject as user name never confuses the two.
    pub fn issue_client_certificate(&self, common_name: &str, validity: Duration) -> Result<IssuedKeyPair, PkiError> {
        check_common_name(common_name)?;
        let now = OffsetDateTime::now_utc();
        let (not_before, not_after) = (now - BACKDATE, now + validity);
        self.check_within_ca(not_before, not_after)?;
        let mut params = leaf_params(not_before, not_after);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate_for(KeyType::EcdsaP256.signature_algorithm()).map_err(PkiError::signing)?;
        let certificate = self.sign(&params, &key)?;
        Ok(IssuedKeyPair {
            certificate,
            key_pem: keys::private_key_pem(&key),
        })
    }

    /// A certificate revocation list (X.509 v2 CRL, PEM) signed by this CA, listing `serials`
    /// (lower-case hex, as in [`IssuedCertificate::serial`]) as revoked at `now`, valid until
    /// `next_update`. `number` is the CRL number (RFC 5280 §5.2.3), which must grow with each
    /// list: seconds since 1970 serve. For brokers that check client certificates against a
    /// CRL file (Mosquitto's `crlfile`).
    pub fn revocation_list(
        &self,
        serials: &[String],
        now: OffsetDateTime,
        next_update: OffsetDateTime,
        number: u64,
    ) -> Result<String, PkiError> {
        let revoked_certs = serials
            .iter()
            .map(|hex| {
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&serial_bytes(hex)?),
                    revocation_time: now,
                    reason_code: None,
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, PkiError>>()?;
        let params = CertificateRevocationListParams {
            this_update: now - BACKDATE,
            next_update,
            crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: self.issuer_params.key_identifier_method.clone(),
        };
        let issuer = Issuer::from_params(&self.issuer_params, &self.key);
        let crl = params.signed_by(&issuer).map_err(PkiError::signing)?;
        crl.pem().map_err(PkiError::signing)
    }

    /// Certifies another CA's key under this CA (a cross-certificate), for rotating to that CA
    /// while the broker still trusts only this one.
    ///
    /// The result is an intermediate CA certificate with the other CA's subject and public key
    /// (pathLen 0), valid for the other CA's validity clipped to this CA's. A device whose
    /// certificate the new CA issued presents `[device certificate, cross-certificate]`; the
    /// broker, trusting only this (old) CA, accepts the chain. See the crate docs, "Rotation".
    pub fn cross_certify(&self, other_ca_pem: &str) -> Result<IssuedCertificate, PkiError> {
        let der = inspect::certificate_der(other_ca_pem, "CA certificate to cross-certify")?;
        let other = inspect::parse_der(&der, "CA certificate to cross-certify")?;
        if !other.is_ca() {
            return Err(PkiError::NotACa {
                what: "CA certificate to cross-certify",
            });
        }
        KeyType::of_spki(other.public_key())?;
        let public_key = SubjectPublicKeyInfo::from_der(other.public_key().raw).map_err(PkiError::signing)?;
        let other_info = inspect::describe(&other)?;
        let not_before = other_info.not_before.max(self.info.not_before);
        let not_after = other_info.not_after.min(self.info.not_after);
        check_validity(not_before, not_after)?;
        // Same subject and key identifier as the other CA, so its certificates chain to this one.
        let names = name_params(&other, "CA certificate to cross-certify")?;
        let mut params = ca_params("", not_before, not_after, BasicConstraints::Constrained(0));
        params.distinguished_name = names.distinguished_name;
        params.key_identifier_method = names.key_identifier_method;
        let issued = self.sign(&params, &public_key)?;
        let issued_der = inspect::certificate_der(&issued.pem, "cross-certificate")?;
        if inspect::parse_der(&issued_der, "cross-certificate")?.subject().as_raw() != other.subject().as_raw() {
            return Err(PkiError::Signing(
                "the other CA's subject name cannot be reproduced byte for byte".into(),
            ));
        }
        Ok(issued)
    }

    fn sign(
        &self,
        params: &CertificateParams,
        public_key: &impl rcgen::PublicKeyData,
    ) -> Result<IssuedCertificate, PkiError> {
        let issuer = Issuer::from_params(&self.issuer_params, &self.key);
        let cert = params.signed_by(public_key, &issuer).map_err(PkiError::signing)?;
        let pem = cert.pem();
        let parsed = inspect::parse_der(cert.der(), "issued certificate")?;
        if parsed.issuer().as_raw() != self.subject_der.as_slice() {
            return Err(PkiError::Signing(
                "the CA's subject name cannot be reproduced byte for byte".into(),
            ));
        }
        let info = inspect::describe(&parsed)?;
        Ok(IssuedCertificate {
            pem,
            serial: info.serial,
            not_before: info.not_before,
            not_after: info.not_after,
        })
    }

    fn check_within_ca(&self, not_before: OffsetDateTime, not_after: OffsetDateTime) -> Result<(), PkiError> {
        check_validity(not_before, not_after)?;
        if not_after > self.info.not_after {
            return Err(PkiError::Validity(format!(
                "not_after {not_after} is after the CA's own expiry {}; rotate the CA first",
                self.info.not_after
            )));
        }
        Ok(())
    }
}

/// The public key of a CSR whose self-signature verifies, if its type is supported.
fn verified_csr_key(csr_pem: &str) -> Result<SubjectPublicKeyInfo, PkiError> {
    let info = crate::csr::verify_csr(csr_pem)?;
    SubjectPublicKeyInfo::from_der(&info.public_key_der).map_err(|e| PkiError::Der {
        what: "certificate signing request",
        reason: format!("public key: {e}"),
    })
}

/// The subject name (same string types, so the same DER) and subject key identifier of
/// `cert`, as rcgen parameters.
fn name_params(cert: &X509Certificate<'_>, what: &'static str) -> Result<CertificateParams, PkiError> {
    let bad = |reason: String| PkiError::Der { what, reason };
    let mut dn = DistinguishedName::new();
    for rdn in cert.subject().iter() {
        let mut attrs = rdn.iter();
        let (Some(attr), None) = (attrs.next(), attrs.next()) else {
            return Err(bad("subject has an empty or multi-valued name component".into()));
        };
        let oid: Vec<u64> = attr
            .attr_type()
            .iter()
            .ok_or_else(|| bad("subject attribute type is not a valid OID".into()))?
            .collect();
        let value = attr.attr_value();
        let text = std::str::from_utf8(value.data).map_err(|_| bad("subject attribute is not text".into()))?;
        let value = match value.header.tag() {
            Tag::Utf8String => DnValue::Utf8String(text.to_owned()),
            Tag::PrintableString => {
                DnValue::PrintableString(text.try_into().map_err(|e: rcgen::Error| bad(e.to_string()))?)
            }
            Tag::Ia5String => DnValue::Ia5String(text.try_into().map_err(|e: rcgen::Error| bad(e.to_string()))?),
            other => return Err(bad(format!("unsupported string type {other} in subject"))),
        };
        dn.push(DnType::from_oid(&oid), value);
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectKeyIdentifier(id) = ext.parsed_extension() {
            params.key_identifier_method = KeyIdMethod::PreSpecified(id.0.to_vec());
        }
    }
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

fn ca_params(
    common_name: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    constraints: BasicConstraints,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(constraints);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(random_serial());
    params.use_authority_key_identifier_extension = true;
    params
}

fn leaf_params(not_before: OffsetDateTime, not_after: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(random_serial());
    params.use_authority_key_identifier_extension = true;
    params
}

/// The bytes of a serial number written as hex (an even or odd number of digits).
fn serial_bytes(hex: &str) -> Result<Vec<u8>, PkiError> {
    let bad = || PkiError::Der {
        what: "certificate serial number",
        reason: format!("{hex:?} is not a hexadecimal serial number of at most 20 bytes"),
    };
    if hex.is_empty() || hex.len() > 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let padded = if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else {
        hex.to_owned()
    };
    (0..padded.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&padded[i..i + 2], 16).map_err(|_| bad()))
        .collect()
}

/// 16 random bytes with the top bit clear (a positive INTEGER, RFC 5280 §4.1.2.2) and the next
/// bit set (so the encoding is always 16 bytes and the hex always 32 digits): 126 random bits.
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

fn check_validity(not_before: OffsetDateTime, not_after: OffsetDateTime) -> Result<(), PkiError> {
    if not_after <= not_before {
        return Err(PkiError::Validity(format!(
            "not_after {not_after} must be later than not_before {not_before}"
        )));
    }
    // X.509 times (UTCTime/GeneralizedTime) cover years 0000-9999.
    if not_before.year() < 1950 || not_after.year() > 9999 {
        return Err(PkiError::Validity(
            "validity must lie between the years 1950 and 9999".into(),
        ));
    }
    Ok(())
}

fn check_common_name(cn: &str) -> Result<(), PkiError> {
    if cn.trim().is_empty() || cn.len() > 64 || cn.chars().any(char::is_control) {
        return Err(PkiError::CommonName(
            "must be 1 to 64 characters without control characters".into(),
        ));
    }
    Ok(())
}

fn san(name: &str) -> Result<SanType, PkiError> {
    if let Ok(ip) = name.parse::<std::net::IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let wildcard = name.strip_prefix("*.");
    let labels = wildcard.unwrap_or(name);
    if name.len() > 253 || !labels.split('.').all(label_ok) {
        return Err(PkiError::SubjectAltName {
            name: name.to_owned(),
            reason: "not an IP address or a DNS name (letters, digits, '-' and '.')".into(),
        });
    }
    let ia5 = name
        .to_ascii_lowercase()
        .try_into()
        .map_err(|e: rcgen::Error| PkiError::SubjectAltName {
            name: name.to_owned(),
            reason: e.to_string(),
        })?;
    Ok(SanType::DnsName(ia5))
}
