//! Silences: "we know, stop telling us" for a while. An alert that a silence matches when it
//! opens, is acknowledged or resolves notifies no one; it is still opened, shown and resolved
//! as usual. A silence matches an alert when every matcher given holds; it ends at `ends_at`
//! (or earlier, when an operator expires it) and is kept afterwards as history.
//!
//! Silences are stored documents (kind `alert_silence`).

use chrono::{DateTime, Utc};
use luach_schemas::DeviceId;
use serde::{Deserialize, Serialize};

use crate::error::{FieldError, check_text};
use crate::store::{AlertRecord, Device, DocKind, Document};

/// Silences a tenant may keep (ended ones included; remove old ones to make room).
pub const MAX_SILENCES: u32 = 200;
/// The longest a silence may last (90 days).
pub const MAX_SILENCE_S: i64 = 90 * 86_400;

/// What a silence matches: at least one field, and every field given must hold.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Matchers {
    /// Alerts of this rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// Alerts of this screen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<DeviceId>,
    /// Alerts of screens carrying every one of these tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// A silence as the tenant writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceSpec {
    pub matchers: Matchers,
    /// When it ends: within 90 days from now.
    pub ends_at: DateTime<Utc>,
    /// Why (shown beside it).
    #[serde(default)]
    pub comment: String,
}

/// A stored silence: the spec, who made it and when it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Silence {
    #[serde(flatten)]
    pub spec: SilenceSpec,
    pub starts_at: DateTime<Utc>,
    pub created_by: String,
}

impl Document for Silence {
    const KIND: DocKind = DocKind::AlertSilence;
}

impl SilenceSpec {
    /// Checks every field against `now`; the errors carry body paths.
    pub fn check(&self, now: DateTime<Utc>) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let m = &self.matchers;
        if m.rule_id.is_none() && m.device_id.is_none() && m.tags.is_none() {
            errors.push(FieldError::new(
                "matchers",
                "give at least one of rule_id, device_id or tags",
            ));
        }
        if let Some(rule) = &m.rule_id {
            check_text(&mut errors, "matchers.rule_id", rule, true, 64);
        }
        if let Some(tags) = &m.tags {
            if tags.is_empty() || tags.len() > 20 {
                errors.push(FieldError::new("matchers.tags", "name 1–20 tags"));
            }
            for (i, t) in tags.iter().enumerate() {
                check_text(&mut errors, &format!("matchers.tags[{i}]"), t, true, 64);
            }
        }
        let left = (self.ends_at - now).num_seconds();
        if left <= 0 || left > MAX_SILENCE_S {
            errors.push(FieldError::new(
                "ends_at",
                "must be in the future, at most 90 days from now",
            ));
        }
        check_text(&mut errors, "comment", &self.comment, false, 500);
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

impl Silence {
    /// Whether it is in force at `now`.
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.starts_at <= now && now < self.spec.ends_at
    }

    /// Whether it silences `alert` (of `device`, when still known) at `now`.
    pub fn silences(&self, alert: &AlertRecord, device: Option<&Device>, now: DateTime<Utc>) -> bool {
        let m = &self.spec.matchers;
        self.active(now)
            && m.rule_id.as_ref().is_none_or(|r| *r == alert.rule_id)
            && m.device_id.as_ref().is_none_or(|d| *d == alert.device_id)
            && m.tags
                .as_ref()
                .is_none_or(|tags| device.is_some_and(|d| tags.iter().all(|t| d.tags.contains(t))))
    }
}
