//! A screen on the development (plain) listener, driven by the test: it says hello, reports
//! the metrics the test gives it and says goodbye.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use luach_schemas::messages::{Event, Metrics, TelemetryBatch, TelemetryData, TelemetryRecord};
use luach_schemas::{Envelope, Topic, TopicPrefix, UpKind};
use rumqttc::{AsyncClient, MqttOptions, QoS};

use crate::{Api, Must, TestApp, wait_for};

/// A screen on the development listener that reports what the test tells it.
pub struct PlainScreen {
    pub client: AsyncClient,
    pub id: String,
    /// Where it checks that the server took what it sent.
    api: Api,
}

impl PlainScreen {
    /// Connects to `app`, says hello (registered in tenant `default`) and waits until it is
    /// online.
    pub async fn connect(app: &TestApp, id: &str) -> Self {
        Self::connect_to(&app.api, app.mqtt, id).await
    }

    /// [`Self::connect`] for a server elsewhere: its development MQTT listener `mqtt`, and
    /// `api` as a user of tenant `default`.
    pub async fn connect_to(api: &Api, mqtt: SocketAddr, id: &str) -> Self {
        let mut options = MqttOptions::new(id, mqtt.ip().to_string(), mqtt.port());
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(options, 16);
        tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
        crate::publish_hello(&client, id).await;
        let path = format!("/api/v1/devices/{id}");
        let path = path.as_str();
        wait_for("the screen online", Duration::from_secs(30), || async move {
            let (_, body) = api.get(path).await;
            (body["data"]["status"] == "online").then_some(())
        })
        .await;
        Self {
            client,
            id: id.to_owned(),
            api: api.clone(),
        }
    }

    fn up(&self) -> String {
        Topic::Uplink(TopicPrefix::parse(&self.id).must()).to_string()
    }

    /// Reports metrics with this temperature and waits until the server stored them.
    pub async fn temperature(&self, celsius: f32) {
        self.report(Metrics {
            temperature_c: Some(celsius),
            ..sample_metrics()
        })
        .await;
    }

    /// Reports `metrics` and waits until the server stored them as the screen's latest.
    pub async fn report(&self, metrics: Metrics) {
        let id = uuid::Uuid::now_v7().to_string();
        let expected = serde_json::to_value(&metrics).must();
        self.client
            .publish(
                self.up(),
                QoS::AtLeastOnce,
                false,
                Envelope::new(id, "metrics", Utc::now(), metrics).to_bytes(),
            )
            .await
            .must();
        let api = &self.api;
        let path = format!("/api/v1/devices/{}", self.id);
        let (path, expected) = (path.as_str(), &expected);
        wait_for("the metrics stored", Duration::from_secs(30), || async move {
            let (_, body) = api.get(path).await;
            (body["data"]["metrics"] == *expected).then_some(())
        })
        .await;
    }

    /// Sends `records` as telemetry history of stream `stream` (numbered from 1, in batches
    /// of 20 so each message stays small) and waits until the server stored them all.
    pub async fn history(&self, stream: &str, records: Vec<(DateTime<Utc>, Metrics)>) {
        let count = records.len() as u64;
        let numbered: Vec<TelemetryRecord> = records
            .into_iter()
            .zip(1..)
            .map(|((at, metrics), seq)| TelemetryRecord {
                seq,
                at,
                data: TelemetryData::Metrics { metrics },
            })
            .collect();
        let topic = Topic::Up(TopicPrefix::parse(&self.id).must(), UpKind::Telemetry).to_string();
        for chunk in numbered.chunks(20) {
            let batch = TelemetryBatch {
                stream: stream.to_owned(),
                records: chunk.to_vec(),
                dropped: 0,
            };
            self.client
                .publish(
                    topic.as_str(),
                    QoS::AtLeastOnce,
                    false,
                    Envelope::new(uuid::Uuid::now_v7().to_string(), "telemetry", Utc::now(), batch).to_bytes(),
                )
                .await
                .must();
        }
        let api = &self.api;
        let path = format!("/api/v1/devices/{}/telemetry/streams", self.id);
        let path = path.as_str();
        wait_for("the history stored", Duration::from_secs(30), || async move {
            let (_, body) = api.get(path).await;
            body["data"]
                .as_array()?
                .iter()
                .any(|s| s["stream"] == stream && s["stored"].as_u64() == Some(count))
                .then_some(())
        })
        .await;
    }

    /// Says goodbye, as an agent shutting down does: offline at once.
    pub async fn goodbye(&self) {
        let event = Event::Goodbye { session: "s1".into() };
        self.client
            .publish(
                self.up(),
                QoS::AtLeastOnce,
                false,
                Envelope::new("bye", "event", Utc::now(), event).to_bytes(),
            )
            .await
            .must();
    }
}

/// Metrics of a small, healthy screen: 16 GiB disk with 1 GiB used, 4 GiB memory, no sensor.
pub fn sample_metrics() -> Metrics {
    Metrics {
        cpu_percent: 10.0,
        mem_used_bytes: 1 << 30,
        mem_total_bytes: 4 << 30,
        disk_used_bytes: 1 << 30,
        disk_total_bytes: 16 << 30,
        temperature_c: None,
        uptime_s: 100,
        agent_version: "0.0.0-test".into(),
    }
}
