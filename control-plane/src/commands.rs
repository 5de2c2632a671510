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
use luach_schemas::{DeviceId, DownKind, TenantId, TopicPrefix};
use tokio::sync::oneshot;

use crate::metrics::Metrics;

/// Most commands awaiting an acknowledgement at once, in all tenants; further sends are refused.
pub const MAX_PENDING: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("too many commands are awaiting acknowledgement")]
    Busy,
    #[error("this tenant has {0} commands awaiting acknowledgement, its most")]
    TenantBusy(usize),
    #[error("the broker link is closed")]
    Link,
    #[error("no acknowledgement within {0:?}")]
    Timeout(Duration),
    #[error("a command with this id awaits its acknowledgement")]
    InFlight,
}

struct Pending {
    device: DeviceId,
    tenant: TenantId,
    reply: oneshot::Sender<Ack>,
}

#[derive(Default)]
struct Table {
    by_id: HashMap<String, Pending>,
    /// Commands awaiting acknowledgement, per tenant (one tenant cannot take them all).
    per_tenant: HashMap<TenantId, usize>,
}

impl Table {
    fn remove(&mut self, command_id: &str) -> Option<Pending> {
        let p = self.by_id.remove(command_id)?;
        if let Some(n) = self.per_tenant.get_mut(&p.tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_tenant.remove(&p.tenant);
            }
        }
        Some(p)
    }
}

/// Removes a command from the table when its sender stops waiting.
struct Forget<'a> {
    commands: &'a Commands,
    command_id: &'a str,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.commands.lock().remove(self.command_id);
    }
}

/// Sends commands and routes acknowledgements back to their waiting senders.
#[derive(Clone)]
pub struct Commands {
    pending: Arc<Mutex<Table>>,
    publisher: Publisher,
    metrics: Metrics,
    per_tenant: usize,
    /// Where acknowledgements nobody here waits for go (other replicas' callers).
    relay: Option<crate::relay::AckRelay>,
}

impl std::fmt::Debug for Commands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commands").finish_non_exhaustive()
    }
}

impl Commands {
    /// `per_tenant`: most commands one tenant may have awaiting acknowledgement.
    pub fn new(publisher: Publisher, metrics: Metrics, per_tenant: usize) -> Self {
        Self {
            pending: Arc::default(),
            publisher,
            metrics,
            per_tenant,
            relay: None,
        }
    }

    /// Relays acknowledgements that no caller of this replica waits for through `relay`.
    #[must_use]
    pub fn with_relay(mut self, relay: Option<crate::relay::AckRelay>) -> Self {
        self.relay = relay;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `action` to `device` of `tenant` (listening under `prefix`) and waits up to
    /// `timeout` for its acknowledgement.
    pub async fn send_and_wait(
        &self,
        tenant: &TenantId,
        device: &DeviceId,
        prefix: &TopicPrefix,
        action: CommandAction,
        timeout: Duration,
    ) -> Result<Ack, CommandError> {
        let command_id = uuid::Uuid::now_v7().to_string();
        self.send_as_and_wait(command_id, tenant, device, prefix, action, timeout)
            .await
    }

    /// [`Commands::send_and_wait`] with the command id given: a device that has seen the id
    /// answers again without running it (how a command is re-sent after a restart).
    pub async fn send_as_and_wait(
        &self,
        command_id: String,
        tenant: &TenantId,
        device: &DeviceId,
        prefix: &TopicPrefix,
        action: CommandAction,
        timeout: Duration,
    ) -> Result<Ack, CommandError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut table = self.lock();
            if table.by_id.len() >= MAX_PENDING {
                return Err(CommandError::Busy);
            }
            if table.by_id.contains_key(&command_id) {
                return Err(CommandError::InFlight);
            }
            let mine = table.per_tenant.get(tenant).copied().unwrap_or(0);
            if mine >= self.per_tenant {
                return Err(CommandError::TenantBusy(mine));
            }
            *table.per_tenant.entry(tenant.clone()).or_insert(0) += 1;
            table.by_id.insert(
                command_id.clone(),
                Pending {
                    device: device.clone(),
                    tenant: tenant.clone(),
                    reply: tx,
                },
            );
        }
        // However this ends (answer, time-out, broker error, or the caller going away, which
        // drops this future), the command leaves the table.
        let _pending = Forget {
            commands: self,
            command_id: &command_id,
        };
        let now = Utc::now();
        let command = Command {
            command_id: command_id.clone(),
            expires_at: chrono::Duration::from_std(timeout).ok().map(|d| now + d),
            action,
        };
        let sent = crate::down::publish(
            &self.publisher,
            &self.metrics,
            prefix,
            DownKind::Command,
            command_id.clone(),
            now,
            command,
        );
        if sent.await.is_err() {
            return Err(CommandError::Link);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(ack)) => Ok(ack),
            _ => Err(CommandError::Timeout(timeout)),
        }
    }

    /// Checks that the broker's router accepts messages.
    pub async fn probe_broker(&self) -> Result<(), luach_broker::LinkClosed> {
        self.publisher.probe().await
    }

    /// Delivers an acknowledgement from `device` that arrived from the broker: to its caller
    /// here, or else to the other replicas through the relay. "Received" notes are dropped.
    /// True when a caller here got it.
    pub fn acknowledge(&self, device: &DeviceId, ack: Ack) -> bool {
        if ack.status == luach_schemas::messages::AckStatus::Received {
            // Not an outcome: the sender waits for the one that follows.
            return false;
        }
        let waited_here = self.lock().by_id.contains_key(&ack.command_id);
        if !waited_here && let Some(relay) = &self.relay {
            relay.publish(device, ack);
            return false;
        }
        self.acknowledge_here(device, ack)
    }

    /// Delivers an acknowledgement from `device` to its caller on this replica. Acks for
    /// unknown commands, for commands sent to a different device, and "received" notes are
    /// dropped (returns false).
    pub fn acknowledge_here(&self, device: &DeviceId, ack: Ack) -> bool {
        if ack.status == luach_schemas::messages::AckStatus::Received {
            return false;
        }
        let mut table = self.lock();
        match table.by_id.get(&ack.command_id) {
            Some(p) if &p.device == device => {
                let Some(p) = table.remove(&ack.command_id) else {
                    return false;
                };
                p.reply.send(ack).is_ok()
            }
            _ => false,
        }
    }
}
