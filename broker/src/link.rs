//! The control plane's in-process connection to the broker router.

use std::sync::{Arc, OnceLock};

use tokio::sync::Mutex;

use bytes::Bytes;
use rumqttd::Notification;
use rumqttd::local::{LinkRx, LinkTx};

use crate::edge::Edge;

/// The router went away (the broker thread died).
#[derive(Debug, Clone, thiserror::Error)]
#[error("broker link closed: {0}")]
pub struct LinkClosed(String);

/// A message a device published.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub topic: Bytes,
    pub payload: Bytes,
}

/// Receiving half of the control plane's link; subscribe first, then call [`LocalLink::next`].
pub struct LocalLink {
    rx: LinkRx,
    publisher: Publisher,
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
            rx,
            publisher: Publisher {
                inner: Arc::new(Mutex::new(PublisherInner { tx })),
                edge: Arc::new(OnceLock::new()),
                to_router,
            },
        }
    }

    /// Sends device messages through `edge` from now on.
    pub(crate) fn attach_edge(&self, edge: Edge) {
        let _ = self.publisher.edge.set(edge);
    }

    /// Subscribes the link to a topic filter (e.g. `/tenants/+/up/#`).
    pub async fn subscribe(&mut self, filter: &str) -> Result<(), LinkClosed> {
        let mut inner = self.publisher.inner.lock().await;
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
        loop {
            match self.rx.next().await {
                Ok(Some(Notification::Forward(forward))) => {
                    return Ok(Inbound {
                        topic: forward.publish.topic,
                        payload: forward.publish.payload,
                    });
                }
                // The router paused us because our outgoing buffer filled; we have drained it,
                // so ask to be scheduled again.
                Ok(Some(Notification::Unschedule)) => {
                    self.rx.wake().await.map_err(|e| LinkClosed(e.to_string()))?;
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
/// to its session), and into the router for clients of the plain listener. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Mutex<PublisherInner>>,
    edge: Arc<OnceLock<Edge>>,
    to_router: bool,
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
    pub async fn publish(&self, topic: String, payload: Vec<u8>) -> Result<(), LinkClosed> {
        let payload = Bytes::from(payload);
        if let Some(edge) = self.edge.get()
            && edge.deliver(&topic, payload.clone()).is_some()
            && !self.to_router
        {
            return Ok(());
        }
        self.to_router_now(topic, payload).await
    }

    async fn to_router_now(&self, topic: String, payload: Bytes) -> Result<(), LinkClosed> {
        let mut inner = self.inner.lock().await;
        inner
            .tx
            .publish(Bytes::from(topic), payload)
            .map(|_| ())
            .map_err(|e| LinkClosed(e.to_string()))
    }

    /// Checks that the router accepts messages, by publishing an empty message to a topic
    /// no device can subscribe to (it is outside every device's prefix).
    pub async fn probe(&self) -> Result<(), LinkClosed> {
        self.to_router_now(PROBE_TOPIC.to_owned(), Bytes::new()).await
    }
}

/// Topic of [`Publisher::probe`].
pub const PROBE_TOPIC: &str = "/luach/probe";
