//! One day on demand: what `luach-agent zmanim` prints (JSON or plain text).

use std::fmt::Write as _;

use chrono::NaiveDate;

use crate::day_info::{DayInfo, DayOptions};
use crate::zmanim::{Zman, ZmanimOptions};
use crate::{Error, Location};

/// One civil day at one place, as `luach-agent zmanim` asks for it (the agent parses its
/// command line into this; the calendar takes no command-line framework).
#[derive(Debug, Clone, PartialEq)]
pub struct DayRequest {
    /// Latitude in degrees, north positive (-90..90).
    pub lat: f64,
    /// Longitude in degrees, east positive (-180..180).
    pub lon: f64,
    /// Elevation in metres above sea level.
    pub elevation: f64,
    /// Use elevation-adjusted sunrise and sunset for all zmanim (default: sea level).
    pub use_elevation: bool,
    /// IANA time zone, e.g. Asia/Jerusalem.
    pub tz: String,
    /// Civil date, YYYY-MM-DD.
    pub date: String,
    /// Use the Israeli holiday and parsha schedule.
    pub israel: bool,
    /// Candle lighting, minutes before sunset (e.g. 18, 20, 40 in Jerusalem).
    pub candle_minutes: u32,
    /// JSON instead of text.
    pub json: bool,
}

/// Computes the requested day and renders it (JSON text with `json`, otherwise plain text).
pub fn run_day_request(args: &DayRequest) -> Result<String, Error> {
    let location = Location::new(args.lat, args.lon, args.elevation, &args.tz)?;
    let date = NaiveDate::parse_from_str(args.date.trim(), "%Y-%m-%d")
        .map_err(|e| Error::InvalidCivilDate(format!("{:?} is not a YYYY-MM-DD date ({e})", args.date)))?;
    if !(1800..=2400).contains(&chrono::Datelike::year(&date)) {
        return Err(Error::InvalidCivilDate(format!(
            "{date} is outside the supported years 1800–2400"
        )));
    }
    if args.candle_minutes > 120 {
        return Err(Error::InvalidArgument(format!(
            "candle minutes must be between 0 and 120, got {}",
            args.candle_minutes
        )));
    }
    let opts = DayOptions {
        israel: args.israel,
        zmanim: ZmanimOptions {
            use_elevation: args.use_elevation,
            candle_lighting_minutes: args.candle_minutes,
            ..ZmanimOptions::default()
        },
    };
    let day = DayInfo::compute(&location, date, &opts)?;
    if args.json {
        return day.to_json_string();
    }
    Ok(render_text(&day))
}

