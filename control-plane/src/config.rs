//! Typed configuration: defaults → TOML file → `LUACH_*` environment → command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use luach_broker::BrokerSettings;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Everything `luach-server` can be configured with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub http: HttpConfig,
    pub mqtt: BrokerSettings,
    /// Where the SQLite file and other local state live.
    pub data_dir: PathBuf,
    pub store: StoreConfig,
    /// `redis://…` to share live events between replicas; absent = in-process only.
    #[serde(serialize_with = "serialize_secret_opt")]
    pub redis: Option<SecretString>,
    pub presence: PresenceConfig,
    pub ingest: IngestConfig,
    pub log: LogConfig,
    pub auth: AuthConfig,
    pub audit: AuditConfig,
    pub pki: PkiConfig,
    pub enrolment: EnrolmentConfig,
    pub quotas: QuotaConfig,
    pub commands: CommandsConfig,
    pub live: LiveConfig,
    pub alerts: AlertsConfig,
    pub notify: NotifyConfig,
    pub screenshots: ScreenshotsConfig,
    pub telemetry: TelemetryConfig,
    pub releases: ReleasesConfig,
}

/// Signed agent releases (see `releases.rs` and docs/ota.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReleasesConfig {
    /// Where releases are kept; absent: `<data_dir>/releases`. Replicas must share it.
    pub dir: Option<PathBuf>,
    /// The release root (`root.pub` from `luach-ota keygen`), the one the screens trust.
    /// Absent: releases cannot be uploaded.
    pub trusted_root: Option<PathBuf>,
    /// Largest artifact accepted, in bytes (at most `luach-ota`'s 2 GiB).
    pub max_artifact_bytes: u64,
}

impl Default for ReleasesConfig {
    fn default() -> Self {
        Self {
            dir: None,
            trusted_root: None,
            max_artifact_bytes: 512 * 1024 * 1024,
        }
    }
}

/// Telemetry history kept from what screens send.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Days every record is kept as sent; later, metrics are kept per hour. Records that
    /// arrive older than this are not stored (1–365).
    pub raw_retention_days: u32,
    /// Days hourly metrics are kept (at least `raw_retention_days`, at most 3650).
    pub hourly_retention_days: u32,
    /// Seconds between retention sweeps (60–86400): telemetry past the raw retention rolled
    /// up, and finished jobs and screenshots past theirs deleted.
    pub compact_every_secs: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            raw_retention_days: 7,
            hourly_retention_days: 400,
            compact_every_secs: 3_600,
        }
    }
}

impl TelemetryConfig {
    pub fn retention(&self) -> crate::store::Retention {
        crate::store::Retention {
            raw: chrono::Duration::days(i64::from(self.raw_retention_days)),
            hourly: chrono::Duration::days(i64::from(self.hourly_retention_days)),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// How often the audit chain heads are written to `<data_dir>/audit/checkpoint.json`
    /// (and logged), in seconds. The checkpoint only moves forward along each chain.
    pub checkpoint_secs: u64,
    /// HMAC key sealing audit records (at least 32 bytes). Absent: a random key is created
    /// once in `<data_dir>/audit/chain.key`. Keep it out of the database's backups; replicas
    /// must share it.
    #[serde(serialize_with = "serialize_hidden_opt")]
    pub chain_key: Option<SecretString>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            checkpoint_secs: 10,
            chain_key: None,
        }
    }
}

/// Default limits of every tenant; a super admin sets a tenant's own with
/// `PUT /api/v1/tenants/{id}/quota`. 0 means unlimited.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaConfig {
    /// Screens per tenant.
    pub max_devices: u64,
    /// API requests per minute by a tenant's users and tokens together (screens' bundle
    /// fetches are not counted).
    pub api_requests_per_minute: u64,
    /// Bytes of stored content per tenant (the JSON of synagogues, announcements, plaques and
    /// the programme).
    pub max_content_bytes: u64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            max_devices: 0,
            api_requests_per_minute: 3_000,
            max_content_bytes: 64 * 1024 * 1024,
        }
    }
}

impl QuotaConfig {
    /// As a quota (0 = no limit).
    pub fn as_quota(&self) -> crate::store::Quota {
        let limit = |v: u64| (v > 0).then_some(v);
        crate::store::Quota {
            max_devices: limit(self.max_devices),
            api_requests_per_minute: limit(self.api_requests_per_minute),
            max_content_bytes: limit(self.max_content_bytes),
        }
    }
}

