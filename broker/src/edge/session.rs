//! One device's MQTT 3.1.1 session on the edge, from its CONNACK to its end.
//!
//! The session enforces the jail and the limits on everything the device sends (topics,
//! QoS ≤ 1, no retained messages, packet size, message and byte rates, a bounded set of
//! subscriptions inside its own prefix) and answers as a broker would. What passes goes to
//! the [`Uplink`]; what the control plane sends to the device arrives on the session's own
//! queue ([`Registry`]) and is written out at the QoS the device subscribed with, with a
//! bounded number of QoS 1 messages awaiting their PUBACK.
//!
//! Sessions are clean: nothing is kept after the connection ends, and a message that did
//! not reach the device is the command outbox's to send again. The device's last will is
//! published when the connection ends without a DISCONNECT, except when the same device
//! took the session over or its certificate was refused.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{
    ConnAck, ConnectReturnCode, Packet, PubAck, Publish, SubAck, SubscribeReasonCode, UnsubAck,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use super::front::Arrival;
use super::rate::{Meter, RateLimits};
use super::registry::{Down, Kick, Registry};
use super::topics::{TopicRules, matches};
use super::uplink::{Up, Uplink};

/// Limits of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Largest packet the device may send.
    pub max_packet: usize,
    pub rate: RateLimits,
    /// Subscriptions a device may hold (all inside its own prefix).
    pub max_subscriptions: usize,
    /// Sessions (client ids) one prefix may hold at once.
    pub max_sessions_per_prefix: usize,
    /// QoS 1 messages sent to the device and not yet acknowledged.
    pub max_inflight: u16,
    /// Messages waiting for the device in its queue.
    pub downlink_queue: usize,
    /// Time a write to the device may take before the device counts as gone.
    pub write_timeout: Duration,
    /// Keep-alive used for a device that asks for none (0) or for more than this.
    pub max_keep_alive: Duration,
}

/// Why sessions ended, for metrics.
#[derive(Debug, Default)]
pub struct SessionCounts {
    pub connected: AtomicU64,
    pub ended_clean: AtomicU64,
    pub ended_lost: AtomicU64,
    pub taken_over: AtomicU64,
    pub refused: AtomicU64,
    pub violations: AtomicU64,
    pub over_rate: AtomicU64,
    pub bad_will: AtomicU64,
}

/// What every session shares.
#[derive(Debug)]
pub struct Shared {
    pub registry: Registry,
    pub uplink: Uplink,
    pub rules: TopicRules,
    pub limits: SessionLimits,
    pub counts: SessionCounts,
    /// Cancelled when the edge stops: every session closes.
    pub stop: CancellationToken,
}

/// How a session ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The device sent DISCONNECT.
    Clean,
    /// The same device connected again.
    TakenOver,
    /// Its certificate was revoked or superseded.
    Refused,
    /// The connection broke, went quiet past its keep-alive, or a write timed out.
    Lost(String),
    /// The device broke a rule of the jail or of MQTT.
    Violation(String),
    /// The device sent faster than its rate limits.
    OverRate(String),
    /// The edge stopped, or the broker's uplink did.
    Shutdown,
}

type Writer = WriteHalf<TlsStream<TcpStream>>;

