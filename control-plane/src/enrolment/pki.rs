//! The installation's device CA on disk, the broker's TLS files, and CA rotation.
//!
//! Files in `pki.ca_dir` (default `<data_dir>/pki`, mode 0700):
//!
//! | file            | what                                                                  |
//! |-----------------|-----------------------------------------------------------------------|
//! | `ca.pem`, `ca.key` | the issuing device CA (key 0600), created on first start            |
//! | `broker-ca.pem` | the one CA the broker trusts for client certificates (rumqttd trusts only the first certificate of its file) |
//! | `cross.pem`     | during a rotation only: the new CA certified by the old one            |
//! | `broker.pem`, `broker.key` | the broker's server certificate chain and key (0600)         |
//! | `previous/`     | the CA before the last rotation                                       |
//!
//! Outside a rotation `broker-ca.pem` is `ca.pem`. [`rotate`] makes a new issuing CA and a
//! cross-certificate; from then on every certificate (devices and broker) is issued by the new
//! CA with the cross-certificate appended, which the broker, still trusting the old CA,
//! accepts; devices are given both CAs to trust. [`finish_rotation`] makes the broker trust the
//! new CA once every device certificate from the old one has expired.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use luach_broker::TlsFiles;
use luach_pki::{CaBundle, DeviceCa, Duration, OffsetDateTime, PkiError};
use luach_schemas::{DeviceId, TopicPrefix};

use crate::config::Config;

pub const CA_CERT_FILE: &str = luach_pki::CA_CERT_FILE;
pub const CA_KEY_FILE: &str = luach_pki::CA_KEY_FILE;
pub const BROKER_CA_FILE: &str = "broker-ca.pem";
pub const CROSS_FILE: &str = "cross.pem";
pub const BROKER_CERT_FILE: &str = "broker.pem";
pub const BROKER_KEY_FILE: &str = "broker.key";
pub const PREVIOUS_DIR: &str = "previous";

/// Names always in the broker certificate, besides `mqtt.tls_hostnames`.
const LOCAL_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// Most a device certificate is back-dated (for devices whose clock runs a little slow).
const DEVICE_BACKDATE_SECS: i64 = 300;

/// A certificate issued for a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCertificatePem {
    /// Leaf first, then the cross-certificate during a CA rotation.
    pub chain_pem: String,
    pub serial: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

/// The device CA as the running server uses it.
pub struct DevicePki {
    ca: DeviceCa,
    /// Appended to every issued certificate: the cross-certificate during a rotation, else empty.
    chain: String,
    /// The CAs devices are told to trust (the broker's and the issuing CA, deduplicated).
    trust_pem: String,
    broker: TlsFiles,
    device_lifetime_secs: i64,
}

impl std::fmt::Debug for DevicePki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevicePki")
            .field("ca", &self.ca)
            .field("rotating", &!self.chain.is_empty())
            .finish_non_exhaustive()
    }
}