/// Commands sent to screens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommandsConfig {
    /// Most commands awaiting an acknowledgement per tenant (the installation holds at most
    /// 10,000 in all).
    pub max_pending_per_tenant: usize,
    /// Days a finished job (completed, aborted, cancelled) and its executions are kept after
    /// it ended (1–3650).
    pub job_retention_days: u32,
}

/// Screenshots uploaded by screens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScreenshotsConfig {
    /// Where they are kept; absent: `<data_dir>/screenshots`. Replicas must share it.
    pub dir: Option<PathBuf>,
    /// Newest screenshots kept per screen; older ones are deleted as new ones arrive.
    pub keep_per_device: usize,
    /// Largest upload accepted, in bytes (a 4K board is about 1 MB).
    pub max_bytes: usize,
    /// Days a screenshot is kept, however few its screen has (1–3650).
    pub retention_days: u32,
}

impl Default for ScreenshotsConfig {
    fn default() -> Self {
        Self {
            dir: None,
            keep_per_device: 20,
            max_bytes: 8 * 1024 * 1024,
            retention_days: 90,
        }
    }
}

impl Default for CommandsConfig {
    fn default() -> Self {
        Self {
            max_pending_per_tenant: 1_000,
            job_retention_days: 90,
        }
    }
}

/// Live connections (Socket.IO).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// How often every live connection's credentials are checked again, in seconds (a
    /// connection also ends at once when its user's credentials change on this replica).
    pub recheck_secs: u64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self { recheck_secs: 5 }
    }
}

/// Alert evaluation (see `crate::alerts`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// How often every tenant's rules are evaluated against its screens, in seconds (1–300).
    pub eval_secs: u64,
    /// Resolved alerts are kept this many days (1–3650).
    pub keep_resolved_days: u32,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            eval_secs: 15,
            keep_resolved_days: 90,
        }
    }
}

/// Notifications (see `crate::notify` and docs/operations.md, "Notifications").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Whether this replica sends queued messages (one replica at a time does, under a lease).
    pub dispatch: bool,
    /// How often the outbox is read for due messages, in milliseconds (50–60000).
    pub poll_ms: u64,
    /// Due messages read per pass (1–1000).
    pub batch: u32,
    /// Messages sent at once (1–256).
    pub concurrency: usize,
    /// The first retry waits about this long, in seconds; each next one twice as long (1–3600).
    pub retry_base_secs: u64,
    /// No retry waits longer, in seconds (at least `retry_base_secs`, at most a day).
    pub retry_max_secs: u64,
    /// Attempts before a message fails for good (1–50); a webhook channel is then disabled.
    pub max_attempts: u32,
    /// One attempt's time limit, in seconds (1–120).
    pub timeout_secs: u64,
    /// Sent and failed messages are kept this many days (1–3650).
    pub keep_days: u32,
    /// How often congregation notices (yahrzeit and aliyah reminders) are looked for, in
    /// seconds (1–86400).
    pub notices_every_secs: u64,
    /// Where email goes out; absent: email channels cannot be made.
    pub smtp: Option<SmtpConfig>,
    /// Twilio's Messages API; absent: SMS and WhatsApp channels cannot be made.
    pub twilio: Option<TwilioConfig>,
    pub webhooks: WebhookConfig,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            dispatch: true,
            poll_ms: 1_000,
            batch: 100,
            concurrency: 16,
            retry_base_secs: 30,
            retry_max_secs: 3_600,
            max_attempts: 16,
            timeout_secs: 15,
            keep_days: 30,
            notices_every_secs: 3_600,
            smtp: None,
            twilio: None,
            webhooks: WebhookConfig::default(),
        }
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// TLS from the first byte (port 465).
    Tls,
    /// STARTTLS, required (port 587).
    #[default]
    Starttls,
    /// None: only for a relay on the same host or network.
    None,
}

/// The SMTP server email goes out through.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// Default: 465 for `tls`, 587 for `starttls`, 25 for `none`.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub security: SmtpSecurity,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default, serialize_with = "serialize_hidden_opt")]
    pub password: Option<SecretString>,
    /// The sender, e.g. `Luach <alerts@example.org>`.
    pub from: String,
}

