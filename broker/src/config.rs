//! rumqttd configuration tuned for many small devices.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use rumqttd::{Config, ConnectionSettings, RouterConfig, SegmentConfig, ServerSettings};

use crate::edge::EdgeSettings;
use crate::external::ExternalSettings;

/// Which broker devices connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrokerMode {
    /// The broker runs inside `luach-server` (rumqttd behind the connection edge).
    #[default]
    Embedded,
    /// Devices connect to an existing broker; `luach-server` is its client
    /// ([`crate::external`], settings in [`BrokerSettings::external`]).
    External,
}

/// Broker settings exposed in `luach-server`'s configuration.
///
/// Defaults differ from stock rumqttd on purpose:
/// - `next_connection_delay_ms = 0`: stock rumqttd sleeps between accepts (~810 connects/s),
///   which turns a fleet reconnecting after a restart into a minutes-long queue.
/// - Small commit-log segments: the router keeps a log per subscription filter; every device
///   subscribes to its own command topics, so the stock 100 MiB segments would grow to
///   gigabytes over millions of tiny messages. Two 4 KiB segments per filter keep memory per
///   device bounded. The one exception is the control plane's ingest filter, which carries all
///   device traffic and gets `ingest_buffer_bytes`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerSettings {
    /// `embedded` (default) or `external`. In external mode the listener settings below are
    /// unused and [`BrokerSettings::external`] says where the broker is.
    pub mode: BrokerMode,
    /// The external broker (`mode = "external"`).
    pub external: ExternalSettings,
    /// Plain-TCP MQTT listener (development). Port 0 picks a free port. Default
    /// `127.0.0.1:1883`: loopback only, so an installation left on defaults exposes no
    /// unauthenticated listener to the network.
    pub listen: SocketAddr,
    /// Start the plain-TCP listener on `listen` (default `false`; enable it for development).
    /// Clients on it are not
    /// authenticated and are *not* confined to a topic prefix, and may claim any client id
    /// (including a device's `{device}.{id}` session or the control plane's own link id):
    /// development only. Production turns it off.
    pub plain_listener: bool,
    /// Start the mutual-TLS listener for devices on `tls_listen` (default `true`). It needs
    /// [`BrokerSettings::tls`], which the embedding program provides.
    pub tls_listener: bool,
    /// Address of the mutual-TLS listener (default `0.0.0.0:8883`). Port 0 picks a free port.
    /// Served by the connection edge ([`crate::edge`]): each client must present a
    /// certificate from the device CA that is not refused, and is confined to publishing
    /// `/tenants/{O}/up/{kind}` and subscribing inside `/tenants/{O}/`, where O is the
    /// certificate's organisation (its topic prefix).
    pub tls_listen: SocketAddr,
    /// Host names and IP addresses devices use to reach the TLS listener, besides
    /// `localhost`, `127.0.0.1` and `::1`: they become the broker certificate's subject
    /// alternative names (`luach-server` issues that certificate from its device CA).
    pub tls_hostnames: Vec<String>,
    /// The TLS listener's certificate files. Not configuration: the program embedding the
    /// broker writes them (`luach-server` from its device CA) and sets them before
    /// [`crate::EmbeddedBroker::start`].
    #[serde(skip)]
    pub tls: Option<TlsFiles>,
    /// Most simultaneous device connections on each listener.
    pub max_connections: usize,
    /// Largest MQTT payload the broker accepts, in bytes (a packet may be 1 KiB larger, for
    /// its topic and header).
    pub max_payload_bytes: usize,
    /// QoS 1/2 messages in flight per connection.
    pub max_inflight: usize,
    /// Bytes per commit-log segment (per topic); rumqttd requires at least 1024.
    pub segment_bytes: usize,
    /// Segments kept per topic.
    pub segment_count: usize,
    /// Time a new TCP connection has to send CONNECT.
    pub connect_timeout_ms: u16,
    /// Bytes the broker buffers for the control plane's in-process subscription to all
    /// device traffic (split in 4 segments). rumqttd keeps one commit log per subscription
    /// filter and skips the oldest messages of a reader that falls further behind than this,
    /// so it must cover the longest stall of the ingest writer at peak traffic.
    pub ingest_buffer_bytes: usize,
    /// The connection edge's limits (the mutual-TLS port).
    pub edge: EdgeSettings,
}

