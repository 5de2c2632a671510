//! Behaviour of the public API, including hostile input.

use proptest::prelude::*;
use rcgen::{CertificateParams, DnType, KeyPair, PublicKeyData, SigningKey};
use time::{Duration, OffsetDateTime};

use crate::*;

const RSA_CSR: &str = include_str!("testdata/rsa2048.csr");
const SECP256K1_CSR: &str = include_str!("testdata/secp256k1.csr");
/// `openssl req` P-256 CSR for O=deva asking for serverAuth and a subject key identifier.
const OPENSSL_CSR: &str = include_str!("testdata/openssl-p256-extensions.csr");

fn ca() -> DeviceCa {
    DeviceCa::generate("Luach test device CA", Duration::days(3650)).expect("ca")
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn issue(ca: &DeviceCa, device: &str) -> (DeviceKey, IssuedCertificate) {
    let key = DeviceKey::generate().expect("key");
    let csr = key.csr_pem(device).expect("csr");
    let cert = ca
        .issue_device_certificate(
            &csr,
            device,
            device,
            now() - Duration::minutes(5),
            now() + Duration::days(30),
        )
        .expect("issue");
    (key, cert)
}

#[test]
fn device_certificate_has_the_fields_the_broker_needs() {
    let ca = ca();
    let (key, cert) = issue(&ca, "deva");
    let info = inspect_certificate(&cert.pem).expect("inspect");
    assert_eq!(info.organisation.as_deref(), Some("deva"));
    assert_eq!(info.organisational_unit.as_deref(), Some("deva"));
    assert_eq!(info.common_name.as_deref(), Some("deva"));
    assert_eq!(info.device_id(), Some("deva"));
    assert!(!info.names_device_in_cn());
    assert_eq!(info.version, 3);
    assert!(info.client_auth && !info.server_auth && !info.is_ca);
    assert_eq!(info.key_type, Some(KeyType::EcdsaP256));
    assert_eq!(info.serial, cert.serial);
    assert_eq!(info.serial.len(), 32, "126-bit serial always encodes as 16 bytes");
    assert_eq!((info.not_before, info.not_after), (cert.not_before, cert.not_after));
    assert_eq!(info.issuer, ca.info().subject);
    verify_signed_by(&cert.pem, ca.certificate_pem()).expect("chains to the CA");
    key.check_certificate(&cert.pem).expect("certifies the device key");
    let bundle = CaBundle::from_pem(ca.certificate_pem()).expect("bundle");
    let checked = bundle.verify_device_certificate(&cert.pem, now()).expect("device cert");
    assert_eq!(checked, info);
}

#[test]
fn the_csr_subject_and_extensions_are_ignored() {
    let ca = ca();
    // A device asks for another device's O, serverAuth, CA:TRUE and a SAN.
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec!["evil.example".to_owned()]).expect("params");
    params.distinguished_name.push(DnType::OrganizationName, "devb");
    params.distinguished_name.push(DnType::CommonName, "devb");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let csr = params.serialize_request(&key).expect("csr").pem().expect("pem");
    let cert = ca
        .issue_device_certificate(&csr, "deva", "deva", now(), now() + Duration::days(1))
        .expect("issue");
    let info = inspect_certificate(&cert.pem).expect("inspect");
    assert_eq!(info.organisation.as_deref(), Some("deva"));
    assert_eq!(info.subject, "O=deva, OU=deva, CN=deva");
    assert!(!info.is_ca && !info.server_auth && info.client_auth);
    assert!(info.dns_names.is_empty());

    // The same with OpenSSL's CSR, whose subject key identifier rcgen's own parser refuses.
    let cert = ca
        .issue_device_certificate(OPENSSL_CSR, "devc", "devc", now(), now() + Duration::days(1))
        .expect("openssl csr");
    let info = inspect_certificate(&cert.pem).expect("inspect");
    assert_eq!(info.organisation.as_deref(), Some("devc"));
    assert!(!info.server_auth && info.client_auth);
}

/// Carries one key's public half but signs with another: a CSR for a key the sender does not
/// hold.
struct Forger {
    claimed: KeyPair,
    signer: KeyPair,
}

impl PublicKeyData for Forger {
    fn der_bytes(&self) -> &[u8] {
        self.claimed.der_bytes()
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.claimed.algorithm()
    }
}

impl SigningKey for Forger {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.signer.sign(msg)
    }
}

