//! rumqttd configuration tuned for many small devices.

use std::collections::HashMap;
use std::net::SocketAddr;

use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};

/// Broker settings exposed in `luach-server`'s configuration.
///
/// Defaults differ from stock rumqttd on purpose:
/// - `next_connection_delay_ms = 0`: stock rumqttd sleeps between accepts (~810 connects/s),
///   which turns a fleet reconnecting after a restart into a minutes-long queue.
/// - Small commit-log segments: the router keeps a log per topic; every device has its own
///   topics, so the stock 100 MiB segments would grow to gigabytes over millions of tiny
///   messages. Two 4 KiB segments per topic keep memory per device bounded.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerSettings {
    /// Plain-TCP MQTT listener (development/password listener).
    pub listen: SocketAddr,
    /// Most simultaneous connections, devices plus internal links.
    pub max_connections: usize,
    /// Largest MQTT payload the broker accepts, in bytes.
    pub max_payload_bytes: usize,
    /// QoS 1/2 messages in flight per connection.
    pub max_inflight: usize,
    /// Bytes per commit-log segment (per topic); rumqttd requires at least 1024.
    pub segment_bytes: usize,
    /// Segments kept per topic.
    pub segment_count: usize,
    /// Time a new TCP connection has to send CONNECT.
    pub connect_timeout_ms: u16,
}

impl Default for BrokerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 1883)),
            max_connections: 20_000,
            max_payload_bytes: 64 * 1024,
            max_inflight: 100,
            segment_bytes: 4 * 1024,
            segment_count: 2,
            connect_timeout_ms: 10_000,
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
        if self.max_connections == 0 || self.max_inflight == 0 || self.max_payload_bytes == 0 {
            return Err("max_connections, max_inflight and max_payload_bytes must be positive".into());
        }
        Ok(())
    }

    pub(crate) fn to_rumqttd(&self, listen: SocketAddr) -> Config {
        let connections = ConnectionSettings {
            connection_timeout_ms: self.connect_timeout_ms,
            max_payload_size: self.max_payload_bytes,
            max_inflight_count: self.max_inflight,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        };
        let server = ServerSettings {
            name: "mqtt-plain".into(),
            listen,
            tls: None,
            next_connection_delay_ms: 0,
            connections,
        };
        Config {
            id: 0,
            router: RouterConfig {
                // One extra slot for the control plane's in-process link.
                max_connections: self.max_connections + 1,
                max_outgoing_packet_count: 200,
                max_segment_size: self.segment_bytes,
                max_segment_count: self.segment_count,
                custom_segment: None,
                initialized_filters: None,
                shared_subscriptions_strategy: Default::default(),
            },
            v4: Some(HashMap::from([("1".to_owned(), server)])),
            ..Config::default()
        }
    }
}
