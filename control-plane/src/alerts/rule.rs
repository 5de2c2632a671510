//! Alert rules as a tenant writes them: which screens, which condition, how serious.
//!
//! A rule is a stored document (kind `alert_rule`). Its condition is one of two sorts.
//!
//! Watched on every pass of the evaluator (`alerts.eval_secs`):
//! - `metric`: a value from the screen's latest metrics past a threshold for `for_s` seconds;
//!   once open it resolves only when the value is back past `clear` (hysteresis), so a
//!   temperature hovering at the threshold does not open and resolve the alert again and again.
//! - `offline`: no message from the screen for `for_s` seconds; resolves when it is back.
//! - `rate`: a metric rising or falling faster than `per_hour` over `window_s`.
//! - `flapping`: the screen went offline more than `max` times within `window_s`.
//!
//! Scheduled checks, run at the times of their `schedule` (a cron expression):
//! - `content_stale`: the screen holds a content bundle other than the one built for it now,
//!   for `for_s`;
//! - `not_fetched`: the screen lacks its current content and has not fetched for `for_s`;
//! - `cert_expiry`: its client certificate ends within `within_days`;
//! - `disk_full`: its disk, at the pace of the last `history_days`, fills within
//!   `within_days`;
//! - `shabbat_ready`: from `before_s` before candle lighting at its synagogue, the screen is
//!   not online with its current content.
//!
//! Every condition but `offline` is a value against a [`Threshold`], so one decision
//! ([`super::lifecycle::decide`]) serves them all.

use chrono::{DateTime, Utc};
use luach_schemas::DeviceId;
use luach_schemas::messages::Metrics;
use serde::{Deserialize, Serialize};

use crate::error::{FieldError, check_text, exactly_one};
pub use crate::store::Severity;
use crate::store::{Device, DeviceStatus, DocKind, Document};

/// The longest `for_s` a rule may wait (a week).
pub const MAX_FOR_S: u32 = 7 * 86_400;
/// Screens a rule may name one by one.
pub const MAX_RULE_DEVICES: usize = 1_000;
/// Tags a rule may require.
pub const MAX_RULE_TAGS: usize = 20;
/// Longest rule name, in characters.
pub const MAX_RULE_NAME: usize = 100;
/// Metrics older than this say nothing about a screen now: a metric rule neither opens nor
/// resolves on them (the offline rule speaks for a screen that went quiet).
pub const STALE_METRICS_S: i64 = 600;

/// Which of the tenant's screens a rule watches: exactly one of the fields.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleTarget {
    /// Every screen of the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<bool>,
    /// Screens carrying every one of these tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Screens of this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// These screens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<DeviceId>>,
}

impl RuleTarget {
    pub fn all() -> Self {
        Self {
            all: Some(true),
            ..Self::default()
        }
    }

    /// Whether `device` is watched.
    pub fn matches(&self, device: &Device) -> bool {
        if let Some(devices) = &self.devices {
            return devices.contains(&device.id);
        }
        if let Some(tags) = &self.tags {
            return tags.iter().all(|t| device.tags.contains(t));
        }
        if let Some(group) = &self.group {
            return device.group.as_ref() == Some(group);
        }
        self.all == Some(true)
    }

    fn check(&self, errors: &mut Vec<FieldError>) {
        let given = [
            self.all.is_some(),
            self.tags.is_some(),
            self.group.is_some(),
            self.devices.is_some(),
        ];
        if !exactly_one(errors, "target", &given, "all, tags, group or devices") {
            return;
        }
        if self.all == Some(false) {
            errors.push(FieldError::new(
                "target.all",
                "must be true (or name tags, a group or devices)",
            ));
        }
        if let Some(tags) = &self.tags {
            if tags.is_empty() || tags.len() > MAX_RULE_TAGS {
                errors.push(FieldError::new("target.tags", format!("name 1–{MAX_RULE_TAGS} tags")));
            }
            for (i, t) in tags.iter().enumerate() {
                check_text(errors, &format!("target.tags[{i}]"), t, true, 64);
            }
        }
        if let Some(group) = &self.group {
            check_text(errors, "target.group", group, true, 64);
        }
        if let Some(devices) = &self.devices
            && (devices.is_empty() || devices.len() > MAX_RULE_DEVICES)
        {
            errors.push(FieldError::new(
                "target.devices",
                format!("name 1–{MAX_RULE_DEVICES} screens"),
            ));
        }
    }
}

