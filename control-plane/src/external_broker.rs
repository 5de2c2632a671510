//! External broker mode on the control plane's side: its own identity at the broker, and the
//! broker's configuration kept in step with the fleet.
//!
//! - [`control_plane_identity`]: a service CA in `<ca_dir>/service/` (created on first use,
//!   trusted only by the broker's control-plane listener) and the control plane's client
//!   certificate from it (`CN=luach-control-plane`, reissued with a third of its life left).
//!   Replicas share `ca_dir`, so they share the service CA.
//! - [`MosquittoFiles`]: `luach-server broker-config mosquitto` writes every file Mosquitto
//!   needs ([`luach_broker::external::mosquitto`] says what each holds); a running server with
//!   `mqtt.external.config_dir` rewrites the two that follow the fleet (the device ACL and the
//!   CRL) after every revocation, re-enrolment and deletion, and runs
//!   `mqtt.external.reload_command` (for Mosquitto, something that sends it SIGHUP) when the
//!   ACL changed. A first enrolment changes neither: the ACL's patterns admit every
//!   certificate by its CN, the enrolment's topic prefix.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;
use luach_broker::external::mosquitto::{self, Listeners};
use luach_broker::{ExternalTls, TopicRules};
use luach_pki::{DeviceCa, OffsetDateTime};
use luach_schemas::UpKind;

use crate::config::Config;
use crate::enrolment::DevicePki;
use crate::store::SystemStore;

/// Common name of the control plane's client certificate.
pub const CONTROL_PLANE_CN: &str = "luach-control-plane";
/// Subdirectory of `ca_dir` holding the service CA and the control plane's certificate.
pub const SERVICE_DIR: &str = "service";
const CLIENT_CERT_FILE: &str = "control-plane.pem";
const CLIENT_KEY_FILE: &str = "control-plane.key";
/// Validity of the service CA and of the control plane's certificate.
const SERVICE_CA_DAYS: i64 = 3650;
const CLIENT_CERT_DAYS: i64 = 365;
/// Validity of a CRL written here; a server with `config_dir` rewrites it daily and on every
/// change, so it never comes near.
const CRL_DAYS: i64 = 30;

/// The service CA, created in `<ca_dir>/service/` on first use.
pub fn service_ca(config: &Config) -> anyhow::Result<DeviceCa> {
    let dir = config.ca_dir().join(SERVICE_DIR);
    crate::keys::private_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    crate::enrolment::pki::open_or_create_ca(&dir, "service CA", || {
        let name = format!("Luach service CA {}", Utc::now().format("%Y-%m-%d %H:%M:%S"));
        DeviceCa::generate(&name, luach_pki::Duration::days(SERVICE_CA_DAYS))
    })
}

/// The control plane's TLS identity at the external broker: its client certificate from the
/// service CA (issued or reissued as needed), trusting the device CAs (which issue the
/// broker's certificate).
pub fn control_plane_identity(config: &Config, pki: &DevicePki) -> anyhow::Result<ExternalTls> {
    let ca = service_ca(config)?;
    let dir = config.ca_dir().join(SERVICE_DIR);
    let (cert_path, key_path) = (dir.join(CLIENT_CERT_FILE), dir.join(CLIENT_KEY_FILE));
    let current = std::fs::read_to_string(&cert_path).ok().filter(|pem| {
        let Ok(info) = luach_pki::inspect_certificate(pem) else {
            return false;
        };
        let now = OffsetDateTime::now_utc();
        let life = info.not_after - info.not_before;
        luach_pki::verify_signed_by(pem, ca.certificate_pem()).is_ok()
            && info.common_name.as_deref() == Some(CONTROL_PLANE_CN)
            && info.not_after - now > life / 3
            && key_path.exists()
    });
    let (cert_pem, key_pem) = match current {
        Some(pem) => {
            crate::keys::check_private(&key_path)?;
            let key = luach_pki::Zeroizing::new(
                std::fs::read_to_string(&key_path).with_context(|| format!("reading {}", key_path.display()))?,
            );
            (pem, key)
        }
        None => {
            let issued = ca
                .issue_client_certificate(CONTROL_PLANE_CN, luach_pki::Duration::days(CLIENT_CERT_DAYS))
                .context("issuing the control plane's client certificate")?;
            luach_pki::write_atomic(&key_path, issued.key_pem.as_bytes(), luach_pki::FileMode::Private)
                .with_context(|| format!("writing {}", key_path.display()))?;
            luach_pki::write_atomic(
                &cert_path,
                issued.certificate.pem.as_bytes(),
                luach_pki::FileMode::Public,
            )
            .with_context(|| format!("writing {}", cert_path.display()))?;
            tracing::info!(path = %cert_path.display(), "control plane client certificate issued");
            (issued.certificate.pem, issued.key_pem)
        }
    };
    Ok(ExternalTls {
        ca_pem: pki.trust_pem().to_owned(),
        cert_pem,
        key_pem,
    })
}

