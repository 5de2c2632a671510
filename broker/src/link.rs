//! The control plane's connection to device traffic: an in-process link into the embedded
//! router, or a client connection to an external broker ([`crate::external`]). Either way the
//! control plane sees one [`LocalLink`] to read from and one [`Publisher`] to send with.

use std::sync::{Arc, OnceLock};

use tokio::sync::Mutex;

use bytes::Bytes;
use rumqttd::Notification;
use rumqttd::local::{LinkRx, LinkTx};

use crate::edge::Edge;

/// The router went away (the broker thread died).
#[derive(Debug, Clone, thiserror::Error)]
#[error("broker link closed: {0}")]
pub struct LinkClosed(pub(crate) String);

/// A message a device published.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub topic: Bytes,
    pub payload: Bytes,
}

/// Receiving half of the control plane's link; subscribe first, then call [`LocalLink::next`].
pub struct LocalLink {
    source: Source,
    publisher: Publisher,
}

/// Where device messages come from.
enum Source {
    /// The embedded router.
    Router(LinkRx),
    /// An external broker's connection task ([`crate::external`]); it subscribed already.
    External(tokio::sync::mpsc::Receiver<Inbound>),
}

impl std::fmt::Debug for LocalLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLink").finish_non_exhaustive()
    }
}

impl LocalLink {
    /// `to_router`: also publish device messages into the router (for clients of the plain
    /// listener, which the router serves).
    pub(crate) fn new(tx: LinkTx, rx: LinkRx, to_router: bool) -> Self {
        Self {
            source: Source::Router(rx),
            publisher: Publisher {
                sink: Sink::Router {
                    inner: Arc::new(Mutex::new(PublisherInner { tx })),
                    edge: Arc::new(OnceLock::new()),
                    to_router,
                },
            },
        }
    }

    /// A link fed by an external broker's connection task, publishing through `client`.
    pub(crate) fn external(rx: tokio::sync::mpsc::Receiver<Inbound>, connection: crate::external::Connection) -> Self {
        Self {
            source: Source::External(rx),
            publisher: Publisher {
                sink: Sink::External(connection),
            },
        }
    }

    /// Sends device messages through `edge` from now on.
    pub(crate) fn attach_edge(&self, edge: Edge) {
        if let Sink::Router { edge: slot, .. } = &self.publisher.sink {
            let _ = slot.set(edge);
        }
    }

    /// Subscribes the link to a topic filter (e.g. `/tenants/+/up/#`). On an external broker
    /// the connection subscribed to its filter already, and again after every reconnection;
    /// this does nothing there.
    pub async fn subscribe(&mut self, filter: &str) -> Result<(), LinkClosed> {
        let Sink::Router { inner, .. } = &self.publisher.sink else {
            return Ok(());
        };
        let mut inner = inner.lock().await;
        inner
            .tx
            .subscribe(filter)
            .map(|_| ())
            .map_err(|e| LinkClosed(e.to_string()))
    }

    /// A cloneable handle for publishing to devices.
    pub fn publisher(&self) -> Publisher {
        self.publisher.clone()
    }

    /// Waits for the next message a device published on a subscribed topic.
    ///
    /// Router bookkeeping (acks to our own publishes, flow-control pauses) is handled here and
    /// never surfaces.
    pub async fn next(&mut self) -> Result<Inbound, LinkClosed> {
        let rx = match &mut self.source {
            Source::Router(rx) => rx,
            Source::External(rx) => {
                return rx
                    .recv()
                    .await
                    .ok_or_else(|| LinkClosed("the external broker connection stopped".into()));
            }
        };
        loop {
            match rx.next().await {
                Ok(Some(Notification::Forward(forward))) => {
                    return Ok(Inbound {
                        topic: forward.publish.topic,
                        payload: forward.publish.payload,
                    });
                }
                // The router paused us because our outgoing buffer filled; we have drained it,
                // so ask to be scheduled again.
                Ok(Some(Notification::Unschedule)) => {
                    rx.wake().await.map_err(|e| LinkClosed(e.to_string()))?;
                }
                Ok(Some(_)) | Ok(None) => {}
                Err(e) => return Err(LinkClosed(e.to_string())),
            }
        }
    }
}

struct PublisherInner {
    tx: LinkTx,
}

/// Publishes to device topics: to a device on the mutual-TLS port through the edge (straight
/// to its session), and into the router for clients of the plain listener; or to the
/// external broker. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    sink: Sink,
}

#[derive(Clone)]
enum Sink {
    Router {
        inner: Arc<Mutex<PublisherInner>>,
        edge: Arc<OnceLock<Edge>>,
        to_router: bool,
    },
    External(crate::external::Connection),
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").finish_non_exhaustive()
    }
}

impl Publisher {
    /// Publishes to a device topic.
    ///
    /// A device on the edge gets the message at the QoS it subscribed with (agents subscribe
    /// at QoS 1: acknowledged); a device that is offline or does not read its queue misses it,
    /// as with a broker and a clean session (the command outbox sends again). Never waits for
    /// a device.
    ///
    /// Into the router, local links publish at QoS 0; rumqttd forwards with the
    /// *subscriber's* QoS. This only pushes into the router's buffer and signals it.
    ///
    /// To an external broker: at QoS 1 through the connection's request queue, without waiting
    /// for the broker's acknowledgement; a full queue (the broker unreachable for long) is an
    /// error, which the command outbox answers by sending again later.
    pub async fn publish(&self, topic: String, payload: Vec<u8>) -> Result<(), LinkClosed> {
        let payload = Bytes::from(payload);
        match &self.sink {
            Sink::External(connection) => connection.publish(topic, payload),
            Sink::Router { inner, edge, to_router } => {
                if let Some(edge) = edge.get()
                    && edge.deliver(&topic, payload.clone()).is_some()
                    && !to_router
                {
                    return Ok(());
                }
                to_router_now(inner, topic, payload).await
            }
        }
    }

    /// Checks that the router accepts messages, by publishing an empty message to a topic
    /// no device can subscribe to (it is outside every device's prefix).
    ///
    /// On an external broker: whether the connection is up.
    pub async fn probe(&self) -> Result<(), LinkClosed> {
        match &self.sink {
            Sink::External(connection) => connection.probe(),
            Sink::Router { inner, .. } => to_router_now(inner, PROBE_TOPIC.to_owned(), Bytes::new()).await,
        }
    }
}

/// Pushes one message into the router's buffer and signals it.
async fn to_router_now(inner: &Mutex<PublisherInner>, topic: String, payload: Bytes) -> Result<(), LinkClosed> {
    let mut inner = inner.lock().await;
    inner
        .tx
        .publish(Bytes::from(topic), payload)
        .map(|_| ())
        .map_err(|e| LinkClosed(e.to_string()))
}

/// Topic of [`Publisher::probe`].
pub const PROBE_TOPIC: &str = "/luach/probe";