#[test]
fn a_csr_signed_by_a_different_key_is_refused() {
    let ca = ca();
    let victim = DeviceKey::generate().expect("key");
    let forger = Forger {
        claimed: KeyPair::from_pem(&victim.to_pem()).expect("copy of public half"),
        signer: KeyPair::generate().expect("key"),
    };
    let csr = CertificateParams::default()
        .serialize_request(&forger)
        .expect("csr")
        .pem()
        .expect("pem");
    let err = ca
        .issue_device_certificate(&csr, "deva", "deva", now(), now() + Duration::days(1))
        .expect_err("forged csr");
    assert!(matches!(err, PkiError::CsrSignature), "{err}");
    // The genuine request from the same key pair passes.
    let genuine = CertificateParams::default()
        .serialize_request(victim.key_pair())
        .expect("csr")
        .pem()
        .expect("pem");
    ca.issue_device_certificate(&genuine, "deva", "deva", now(), now() + Duration::days(1))
        .expect("genuine");
}

#[test]
fn every_bit_flip_of_a_csr_is_refused() {
    let ca = ca();
    let csr = DeviceKey::generate().expect("key").csr_pem("deva").expect("csr");
    let der = pem::parse(&csr).expect("pem").into_contents();
    for bit in 0..der.len() * 8 {
        let mut flipped = der.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let mutated = encoding::encode("CERTIFICATE REQUEST", &flipped);
        let result = ca.issue_device_certificate(&mutated, "deva", "deva", now(), now() + Duration::days(1));
        assert!(result.is_err(), "bit {bit} flipped and still issued");
    }
}

#[test]
fn every_bit_flip_of_a_device_certificate_is_refused() {
    let ca = ca();
    let (_, cert) = issue(&ca, "deva");
    let bundle = CaBundle::from_pem(ca.certificate_pem()).expect("bundle");
    let der = pem::parse(&cert.pem).expect("pem").into_contents();
    let mut accepted = Vec::new();
    for bit in 0..der.len() * 8 {
        let mut flipped = der.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let mutated = encoding::encode("CERTIFICATE", &flipped);
        let _ = inspect_certificate(&mutated);
        if bundle.verify_device_certificate(&mutated, now()).is_ok() {
            accepted.push(bit);
        }
    }
    assert!(accepted.is_empty(), "bit flips accepted: {accepted:?}");
}

#[test]
fn unsupported_key_types_are_refused_and_supported_ones_issued() {
    let ca = ca();
    for (csr, what) in [(RSA_CSR, "rsa"), (SECP256K1_CSR, "secp256k1")] {
        let err = ca
            .issue_device_certificate(csr, "deva", "deva", now(), now() + Duration::days(1))
            .expect_err(what);
        assert!(matches!(err, PkiError::UnsupportedKeyType { .. }), "{what}: {err}");
    }
    for key_type in [KeyType::EcdsaP256, KeyType::EcdsaP384, KeyType::Ed25519] {
        let key = DeviceKey::generate_for(key_type).expect("key");
        assert_eq!(key.key_type(), key_type);
        let cert = ca
            .issue_device_certificate(
                &key.csr_pem("deva").expect("csr"),
                "deva",
                "deva",
                now(),
                now() + Duration::days(1),
            )
            .expect("issue");
        assert_eq!(
            inspect_certificate(&cert.pem).expect("inspect").key_type,
            Some(key_type)
        );
        key.check_certificate(&cert.pem).expect("matches");
    }
}