/// Twilio's Messages API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    /// Default `https://api.twilio.com` (another base URL serves a test double or a proxy).
    #[serde(default = "twilio_base")]
    pub base_url: String,
    pub account_sid: String,
    #[serde(serialize_with = "serialize_hidden")]
    pub auth_token: SecretString,
    /// The sender number of SMS (E.164); absent: SMS channels cannot be made.
    #[serde(default)]
    pub sms_from: Option<String>,
    /// The WhatsApp sender number (E.164); absent: WhatsApp channels cannot be made.
    #[serde(default)]
    pub whatsapp_from: Option<String>,
}

fn twilio_base() -> String {
    "https://api.twilio.com".to_owned()
}

/// Where webhooks may go.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Allow loopback, private, link-local and other internal addresses (a closed network).
    pub allow_private: bool,
    /// Internal networks allowed nonetheless (CIDR, e.g. `10.20.0.0/16` for an in-house
    /// receiver); everything else internal stays refused.
    pub allow_networks: Vec<String>,
}

impl NotifyConfig {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        let n = self;
        let range = |ok: bool, key: &'static str, what: &str| {
            if ok {
                Ok(())
            } else {
                Err((key, format!("must be {what}")))
            }
        };
        range(
            (50..=60_000).contains(&n.poll_ms),
            "notify.poll_ms",
            "between 50 and 60000",
        )?;
        range((1..=1_000).contains(&n.batch), "notify.batch", "between 1 and 1000")?;
        range(
            (1..=256).contains(&n.concurrency),
            "notify.concurrency",
            "between 1 and 256",
        )?;
        range(
            (1..=3_600).contains(&n.retry_base_secs),
            "notify.retry_base_secs",
            "between 1 and 3600",
        )?;
        range(
            (n.retry_base_secs..=86_400).contains(&n.retry_max_secs),
            "notify.retry_max_secs",
            "between retry_base_secs and 86400",
        )?;
        range(
            (1..=50).contains(&n.max_attempts),
            "notify.max_attempts",
            "between 1 and 50",
        )?;
        range(
            (1..=120).contains(&n.timeout_secs),
            "notify.timeout_secs",
            "between 1 and 120",
        )?;
        range(
            (1..=3_650).contains(&n.keep_days),
            "notify.keep_days",
            "between 1 and 3650",
        )?;
        range(
            (1..=86_400).contains(&n.notices_every_secs),
            "notify.notices_every_secs",
            "between 1 and 86400",
        )?;
        if let Some(smtp) = &n.smtp {
            range(!smtp.host.trim().is_empty(), "notify.smtp.host", "a host name")?;
            if smtp.from.parse::<lettre::message::Mailbox>().is_err() {
                return Err((
                    "notify.smtp.from",
                    "must be a mailbox, e.g. `Luach <alerts@example.org>`".into(),
                ));
            }
        }
        if let Some(t) = &n.twilio {
            if reqwest::Url::parse(&t.base_url).map(|u| u.scheme() == "https" || u.scheme() == "http") != Ok(true) {
                return Err(("notify.twilio.base_url", "must be an http(s) URL".into()));
            }
            range(
                !t.account_sid.is_empty() && t.account_sid.bytes().all(|b| b.is_ascii_alphanumeric()),
                "notify.twilio.account_sid",
                "an account SID (letters and digits)",
            )?;
        }
        for net in &n.webhooks.allow_networks {
            if net.parse::<ipnet::IpNet>().is_err() {
                return Err((
                    "notify.webhooks.allow_networks",
                    format!("{net:?} is not a network in CIDR form"),
                ));
            }
        }
        Ok(())
    }
}

/// The device CA and the certificates it issues (see [`crate::enrolment`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PkiConfig {
    /// Directory of the device CA (`ca.pem`, `ca.key` 0600), the broker's certificate and the
    /// broker's client-CA file; created on first start. Absent: `<data_dir>/pki`. Replicas
    /// must share it (or a copy).
    pub ca_dir: Option<PathBuf>,
    /// Lifetime of a device certificate, in seconds (default 30 days). Short, because the
    /// broker cannot drop a connected device or check revocation: expiry is what finally
    /// locks out a revoked device. Agents renew after 2/3 of it.
    pub device_cert_lifetime_secs: u64,
    /// Lifetime of a device CA created on first start (or by `admin rotate-device-ca`), in days.
    pub ca_validity_days: u32,
    /// Lifetime of the broker's TLS certificate, in days; it is reissued at start-up once
    /// less than a third of it is left, or when `mqtt.tls_hostnames` changes.
    pub broker_cert_days: u32,
}