/// A value read from a screen's latest metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetricField {
    /// Hottest sensor, °C (screens without a sensor never match).
    TemperatureC,
    /// Whole-system CPU use, %.
    CpuPercent,
    /// Memory in use, % of total.
    MemoryPercent,
    /// Disk in use, % of total.
    DiskPercent,
    /// Free disk, MB.
    DiskFreeMb,
}

impl MetricField {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TemperatureC => "temperature_c",
            Self::CpuPercent => "cpu_percent",
            Self::MemoryPercent => "memory_percent",
            Self::DiskPercent => "disk_percent",
            Self::DiskFreeMb => "disk_free_mb",
        }
    }

    /// The unit shown after a value.
    pub fn unit(self) -> &'static str {
        match self {
            Self::TemperatureC => "°C",
            Self::CpuPercent | Self::MemoryPercent | Self::DiskPercent => "%",
            Self::DiskFreeMb => "MB",
        }
    }

    /// The value in `m`; none when the screen does not report it.
    pub fn read(self, m: &Metrics) -> Option<f64> {
        let percent = |used: u64, total: u64| (total > 0).then(|| used as f64 * 100.0 / total as f64);
        match self {
            Self::TemperatureC => m.temperature_c.map(f64::from),
            Self::CpuPercent => Some(f64::from(m.cpu_percent)),
            Self::MemoryPercent => percent(m.mem_used_bytes, m.mem_total_bytes),
            Self::DiskPercent => percent(m.disk_used_bytes, m.disk_total_bytes),
            Self::DiskFreeMb => Some(m.disk_total_bytes.saturating_sub(m.disk_used_bytes) as f64 / 1e6),
        }
    }
}

/// Which side of the threshold is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Above,
    Below,
}

/// A metric past a threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricCondition {
    pub metric: MetricField,
    pub direction: Direction,
    /// The threshold: past it (strictly) is a breach.
    pub value: f64,
    /// Once open, the alert resolves only when the value is back past this (at or below it for
    /// `above`, at or above it for `below`). Default: `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear: Option<f64>,
    /// How long the breach must last before the alert opens (0–604800 s).
    #[serde(default)]
    pub for_s: u32,
}

/// Which way a rate is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    Rising,
    Falling,
}

/// A metric moving too fast: its least-squares slope over the window, in units per hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateCondition {
    pub metric: MetricField,
    pub direction: Trend,
    /// Faster than this (units per hour, in `direction`) is a breach.
    pub per_hour: f64,
    /// Once open, the alert resolves at or below this rate. Default: `per_hour`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_per_hour: Option<f64>,
    /// The window the slope is taken over (600–86400 s; default 3600). A rate is judged once
    /// readings span half of it.
    #[serde(default = "hour")]
    pub window_s: u32,
}

/// A screen dropping off again and again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlappingCondition {
    /// More drops than this (1–1000) within the window is a breach; at or below it, it clears.
    pub max: u32,
    /// 600–86400 s; default 3600.
    #[serde(default = "hour")]
    pub window_s: u32,
}

/// The screen shows other content than it should.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContentStaleCondition {
    /// How long the screen's bundle may differ from the current one (0–604800 s; default 3600).
    #[serde(default = "hour")]
    pub for_s: u32,
}

/// The screen lacks its current content and has not fetched for a while (a screen holding
/// its current content has nothing to fetch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotFetchedCondition {
    /// 3600–604800 s; default a day.
    #[serde(default = "day")]
    pub for_s: u32,
}

/// The screen's client certificate is about to end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertExpiryCondition {
    /// 1–365; default 14.
    #[serde(default = "fortnight")]
    pub within_days: u32,
}