#[test]
fn wrong_kinds_of_input_are_typed_errors() {
    let ca = ca();
    let (key, cert) = issue(&ca, "deva");
    let csr = key.csr_pem("deva").expect("csr");
    let issue_with = |csr: &str| ca.issue_device_certificate(csr, "deva", "deva", now(), now() + Duration::days(1));

    let err = issue_with(&cert.pem).expect_err("a certificate is not a CSR");
    assert!(
        matches!(&err, PkiError::WrongPemLabel { found, .. } if found == "CERTIFICATE"),
        "{err}"
    );
    let err = inspect_certificate(&csr).expect_err("a CSR is not a certificate");
    assert!(matches!(err, PkiError::WrongPemLabel { .. }), "{err}");
    let err = inspect_certificate(&key.to_pem()).expect_err("a key is not a certificate");
    assert!(matches!(err, PkiError::WrongPemLabel { .. }), "{err}");
    let err = DeviceKey::from_pem(&cert.pem).expect_err("a certificate is not a key");
    assert!(matches!(err, PkiError::WrongPemLabel { .. }), "{err}");

    let truncated = &csr[..csr.len() / 2];
    assert!(matches!(
        issue_with(truncated),
        Err(PkiError::Pem { .. } | PkiError::NoPem { .. })
    ));
    assert!(matches!(issue_with(""), Err(PkiError::NoPem { .. })));
    assert!(matches!(issue_with("hello"), Err(PkiError::NoPem { .. })));
    let two = format!("{csr}{csr}");
    assert!(matches!(issue_with(&two), Err(PkiError::PemCount { count: 2, .. })));
    let garbage = encoding::encode("CERTIFICATE REQUEST", b"\x30\x03\x02\x01");
    assert!(matches!(issue_with(&garbage), Err(PkiError::Der { .. })));
    let err = inspect_certificate(&encoding::encode("CERTIFICATE", &[0x30, 0x82, 0xff, 0xff, 0])).expect_err("der");
    assert!(matches!(err, PkiError::Der { .. }), "{err}");

    // Messages say what was wrong.
    assert_eq!(
        issue_with(&cert.pem).expect_err("label").to_string(),
        "certificate signing request is a PEM block labelled \"CERTIFICATE\"; expected \"CERTIFICATE REQUEST\""
    );
}

#[test]
fn device_ids_are_validated() {
    let ca = ca();
    let key = DeviceKey::generate().expect("key");
    let csr = key.csr_pem("deva").expect("csr");
    let too_long = "a".repeat(65);
    for bad in ["", "Deva", "dev/a", "dev+", "dev#", "dev.a", "dév", too_long.as_str()] {
        let err = ca
            .issue_device_certificate(&csr, bad, bad, now(), now() + Duration::days(1))
            .expect_err(bad);
        assert!(matches!(err, PkiError::DeviceId(_)), "{bad:?}: {err}");
        assert!(key.csr_pem(bad).is_err(), "{bad:?}");
    }
    let longest = "a".repeat(64);
    ca.issue_device_certificate(&csr, &longest, &longest, now(), now() + Duration::days(1))
        .expect("64 characters");
}

#[test]
fn validity_is_checked() {
    let ca = ca();
    let csr = DeviceKey::generate().expect("key").csr_pem("deva").expect("csr");
    let t = now();
    for (from, to) in [(t, t), (t, t - Duration::seconds(1)), (t, t + Duration::days(3651))] {
        let err = ca
            .issue_device_certificate(&csr, "deva", "deva", from, to)
            .expect_err("validity");
        assert!(matches!(err, PkiError::Validity(_)), "{err}");
    }
}

#[test]
fn serials_are_random_and_positive() {
    let ca = ca();
    let key = DeviceKey::generate().expect("key");
    let csr = key.csr_pem("deva").expect("csr");
    let mut seen = std::collections::HashSet::new();
    for _ in 0..100 {
        let cert = ca
            .issue_device_certificate(&csr, "deva", "deva", now(), now() + Duration::days(1))
            .expect("issue");
        let first = u8::from_str_radix(&cert.serial[..2], 16).expect("hex");
        assert!((0x40..0x80).contains(&first), "{}", cert.serial);
        assert!(seen.insert(cert.serial), "duplicate serial");
    }
}

#[test]
fn ca_round_trips_through_pem_and_disk() {
    let ca = ca();
    let (cert_pem, key_pem) = ca.to_pem();
    let again = DeviceCa::from_pem(&cert_pem, &key_pem).expect("from pem");
    assert_eq!(again.certificate_pem(), ca.certificate_pem());

    let dir = tempfile::tempdir().expect("tempdir");
    ca.save(dir.path()).expect("save");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |f: &str| {
            std::fs::metadata(dir.path().join(f))
                .expect("meta")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(CA_KEY_FILE), 0o600);
        assert_eq!(mode(CA_CERT_FILE), 0o644);
    }
    let loaded = DeviceCa::load(dir.path()).expect("load");
    assert_eq!(loaded.certificate_pem(), ca.certificate_pem());
    // Certificates from the loaded CA chain to the original certificate.
    let (_, cert) = issue(&loaded, "deva");
    verify_signed_by(&cert.pem, ca.certificate_pem()).expect("same CA");
    // No temporary files left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key_path = dir.path().join(CA_KEY_FILE);
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = DeviceCa::load(dir.path()).expect_err("world-readable key");
        assert!(matches!(err, PkiError::InsecureKeyFile { mode: 0o644, .. }), "{err}");
    }
    let err = DeviceCa::load(&dir.path().join("missing")).expect_err("missing dir");
    assert!(matches!(err, PkiError::Io { .. }), "{err}");
}

