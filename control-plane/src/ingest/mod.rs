//! The MQTT ingest pipeline: broker link → decode → presence → store and live events.
//!
//! ```text
//!  rumqttd router ──local link──▶ reader ──bounded queue──▶ writer ──batch──▶ store
//!                                  │ bad payloads: counted,        │
//!                                  │ logged once/device/interval   └──────▶ Socket.IO
//! ```
//! The reader only parses; the writer owns all presence state (no locks) and applies every
//! message currently queued as one coalesced batch, so batches grow with load and a quiet
//! system writes each message at once. When the queue is full the reader waits and messages
//! wait in the broker's commit log for the ingest filter (`mqtt.ingest_buffer_bytes`); a
//! writer stalled for longer than that buffer covers loses the oldest messages.
//!
//! Telemetry batches are the exception to "fire and forget": the writer stores their records
//! (once per device, stream and sequence number) at its next flush and only then answers each
//! screen on `down/stored`, so a screen deletes a record only once it is in the store.

mod presence;
mod writer;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use luach_broker::{Inbound, LocalLink};
use luach_schemas::messages::Event;
use luach_schemas::{DeviceId, Topic, TopicPrefix, UpMessage, decode_up, decode_uplink};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use presence::{Batch, Observation, PresenceTracker};
pub use writer::{IngestHandle, Writer};

use crate::metrics::Metrics;

/// A decoded message on its way to the writer.
#[derive(Debug)]
pub enum Work {
    /// A message that arrived under `prefix` (the writer resolves it to a device).
    Observe {
        prefix: TopicPrefix,
        message: UpMessage,
        received: chrono::DateTime<Utc>,
    },
    /// A device was deleted or (re-)enrolled through the API.
    Forget(DeviceId),
    /// A device's certificate was revoked through the API.
    Revoked(DeviceId),
}

/// Most devices remembered for bad-payload log throttling before the memory is reset.
const MAX_THROTTLE_ENTRIES: usize = 100_000;

/// Logs a bad payload at most once per topic prefix per interval; always counts it.
struct BadPayloadLog {
    interval: Duration,
    last: HashMap<String, Instant>,
}

impl BadPayloadLog {
    fn report(
        &mut self,
        metrics: &Metrics,
        who: &str,
        topic: &str,
        reason: &'static str,
        detail: &dyn std::fmt::Display,
    ) {
        metrics.mqtt_bad_payloads.with_label_values(&[reason]).inc();
        let now = Instant::now();
        if self.last.len() >= MAX_THROTTLE_ENTRIES {
            self.last.clear();
        }
        let due = self
            .last
            .get(who)
            .is_none_or(|t| now.duration_since(*t) >= self.interval);
        if due {
            self.last.insert(who.to_owned(), now);
            tracing::warn!(prefix = %who, topic = %topic, reason, detail = %detail, "bad mqtt payload refused");
        }
    }
}

/// Reads the broker link until shutdown, decoding and forwarding messages to the writer.
pub async fn read_link(
    mut link: LocalLink,
    tx: mpsc::Sender<Work>,
    metrics: Metrics,
    log_interval: Duration,
    shutdown: CancellationToken,
) {
    let mut bad = BadPayloadLog {
        interval: log_interval,
        last: HashMap::new(),
    };
    loop {
        let inbound: Inbound = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = link.next() => match next {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(error = %e, "broker link closed; ingest stopped");
                    return;
                }
            },
        };
        let topic_text = String::from_utf8_lossy(&inbound.topic);
        let decoded = match Topic::parse(&topic_text) {
            Ok(Topic::Uplink(prefix)) => (prefix, decode_uplink(&inbound.payload)),
            Ok(Topic::Up(prefix, kind)) => (prefix, decode_up(kind, &inbound.payload)),
            Ok(Topic::Down(..)) => continue,
            Err(e) => {
                bad.report(&metrics, "unknown", &topic_text, "topic", &e);
                continue;
            }
        };
        let (prefix, decoded) = decoded;
        match decoded {
            Ok(message) => {
                metrics
                    .mqtt_messages_in
                    .with_label_values(&[message.kind().as_str()])
                    .inc();
                let work = Work::Observe {
                    prefix,
                    message,
                    received: Utc::now(),
                };
                if tx.send(work).await.is_err() {
                    return;
                }
            }
            Err(e) => bad.report(&metrics, prefix.as_str(), &topic_text, e.label(), &e),
        }
    }
}

/// Maps a decoded message to what it tells about presence (and the ack it carries).
pub fn observation(message: UpMessage) -> (Observation, Option<luach_schemas::messages::Ack>) {
    match message {
        UpMessage::Hello(e) => (Observation::Hello(e.body), None),
        UpMessage::Heartbeat(e) => (
            Observation::Heartbeat {
                session: e.body.session,
            },
            None,
        ),
        UpMessage::Metrics(e) => (Observation::Metrics(e.body), None),
        UpMessage::Telemetry(_) => (Observation::Activity, None),
        UpMessage::Ack(e) => (Observation::Activity, Some(e.body)),
        UpMessage::Event(e) => match e.body {
            Event::Offline { session } => (
                Observation::SessionEnded {
                    session,
                    reason: "last_will",
                },
                None,
            ),
            Event::Goodbye { session } => (
                Observation::SessionEnded {
                    session,
                    reason: "goodbye",
                },
                None,
            ),
        },
    }
}
