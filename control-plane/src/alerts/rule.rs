//! Alert rules as a tenant writes them: which screens, which condition, how serious.
//!
//! A rule is a stored document (kind `alert_rule`). Its condition is one of:
//!
//! - `metric`: a value from the screen's latest metrics past a threshold for `for_s` seconds;
//!   once open it resolves only when the value is back past `clear` (hysteresis), so a
//!   temperature hovering at the threshold does not open and resolve the alert again and again.
//! - `offline`: no message from the screen for `for_s` seconds; resolves when it is back.

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

impl MetricCondition {
    fn clear_at(&self) -> f64 {
        self.clear.unwrap_or(self.value)
    }

    pub fn breached(&self, v: f64) -> bool {
        match self.direction {
            Direction::Above => v > self.value,
            Direction::Below => v < self.value,
        }
    }

    pub fn cleared(&self, v: f64) -> bool {
        match self.direction {
            Direction::Above => v <= self.clear_at(),
            Direction::Below => v >= self.clear_at(),
        }
    }
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
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// What the rule sees on `device` at `now`.
    pub fn read(&self, device: &Device, now: DateTime<Utc>) -> Reading {
        match &self.condition {
            Condition::Metric(m) => {
                let fresh = device
                    .metrics_at
                    .is_some_and(|at| (now - at).num_seconds() <= STALE_METRICS_S);
                match device
                    .metrics
                    .as_ref()
                    .filter(|_| fresh && device.status == DeviceStatus::Online)
                {
                    Some(metrics) => match m.metric.read(metrics) {
                        Some(v) => Reading::Value(v),
                        None => Reading::Unknown,
                    },
                    None => Reading::Unknown,
                }
            }
            Condition::Offline(_) => match (device.status, device.last_seen) {
                // A screen never seen was registered ahead of its installation: nothing to miss.
                (_, None) => Reading::Unknown,
                (DeviceStatus::Online, Some(_)) => Reading::Online,
                (DeviceStatus::Offline, Some(at)) => Reading::QuietSince(at),
            },
        }
    }

    /// The defaults a new tenant starts with, under fixed ids.
    pub fn defaults() -> Vec<(&'static str, AlertRule)> {
        let metric = |name: &str, severity, metric, value, clear, for_s| AlertRule {
            name: name.to_owned(),
            enabled: true,
            severity,
            target: RuleTarget::all(),
            condition: Condition::Metric(MetricCondition {
                metric,
                direction: Direction::Above,
                value,
                clear: Some(clear),
                for_s,
            }),
        };
        vec![
            (
                "default-offline",
                AlertRule {
                    name: "Screen offline for 10 minutes".to_owned(),
                    enabled: true,
                    severity: Severity::Critical,
                    target: RuleTarget::all(),
                    condition: Condition::Offline(OfflineCondition { for_s: 600 }),
                },
            ),
            (
                "default-temperature",
                metric(
                    "Screen hotter than 75 °C for 5 minutes",
                    Severity::Warning,
                    MetricField::TemperatureC,
                    75.0,
                    70.0,
                    300,
                ),
            ),
            (
                "default-disk",
                metric(
                    "Disk more than 90% full",
                    Severity::Warning,
                    MetricField::DiskPercent,
                    90.0,
                    85.0,
                    600,
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
        let c = MetricCondition {
            metric: MetricField::TemperatureC,
            direction: Direction::Above,
            value: 75.0,
            clear: Some(70.0),
            for_s: 0,
        };
        assert!(c.breached(75.5) && !c.cleared(75.5));
        assert!(!c.breached(72.0) && !c.cleared(72.0));
        assert!(!c.breached(70.0) && c.cleared(70.0));
        let below = MetricCondition {
            direction: Direction::Below,
            value: 500.0,
            clear: None,
            metric: MetricField::DiskFreeMb,
            for_s: 0,
        };
        assert!(below.breached(499.0) && below.cleared(500.0));
    }
}
