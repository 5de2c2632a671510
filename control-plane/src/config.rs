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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Empty = SQLite file `luach.sqlite3` in the data directory; `sqlite:PATH`; `mongodb://…`.
    #[serde(serialize_with = "serialize_secret")]
    pub url: SecretString,
    /// MongoDB database name.
    pub database: String,
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
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from(""),
            database: "luach".into(),
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
        const TOP_LEVEL: [&str; 8] = [
            "http", "mqtt", "data_dir", "store", "redis", "presence", "ingest", "log",
        ];
        Env::prefixed("LUACH_").split("__").filter(|key| {
            let key = key.as_str().to_ascii_lowercase();
            let top = key.split('.').next().unwrap_or("");
            TOP_LEVEL.contains(&top)
        })
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
        if self.presence.offline_after_secs < 2 {
            return invalid("presence.offline_after_secs", "must be at least 2");
        }
        if self.ingest.queue_capacity == 0 || self.ingest.batch_max == 0 {
            return invalid("ingest", "queue_capacity and batch_max must be positive");
        }
        if self.http.body_limit_bytes < 1024 {
            return invalid("http.body_limit_bytes", "must be at least 1024");
        }
        if !matches!(self.log.format.as_str(), "json" | "pretty") {
            return invalid("log.format", "must be `json` or `pretty`");
        }
        let url = self.store.url.expose_secret();
        if !(url.is_empty()
            || url.starts_with("mongodb://")
            || url.starts_with("mongodb+srv://")
            || url.starts_with("sqlite:"))
        {
            return invalid(
                "store.url",
                "must be empty, `sqlite:PATH`, `mongodb://…` or `mongodb+srv://…`",
            );
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
        let out = c.to_redacted_toml();
        assert!(!out.contains("hunter2") && !out.contains("hunter3"), "{out}");
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
