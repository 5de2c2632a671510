//! Wire types shared by the Luach agent and control plane.
//!
//! Everything a screen and the control plane say to each other over MQTT is defined here once:
//! the topic layout ([`Topic`]), the versioned [`Envelope`] every payload travels in, and the
//! message bodies ([`messages`]). The crate does no I/O and pulls in no runtime, so the agent,
//! the control plane, the simulator and third-party tools can all depend on it.
//!
//! Topic layout (it fits rumqttd's certificate tenant prefix rule, where the prefix is the device):
//!
//! ```text
//! /tenants/{device}/up/{hello|heartbeat|metrics|telemetry|ack|event}   device -> control plane
//! /tenants/{device}/down/{command|bundle|ota}                          control plane -> device
//! ```
//!
//! Payloads are JSON envelopes `{ "v": 1, "id", "type", "ts", "body" }`. The envelope's `type`
//! must agree with the topic it arrives on; [`decode_up`] checks size, JSON, schema and that
//! agreement, and names what was wrong.

mod decode;
mod envelope;
mod ids;
pub mod messages;
pub mod params;
mod topic;

pub use decode::{DecodeError, UpMessage, decode_bundle_notice, decode_down, decode_stored, decode_up, decode_uplink};
pub use envelope::{Envelope, MAX_PAYLOAD_BYTES, SCHEMA_VERSION};
pub use ids::{DeviceId, IdError, TenantId, TopicPrefix};
pub use topic::{DownKind, Topic, TopicError, UpKind};
