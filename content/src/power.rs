//! A screen's display power schedule: off and on again every day at times of the synagogue's
//! day ("off at 23:00, on half an hour before the first prayer"). It travels in the bundle's
//! board settings, so the screen follows it offline.
//!
//! At an instant the display is in the state of the latest switch at or before it, looking at
//! the switches of the synagogue's local day and the day before (so an "off" at 23:00 still
//! holds at 03:00). A switch whose time does not occur on a day (a zman that does not happen,
//! a day without prayers) is left out for that day. Without a synagogue, or without any
//! switch in those two days, the display is on.

use chrono::{DateTime, Duration, Utc};
use luach_calendar::{DayInfo, DayKind, Rule, RuleSet, TimeSpec};
use serde::{Deserialize, Serialize};

use crate::bundle::Bundle;
use crate::day;

/// Largest offset from the first prayer, in minutes.
pub const MAX_FIRST_PRAYER_OFFSET: i32 = 12 * 60;

/// When the display goes off and when it comes on again, every day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PowerSchedule {
    /// For example `{"fixed": "23:00"}`.
    pub off: PowerTime,
    /// For example `{"first_prayer": -30}`: half an hour before the day's first prayer.
    pub on: PowerTime,
}

/// A time of the synagogue's day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged, deny_unknown_fields)]
pub enum PowerTime {
    /// Minutes after (negative: before) the day's first prayer time.
    FirstPrayer { first_prayer: i32 },
    /// A fixed local time (`{"fixed": "HH:MM"}`) or a zman with an offset
    /// (`{"zman": "sunset", "offset_minutes": 20}`).
    Time(TimeSpec),
}

/// A field of a schedule that is wrong: its path under the schedule and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub path: String,
    pub message: String,
}

