//! A screen on the development (plain) listener, driven by the test: it says hello, reports
//! the metrics the test gives it and says goodbye.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::Utc;
use luach_schemas::messages::{Event, Metrics};
use luach_schemas::{Envelope, Topic, TopicPrefix};
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
        let metrics = Metrics {
            cpu_percent: 10.0,
            mem_used_bytes: 1 << 30,
            mem_total_bytes: 4 << 30,
            disk_used_bytes: 1 << 30,
            disk_total_bytes: 16 << 30,
            temperature_c: Some(celsius),
            uptime_s: 100,
            agent_version: "0.0.0-test".into(),
        };
        let id = uuid::Uuid::now_v7().to_string();
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
        let path = path.as_str();
        wait_for("the metrics stored", Duration::from_secs(30), || async move {
            let (_, body) = api.get(path).await;
            (body["data"]["metrics"]["temperature_c"].as_f64() == Some(f64::from(celsius))).then_some(())
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