/// What [`MosquittoFiles::write_all`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Unexpired device certificates.
    pub certificates: usize,
    pub refused_certificates: usize,
    pub files: Vec<PathBuf>,
}

/// What one rewrite of the fleet's files found and wrote.
struct Fleet {
    certificates: usize,
    refused: usize,
    files: Vec<PathBuf>,
    acl_changed: bool,
}

/// Quiet time after the last reload before the trailing one (see [`MosquittoFiles::run`]).
pub const TRAILING_RELOAD: Duration = Duration::from_secs(3);

/// Mosquitto's files for this installation, in one directory.
pub struct MosquittoFiles {
    dir: PathBuf,
    reload_command: Vec<String>,
    system: SystemStore,
    pki: Arc<DevicePki>,
    /// CAs whose certificates may still be in use: the issuing CA and, after a rotation, the
    /// one before it (each signs a CRL of its own).
    previous_ca: Option<DeviceCa>,
    rules: TopicRules,
    /// One rewrite at a time.
    lock: tokio::sync::Mutex<()>,
    /// Refreshes asked for so far, and the highest of them a finished rewrite carries: a
    /// burst of enrolments shares one rewrite instead of paying one each.
    requested: AtomicU64,
    completed: AtomicU64,
    /// Told after every reload, so [`MosquittoFiles::run`] sends a trailing one.
    reloaded: tokio::sync::Notify,
}