impl PowerSchedule {
    /// Checks every time: `HH:MM`, offsets within ±12 hours.
    pub fn validate(&self) -> Result<(), Invalid> {
        for (name, time) in [("off", &self.off), ("on", &self.on)] {
            match time {
                PowerTime::FirstPrayer { first_prayer } => {
                    if !(-MAX_FIRST_PRAYER_OFFSET..=MAX_FIRST_PRAYER_OFFSET).contains(first_prayer) {
                        return Err(Invalid {
                            path: format!("{name}.first_prayer"),
                            message: format!("must be within ±{MAX_FIRST_PRAYER_OFFSET} minutes"),
                        });
                    }
                }
                PowerTime::Time(spec) => {
                    // The calendar's own rule validation, with its path made ours.
                    if let Err(luach_calendar::Error::InvalidRule { path, message }) = rule_set(spec).validate() {
                        let rest = path.strip_prefix("rules[0].time").unwrap_or(&path);
                        return Err(Invalid {
                            path: format!("{name}{rest}"),
                            message,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// When `time` falls on the day `day` (of a synagogue with `profile`).
    fn instant(time: &PowerTime, profile: &crate::SynagogueProfile, day: &DayInfo) -> Option<DateTime<Utc>> {
        match time {
            PowerTime::Time(spec) => rule_set(spec).evaluate(day).into_iter().next()?.time.ok(),
            PowerTime::FirstPrayer { first_prayer } => {
                let (_, prayers) = day::schedule_of(profile, day);
                let first = prayers.into_iter().filter_map(|(_, t)| t).min()?;
                Some(first + Duration::minutes(i64::from(*first_prayer)))
            }
        }
    }
}

fn rule_set(spec: &TimeSpec) -> RuleSet {
    RuleSet {
        rules: vec![Rule {
            name: "display".into(),
            time: spec.clone(),
            round: None,
            not_before: None,
            not_after: None,
            days: vec![DayKind::EveryDay],
            except: Vec::new(),
            from: None,
            until: None,
        }],
        overrides: Vec::new(),
    }
}

impl Bundle {
    /// Whether the screen's display is on at `at` by its power schedule (see the module).
    pub fn display_on(&self, at: DateTime<Utc>) -> bool {
        self.board
            .power
            .as_ref()
            .is_none_or(|schedule| self.display_on_by(schedule, at))
    }

    /// Whether the display is on at `at` by `schedule` (an operator's, in place of the
    /// bundle's), with this bundle's synagogue giving the times.
    pub fn display_on_by(&self, schedule: &PowerSchedule, at: DateTime<Utc>) -> bool {
        let Some(synagogue) = &self.synagogue else {
            return true;
        };
        let Ok(location) = day::location(&synagogue.input) else {
            return true;
        };
        let today = location.local_date(at);
        let mut latest: Option<(DateTime<Utc>, bool)> = None;
        for date in [today - Duration::days(1), today] {
            let Ok(info) = day::compute_day(&synagogue.input, &location, date) else {
                continue;
            };
            for (time, on) in [(&schedule.off, false), (&schedule.on, true)] {
                let Some(when) = PowerSchedule::instant(time, &synagogue.input, &info) else {
                    continue;
                };
                if when <= at && latest.is_none_or(|(t, _)| when >= t) {
                    latest = Some((when, on));
                }
            }
        }
        latest.is_none_or(|(_, on)| on)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).map(|t| t.to_utc()).unwrap_or_default()
    }

    fn bundle(power: Option<PowerSchedule>) -> Bundle {
        let profile: crate::SynagogueProfile = serde_json::from_value(serde_json::json!({
            "name": "Ohel Moshe", "latitude": 31.778, "longitude": 35.2354, "timezone": "Asia/Jerusalem",
            "israel": true, "nusach": "ashkenaz", "language": "he",
            "schedule": {"rules": [
                {"name": "Shacharit", "time": {"fixed": "07:00"}, "days": ["weekday"]},
                {"name": "Shacharit", "time": {"fixed": "08:30"}, "days": ["shabbat"]},
                {"name": "Maariv", "time": {"fixed": "19:00"}, "days": ["every_day"]}]}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let mut synagogue = serde_json::to_value(&profile).unwrap_or_default();
        synagogue["id"] = "main".into();
        let mut b: Bundle = serde_json::from_value(serde_json::json!({
            "format": crate::bundle::FORMAT, "device_id": "d", "tenant_id": "t",
            "synagogue": synagogue,
            "announcements": [], "timers": [], "memorials": [], "shiurim": [], "aliyot": []
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        b.board.power = power;
        b
    }

    fn schedule(off: serde_json::Value, on: serde_json::Value) -> PowerSchedule {
        serde_json::from_value(serde_json::json!({"off": off, "on": on})).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn off_at_night_on_before_the_first_prayer_of_each_day() {
        let b = bundle(Some(schedule(
            serde_json::json!({"fixed": "23:00"}),
            serde_json::json!({"first_prayer": -30}),
        )));
        // Jerusalem is UTC+2 in December. Thursday 3 December 2026.
        for (instant, on) in [
            ("2026-12-03T20:59:59Z", true),  // 22:59:59
            ("2026-12-03T21:00:00Z", false), // 23:00
            ("2026-12-04T01:00:00Z", false), // 03:00, after yesterday's switch off
            ("2026-12-04T04:29:00Z", false), // 06:29 Friday
            ("2026-12-04T04:30:00Z", true),  // 06:30: half an hour before 07:00
            // Shabbat: the first prayer is at 08:30, so the screen stays dark until 08:00.
            ("2026-12-05T05:00:00Z", false),
            ("2026-12-05T06:00:00Z", true),
        ] {
            assert_eq!(b.display_on(at(instant)), on, "{instant}");
        }
        // No schedule, or no synagogue: always on.
        assert!(bundle(None).display_on(at("2026-12-04T01:00:00Z")));
    }

    #[test]
    fn zman_times_and_validation() {
        let b = bundle(Some(schedule(
            serde_json::json!({"zman": "sunset", "offset_minutes": 60}),
            serde_json::json!({"zman": "sunrise"}),
        )));
        assert!(b.display_on(at("2026-12-04T12:00:00Z")));
        assert!(!b.display_on(at("2026-12-04T22:00:00Z")));
        assert!(!b.display_on(at("2026-12-05T02:00:00Z")));
        let bad = schedule(
            serde_json::json!({"fixed": "25:00"}),
            serde_json::json!({"first_prayer": 900}),
        );
        assert_eq!(bad.validate().map_err(|e| e.path), Err("off.fixed".to_owned()));
        let bad = schedule(
            serde_json::json!({"fixed": "23:00"}),
            serde_json::json!({"first_prayer": 900}),
        );
        assert_eq!(bad.validate().map_err(|e| e.path), Err("on.first_prayer".to_owned()));
        let bad = schedule(
            serde_json::json!({"fixed": "23:00"}),
            serde_json::json!({"zman": "sunrise", "offset_minutes": -800}),
        );
        assert_eq!(bad.validate().map_err(|e| e.path), Err("on.offset_minutes".to_owned()));
        assert!(
            serde_json::from_value::<PowerSchedule>(serde_json::json!({"off": {"at": "x"}, "on": {"fixed": "06:00"}}))
                .is_err()
        );
    }
}
