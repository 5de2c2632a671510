//! Evaluation of a [`RuleSet`] for one civil day.

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Timelike, Utc};
use serde::Serialize;

use super::validate::parse_hhmm;
use super::{DayKind, RoundMode, Rounding, RuleSet, TimeSpec};
use crate::holidays::Flags;
use crate::{DayInfo, EveningEvent, Missing, Zman};

/// The kinds of day a civil day belongs to (weekday, Shabbat, Rosh Chodesh, fast, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayKinds(Vec<DayKind>);

impl DayKinds {
    /// Classify a day.
    pub fn of(day: &DayInfo) -> Self {
        let mut k = vec![DayKind::EveryDay];
        let dow = day.date.weekday().num_days_from_sunday();
        k.push(match dow {
            0 => DayKind::Sunday,
            1 => DayKind::Monday,
            2 => DayKind::Tuesday,
            3 => DayKind::Wednesday,
            4 => DayKind::Thursday,
            5 => DayKind::Friday,
            _ => DayKind::Shabbat,
        });
        if dow != 6 {
            k.push(DayKind::Weekday);
        }
        let any = |f: Flags| day.holidays.iter().any(|h| h.flags.intersects(f));
        let is_fast = day
            .holidays
            .iter()
            .any(|h| h.flags.intersects(Flags::MINOR_FAST | Flags::MAJOR_FAST) && !h.flags.contains(Flags::EREV));
        for (cond, kind) in [
            (any(Flags::ROSH_CHODESH), DayKind::RoshChodesh),
            (is_fast, DayKind::Fast),
            (any(Flags::CHAG), DayKind::YomTov),
            (any(Flags::CHOL_HAMOED), DayKind::CholHamoed),
            (day.evening == Some(EveningEvent::CandlesBeforeSunset), DayKind::Erev),
            (
                day.holidays.iter().any(|h| h.name.starts_with("Chanukah")),
                DayKind::Chanukah,
            ),
        ] {
            if cond {
                k.push(kind);
            }
        }
        Self(k)
    }

    /// Whether the day is of kind `k`.
    pub fn contains(&self, k: DayKind) -> bool {
        self.0.contains(&k)
    }
}

/// Why a scheduled prayer has no time today.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unavailable {
    /// The zman it is based on does not occur today.
    ZmanMissing {
        /// The zman.
        zman: Zman,
        /// Why it is missing.
        reason: Missing,
    },
    /// A fixed local time that cannot be represented (should not happen).
    BadLocalTime,
}

/// One prayer time of the day.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ScheduledTime {
    /// Prayer name.
    pub name: String,
    /// The instant, or why there is none today.
    pub time: Result<DateTime<Utc>, Unavailable>,
    /// Index of the rule in [`RuleSet::rules`], or `None` for an override.
    pub rule: Option<usize>,
    /// The zman the time was computed from (the rule's time, or the bound that clamped it);
    /// `None` for a fixed time. Shown to the minute, the time rounds the way this zman does.
    pub anchor: Option<Zman>,
}

impl TimeSpec {
    /// The zman a relative time is computed from.
    pub fn zman(&self) -> Option<Zman> {
        match self {
            TimeSpec::Fixed { .. } => None,
            TimeSpec::Relative { zman, .. } => Some(*zman),
        }
    }
}

fn eval_spec(spec: &TimeSpec, day: &DayInfo) -> Result<DateTime<Utc>, Unavailable> {
    match spec {
        TimeSpec::Fixed { fixed } => {
            let t = parse_hhmm(fixed).ok_or(Unavailable::BadLocalTime)?;
            day.location()
                .local_to_utc(day.date, t)
                .map_err(|_| Unavailable::BadLocalTime)
        }
        TimeSpec::Relative { zman, offset_minutes } => day
            .get(*zman)
            .map(|t| t + Duration::minutes(i64::from(*offset_minutes)))
            .map_err(|reason| Unavailable::ZmanMissing { zman: *zman, reason }),
    }
}

/// Round `t` on the local clock of `day`'s location.
pub(crate) fn round_local(t: DateTime<Utc>, r: Rounding, day: &DayInfo) -> DateTime<Utc> {
    let loc = day.location();
    let local: NaiveDateTime = t.with_timezone(&loc.tz()).naive_local();
    let midnight = local.date().and_hms_opt(0, 0, 0).unwrap_or(local);
    let ms = (local - midnight).num_milliseconds();
    let step = i64::from(r.minutes.max(1)) * 60_000;
    let rounded = match r.mode {
        RoundMode::Down => ms.div_euclid(step) * step,
        RoundMode::Up => (ms + step - 1).div_euclid(step) * step,
        RoundMode::Nearest => (ms + step / 2).div_euclid(step) * step,
    };
    let target = midnight + Duration::milliseconds(rounded);
    loc.local_to_utc(target.date(), target.time()).unwrap_or(t)
}

