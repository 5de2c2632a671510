//! Checked decoding of payloads received from the broker.

use serde::de::DeserializeOwned;

use crate::envelope::{Envelope, MAX_PAYLOAD_BYTES, SCHEMA_VERSION};
use crate::messages::{Ack, BundleNotice, Command, Event, Heartbeat, Hello, Metrics, Stored, TelemetryBatch};
use crate::topic::{DownKind, UpKind};

/// A decoded device-to-cloud message.
#[derive(Debug, Clone, PartialEq)]
pub enum UpMessage {
    Hello(Envelope<Hello>),
    Heartbeat(Envelope<Heartbeat>),
    Metrics(Envelope<Metrics>),
    /// Records from the screen's telemetry queue (validated).
    Telemetry(Envelope<TelemetryBatch>),
    Ack(Envelope<Ack>),
    Event(Envelope<Event>),
}

impl UpMessage {
    /// The kind of message this is.
    pub fn kind(&self) -> UpKind {
        match self {
            Self::Hello(_) => UpKind::Hello,
            Self::Heartbeat(_) => UpKind::Heartbeat,
            Self::Metrics(_) => UpKind::Metrics,
            Self::Telemetry(_) => UpKind::Telemetry,
            Self::Ack(_) => UpKind::Ack,
            Self::Event(_) => UpKind::Event,
        }
    }
}

/// Why a payload was refused. The variants are stable: they label metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("payload of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("payload is not valid JSON: {0}")]
    Json(String),
    #[error("payload does not match the {kind} schema: {detail}")]
    Schema { kind: &'static str, detail: String },
    #[error("unsupported schema version {0}")]
    Version(u32),
    #[error("envelope type {found:?} does not match topic kind {expected:?}")]
    TypeMismatch { expected: &'static str, found: String },
}

impl DecodeError {
    /// Short stable label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::Json(_) => "json",
            Self::Schema { .. } => "schema",
            Self::Version(_) => "version",
            Self::TypeMismatch { .. } => "type_mismatch",
        }
    }
}

fn envelope<T: DeserializeOwned>(kind: &'static str, payload: &[u8]) -> Result<Envelope<T>, DecodeError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(DecodeError::TooLarge {
            size: payload.len(),
            limit: MAX_PAYLOAD_BYTES,
        });
    }
    // Parse to a value first so "not JSON at all" and "JSON of the wrong shape" stay distinct.
    let value: serde_json::Value = serde_json::from_slice(payload).map_err(|e| DecodeError::Json(e.to_string()))?;
    let version = value.get("v").and_then(serde_json::Value::as_u64);
    if let Some(v) = version.filter(|v| *v != u64::from(SCHEMA_VERSION)) {
        return Err(DecodeError::Version(u32::try_from(v).unwrap_or(u32::MAX)));
    }
    let env: Envelope<T> = serde_json::from_value(value).map_err(|e| DecodeError::Schema {
        kind,
        detail: e.to_string(),
    })?;
    if env.kind != kind {
        return Err(DecodeError::TypeMismatch {
            expected: kind,
            found: env.kind,
        });
    }
    Ok(env)
}

/// Decodes a payload that arrived on a screen's one uplink topic (`/tenants/{prefix}/up`):
/// the envelope's `type` names the kind, checked as on the per-kind topics.
pub fn decode_uplink(payload: &[u8]) -> Result<UpMessage, DecodeError> {
    #[derive(serde::Deserialize)]
    struct Kind {
        #[serde(rename = "type")]
        kind: String,
    }
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(DecodeError::TooLarge {
            size: payload.len(),
            limit: MAX_PAYLOAD_BYTES,
        });
    }
    let named: Kind = serde_json::from_slice(payload).map_err(|e| DecodeError::Json(e.to_string()))?;
    let kind = UpKind::parse(&named.kind).ok_or_else(|| DecodeError::Schema {
        kind: "up",
        detail: format!("unknown message type {:?}", named.kind),
    })?;
    decode_up(kind, payload)
}

/// Decodes a payload that arrived on an `up/{kind}` topic.
pub fn decode_up(kind: UpKind, payload: &[u8]) -> Result<UpMessage, DecodeError> {
    let k = kind.as_str();
    Ok(match kind {
        UpKind::Hello => UpMessage::Hello(envelope(k, payload)?),
        UpKind::Heartbeat => UpMessage::Heartbeat(envelope(k, payload)?),
        UpKind::Metrics => UpMessage::Metrics(envelope(k, payload)?),
        UpKind::Telemetry => {
            let env: Envelope<TelemetryBatch> = envelope(k, payload)?;
            env.body
                .validate()
                .map_err(|detail| DecodeError::Schema { kind: k, detail })?;
            UpMessage::Telemetry(env)
        }
        UpKind::Ack => UpMessage::Ack(envelope(k, payload)?),
        UpKind::Event => UpMessage::Event(envelope(k, payload)?),
    })
}

/// Decodes a command that arrived on `down/command`.
pub fn decode_down(kind: DownKind, payload: &[u8]) -> Result<Envelope<Command>, DecodeError> {
    match kind {
        DownKind::Command => envelope("command", payload),
        other => Err(DecodeError::TypeMismatch {
            expected: "command",
            found: other.as_str().to_owned(),
        }),
    }
}