fn to_chrono(t: OffsetDateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(t.unix_timestamp(), 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn to_time(t: DateTime<Utc>) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.timestamp()).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Writes `contents` atomically with the final mode (see [`luach_pki::write_atomic`]).
fn write_file(path: &Path, contents: &[u8], private: bool) -> anyhow::Result<()> {
    let mode = if private {
        luach_pki::FileMode::Private
    } else {
        luach_pki::FileMode::Public
    };
    luach_pki::write_atomic(path, contents, mode).with_context(|| format!("writing {}", path.display()))
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    crate::keys::private_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {} to its owner", dir.display()))
}

/// The CA in `dir` ([`CA_CERT_FILE`] and [`CA_KEY_FILE`]): made by `create` and saved when
/// neither file is there, loaded when both are (the key checked to be owner-only); one
/// without the other is an error. `what` names it in messages ("device CA").
pub(crate) fn open_or_create_ca(
    dir: &Path,
    what: &str,
    create: impl FnOnce() -> Result<DeviceCa, PkiError>,
) -> anyhow::Result<DeviceCa> {
    let (cert, key) = (dir.join(CA_CERT_FILE), dir.join(CA_KEY_FILE));
    match (cert.exists(), key.exists()) {
        (false, false) => {
            let ca = create().with_context(|| format!("creating the {what}"))?;
            ca.save(dir).with_context(|| format!("saving the {what}"))?;
            tracing::info!(dir = %dir.display(), subject = %ca.info().subject, what, "ca created");
        }
        (true, true) => {}
        _ => bail!(
            "{} has only one of {CA_CERT_FILE} and {CA_KEY_FILE}; restore the other or remove both",
            dir.display()
        ),
    }
    crate::keys::check_private(&key)?;
    DeviceCa::load(dir).with_context(|| format!("loading the {what} from {}", dir.display()))
}

fn new_ca(validity_days: u32) -> Result<DeviceCa, PkiError> {
    let name = format!("Luach device CA {}", Utc::now().format("%Y-%m-%d %H:%M:%S"));
    DeviceCa::generate(&name, Duration::days(i64::from(validity_days)))
}

/// The one certificate in a PEM file that must hold exactly one.
fn single_ca(path: &Path) -> anyhow::Result<String> {
    let bundle = CaBundle::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bundle.len() != 1 {
        bail!(
            "{} holds {} certificates; it must hold exactly one CA",
            path.display(),
            bundle.len()
        );
    }
    Ok(bundle.to_pem())
}

impl DevicePki {
    /// Opens the device CA in `pki.ca_dir`, creating it on first start, and makes sure the
    /// broker's files are there and current: `broker-ca.pem` (created as a copy of the CA),
    /// and a broker certificate for `localhost`, `127.0.0.1`, `::1` and `mqtt.tls_hostnames`
    /// (reissued when a name is missing, another CA issued it, or a third of its life is left).
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        let dir = config.ca_dir();
        create_private_dir(&dir)?;
        let ca = open_or_create_ca(&dir, "device CA", || new_ca(config.pki.ca_validity_days))?;
        let broker_key = dir.join(BROKER_KEY_FILE);
        if broker_key.exists() {
            crate::keys::check_private(&broker_key)?;
        }
        let broker_ca_path = dir.join(BROKER_CA_FILE);
        if !broker_ca_path.exists() {
            write_file(&broker_ca_path, ca.certificate_pem().as_bytes(), false)?;
        }
        let broker_ca = single_ca(&broker_ca_path)?;
        let cross_path = dir.join(CROSS_FILE);
        let chain = if cross_path.exists() {
            let cross = read(&cross_path)?;
            luach_pki::verify_signed_by(&cross, &broker_ca)
                .with_context(|| format!("{} is not signed by {BROKER_CA_FILE}", cross_path.display()))?;
            let info = luach_pki::inspect_certificate(&cross).context("reading the cross-certificate")?;
            if info.subject != ca.info().subject {
                bail!(
                    "{} certifies {:?}, not the issuing CA {:?}; finish or undo the rotation",
                    cross_path.display(),
                    info.subject,
                    ca.info().subject
                );
            }
            cross
        } else {
            if broker_ca.trim() != ca.certificate_pem().trim() {
                bail!(
                    "{} is not the issuing CA and there is no {CROSS_FILE}: restore {CROSS_FILE} or finish the rotation \
                     (`luach-server admin finish-device-ca-rotation`)",
                    broker_ca_path.display()
                );
            }
            String::new()
        };
        let mut trust = CaBundle::from_pem(&broker_ca).context("reading the broker's CA")?;
        trust.push(ca.certificate_pem()).context("adding the issuing CA")?;
        let pki = Self {
            ca,
            chain,
            trust_pem: trust.to_pem(),
            broker: TlsFiles {
                cert_path: dir.join(BROKER_CERT_FILE),
                key_path: dir.join(BROKER_KEY_FILE),
                ca_path: broker_ca_path,
            },
            device_lifetime_secs: i64::try_from(config.pki.device_cert_lifetime_secs).unwrap_or(i64::MAX),
        };
        pki.ensure_broker_certificate(&broker_names(config), config.pki.broker_cert_days)?;
        let left = pki.ca.info().not_after - OffsetDateTime::now_utc();
        if left < Duration::seconds(pki.device_lifetime_secs.saturating_mul(2)) {
            tracing::warn!(
                not_after = %pki.ca.info().not_after,
                "the device CA expires within two device certificate lifetimes; rotate it \
                 (`luach-server admin rotate-device-ca`)"
            );
        }
        Ok(pki)
    }

    /// The broker's TLS files (for [`luach_broker::BrokerSettings::tls`]).
    pub fn broker_files(&self) -> &TlsFiles {
        &self.broker
    }

    /// The CA certificates a device trusts (PEM; two during a rotation).
    pub fn trust_pem(&self) -> &str {
        &self.trust_pem
    }

    /// The issuing CA.
    pub fn ca(&self) -> &DeviceCa {
        &self.ca
    }

    /// Signs a device's CSR (subject O = `prefix`, CN = device id) for
    /// `pki.device_cert_lifetime_secs` (clipped to the CA's own expiry), back-dated a little for
    /// slow device clocks.
    pub fn issue(
        &self,
        csr_pem: &str,
        device: &DeviceId,
        prefix: &TopicPrefix,
        now: DateTime<Utc>,
    ) -> Result<DeviceCertificatePem, PkiError> {
        let now = to_time(now);
        let backdate = Duration::seconds(DEVICE_BACKDATE_SECS.min(self.device_lifetime_secs / 4));
        let not_after = (now + Duration::seconds(self.device_lifetime_secs)).min(self.ca.info().not_after);
        let issued =
            self.ca
                .issue_device_certificate(csr_pem, device.as_str(), prefix.as_str(), now - backdate, not_after)?;
        Ok(DeviceCertificatePem {
            chain_pem: format!("{}{}", issued.pem, self.chain),
            serial: issued.serial,
            not_before: to_chrono(issued.not_before),
            not_after: to_chrono(issued.not_after),
        })
    }

    fn broker_certificate_current(&self, names: &[String], now: OffsetDateTime) -> bool {
        let (Ok(cert), Ok(key)) = (
            std::fs::read_to_string(&self.broker.cert_path),
            std::fs::read_to_string(&self.broker.key_path).map(luach_pki::Zeroizing::new),
        ) else {
            return false;
        };
        let Ok(chain) = luach_pki::inspect_chain(&cert) else {
            return false;
        };
        let Some(leaf) = chain.first() else {
            return false;
        };
        let covered = names.iter().all(|name| match name.parse::<std::net::IpAddr>() {
            Ok(ip) => leaf.ip_addresses.contains(&ip),
            Err(_) => leaf.dns_names.iter().any(|d| d.eq_ignore_ascii_case(name)),
        });
        let lifetime = leaf.not_after - leaf.not_before;
        let rotating = !self.chain.is_empty();
        luach_pki::verify_key_matches(&cert, &key).is_ok()
            && leaf.issuer == self.ca.info().subject
            && leaf.server_auth
            && covered
            && leaf.remaining(now) > lifetime / 3
            // The cross-certificate is part of the chain exactly while a rotation runs.
            && (chain.len() > 1) == rotating
    }

    fn ensure_broker_certificate(&self, names: &[String], days: u32) -> anyhow::Result<()> {
        let now = OffsetDateTime::now_utc();
        if self.broker_certificate_current(names, now) {
            return Ok(());
        }
        let ca_left = self.ca.info().not_after - now - luach_pki::BACKDATE;
        let validity = Duration::days(i64::from(days)).min(ca_left);
        let issued = self
            .ca
            .issue_server_certificate(names, validity)
            .context("issuing the broker's certificate (check mqtt.tls_hostnames)")?;
        write_file(&self.broker.key_path, issued.key_pem.as_bytes(), true)?;
        let chain = format!("{}{}", issued.certificate.pem, self.chain);
        write_file(&self.broker.cert_path, chain.as_bytes(), false)?;
        tracing::info!(names = ?names, not_after = %issued.certificate.not_after, "broker tls certificate issued");
        Ok(())
    }
}

