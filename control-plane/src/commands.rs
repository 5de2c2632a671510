//! Sending commands to devices and waiting for their acknowledgements.
//!
//! Today this carries `ping`, which proves the whole command path (REST → broker → agent →
//! ack → REST) and measures its round trip. Durable, queued commands build on the same
//! envelope and acknowledgement.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use luach_broker::Publisher;
use luach_schemas::messages::{Ack, Command, CommandAction};
use luach_schemas::{DeviceId, DownKind, Envelope, Topic};
use tokio::sync::oneshot;

use crate::metrics::Metrics;

/// Most commands awaiting an acknowledgement at once; further sends are refused.
pub const MAX_PENDING: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("too many commands are awaiting acknowledgement")]
    Busy,
    #[error("the broker link is closed")]
    Link,
    #[error("no acknowledgement within {0:?}")]
    Timeout(Duration),
}

struct Pending {
    device: DeviceId,
    reply: oneshot::Sender<Ack>,
}

/// Sends commands and routes acknowledgements back to their waiting senders.
#[derive(Clone)]
pub struct Commands {
    pending: Arc<Mutex<HashMap<String, Pending>>>,
    publisher: Publisher,
    metrics: Metrics,
}

impl std::fmt::Debug for Commands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commands").finish_non_exhaustive()
    }
}

impl Commands {
    pub fn new(publisher: Publisher, metrics: Metrics) -> Self {
        Self {
            pending: Arc::default(),
            publisher,
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `action` to `device` and waits up to `timeout` for its acknowledgement.
    pub async fn send_and_wait(
        &self,
        device: &DeviceId,
        action: CommandAction,
        timeout: Duration,
    ) -> Result<Ack, CommandError> {
        let command_id = uuid::Uuid::now_v7().to_string();
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.lock();
            if pending.len() >= MAX_PENDING {
                return Err(CommandError::Busy);
            }
            pending.insert(
                command_id.clone(),
                Pending {
                    device: device.clone(),
                    reply: tx,
                },
            );
        }
        let now = Utc::now();
        let command = Command {
            command_id: command_id.clone(),
            expires_at: chrono::Duration::from_std(timeout).ok().map(|d| now + d),
            action,
        };
        let envelope = Envelope::new(command_id.clone(), DownKind::Command.as_str(), now, command);
        let topic = Topic::Down(device.clone(), DownKind::Command).to_string();
        if self.publisher.publish(topic, envelope.to_bytes()).await.is_err() {
            self.lock().remove(&command_id);
            return Err(CommandError::Link);
        }
        self.metrics.mqtt_messages_out.with_label_values(&["command"]).inc();
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(ack)) => Ok(ack),
            _ => {
                self.lock().remove(&command_id);
                Err(CommandError::Timeout(timeout))
            }
        }
    }

    /// Checks that the broker's router accepts messages.
    pub async fn probe_broker(&self) -> Result<(), luach_broker::LinkClosed> {
        self.publisher.probe().await
    }

    /// Delivers an acknowledgement from `device`. Acks for unknown commands, or for commands
    /// sent to a different device, are dropped (returns false).
    pub fn acknowledge(&self, device: &DeviceId, ack: Ack) -> bool {
        let mut pending = self.lock();
        match pending.get(&ack.command_id) {
            Some(p) if &p.device == device => {
                let Some(p) = pending.remove(&ack.command_id) else {
                    return false;
                };
                p.reply.send(ack).is_ok()
            }
            _ => false,
        }
    }
}
