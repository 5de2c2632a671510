//! Acknowledgements that cross replicas.
//!
//! Behind an external broker the replicas share device uplink round-robin, so the answer to a
//! direct command (a ping, say) may reach a replica other than the one whose caller waits for
//! it. A replica that receives an acknowledgement it has no waiter for publishes it on the
//! Redis channel [`CHANNEL`]; every replica hands what it hears there to its own
//! [`Commands`] table, and the one waiting answers its caller. Relayed acknowledgements are
//! never relayed again. Like every pub/sub message, one published while Redis is down is lost,
//! and its caller gets the time-out error it would get from a screen that never answered.
//!
//! Job executions need no relay: their acknowledgements are applied to the store by whichever
//! replica receives them, and waiters re-read the store.

use luach_schemas::DeviceId;
use luach_schemas::messages::Ack;
use serde::{Deserialize, Serialize};
use socketioxide_redis::drivers::Driver;
use tokio_util::sync::CancellationToken;

use crate::commands::Commands;
use crate::live_redis::ManagedDriver;
use crate::metrics::Metrics;

/// The Redis channel of relayed acknowledgements.
pub const CHANNEL: &str = "luach:replicas:acks";
/// Relayed acknowledgements buffered before the relay drops (its caller times out).
const BUFFER: usize = 4_096;

#[derive(Debug, Serialize, Deserialize)]
struct Relayed {
    device_id: DeviceId,
    ack: Ack,
}

/// Publishes acknowledgements this replica has no waiter for.
#[derive(Clone)]
pub struct AckRelay {
    driver: ManagedDriver,
    metrics: Metrics,
}

impl std::fmt::Debug for AckRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckRelay").finish_non_exhaustive()
    }
}

impl AckRelay {
    /// Connects to the Redis at `url` (the one Socket.IO fans out through).
    pub async fn connect(url: &str, metrics: Metrics) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(crate::live::resp3(url))?;
        Ok(Self {
            driver: ManagedDriver::connect(client).await?,
            metrics,
        })
    }

    /// Hands `ack` from `device` to the other replicas (in the background).
    pub fn publish(&self, device: &DeviceId, ack: Ack) {
        let body = match serde_json::to_vec(&Relayed {
            device_id: device.clone(),
            ack,
        }) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "acknowledgement not relayed");
                return;
            }
        };
        let driver = self.driver.clone();
        self.metrics.acks_relayed.with_label_values(&["sent"]).inc();
        tokio::spawn(async move {
            if let Err(e) = driver.publish(CHANNEL.to_owned(), body).await {
                tracing::warn!(error = %e, "acknowledgement not relayed to other replicas");
            }
        });
    }

    /// Delivers relayed acknowledgements to `commands` until `shutdown`.
    pub async fn run(self, commands: Commands, shutdown: CancellationToken) {
        let mut stream = match self.driver.subscribe(CHANNEL.to_owned(), BUFFER).await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::error!(error = %e, "not subscribed to relayed acknowledgements; commands answered through another replica will time out");
                return;
            }
        };
        loop {
            let item = tokio::select! {
                _ = shutdown.cancelled() => return,
                item = futures::StreamExt::next(&mut stream) => item,
            };
            let Some((_, body)) = item else { return };
            match serde_json::from_slice::<Relayed>(&body) {
                Ok(r) => {
                    if commands.acknowledge_here(&r.device_id, r.ack) {
                        self.metrics.acks_relayed.with_label_values(&["answered"]).inc();
                    }
                }
                Err(e) => tracing::warn!(error = %e, "unreadable relayed acknowledgement ignored"),
            }
        }
    }
}