#[test]
fn ca_from_pem_checks_the_pair_and_the_ca_flag() {
    let ca = ca();
    let other = DeviceCa::generate("Other CA", Duration::days(10)).expect("ca");
    let (_, other_key) = other.to_pem();
    let err = DeviceCa::from_pem(ca.certificate_pem(), &other_key).expect_err("mismatch");
    assert!(matches!(err, PkiError::KeyMismatch), "{err}");
    let (key, cert) = issue(&ca, "deva");
    let err = DeviceCa::from_pem(&cert.pem, &key.to_pem()).expect_err("not a CA");
    assert!(matches!(err, PkiError::NotACa { .. }), "{err}");
    assert!(DeviceCa::generate("", Duration::days(1)).is_err());
    assert!(DeviceCa::generate("ca", Duration::days(-1)).is_err());
}

#[test]
fn server_certificate_for_ip_and_dns_names() {
    let ca = ca();
    let sans = vec![
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
        "localhost".to_owned(),
        "mqtt.example.org".to_owned(),
    ];
    let issued = ca
        .issue_server_certificate(&sans, Duration::days(90))
        .expect("server cert");
    let info = inspect_certificate(&issued.certificate.pem).expect("inspect");
    assert!(info.server_auth && !info.client_auth && !info.is_ca);
    assert_eq!(info.dns_names, ["localhost", "mqtt.example.org"]);
    assert_eq!(info.ip_addresses.len(), 2);
    assert_eq!(info.common_name.as_deref(), Some("127.0.0.1"));
    verify_key_matches(&issued.certificate.pem, &issued.key_pem).expect("pair");
    verify_signed_by(&issued.certificate.pem, ca.certificate_pem()).expect("chain");
    let err = verify_key_matches(&issued.certificate.pem, &DeviceKey::generate().expect("k").to_pem())
        .expect_err("other key");
    assert!(matches!(err, PkiError::KeyMismatch), "{err}");

    for bad in [
        vec![],
        vec!["".to_owned()],
        vec!["a b".to_owned()],
        vec!["-x.org".to_owned()],
    ] {
        let err = ca
            .issue_server_certificate(&bad, Duration::days(1))
            .expect_err("bad san");
        assert!(matches!(err, PkiError::SubjectAltName { .. }), "{bad:?}: {err}");
    }
    // A server certificate is no device certificate.
    let bundle = CaBundle::from_pem(ca.certificate_pem()).expect("bundle");
    let err = bundle
        .verify_device_certificate(&issued.certificate.pem, now())
        .expect_err("server cert");
    assert!(matches!(err, PkiError::NotADeviceCertificate(_)), "{err}");
}

#[test]
fn client_certificate_names_no_organisation() {
    let ca = ca();
    let issued = ca
        .issue_client_certificate("luach-control-plane", Duration::days(30))
        .expect("client cert");
    let info = inspect_certificate(&issued.certificate.pem).expect("inspect");
    assert!(info.client_auth && !info.server_auth && !info.is_ca);
    assert_eq!(info.common_name.as_deref(), Some("luach-control-plane"));
    assert_eq!(info.organisation, None);
    verify_key_matches(&issued.certificate.pem, &issued.key_pem).expect("pair");
    verify_signed_by(&issued.certificate.pem, ca.certificate_pem()).expect("chain");
    for bad in ["", "   ", &"x".repeat(65)] {
        assert!(matches!(
            ca.issue_client_certificate(bad, Duration::days(1)),
            Err(PkiError::CommonName(_))
        ));
    }
    assert!(matches!(
        ca.issue_client_certificate("cp", Duration::days(20_000)),
        Err(PkiError::Validity(_))
    ));
}

