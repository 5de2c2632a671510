//! A screen's enrolment and its MQTT session over mutual TLS, driven from a test: the REST
//! calls an agent makes to enrol, and a rumqttc client with the certificate it was given.

use std::time::Duration;

use chrono::Utc;
use luach_pki::DeviceKey;
use luach_schemas::messages::Hello;
use luach_schemas::messages::{Ack, AckStatus};
use luach_schemas::{DeviceId, DownKind, Envelope, Topic, TopicPrefix, UpKind};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use serde_json::{Value, json};

use crate::{Api, Must, wait_for};

/// Longest wait for something that must happen (a notice, a disconnect): generous, because
/// CI runs debug builds with many tests at once on two cores.
pub const WAIT: Duration = Duration::from_secs(30);

/// A fresh device key and a CSR for `device`.
pub fn csr(device: &str) -> (DeviceKey, String) {
    let key = DeviceKey::generate().must();
    let csr = key.csr_pem(device).must();
    (key, csr)
}

pub async fn request(api: &Api, body: &Value) -> (u16, Value) {
    let (status, answer) = api.anonymous().post("/api/v1/enrolment/requests", body).await;
    assert!(status < 500, "server error for {body}: {answer}");
    (status, answer)
}

pub async fn enrol_with_token(api: &Api, device: &str, csr: &str, token: &str) -> (u16, Value) {
    request(
        api,
        &json!({"device_id": device, "csr_pem": csr, "enrolment_token": token}),
    )
    .await
}

pub async fn poll(api: &Api, device: &str, secret: Option<&str>) -> (u16, Value) {
    let url = api.url(&format!("/api/v1/enrolment/requests/{device}"));
    let req = match secret {
        Some(s) => api.http.get(url).bearer_auth(s),
        None => api.http.get(url),
    };
    let (status, body) = api.anonymous().send(req).await;
    assert!(status < 500, "server error polling {device}: {body}");
    (status, body)
}

pub async fn device_status(api: &Api, id: &str) -> Option<String> {
    let (_, body) = api.get(&format!("/api/v1/devices/{id}")).await;
    body["data"]["status"].as_str().map(str::to_owned)
}

pub async fn wait_status(api: &Api, id: &str, want: &str) {
    wait_for(&format!("{id} {want}"), Duration::from_secs(30), || {
        let api = api.clone();
        let id = id.to_owned();
        let want = want.to_owned();
        async move { (device_status(&api, &id).await.as_deref() == Some(want.as_str())).then_some(()) }
    })
    .await;
}

/// Answers command `command_id` "ok" on `up/ack`, from inside the client's event loop (so
/// without waiting for room in its request queue), at QoS 0 so that no PUBACK queues up for
/// a test that does not read them (the job engine re-sends a command whose answer is lost).
fn answer(client: &AsyncClient, prefix: &TopicPrefix, command_id: &str) {
    let ack = Ack {
        command_id: command_id.to_owned(),
        status: AckStatus::Ok,
        detail: Some("answered by a test device".into()),
    };
    let payload = Envelope::new(uuid::Uuid::now_v7().to_string(), UpKind::Ack.as_str(), Utc::now(), ack).to_bytes();
    let topic = Topic::Up(prefix.clone(), UpKind::Ack).to_string();
    if let Err(e) = client.try_publish(topic, QoS::AtMostOnce, false, payload) {
        eprintln!("test device: acknowledgement of {command_id} not sent: {e}");
    }
}

/// One device talking MQTT over mutual TLS from this test.
pub struct MtlsDevice {
    pub client: AsyncClient,
    pub acks: tokio::sync::mpsc::Receiver<Packet>,
    /// Bundle notices received on its down topics.
    pub notices: tokio::sync::mpsc::UnboundedReceiver<luach_schemas::messages::BundleNotice>,
    /// Ids of the commands it received; each was answered "ok" at once on `up/ack`.
    pub commands: tokio::sync::mpsc::UnboundedReceiver<String>,
    pub id: DeviceId,
    /// Its certificate's organisation: the topic prefix the broker jails it to.
    pub prefix: TopicPrefix,
    /// Publishes on the one uplink topic `up` (as agents do) instead of the earlier
    /// `up/{kind}` (as agents in the field still may).
    pub one_topic: bool,
}

impl MtlsDevice {
    pub async fn connect(port: u16, id: &str, key: &DeviceKey, issued: &Value) -> Self {
        Self::try_connect(port, id, key, issued)
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"))
    }