/// Enrolment of screens: claim codes, polling, bulk tokens, rate limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrolmentConfig {
    /// How long a claim code can be claimed, in seconds.
    pub claim_ttl_secs: u64,
    /// Most pending (unclaimed, unexpired) requests; beyond it new requests get 429.
    pub max_pending: u64,
    /// Most pending requests from one client address (an IPv4 address or an IPv6 /64).
    pub max_pending_per_source: u64,
    /// Requests without a token, and failed attempts (bad token, poll secret or renewal),
    /// accepted per client IP per minute.
    pub requests_per_ip_per_minute: u64,
    /// Claim attempts per user per minute (a claim code has 40 bits; this keeps guessing slow).
    pub claims_per_user_per_minute: u64,
    /// Renewals accepted per device per hour.
    pub renewals_per_device_per_hour: u64,
    /// Seconds a device waits between polls (told to it in every answer).
    pub poll_after_secs: u64,
    /// Longest lifetime of a bulk enrolment token, in days.
    pub token_max_days: u32,
    /// Most devices one bulk enrolment token may enrol.
    pub token_max_uses: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// HMAC key for access tokens (at least 32 bytes). Absent: a random key is created once in
    /// `<data_dir>/auth/jwt.key`. Replicas behind one load balancer must share one key.
    #[serde(serialize_with = "serialize_hidden_opt")]
    pub jwt_secret: Option<SecretString>,
    /// Lifetime of an access token, in seconds.
    pub access_ttl_secs: u64,
    /// Lifetime of a login session's refresh token, in seconds (each refresh issues a new one).
    pub refresh_ttl_secs: u64,
    /// Longest lifetime of a personal access token, in days.
    pub personal_token_max_days: u32,
    /// Failed logins for one email within `lockout_secs` before further attempts are refused
    /// until the window ends.
    pub max_failed_logins: u64,
    pub lockout_secs: u64,
    /// Login attempts accepted per client IP per minute.
    pub login_attempts_per_ip_per_minute: u64,
    /// Mark the refresh cookie `Secure` (browsers then send it over HTTPS and to localhost only).
    pub secure_cookie: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub addr: SocketAddr,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Built dashboard assets (control-plane/web/dist); absent = API only.
    pub web_dir: Option<PathBuf>,
    /// MQTT address agents are told to use by `/api/v1/agent/bootstrap` (`host:port`); defaults
    /// to the HTTP request's host and the broker's port.
    pub public_mqtt: Option<String>,
    /// Browser origins (`https://admin.example.org`) allowed to call the API from another
    /// site, with credentials. Empty: same-origin only (no CORS headers at all).
    pub cors_origins: Vec<String>,
    /// Mutual-TLS MQTT address agents are told to use (`host:port`, the host must be one of the
    /// broker certificate's names); defaults to the HTTP request's host and the TLS port.
    pub public_mqtt_tls: Option<String>,
    /// Reverse proxies (addresses or CIDR networks) whose `Forwarded` / `X-Forwarded-For`
    /// headers name the client for rate limits and logs. Empty: the peer address is the client.
    pub trusted_proxies: Vec<String>,
    /// A client must send a request's headers within this many seconds (also the idle time
    /// of a kept-alive connection).
    pub header_read_timeout_secs: u64,
    /// Most HTTP connections open at once; further ones are closed at accept.
    pub max_connections: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Empty = SQLite file `luach.sqlite3` in the data directory; `sqlite:PATH`; `mongodb://…`.
    #[serde(serialize_with = "serialize_secret")]
    pub url: SecretString,
    /// MongoDB database name.
    pub database: String,
    /// SQLite: connections serving reads beside the one writer.
    pub sqlite_readers: usize,
    /// Apply pending schema migrations at start-up (otherwise run `luach-server migrate`).
    pub migrate_on_start: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PresenceConfig {
    /// A device with no message for this many seconds is marked offline.
    pub offline_after_secs: u64,
    /// Register devices that say hello but are not yet known, in the built-in tenant.
    /// Development convenience until enrolment; off in production.
    pub auto_register: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Messages waiting between the broker link and the store writer; when full, the link
    /// reader waits and messages wait in the broker (`mqtt.ingest_buffer_bytes`).
    pub queue_capacity: usize,
    /// Most presence writes per store transaction.
    pub batch_max: usize,
    /// Longest a message waits before its batch is written, in milliseconds.
    pub flush_interval_ms: u64,
    /// Bad payloads are logged at most once per device per this many seconds (always counted).
    pub bad_payload_log_interval_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `json` or `pretty`.
    pub format: String,
    /// tracing filter directive, e.g. `info,luach_control_plane=debug`.
    pub filter: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: HttpConfig::default(),
            mqtt: BrokerSettings::default(),
            data_dir: PathBuf::from("./luach-data"),
            store: StoreConfig::default(),
            redis: None,
            presence: PresenceConfig::default(),
            ingest: IngestConfig::default(),
            log: LogConfig::default(),
            auth: AuthConfig::default(),
            audit: AuditConfig::default(),
            pki: PkiConfig::default(),
            enrolment: EnrolmentConfig::default(),
            quotas: QuotaConfig::default(),
            commands: CommandsConfig::default(),
            live: LiveConfig::default(),
            alerts: AlertsConfig::default(),
            notify: NotifyConfig::default(),
            screenshots: ScreenshotsConfig::default(),
            telemetry: TelemetryConfig::default(),
            releases: ReleasesConfig::default(),
        }
    }
}