#[test]
fn revocation_list_names_the_serials_and_the_ca() {
    use x509_parser::prelude::FromDer;
    let ca = ca();
    let (_, a) = issue(&ca, "deva");
    let (_, b) = issue(&ca, "devb");
    let at = now();
    let pem = ca
        .revocation_list(&[a.serial.clone(), b.serial.clone()], at, at + Duration::days(30), 7)
        .expect("crl");
    let der = ::pem::parse(&pem).expect("pem");
    assert_eq!(der.tag(), "X509 CRL");
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(der.contents()).expect("der");
    let listed: Vec<String> = crl
        .iter_revoked_certificates()
        .map(|r| r.raw_serial_as_string().replace(':', ""))
        .collect();
    assert_eq!(listed, [a.serial.clone(), b.serial.clone()]);
    assert_eq!(crl.crl_number().map(|n| n.to_string()), Some("7".to_owned()));
    let ca_der = ::pem::parse(ca.certificate_pem()).expect("ca pem");
    let (_, ca_cert) = x509_parser::certificate::X509Certificate::from_der(ca_der.contents()).expect("ca der");
    assert_eq!(crl.issuer(), ca_cert.subject());
    // An empty list is a valid list (nothing refused yet); a serial that is no hex is refused.
    ca.revocation_list(&[], at, at + Duration::days(1), 1)
        .expect("empty crl");
    for bad in ["", "xyz", &"ab".repeat(21)] {
        assert!(matches!(
            ca.revocation_list(&[bad.to_owned()], at, at + Duration::days(1), 1),
            Err(PkiError::Der { .. })
        ));
    }
}

#[test]
fn chain_checks_name_the_failure() {
    let ca = ca();
    let (_, cert) = issue(&ca, "deva");
    let stranger = DeviceCa::generate("Stranger CA", Duration::days(365)).expect("ca");
    let err = verify_signed_by(&cert.pem, stranger.certificate_pem()).expect_err("other CA");
    assert!(matches!(err, PkiError::IssuerMismatch { .. }), "{err}");
    // Same name, different key: only the signature tells them apart.
    let impostor = DeviceCa::generate("Luach test device CA", Duration::days(10)).expect("ca");
    let err = verify_signed_by(&cert.pem, impostor.certificate_pem()).expect_err("impostor");
    assert!(matches!(err, PkiError::BadSignature), "{err}");
    let err = verify_signed_by(&cert.pem, &cert.pem).expect_err("leaf as CA");
    assert!(matches!(err, PkiError::NotACa { .. }), "{err}");
}

#[test]
fn bundle_holds_old_and_new_ca_during_rotation() {
    let old = ca();
    let new = DeviceCa::generate("Luach test device CA 2", Duration::days(3650)).expect("ca");
    let mut bundle = CaBundle::from_pem(old.certificate_pem()).expect("bundle");
    bundle.push(new.certificate_pem()).expect("push");
    bundle.push(new.certificate_pem()).expect("push twice");
    assert_eq!(bundle.len(), 2);

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ca-bundle.pem");
    bundle.write(&path).expect("write");
    let read = CaBundle::read(&path).expect("read");
    assert_eq!(read, bundle);

    let (_, from_old) = issue(&old, "deva");
    let (_, from_new) = issue(&new, "devb");
    assert_eq!(read.issuer_of(&from_old.pem).expect("old").subject, old.info().subject);
    assert_eq!(read.issuer_of(&from_new.pem).expect("new").subject, new.info().subject);
    let info = read.verify_device_certificate(&from_new.pem, now()).expect("valid");
    assert_eq!(info.organisation.as_deref(), Some("devb"));

    let stranger = DeviceCa::generate("Stranger CA", Duration::days(365)).expect("ca");
    let (_, foreign) = issue(&stranger, "deva");
    let err = read
        .verify_device_certificate(&foreign.pem, now())
        .expect_err("foreign");
    assert!(matches!(err, PkiError::UnknownIssuer { .. }), "{err}");
    let err = read
        .verify_device_certificate(&from_old.pem, now() + Duration::days(31))
        .expect_err("expired");
    assert!(matches!(err, PkiError::NotValidAt { .. }), "{err}");

    assert_eq!(bundle.remove_expired(now() + Duration::days(3651)), 2);
    assert!(matches!(bundle.write(&path), Err(PkiError::EmptyBundle)));
    let (key, cert) = issue(&old, "deva");
    let mixed = format!("{}{}", old.certificate_pem(), key.to_pem().as_str());
    assert!(matches!(
        CaBundle::from_pem(&mixed),
        Err(PkiError::WrongPemLabel { .. })
    ));
    assert!(matches!(CaBundle::from_pem(&cert.pem), Err(PkiError::NotACa { .. })));
}

