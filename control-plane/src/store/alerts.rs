//! Alerts: one record per (rule, screen) episode, from open to resolved (the lifecycle is in
//! `crate::alerts::lifecycle`). At most one alert of a (rule, screen) is active at a time: the
//! one evaluator (under a lease) opens an alert only when its pass found none active.
//!
//! Backends keep the fields they filter on in columns (SQLite) or fields (MongoDB) and the
//! whole record beside them; every change is a compare-and-set on the state.

use chrono::{DateTime, Utc};
use luach_schemas::{DeviceId, TenantId};
use serde::{Deserialize, Serialize};

use super::handle::Inner;
use super::model::Page;
use super::outbox::Delivery;
use super::{StoreError, StoreResult, TenantScope, changes};
use crate::store::backend::Backend;

/// How serious an alert is; routing and quiet hours look at it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    #[default]
    Warning,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Self::Info, Self::Warning, Self::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Where an alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Open,
    Acknowledged,
    Resolved,
}

impl AlertState {
    pub const ALL: [AlertState; 3] = [Self::Open, Self::Acknowledged, Self::Resolved];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Open or acknowledged: at most one such alert per (rule, screen).
    pub fn is_active(self) -> bool {
        self != Self::Resolved
    }

    pub fn can_move_to(self, to: Self) -> bool {
        matches!(
            (self, to),
            (Self::Open, Self::Acknowledged) | (Self::Open | Self::Acknowledged, Self::Resolved)
        )
    }
}

/// Largest page of alerts.
pub const MAX_ALERT_PAGE: u32 = 500;

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AlertRecord {
    /// Time-ordered (UUID v7): newer alerts sort later.
    pub id: String,
    pub tenant_id: TenantId,
    pub rule_id: String,
    /// The rule's name when the alert opened.
    pub rule_name: String,
    pub device_id: DeviceId,
    pub severity: Severity,
    pub state: AlertState,
    /// What was wrong, in the server's words (English).
    pub summary: String,
    /// The metric's value when the alert opened (none for presence rules).
    pub value: Option<f64>,
    /// When the condition began.
    pub since: DateTime<Utc>,
    pub opened_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Why it resolved: the condition cleared, the rule was disabled or removed, the screen left.
    pub resolution: Option<String>,
    /// The metric's value when it resolved.
    pub resolved_value: Option<f64>,
    pub updated_at: DateTime<Utc>,
}

/// Which alerts to list.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub state: Option<AlertState>,
    /// Open and acknowledged ones only.
    pub active: bool,
    pub device: Option<DeviceId>,
}

impl AlertFilter {
    pub fn matches(&self, a: &AlertRecord) -> bool {
        self.state.is_none_or(|s| a.state == s)
            && (!self.active || a.state.is_active())
            && self.device.as_ref().is_none_or(|d| &a.device_id == d)
    }
}

/// One tenant's alerts, for the scope's actor (from [`super::TenantStore::alerts`]). Every
/// change is checked against the lifecycle before the backend compares and sets it.
pub struct TenantAlerts<'a> {
    inner: &'a Inner,
    scope: &'a TenantScope,
}

impl<'a> TenantAlerts<'a> {
    pub(super) fn new(inner: &'a Inner, scope: &'a TenantScope) -> Self {
        Self { inner, scope }
    }

    fn b(&self) -> &dyn Backend {
        self.inner.backend.as_ref()
    }

    fn tenant(&self) -> &TenantId {
        self.scope.tenant()
    }

    /// Stores a new open alert (its tenant is the scope's), with the messages that tell of it
    /// (their tenant is the scope's too), in one transaction.
    pub async fn open(&self, mut alert: AlertRecord, mut deliveries: Vec<Delivery>) -> StoreResult<AlertRecord> {
        alert.tenant_id = self.tenant().clone();
        alert.state = AlertState::Open;
        for d in &mut deliveries {
            d.tenant_id = self.tenant().clone();
        }
        self.inner
            .timed("alerts.insert", self.b().insert_alert(&alert, &deliveries))
            .await?;
        Ok(alert)
    }

    pub async fn get(&self, id: &str) -> StoreResult<Option<AlertRecord>> {
        self.inner
            .timed("alerts.get", self.b().get_alert(self.tenant(), id))
            .await
    }

    /// Newest first.
    pub async fn list(&self, filter: &AlertFilter, limit: u32, after: Option<&str>) -> StoreResult<Page<AlertRecord>> {
        let limit = limit.clamp(1, MAX_ALERT_PAGE);
        let (items, total) = self
            .inner
            .timed(
                "alerts.list",
                self.b().list_alerts(self.tenant(), filter, limit + 1, after),
            )
            .await?;
        Ok(Page::from_fetched(items, limit, total, |a| a.id.clone()))
    }

    /// Every open or acknowledged alert of the tenant.
    pub async fn active(&self) -> StoreResult<Vec<AlertRecord>> {
        let filter = AlertFilter {
            active: true,
            ..AlertFilter::default()
        };
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let (items, _) = self
                .inner
                .timed(
                    "alerts.list",
                    self.b()
                        .list_alerts(self.tenant(), &filter, MAX_ALERT_PAGE, after.as_deref()),
                )
                .await?;
            let full = items.len() == MAX_ALERT_PAGE as usize;
            after = items.last().map(|a| a.id.clone());
            out.extend(items);
            if !full {
                return Ok(out);
            }
        }
    }

    /// Moves `alert` to `next.state` (the rest of `next` is the record after the change) while
    /// it is still in `alert.state`, with the messages that tell of it, in one transaction.
    /// False when it moved meanwhile (nothing written); an error when the lifecycle does not
    /// allow the move. An operator's acknowledgement is audited.
    pub async fn moved(
        &self,
        alert: &AlertRecord,
        next: &AlertRecord,
        mut deliveries: Vec<Delivery>,
    ) -> StoreResult<bool> {
        if alert.id != next.id || alert.tenant_id != *self.tenant() || !alert.state.can_move_to(next.state) {
            return Err(StoreError::Corrupt(format!(
                "refused transition: alert {} {} → {}",
                alert.id,
                alert.state.as_str(),
                next.state.as_str()
            )));
        }
        let audit = (next.state == AlertState::Acknowledged)
            .then(|| changes::alert_acknowledged(next).by(self.scope.actor(), next.updated_at));
        for d in &mut deliveries {
            d.tenant_id = self.tenant().clone();
        }
        self.inner
            .timed(
                "alerts.move",
                self.b().move_alert(next, alert.state, audit, &deliveries),
            )
            .await
    }
}