impl std::fmt::Debug for MosquittoFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MosquittoFiles")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl MosquittoFiles {
    pub fn new(config: &Config, dir: PathBuf, system: SystemStore, pki: Arc<DevicePki>) -> anyhow::Result<Self> {
        let previous = config.ca_dir().join(crate::enrolment::pki::PREVIOUS_DIR);
        let previous_ca = if previous.join(luach_pki::CA_KEY_FILE).exists() {
            Some(
                DeviceCa::load(&previous)
                    .with_context(|| format!("loading the previous CA from {}", previous.display()))?,
            )
        } else {
            None
        };
        Ok(Self {
            dir,
            reload_command: config.mqtt.external.reload_command.clone(),
            system,
            pki,
            previous_ca,
            rules: TopicRules::new(UpKind::ALL.map(UpKind::as_str)),
            lock: tokio::sync::Mutex::new(()),
            requested: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            reloaded: tokio::sync::Notify::new(),
        })
    }

    /// Writes every file Mosquitto needs into the directory: the CAs, the broker's certificate
    /// and key, the CRL, both ACLs and `mosquitto.conf`, which names the files by
    /// `dir_on_broker` (where the broker will find them; the directory itself by default).
    pub async fn write_all(
        &self,
        listeners: &Listeners,
        dir_on_broker: Option<&Path>,
        config: &Config,
    ) -> anyhow::Result<Written> {
        let _one = self.lock.lock().await;
        crate::keys::private_dir(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        let service = service_ca(config)?;
        let broker = self.pki.broker_files();
        let copy = |from: &Path, name: &str, private: bool| -> anyhow::Result<PathBuf> {
            let text = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
            self.write(name, &text, private)
        };
        let mut files = vec![
            copy(&broker.ca_path, mosquitto::DEVICE_CA_FILE, false)?,
            self.write(mosquitto::SERVICE_CA_FILE, service.certificate_pem().as_bytes(), false)?,
            copy(&broker.cert_path, mosquitto::BROKER_CERT_FILE, false)?,
            copy(&broker.key_path, mosquitto::BROKER_KEY_FILE, true)?,
            self.write(
                mosquitto::CONTROL_ACL_FILE,
                mosquitto::control_acl(CONTROL_PLANE_CN).as_bytes(),
                false,
            )?,
        ];
        let fleet = self.write_fleet().await?;
        files.extend(fleet.files);
        let on_broker = dir_on_broker.unwrap_or(&self.dir);
        files.push(self.write(
            mosquitto::CONFIG_FILE,
            mosquitto::config(on_broker, listeners).as_bytes(),
            false,
        )?);
        Ok(Written {
            certificates: fleet.certificates,
            refused_certificates: fleet.refused,
            files,
        })
    }

    /// Rewrites the device ACL and the CRL from the store, then runs the reload command.
    /// Called after every change to who may connect, once the change is stored; returns when
    /// a rewrite that read the store after the call began has finished. Concurrent callers
    /// share rewrites: while one runs, the callers queued behind it are all served by the
    /// next, so bulk enrolment costs one rewrite per wave, not one per screen.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let mine = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let _one = self.lock.lock().await;
        if self.completed.load(Ordering::SeqCst) >= mine {
            return Ok(());
        }
        // Every request up to here was made after its change was stored, and the store is
        // read below, after this load: the rewrite carries them all.
        let upto = self.requested.load(Ordering::SeqCst);
        let fleet = self.write_fleet().await?;
        tracing::info!(
            certificates = fleet.certificates,
            refused = fleet.refused,
            acl_changed = fleet.acl_changed,
            dir = %self.dir.display(),
            "external broker files rewritten"
        );
        if fleet.acl_changed {
            self.reload().await?;
            self.reloaded.notify_one();
        }
        self.completed.fetch_max(upto, Ordering::SeqCst);
        Ok(())
    }

    /// [`MosquittoFiles::refresh`], logging a failure instead of returning it: the store
    /// already holds the change, and the next refresh (the daily one at the latest) carries it.
    pub async fn refresh_or_log(&self) {
        if let Err(e) = self.refresh().await {
            tracing::error!(error = %format!("{e:#}"), "rewriting the external broker's files failed");
        }
    }

    /// Rewrites the files every day (the CRL's validity) until `shutdown`, and runs the
    /// reload command once more after every burst of reloads has been quiet for
    /// [`TRAILING_RELOAD`]. Mosquitto (2.0) clears its reload flag when a reload ends, so a
    /// SIGHUP that arrives while it is still reading a large ACL is lost; the trailing reload
    /// arrives when it is idle, so the newest files are always read in the end.
    pub async fn run(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        let mut next_daily = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep_until(next_daily) => {
                    self.refresh_or_log().await;
                    next_daily = tokio::time::Instant::now() + Duration::from_secs(24 * 3600);
                }
                () = self.reloaded.notified() => {
                    // Wait for quiet: every further reload restarts the wait.
                    loop {
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = self.reloaded.notified() => {}
                            () = tokio::time::sleep(TRAILING_RELOAD) => break,
                        }
                    }
                    let _one = self.lock.lock().await;
                    if let Err(e) = self.reload().await {
                        tracing::error!(error = %format!("{e:#}"), "the trailing reload of the external broker failed");
                    }
                }
            }
        }
    }

    /// Writes the CRL and the device ACL from the store; returns the certificates, the
    /// refused ones, the files, and whether the ACL changed (only then must the broker re-read
    /// it; the CRL is read when it starts). A new enrolment changes neither: patterns admit it.
    async fn write_fleet(&self) -> anyhow::Result<Fleet> {
        let now = Utc::now();
        let unexpired = self
            .system
            .broker_certificates(now)
            .await
            .context("reading the unexpired certificates")?;
        // One read serves both files: the CRL lists the refused ones by serial.
        let refused: Vec<String> = unexpired
            .iter()
            .filter(|c| c.refused)
            .map(|c| c.serial.clone())
            .collect();
        let certificates: Vec<mosquitto::Certificate> = unexpired
            .into_iter()
            .map(|c| {
                mosquitto::Certificate::new(c.device_id.to_string(), c.prefix.to_string(), c.device_in_cn, c.refused)
            })
            .collect();
        let at = OffsetDateTime::now_utc();
        let until = at + luach_pki::Duration::days(CRL_DAYS);
        let number = u64::try_from(now.timestamp_millis()).unwrap_or(0);
        let mut crl = self.pki.ca().revocation_list(&refused, at, until, number)?;
        if let Some(previous) = &self.previous_ca {
            crl.push_str(&previous.revocation_list(&refused, at, until, number)?);
        }
        let acl = mosquitto::devices_acl(&certificates, &self.rules);
        let acl_path = self.dir.join(mosquitto::DEVICES_ACL_FILE);
        let acl_changed = std::fs::read(&acl_path).ok().as_deref() != Some(acl.as_bytes());
        // The CRL first: a certificate it refuses may lose its ACL entry in the same change.
        let mut files = vec![self.write(mosquitto::CRL_FILE, crl.as_bytes(), false)?];
        files.push(if acl_changed {
            self.write(mosquitto::DEVICES_ACL_FILE, acl.as_bytes(), false)?
        } else {
            acl_path
        });
        Ok(Fleet {
            certificates: certificates.len(),
            refused: refused.len(),
            files,
            acl_changed,
        })
    }

    fn write(&self, name: &str, contents: &[u8], private: bool) -> anyhow::Result<PathBuf> {
        let path = self.dir.join(name);
        let mode = if private {
            luach_pki::FileMode::Private
        } else {
            luach_pki::FileMode::Public
        };
        luach_pki::write_atomic(&path, contents, mode).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    async fn reload(&self) -> anyhow::Result<()> {
        let Some((program, args)) = self.reload_command.split_first() else {
            return Ok(());
        };
        let run = tokio::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .with_context(|| format!("reload command {program} did not finish within 30 s"))?
            .with_context(|| format!("running reload command {program}"))?;
        if !out.status.success() {
            bail!(
                "reload command {program} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}
