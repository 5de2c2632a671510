//! The notification outbox: one record per message to send (an email to one address, a
//! webhook call, a text message), written in the same transaction as the change it tells of
//! (an alert opened or resolved), so a crash between the commit and the send loses nothing:
//! the sender finds the message still pending and sends it.
//!
//! ```text
//!  pending ──sent──▶ sent
//!     │  └─failed, attempts left─▶ pending (next_at moved on: back-off)
//!     └──failed for good / refused (e.g. HTTP 410)──▶ failed
//! ```
//!
//! Every change is a compare-and-set on (state, attempts): two senders never both count an
//! attempt.

use chrono::{DateTime, Utc};
use luach_schemas::TenantId;
use serde::{Deserialize, Serialize};

use super::handle::Inner;
use super::model::Page;
use super::{StoreError, StoreResult, TenantScope};
use crate::store::backend::Backend;

/// Largest page of deliveries.
pub const MAX_DELIVERY_PAGE: u32 = 500;

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Sent,
    Failed,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 3] = [Self::Pending, Self::Sent, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Pending may be retried (pending again), sent or given up; sent and failed are final.
    pub fn can_move_to(self, to: Self) -> bool {
        matches!((self, to), (Self::Pending, Self::Pending | Self::Sent | Self::Failed))
    }
}

/// One message to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Delivery {
    /// Time-ordered (UUID v7).
    pub id: String,
    pub tenant_id: TenantId,
    /// The tenant's channel it goes through.
    pub channel_id: String,
    /// `email`, `sms`, `whatsapp` or `webhook`.
    pub kind: String,
    /// The address, number or URL.
    pub recipient: String,
    /// What it tells of, e.g. `alert.opened`.
    pub event: String,
    /// The alert (or other record) it tells of.
    pub subject_id: Option<String>,
    /// What the sender needs to build the message (subject and text, or the webhook body).
    pub payload: serde_json::Value,
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not sent before this moment (the back-off after a failure).
    pub next_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// Why it was held back when queued (Shabbat or Yom Tov, quiet hours); `next_at` says
    /// until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
    /// What the receiving end answered when it took the message (an SMTP reply, Twilio's
    /// message SID, an HTTP status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl Delivery {
    /// A message not tried yet (its payload still empty): to `recipient` by `kind` (through
    /// channel `channel_id`, or `""` for none), telling of `event`, due at `due` (held back
    /// for `hold`).
    pub fn pending(
        tenant_id: TenantId,
        channel_id: &str,
        kind: &str,
        recipient: String,
        event: &str,
        (due, hold): (DateTime<Utc>, Option<String>),
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            tenant_id,
            channel_id: channel_id.to_owned(),
            kind: kind.to_owned(),
            recipient,
            event: event.to_owned(),
            subject_id: None,
            payload: serde_json::Value::Null,
            state: DeliveryState::Pending,
            attempts: 0,
            next_at: due,
            last_error: None,
            hold,
            receipt: None,
            created_at: now,
            updated_at: now,
            sent_at: None,
        }
    }
}

/// One tenant's message log (from [`super::TenantStore::deliveries`]).
pub struct TenantDeliveries<'a> {
    inner: &'a Inner,
    scope: &'a TenantScope,
}

impl<'a> TenantDeliveries<'a> {
    pub(super) fn new(inner: &'a Inner, scope: &'a TenantScope) -> Self {
        Self { inner, scope }
    }

    fn b(&self) -> &dyn Backend {
        self.inner.backend.as_ref()
    }

    /// Queues messages that tell of no stored change (a channel's test message).
    pub async fn enqueue(&self, mut deliveries: Vec<Delivery>) -> StoreResult<()> {
        for d in &mut deliveries {
            d.tenant_id = self.scope.tenant().clone();
        }
        self.inner
            .timed("deliveries.insert", self.b().insert_deliveries(&deliveries))
            .await
    }

    /// Newest first.
    pub async fn list(&self, limit: u32, after: Option<&str>) -> StoreResult<Page<Delivery>> {
        let limit = limit.clamp(1, MAX_DELIVERY_PAGE);
        let (items, total) = self
            .inner
            .timed(
                "deliveries.list",
                self.b().list_deliveries(self.scope.tenant(), limit + 1, after),
            )
            .await?;
        Ok(Page::from_fetched(items, limit, total, |d| d.id.clone()))
    }
}

/// The smallest message id (UUID v7, time-ordered as text) made at or after `at`.
pub fn id_floor(at: DateTime<Utc>) -> String {
    let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0) & 0xffff_ffff_ffff;
    format!("{:08x}-{:04x}-7000-8000-000000000000", ms >> 16, ms & 0xffff)
}

/// Checks a delivery's move before the backend compares and sets it.
pub(super) fn check_move(from: &Delivery, next: &Delivery) -> StoreResult<()> {
    if from.id != next.id || from.tenant_id != next.tenant_id || !from.state.can_move_to(next.state) {
        return Err(StoreError::Corrupt(format!(
            "refused transition: delivery {} {} → {}",
            from.id,
            from.state.as_str(),
            next.state.as_str()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::DeliveryState;

    #[test]
    fn id_floors_order_with_the_ids_made_from_then_on() {
        let at = chrono::Utc::now();
        let id = uuid::Uuid::now_v7().to_string();
        let floor = super::id_floor(at);
        assert!(floor.as_str() <= id.as_str(), "{floor} vs {id}");
        assert!(super::id_floor(at + chrono::Duration::seconds(5)).as_str() > id.as_str());
    }

    #[test]
    fn only_a_pending_message_moves() {
        for from in DeliveryState::ALL {
            for to in DeliveryState::ALL {
                assert_eq!(
                    from.can_move_to(to),
                    from == DeliveryState::Pending,
                    "{from:?} → {to:?}"
                );
            }
        }
        for s in DeliveryState::ALL {
            assert_eq!(DeliveryState::parse(s.as_str()), Some(s));
        }
    }
}
