//! What devices send, into the broker: every session hands its messages to one queue, and one
//! thread feeds them to rumqttd through a single in-process link. The router sees one
//! connection and one subscriber (the control plane's `/tenants/+/up/#`) however many screens
//! there are, so its cost per message stays flat as the fleet grows.
//!
//! rumqttd's local link sends into the router with a blocking channel, hence a thread of its
//! own rather than a task; the queue in front of it is bounded, so a router that falls behind
//! slows the devices' sockets down (TCP back-pressure) instead of growing memory.

use std::thread::JoinHandle;

use bytes::Bytes;
use rumqttd::local::LinkTx;
use rumqttd::protocol::{Packet, Publish};
use tokio::sync::mpsc;

/// A message from a device, already checked against its jail.
#[derive(Debug, Clone)]
pub struct Up {
    pub topic: String,
    pub payload: Bytes,
}

/// Messages taken from the queue per hand-over to the router.
const BATCH: usize = 256;

/// The sessions' side of the uplink. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Uplink {
    tx: mpsc::Sender<Up>,
}

/// The router is gone (the broker thread died).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the broker's uplink has stopped")]
pub struct UplinkClosed;

impl Uplink {
    /// Starts the uplink thread publishing through `link`, behind a queue of `capacity`
    /// messages.
    pub fn spawn(link: LinkTx, capacity: usize) -> std::io::Result<(Self, JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let thread = std::thread::Builder::new()
            .name("mqtt-edge-uplink".into())
            .spawn(move || feed(link, rx))?;
        Ok((Self { tx }, thread))
    }

    /// Queues a message, waiting while the queue is full.
    pub async fn send(&self, up: Up) -> Result<(), UplinkClosed> {
        self.tx.send(up).await.map_err(|_| UplinkClosed)
    }
}

fn feed(mut link: LinkTx, mut rx: mpsc::Receiver<Up>) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(up) => batch.push(up),
                Err(_) => break,
            }
        }
        // All but the last go straight into the link's buffer; publishing the last one wakes
        // the router once for the whole batch (it drains the buffer on every wake).
        let last = batch.pop();
        {
            let mut buffer = link.buffer();
            for up in batch.drain(..) {
                buffer.push_back(Packet::Publish(
                    Publish::new(Bytes::from(up.topic), up.payload, false),
                    None,
                ));
            }
        }
        if let Some(up) = last
            && let Err(e) = link.publish(up.topic, up.payload)
        {
            tracing::error!(error = %e, "the broker's router is gone; the edge's uplink stops");
            return;
        }
    }
}
