//! What a synagogue's screens show on one civil day: the computed day (Hebrew date, holidays,
//! zmanim), the prayer times its rules give, and the programme (honours, shiurim, timers,
//! announcements, yahrzeits). The control plane's previews and the agent's offline view are
//! this one computation, so they cannot disagree.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use luach_calendar::{
    DayInfo, DayOptions, DayView, HebrewDate, Location, MinutePolicy, MinuteRounding, RuleSet, Zman, ZmanimOptions,
    yahrzeit,
};
use serde::Serialize;

use crate::model::{
    AliyotInput, AnnouncementInput, DisplayPreferences, MemorialInput, ShiurInput, SynagogueProfile, Targets,
    TimerInput, TimerTarget,
};
use crate::{Error, Item};

/// Days ahead (from the shown day) whose yahrzeits a screen lists.
pub const YAHRZEIT_DAYS: i64 = 7;

/// The calendar options a profile asks for.
pub fn day_options(p: &SynagogueProfile) -> DayOptions {
    DayOptions {
        israel: p.israel,
        zmanim: ZmanimOptions {
            use_elevation: p.use_elevation,
            candle_lighting_minutes: p.candle_lighting_minutes,
            havdalah: p.havdalah,
        },
    }
}

/// Where the synagogue is, as the calendar needs it.
pub fn location(p: &SynagogueProfile) -> Result<Location, Error> {
    Ok(Location::new(p.latitude, p.longitude, p.elevation_m, &p.timezone)?)
}

/// The computed civil day at the synagogue.
pub fn compute_day(p: &SynagogueProfile, location: &Location, date: NaiveDate) -> Result<DayInfo, Error> {
    Ok(DayInfo::compute(location, date, &day_options(p))?)
}

/// Prayer times by name (`None`: the zman a rule needs does not occur that day).
pub type PrayerTimes = Vec<(String, Option<DateTime<Utc>>)>;

/// One prayer time as shown.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PrayerTime {
    pub name: String,
    /// Local time (ISO 8601 with offset), `null` when the rule gives none today.
    pub time: Option<String>,
    /// `HH:MM` as a screen shows it (see [`minute_of`]), `null` with `time`.
    pub shown: Option<String>,
    /// Index of the schedule rule that gave it, `null` for an override.
    pub rule: Option<usize>,
    /// Why there is no time today.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

/// `HH:MM` of a time computed from `anchor` (a zman, or `None` for a fixed time): it rounds
/// the way its zman does under the synagogue's `policy`, so Mincha at sunset − 15 minutes
/// rounds down with sunset and Maariv at nightfall rounds up with it. A rule that rounds
/// explicitly (to 5 minutes, say) already gives a whole minute, and so does a fixed time.
pub fn minute_of(day: &DayInfo, at: DateTime<Utc>, anchor: Option<Zman>, policy: &MinutePolicy) -> String {
    let rounding = anchor.map_or(MinuteRounding::Down, |z| policy.for_zman(z));
    day.local_minute(at, rounding)
}

/// The day's prayer times as shown and as instants by name.
pub fn schedule_of(p: &SynagogueProfile, day: &DayInfo) -> (Vec<PrayerTime>, PrayerTimes) {
    let evaluated = p.schedule.evaluate(day);
    let prayers = evaluated.iter().map(|t| (t.name.clone(), t.time.ok())).collect();
    let minutes = &p.display.minutes;
    let shown = evaluated
        .into_iter()
        .map(|t| PrayerTime {
            name: t.name,
            time: t.time.ok().map(|at| day.local_iso(at)),
            shown: t.time.ok().map(|at| minute_of(day, at, t.anchor, minutes)),
            rule: t.rule,
            unavailable: t.time.err().map(|why| format!("{why:?}")),
        })
        .collect();
    (shown, prayers)
}

/// One lesson of the day.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ShiurTime {
    /// The shiur document's id.
    pub id: String,
    pub title: String,
    pub teacher: String,
    pub location: String,
    /// Local time (ISO 8601 with offset), `null` when its rule gives none today.
    pub time: Option<String>,
    /// `HH:MM` as a screen shows it (see [`minute_of`]), `null` with `time`.
    pub shown: Option<String>,
}

/// The shiurim that take place on `day`, with their times.
pub fn shiurim_on<'a>(
    day: &DayInfo,
    shiurim: impl IntoIterator<Item = (&'a str, &'a ShiurInput)>,
    minutes: &MinutePolicy,
) -> Vec<ShiurTime> {
    let mut out = Vec::new();
    for (id, s) in shiurim {
        let rules = RuleSet {
            rules: vec![s.schedule.clone()],
            overrides: Vec::new(),
        };
        for t in rules.evaluate(day) {
            out.push(ShiurTime {
                id: id.to_owned(),
                title: t.name,
                teacher: s.teacher.clone(),
                location: s.location.clone(),
                time: t.time.ok().map(|at| day.local_iso(at)),
                shown: t.time.ok().map(|at| minute_of(day, at, t.anchor, minutes)),
            });
        }
    }
    out
}