impl RuleSet {
    /// The concrete prayer times of `day`, sorted by time (unavailable ones last).
    pub fn evaluate(&self, day: &DayInfo) -> Vec<ScheduledTime> {
        let kinds = DayKinds::of(day);
        let mut chosen: Vec<ScheduledTime> = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            let in_range = r.from.is_none_or(|f| day.date >= f) && r.until.is_none_or(|u| day.date <= u);
            let applies =
                in_range && r.days.iter().any(|k| kinds.contains(*k)) && !r.except.iter().any(|k| kinds.contains(*k));
            if !applies {
                continue;
            }
            let mut time = eval_spec(&r.time, day);
            if let (Ok(t), Some(round)) = (time, r.round) {
                time = Ok(round_local(t, round, day));
            }
            let mut anchor = r.time.zman();
            if let Ok(t) = time {
                let mut t = t;
                if let Some((Ok(lo), spec)) = r.not_before.as_ref().map(|s| (eval_spec(s, day), s))
                    && lo > t
                {
                    (t, anchor) = (lo, spec.zman());
                }
                if let Some((Ok(hi), spec)) = r.not_after.as_ref().map(|s| (eval_spec(s, day), s))
                    && hi < t
                {
                    (t, anchor) = (hi, spec.zman());
                }
                time = Ok(t);
            }
            chosen.retain(|s| s.name != r.name);
            chosen.push(ScheduledTime {
                name: r.name.clone(),
                time,
                rule: Some(i),
                anchor,
            });
        }
        for o in self.overrides.iter().filter(|o| o.date == day.date) {
            chosen.retain(|s| s.name != o.name);
            if let Some(t) = o.time.as_deref().and_then(parse_hhmm) {
                let time = day
                    .location()
                    .local_to_utc(day.date, t)
                    .map_err(|_| Unavailable::BadLocalTime);
                chosen.push(ScheduledTime {
                    name: o.name.clone(),
                    time,
                    rule: None,
                    anchor: None,
                });
            }
        }
        chosen.sort_by_key(|s| match s.time {
            Ok(t) => (0, t.timestamp_millis(), s.name.clone()),
            Err(_) => (1, 0, s.name.clone()),
        });
        chosen
    }
}

