//! Prayer-schedule rules ("Mincha = sunset − 15 min, rounded down to 5, Sunday–Thursday").
//!
//! A [`RuleSet`] is what a gabbai edits through the REST API (JSON). It is validated with
//! [`RuleSet::validate`] (errors name the offending field) and evaluated for any civil date with
//! [`RuleSet::evaluate`]. For each prayer name, the *last* rule in the list that applies to the
//! day wins (so specific rules go after general ones); one-off [`Override`]s beat every rule.
//!
//! Example (JSON):
//! ```json
//! {"rules": [
//!   {"name": "Shacharit", "time": {"fixed": "06:30"}, "days": ["weekday"]},
//!   {"name": "Shacharit", "time": {"fixed": "06:15"}, "days": ["rosh_chodesh", "fast"]},
//!   {"name": "Mincha", "time": {"zman": "sunset", "offset_minutes": -15},
//!    "round": {"mode": "down", "minutes": 5}, "not_after": {"fixed": "19:45"},
//!    "days": ["sunday", "monday", "tuesday", "wednesday", "thursday"]}
//! ],
//!  "overrides": [{"date": "2025-12-25", "name": "Shacharit", "time": "08:00"}]}
//! ```

mod eval;
mod validate;

pub use validate::MAX_NAME as MAX_RULE_NAME;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::Zman;

pub use eval::{DayKinds, ScheduledTime, Unavailable, local_minutes};

/// A synagogue's whole schedule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// Recurring rules, general first, specific later (later wins).
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// One-off changes for a single date.
    #[serde(default)]
    pub overrides: Vec<Override>,
}

/// One recurring rule for one prayer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Prayer name shown on the screen ("Shacharit", "Mincha", "Daf Yomi shiur").
    pub name: String,
    /// How the time is obtained.
    pub time: TimeSpec,
    /// Optional rounding of the computed local time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<Rounding>,
    /// Never earlier than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<TimeSpec>,
    /// Never later than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<TimeSpec>,
    /// Kinds of day the rule applies to (any of them).
    pub days: Vec<DayKind>,
    /// Kinds of day excluded even if listed in `days`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<DayKind>,
    /// First civil date the rule applies (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<NaiveDate>,
    /// Last civil date the rule applies (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<NaiveDate>,
}

/// A time of day: fixed local clock time, or a zman plus/minus minutes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged, deny_unknown_fields)]
pub enum TimeSpec {
    /// Fixed local time, `"HH:MM"`.
    Fixed {
        /// `"HH:MM"`, 24-hour clock.
        fixed: String,
    },
    /// Relative to a zman.
    Relative {
        /// The zman, by its JSON key (e.g. `"sunset"`, `"plag_hamincha"`).
        zman: Zman,
        /// Minutes after (positive) or before (negative) the zman.
        #[serde(default)]
        offset_minutes: i32,
    },
}

/// Rounding of a computed time to a multiple of `minutes` on the local clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rounding {
    /// Direction.
    pub mode: RoundMode,
    /// Step in minutes; must divide an hour (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60).
    pub minutes: u32,
}

/// Rounding direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoundMode {
    /// Later or equal.
    Up,
    /// Earlier or equal.
    Down,
    /// Closest (halfway rounds up).
    Nearest,
}

/// Kinds of day a rule can apply to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// Every day.
    EveryDay,
    /// Sunday to Friday.
    Weekday,
    /// Sunday.
    Sunday,
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Shabbat.
    Shabbat,
    /// Rosh Chodesh.
    RoshChodesh,
    /// A public fast day (minor fasts, Tish'a B'Av, Yom Kippur).
    Fast,
    /// Yom tov.
    YomTov,
    /// Chol hamoed.
    CholHamoed,
    /// The eve of Shabbat or yom tov (candles are lit before sunset).
    Erev,
    /// Chanukah.
    Chanukah,
}

/// A one-off change for one date: a different time, or `null` to cancel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// The civil date.
    pub date: NaiveDate,
    /// Prayer name (may be a new one for that day only).
    pub name: String,
    /// `"HH:MM"`, or `null` to cancel the prayer that day.
    pub time: Option<String>,
}

impl RuleSet {
    /// Parse and validate JSON from the API.
    pub fn from_json(json: &str) -> Result<Self, crate::Error> {
        let set: RuleSet = serde_json::from_str(json).map_err(|e| crate::Error::RuleJson(e.to_string()))?;
        set.validate()?;
        Ok(set)
    }
}
