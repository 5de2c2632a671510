//! The versioned envelope every MQTT payload travels in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version of the envelope and message schemas defined by this crate.
pub const SCHEMA_VERSION: u32 = 1;

/// Largest payload either side accepts on any Luach topic (16 KiB).
///
/// Larger payloads are refused by the decoder before any JSON parsing, so a misbehaving
/// device cannot make the control plane allocate or parse megabytes.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

/// `{ "v": 1, "id": "...", "type": "heartbeat", "ts": "...", "body": {...} }`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope<T> {
    /// Schema version, [`SCHEMA_VERSION`].
    pub v: u32,
    /// Unique message id chosen by the sender (used for de-duplication and acknowledgement).
    pub id: String,
    /// Message type; equals the topic's last segment.
    #[serde(rename = "type")]
    pub kind: String,
    /// When the sender created the message (UTC).
    pub ts: DateTime<Utc>,
    /// The message itself.
    pub body: T,
}

impl<T: Serialize> Envelope<T> {
    /// Wraps a body for sending.
    pub fn new(id: impl Into<String>, kind: &str, ts: DateTime<Utc>, body: T) -> Self {
        Self {
            v: SCHEMA_VERSION,
            id: id.into(),
            kind: kind.to_owned(),
            ts,
            body,
        }
    }

    /// Serialises to the JSON bytes sent on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain data structs with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}