impl Default for PkiConfig {
    fn default() -> Self {
        Self {
            ca_dir: None,
            device_cert_lifetime_secs: 30 * 86_400,
            ca_validity_days: 3_650,
            broker_cert_days: 365,
        }
    }
}

impl Default for EnrolmentConfig {
    fn default() -> Self {
        Self {
            claim_ttl_secs: 900,
            max_pending: 10_000,
            max_pending_per_source: 20,
            requests_per_ip_per_minute: 30,
            claims_per_user_per_minute: 30,
            renewals_per_device_per_hour: 10,
            poll_after_secs: 3,
            token_max_days: 365,
            token_max_uses: 100_000,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            access_ttl_secs: 900,
            refresh_ttl_secs: 30 * 86_400,
            personal_token_max_days: 366,
            max_failed_logins: 5,
            lockout_secs: 900,
            login_attempts_per_ip_per_minute: 30,
            secure_cookie: true,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            body_limit_bytes: 1024 * 1024,
            web_dir: None,
            public_mqtt: None,
            cors_origins: Vec::new(),
            public_mqtt_tls: None,
            trusted_proxies: Vec::new(),
            header_read_timeout_secs: 30,
            max_connections: 10_000,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from(""),
            database: "luach".into(),
            sqlite_readers: 4,
            migrate_on_start: true,
        }
    }
}

impl Default for PresenceConfig {
    fn default() -> Self {
        Self {
            offline_after_secs: 90,
            auto_register: true,
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 16_384,
            batch_max: 2_000,
            flush_interval_ms: 100,
            bad_payload_log_interval_secs: 60,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "json".into(),
            // rumqttd logs every connection at info level: too much for a fleet.
            filter: "info,rumqttd=warn".into(),
        }
    }
}

fn serialize_secret<S: serde::Serializer>(s: &SecretString, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(&redact_url(s.expose_secret()))
}

fn serialize_secret_opt<S: serde::Serializer>(s: &Option<SecretString>, ser: S) -> Result<S::Ok, S::Error> {
    match s {
        Some(s) => serialize_secret(s, ser),
        None => ser.serialize_none(),
    }
}

fn serialize_hidden<S: serde::Serializer>(_: &SecretString, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str("***")
}

/// A secret that is not a URL: shown only as `***`.
fn serialize_hidden_opt<S: serde::Serializer>(s: &Option<SecretString>, ser: S) -> Result<S::Ok, S::Error> {
    match s {
        Some(_) => ser.serialize_str("***"),
        None => ser.serialize_none(),
    }
}