/// Runs the session of a device that got through the front door, until it ends.
pub async fn run(arrival: Arrival, shared: Arc<Shared>) {
    let Arrival {
        device_id,
        prefix,
        serial,
        peer,
        connect,
        stream,
        read_ahead,
        admission,
    } = arrival;
    let limits = shared.limits;
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut out = BytesMut::with_capacity(256);

    if let Some(will) = &connect.last_will
        && (will.retain || will.qos == QoS::ExactlyOnce || !shared.rules.may_publish(&prefix, &will.topic))
    {
        shared.counts.bad_will.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%device_id, %peer, topic = %will.topic, "last will outside the device's topics refused");
        let _ = ConnAck::new(ConnectReturnCode::NotAuthorized, false).write(&mut out);
        let _ = write(&mut writer, &mut out, limits.write_timeout).await;
        return;
    }

    let attached = shared.registry.attach(
        &prefix,
        &connect.client_id,
        &serial,
        limits.downlink_queue,
        limits.max_sessions_per_prefix,
    );
    let mut attached = match attached {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!(%device_id, %peer, reason = %e, "session refused");
            let _ = ConnAck::new(ConnectReturnCode::ServiceUnavailable, false).write(&mut out);
            let _ = write(&mut writer, &mut out, limits.write_timeout).await;
            return;
        }
    };
    shared.counts.connected.fetch_add(1, Ordering::Relaxed);
    let _ = ConnAck::new(ConnectReturnCode::Success, false).write(&mut out);
    let keep_alive = match connect.keep_alive {
        0 => limits.max_keep_alive,
        s => Duration::from_secs(u64::from(s)).min(limits.max_keep_alive),
    };
    // MQTT 3.1.1 §3.1.2.10: one and a half keep-alive periods without a packet.
    let quiet_limit = keep_alive + keep_alive / 2;

    let mut state = State {
        wants_up: attached.wants_up.clone(),
        prefix: &prefix,
        shared: &shared,
        meter: Meter::new(limits.rate, Instant::now()),
        subscriptions: HashMap::new(),
        inflight: HashSet::new(),
        next_pkid: 1,
    };
    let mut buf = read_ahead;
    let end = loop {
        // Packets already read (the CONNECT may have come with more).
        match state.take_packets(&mut buf, &mut out).await {
            Ok(None) => {}
            Ok(Some(end)) => break end,
            Err(end) => break end,
        }
        if !out.is_empty()
            && let Err(e) = write(&mut writer, &mut out, limits.write_timeout).await
        {
            break End::Lost(e);
        }
        let room = state.inflight.len() < usize::from(limits.max_inflight);
        tokio::select! {
            _ = shared.stop.cancelled() => break End::Shutdown,
            kicked = &mut attached.kicked => break match kicked {
                Ok(Kick::TakenOver) => End::TakenOver,
                Ok(Kick::Refused) | Err(_) => End::Refused,
            },
            read = tokio::time::timeout(quiet_limit, reader.read_buf(&mut buf)) => match read {
                Err(_) => break End::Lost(format!("nothing received for {quiet_limit:?}")),
                Ok(Err(e)) => break End::Lost(e.to_string()),
                Ok(Ok(0)) => break End::Lost("connection closed without DISCONNECT".into()),
                Ok(Ok(_)) => {}
            },
            down = attached.downlink.recv(), if room => {
                if let Some(down) = down {
                    state.send_down(down, &mut out);
                }
            }
        }
    };

    if !matches!(end, End::TakenOver | End::Refused) {
        shared.registry.detach(&prefix, attached.generation);
    }
    let counter = match &end {
        End::Clean => &shared.counts.ended_clean,
        End::TakenOver => &shared.counts.taken_over,
        End::Refused => &shared.counts.refused,
        End::Lost(_) | End::Shutdown => &shared.counts.ended_lost,
        End::Violation(_) => &shared.counts.violations,
        End::OverRate(_) => &shared.counts.over_rate,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(%device_id, %peer, end = ?end, "device session ended");
    if matches!(end, End::Lost(_) | End::Violation(_) | End::OverRate(_))
        && let Some(will) = connect.last_will
    {
        let _ = shared
            .uplink
            .send(Up {
                topic: will.topic,
                payload: will.message,
            })
            .await;
    }
    // Only a device that said goodbye gets a TLS close_notify. Every other end drops the
    // socket as it is: a client told politely that its connection closed (MQTT clients such
    // as libmosquitto) takes it for a network loss and reconnects to repeat what got it
    // closed; an abrupt close reads as the error it is.
    if end == End::Clean {
        let _ = writer.shutdown().await;
    }
    drop(admission);
}

