//! Everything a screen shows for one civil day: Hebrew date, holidays, parsha, daf yomi, omer
//! and zmanim (with candle lighting / havdalah decided by the calendar).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::candles::{EveningEvent, evening_event};
use crate::daf_yomi::{Daf, daf_yomi};
use crate::hebrew_date::{HebrewDate, civil_to_abs, day_of_week};
use crate::holidays::{Holiday, holidays_on};
use crate::minutes::{MinutePolicy, MinuteRounding, shown_minute, whole_second};
use crate::parsha::{Reading, coming_reading};
use crate::zmanim::{Missing, SolarDay, Zman, ZmanTime, ZmanimOptions};
use crate::{Error, Location};

/// Options for a day computation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct DayOptions {
    /// Israel (one-day yom tov, Israeli parsha schedule) instead of the diaspora.
    pub israel: bool,
    /// Zmanim options (elevation, candle-lighting minutes, havdalah).
    pub zmanim: ZmanimOptions,
}

/// One civil day at one place.
#[derive(Clone, Debug)]
pub struct DayInfo {
    /// The civil date.
    pub date: NaiveDate,
    /// The (daytime) Hebrew date.
    pub hebrew_date: HebrewDate,
    /// Holidays observed at this place (Israel or diaspora).
    pub holidays: Vec<Holiday>,
    /// Reading of the coming Shabbat (today if Shabbat).
    pub parsha: Reading,
    /// Daf yomi (`None` before 1923-09-11).
    pub daf_yomi: Option<Daf>,
    /// Omer day, 1–49.
    pub omer: Option<u8>,
    /// Candle lighting / havdalah this evening.
    pub evening: Option<EveningEvent>,
    /// Every zman in [`Zman::ALL`] order.
    pub zmanim: Vec<(Zman, ZmanTime)>,
    location: Location,
}

impl DayInfo {
    /// Compute the day.
    pub fn compute(location: &Location, date: NaiveDate, opts: &DayOptions) -> Result<Self, Error> {
        let abs = civil_to_abs(date);
        let hebrew_date = HebrewDate::from_abs(abs)?;
        let holidays = holidays_on(abs, opts.israel)?;
        let (_, parsha) = coming_reading(abs, opts.israel)?;
        let evening = evening_event(day_of_week(abs), &holidays);
        let solar = SolarDay::new(location, date);
        let mut zmanim = solar.compute(&opts.zmanim);
        let candles = match evening {
            Some(EveningEvent::CandlesBeforeSunset) => {
                solar.candle_lighting_before_sunset(opts.zmanim.candle_lighting_minutes)
            }
            Some(EveningEvent::CandlesAfterNightfall) => solar.havdalah(&opts.zmanim),
            _ => Err(Missing::NotToday),
        };
        let havdalah = match evening {
            Some(EveningEvent::Havdalah) => solar.havdalah(&opts.zmanim),
            _ => Err(Missing::NotToday),
        };
        for (z, t) in &mut zmanim {
            match z {
                Zman::CandleLighting => *t = candles,
                Zman::Havdalah => *t = havdalah,
                _ => {}
            }
        }
        Ok(Self {
            date,
            hebrew_date,
            holidays,
            parsha,
            daf_yomi: daf_yomi(date).ok(),
            omer: crate::omer::omer_day(abs)?,
            evening,
            zmanim,
            location: location.clone(),
        })
    }

    /// One zman.
    pub fn get(&self, zman: Zman) -> ZmanTime {
        self.zmanim
            .iter()
            .find(|(z, _)| *z == zman)
            .map(|(_, t)| *t)
            .unwrap_or(Err(Missing::NotToday))
    }

    /// The location.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Format an instant as local ISO 8601 with offset, to the nearest second.
    pub fn local_iso(&self, t: DateTime<Utc>) -> String {
        whole_second(t)
            .with_timezone(&self.location.tz())
            .to_rfc3339_opts(SecondsFormat::Secs, false)
    }

    /// The JSON text of the day (the `luach-agent zmanim --json` output), keys in the
    /// documented order (zmanim in [`Zman::ALL`] order).
    pub fn to_json_string(&self) -> Result<String, Error> {
        serde_json::to_string_pretty(&OrderedDay(self)).map_err(|e| Error::Serialize(e.to_string()))
    }

