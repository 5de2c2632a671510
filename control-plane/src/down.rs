//! What the control plane sends one screen: a versioned envelope on its `down/{kind}` topic,
//! through the in-process broker link, counted in `luach_mqtt_messages_out_total{kind}`.
//! Commands, bundle notices and telemetry answers all go this way.

use chrono::{DateTime, Utc};
use luach_broker::{LinkClosed, Publisher};
use luach_schemas::{DownKind, Envelope, Topic, TopicPrefix};
use serde::Serialize;

use crate::metrics::Metrics;

/// Publishes `body` as message `id` of `kind`, made `at`, to the screen listening under `prefix`.
pub async fn publish<T: Serialize>(
    publisher: &Publisher,
    metrics: &Metrics,
    prefix: &TopicPrefix,
    kind: DownKind,
    id: String,
    at: DateTime<Utc>,
    body: T,
) -> Result<(), LinkClosed> {
    let envelope = Envelope::new(id, kind.as_str(), at, body);
    let topic = Topic::Down(prefix.clone(), kind).to_string();
    publisher.publish(topic, envelope.to_bytes()).await?;
    metrics.mqtt_messages_out.with_label_values(&[kind.as_str()]).inc();
    Ok(())
}