/// `host:port` with a non-empty host and a port number (IPv6 hosts in brackets).
fn is_host_port(s: &str) -> bool {
    s.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

/// Hides the password of `scheme://user:password@host` URLs; other text passes through.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.rsplit_once('@')
    {
        let user = userinfo.split(':').next().unwrap_or("");
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_owned()
}

/// Configuration errors name the key that is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

impl Config {
    /// Loads defaults, then `file` (if given, it must exist), then `LUACH_*` environment
    /// variables (`LUACH_HTTP__ADDR`, `LUACH_STORE__URL`, …), then `overrides` (flags).
    pub fn load(file: Option<&Path>, overrides: Figment) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Invalid {
                    key: "--config",
                    message: format!("file {} does not exist", file.display()),
                });
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        let config: Config = figment
            .merge(Self::env())
            .merge(overrides)
            .extract()
            .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// `LUACH_*` variables for the configuration's own top-level keys. Other `LUACH_` names
    /// (the agent's `LUACH_SERVER`, tooling's `LUACH_PYTHON`, …) belong to other programs and
    /// are not configuration errors; a misspelt key *below* a known one still is.
    fn env() -> Env {
        Env::prefixed("LUACH_")
            .split("__")
            .filter(|key| Self::own_key(key.as_str()))
    }

    /// Whether `key` (`section.field`, any case) names one of the configuration's sections.
    /// The sections are read off the configuration itself, so a new one is reachable from the
    /// environment without a list to keep in step.
    fn own_key(key: &str) -> bool {
        let key = key.to_ascii_lowercase();
        let top = key.split('.').next().unwrap_or("");
        matches!(serde_json::to_value(Config::default()), Ok(serde_json::Value::Object(map)) if map.contains_key(top))
    }

    /// Start-up validation beyond what types express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.to_owned(),
            })
        };
        if let Err(m) = self.mqtt.validate() {
            return invalid("mqtt", &m);
        }
        if self.mqtt.mode == luach_broker::BrokerMode::External && self.http.public_mqtt_tls.is_none() {
            return invalid(
                "http.public_mqtt_tls",
                "is required with mqtt.mode = \"external\": the host:port of the external broker's device listener, \
                 which enrolled screens are sent to",
            );
        }
        if self.presence.offline_after_secs < 2 {
            return invalid("presence.offline_after_secs", "must be at least 2");
        }
        if self.ingest.queue_capacity == 0 || self.ingest.batch_max == 0 {
            return invalid("ingest", "queue_capacity and batch_max must be positive");
        }
        if self.http.body_limit_bytes < 1024 {
            return invalid("http.body_limit_bytes", "must be at least 1024");
        }
        if !(1..=luach_ota::MAX_ARTIFACT_BYTES).contains(&self.releases.max_artifact_bytes) {
            return invalid("releases.max_artifact_bytes", "must be 1 byte–2 GiB");
        }
        if self.screenshots.keep_per_device == 0 || self.screenshots.keep_per_device > 1_000 {
            return invalid("screenshots.keep_per_device", "must be 1–1000");
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.screenshots.max_bytes) {
            return invalid("screenshots.max_bytes", "must be 1 KiB–64 MiB");
        }
        if !(1..=3_650).contains(&self.screenshots.retention_days) {
            return invalid("screenshots.retention_days", "must be 1–3650");
        }
        if !(1..=3_650).contains(&self.commands.job_retention_days) {
            return invalid("commands.job_retention_days", "must be 1–3650");
        }
        let t = &self.telemetry;
        if !(1..=365).contains(&t.raw_retention_days) {
            return invalid("telemetry.raw_retention_days", "must be 1–365");
        }
        if !(t.raw_retention_days..=3_650).contains(&t.hourly_retention_days) {
            return invalid(
                "telemetry.hourly_retention_days",
                "must be at least telemetry.raw_retention_days and at most 3650",
            );
        }
        if !(60..=86_400).contains(&t.compact_every_secs) {
            return invalid("telemetry.compact_every_secs", "must be 60–86400");
        }
        if !matches!(self.log.format.as_str(), "json" | "pretty") {
            return invalid("log.format", "must be `json` or `pretty`");
        }
        let url = self.store.url.expose_secret();
        if !(url.is_empty() || crate::store::is_mongodb_url(url) || url.starts_with("sqlite:")) {
            return invalid(
                "store.url",
                "must be empty, `sqlite:PATH`, `mongodb://…` or `mongodb+srv://…`",
            );
        }
        if self.audit.checkpoint_secs == 0 {
            return invalid("audit.checkpoint_secs", "must be at least 1");
        }
        if let Some(key) = &self.audit.chain_key
            && key.expose_secret().len() < 32
        {
            return invalid("audit.chain_key", "must be at least 32 bytes");
        }
        if let Err(m) = crate::auth::TrustedProxies::parse(&self.http.trusted_proxies) {
            return invalid("http.trusted_proxies", &m);
        }
        if self.http.header_read_timeout_secs == 0 || self.http.max_connections == 0 {
            return invalid("http", "header_read_timeout_secs and max_connections must be positive");
        }
        if !(1..=64).contains(&self.store.sqlite_readers) {
            return invalid("store.sqlite_readers", "must be between 1 and 64");
        }
        if self.commands.max_pending_per_tenant == 0 {
            return invalid("commands.max_pending_per_tenant", "must be positive");
        }
        if self.live.recheck_secs == 0 {
            return invalid("live.recheck_secs", "must be at least 1");
        }
        if !(1..=300).contains(&self.alerts.eval_secs) {
            return invalid("alerts.eval_secs", "must be between 1 and 300");
        }
        if !(1..=3650).contains(&self.alerts.keep_resolved_days) {
            return invalid("alerts.keep_resolved_days", "must be between 1 and 3650");
        }
        if let Err((key, message)) = self.notify.validate() {
            return invalid(key, &message);
        }
        for origin in &self.http.cors_origins {
            let ok = (origin.starts_with("https://") || origin.starts_with("http://"))
                && !origin.ends_with('/')
                && origin
                    .split("://")
                    .nth(1)
                    .is_some_and(|h| !h.is_empty() && !h.contains(['/', '*', ' ']))
                && axum::http::HeaderValue::from_str(origin).is_ok();
            if !ok {
                return invalid(
                    "http.cors_origins",
                    "each origin must be scheme://host[:port] with no path or wildcard",
                );
            }
        }
        if let Some(key) = &self.auth.jwt_secret
            && key.expose_secret().len() < 32
        {
            return invalid("auth.jwt_secret", "must be at least 32 bytes");
        }
        if self.auth.access_ttl_secs < 30 || self.auth.refresh_ttl_secs < self.auth.access_ttl_secs {
            return invalid(
                "auth.access_ttl_secs",
                "must be at least 30 and not longer than auth.refresh_ttl_secs",
            );
        }
        if self.auth.max_failed_logins == 0
            || self.auth.lockout_secs == 0
            || self.auth.login_attempts_per_ip_per_minute == 0
        {
            return invalid(
                "auth",
                "max_failed_logins, lockout_secs and login_attempts_per_ip_per_minute must be positive",
            );
        }
        let lifetime = self.pki.device_cert_lifetime_secs;
        if !(10..=397 * 86_400).contains(&lifetime) {
            return invalid(
                "pki.device_cert_lifetime_secs",
                "must be between 10 seconds and 397 days",
            );
        }
        if self.pki.ca_validity_days == 0 || self.pki.broker_cert_days == 0 {
            return invalid("pki", "ca_validity_days and broker_cert_days must be positive");
        }
        if u64::from(self.pki.ca_validity_days) * 86_400 <= lifetime {
            return invalid(
                "pki.ca_validity_days",
                "must be longer than pki.device_cert_lifetime_secs",
            );
        }
        let e = &self.enrolment;
        if e.claim_ttl_secs == 0 || e.claim_ttl_secs > 7 * 86_400 {
            return invalid("enrolment.claim_ttl_secs", "must be between 1 second and 7 days");
        }
        if e.max_pending == 0
            || e.max_pending_per_source == 0
            || e.requests_per_ip_per_minute == 0
            || e.claims_per_user_per_minute == 0
            || e.renewals_per_device_per_hour == 0
            || e.token_max_days == 0
            || e.token_max_uses == 0
        {
            return invalid(
                "enrolment",
                "max_pending, the rate limits, token_max_days and token_max_uses must be positive",
            );
        }
        if !(1..=300).contains(&e.poll_after_secs) {
            return invalid("enrolment.poll_after_secs", "must be between 1 and 300");
        }
        for (key, value) in [
            ("http.public_mqtt", &self.http.public_mqtt),
            ("http.public_mqtt_tls", &self.http.public_mqtt_tls),
        ] {
            if let Some(v) = value
                && !is_host_port(v)
            {
                return invalid(key, "must be HOST:PORT");
            }
        }
        if let Some(redis) = &self.redis {
            let r = redis.expose_secret();
            if !(r.starts_with("redis://") || r.starts_with("rediss://")) {
                return invalid("redis", "must be a redis:// or rediss:// URL");
            }
        }
        Ok(())
    }

    /// The store URL, with the empty default resolved to the SQLite file in the data directory.
    pub fn store_url(&self) -> String {
        let url = self.store.url.expose_secret();
        if url.is_empty() {
            format!("sqlite:{}", self.data_dir.join("luach.sqlite3").display())
        } else {
            url.to_owned()
        }
    }

    /// The trusted proxies, parsed (`validate` checked them).
    pub fn trusted_proxies(&self) -> crate::auth::TrustedProxies {
        crate::auth::TrustedProxies::parse(&self.http.trusted_proxies).unwrap_or_default()
    }

    /// Where releases are kept.
    pub fn release_dir(&self) -> PathBuf {
        self.releases
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("releases"))
    }

    /// Where screenshots are kept.
    pub fn screenshot_dir(&self) -> PathBuf {
        self.screenshots
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("screenshots"))
    }

    /// The audit chain key: configured, or created once in `<data_dir>/audit/chain.key`.
    pub fn chain_key(&self) -> anyhow::Result<crate::chain::ChainKey> {
        let text = match &self.audit.chain_key {
            Some(k) => k.expose_secret().to_owned(),
            None => {
                let path = self.data_dir.join("audit").join("chain.key");
                crate::keys::load_or_create(&path, crate::chain::ChainKey::MIN_LEN, || {
                    crate::auth::secret::random_text(32)
                })?
            }
        };
        crate::chain::ChainKey::new(text.as_bytes())
            .ok_or_else(|| anyhow::anyhow!("audit chain key: at least {} bytes", crate::chain::ChainKey::MIN_LEN))
    }

    /// How the store is opened.
    pub fn store_options(&self) -> anyhow::Result<crate::store::StoreOptions> {
        Ok(crate::store::StoreOptions {
            url: self.store_url(),
            database: self.store.database.clone(),
            chain_key: self.chain_key()?,
            quota_defaults: self.quotas.as_quota(),
            sqlite_readers: self.store.sqlite_readers,
            migrate: self.store.migrate_on_start,
        })
    }

    /// The device CA's directory, with the default resolved.
    pub fn ca_dir(&self) -> PathBuf {
        self.pki.ca_dir.clone().unwrap_or_else(|| self.data_dir.join("pki"))
    }

    pub fn offline_after(&self) -> Duration {
        Duration::from_secs(self.presence.offline_after_secs)
    }

    /// The effective configuration as TOML with secrets redacted (`print-config`).
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("mongodb://u:secret@h:27017/db"),
            "mongodb://u:***@h:27017/db"
        );
        assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[test]
    fn print_config_never_shows_secrets() {
        let mut c = Config::default();
        c.store.url = SecretString::from("mongodb://admin:hunter2@db/luach");
        c.redis = Some(SecretString::from("redis://:hunter3@cache:6379"));
        c.auth.jwt_secret = Some(SecretString::from("hunter4-hunter4-hunter4-hunter4-hunter4"));
        c.audit.chain_key = Some(SecretString::from("hunter5-hunter5-hunter5-hunter5-hunter5"));
        let out = c.to_redacted_toml();
        assert!(
            !out.contains("hunter2")
                && !out.contains("hunter3")
                && !out.contains("hunter4")
                && !out.contains("hunter5"),
            "{out}"
        );
        assert!(out.contains("jwt_secret = \"***\""), "{out}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let overrides = Figment::from(Serialized::default("presence.offline_after_secs", 0));
        let err = Config::load(None, overrides)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("presence.offline_after_secs"), "{err}");
        let overrides = Figment::from(Serialized::default("http.addr", "not-an-address"));
        let err = Config::load(None, overrides)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("http.addr") || err.contains("addr"), "{err}");
    }

    #[test]
    fn every_section_is_reachable_from_the_environment() {
        for key in [
            "notify.webhooks.allow_private",
            "alerts.eval_secs",
            "http.addr",
            "releases.dir",
        ] {
            assert!(Config::own_key(key), "{key}");
        }
        for key in ["server", "python", "enrolment_token"] {
            assert!(!Config::own_key(key), "{key}");
        }
    }

    #[test]
    fn file_then_flags_precedence() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("luach.toml");
        std::fs::write(
            &file,
            "data_dir = \"/from/file\"\n[presence]\noffline_after_secs = 30\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let overrides = Figment::from(Serialized::default("presence.offline_after_secs", 10));
        let c = Config::load(Some(&file), overrides).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.data_dir, PathBuf::from("/from/file"));
        assert_eq!(c.presence.offline_after_secs, 10);
    }
}