/// Decodes a bundle notice that arrived on `down/bundle`.
pub fn decode_bundle_notice(payload: &[u8]) -> Result<Envelope<BundleNotice>, DecodeError> {
    envelope(DownKind::Bundle.as_str(), payload)
}

/// Decodes a telemetry acknowledgement that arrived on `down/stored`.
pub fn decode_stored(payload: &[u8]) -> Result<Envelope<Stored>, DecodeError> {
    envelope(DownKind::Stored.as_str(), payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Heartbeat;
    use chrono::Utc;
    use proptest::prelude::*;

    fn heartbeat_bytes() -> Vec<u8> {
        Envelope::new(
            "m1",
            "heartbeat",
            Utc::now(),
            Heartbeat {
                session: "s1".into(),
                uptime_s: 5,
            },
        )
        .to_bytes()
    }

    #[test]
    fn good_heartbeat_decodes() {
        assert!(matches!(
            decode_up(UpKind::Heartbeat, &heartbeat_bytes()),
            Ok(UpMessage::Heartbeat(_))
        ));
    }

    #[test]
    fn the_one_uplink_topic_takes_the_kind_from_the_envelope() {
        assert!(matches!(decode_uplink(&heartbeat_bytes()), Ok(UpMessage::Heartbeat(_))));
        let unknown = String::from_utf8(heartbeat_bytes())
            .unwrap_or_default()
            .replace("heartbeat", "gossip");
        let err = decode_uplink(unknown.as_bytes()).map_err(|e| (e.label(), e.to_string()));
        assert!(matches!(&err, Err(("schema", m)) if m.contains("gossip")), "{err:?}");
        assert_eq!(decode_uplink(b"{\"v\":1}").map_err(|e| e.label()), Err("json"));
        assert_eq!(decode_uplink(b"nope").map_err(|e| e.label()), Err("json"));
        let big = vec![b' '; MAX_PAYLOAD_BYTES + 1];
        assert_eq!(decode_uplink(&big).map_err(|e| e.label()), Err("too_large"));
    }

    #[test]
    fn each_fault_is_named() {
        let big = vec![b' '; MAX_PAYLOAD_BYTES + 1];
        assert_eq!(decode_up(UpKind::Hello, &big).map_err(|e| e.label()), Err("too_large"));
        assert_eq!(decode_up(UpKind::Hello, b"{nope").map_err(|e| e.label()), Err("json"));
        assert_eq!(
            decode_up(UpKind::Hello, br#"{"v":1,"id":"x"}"#).map_err(|e| e.label()),
            Err("schema")
        );
        assert_eq!(
            decode_up(UpKind::Metrics, &heartbeat_bytes()).map_err(|e| e.label()),
            Err("schema")
        );
        let mismatched = String::from_utf8_lossy(&heartbeat_bytes()).replace("\"heartbeat\"", "\"hello\"");
        assert_eq!(
            decode_up(UpKind::Heartbeat, mismatched.as_bytes()).map_err(|e| e.label()),
            Err("type_mismatch")
        );
        let v2 = String::from_utf8_lossy(&heartbeat_bytes()).replace("\"v\":1", "\"v\":2");
        assert_eq!(
            decode_up(UpKind::Heartbeat, v2.as_bytes()).map_err(|e| e.label()),
            Err("version")
        );
    }

    fn telemetry(stream: &str, seqs: &[u64]) -> Vec<u8> {
        use crate::messages::{TelemetryData, TelemetryRecord};
        let records = seqs
            .iter()
            .map(|&seq| TelemetryRecord {
                seq,
                at: Utc::now(),
                data: TelemetryData::Event {
                    name: "agent_started".into(),
                    detail: None,
                },
            })
            .collect();
        let batch = TelemetryBatch {
            stream: stream.into(),
            records,
            dropped: 0,
        };
        Envelope::new("m1", "telemetry", Utc::now(), batch).to_bytes()
    }

    #[test]
    fn telemetry_batches_are_checked_beyond_their_shape() {
        let ok = decode_up(UpKind::Telemetry, &telemetry("abcdef12", &[4, 5, 6]));
        assert!(matches!(ok, Ok(UpMessage::Telemetry(e)) if e.body.range() == (4, 6)));
        for (stream, seqs, says) in [
            ("short", &[1u64][..], "stream"),
            ("ABCDEFGH", &[1][..], "stream"),
            ("abcdef12", &[][..], "records"),
            ("abcdef12", &[0][..], "records/0/seq"),
            ("abcdef12", &[3, 3][..], "records/1/seq"),
        ] {
            match decode_up(UpKind::Telemetry, &telemetry(stream, seqs)) {
                Err(err) => {
                    assert_eq!(err.label(), "schema");
                    assert!(err.to_string().contains(says), "{stream} {seqs:?}: {err}");
                }
                Ok(_) => panic!("{stream} {seqs:?} was accepted"),
            }
        }
        let unknown = String::from_utf8_lossy(&telemetry("abcdef12", &[1])).replace("\"name\"", "\"nome\"");
        assert!(decode_up(UpKind::Telemetry, unknown.as_bytes()).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            for kind in UpKind::ALL {
                let _ = decode_up(kind, &bytes);
            }
        }
    }
}
