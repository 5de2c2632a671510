//! The dispatcher: one task per installation (under the `notify` lease) that sends due
//! messages from the outbox and records each attempt.
//!
//! ```text
//!  every `notify.poll_ms`: due messages (oldest first, `notify.batch`)
//!     │  up to `notify.concurrency` at once
//!     ▼
//!  channel still there and not disabled? ─▶ sender ─▶ Outcome
//!     Sent          ─▶ sent (receipt kept)
//!     Retry         ─▶ pending, next_at = now + back-off with jitter; failed after max_attempts
//!     Fail{disable} ─▶ failed; a webhook answering 410, or failing its last attempt, is disabled
//! ```
//!
//! Congregation notices (see [`super::notices`]) have no channel: they go straight to the
//! person, by the kind the message names. The same task looks for due notices every
//! `notify.notices_every_secs`.
//!
//! Each record is moved by compare-and-set on (state, attempts), so a message is counted once
//! even if two replicas overlap at a lease hand-over. Delivery is at least once: a crash after
//! the receiver took a message and before the record says so sends it again, with the same
//! `webhook-id` (receivers de-duplicate on it, as Standard Webhooks ask).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::channel::{Channel, ChannelKind, Disabled};
use super::notices;
use super::send::{Outcome, Senders};
use crate::auth::Clock;
use crate::chain::Actor;
use crate::config::NotifyConfig;
use crate::lease::Lease;
use crate::metrics::Metrics;
use crate::store::{Delivery, DeliveryState, StoreResult, SystemStore};

/// The wait before attempt `attempts + 1`, after `attempts` failed ones: `base · 2^(attempts-1)`
/// capped at `max`, of which the second half is random ("equal jitter": never shorter than half,
/// so waits still grow, and receivers recovering from an outage are not hit by every sender at
/// once).
pub fn backoff(attempts: u32, base: Duration, max: Duration, unit_random: f64) -> Duration {
    let exp = attempts.saturating_sub(1).min(30);
    let full = base.saturating_mul(1 << exp).min(max);
    full / 2 + full.mul_f64(unit_random.clamp(0.0, 1.0) / 2.0)
}

/// The dispatcher task.
pub struct Dispatcher {
    system: SystemStore,
    senders: Senders,
    metrics: Metrics,
    clock: Arc<dyn Clock>,
    lease: Lease,
    config: NotifyConfig,
}