impl Default for BrokerSettings {
    fn default() -> Self {
        Self {
            mode: BrokerMode::Embedded,
            external: ExternalSettings::default(),
            listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
            plain_listener: false,
            tls_listener: true,
            tls_listen: SocketAddr::from(([0, 0, 0, 0], 8883)),
            tls_hostnames: Vec::new(),
            tls: None,
            max_connections: 20_000,
            max_payload_bytes: 64 * 1024,
            max_inflight: 100,
            segment_bytes: 4 * 1024,
            segment_count: 2,
            connect_timeout_ms: 10_000,
            ingest_buffer_bytes: 64 * 1024 * 1024,
            edge: EdgeSettings::default(),
        }
    }
}

impl BrokerSettings {
    /// Checks values rumqttd would otherwise panic on.
    pub fn validate(&self) -> Result<(), String> {
        if self.segment_bytes < 1024 {
            return Err("segment_bytes must be at least 1024".into());
        }
        if self.segment_count == 0 {
            return Err("segment_count must be at least 1".into());
        }
        if self.ingest_buffer_bytes < 4 * 1024 * 1024 {
            return Err("ingest_buffer_bytes must be at least 4 MiB".into());
        }
        if self.max_connections == 0 || self.max_inflight == 0 || self.max_payload_bytes == 0 {
            return Err("max_connections, max_inflight and max_payload_bytes must be positive".into());
        }
        if self.mode == BrokerMode::External {
            return self.external.validate();
        }
        if !self.plain_listener && !self.tls_listener {
            return Err("at least one listener is needed: set plain_listener = true or tls_listener = true".into());
        }
        for name in &self.tls_hostnames {
            if name.trim().is_empty() || name.len() > 253 || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!("tls_hostnames: {name:?} is not a host name or IP address"));
            }
        }
        self.edge.validate()
    }

    /// Largest MQTT packet a device may send: the payload limit plus room for the topic and
    /// header.
    pub fn max_packet_bytes(&self) -> usize {
        self.max_payload_bytes.saturating_add(1024)
    }

    /// Segments of the ingest filter's commit log.
    const INGEST_SEGMENTS: usize = 4;

    /// rumqttd's configuration; `plain` is the resolved address of the plain listener, if it
    /// runs (the mutual-TLS port is the edge's, not rumqttd's).
    pub(crate) fn to_rumqttd(&self, plain: Option<SocketAddr>, ingest_filter: &str) -> Config {
        let connections = ConnectionSettings {
            connection_timeout_ms: self.connect_timeout_ms,
            max_payload_size: self.max_payload_bytes,
            max_inflight_count: self.max_inflight,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        };
        let mut servers = HashMap::new();
        if let Some(listen) = plain {
            let server = ServerSettings {
                name: "mqtt-plain".into(),
                listen,
                tls: None,
                next_connection_delay_ms: 0,
                connections,
            };
            servers.insert("1".to_owned(), server);
        }
        Config {
            id: 0,
            router: RouterConfig {
                // Two extra slots: the control plane's link and the edge's uplink.
                max_connections: self.max_connections + 2,
                max_outgoing_packet_count: 200,
                max_segment_size: self.segment_bytes,
                max_segment_count: self.segment_count,
                // The control plane's wildcard filter sees every device message: give its
                // log room, while per-device filters stay small.
                custom_segment: Some(HashMap::from([(
                    ingest_filter.to_owned(),
                    SegmentConfig {
                        max_segment_size: self.ingest_buffer_bytes / Self::INGEST_SEGMENTS,
                        max_segment_count: Self::INGEST_SEGMENTS,
                    },
                )])),
                initialized_filters: None,
                shared_subscriptions_strategy: Default::default(),
            },
            v4: Some(servers),
            ..Config::default()
        }
    }
}

