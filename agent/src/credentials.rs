//! The device's key, certificate and trusted CAs on disk, and the TLS identity made of them.
//!
//! Files in the state directory:
//!
//! | file             | what                                                        |
//! |------------------|-------------------------------------------------------------|
//! | `device.key`     | P-256 private key (PKCS#8 PEM, mode 0600), generated here    |
//! | `device.pem`     | the certificate the control plane issued (chain, leaf first) |
//! | `ca.pem`         | the CA(s) the broker's certificate must chain to             |
//! | `enrolment.json` | a pending enrolment: claim code and poll secret (mode 0600)  |
//!
//! Every file is written to a temporary file with its final mode and renamed into place, so a
//! crash never leaves a half-written key or a certificate without its CA.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use luach_pki::{DeviceKey, Zeroizing};
use serde::{Deserialize, Serialize};

const KEY_FILE: &str = "device.key";
const CERT_FILE: &str = "device.pem";
const CA_FILE: &str = "ca.pem";
const PENDING_FILE: &str = "enrolment.json";

/// What a TLS connection to the broker needs. The key never appears in `Debug` output.
#[derive(Clone)]
pub struct TlsIdentity {
    /// CA certificates (PEM) the broker's certificate must chain to.
    pub ca_pem: String,
    /// The device certificate chain (PEM, leaf first).
    pub cert_pem: String,
    /// The device's private key (PKCS#8 PEM).
    pub key_pem: Zeroizing<String>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity").finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// rumqttc's transport for this identity (rustls; the server name is the host connected to).
    pub fn transport(&self) -> rumqttc::Transport {
        rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Simple {
            ca: self.ca_pem.as_bytes().to_vec(),
            alpn: None,
            client_auth: Some((self.cert_pem.as_bytes().to_vec(), self.key_pem.as_bytes().to_vec())),
        })
    }

    /// The topic prefix the broker jails this certificate to: its organisation (O), which
    /// the control plane draws afresh for each enrolment.
    pub fn prefix(&self) -> anyhow::Result<luach_schemas::TopicPrefix> {
        let chain = luach_pki::inspect_chain(&self.cert_pem).context("reading the device certificate")?;
        let leaf = chain.first().context("the device certificate file is empty")?;
        let o = leaf
            .organisation
            .as_deref()
            .context("the device certificate names no organisation")?;
        luach_schemas::TopicPrefix::parse(o).context("the device certificate's organisation")
    }

    /// Validity of the leaf certificate.
    pub fn validity(&self) -> anyhow::Result<(DateTime<Utc>, DateTime<Utc>)> {
        let chain = luach_pki::inspect_chain(&self.cert_pem).context("reading the device certificate")?;
        let leaf = chain.first().context("the device certificate file is empty")?;
        let at = |t: luach_pki::OffsetDateTime| DateTime::from_timestamp(t.unix_timestamp(), 0).unwrap_or_default();
        Ok((at(leaf.not_before), at(leaf.not_after)))
    }
}

/// When to renew a certificate valid from `not_before` to `not_after`: after 2/3 of its life.
pub fn renew_at(not_before: DateTime<Utc>, not_after: DateTime<Utc>) -> DateTime<Utc> {
    not_before + (not_after - not_before) * 2 / 3
}

/// A pending enrolment kept across restarts, so a screen keeps showing the same code.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingEnrolment {
    pub claim_code: String,
    pub poll_secret: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for PendingEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingEnrolment")
            .field("claim_code", &self.claim_code)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The credential files of one device.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    dir: PathBuf,
}

/// Writes `contents` atomically with the final mode (see [`luach_pki::write_atomic`]).
fn write_atomic(path: &Path, contents: &[u8], private: bool) -> anyhow::Result<()> {
    let mode = if private {
        luach_pki::FileMode::Private
    } else {
        luach_pki::FileMode::Public
    };
    luach_pki::write_atomic(path, contents, mode).with_context(|| format!("writing {}", path.display()))
}