/// The screen's disk is filling up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiskFullCondition {
    /// Projected full within this many days (1–365; default 7) is a breach.
    #[serde(default = "week")]
    pub within_days: u32,
    /// Days of telemetry history the projection is drawn from (1–7; default 3).
    #[serde(default = "three")]
    pub history_days: u32,
}

/// Before Shabbat and Yom Tov, every screen online with its current content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShabbatReadyCondition {
    /// How long before candle lighting the screen must be ready (600–86400 s; default 7200).
    #[serde(default = "two_hours")]
    pub before_s: u32,
}

fn hour() -> u32 {
    3_600
}
fn two_hours() -> u32 {
    7_200
}
fn day() -> u32 {
    86_400
}
fn three() -> u32 {
    3
}
fn week() -> u32 {
    7
}
fn fortnight() -> u32 {
    14
}

/// No message from a screen for a while.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OfflineCondition {
    /// Quiet this long (60–604800 s) before the alert opens.
    pub for_s: u32,
}

/// What a rule watches for: exactly one of the fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    Metric(MetricCondition),
    Offline(OfflineCondition),
    Rate(RateCondition),
    Flapping(FlappingCondition),
    ContentStale(ContentStaleCondition),
    NotFetched(NotFetchedCondition),
    CertExpiry(CertExpiryCondition),
    DiskFull(DiskFullCondition),
    ShabbatReady(ShabbatReadyCondition),
}

/// A value's threshold: past `value` (strictly) for `for_s` opens; back past `clear` (at or
/// beyond it) resolves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub direction: Direction,
    pub value: f64,
    pub clear: f64,
    pub for_s: u32,
}

impl Threshold {
    pub fn breached(&self, v: f64) -> bool {
        match self.direction {
            Direction::Above => v > self.value,
            Direction::Below => v < self.value,
        }
    }

    pub fn cleared(&self, v: f64) -> bool {
        match self.direction {
            Direction::Above => v <= self.clear,
            Direction::Below => v >= self.clear,
        }
    }
}

