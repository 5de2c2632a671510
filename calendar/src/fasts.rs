//! Start and end of public fast days.
//!
//! Minor fasts run from dawn (alot hashachar, sun 16.1° down) to nightfall; Tish'a B'Av and
//! Yom Kippur from sunset of the previous evening. Nightfall for fasts is configurable; the
//! defaults are the common published ones: 7.083° (three medium stars) for minor fasts,
//! 6.45° (R. Tucazinsky) for Tish'a B'Av, and the havdalah time for Yom Kippur. A minor fast
//! on a Friday ends with Shabbat, so it has no separate end time.

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::hebrew_date::{civil_to_abs, day_of_week};
use crate::holidays::{Flags, holidays_on};
use crate::solar::Crossing;
use crate::zmanim::{Havdalah, Missing, SolarDay, ZmanTime};
use crate::{DayOptions, Error, Location};

/// How the end of a fast is timed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FastEnd {
    /// Sun this many degrees below the horizon.
    Degrees(f64),
    /// This many minutes after sunset.
    MinutesAfterSunset(u32),
}

/// Fast-time options.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct FastOptions {
    /// End of minor fasts (default 7.083°).
    pub minor_end: FastEnd,
    /// End of Tish'a B'Av (default 6.45°).
    pub tisha_bav_end: FastEnd,
}

impl Default for FastOptions {
    fn default() -> Self {
        Self {
            minor_end: FastEnd::Degrees(7.083_333_3),
            tisha_bav_end: FastEnd::Degrees(6.45),
        }
    }
}

/// One fast day's times.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct FastTimes {
    /// hebcal name of the fast.
    pub name: String,
    /// When the fast begins (the previous evening for Tish'a B'Av and Yom Kippur).
    pub begins: ZmanTime,
    /// When it ends; [`Missing::NotToday`] when it runs into Shabbat.
    pub ends: ZmanTime,
}

fn end_time(day: &SolarDay, end: FastEnd, use_elevation: bool) -> ZmanTime {
    match end {
        FastEnd::Degrees(d) => day.at_degrees_below(d, Crossing::Evening),
        FastEnd::MinutesAfterSunset(m) => day
            .sun(Crossing::Evening, use_elevation)
            .map(|t| t + Duration::minutes(i64::from(m)))
            .map_err(|_| Missing::NoSunriseOrSunset),
    }
}

/// The fast observed on civil `date` at `location`, if any, with its start and end.
pub fn fast_on(
    location: &Location,
    date: NaiveDate,
    opts: &DayOptions,
    fast: &FastOptions,
) -> Result<Option<FastTimes>, Error> {
    let abs = civil_to_abs(date);
    let holidays = holidays_on(abs, opts.israel)?;
    let Some(h) = holidays
        .into_iter()
        .find(|h| h.flags.intersects(Flags::MINOR_FAST | Flags::MAJOR_FAST) && !h.flags.contains(Flags::EREV))
    else {
        return Ok(None);
    };
    let today = SolarDay::new(location, date);
    let eve = SolarDay::new(location, date - Duration::days(1));
    let elev = opts.zmanim.use_elevation;
    let times = if h.name == "Yom Kippur" {
        let havdalah = match opts.zmanim.havdalah {
            Havdalah::Degrees(d) => FastEnd::Degrees(d),
            Havdalah::Minutes(m) => FastEnd::MinutesAfterSunset(m),
        };
        (eve.sun(Crossing::Evening, elev), end_time(&today, havdalah, elev))
    } else if h.flags.contains(Flags::MAJOR_FAST) {
        (
            eve.sun(Crossing::Evening, elev),
            end_time(&today, fast.tisha_bav_end, elev),
        )
    } else {
        let ends = if day_of_week(abs) == 5 {
            Err(Missing::NotToday)
        } else {
            end_time(&today, fast.minor_end, elev)
        };
        (today.at_degrees_below(16.1, Crossing::Morning), ends)
    };
    Ok(Some(FastTimes {
        name: h.name,
        begins: times.0,
        ends: times.1,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tisha_bav_and_minor_fast() {
        let loc = Location::new(40.7128, -74.006, 10.0, "America/New_York").unwrap_or_else(|e| panic!("{e}"));
        let opts = DayOptions::default();
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default();
        let tb = fast_on(&loc, d(2025, 8, 3), &opts, &FastOptions::default()).unwrap_or_default();
        let tb = tb.unwrap_or_else(|| panic!("Tish'a B'Av expected"));
        let (b, e) = (tb.begins.unwrap_or_default(), tb.ends.unwrap_or_default());
        assert!(e - b > Duration::hours(24) && e - b < Duration::hours(26), "{b} .. {e}");
        // 10 Tevet 5785 = Friday 10 January 2025: ends with Shabbat.
        let asara = fast_on(&loc, d(2025, 1, 10), &opts, &FastOptions::default()).unwrap_or_default();
        assert_eq!(asara.map(|f| f.ends), Some(Err(Missing::NotToday)));
        assert_eq!(fast_on(&loc, d(2025, 1, 9), &opts, &FastOptions::default()), Ok(None));
    }
}