/// Plain-text rendering for people.
pub fn render_text(day: &DayInfo) -> String {
    let mut s = String::new();
    let h = day.hebrew_date;
    let _ = writeln!(
        s,
        "{}  {}  ({})",
        day.date.format("%A %Y-%m-%d"),
        h,
        h.to_hebrew_string()
    );
    if !day.holidays.is_empty() {
        let names: Vec<&str> = day.holidays.iter().map(|h| h.name.as_str()).collect();
        let _ = writeln!(s, "Holidays: {}", names.join(", "));
    }
    let _ = writeln!(s, "Parsha:   {}", day.parsha.names().join("-"));
    if let Some(d) = &day.daf_yomi {
        let _ = writeln!(s, "Daf yomi: {} {}", d.tractate, d.page);
    }
    if let Some(o) = day.omer {
        let _ = writeln!(s, "Omer:     day {o}");
    }
    let _ = writeln!(s);
    for z in Zman::ALL {
        match day.get(z) {
            Ok(t) => {
                let local = t.with_timezone(&day.location().tz());
                let _ = writeln!(s, "{:<22}{}", z.key(), local.format("%H:%M:%S"));
            }
            Err(crate::Missing::NotToday) => {}
            Err(m) => {
                let _ = writeln!(s, "{:<22}—  ({})", z.key(), m.describe());
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(lat: f64, lon: f64, tz: &str, date: &str, json: bool) -> DayRequest {
        DayRequest {
            lat,
            lon,
            elevation: 0.0,
            use_elevation: false,
            tz: tz.into(),
            date: date.into(),
            israel: false,
            candle_minutes: 18,
            json,
        }
    }

    #[test]
    fn parses_negative_longitude_and_runs() {
        let args = request(40.7128, -74.006, "America/New_York", "2025-04-11", true);
        let out = run_day_request(&args).unwrap_or_else(|e| panic!("{e}"));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        assert_eq!(v["hebrew_date"]["month"], "Nisan");
        assert!(v["zmanim"]["candle_lighting"].is_string(), "Friday has candle lighting");
        assert!(v["zmanim"]["havdalah"].is_null());
        assert_eq!(v["zmanim"].as_object().map(|m| m.len()), Some(20));
        // Keys come in the documented order.
        let first = [
            "\"date\"",
            "\"hebrew_date\"",
            "\"holidays\"",
            "\"parsha\"",
            "\"daf_yomi\"",
            "\"omer\"",
            "\"zmanim\"",
        ];
        let pos: Vec<usize> = first.iter().filter_map(|k| out.find(k)).collect();
        assert!(pos.len() == first.len() && pos.windows(2).all(|w| w[0] < w[1]), "{out}");
        assert!(out.find("\"sunrise\"") < out.find("\"havdalah\""));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let ok = request(31.7, 35.2, "Asia/Jerusalem", "2025-01-01", false);
        let with = |f: &dyn Fn(&mut DayRequest)| {
            let mut a = ok.clone();
            f(&mut a);
            run_day_request(&a)
        };
        assert!(matches!(
            with(&|a| a.tz = "Nowhere/City".into()),
            Err(Error::UnknownTimeZone(_))
        ));
        assert!(matches!(
            with(&|a| a.date = "2025-02-30".into()),
            Err(Error::InvalidCivilDate(_))
        ));
        assert!(matches!(with(&|a| a.lat = 95.0), Err(Error::InvalidLatitude(_))));
        assert!(matches!(with(&|a| a.lat = f64::NAN), Err(Error::InvalidLatitude(_))));
        assert!(matches!(
            with(&|a| a.candle_minutes = 1000),
            Err(Error::InvalidArgument(_))
        ));
        assert!(with(&|_| {}).is_ok());
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(64))]
        #[test]
        fn never_panics(lat in proptest::num::f64::ANY, lon in -200.0f64..200.0, elevation in -1000.0f64..10_000.0,
                        date in "[0-9]{4}-[0-9]{2}-[0-9]{2}|.{0,12}", zone in 0usize..5, json in proptest::bool::ANY) {
            let tz = ["Asia/Jerusalem", "Pacific/Apia", "Antarctica/Troll", "UTC", "Bad/Zone"][zone];
            let args = DayRequest { lat, lon, elevation, use_elevation: json, tz: tz.into(), date, israel: json,
                candle_minutes: 18, json };
            let _ = run_day_request(&args);
        }

        #[test]
        fn valid_input_always_answers(lat in -90.0f64..=90.0, lon in -180.0f64..=180.0, days in 0i64..200_000,
                                      zone in 0usize..4) {
            let tz = ["Asia/Jerusalem", "Pacific/Apia", "Antarctica/Troll", "America/St_Johns"][zone];
            let date = NaiveDate::from_ymd_opt(1850, 1, 1).unwrap_or_default() + chrono::Duration::days(days);
            let args = DayRequest { lat, lon, elevation: 0.0, use_elevation: false, tz: tz.into(),
                date: date.to_string(), israel: false, candle_minutes: 18, json: true };
            let out = run_day_request(&args);
            proptest::prop_assert!(out.is_ok(), "{:?}", out);
        }
    }

    #[test]
    fn text_output_mentions_sunrise() {
        let out = run_day_request(&request(51.5, -0.12, "Europe/London", "2025-03-30", false));
        assert!(out.unwrap_or_default().contains("sunrise"));
    }
}
