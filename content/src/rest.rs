//! Shabbat and Yom Tov at a synagogue: whether an instant falls between candle lighting and
//! havdalah there, and when that rest ends. The control plane holds non-emergency commands
//! for screens inside such a period and releases them after havdalah.

use chrono::{DateTime, Duration, Utc};
use luach_calendar::{EveningEvent, Zman};

use crate::Error;
use crate::day::{compute_day, location};
use crate::model::SynagogueProfile;

/// Days looked at around the instant: long enough for a two-day Yom Tov next to Shabbat.
const SPAN: i64 = 4;

/// Every evening boundary from a few days before `at` to a few days after, in time order:
/// `(time, true)` where a rest starts (candle lighting), `(time, false)` where one ends
/// (havdalah). A day whose times do not occur (polar) contributes no boundary.
fn boundaries(profile: &SynagogueProfile, at: DateTime<Utc>) -> Result<Vec<(DateTime<Utc>, bool)>, Error> {
    let loc = location(profile)?;
    let today = loc.local_date(at);
    let mut boundaries: Vec<(DateTime<Utc>, bool)> = Vec::new();
    for offset in -SPAN..=SPAN {
        let date = today + Duration::days(offset);
        let day = compute_day(profile, &loc, date)?;
        let boundary = match day.evening {
            Some(EveningEvent::CandlesBeforeSunset | EveningEvent::CandlesAfterNightfall) => {
                day.get(Zman::CandleLighting).ok().map(|t| (t, true))
            }
            Some(EveningEvent::Havdalah) => day.get(Zman::Havdalah).ok().map(|t| (t, false)),
            None => None,
        };
        boundaries.extend(boundary);
    }
    boundaries.sort();
    Ok(boundaries)
}

/// Whether `at` falls between a candle lighting and the havdalah after it.
fn resting(boundaries: &[(DateTime<Utc>, bool)], at: DateTime<Utc>) -> bool {
    boundaries
        .iter()
        .rev()
        .find(|(t, _)| *t <= at)
        .is_some_and(|(_, starts)| *starts)
}

/// When the Shabbat or Yom Tov that `at` falls in ends at the synagogue (its havdalah), or
/// `None` when `at` is not inside one. The period starts at candle lighting (before sunset,
/// or after nightfall on a second day) and ends at havdalah, as the synagogue's own settings
/// compute them.
pub fn rest_until(profile: &SynagogueProfile, at: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, Error> {
    let boundaries = boundaries(profile, at)?;
    if !resting(&boundaries, at) {
        return Ok(None);
    }
    Ok(boundaries
        .iter()
        .find(|(t, starts)| *t > at && !starts)
        .map(|(t, _)| *t))
}

/// The candle lighting that next begins a Shabbat or Yom Tov at the synagogue, after `at`
/// and within a few days, or `None` (no rest begins that soon, or the times do not occur).
/// A candle lighting inside a rest (a second day of Yom Tov, or Shabbat right after it)
/// begins nothing: the screen has been resting since the first.
pub fn next_rest_start(profile: &SynagogueProfile, at: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, Error> {
    let boundaries = boundaries(profile, at)?;
    Ok(boundaries
        .iter()
        .filter(|(t, starts)| *starts && *t > at)
        .map(|(t, _)| *t)
        .find(|t| !resting(&boundaries, *t - Duration::seconds(1))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jerusalem() -> SynagogueProfile {
        serde_json::from_value(serde_json::json!({
            "name": "Ohel Moshe", "latitude": 31.778, "longitude": 35.2354, "timezone": "Asia/Jerusalem",
            "israel": true, "nusach": "ashkenaz", "language": "he", "candle_lighting_minutes": 40
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn the_next_rest_starts_at_friday_candle_lighting() {
        let p = jerusalem();
        let start = next_rest_start(&p, at("2026-12-03T08:00:00Z"))
            .unwrap_or_default()
            .unwrap_or_else(|| panic!("Shabbat is a day away"));
        assert_eq!(start.date_naive().to_string(), "2026-12-04");
        // It is the instant the rest begins.
        assert_eq!(rest_until(&p, start - Duration::seconds(1)).unwrap_or_default(), None);
        assert!(rest_until(&p, start).unwrap_or_default().is_some());
        // During Shabbat the next one is a week on.
        let next = next_rest_start(&p, at("2026-12-05T08:00:00Z")).unwrap_or_default();
        assert!(next.is_none_or(|t| t > at("2026-12-06T00:00:00Z")), "{next:?}");
    }

    #[test]
    fn friday_evening_rests_until_havdalah() {
        let p = jerusalem();
        // Friday 4 December 2026: candles about 15:57 local (13:57 UTC), havdalah Saturday
        // about 17:1x local.
        assert_eq!(rest_until(&p, at("2026-12-04T12:00:00Z")).unwrap_or_default(), None);
        let end = rest_until(&p, at("2026-12-04T16:00:00Z"))
            .unwrap_or_default()
            .unwrap_or_else(|| panic!("Friday night is Shabbat"));
        assert_eq!(end.date_naive().to_string(), "2026-12-05");
        assert!(
            end > at("2026-12-05T14:30:00Z") && end < at("2026-12-05T15:45:00Z"),
            "{end}"
        );
        // Saturday morning: the same end; after havdalah: a weekday again.
        assert_eq!(
            rest_until(&p, at("2026-12-05T08:00:00Z")).unwrap_or_default(),
            Some(end)
        );
        assert_eq!(rest_until(&p, end + Duration::minutes(1)).unwrap_or_default(), None);
        assert_eq!(rest_until(&p, at("2026-12-02T10:00:00Z")).unwrap_or_default(), None);
    }

    #[test]
    fn yom_tov_next_to_shabbat_is_one_rest() {
        let p = jerusalem();
        // Rosh Hashanah 5787: Saturday 12 and Sunday 13 September 2026 (two days also in
        // Israel), after Shabbat: from Friday's candles to Sunday night's havdalah.
        let end = rest_until(&p, at("2026-09-12T20:00:00Z"))
            .unwrap_or_default()
            .unwrap_or_else(|| panic!("Rosh Hashanah night"));
        assert_eq!(end.date_naive().to_string(), "2026-09-13");
        assert_eq!(
            rest_until(&p, at("2026-09-11T17:00:00Z")).unwrap_or_default(),
            Some(end)
        );
    }
}
