//! rumqttd configuration tuned for many small devices.

use std::collections::HashMap;
use std::net::SocketAddr;

use rumqttd::{Config, ConnectionSettings, RouterConfig, SegmentConfig, ServerSettings};

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
    /// Bytes the broker buffers for the control plane's in-process subscription to all
    /// device traffic (split in 4 segments). rumqttd keeps one commit log per subscription
    /// filter and skips the oldest messages of a reader that falls further behind than this,
    /// so it must cover the longest stall of the ingest writer at peak traffic.
    pub ingest_buffer_bytes: usize,
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
            ingest_buffer_bytes: 64 * 1024 * 1024,
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
        Ok(())
    }

    /// Segments of the ingest filter's commit log.
    const INGEST_SEGMENTS: usize = 4;

    pub(crate) fn to_rumqttd(&self, listen: SocketAddr, ingest_filter: &str) -> Config {
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
            v4: Some(HashMap::from([("1".to_owned(), server)])),
            ..Config::default()
        }
    }
}