/// The broker certificate's names: the local ones, then `mqtt.tls_hostnames`, then in external
/// mode the host the control plane connects to, without repeats.
fn broker_names(config: &Config) -> Vec<String> {
    let mut names: Vec<String> = LOCAL_NAMES.iter().map(|n| (*n).to_owned()).collect();
    let external = (config.mqtt.mode == luach_broker::BrokerMode::External).then_some(&config.mqtt.external.host);
    for name in config.mqtt.tls_hostnames.iter().chain(external) {
        let name = name.trim().to_owned();
        if !names.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
            names.push(name);
        }
    }
    names
}

/// What [`rotate`] did.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub new_subject: String,
    pub new_not_after: OffsetDateTime,
    /// Earliest time [`finish_rotation`] succeeds without `force`.
    pub finish_after: DateTime<Utc>,
}

fn ca_dir_of(config: &Config) -> PathBuf {
    config.ca_dir()
}

/// Starts a CA rotation: a new issuing CA, certified by the current one (`cross.pem`); the
/// current CA is kept in `previous/` and stays the broker's trust anchor. Restart the server(s)
/// afterwards. Refused while a rotation runs.
pub fn rotate(config: &Config) -> anyhow::Result<Rotation> {
    let dir = ca_dir_of(config);
    let cross_path = dir.join(CROSS_FILE);
    if cross_path.exists() {
        bail!(
            "a rotation is already running ({} exists); finish it first",
            cross_path.display()
        );
    }
    let old = DeviceCa::load(&dir).with_context(|| format!("loading the device CA from {}", dir.display()))?;
    let broker_ca = single_ca(&dir.join(BROKER_CA_FILE))?;
    if broker_ca.trim() != old.certificate_pem().trim() {
        bail!("{BROKER_CA_FILE} is not the issuing CA; the CA directory is inconsistent");
    }
    let new = new_ca(config.pki.ca_validity_days).context("creating the new device CA")?;
    let cross = old
        .cross_certify(new.certificate_pem())
        .context("cross-certifying the new CA")?;
    let previous = dir.join(PREVIOUS_DIR);
    create_private_dir(&previous)?;
    old.save(&previous).context("keeping the old CA")?;
    write_file(&cross_path, cross.pem.as_bytes(), false)?;
    new.save(&dir).context("saving the new CA")?;
    let lifetime = chrono::Duration::seconds(i64::try_from(config.pki.device_cert_lifetime_secs).unwrap_or(i64::MAX));
    Ok(Rotation {
        new_subject: new.info().subject.clone(),
        new_not_after: new.info().not_after,
        finish_after: Utc::now() + lifetime,
    })
}

