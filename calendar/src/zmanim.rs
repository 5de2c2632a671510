//! Zmanim (halachic times) of one civil day at one [`Location`].
//!
//! Definitions follow KosherJava's `ComplexZmanimCalendar`: by default every zman built on
//! sunrise/sunset uses *sea-level* sunrise and sunset; with `use_elevation` the
//! elevation-adjusted ones are used throughout. Degree-based zmanim (alot 16.1°, misheyakir
//! 11.5°, tzeit 8.5°) never use elevation. Intervals (shaot zmaniyot, "72 minutes") are
//! computed on UTC instants, so DST changes cannot distort them. A zman that does not occur is
//! a [`Missing`] with its reason, never a made-up time.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::Location;
use crate::hebrew_date::civil_to_abs;
use crate::solar::{self, Crossing, NoCrossing};

/// Every zman this crate computes. The `key` is the JSON key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Zman {
    /// Elevation-adjusted sunrise.
    Sunrise,
    /// Elevation-adjusted sunset.
    Sunset,
    /// Sea-level sunrise.
    SeaLevelSunrise,
    /// Sea-level sunset.
    SeaLevelSunset,
    /// Dawn: sun 16.1° below the horizon.
    #[serde(rename = "alot_16_1")]
    Alot16_1,
    /// Dawn: 72 minutes before sunrise.
    #[serde(rename = "alot_72")]
    Alot72,
    /// Earliest tallit and tefillin: sun 11.5° below the horizon.
    #[serde(rename = "misheyakir_11_5")]
    Misheyakir11_5,
    /// Latest Shema, GRA (3 seasonal hours after sunrise).
    SofZmanShmaGra,
    /// Latest Shema, Magen Avraham (day from alot 72 to tzeit 72).
    SofZmanShmaMga,
    /// Latest Shacharit, GRA (4 seasonal hours).
    SofZmanTefilaGra,
    /// Latest Shacharit, Magen Avraham.
    SofZmanTefilaMga,
    /// Midday: solar transit.
    Chatzot,
    /// Midday: half way between sea-level sunrise and sunset.
    ChatzotHalfDay,
    /// 6.5 seasonal hours.
    MinchaGedola,
    /// 9.5 seasonal hours.
    MinchaKetana,
    /// 10.75 seasonal hours.
    PlagHamincha,
    /// Nightfall: sun 8.5° below the horizon.
    #[serde(rename = "tzeit_8_5")]
    Tzeit8_5,
    /// Nightfall: 72 minutes after sunset.
    #[serde(rename = "tzeit_72")]
    Tzeit72,
    /// Candle lighting (only on days candles are lit).
    CandleLighting,
    /// Havdalah (only when Shabbat or yom tov ends).
    Havdalah,
}

impl Zman {
    /// All zmanim in output order.
    pub const ALL: [Zman; 20] = [
        Zman::Sunrise,
        Zman::Sunset,
        Zman::SeaLevelSunrise,
        Zman::SeaLevelSunset,
        Zman::Alot16_1,
        Zman::Alot72,
        Zman::Misheyakir11_5,
        Zman::SofZmanShmaGra,
        Zman::SofZmanShmaMga,
        Zman::SofZmanTefilaGra,
        Zman::SofZmanTefilaMga,
        Zman::Chatzot,
        Zman::ChatzotHalfDay,
        Zman::MinchaGedola,
        Zman::MinchaKetana,
        Zman::PlagHamincha,
        Zman::Tzeit8_5,
        Zman::Tzeit72,
        Zman::CandleLighting,
        Zman::Havdalah,
    ];