impl Condition {
    /// The condition's name, as in the rule's JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Metric(_) => "metric",
            Self::Offline(_) => "offline",
            Self::Rate(_) => "rate",
            Self::Flapping(_) => "flapping",
            Self::ContentStale(_) => "content_stale",
            Self::NotFetched(_) => "not_fetched",
            Self::CertExpiry(_) => "cert_expiry",
            Self::DiskFull(_) => "disk_full",
            Self::ShabbatReady(_) => "shabbat_ready",
        }
    }

    /// A scheduled check's schedule when the rule gives none; `None` for conditions watched
    /// on every pass.
    pub fn default_schedule(&self) -> Option<&'static str> {
        match self {
            Self::Metric(_) | Self::Offline(_) | Self::Rate(_) | Self::Flapping(_) => None,
            Self::ContentStale(_) => Some("*/15 * * * *"),
            Self::NotFetched(_) => Some("0 * * * *"),
            Self::CertExpiry(_) | Self::DiskFull(_) => Some("0 6 * * *"),
            Self::ShabbatReady(_) => Some("*/10 * * * *"),
        }
    }

    /// The threshold the reading is held against (`offline` has none: it is a time of
    /// silence, read as [`Reading::QuietSince`]). Flags (`content_stale`, `shabbat_ready`)
    /// read 1 when wrong and 0 when right.
    pub fn threshold(&self) -> Option<Threshold> {
        let t = |direction, value: f64, clear: f64, for_s| {
            Some(Threshold {
                direction,
                value,
                clear,
                for_s,
            })
        };
        let flag = |for_s| t(Direction::Above, 0.5, 0.5, for_s);
        match self {
            Self::Metric(m) => t(m.direction, m.value, m.clear.unwrap_or(m.value), m.for_s),
            Self::Offline(_) => None,
            Self::Rate(r) => t(Direction::Above, r.per_hour, r.clear_per_hour.unwrap_or(r.per_hour), 0),
            Self::Flapping(f) => t(Direction::Above, f64::from(f.max), f64::from(f.max), 0),
            Self::ContentStale(c) => flag(c.for_s),
            Self::NotFetched(n) => t(Direction::Above, f64::from(n.for_s), f64::from(n.for_s), 0),
            Self::CertExpiry(c) => t(Direction::Below, f64::from(c.within_days), f64::from(c.within_days), 0),
            Self::DiskFull(d) => t(Direction::Below, f64::from(d.within_days), f64::from(d.within_days), 0),
            Self::ShabbatReady(_) => flag(0),
        }
    }

    fn check(&self, errors: &mut Vec<FieldError>) {
        let path = format!("condition.{}", self.kind());
        let mut range = |field: &str, v: u32, lo: u32, hi: u32| {
            if !(lo..=hi).contains(&v) {
                errors.push(FieldError::new(format!("{path}.{field}"), format!("must be {lo}–{hi}")));
            }
        };
        match self {
            Self::Metric(_) | Self::Offline(_) => {}
            Self::Rate(r) => {
                range("window_s", r.window_s, 600, 86_400);
                if !(r.per_hour.is_finite() && r.per_hour > 0.0) {
                    errors.push(FieldError::new(format!("{path}.per_hour"), "must be a number above 0"));
                }
                if let Some(c) = r.clear_per_hour
                    && !(c.is_finite() && c >= 0.0 && c <= r.per_hour)
                {
                    errors.push(FieldError::new(
                        format!("{path}.clear_per_hour"),
                        format!("must be a number from 0 to per_hour ({})", r.per_hour),
                    ));
                }
            }
            Self::Flapping(f) => {
                range("max", f.max, 1, 1_000);
                range("window_s", f.window_s, 600, 86_400);
            }
            Self::ContentStale(c) => range("for_s", c.for_s, 0, MAX_FOR_S),
            Self::NotFetched(n) => range("for_s", n.for_s, 3_600, MAX_FOR_S),
            Self::CertExpiry(c) => range("within_days", c.within_days, 1, 365),
            Self::DiskFull(d) => {
                range("within_days", d.within_days, 1, 365);
                range("history_days", d.history_days, 1, 7);
            }
            Self::ShabbatReady(r) => range("before_s", r.before_s, 600, 86_400),
        }
    }
}

/// When a scheduled check runs: a cron expression (five fields, minute first; `@daily` and
/// the like) read in a time zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub cron: String,
    /// IANA time zone the expression is read in; default UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// A schedule checked and ready to ask.
#[derive(Debug, Clone)]
pub struct Parsed {
    cron: croner::Cron,
    tz: chrono_tz::Tz,
}

impl Parsed {
    /// Parses `cron` in `timezone` (UTC when none); the error says what is wrong.
    pub fn new(cron: &str, timezone: Option<&str>) -> Result<Self, (&'static str, String)> {
        let tz = match timezone {
            None => chrono_tz::UTC,
            Some(name) => name
                .parse::<chrono_tz::Tz>()
                .map_err(|_| ("timezone", format!("unknown time zone {name:?}")))?,
        };
        if cron.len() > 100 {
            return Err(("cron", "at most 100 characters".to_owned()));
        }
        let cron = cron
            .parse::<croner::Cron>()
            .map_err(|e| ("cron", format!("not a cron expression: {e}")))?;
        let parsed = Self { cron, tz };
        // `0 0 30 2 *` parses but names no time: refused, so a stored schedule always runs.
        if parsed
            .last_at_or_before(Utc::now() + chrono::Duration::days(400))
            .is_none()
        {
            return Err(("cron", "names no time (within a year)".to_owned()));
        }
        Ok(parsed)
    }

    /// The latest time at or before `now` the schedule names (searching back at most a year).
    pub fn last_at_or_before(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&now.with_timezone(&self.tz), true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// A tenant's alert rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    pub name: String,
    /// A disabled rule opens nothing; its open alerts resolve at the next evaluation.
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default)]
    pub severity: Severity,
    pub target: RuleTarget,
    pub condition: Condition,
    /// When a scheduled check runs (only for those; default per condition, see
    /// [`Condition::default_schedule`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
}

