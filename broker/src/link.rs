//! The control plane's in-process connection to the broker router.

use std::sync::Arc;

use tokio::sync::Mutex;

use bytes::Bytes;
use rumqttd::Notification;
use rumqttd::local::{LinkRx, LinkTx};

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
    pub(crate) fn new(tx: LinkTx, rx: LinkRx) -> Self {
        Self {
            rx,
            publisher: Publisher {
                inner: Arc::new(Mutex::new(PublisherInner { tx })),
            },
        }
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

/// Publishes to device topics through the in-process link. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Mutex<PublisherInner>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").finish_non_exhaustive()
    }
}

impl Publisher {
    /// Publishes to a device topic.
    ///
    /// Local links publish at QoS 0 into the router; rumqttd forwards with the *subscriber's*
    /// QoS, so agents (which subscribe at QoS 1) still receive with acknowledgement and
    /// retransmission. This only pushes into the router's buffer and signals it.
    pub async fn publish(&self, topic: String, payload: Vec<u8>) -> Result<(), LinkClosed> {
        let mut inner = self.inner.lock().await;
        inner
            .tx
            .publish(Bytes::from(topic), Bytes::from(payload))
            .map(|_| ())
            .map_err(|e| LinkClosed(e.to_string()))
    }

    /// Checks that the router accepts messages, by publishing an empty message to a topic
    /// no device can subscribe to (it is outside every device's prefix).
    pub async fn probe(&self) -> Result<(), LinkClosed> {
        self.publish(PROBE_TOPIC.to_owned(), Vec::new()).await
    }
}

/// Topic of [`Publisher::probe`].
pub const PROBE_TOPIC: &str = "/luach/probe";