    /// The JSON key, e.g. `sof_zman_shma_gra`.
    pub fn key(self) -> &'static str {
        match self {
            Zman::Sunrise => "sunrise",
            Zman::Sunset => "sunset",
            Zman::SeaLevelSunrise => "sea_level_sunrise",
            Zman::SeaLevelSunset => "sea_level_sunset",
            Zman::Alot16_1 => "alot_16_1",
            Zman::Alot72 => "alot_72",
            Zman::Misheyakir11_5 => "misheyakir_11_5",
            Zman::SofZmanShmaGra => "sof_zman_shma_gra",
            Zman::SofZmanShmaMga => "sof_zman_shma_mga",
            Zman::SofZmanTefilaGra => "sof_zman_tefila_gra",
            Zman::SofZmanTefilaMga => "sof_zman_tefila_mga",
            Zman::Chatzot => "chatzot",
            Zman::ChatzotHalfDay => "chatzot_half_day",
            Zman::MinchaGedola => "mincha_gedola",
            Zman::MinchaKetana => "mincha_ketana",
            Zman::PlagHamincha => "plag_hamincha",
            Zman::Tzeit8_5 => "tzeit_8_5",
            Zman::Tzeit72 => "tzeit_72",
            Zman::CandleLighting => "candle_lighting",
            Zman::Havdalah => "havdalah",
        }
    }

    /// Parse a JSON key.
    pub fn from_key(key: &str) -> Option<Zman> {
        Zman::ALL.into_iter().find(|z| z.key() == key)
    }
}

/// Why a zman has no time on a given day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum Missing {
    /// The sun does not set (midnight sun).
    SunDoesNotSet,
    /// The sun does not rise (polar night).
    SunDoesNotRise,
    /// The sun never gets this far below the horizon (white nights); degrees below horizon.
    SunNeverReachesAngle {
        /// Degrees below the horizon (×10, e.g. 161 for 16.1°).
        tenths_of_degree: u32,
    },
    /// The sun stays below this angle all day.
    SunAlwaysBelowAngle {
        /// Degrees below the horizon (×10).
        tenths_of_degree: u32,
    },
    /// Depends on sunrise or sunset, which does not occur today.
    NoSunriseOrSunset,
    /// Not applicable today (no candles lit / nothing ends tonight).
    NotToday,
}

impl Missing {
    /// A human sentence for the `missing` map.
    pub fn describe(self) -> String {
        match self {
            Missing::SunDoesNotSet => "the sun stays above the horizon all day (midnight sun)".to_owned(),
            Missing::SunDoesNotRise => "the sun stays below the horizon all day (polar night)".to_owned(),
            Missing::SunNeverReachesAngle { tenths_of_degree: t } => {
                format!(
                    "the sun does not descend {}.{}° below the horizon on this day",
                    t / 10,
                    t % 10
                )
            }
            Missing::SunAlwaysBelowAngle { tenths_of_degree: t } => {
                format!(
                    "the sun stays more than {}.{}° below the horizon all day",
                    t / 10,
                    t % 10
                )
            }
            Missing::NoSunriseOrSunset => "depends on sunrise or sunset, which does not occur on this day".to_owned(),
            Missing::NotToday => "not applicable on this day".to_owned(),
        }
    }
}

/// A zman's value: an instant, or why there is none.
pub type ZmanTime = Result<DateTime<Utc>, Missing>;

/// How havdalah (and candle lighting after nightfall) is timed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Havdalah {
    /// When the sun is this many degrees below the horizon (default 8.5°).
    Degrees(f64),
    /// This many minutes after sunset.
    Minutes(u32),
}

/// Options for computing zmanim.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct ZmanimOptions {
    /// Use elevation-adjusted sunrise/sunset for every zman built on them.
    pub use_elevation: bool,
    /// Minutes before sea-level sunset for candle lighting (18 by default; 40 in Jerusalem).
    pub candle_lighting_minutes: u32,
    /// Havdalah definition.
    pub havdalah: Havdalah,
}

impl Default for ZmanimOptions {
    fn default() -> Self {
        Self {
            use_elevation: false,
            candle_lighting_minutes: 18,
            havdalah: Havdalah::Degrees(8.5),
        }
    }
}

/// The solar computations of one civil day at one place (candle lighting / havdalah are decided
/// by [`crate::DayInfo`], which knows the calendar).
#[derive(Clone, Debug)]
pub struct SolarDay {
    location: Location,
    date: NaiveDate,
    /// Day number whose 00:00 UTC the solar minutes are counted from.
    anchor: i64,
}

const UNIX_EPOCH_ABS: i64 = 719_163;

