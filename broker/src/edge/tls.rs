//! TLS for the edge: the server configuration that requires a device certificate from the
//! device CAs and refuses revoked or superseded ones by serial at the handshake, and the
//! handshake itself, run in the connection's own task under a time-out (never in the accept
//! loop, where one idle socket would stall every device behind it).

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Device certificates that may no longer connect: by serial (lower-case hex, as `luach_pki`
/// writes them), or by topic prefix (the certificate's organisation: a prefix belongs to one
/// enrolment of one screen, so refusing it refuses that enrolment's every certificate, renewed
/// ones included). Shared with whoever learns of revocations; a change applies to the next
/// handshake.
#[derive(Debug, Clone, Default)]
pub struct Revoked(Arc<RwLock<Refusals>>);

#[derive(Debug, Default)]
struct Refusals {
    serials: HashSet<String>,
    prefixes: HashSet<String>,
}

impl Revoked {
    /// Refuses the certificate with this serial.
    pub fn insert(&self, serial: &str) {
        self.write().serials.insert(serial.to_ascii_lowercase());
    }

    /// Refuses every certificate with this topic prefix.
    pub fn insert_prefix(&self, prefix: &str) {
        self.write().prefixes.insert(prefix.to_owned());
    }

    pub fn contains(&self, serial: &str) -> bool {
        self.read().serials.contains(serial)
    }

    /// True when a certificate with `serial` and organisation `prefix` is refused.
    pub fn refuses(&self, serial: &str, prefix: Option<&str>) -> bool {
        let r = self.read();
        r.serials.contains(serial) || prefix.is_some_and(|p| r.prefixes.contains(p))
    }

    /// Refused serials and prefixes.
    pub fn len(&self) -> (usize, usize) {
        let r = self.read();
        (r.serials.len(), r.prefixes.len())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Refusals> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Refusals> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why the edge's TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("{what}: {reason}")]
    Pem { what: &'static str, reason: String },
    #[error("no device CA certificate given")]
    NoCa,
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
    #[error("client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// Why a handshake did not complete.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("no TLS handshake within {0:?}")]
    TimedOut(Duration),
    #[error("TLS handshake: {0}")]
    Failed(std::io::Error),
}

#[derive(Debug)]
struct RevocationVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    revoked: Revoked,
}

impl ClientCertVerifier for RevocationVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        let info = luach_pki::inspect_certificate_der(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if self.revoked.refuses(&info.serial, info.organisation.as_deref()) {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

pub(crate) fn certificates(pem: &str, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsSetupError::Pem {
            what,
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsSetupError::Pem {
            what,
            reason: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

/// The edge's server configuration: `chain_pem` and `key_pem` are its certificate (leaf
/// first) and key; every device CA in `ca_pems` is trusted (a CA rotation keeps the old one
/// until its screens renewed); certificates whose serial is in `revoked` are refused.
pub fn server_config(
    ca_pems: &[&str],
    chain_pem: &str,
    key_pem: &str,
    revoked: Revoked,
) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for pem in ca_pems {
        for ca in certificates(pem, "device CA")? {
            roots.add(ca)?;
        }
    }
    if roots.is_empty() {
        return Err(TlsSetupError::NoCa);
    }
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
    let verifier = Arc::new(RevocationVerifier { inner, revoked });
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| TlsSetupError::Pem {
        what: "server key",
        reason: e.to_string(),
    })?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certificates(chain_pem, "server certificate")?, key)?;
    // No session resumption: a resumed session skips the client-certificate verifier, so a
    // certificate revoked since would get in again; and screens reconnect too seldom for
    // tickets to pay for the two that rustls would otherwise make, store and send on every
    // handshake.
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(Arc::new(config))
}

/// Runs the TLS handshake of `tcp` for at most `within`.
pub async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    within: Duration,
) -> Result<TlsStream<TcpStream>, HandshakeError> {
    match tokio::time::timeout(within, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(HandshakeError::Failed(e)),
        Err(_) => Err(HandshakeError::TimedOut(within)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::testing::{ca_and_acceptor, client_config, device, must};
    use luach_pki::{DeviceCa, Duration as Validity};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn client(ca: &DeviceCa, d: &crate::edge::testing::Device) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(client_config(ca, d))
    }

    /// A device connects and exchanges one byte both ways; the server's view of it.
    async fn connect(
        acceptor: &TlsAcceptor,
        listener: &TcpListener,
        connector: tokio_rustls::TlsConnector,
    ) -> Result<(), HandshakeError> {
        let addr = must(listener.local_addr());
        let device = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.ok()?;
            let name = rustls::pki_types::ServerName::try_from("localhost").ok()?;
            let mut tls = connector.connect(name, tcp).await.ok()?;
            tls.write_all(b"?").await.ok()?;
            let mut one = [0u8; 1];
            tls.read_exact(&mut one).await.ok()
        });
        let (tcp, _) = must(listener.accept().await);
        let mut tls = handshake(acceptor, tcp, Duration::from_secs(5)).await?;
        let mut one = [0u8; 1];
        must(tls.read_exact(&mut one).await);
        must(tls.write_all(b"!").await);
        must(tls.flush().await);
        assert!(must(device.await).is_some(), "the device completed its exchange");
        Ok(())
    }

    #[tokio::test]
    async fn revoked_certificates_are_refused_at_the_handshake_and_idle_sockets_time_out() {
        let revoked = Revoked::default();
        let (ca, acceptor) = ca_and_acceptor(revoked.clone());
        let listener = must(TcpListener::bind("127.0.0.1:0").await);

        let (good, old) = (device(&ca, "screen1", "p1"), device(&ca, "screen2", "p2"));
        must(connect(&acceptor, &listener, client(&ca, &good)).await);
        must(connect(&acceptor, &listener, client(&ca, &old)).await);
        // Superseded: the same device renewed, its old serial may not connect again.
        revoked.insert(&old.serial.to_ascii_uppercase());
        let refused = connect(&acceptor, &listener, client(&ca, &old)).await;
        assert!(
            matches!(&refused, Err(HandshakeError::Failed(e)) if e.to_string().contains("Revoked")),
            "{refused:?}"
        );
        must(connect(&acceptor, &listener, client(&ca, &good)).await);
        // Revoked: the whole enrolment (its prefix) is refused.
        revoked.insert_prefix("p1");
        let refused = connect(&acceptor, &listener, client(&ca, &good)).await;
        assert!(matches!(&refused, Err(HandshakeError::Failed(_))), "{refused:?}");

        // A socket that never speaks is given up after the time-out, in its own task.
        let addr = must(listener.local_addr());
        let _idle = must(TcpStream::connect(addr).await);
        let (tcp, _) = must(listener.accept().await);
        let idle = handshake(&acceptor, tcp, Duration::from_millis(200)).await;
        assert!(matches!(idle, Err(HandshakeError::TimedOut(_))), "{idle:?}");
    }

    /// A device that keeps its TLS client (and so its session cache) cannot resume its way
    /// past a revocation: the edge issues no tickets and keeps no sessions, so every
    /// handshake is a full one through the certificate verifier.
    #[tokio::test]
    async fn sessions_are_never_resumed_past_a_revocation() {
        let revoked = Revoked::default();
        let (ca, acceptor) = ca_and_acceptor(revoked.clone());
        let listener = must(TcpListener::bind("127.0.0.1:0").await);
        let screen = device(&ca, "screen3", "p3");
        let kept = client(&ca, &screen);
        must(connect(&acceptor, &listener, kept.clone()).await);
        must(connect(&acceptor, &listener, kept.clone()).await);
        revoked.insert_prefix("p3");
        let refused = connect(&acceptor, &listener, kept).await;
        assert!(matches!(&refused, Err(HandshakeError::Failed(_))), "{refused:?}");
    }

    #[test]
    fn a_configuration_needs_a_device_ca_and_readable_pem() {
        let ca = must(DeviceCa::generate("Luach device CA", Validity::days(365)));
        let server = must(ca.issue_server_certificate(&["localhost".into()], Validity::days(30)));
        let none = server_config(&[], &server.certificate.pem, &server.key_pem, Revoked::default());
        assert!(matches!(none, Err(TlsSetupError::NoCa)), "{none:?}");
        let garbled = server_config(
            &["-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"],
            &server.certificate.pem,
            &server.key_pem,
            Revoked::default(),
        );
        assert!(garbled.is_err());
    }
}
