//! The Hebrew date of an instant, with the day changing at midnight, sunset or nightfall.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::hebrew_date::{HebrewDate, civil_to_abs};
use crate::solar::Crossing;
use crate::zmanim::SolarDay;
use crate::{Error, Location};

/// When the Hebrew date advances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DayBoundary {
    /// At civil midnight (the "daytime" Hebrew date of the civil day).
    #[default]
    Midnight,
    /// At sea-level sunset.
    Sunset,
    /// At nightfall (sun 8.5° below the horizon).
    Nightfall,
}

/// The Hebrew date in force at instant `t` at `location`.
///
/// Where the sun does not set (or never gets 8.5° down) the date changes at midnight.
pub fn hebrew_date_at(t: DateTime<Utc>, location: &Location, boundary: DayBoundary) -> Result<HebrewDate, Error> {
    let date = location.local_date(t);
    let abs = civil_to_abs(date);
    let day = SolarDay::new(location, date);
    let change = match boundary {
        DayBoundary::Midnight => None,
        DayBoundary::Sunset => day.sun(Crossing::Evening, false).ok(),
        DayBoundary::Nightfall => day.at_degrees_below(8.5, Crossing::Evening).ok(),
    };
    let after = change.is_some_and(|c| t >= c && location.local_date(c) == date);
    HebrewDate::from_abs(abs + i64::from(after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn advances_after_nightfall() {
        let loc = Location::new(40.7128, -74.006, 0.0, "America/New_York").unwrap_or_else(|e| panic!("{e}"));
        let evening = Utc
            .with_ymd_and_hms(2025, 1, 10, 23, 30, 0)
            .single()
            .unwrap_or_default(); // 18:30 EST
        let noon = Utc.with_ymd_and_hms(2025, 1, 10, 17, 0, 0).single().unwrap_or_default();
        let a = hebrew_date_at(evening, &loc, DayBoundary::Nightfall).map(|d| d.day());
        let b = hebrew_date_at(noon, &loc, DayBoundary::Nightfall).map(|d| d.day());
        let c = hebrew_date_at(evening, &loc, DayBoundary::Midnight).map(|d| d.day());
        assert_eq!(a, b.clone().map(|d| d + 1));
        assert_eq!(c, b);
    }
}