fn read_optional(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn remove_optional(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

impl CredentialStore {
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_owned() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The device key, generated (and saved, mode 0600) on first use. A key file that group
    /// or others can read is refused.
    pub fn key(&self) -> anyhow::Result<DeviceKey> {
        let path = self.path(KEY_FILE);
        if let Some(pem) = read_optional(&path)?.map(Zeroizing::new) {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path)
                    .with_context(|| format!("reading {}", path.display()))?
                    .permissions()
                    .mode();
                anyhow::ensure!(
                    mode & 0o077 == 0,
                    "{} is readable by other users (mode {:o}); it must be 0600",
                    path.display(),
                    mode & 0o777
                );
            }
            return DeviceKey::from_pem(&pem).with_context(|| format!("{} is not a usable key", path.display()));
        }
        std::fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        let key = DeviceKey::generate().context("generating the device key")?;
        write_atomic(&path, key.to_pem().as_bytes(), true)?;
        Ok(key)
    }

    /// The stored certificate and CA, if both are there and the certificate is for `key`.
    pub fn identity(&self, key: &DeviceKey) -> anyhow::Result<Option<TlsIdentity>> {
        let (Some(cert_pem), Some(ca_pem)) = (
            read_optional(&self.path(CERT_FILE))?,
            read_optional(&self.path(CA_FILE))?,
        ) else {
            return Ok(None);
        };
        if let Err(e) = key.check_certificate(first_block(&cert_pem)) {
            tracing::warn!(error = %e, "stored certificate does not belong to the device key; enrolling again");
            return Ok(None);
        }
        Ok(Some(TlsIdentity {
            ca_pem,
            cert_pem,
            key_pem: key.to_pem(),
        }))
    }

    /// Saves a certificate and its CA (CA first, so a certificate is never without it).
    pub fn save_identity(&self, identity: &TlsIdentity) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        write_atomic(&self.path(CA_FILE), identity.ca_pem.as_bytes(), false)?;
        write_atomic(&self.path(CERT_FILE), identity.cert_pem.as_bytes(), false)
    }

    /// Forgets the key and certificate (after the control plane refused to renew them).
    pub fn discard_identity(&self) -> anyhow::Result<()> {
        remove_optional(&self.path(CERT_FILE))?;
        remove_optional(&self.path(KEY_FILE))?;
        remove_optional(&self.path(PENDING_FILE))
    }

    pub fn pending(&self) -> anyhow::Result<Option<PendingEnrolment>> {
        let Some(text) = read_optional(&self.path(PENDING_FILE))? else {
            return Ok(None);
        };
        Ok(serde_json::from_str(&text).ok())
    }

    pub fn save_pending(&self, pending: &PendingEnrolment) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        let text = serde_json::to_vec(pending).context("encoding the pending enrolment")?;
        write_atomic(&self.path(PENDING_FILE), &text, true)
    }

    pub fn clear_pending(&self) -> anyhow::Result<()> {
        remove_optional(&self.path(PENDING_FILE))
    }
}

/// The first PEM block of a chain (the leaf), or the whole text if it has no end marker.
pub fn first_block(chain: &str) -> &str {
    const END: &str = "-----END CERTIFICATE-----";
    chain.find(END).map_or(chain, |i| &chain[..i + END.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_private_and_stable_and_identity_round_trips() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = CredentialStore::new(dir.path());
        let key = store.key().unwrap_or_else(|e| panic!("{e}"));
        let again = store.key().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(key.public_key_pem(), again.public_key_pem());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join(KEY_FILE);
            let mode = std::fs::metadata(&path)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0);
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap_or_else(|e| panic!("{e}"));
            assert!(store.key().is_err(), "a world-readable key is refused");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(store.identity(&key).unwrap_or_else(|e| panic!("{e}")).is_none());

        let ca = luach_pki::DeviceCa::generate("test", luach_pki::Duration::days(10)).unwrap_or_else(|e| panic!("{e}"));
        let now = luach_pki::OffsetDateTime::now_utc();
        let csr = key.csr_pem("dev1").unwrap_or_else(|e| panic!("{e}"));
        let cert = ca
            .issue_device_certificate(&csr, "dev1", "enrol7", now, now + luach_pki::Duration::days(3))
            .unwrap_or_else(|e| panic!("{e}"));
        let identity = TlsIdentity {
            ca_pem: ca.certificate_pem().to_owned(),
            cert_pem: cert.pem.clone(),
            key_pem: key.to_pem(),
        };
        store.save_identity(&identity).unwrap_or_else(|e| panic!("{e}"));
        let loaded = store
            .identity(&key)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("saved"));
        assert_eq!(loaded.cert_pem, cert.pem);
        assert_eq!(loaded.prefix().map(|p| p.to_string()).ok().as_deref(), Some("enrol7"));
        let (from, to) = loaded.validity().unwrap_or_else(|e| panic!("{e}"));
        assert!(renew_at(from, to) > from && renew_at(from, to) < to);
        assert!(!format!("{loaded:?}").contains("PRIVATE"));

        // Another key does not get this certificate.
        store.discard_identity().unwrap_or_else(|e| panic!("{e}"));
        let fresh = store.key().unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(fresh.public_key_pem(), key.public_key_pem());
        std::fs::write(dir.path().join(CERT_FILE), &cert.pem).unwrap_or_else(|e| panic!("{e}"));
        assert!(store.identity(&fresh).unwrap_or_else(|e| panic!("{e}")).is_none());
    }
}