/// Writes out what is pending, within `within`.
async fn write(writer: &mut Writer, out: &mut BytesMut, within: Duration) -> Result<(), String> {
    let written = tokio::time::timeout(within, async {
        writer.write_all(out).await?;
        writer.flush().await
    })
    .await;
    out.clear();
    match written {
        Err(_) => Err(format!("a write took longer than {within:?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(())) => Ok(()),
    }
}

struct State<'a> {
    wants_up: Arc<AtomicBool>,
    prefix: &'a str,
    shared: &'a Shared,
    meter: Meter,
    /// Filter → the QoS granted.
    subscriptions: HashMap<String, QoS>,
    /// Packet ids of QoS 1 messages awaiting their PUBACK.
    inflight: HashSet<u16>,
    next_pkid: u16,
}

impl State<'_> {
    /// Handles every complete packet in `buf`, queuing answers in `out`. `Ok(Some(end))` when
    /// the session ends normally, `Err(end)` when it must end for the device's fault.
    async fn take_packets(&mut self, buf: &mut BytesMut, out: &mut BytesMut) -> Result<Option<End>, End> {
        let limits = self.shared.limits;
        loop {
            let packet = match Packet::read(buf, limits.max_packet) {
                Ok(p) => p,
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => return Ok(None),
                Err(e) => return Err(End::Violation(format!("unreadable packet: {e}"))),
            };
            match packet {
                Packet::Publish(publish) => self.publish(publish, out).await?,
                Packet::PubAck(ack) => {
                    self.inflight.remove(&ack.pkid);
                }
                Packet::Subscribe(subscribe) => {
                    if subscribe.filters.is_empty() {
                        return Err(End::Violation("SUBSCRIBE without a filter".into()));
                    }
                    let mut codes = Vec::with_capacity(subscribe.filters.len());
                    for f in subscribe.filters {
                        codes.push(self.subscribe(f.path, f.qos)?);
                    }
                    let _ = SubAck::new(subscribe.pkid, codes).write(out);
                    self.update_watching();
                }
                Packet::Unsubscribe(unsubscribe) => {
                    for topic in &unsubscribe.topics {
                        self.subscriptions.remove(topic);
                    }
                    self.update_watching();
                    let _ = UnsubAck::new(unsubscribe.pkid).write(out);
                }
                Packet::PingReq => {
                    let _ = Packet::PingResp.write(out, limits.max_packet);
                }
                Packet::Disconnect => return Ok(Some(End::Clean)),
                other => {
                    return Err(End::Violation(format!(
                        "a client does not send {:?}",
                        packet_name(&other)
                    )));
                }
            }
        }
    }

    async fn publish(&mut self, publish: Publish, out: &mut BytesMut) -> Result<(), End> {
        if publish.qos == QoS::ExactlyOnce {
            return Err(End::Violation("QoS 2 is not accepted".into()));
        }
        if publish.retain {
            return Err(End::Violation("retained messages are not accepted".into()));
        }
        if !self.shared.rules.may_publish(self.prefix, &publish.topic) {
            return Err(End::Violation(format!(
                "publish to {:?} outside the device's topics",
                publish.topic
            )));
        }
        self.meter
            .admit(publish.payload.len(), Instant::now())
            .map_err(|e| End::OverRate(e.to_string()))?;
        let (qos, pkid) = (publish.qos, publish.pkid);
        self.shared.registry.loop_back(self.prefix, || Down {
            topic: publish.topic.clone(),
            payload: publish.payload.clone(),
        });
        self.shared
            .uplink
            .send(Up {
                topic: publish.topic,
                payload: publish.payload,
            })
            .await
            .map_err(|_| End::Shutdown)?;
        if qos == QoS::AtLeastOnce {
            let _ = PubAck::new(pkid).write(out);
        }
        Ok(())
    }

    /// A filter outside the device's prefix ends the session (as a publish outside it does);
    /// one past the subscription limit is refused in the SUBACK.
    fn subscribe(&mut self, filter: String, qos: QoS) -> Result<SubscribeReasonCode, End> {
        if !self.shared.rules.may_subscribe(self.prefix, &filter) {
            return Err(End::Violation(format!(
                "subscription to {filter:?} outside the device's topics"
            )));
        }
        let room =
            self.subscriptions.len() < self.shared.limits.max_subscriptions || self.subscriptions.contains_key(&filter);
        if !room {
            return Ok(SubscribeReasonCode::Failure);
        }
        let granted = match qos {
            QoS::AtMostOnce => QoS::AtMostOnce,
            QoS::AtLeastOnce | QoS::ExactlyOnce => QoS::AtLeastOnce,
        };
        self.subscriptions.insert(filter, granted);
        Ok(SubscribeReasonCode::Success(granted))
    }

    fn update_watching(&self) {
        let watching = self
            .subscriptions
            .keys()
            .any(|f| self.shared.rules.watches_up(self.prefix, f));
        self.shared.registry.set_watching(&self.wants_up, watching);
    }

    /// Queues a message for the device at the highest QoS of its matching subscriptions; a
    /// message no subscription matches is dropped, as a broker would.
    fn send_down(&mut self, down: Down, out: &mut BytesMut) {
        let qos = self
            .subscriptions
            .iter()
            .filter(|(filter, _)| matches(filter, &down.topic))
            .map(|(_, qos)| *qos)
            .max_by_key(|q| *q as u8);
        let Some(qos) = qos else { return };
        let mut publish = Publish::new(down.topic, qos, Vec::new());
        publish.payload = down.payload;
        if qos == QoS::AtLeastOnce {
            publish.pkid = self.take_pkid();
            self.inflight.insert(publish.pkid);
        }
        let _ = publish.write(out);
    }

    fn take_pkid(&mut self) -> u16 {
        loop {
            let pkid = self.next_pkid;
            self.next_pkid = self.next_pkid.checked_add(1).unwrap_or(1);
            if !self.inflight.contains(&pkid) {
                return pkid;
            }
        }
    }
}

fn packet_name(packet: &Packet) -> &'static str {
    match packet {
        Packet::Connect(_) => "CONNECT",
        Packet::ConnAck(_) => "CONNACK",
        Packet::Publish(_) => "PUBLISH",
        Packet::PubAck(_) => "PUBACK",
        Packet::PubRec(_) => "PUBREC",
        Packet::PubRel(_) => "PUBREL",
        Packet::PubComp(_) => "PUBCOMP",
        Packet::Subscribe(_) => "SUBSCRIBE",
        Packet::SubAck(_) => "SUBACK",
        Packet::Unsubscribe(_) => "UNSUBSCRIBE",
        Packet::UnsubAck(_) => "UNSUBACK",
        Packet::PingReq => "PINGREQ",
        Packet::PingResp => "PINGRESP",
        Packet::Disconnect => "DISCONNECT",
    }
}