/// Minutes past local midnight of an instant (for tests and displays).
pub fn local_minutes(t: DateTime<Utc>, day: &DayInfo) -> u32 {
    let l = t.with_timezone(&day.location().tz());
    l.hour() * 60 + l.minute()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DayOptions, Location, RuleSet};
    use chrono::NaiveDate;
    use proptest::prelude::*;

    fn day(y: i32, m: u32, d: u32) -> DayInfo {
        let loc = Location::new(40.7128, -74.006, 10.0, "America/New_York").unwrap_or_else(|e| panic!("{e}"));
        let date = NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
        DayInfo::compute(&loc, date, &DayOptions::default()).unwrap_or_else(|e| panic!("{e}"))
    }

    const RULES: &str = r#"{"rules": [
        {"name": "Shacharit", "time": {"fixed": "06:30"}, "days": ["weekday"]},
        {"name": "Shacharit", "time": {"fixed": "06:15"}, "days": ["rosh_chodesh", "fast"]},
        {"name": "Shacharit", "time": {"fixed": "09:00"}, "days": ["shabbat", "yom_tov"]},
        {"name": "Mincha", "time": {"zman": "sunset", "offset_minutes": -15},
         "round": {"mode": "down", "minutes": 5}, "not_after": {"fixed": "19:45"},
         "days": ["weekday"], "except": ["friday"]},
        {"name": "Mincha", "time": {"zman": "candle_lighting"}, "days": ["erev"]}
    ], "overrides": [{"date": "2025-03-13", "name": "Shacharit", "time": "05:45"},
                     {"date": "2025-03-12", "name": "Mincha", "time": null}]}"#;

    fn find(v: &[ScheduledTime], name: &str) -> Option<u32> {
        v.iter().find(|s| s.name == name).and_then(|s| s.time.ok()).map(|t| {
            let l = t.with_timezone(&chrono_tz::America::New_York);
            l.hour() * 60 + l.minute()
        })
    }

    #[test]
    fn later_rules_and_overrides_win() {
        let set = RuleSet::from_json(RULES).unwrap_or_else(|e| panic!("{e}"));
        // Tuesday 2025-03-11: plain weekday.
        let out = set.evaluate(&day(2025, 3, 11));
        assert_eq!(find(&out, "Shacharit"), Some(6 * 60 + 30));
        let mincha = find(&out, "Mincha").unwrap_or(0);
        assert_eq!(mincha % 5, 0);
        // Thursday 2025-03-13 is Ta'anit Esther, overridden to 05:45.
        assert_eq!(find(&set.evaluate(&day(2025, 3, 13)), "Shacharit"), Some(5 * 60 + 45));
        // Wednesday 2025-03-12: Mincha cancelled.
        assert_eq!(find(&set.evaluate(&day(2025, 3, 12)), "Mincha"), None);
        // Friday: Mincha at candle lighting; Shabbat: Shacharit 09:00.
        assert!(find(&set.evaluate(&day(2025, 3, 14)), "Mincha").is_some());
        assert_eq!(find(&set.evaluate(&day(2025, 3, 15)), "Shacharit"), Some(9 * 60));
    }

    #[test]
    fn clamp_not_after() {
        let set = RuleSet::from_json(RULES).unwrap_or_else(|e| panic!("{e}"));
        // Late June: sunset ≈ 20:31, so Mincha would be 20:15 but is clamped to 19:45.
        assert_eq!(find(&set.evaluate(&day(2025, 6, 24)), "Mincha"), Some(19 * 60 + 45));
    }

    proptest! {
        #[test]
        fn rounding_is_a_multiple_and_close(offset in -180i32..180, step in 0usize..12, mode in 0u8..3, doy in 0i64..365) {
            let minutes = [1u32, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60][step];
            let date = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default() + Duration::days(doy);
            let d = day(date.year(), date.month(), date.day());
            let Ok(base) = d.get(Zman::Sunset) else { return Ok(()) };
            let t = base + Duration::minutes(i64::from(offset));
            let mode = [RoundMode::Up, RoundMode::Down, RoundMode::Nearest][usize::from(mode)];
            let r = round_local(t, Rounding { mode, minutes }, &d);
            let local = r.with_timezone(&chrono_tz::America::New_York);
            prop_assert_eq!(local.second(), 0);
            prop_assert_eq!((local.hour() * 60 + local.minute()) % minutes, 0);
            let diff = (r - t).num_seconds();
            prop_assert!(diff.abs() <= i64::from(minutes) * 60);
            match mode {
                RoundMode::Up => prop_assert!(diff >= 0),
                RoundMode::Down => prop_assert!(diff <= 0),
                RoundMode::Nearest => prop_assert!(diff.abs() <= i64::from(minutes) * 30),
            }
        }

        #[test]
        fn rule_sets_round_trip_json(offset in -720i32..=720, step in 0usize..12, h in 0u32..24, m in 0u32..60) {
            let minutes = [1u32, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60][step];
            let json = format!(r#"{{"rules":[{{"name":"Mincha","time":{{"zman":"plag_hamincha","offset_minutes":{offset}}},
                "round":{{"mode":"nearest","minutes":{minutes}}},"not_before":{{"fixed":"{h:02}:{m:02}"}},"days":["weekday"]}}]}}"#);
            let set = RuleSet::from_json(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let again = serde_json::to_string(&set).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(RuleSet::from_json(&again).ok(), Some(set));
        }

        #[test]
        fn clamps_hold(h1 in 0u32..24, h2 in 0u32..24, doy in 0i64..365) {
            let (lo, hi) = (h1.min(h2), h1.max(h2));
            let json = format!(r#"{{"rules":[{{"name":"X","time":{{"zman":"chatzot"}},"not_before":{{"fixed":"{lo:02}:00"}},
                "not_after":{{"fixed":"{hi:02}:59"}},"days":["every_day"]}}]}}"#);
            let set = RuleSet::from_json(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let date = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default() + Duration::days(doy);
            let d = day(date.year(), date.month(), date.day());
            let out = set.evaluate(&d);
            let t = out.first().and_then(|s| s.time.ok()).map(|t| local_minutes(t, &d));
            prop_assert!(t.is_some_and(|t| t >= lo * 60 && t <= hi * 60 + 59));
        }
    }
}