/// The mutual-TLS listener's files, read once when the broker starts.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsFiles {
    /// The broker's certificate (PEM, leaf first, intermediates may follow), e.g. from
    /// `luach_pki::DeviceCa::issue_server_certificate`.
    pub cert_path: PathBuf,
    /// The broker's private key (PKCS#8 `PRIVATE KEY` PEM, as `luach_pki` writes it).
    pub key_path: PathBuf,
    /// The device CA certificates that client certificates must chain to (PEM, one or more:
    /// during a CA rotation both the old and the new CA).
    pub ca_path: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> TlsFiles {
        TlsFiles {
            cert_path: "server.pem".into(),
            key_path: "server.key".into(),
            ca_path: "ca.pem".into(),
        }
    }

    #[test]
    fn defaults_plain_off_on_loopback_and_tls_on() {
        let settings = BrokerSettings::default();
        assert!(!settings.plain_listener && settings.tls_listener);
        assert!(settings.listen.ip().is_loopback());
        assert_eq!(settings.tls_listen, SocketAddr::from(([0, 0, 0, 0], 8883)));
        assert_eq!(settings.tls, None);
        assert_eq!(settings.validate(), Ok(()));
    }

    #[test]
    fn tls_settings_from_toml() {
        let settings: BrokerSettings = toml::from_str(
            r#"
            plain_listener = false
            tls_listen = "0.0.0.0:9883"
            tls_hostnames = ["mqtt.example.org", "192.0.2.7"]
            "#,
        )
        .expect("valid toml");
        assert!(!settings.plain_listener);
        assert_eq!(settings.tls_listen, SocketAddr::from(([0, 0, 0, 0], 9883)));
        assert_eq!(settings.tls_hostnames, ["mqtt.example.org", "192.0.2.7"]);
        assert_eq!(settings.validate(), Ok(()));
        // The files are not configuration; unknown keys are refused.
        assert!(toml::from_str::<BrokerSettings>("[tls]\ncert_path = \"a\"").is_err());
        assert!(toml::from_str::<BrokerSettings>("tls_listen_addr = \"0.0.0.0:1\"").is_err());
        let bad = BrokerSettings {
            tls_hostnames: vec!["two words".into()],
            ..BrokerSettings::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn settings_round_trip_through_toml_without_files() {
        // `luach-server print-config` prints the settings as TOML.
        let settings = BrokerSettings {
            tls_hostnames: vec!["mqtt.example.org".into()],
            tls: Some(files()),
            ..BrokerSettings::default()
        };
        let text = toml::to_string(&settings).expect("serialise");
        assert!(!text.contains("server.pem"), "{text}");
        let back = toml::from_str::<BrokerSettings>(&text).expect("parse");
        assert_eq!(back, BrokerSettings { tls: None, ..settings }, "{text}");
    }

    #[test]
    fn at_least_one_listener() {
        let settings = BrokerSettings {
            plain_listener: false,
            tls_listener: false,
            ..BrokerSettings::default()
        };
        let err = settings.validate().expect_err("no listener");
        assert!(err.contains("plain_listener"), "{err}");
    }

    #[test]
    fn rumqttd_serves_only_the_plain_listener() {
        let settings = BrokerSettings {
            tls: Some(files()),
            ..BrokerSettings::default()
        };
        let plain = Some(SocketAddr::from(([127, 0, 0, 1], 1883)));
        let servers = |p| settings.to_rumqttd(p, "/tenants/+/up/#").v4.map(|v| v.len());
        assert_eq!(servers(plain), Some(1));
        assert_eq!(servers(None), Some(0));
        let config = settings.to_rumqttd(plain, "/tenants/+/up/#");
        let server = config.v4.as_ref().and_then(|v| v.values().next()).expect("server");
        assert!(server.tls.is_none());
        assert_eq!(config.router.max_connections, settings.max_connections + 2);
    }

    #[test]
    fn edge_limits_must_be_positive() {
        let mut settings = BrokerSettings::default();
        settings.edge.max_handshakes = 0;
        let err = settings.validate().expect_err("zero handshakes");
        assert!(err.contains("edge.max_handshakes"), "{err}");
        let parsed: BrokerSettings = toml::from_str("[edge]\nmessages_per_sec = 20").expect("edge table");
        assert_eq!(parsed.edge.messages_per_sec, 20);
        assert_eq!(parsed.edge.message_burst, EdgeSettings::default().message_burst);
    }
}