/// A countdown shown on the day.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct TimerShown {
    /// The timer document's id.
    pub id: String,
    pub label_he: String,
    pub label_en: String,
    /// The instant counted down to (local ISO 8601 with offset).
    pub target: String,
    /// When the countdown appears.
    pub shows_from: String,
    pub targets: Targets,
}

/// Timers of `day`: their target instant and when the countdown appears. `prayers` are the
/// day's evaluated prayer times by name. A target that does not occur that day is omitted.
pub fn timers_on<'a>(
    day: &DayInfo,
    prayers: &[(String, Option<DateTime<Utc>>)],
    timers: impl IntoIterator<Item = (&'a str, &'a TimerInput)>,
) -> Vec<TimerShown> {
    let mut out = Vec::new();
    for (id, timer) in timers {
        let target = match &timer.target {
            TimerTarget::Zman(z) => day.get(*z).ok(),
            TimerTarget::Prayer(name) => prayers.iter().find(|(n, _)| n == name).and_then(|(_, t)| *t),
            TimerTarget::At(at) => Some(*at).filter(|at| day.location().local_date(*at) == day.date),
        };
        let Some(target) = target else { continue };
        let shows_from = target - Duration::minutes(i64::from(timer.show_before_minutes));
        out.push(TimerShown {
            id: id.to_owned(),
            label_he: timer.label_he.clone(),
            label_en: timer.label_en.clone(),
            target: day.local_iso(target),
            shows_from: day.local_iso(shows_from),
            targets: timer.targets.clone(),
        });
    }
    out
}

/// An announcement shown on the day.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct AnnouncementShown {
    /// The announcement document's id.
    pub id: String,
    pub text_he: String,
    pub text_en: String,
    pub priority: u8,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

/// Announcements shown at some moment of `day` (local midnight to midnight), highest priority
/// first, then by id.
pub fn announcements_on<'a>(
    day: &DayInfo,
    announcements: impl IntoIterator<Item = (&'a str, &'a AnnouncementInput)>,
) -> Vec<AnnouncementShown> {
    let tz = day.location().tz();
    let midnight = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_local_timezone(tz).earliest())
            .map(|t| t.with_timezone(&Utc))
    };
    let (Some(start), Some(end)) = (midnight(day.date), day.date.succ_opt().and_then(midnight)) else {
        return Vec::new();
    };
    let mut shown: Vec<(&str, &AnnouncementInput)> = announcements
        .into_iter()
        .filter(|(_, a)| a.starts_at.is_none_or(|s| s < end) && a.ends_at.is_none_or(|e| e > start))
        .collect();
    shown.sort_by(|(ia, a), (ib, b)| b.priority.cmp(&a.priority).then_with(|| ia.cmp(ib)));
    shown
        .into_iter()
        .map(|(id, a)| AnnouncementShown {
            id: id.to_owned(),
            text_he: a.text_he.clone(),
            text_en: a.text_en.clone(),
            priority: a.priority,
            starts_at: a.starts_at,
            ends_at: a.ends_at,
        })
        .collect()
}

/// One coming yahrzeit.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Yahrzeit {
    pub memorial_id: String,
    pub name: String,
    pub family: String,
    /// The Hebrew anniversary.
    pub hebrew_date: HebrewDate,
    /// The civil day of the anniversary; it begins at nightfall the evening before.
    pub date: NaiveDate,
    /// Years since the passing.
    pub years: i32,
}

/// Anniversaries falling on `from` ≤ date < `until`, by date then name. Plaques whose date of
/// passing does not exist are skipped (the API refuses them on entry).
pub fn yahrzeits_between<'a>(
    memorials: impl IntoIterator<Item = (&'a str, &'a MemorialInput)>,
    from: NaiveDate,
    until: NaiveDate,
) -> Result<Vec<Yahrzeit>, Error> {
    let first_year = HebrewDate::from_civil(from)?.year();
    let last_year = HebrewDate::from_civil(until)?.year();
    let mut out = Vec::new();
    for (id, m) in memorials {
        let Ok(death) = m.passed.hebrew() else { continue };
        for year in first_year..=last_year {
            let Ok(Some(anniversary)) = yahrzeit(death, year) else {
                continue;
            };
            let Ok(date) = anniversary.to_civil() else { continue };
            if date >= from && date < until {
                out.push(Yahrzeit {
                    memorial_id: id.to_owned(),
                    name: m.name.clone(),
                    family: m.family.clone(),
                    hebrew_date: anniversary,
                    date,
                    years: year - death.year(),
                });
            }
        }
    }
    out.sort_by(|a, b| a.date.cmp(&b.date).then_with(|| a.name.cmp(&b.name)));
    Ok(out)
}

/// Pairs of id and content, the shape the functions above take.
pub fn pairs<T>(items: &[Item<T>]) -> impl Iterator<Item = (&str, &T)> {
    items.iter().map(|i| (i.id.as_str(), &i.input))
}