    /// `HH:MM` of `t` on the local clock, rounded as `rounding` says (see [`crate::minutes`]).
    pub fn local_minute(&self, t: DateTime<Utc>, rounding: MinuteRounding) -> String {
        shown_minute(t, &self.location.tz(), rounding)
    }

    /// The day as the API and the screens show it, minutes rounded by `policy`; see [`DayView`].
    pub fn view(&self, policy: &MinutePolicy) -> DayView {
        let mut zmanim = BTreeMap::new();
        let mut shown = BTreeMap::new();
        let mut missing = BTreeMap::new();
        for (z, t) in &self.zmanim {
            match t {
                Ok(t) => {
                    zmanim.insert(z.key().to_owned(), Some(self.local_iso(*t)));
                    shown.insert(z.key().to_owned(), self.local_minute(*t, policy.for_zman(*z)));
                }
                Err(m) => {
                    zmanim.insert(z.key().to_owned(), None);
                    missing.insert(z.key().to_owned(), m.describe());
                }
            }
        }
        DayView {
            date: self.date,
            hebrew_date: self.hebrew_date,
            holidays: self.holidays.iter().map(|h| h.name.clone()).collect(),
            parsha: self.parsha.names(),
            daf_yomi: self.daf_yomi.clone(),
            omer: self.omer,
            zmanim,
            shown,
            missing,
        }
    }

    /// The JSON document of the day as a value (keys sorted, minutes rounded stringently);
    /// see [`DayInfo::to_json_string`].
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.view(&MinutePolicy::default())).unwrap_or(Value::Null)
    }
}

/// A computed day as the API and the screens show it (the `luach-agent zmanim --json` shape).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct DayView {
    /// The civil date.
    pub date: NaiveDate,
    /// The (daytime) Hebrew date.
    pub hebrew_date: HebrewDate,
    /// Holidays observed at the place, by hebcal name.
    pub holidays: Vec<String>,
    /// The reading of the coming Shabbat, by name (two for a double portion).
    pub parsha: Vec<String>,
    /// Daf yomi (absent before 1923-09-11).
    pub daf_yomi: Option<Daf>,
    /// Omer day, 1–49.
    pub omer: Option<u8>,
    /// Every zman's local time (ISO 8601 with offset), `null` when it does not occur that day.
    pub zmanim: BTreeMap<String, Option<String>>,
    /// Every occurring zman as a screen shows it, `HH:MM` rounded by the synagogue's
    /// [`MinutePolicy`] (by default a deadline down, a start up; see [`crate::minutes`]).
    pub shown: BTreeMap<String, String>,
    /// Why each missing zman is missing.
    pub missing: BTreeMap<String, String>,
}

/// Serialises a [`DayInfo`] with keys in the documented order.
struct OrderedDay<'a>(&'a DayInfo);

/// The `zmanim` or `missing` object in [`Zman::ALL`] order.
struct ZmanimMap<'a>(&'a DayInfo, bool);

impl Serialize for ZmanimMap<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (day, missing) = (self.0, self.1);
        let mut m = s.serialize_map(None)?;
        for (z, t) in &day.zmanim {
            match (t, missing) {
                (Ok(t), false) => m.serialize_entry(z.key(), &day.local_iso(*t))?,
                (Err(_), false) => m.serialize_entry(z.key(), &Value::Null)?,
                (Err(reason), true) => m.serialize_entry(z.key(), &reason.describe())?,
                (Ok(_), true) => {}
            }
        }
        m.end()
    }
}

impl Serialize for OrderedDay<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let d = self.0;
        let mut st = s.serialize_struct("Day", 8)?;
        st.serialize_field("date", &d.date.to_string())?;
        st.serialize_field("hebrew_date", &d.hebrew_date)?;
        st.serialize_field(
            "holidays",
            &d.holidays.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(),
        )?;
        st.serialize_field("parsha", &d.parsha.names())?;
        st.serialize_field("daf_yomi", &d.daf_yomi)?;
        st.serialize_field("omer", &d.omer)?;
        st.serialize_field("zmanim", &ZmanimMap(d, false))?;
        st.serialize_field("missing", &ZmanimMap(d, true))?;
        st.end()
    }
}
