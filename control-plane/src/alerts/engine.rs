//! The evaluator: one task per installation (under the `alerts` lease) that reads every
//! tenant's rules, active alerts and screens on a short period and opens and resolves alerts.
//!
//! ```text
//!  every `alerts.eval_secs`:  tenants ─▶ rules (documents) + active alerts + screens (paged)
//!                                           │ rule.read(screen) → Reading
//!                                           │ lifecycle::decide(…, pending, active) → Action
//!                                           ▼
//!                            alerts.open / alerts.moved (compare-and-set) ─▶ alert:update
//!                              + the messages `notify::route` chooses, in the same transaction
//! ```
//!
//! Why a period and not each message: the screen's latest metrics and presence are already in
//! its device record (the ingest writer keeps them), so one pass costs a read per screen however
//! often screens report, works the same whichever replica received the message, and gives
//! presence rules (which fire on silence, when nothing arrives) the same path as metric rules.
//! The delay this adds is at most one period (15 s by default), well inside any `for_s` worth
//! having.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use luach_schemas::{DeviceId, TenantId};
use tokio_util::sync::CancellationToken;

use super::lifecycle::{Action, AlertState, decide};
use super::rule::{AlertRule, Condition};
use crate::auth::Clock;
use crate::chain::Actor;
use crate::lease::Lease;
use crate::live::{LiveEvent, LiveSink};
use crate::metrics::Metrics;
use crate::notify::channel::Event;
use crate::notify::route;
use crate::store::{AlertRecord, Device, DeviceFilter, PageRequest, StoreResult, Stored, SystemStore, TenantStore};

/// Rules read per tenant (the API refuses more).
pub const MAX_RULES: u32 = 200;
/// Screens read per round trip.
const DEVICE_PAGE: u32 = 1_000;

type Key = (TenantId, String, DeviceId);

/// The evaluator task.
pub struct AlertEngine {
    system: SystemStore,
    live: LiveSink,
    metrics: Metrics,
    clock: Arc<dyn Clock>,
    lease: Lease,
    every: Duration,
    /// Breaches that have not lasted their rule's `for_s` yet, since when.
    pending: HashMap<Key, DateTime<Utc>>,
}