#[test]
fn cross_certificate_chains_new_ca_certificates_to_the_old_ca() {
    let old = ca();
    let new = DeviceCa::generate("Luach test device CA 2", Duration::days(7300)).expect("ca");
    let cross = old.cross_certify(new.certificate_pem()).expect("cross");
    let info = inspect_certificate(&cross.pem).expect("inspect");
    assert!(info.is_ca);
    assert_eq!(info.subject, new.info().subject);
    assert_eq!(info.issuer, old.info().subject);
    assert!(info.not_after <= old.info().not_after, "clipped to the old CA");
    verify_signed_by(&cross.pem, old.certificate_pem()).expect("cross signed by old");
    let (_, leaf) = issue(&new, "deva");
    verify_signed_by(&leaf.pem, &cross.pem).expect("leaf chains through the cross-certificate");
    let (key, cert) = issue(&old, "deva");
    let _ = key;
    assert!(matches!(old.cross_certify(&cert.pem), Err(PkiError::NotACa { .. })));
}

#[test]
fn device_key_round_trips() {
    let key = DeviceKey::generate().expect("key");
    let again = DeviceKey::from_pem(&key.to_pem()).expect("from pem");
    assert_eq!(again.public_key_pem(), key.public_key_pem());
    assert!(!format!("{key:?}").contains("PRIVATE"));
    assert!(DeviceKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").is_err());
}

fn wrapped(label: &'static str) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<u8>(), 0..600).prop_map(move |bytes| encoding::encode(label, &bytes))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_text_never_panics(s in ".{0,400}") {
        let ca = ca_for_props();
        let _ = ca.issue_device_certificate(&s, "deva", "deva", now(), now() + Duration::days(1));
        let _ = inspect_certificate(&s);
        let _ = CaBundle::from_pem(&s);
        let _ = DeviceKey::from_pem(&s);
        let _ = DeviceCa::from_pem(&s, &s);
        let _ = verify_signed_by(&s, ca.certificate_pem());
    }

    #[test]
    fn random_der_in_valid_pem_never_panics(
        csr in wrapped("CERTIFICATE REQUEST"),
        cert in wrapped("CERTIFICATE"),
        key in wrapped("PRIVATE KEY"),
    ) {
        let ca = ca_for_props();
        prop_assert!(ca.issue_device_certificate(&csr, "deva", "deva", now(), now() + Duration::days(1)).is_err());
        prop_assert!(inspect_certificate(&cert).is_err());
        prop_assert!(CaBundle::from_pem(&cert).is_err());
        prop_assert!(DeviceKey::from_pem(&key).is_err());
        prop_assert!(DeviceCa::from_pem(&cert, &key).is_err());
        prop_assert!(ca.cross_certify(&cert).is_err());
    }
}

fn ca_for_props() -> &'static DeviceCa {
    static CA: std::sync::OnceLock<DeviceCa> = std::sync::OnceLock::new();
    CA.get_or_init(ca)
}

/// Device certificates name the prefix as O and CN and the device as OU; one in the earlier
/// form (O = prefix, CN = device, no OU) still names its device.
#[test]
fn device_ids_come_from_ou_or_from_the_cn_of_the_earlier_form() {
    let ca = ca();
    let key = DeviceKey::generate().expect("key");
    let csr = key.csr_pem("dev7").expect("csr");
    let cert = ca
        .issue_device_certificate(&csr, "dev7", "p7x", now(), now() + Duration::days(1))
        .expect("issue");
    let info = inspect_certificate(&cert.pem).expect("inspect");
    assert_eq!(info.subject, "O=p7x, OU=dev7, CN=p7x");
    assert_eq!(
        (info.device_id(), info.organisation.as_deref()),
        (Some("dev7"), Some("p7x"))
    );

    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::OrganizationName, "p7x");
    params.distinguished_name.push(DnType::CommonName, "dev7");
    let earlier = params
        .self_signed(&KeyPair::generate().expect("key"))
        .expect("cert")
        .pem();
    let info = inspect_certificate(&earlier).expect("inspect");
    assert!(info.names_device_in_cn());
    assert_eq!(info.device_id(), Some("dev7"));
}