fn enabled() -> bool {
    true
}

impl Document for AlertRule {
    const KIND: DocKind = DocKind::AlertRule;
}

impl AlertRule {
    /// Checks every field; the errors carry body paths.
    pub fn check(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check_text(&mut errors, "name", &self.name, true, MAX_RULE_NAME);
        self.target.check(&mut errors);
        match &self.condition {
            Condition::Metric(m) => {
                let path = "condition.metric";
                if !m.value.is_finite() {
                    errors.push(FieldError::new(format!("{path}.value"), "must be a number"));
                }
                if let Some(clear) = m.clear {
                    let wrong_side = match m.direction {
                        Direction::Above => clear > m.value,
                        Direction::Below => clear < m.value,
                    };
                    if !clear.is_finite() || wrong_side {
                        let side = if m.direction == Direction::Above {
                            "at or below"
                        } else {
                            "at or above"
                        };
                        errors.push(FieldError::new(
                            format!("{path}.clear"),
                            format!("must be a number {side} value ({})", m.value),
                        ));
                    }
                }
                if m.for_s > MAX_FOR_S {
                    errors.push(FieldError::new(
                        format!("{path}.for_s"),
                        format!("must be 0–{MAX_FOR_S}"),
                    ));
                }
            }
            Condition::Offline(o) => {
                if !(60..=MAX_FOR_S).contains(&o.for_s) {
                    errors.push(FieldError::new(
                        "condition.offline.for_s",
                        format!("must be 60–{MAX_FOR_S}"),
                    ));
                }
            }
            _ => self.condition.check(&mut errors),
        }
        match (&self.schedule, self.condition.default_schedule()) {
            (Some(_), None) => errors.push(FieldError::new(
                "schedule",
                format!(
                    "a {} rule is watched on every pass and takes no schedule",
                    self.condition.kind()
                ),
            )),
            (Some(s), Some(_)) => {
                if let Err((field, message)) = Parsed::new(&s.cron, s.timezone.as_deref()) {
                    errors.push(FieldError::new(format!("schedule.{field}"), message));
                }
            }
            (None, _) => {}
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// When a scheduled check runs; `None` for a rule watched on every pass (or, for a stored
    /// rule, a schedule that no longer parses).
    pub fn parsed_schedule(&self) -> Option<Parsed> {
        let default = self.condition.default_schedule()?;
        match &self.schedule {
            Some(s) => Parsed::new(&s.cron, s.timezone.as_deref()).ok(),
            None => Parsed::new(default, None).ok(),
        }
    }

    /// What the rule sees on `device` at `now`.
    pub fn read(&self, device: &Device, now: DateTime<Utc>) -> Reading {
        match &self.condition {
            Condition::Metric(m) => match Self::fresh_metric(device, m.metric, now) {
                Some((_, v)) => Reading::Value(v),
                None => Reading::Unknown,
            },
            Condition::Offline(_) => match (device.status, device.last_seen) {
                // A screen never seen was registered ahead of its installation: nothing to miss.
                (_, None) => Reading::Unknown,
                (DeviceStatus::Online, Some(_)) => Reading::Online,
                (DeviceStatus::Offline, Some(at)) => Reading::QuietSince(at),
            },
            // These need more than the device record: the evaluator reads them.
            _ => Reading::Unknown,
        }
    }

    /// The screen's latest value of `metric` at `now`: none when the metrics are stale or the
    /// screen is offline.
    pub fn fresh_metric(device: &Device, metric: MetricField, now: DateTime<Utc>) -> Option<(DateTime<Utc>, f64)> {
        let at = device.metrics_at?;
        if (now - at).num_seconds() > STALE_METRICS_S || device.status != DeviceStatus::Online {
            return None;
        }
        Some((at, metric.read(device.metrics.as_ref()?)?))
    }

    /// The defaults a new tenant starts with, under fixed ids.
    pub fn defaults() -> Vec<(&'static str, AlertRule)> {
        let rule = |name: &str, severity, condition| AlertRule {
            name: name.to_owned(),
            enabled: true,
            severity,
            target: RuleTarget::all(),
            schedule: None,
            condition,
        };
        let above = |metric, value, clear, for_s| {
            Condition::Metric(MetricCondition {
                metric,
                direction: Direction::Above,
                value,
                clear: Some(clear),
                for_s,
            })
        };
        let (warning, critical) = (Severity::Warning, Severity::Critical);
        vec![
            (
                "default-offline",
                rule(
                    "Screen offline for 10 minutes",
                    critical,
                    Condition::Offline(OfflineCondition { for_s: 600 }),
                ),
            ),
            (
                "default-temperature",
                rule(
                    "Screen hotter than 75 °C for 5 minutes",
                    warning,
                    above(MetricField::TemperatureC, 75.0, 70.0, 300),
                ),
            ),
            (
                "default-disk",
                rule(
                    "Disk more than 90% full",
                    warning,
                    above(MetricField::DiskPercent, 90.0, 85.0, 600),
                ),
            ),
            (
                "default-flapping",
                rule(
                    "Screen dropped off more than 6 times in an hour",
                    warning,
                    Condition::Flapping(FlappingCondition {
                        max: 6,
                        window_s: hour(),
                    }),
                ),
            ),
            (
                "default-content-stale",
                rule(
                    "Screen shows out-of-date content for an hour",
                    warning,
                    Condition::ContentStale(ContentStaleCondition { for_s: hour() }),
                ),
            ),
            (
                "default-not-fetched",
                rule(
                    "Screen has not fetched its content for a day",
                    warning,
                    Condition::NotFetched(NotFetchedCondition { for_s: day() }),
                ),
            ),
            (
                "default-cert-expiry",
                rule(
                    "Screen certificate ends within 14 days",
                    warning,
                    Condition::CertExpiry(CertExpiryCondition {
                        within_days: fortnight(),
                    }),
                ),
            ),
            (
                "default-disk-full",
                rule(
                    "Disk projected full within a week",
                    warning,
                    Condition::DiskFull(DiskFullCondition {
                        within_days: week(),
                        history_days: three(),
                    }),
                ),
            ),
            (
                "default-shabbat-ready",
                rule(
                    "Screen not ready two hours before candle lighting",
                    critical,
                    Condition::ShabbatReady(ShabbatReadyCondition { before_s: two_hours() }),
                ),
            ),
        ]
    }
}

/// What a rule sees on one screen at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reading {
    /// The metric's current value.
    Value(f64),
    /// The screen is online.
    Online,
    /// The screen has been silent since then.
    QuietSince(DateTime<Utc>),
    /// Nothing to go on (no fresh metrics, the metric not reported, never seen).
    Unknown,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rule(v: serde_json::Value) -> Result<AlertRule, String> {
        serde_json::from_value::<AlertRule>(v).map_err(|e| e.to_string())
    }

    fn paths(r: &AlertRule) -> Vec<String> {
        r.check()
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.path)
            .collect()
    }