/// Ends a rotation: the broker trusts the new CA (rumqttd re-reads its CA file for every
/// connection) and `cross.pem` is removed. Refused until a device certificate lifetime has
/// passed since the rotation began (every certificate of the old CA has expired by then),
/// unless `force`.
pub fn finish_rotation(config: &Config, force: bool) -> anyhow::Result<()> {
    let dir = ca_dir_of(config);
    let cross_path = dir.join(CROSS_FILE);
    if !cross_path.exists() {
        bail!("no rotation is running ({} does not exist)", cross_path.display());
    }
    let cross = luach_pki::inspect_certificate(&read(&cross_path)?).context("reading the cross-certificate")?;
    let ca = DeviceCa::load(&dir).with_context(|| format!("loading the device CA from {}", dir.display()))?;
    // The cross-certificate starts when the new CA does (created minus BACKDATE).
    let started = to_chrono(cross.not_before + luach_pki::BACKDATE);
    let lifetime = chrono::Duration::seconds(i64::try_from(config.pki.device_cert_lifetime_secs).unwrap_or(i64::MAX));
    let safe = started + lifetime;
    if Utc::now() < safe && !force {
        bail!(
            "certificates from the old CA may be valid until {safe}; finish after that (or pass --force to cut off \
             devices that have not renewed yet)"
        );
    }
    write_file(&dir.join(BROKER_CA_FILE), ca.certificate_pem().as_bytes(), false)?;
    std::fs::remove_file(&cross_path).with_context(|| format!("removing {}", cross_path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> Config {
        let mut c = Config {
            data_dir: dir.to_owned(),
            ..Config::default()
        };
        c.mqtt.tls_hostnames = vec!["mqtt.example.org".into(), "192.0.2.7".into()];
        c
    }

    fn device_csr() -> (luach_pki::DeviceKey, String) {
        let key = luach_pki::DeviceKey::generate().expect("key");
        let csr = key.csr_pem("dev1").expect("csr");
        (key, csr)
    }

    #[test]
    fn first_start_creates_everything_and_second_start_keeps_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = config(dir.path());
        let pki = DevicePki::open(&c).expect("open");
        let ca_dir = dir.path().join("pki");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |f: &str| std::fs::metadata(ca_dir.join(f)).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(CA_KEY_FILE), 0o600);
            assert_eq!(mode(BROKER_KEY_FILE), 0o600);
        }
        let broker = std::fs::read_to_string(ca_dir.join(BROKER_CERT_FILE)).expect("broker cert");
        let leaf = luach_pki::inspect_certificate(&broker).expect("one certificate");
        assert!(leaf.dns_names.contains(&"mqtt.example.org".to_owned()), "{leaf:?}");
        assert!(leaf.ip_addresses.contains(&"127.0.0.1".parse().expect("ip")));
        assert_eq!(pki.trust_pem().trim(), pki.ca().certificate_pem().trim());

        // Restart: same CA, same broker certificate; a new host name reissues it.
        let again = DevicePki::open(&c).expect("reopen");
        assert_eq!(again.ca().certificate_pem(), pki.ca().certificate_pem());
        assert_eq!(
            std::fs::read_to_string(ca_dir.join(BROKER_CERT_FILE)).expect("cert"),
            broker
        );
        let mut more = c.clone();
        more.mqtt.tls_hostnames.push("screens.example.org".into());
        DevicePki::open(&more).expect("reopen with a new name");
        let reissued = std::fs::read_to_string(ca_dir.join(BROKER_CERT_FILE)).expect("cert");
        assert_ne!(reissued, broker);

        // Device certificates: the topic prefix as O and CN, the device id as OU, within the
        // configured lifetime.
        let (key, csr) = device_csr();
        let id = DeviceId::parse("dev1").expect("id");
        let prefix = TopicPrefix::parse("p4x2").expect("prefix");
        let now = Utc::now();
        let issued = pki.issue(&csr, &id, &prefix, now).expect("issue");
        key.check_certificate(&issued.chain_pem).expect("certifies the key");
        let info = CaBundle::from_pem(pki.ca().certificate_pem())
            .expect("bundle")
            .verify_device_certificate(&issued.chain_pem, luach_pki::OffsetDateTime::now_utc())
            .expect("a device certificate");
        assert_eq!(
            (
                info.organisation.as_deref(),
                info.device_id(),
                info.common_name.as_deref()
            ),
            (Some("p4x2"), Some("dev1"), Some("p4x2"))
        );
        assert!(issued.not_after <= now + chrono::Duration::days(30) + chrono::Duration::seconds(1));
        assert!(issued.not_before <= now);
    }

    #[test]
    fn a_half_written_ca_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = config(dir.path());
        DevicePki::open(&c).expect("open");
        std::fs::remove_file(dir.path().join("pki").join(CA_CERT_FILE)).expect("remove");
        let err = DevicePki::open(&c).expect_err("half a CA");
        assert!(err.to_string().contains("only one of"), "{err}");
    }

    #[test]
    fn rotation_issues_from_the_new_ca_chained_to_the_old_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = config(dir.path());
        c.pki.device_cert_lifetime_secs = 10;
        let before = DevicePki::open(&c).expect("open");
        let old_pem = before.ca().certificate_pem().to_owned();
        let rotation = rotate(&c).expect("rotate");
        assert!(rotate(&c).is_err(), "a second rotation while one runs");

        let during = DevicePki::open(&c).expect("open during rotation");
        assert_ne!(during.ca().certificate_pem(), old_pem);
        assert_eq!(during.trust_pem().matches("BEGIN CERTIFICATE").count(), 2);
        let (_, csr) = device_csr();
        let issued = during
            .issue(
                &csr,
                &DeviceId::parse("dev1").expect("id"),
                &TopicPrefix::parse("dev1").expect("prefix"),
                Utc::now(),
            )
            .expect("issue");
        let chain = luach_pki::inspect_chain(&issued.chain_pem).expect("chain");
        assert_eq!(chain.len(), 2, "leaf and cross-certificate");
        // The broker still trusts only the old CA, and the chain leads to it.
        let ca_dir = dir.path().join("pki");
        let broker_ca = std::fs::read_to_string(ca_dir.join(BROKER_CA_FILE)).expect("broker ca");
        assert_eq!(broker_ca.trim(), old_pem.trim());
        let cross = std::fs::read_to_string(ca_dir.join(CROSS_FILE)).expect("cross");
        luach_pki::verify_signed_by(&cross, &old_pem).expect("cross signed by the old CA");
        let broker = std::fs::read_to_string(ca_dir.join(BROKER_CERT_FILE)).expect("broker");
        assert_eq!(luach_pki::inspect_chain(&broker).expect("chain").len(), 2);

        // Too early to finish, unless forced.
        assert!(rotation.finish_after > Utc::now() - chrono::Duration::seconds(1));
        let mut long = c.clone();
        long.pki.device_cert_lifetime_secs = 86_400;
        assert!(finish_rotation(&long, false).is_err());
        finish_rotation(&long, true).expect("forced finish");
        let after = DevicePki::open(&c).expect("open after rotation");
        assert_eq!(after.trust_pem().matches("BEGIN CERTIFICATE").count(), 1);
        let broker = std::fs::read_to_string(ca_dir.join(BROKER_CERT_FILE)).expect("broker");
        assert_eq!(luach_pki::inspect_chain(&broker).expect("chain").len(), 1);
        assert!(finish_rotation(&c, true).is_err(), "nothing to finish");
    }
}