impl AlertEngine {
    pub fn new(
        system: SystemStore,
        live: LiveSink,
        metrics: Metrics,
        clock: Arc<dyn Clock>,
        lease: Lease,
        every: Duration,
    ) -> Self {
        Self {
            system,
            live,
            metrics,
            clock,
            lease,
            every,
            pending: HashMap::new(),
        }
    }

    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if !self.lease.held().await {
                // Another replica evaluates; what was pending here starts over if this one
                // takes over again.
                self.pending.clear();
                continue;
            }
            if let Err(e) = self.pass().await {
                tracing::error!(error = %e, "alert pass failed; retrying on the next tick");
            }
        }
        self.lease.release().await;
    }

    /// One pass over every tenant.
    pub async fn pass(&mut self) -> StoreResult<()> {
        let system = self.system.clone();
        let installation = system.installation_scope(Actor::system());
        let tenants = system.installation(&installation).tenants().await?;
        let mut seen = HashSet::new();
        for tenant in tenants {
            let scope = system.scope(tenant.id.clone(), Actor::system());
            let store = system.tenant(&scope);
            if let Err(e) = self.pass_tenant(&store, &mut seen).await {
                tracing::error!(error = %e, tenant_id = %tenant.id, "alerts of a tenant not evaluated");
            }
        }
        // Forget pending breaches of rules or screens no longer evaluated.
        self.pending.retain(|k, _| seen.contains(k));
        self.metrics.alert_passes.inc();
        Ok(())
    }

    async fn pass_tenant(&mut self, store: &TenantStore<'_>, seen: &mut HashSet<Key>) -> StoreResult<()> {
        let tenant = store.scope().tenant().clone();
        let rules: Vec<Stored<AlertRule>> = store.list::<AlertRule>(MAX_RULES, None).await?;
        let alerts = store.alerts();
        let mut active: HashMap<(String, DeviceId), AlertRecord> = alerts
            .active()
            .await?
            .into_iter()
            .map(|a| ((a.rule_id.clone(), a.device_id.clone()), a))
            .collect();
        if rules.iter().all(|r| !r.input.enabled) && active.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let mut after: Option<DeviceId> = None;
        let mut screens: HashSet<DeviceId> = HashSet::new();
        loop {
            let page = store
                .devices(
                    &DeviceFilter::default(),
                    &PageRequest {
                        limit: DEVICE_PAGE,
                        after: after.clone(),
                    },
                )
                .await?;
            for device in &page.items {
                screens.insert(device.id.clone());
                for rule in rules
                    .iter()
                    .filter(|r| r.input.enabled && r.input.target.matches(device))
                {
                    let key = (tenant.clone(), rule.id.clone(), device.id.clone());
                    let current = active.remove(&(rule.id.clone(), device.id.clone()));
                    let reading = rule.input.read(device, now);
                    let decision = decide(
                        &rule.input.condition,
                        reading,
                        self.pending.get(&key).copied(),
                        current.is_some(),
                        now,
                    );
                    match decision.pending {
                        Some(since) => {
                            self.pending.insert(key.clone(), since);
                        }
                        None => {
                            self.pending.remove(&key);
                        }
                    }
                    seen.insert(key);
                    match (decision.action, current) {
                        (Action::Open { value, since }, None) => {
                            let alert = opened(rule, device, value, since, now);
                            let messages = route::alert_messages(store, &alert, Event::AlertOpened, now).await?;
                            self.announce("opened", store.alerts().open(alert, messages).await?);
                        }
                        (Action::Resolve { value }, Some(alert)) => {
                            self.resolve(store, &alert, value, "the condition cleared", now).await?;
                        }
                        _ => {}
                    }
                }
            }
            match page.items.last() {
                Some(last) if page.next_after.is_some() => after = Some(last.id.clone()),
                _ => break,
            }
        }
        // Active alerts no enabled rule watched this pass: the rule was disabled, removed or
        // retargeted, or the screen left the tenant.
        for alert in active.into_values() {
            let why = match rules.iter().find(|r| r.id == alert.rule_id) {
                _ if !screens.contains(&alert.device_id) => "the screen left the tenant",
                None => "the rule was removed",
                Some(r) if !r.input.enabled => "the rule was disabled",
                Some(_) => "the rule no longer watches this screen",
            };
            self.resolve(store, &alert, None, why, now).await?;
        }
        Ok(())
    }

    async fn resolve(
        &self,
        store: &TenantStore<'_>,
        alert: &AlertRecord,
        value: Option<f64>,
        why: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut next = alert.clone();
        next.state = AlertState::Resolved;
        next.resolved_at = Some(now);
        next.resolved_value = value;
        next.resolution = Some(why.to_owned());
        next.updated_at = now;
        let messages = route::alert_messages(store, &next, Event::AlertResolved, now).await?;
        // An operator's acknowledgement in between moved it; the next pass resolves it.
        if store.alerts().moved(alert, &next, messages).await? {
            self.announce("resolved", next);
        }
        Ok(())
    }

    fn announce(&self, transition: &str, alert: AlertRecord) {
        announce(&self.live, &self.metrics, transition, alert);
    }
}

/// Counts an alert's transition and tells its tenant's room (`alert:update`).
pub fn announce(live: &LiveSink, metrics: &Metrics, transition: &str, alert: AlertRecord) {
    metrics.alerts.with_label_values(&[transition]).inc();
    live.send(LiveEvent::Alert {
        tenant_id: alert.tenant_id.clone(),
        alert,
    });
}

/// A new alert of `rule` on `device`.
fn opened(
    rule: &Stored<AlertRule>,
    device: &Device,
    value: Option<f64>,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> AlertRecord {
    // The rule's name travels beside it (`rule_name`); the summary says what was seen.
    let summary = match (&rule.input.condition, value) {
        (Condition::Metric(m), Some(v)) => {
            format!("{} is {v:.1} {} on {}", m.metric.as_str(), m.metric.unit(), device.id)
        }
        _ => format!("{} has been silent since {}", device.id, since.to_rfc3339()),
    };
    AlertRecord {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: device.tenant_id.clone(),
        rule_id: rule.id.clone(),
        rule_name: rule.input.name.clone(),
        device_id: device.id.clone(),
        severity: rule.input.severity,
        state: AlertState::Open,
        summary,
        value,
        since,
        opened_at: now,
        acknowledged_at: None,
        acknowledged_by: None,
        resolved_at: None,
        resolution: None,
        resolved_value: None,
        updated_at: now,
    }
}