/// A synagogue's programme: the documents a day is composed from.
#[derive(Debug, Clone, Copy)]
pub struct Programme<'a> {
    pub aliyot: &'a [Item<AliyotInput>],
    pub shiurim: &'a [Item<ShiurInput>],
    pub timers: &'a [Item<TimerInput>],
}

/// What a synagogue shows on one civil day.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct SynagogueDay {
    /// The synagogue's id.
    pub synagogue: String,
    pub date: NaiveDate,
    pub day: DayView,
    /// Prayer times from the synagogue's schedule rules.
    pub schedule: Vec<PrayerTime>,
    /// Honours of this day's readings, for this synagogue or every synagogue of the tenant.
    pub aliyot: Vec<Item<AliyotInput>>,
    pub shiurim: Vec<ShiurTime>,
    pub timers: Vec<TimerShown>,
    pub display: DisplayPreferences,
}

/// The synagogue's day. Honours are those of `date` for this synagogue or for every
/// synagogue of the tenant.
pub fn synagogue_day(
    id: &str,
    profile: &SynagogueProfile,
    date: NaiveDate,
    programme: Programme<'_>,
) -> Result<(DayInfo, SynagogueDay), Error> {
    let location = location(profile)?;
    let day = compute_day(profile, &location, date)?;
    let (schedule, prayers) = schedule_of(profile, &day);
    let aliyot: Vec<Item<AliyotInput>> = programme
        .aliyot
        .iter()
        .filter(|a| a.input.date == date && a.input.synagogue.as_deref().is_none_or(|s| s == id))
        .cloned()
        .collect();
    let shown = SynagogueDay {
        synagogue: id.to_owned(),
        date,
        day: day.view(&profile.display.minutes),
        schedule,
        aliyot,
        shiurim: shiurim_on(&day, pairs(programme.shiurim), &profile.display.minutes),
        timers: timers_on(&day, &prayers, pairs(programme.timers)),
        display: profile.display.clone(),
    };
    Ok((day, shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(rules: serde_json::Value) -> SynagogueProfile {
        serde_json::from_value(serde_json::json!({
            "name": "Ohel Moshe", "latitude": 31.778, "longitude": 35.2354, "timezone": "Asia/Jerusalem",
            "israel": true, "nusach": "ashkenaz", "language": "he", "schedule": {"rules": rules}
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// `HH:MM` of an exact local ISO time, up or down.
    fn minute(iso: &str, up: bool) -> String {
        let t = chrono::DateTime::parse_from_rfc3339(iso).unwrap_or_else(|e| panic!("{e}"));
        let bump = up && chrono::Timelike::second(&t) > 0;
        (if bump { t + Duration::minutes(1) } else { t })
            .format("%H:%M")
            .to_string()
    }

    #[test]
    fn a_prayer_time_rounds_the_way_its_zman_does() {
        let p = profile(serde_json::json!([
            {"name": "Mincha", "time": {"zman": "sunset", "offset_minutes": -15}, "days": ["every_day"]},
            {"name": "Maariv", "time": {"zman": "tzeit_8_5", "offset_minutes": 5}, "days": ["every_day"]},
            // Clamped by nightfall: it rounds as nightfall does.
            {"name": "Late", "time": {"fixed": "23:00"}, "not_after": {"zman": "tzeit_8_5"}, "days": ["every_day"]},
            {"name": "Shiur", "time": {"fixed": "20:30"}, "days": ["every_day"]}
        ]));
        let date = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap_or_default();
        let loc = location(&p).unwrap_or_else(|e| panic!("{e}"));
        let day = compute_day(&p, &loc, date).unwrap_or_else(|e| panic!("{e}"));
        let (shown, _) = schedule_of(&p, &day);
        let get = |name: &str| {
            shown
                .iter()
                .find(|t| t.name == name)
                .unwrap_or_else(|| panic!("{name}"))
        };
        for (name, up) in [("Mincha", false), ("Maariv", true), ("Late", true)] {
            let t = get(name);
            let exact = t.time.as_deref().unwrap_or_else(|| panic!("{name}"));
            assert!(
                !exact.ends_with(":00+02:00"),
                "{name} {exact}: no seconds to round on this day"
            );
            assert_eq!(t.shown.as_deref(), Some(minute(exact, up).as_str()), "{name} {exact}");
        }
        assert_eq!(get("Shiur").shown.as_deref(), Some("20:30"));

        // Seconds dropped for the whole synagogue.
        let mut p = p;
        p.display.minutes.mode = luach_calendar::RoundingMode::Down;
        let (shown, _) = schedule_of(&p, &day);
        let maariv = shown
            .iter()
            .find(|t| t.name == "Maariv")
            .unwrap_or_else(|| panic!("maariv"));
        assert_eq!(
            maariv.shown.as_deref(),
            maariv.time.as_deref().map(|iso| minute(iso, false)).as_deref()
        );
    }
}
