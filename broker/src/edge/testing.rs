//! Certificates and clients for the edge's tests.

use std::sync::Arc;

use luach_pki::{DeviceCa, DeviceKey, Duration as Validity, OffsetDateTime};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsAcceptor;

use super::tls::{Revoked, certificates, server_config};

pub fn must<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

pub struct Device {
    pub chain: String,
    pub key: String,
    pub serial: String,
}

/// A device CA and a TLS acceptor for `localhost` trusting it, refusing `revoked`.
pub fn ca_and_acceptor(revoked: Revoked) -> (DeviceCa, TlsAcceptor) {
    let ca = must(DeviceCa::generate("Luach device CA", Validity::days(365)));
    let server = must(ca.issue_server_certificate(&["localhost".into()], Validity::days(30)));
    let config = must(server_config(
        &[ca.certificate_pem()],
        &server.certificate.pem,
        &server.key_pem,
        revoked,
    ));
    (ca, TlsAcceptor::from(config))
}

/// A device certificate for `id` with topic prefix `prefix`.
pub fn device(ca: &DeviceCa, id: &str, prefix: &str) -> Device {
    let key = must(DeviceKey::generate());
    let now = OffsetDateTime::now_utc();
    let issued = must(ca.issue_device_certificate(
        &must(key.csr_pem(id)),
        id,
        prefix,
        now - Validity::minutes(5),
        now + Validity::days(30),
    ));
    Device {
        chain: issued.pem.clone(),
        key: key.to_pem().to_string(),
        serial: issued.serial,
    }
}

/// A client configuration presenting `d`'s certificate and trusting `ca`.
pub fn client_config(ca: &DeviceCa, d: &Device) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in must(certificates(ca.certificate_pem(), "ca")) {
        must(roots.add(c));
    }
    let config = must(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string()),
    )
    .with_root_certificates(roots)
    .with_client_auth_cert(
        must(certificates(&d.chain, "device")),
        must(PrivateKeyDer::from_pem_slice(d.key.as_bytes())),
    );
    Arc::new(must(config))
}
