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
//!
//! Scheduled checks (see [`super::checks`]) are read only on the first pass at or after each
//! time their schedule names; in between, their alerts stay as they are. When a replica takes
//! the lease it runs every check once, then by the schedule: a check is a level (is the
//! certificate ending, is the screen ready), so running it again changes nothing that is
//! right.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use luach_schemas::{DeviceId, TenantId};
use tokio_util::sync::CancellationToken;

use super::checks::{self, Facts};
use super::lifecycle::{Action, AlertState, decide};
use super::rule::{AlertRule, Condition, Reading, Trend};
use super::trend::Samples;
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
    /// Readings of `rate` and `flapping` rules, and the metrics record last fed in.
    samples: HashMap<Key, (Option<DateTime<Utc>>, Samples)>,
    /// When each scheduled check last ran.
    last_run: HashMap<(TenantId, String), DateTime<Utc>>,
}

/// Whether a rule is read on this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watch {
    /// Watched on every pass.
    Always,
    /// A scheduled check whose time has come.
    Due,
    /// A scheduled check waiting for its time: its alerts stay as they are.
    Waiting,
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
            samples: HashMap::new(),
            last_run: HashMap::new(),
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
                self.samples.clear();
                self.last_run.clear();
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
        // Forget pending breaches and readings of rules or screens no longer evaluated.
        self.pending.retain(|k, _| seen.contains(k));
        self.samples.retain(|k, _| seen.contains(k));
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
        let watch: HashMap<&str, Watch> = rules
            .iter()
            .map(|r| (r.id.as_str(), self.watch(&tenant, r, now)))
            .collect();
        let mut facts = Facts::default();
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
                    let watch = watch.get(rule.id.as_str()).copied().unwrap_or(Watch::Always);
                    if watch == Watch::Waiting {
                        seen.insert(key);
                        continue;
                    }
                    let (reading, detail) = self.read(store, &mut facts, rule, device, &key, now).await?;
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
                            let alert = opened(rule, device, value, since, now, detail);
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
        for (id, w) in &watch {
            if *w == Watch::Due {
                self.last_run.insert((tenant.clone(), (*id).to_owned()), now);
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

    /// Whether `rule` is read on this pass.
    fn watch(&self, tenant: &TenantId, rule: &Stored<AlertRule>, now: DateTime<Utc>) -> Watch {
        if rule.input.condition.default_schedule().is_none() {
            return Watch::Always;
        }
        let Some(schedule) = rule.input.parsed_schedule() else {
            // Refused when written; a stored one that no longer parses never runs.
            tracing::warn!(rule = %rule.id, tenant_id = %tenant, "scheduled check with an unreadable schedule");
            return Watch::Waiting;
        };
        match (
            self.last_run.get(&(tenant.clone(), rule.id.clone())),
            schedule.last_at_or_before(now),
        ) {
            (None, _) => Watch::Due,
            (Some(last), Some(at)) if at > *last => Watch::Due,
            _ => Watch::Waiting,
        }
    }

    /// What `rule` sees on `device` now, and the sentence an alert it opens would carry.
    async fn read(
        &mut self,
        store: &TenantStore<'_>,
        facts: &mut Facts,
        rule: &Stored<AlertRule>,
        device: &Device,
        key: &Key,
        now: DateTime<Utc>,
    ) -> StoreResult<checks::Checked> {
        let condition = &rule.input.condition;
        Ok(match condition {
            Condition::Metric(_) | Condition::Offline(_) => (rule.input.read(device, now), None),
            Condition::Rate(r) => {
                let (fed, samples) = self.samples.entry(key.clone()).or_default();
                // A new metrics record is a reading, timed by this pass (at most one period late).
                if let Some((at, v)) = AlertRule::fresh_metric(device, r.metric, now)
                    && *fed != Some(at)
                    && samples.push(now, v, r.window_s)
                {
                    *fed = Some(at);
                }
                match samples.slope_per_hour(i64::from(r.window_s) / 2) {
                    Some(slope) => {
                        let rate = if r.direction == Trend::Falling { -slope } else { slope };
                        let way = if r.direction == Trend::Falling {
                            "falling"
                        } else {
                            "rising"
                        };
                        let text = format!(
                            "{} is {way} {rate:.1} {}/h on {}",
                            r.metric.as_str(),
                            r.metric.unit(),
                            device.id
                        );
                        (Reading::Value(rate), Some(text))
                    }
                    None => (Reading::Unknown, None),
                }
            }
            Condition::Flapping(f) => {
                let (_, samples) = self.samples.entry(key.clone()).or_default();
                let _ = samples.push(now, device.drops as f64, f.window_s);
                let drops = samples.growth().unwrap_or(0.0);
                // More drops than allowed show at once; fewer only once readings cover half
                // the window (a replica that just took over has seen little).
                let judged = drops > f64::from(f.max) || samples.span_s() >= i64::from(f.window_s) / 2;
                let text = format!(
                    "{} went offline {drops} times in {} minutes",
                    device.id,
                    f.window_s / 60
                );
                (
                    if judged {
                        Reading::Value(drops)
                    } else {
                        Reading::Unknown
                    },
                    Some(text),
                )
            }
            _ => checks::read(store, facts, condition, device, now).await?,
        })
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

/// A new alert of `rule` on `device`; `detail` says what was seen, when the reading had more
/// to say than its value.
fn opened(
    rule: &Stored<AlertRule>,
    device: &Device,
    value: Option<f64>,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    detail: Option<String>,
) -> AlertRecord {
    // The rule's name travels beside it (`rule_name`); the summary says what was seen.
    let summary = match (&rule.input.condition, value, detail) {
        (Condition::Metric(m), Some(v), _) => {
            format!("{} is {v:.1} {} on {}", m.metric.as_str(), m.metric.unit(), device.id)
        }
        (Condition::Offline(_), _, _) => format!("{} has been silent since {}", device.id, since.to_rfc3339()),
        (_, _, Some(detail)) => detail,
        (condition, _, None) => format!("{} on {}", condition.kind(), device.id),
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