    /// Connects with the certificate in `issued`; the error when no CONNACK comes.
    pub async fn try_connect(port: u16, id: &str, key: &DeviceKey, issued: &Value) -> Result<Self, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
            ca: issued["data"]["ca_pem"].as_str().must().as_bytes().to_vec(),
            alpn: None,
            client_auth: Some((
                issued["data"]["certificate_pem"].as_str().must().as_bytes().to_vec(),
                key.to_pem().as_bytes().to_vec(),
            )),
        }));
        let (client, mut eventloop) = AsyncClient::new(options, 16);
        let (tx, mut acks) = tokio::sync::mpsc::channel(64);
        let (notice_tx, notices) = tokio::sync::mpsc::unbounded_channel();
        let (failed_tx, mut failed) = tokio::sync::mpsc::unbounded_channel();
        let (command_tx, commands) = tokio::sync::mpsc::unbounded_channel();
        let answerer = client.clone();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Ok(env) = luach_schemas::decode_bundle_notice(&p.payload) {
                            let _ = notice_tx.send(env.body);
                        } else if let Ok(Topic::Down(prefix, DownKind::Command)) = Topic::parse(&p.topic)
                            && let Ok(env) = luach_schemas::decode_down(DownKind::Command, &p.payload)
                        {
                            answer(&answerer, &prefix, &env.body.command_id);
                            let _ = command_tx.send(env.body.command_id);
                        }
                    }
                    Ok(Event::Incoming(p @ (Packet::ConnAck(_) | Packet::PubAck(_) | Packet::SubAck(_)))) => {
                        let Ok(()) = tx.send(p).await else { break };
                    }
                    Ok(_) => {}
                    // The connection is gone: the channels close and tell the test.
                    Err(e) => {
                        let _ = failed_tx.send(e.to_string());
                        break;
                    }
                }
            }
        });
        let connected = tokio::time::timeout(Duration::from_secs(10), acks.recv()).await;
        if !matches!(connected, Ok(Some(Packet::ConnAck(_)))) {
            let why = failed.recv().await.unwrap_or_else(|| format!("{connected:?}"));
            return Err(why);
        }
        let chain = luach_pki::inspect_chain(issued["data"]["certificate_pem"].as_str().must()).must();
        let prefix = TopicPrefix::parse(chain[0].organisation.as_deref().must()).must();
        Ok(Self {
            client,
            acks,
            notices,
            commands,
            id: DeviceId::parse(id).must(),
            prefix,
            one_topic: false,
        })
    }

    /// True when the broker closes the connection within `within`.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.acks.recv()).await {
                Ok(None) => return true,
                Ok(Some(_)) => {}
                Err(_) => return false,
            }
        }
    }

    /// Subscribes to its own down topics, as the agent does, and waits for the broker's
    /// acknowledgement.
    pub async fn listen(&mut self) {
        self.client
            .subscribe(Topic::down_filter(&self.prefix), QoS::AtLeastOnce)
            .await
            .must();
        let ack = tokio::time::timeout(Duration::from_secs(10), self.acks.recv()).await;
        assert!(matches!(ack, Ok(Some(Packet::SubAck(_)))), "{}: {ack:?}", self.id);
    }

    /// The next bundle notice within `within`, if any.
    pub async fn notice(&mut self, within: Duration) -> Option<luach_schemas::messages::BundleNotice> {
        tokio::time::timeout(within, self.notices.recv()).await.ok().flatten()
    }

    /// Publishes at QoS 1 and waits until the broker acknowledged it.
    pub async fn send<T: serde::Serialize>(&mut self, kind: UpKind, body: T) {
        let payload = Envelope::new(uuid::Uuid::now_v7().to_string(), kind.as_str(), Utc::now(), body).to_bytes();
        let topic = if self.one_topic {
            Topic::Uplink(self.prefix.clone())
        } else {
            Topic::Up(self.prefix.clone(), kind)
        };
        self.client
            .publish(topic.to_string(), QoS::AtLeastOnce, false, payload)
            .await
            .must();
        let ack = tokio::time::timeout(Duration::from_secs(10), self.acks.recv()).await;
        assert!(matches!(ack, Ok(Some(Packet::PubAck(_)))), "{}: {ack:?}", self.id);
    }

    pub async fn hello(&mut self, session: &str) {
        let hello = Hello {
            agent_version: "9.9.9".into(),
            session: session.into(),
            platform: "test".into(),
            ip: None,
            uptime_s: 1,
        };
        self.send(UpKind::Hello, hello).await;
    }
}