impl SolarDay {
    /// Prepare the computations of `date` at `location`.
    pub fn new(location: &Location, date: NaiveDate) -> Self {
        // Anchor the solar day so that local noon falls on `date` even across the date line.
        let offset_h = f64::from(location.noon_offset_seconds(date)) / 3600.0;
        let local_noon = 12.0 - location.longitude() / 15.0 + offset_h;
        let shift = if local_noon >= 24.0 {
            -1
        } else if local_noon < 0.0 {
            1
        } else {
            0
        };
        Self {
            location: location.clone(),
            date,
            anchor: civil_to_abs(date) + shift,
        }
    }

    /// The civil date.
    pub fn date(&self) -> NaiveDate {
        self.date
    }

    /// The location.
    pub fn location(&self) -> &Location {
        &self.location
    }

    fn instant(&self, minutes: f64) -> DateTime<Utc> {
        let ms = (self.anchor - UNIX_EPOCH_ABS) * 86_400_000 + (minutes * 60_000.0).round() as i64;
        DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default()
    }

    /// The time the sun's centre crosses `zenith` (degrees from the zenith point).
    pub fn at_zenith(&self, zenith: f64, which: Crossing, horizon: bool) -> ZmanTime {
        let loc = &self.location;
        solar::crossing_minutes(self.anchor, loc.latitude(), loc.longitude(), zenith, which)
            .map(|m| self.instant(m))
            .map_err(|e| {
                let tenths = ((zenith - 90.0) * 10.0).round().max(0.0) as u32;
                match (e, horizon) {
                    (NoCrossing::AlwaysAbove, true) => Missing::SunDoesNotSet,
                    (NoCrossing::AlwaysBelow, true) => Missing::SunDoesNotRise,
                    (NoCrossing::AlwaysAbove, false) => Missing::SunNeverReachesAngle {
                        tenths_of_degree: tenths,
                    },
                    (NoCrossing::AlwaysBelow, false) => Missing::SunAlwaysBelowAngle {
                        tenths_of_degree: tenths,
                    },
                }
            })
    }

    /// The time the sun is `degrees` below the horizon.
    pub fn at_degrees_below(&self, degrees: f64, which: Crossing) -> ZmanTime {
        self.at_zenith(solar::GEOMETRIC_ZENITH + degrees, which, false)
    }

    /// Sunrise or sunset, elevation-adjusted or at sea level.
    pub fn sun(&self, which: Crossing, elevation: bool) -> ZmanTime {
        let e = if elevation { self.location.elevation() } else { 0.0 };
        self.at_zenith(solar::sunrise_zenith(e), which, true)
    }

    /// Solar transit (astronomical noon).
    pub fn transit(&self) -> DateTime<Utc> {
        self.instant(solar::solar_noon_minutes(self.anchor, self.location.longitude()))
    }

    /// Every zman except candle lighting and havdalah (those are [`Missing::NotToday`] here).
    pub fn compute(&self, opts: &ZmanimOptions) -> Vec<(Zman, ZmanTime)> {
        let sunrise = self.sun(Crossing::Morning, true);
        let sunset = self.sun(Crossing::Evening, true);
        let sl_sunrise = self.sun(Crossing::Morning, false);
        let sl_sunset = self.sun(Crossing::Evening, false);
        let (rise, set) = if opts.use_elevation {
            (sunrise, sunset)
        } else {
            (sl_sunrise, sl_sunset)
        };
        let dep = |r: ZmanTime| r.map_err(|_| Missing::NoSunriseOrSunset);
        let alot72 = dep(rise).map(|t| t - Duration::minutes(72));
        let tzeit72 = dep(set).map(|t| t + Duration::minutes(72));
        let hours_into = |start: ZmanTime, end: ZmanTime, hours: f64| -> ZmanTime {
            let (s, e) = (dep(start)?, dep(end)?);
            let ms = (e - s).num_milliseconds() as f64 * hours / 12.0;
            Ok(s + Duration::milliseconds(ms.round() as i64))
        };
        vec![
            (Zman::Sunrise, sunrise),
            (Zman::Sunset, sunset),
            (Zman::SeaLevelSunrise, sl_sunrise),
            (Zman::SeaLevelSunset, sl_sunset),
            (Zman::Alot16_1, self.at_degrees_below(16.1, Crossing::Morning)),
            (Zman::Alot72, alot72),
            (Zman::Misheyakir11_5, self.at_degrees_below(11.5, Crossing::Morning)),
            (Zman::SofZmanShmaGra, hours_into(rise, set, 3.0)),
            (Zman::SofZmanShmaMga, hours_into(alot72, tzeit72, 3.0)),
            (Zman::SofZmanTefilaGra, hours_into(rise, set, 4.0)),
            (Zman::SofZmanTefilaMga, hours_into(alot72, tzeit72, 4.0)),
            (Zman::Chatzot, Ok(self.transit())),
            (Zman::ChatzotHalfDay, hours_into(sl_sunrise, sl_sunset, 6.0)),
            (Zman::MinchaGedola, hours_into(rise, set, 6.5)),
            (Zman::MinchaKetana, hours_into(rise, set, 9.5)),
            (Zman::PlagHamincha, hours_into(rise, set, 10.75)),
            (Zman::Tzeit8_5, self.at_degrees_below(8.5, Crossing::Evening)),
            (Zman::Tzeit72, tzeit72),
            (Zman::CandleLighting, Err(Missing::NotToday)),
            (Zman::Havdalah, Err(Missing::NotToday)),
        ]
    }