    #[test]
    fn rules_are_checked_field_by_field() {
        let r = rule(json!({"name": "hot", "target": {"all": true},
            "condition": {"metric": {"metric": "temperature_c", "direction": "above", "value": 75, "clear": 80, "for_s": 999999999}}}))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(paths(&r), ["condition.metric.clear", "condition.metric.for_s"]);
        let r = rule(json!({"name": "", "target": {"all": true, "group": "x"},
            "condition": {"offline": {"for_s": 5}}}))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(paths(&r), ["name", "target", "condition.offline.for_s"]);
        // Unknown fields and conditions are refused while parsing.
        assert!(rule(json!({"name": "x", "target": {"all": true}, "condition": {"smoke": {}}})).is_err());
        assert!(
            rule(json!({"name": "x", "target": {"all": true}, "extra": 1, "condition": {"offline": {"for_s": 60}}}))
                .is_err()
        );
        for (_, d) in AlertRule::defaults() {
            assert_eq!(d.check(), Ok(()), "{d:?}");
        }
    }

    #[test]
    fn hysteresis_leaves_a_band_between_breach_and_clear() {
        let hot = Condition::Metric(MetricCondition {
            metric: MetricField::TemperatureC,
            direction: Direction::Above,
            value: 75.0,
            clear: Some(70.0),
            for_s: 0,
        });
        let c = hot
            .threshold()
            .unwrap_or_else(|| panic!("metric rules have a threshold"));
        assert!(c.breached(75.5) && !c.cleared(75.5));
        assert!(!c.breached(72.0) && !c.cleared(72.0));
        assert!(!c.breached(70.0) && c.cleared(70.0));
        let below = Condition::Metric(MetricCondition {
            direction: Direction::Below,
            value: 500.0,
            clear: None,
            metric: MetricField::DiskFreeMb,
            for_s: 0,
        });
        let below = below
            .threshold()
            .unwrap_or_else(|| panic!("metric rules have a threshold"));
        assert!(below.breached(499.0) && below.cleared(500.0));
    }

