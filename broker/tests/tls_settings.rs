//! Start-up checks of the TLS listener's files and which listeners run.

#![allow(clippy::unwrap_used)]

mod support;

use luach_broker::{BrokerError, BrokerSettings, EmbeddedBroker};
use luach_pki::{DeviceCa, Duration, PkiError};
use support::{Pki, devices};

async fn start(settings: &BrokerSettings) -> Result<EmbeddedBroker, BrokerError> {
    EmbeddedBroker::start(settings, "/tenants/+/up/#", devices())
        .await
        .map(|(b, _)| b)
}

#[tokio::test]
async fn listeners_start_as_configured() {
    let pki = Pki::new();
    let both = start(&pki.settings(true)).await.unwrap();
    assert!(both.plain_addr().is_some_and(|a| a.port() != 0));
    assert!(both.tls_addr().is_some_and(|a| a.port() != 0));
    assert_ne!(both.plain_addr(), both.tls_addr());
    assert_eq!(Some(both.listen_addr()), both.plain_addr());

    let tls_only = start(&pki.settings(false)).await.unwrap();
    assert_eq!(tls_only.plain_addr(), None);
    assert_eq!(Some(tls_only.listen_addr()), tls_only.tls_addr());

    let plain_only = BrokerSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        plain_listener: true,
        tls_listener: false,
        ..BrokerSettings::default()
    };
    // The TLS listener without its files is a configuration error, not a silent omission.
    let no_files = BrokerSettings {
        tls_listener: true,
        ..plain_only.clone()
    };
    assert!(matches!(start(&no_files).await, Err(BrokerError::Config(_))));
    let plain = start(&plain_only).await.unwrap();
    assert_eq!(plain.tls_addr(), None);
    assert_eq!(Some(plain.listen_addr()), plain.plain_addr());

    let none = BrokerSettings {
        plain_listener: false,
        ..plain_only
    };
    assert!(matches!(start(&none).await, Err(BrokerError::Config(_))));
}

#[tokio::test]
async fn bad_tls_files_are_refused_at_start() {
    let pki = Pki::new();
    let other = DeviceCa::generate("Other CA", Duration::days(30)).unwrap();

    // A CA bundle (a rotation in progress) is taken whole.
    let bundle = pki.path("bundle.pem");
    std::fs::write(
        &bundle,
        format!("{}{}", pki.ca.certificate_pem(), other.certificate_pem()),
    )
    .unwrap();
    let mut settings = pki.settings(false);
    settings.tls.as_mut().unwrap().ca_path = bundle;
    assert!(start(&settings).await.is_ok());

    // The key of another certificate.
    let stray = other
        .issue_server_certificate(&["localhost".into()], Duration::days(1))
        .unwrap();
    let stray_key = pki.path("stray.key");
    std::fs::write(&stray_key, stray.key_pem.as_bytes()).unwrap();
    let mut settings = pki.settings(false);
    settings.tls.as_mut().unwrap().key_path = stray_key;
    let err = start(&settings).await.unwrap_err();
    assert!(
        matches!(
            &err,
            BrokerError::TlsFile {
                what: "key_path",
                source: PkiError::KeyMismatch,
                ..
            }
        ),
        "{err}"
    );

    // A device certificate where the CA belongs.
    let device = pki.current_device("deva", "deva");
    let mut settings = pki.settings(false);
    settings.tls.as_mut().unwrap().ca_path = device.cert.clone();
    let err = start(&settings).await.unwrap_err();
    assert!(
        matches!(
            &err,
            BrokerError::TlsFile {
                what: "ca_path",
                source: PkiError::NotACa { .. },
                ..
            }
        ),
        "{err}"
    );

    // A missing file.
    let mut settings = pki.settings(false);
    settings.tls.as_mut().unwrap().cert_path = pki.path("missing.pem");
    let err = start(&settings).await.unwrap_err();
    assert!(matches!(&err, BrokerError::TlsFile { what: "cert_path", .. }), "{err}");
    assert!(err.to_string().contains("missing.pem"), "{err}");
}