    /// Candle lighting before sunset: sea-level sunset minus `minutes`.
    pub fn candle_lighting_before_sunset(&self, minutes: u32) -> ZmanTime {
        self.sun(Crossing::Evening, false)
            .map(|t| t - Duration::minutes(i64::from(minutes)))
            .map_err(|_| Missing::NoSunriseOrSunset)
    }

    /// Nightfall for havdalah (and candle lighting after a first day of yom tov).
    pub fn havdalah(&self, opts: &ZmanimOptions) -> ZmanTime {
        match opts.havdalah {
            Havdalah::Degrees(d) => self.at_degrees_below(d, Crossing::Evening),
            Havdalah::Minutes(m) => self
                .sun(Crossing::Evening, opts.use_elevation)
                .map(|t| t + Duration::minutes(i64::from(m)))
                .map_err(|_| Missing::NoSunriseOrSunset),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        for z in Zman::ALL {
            assert_eq!(Zman::from_key(z.key()), Some(z));
            assert_eq!(
                serde_json::to_value(z).ok(),
                Some(serde_json::Value::String(z.key().to_owned()))
            );
        }
    }

    #[test]
    fn order_of_the_day_in_jerusalem() {
        let loc = Location::new(31.778, 35.2354, 754.0, "Asia/Jerusalem").unwrap_or_else(|e| panic!("{e}"));
        let date = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap_or_default();
        let z = SolarDay::new(&loc, date).compute(&ZmanimOptions::default());
        let get = |k: Zman| z.iter().find(|(z, _)| *z == k).and_then(|(_, t)| t.ok());
        let order = [
            Zman::Alot16_1,
            Zman::Misheyakir11_5,
            Zman::SeaLevelSunrise,
            Zman::SofZmanShmaMga,
            Zman::SofZmanShmaGra,
            Zman::Chatzot,
            Zman::MinchaGedola,
            Zman::PlagHamincha,
            Zman::SeaLevelSunset,
            Zman::Tzeit8_5,
            Zman::Tzeit72,
        ];
        for w in order.windows(2) {
            assert!(get(w[0]) < get(w[1]), "{:?} !< {:?}", w[0], w[1]);
        }
        // Elevation makes sunrise earlier.
        assert!(get(Zman::Sunrise) < get(Zman::SeaLevelSunrise));
    }

    #[test]
    fn polar_summer_is_explicit() {
        let loc = Location::new(69.6496, 18.956, 0.0, "Europe/Oslo").unwrap_or_else(|e| panic!("{e}"));
        let date = NaiveDate::from_ymd_opt(2025, 6, 21).unwrap_or_default();
        let z = SolarDay::new(&loc, date).compute(&ZmanimOptions::default());
        let get = |k: Zman| z.iter().find(|(z, _)| *z == k).map(|(_, t)| *t);
        assert_eq!(get(Zman::Sunset), Some(Err(Missing::SunDoesNotSet)));
        assert_eq!(get(Zman::SofZmanShmaGra), Some(Err(Missing::NoSunriseOrSunset)));
        assert!(matches!(get(Zman::Chatzot), Some(Ok(_))));
    }
}