    #[test]
    fn new_conditions_and_schedules_are_checked() {
        let r = rule(json!({"name": "fast", "target": {"all": true},
            "condition": {"rate": {"metric": "disk_free_mb", "direction": "falling", "per_hour": 0, "clear_per_hour": 5, "window_s": 10}}}))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            paths(&r),
            [
                "condition.rate.window_s",
                "condition.rate.per_hour",
                "condition.rate.clear_per_hour"
            ]
        );
        // A rule watched on every pass takes no schedule.
        let r = rule(
            json!({"name": "flaps", "target": {"all": true}, "schedule": {"cron": "* * * * *"},
            "condition": {"flapping": {"max": 0}}}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(paths(&r), ["condition.flapping.max", "schedule"]);
        let r = rule(json!({"name": "certs", "target": {"all": true},
            "schedule": {"cron": "0 25 * * *", "timezone": "Asia/Jerusalem"},
            "condition": {"cert_expiry": {"within_days": 0}}}))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(paths(&r), ["condition.cert_expiry.within_days", "schedule.cron"]);
        let r = rule(json!({"name": "ready", "target": {"all": true},
            "schedule": {"cron": "*/5 * * * *", "timezone": "Mars/Olympus"},
            "condition": {"shabbat_ready": {}}}))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(paths(&r), ["schedule.timezone"]);
        // Defaults fill what is left out.
        let r = rule(json!({"name": "disk", "target": {"all": true}, "condition": {"disk_full": {}}}))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            r.condition,
            Condition::DiskFull(DiskFullCondition {
                within_days: 7,
                history_days: 3
            })
        );
        assert!(r.parsed_schedule().is_some());
    }

    proptest::proptest! {
        /// Whatever is typed as a schedule, the answer is a schedule or an error, never a
        /// panic.
        #[test]
        fn any_text_is_a_schedule_or_an_error(text in "[0-9*/,#LW@a-zA-Z ?-]{0,40}") {
            let _ = Parsed::new(&text, None);
        }
    }

    #[test]
    fn a_schedule_names_its_last_time_in_its_zone() {
        assert!(Parsed::new("0 0 30 2 *", None).is_err());
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap_or_else(|e| panic!("{e}"));
        let daily = Parsed::new("0 6 * * *", Some("Asia/Jerusalem")).unwrap_or_else(|e| panic!("{e:?}"));
        // 06:00 in Jerusalem is 04:00 UTC in December.
        assert_eq!(
            daily.last_at_or_before(at("2026-12-04T05:00:00Z")),
            Some(at("2026-12-04T04:00:00Z"))
        );
        assert_eq!(
            daily.last_at_or_before(at("2026-12-04T03:59:59Z")),
            Some(at("2026-12-03T04:00:00Z"))
        );
        let quarter = Parsed::new("*/15 * * * *", None).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            quarter.last_at_or_before(at("2026-12-04T05:15:00Z")),
            Some(at("2026-12-04T05:15:00Z"))
        );
    }
}