impl Dispatcher {
    pub fn new(
        system: SystemStore,
        senders: Senders,
        metrics: Metrics,
        clock: Arc<dyn Clock>,
        lease: Lease,
        config: NotifyConfig,
    ) -> Self {
        Self {
            system,
            senders,
            metrics,
            clock,
            lease,
            config,
        }
    }

    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_millis(self.config.poll_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let notices_every = Duration::from_secs(self.config.notices_every_secs);
        let mut notices_at: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if !self.lease.held().await {
                notices_at = None;
                continue;
            }
            if notices_at.is_none_or(|at| at.elapsed() >= notices_every) {
                notices_at = Some(tokio::time::Instant::now());
                if let Err(e) = self.notices().await {
                    tracing::error!(error = %e, "congregation notices not queued; trying again later");
                }
            }
            // A full batch means more are due: go on without waiting for the next tick.
            loop {
                match self.pass().await {
                    Ok(n) if n >= self.config.batch as usize && !shutdown.is_cancelled() => {}
                    Ok(_) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "notification pass failed; retrying on the next tick");
                        break;
                    }
                }
            }
        }
        self.lease.release().await;
    }

    /// Sends what is due now; answers how many messages it took.
    pub async fn pass(&self) -> StoreResult<usize> {
        let due = self.system.due_deliveries(self.clock.now(), self.config.batch).await?;
        let n = due.len();
        futures::stream::iter(due)
            .for_each_concurrent(self.config.concurrency, |d| async move {
                if let Err(e) = self.deliver(d).await {
                    tracing::error!(error = %e, "a message's attempt was not recorded; it is tried again");
                }
            })
            .await;
        Ok(n)
    }

    /// Queues the congregation notices due now in every tenant.
    pub async fn notices(&self) -> StoreResult<usize> {
        let installation = self.system.installation_scope(Actor::system());
        let tenants = self.system.installation(&installation).tenants().await?;
        let now = self.clock.now();
        let mut due = 0;
        for tenant in tenants {
            let scope = self.system.scope(tenant.id.clone(), Actor::system());
            match notices::queue(&self.system.tenant(&scope), now).await {
                Ok(n) => due += n,
                Err(e) => tracing::error!(error = %e, tenant_id = %tenant.id, "notices of a tenant not queued"),
            }
        }
        Ok(due)
    }

    async fn deliver(&self, d: Delivery) -> StoreResult<()> {
        let scope = self.system.scope(d.tenant_id.clone(), Actor::system());
        let store = self.system.tenant(&scope);
        let direct = d.channel_id == notices::NOTICE_CHANNEL;
        let channel = if direct {
            None
        } else {
            store.get::<Channel>(&d.channel_id).await?
        };
        let outcome = match (&channel, ChannelKind::parse(&d.kind)) {
            // A notice goes straight to its person.
            (None, Some(kind)) if direct => self.attempt(kind, None, &d).await,
            (None, _) if direct => Outcome::fail(format!("no sender of kind {:?}", d.kind)),
            (None, _) => Outcome::fail("the channel was removed"),
            (Some(c), _) => match &c.input.disabled {
                Some(off) => Outcome::fail(format!("the channel is disabled: {}", off.reason)),
                None => self.attempt(c.input.spec.kind, c.input.secret.as_deref(), &d).await,
            },
        };
        let now = self.clock.now();
        let mut next = d.clone();
        next.attempts = d.attempts + 1;
        next.updated_at = now;
        let mut disable = None;
        let label = match outcome {
            Outcome::Sent(receipt) => {
                next.state = DeliveryState::Sent;
                next.sent_at = Some(now);
                next.receipt = Some(receipt);
                next.last_error = None;
                "sent"
            }
            Outcome::Retry(why) if next.attempts < self.config.max_attempts => {
                let wait = backoff(
                    next.attempts,
                    Duration::from_secs(self.config.retry_base_secs),
                    Duration::from_secs(self.config.retry_max_secs),
                    rand::random::<f64>(),
                );
                next.next_at = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
                next.last_error = Some(why);
                "retried"
            }
            Outcome::Retry(why) => {
                next.state = DeliveryState::Failed;
                let why = format!("gave up after {} attempts; last: {why}", next.attempts);
                // A webhook that has failed every attempt for hours is not listening.
                if d.kind == ChannelKind::Webhook.as_str() {
                    disable = Some(why.clone());
                }
                next.last_error = Some(why);
                "failed"
            }
            Outcome::Fail { why, disable: off } => {
                next.state = DeliveryState::Failed;
                if off {
                    disable = Some(why.clone());
                }
                next.last_error = Some(why);
                "failed"
            }
        };
        if !self.system.settle_delivery(&d, &next).await? {
            // Another dispatcher recorded this attempt (a lease hand-over).
            return Ok(());
        }
        self.metrics.notifications.with_label_values(&[&d.kind, label]).inc();
        if let (Some(reason), Some(c)) = (disable, channel) {
            let mut off = c.input;
            off.disabled = Some(Disabled { at: now, reason });
            store.put(&c.id, off, now).await?;
            tracing::warn!(tenant_id = %d.tenant_id, channel_id = %d.channel_id, "notification channel disabled");
        }
        Ok(())
    }

    /// One attempt at `d` by `kind` (a webhook signs with `secret`).
    async fn attempt(&self, kind: ChannelKind, secret: Option<&str>, d: &Delivery) -> Outcome {
        let text = |field: &str| d.payload[field].as_str().unwrap_or_default().to_owned();
        let unconfigured = |what: &str| Outcome::fail(format!("{what} is not configured on this installation"));
        match kind {
            ChannelKind::Email => match &self.senders.email {
                Some(email) => email.send(&d.recipient, &text("subject"), &text("text")).await,
                None => unconfigured("email (notify.smtp)"),
            },
            kind @ (ChannelKind::Sms | ChannelKind::Whatsapp) => match &self.senders.twilio {
                Some(twilio) => {
                    twilio
                        .send(kind == ChannelKind::Whatsapp, &d.recipient, &text("text"))
                        .await
                }
                None => unconfigured("Twilio (notify.twilio)"),
            },
            ChannelKind::Webhook => match secret {
                Some(secret) => {
                    self.senders
                        .webhook
                        .send(&d.recipient, secret, &d.id, &text("body"), self.clock.now())
                        .await
                }
                None => Outcome::fail("the webhook has no signing secret; rotate it"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_are_capped_and_never_shorter_than_half() {
        let (base, max) = (Duration::from_secs(30), Duration::from_secs(3_600));
        assert_eq!(backoff(1, base, max, 0.0), Duration::from_secs(15));
        assert_eq!(backoff(1, base, max, 1.0), Duration::from_secs(30));
        assert_eq!(backoff(2, base, max, 1.0), Duration::from_secs(60));
        assert_eq!(backoff(3, base, max, 0.5), Duration::from_secs(90));
        assert_eq!(backoff(20, base, max, 1.0), max);
        assert_eq!(backoff(u32::MAX, base, max, 0.0), max / 2);
        // With equal jitter each wait is at least the previous one's longest.
        for n in 1..12 {
            assert!(backoff(n + 1, base, max, 0.0) >= backoff(n, base, max, 1.0).min(max / 2));
        }
    }
}
