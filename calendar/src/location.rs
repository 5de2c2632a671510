//! A validated place on earth: latitude, longitude, elevation and IANA time zone.

use chrono::{DateTime, NaiveDate, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::Error;

/// A place for which zmanim are computed. Construct with [`Location::new`], which validates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "LocationSpec", into = "LocationSpec")]
pub struct Location {
    latitude: f64,
    longitude: f64,
    elevation: f64,
    tz: Tz,
}

/// Wire form of a [`Location`] (JSON): `{"latitude":…, "longitude":…, "elevation":…, "tz":"…"}`.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LocationSpec {
    /// Degrees north (negative south), -90..=90.
    pub latitude: f64,
    /// Degrees east (negative west), -180..=180.
    pub longitude: f64,
    /// Metres above sea level (default 0).
    #[serde(default)]
    pub elevation: f64,
    /// IANA zone name, e.g. `Asia/Jerusalem`.
    pub tz: String,
}

impl TryFrom<LocationSpec> for Location {
    type Error = Error;
    fn try_from(s: LocationSpec) -> Result<Self, Error> {
        Location::new(s.latitude, s.longitude, s.elevation, &s.tz)
    }
}

impl From<Location> for LocationSpec {
    fn from(l: Location) -> Self {
        LocationSpec {
            latitude: l.latitude,
            longitude: l.longitude,
            elevation: l.elevation,
            tz: l.tz.name().to_owned(),
        }
    }
}

impl Location {
    /// Validate and build a location.
    pub fn new(latitude: f64, longitude: f64, elevation: f64, tz: &str) -> Result<Self, Error> {
        if !latitude.is_finite() || !(-90.0..=90.0).contains(&latitude) {
            return Err(Error::InvalidLatitude(latitude));
        }
        if !longitude.is_finite() || !(-180.0..=180.0).contains(&longitude) {
            return Err(Error::InvalidLongitude(longitude));
        }
        if !elevation.is_finite() || !(-500.0..=9000.0).contains(&elevation) {
            return Err(Error::InvalidElevation(elevation));
        }
        let tz: Tz = tz.parse().map_err(|_| Error::UnknownTimeZone(tz.to_owned()))?;
        Ok(Self {
            latitude,
            longitude,
            elevation,
            tz,
        })
    }

    /// Degrees north.
    pub fn latitude(&self) -> f64 {
        self.latitude
    }
    /// Degrees east.
    pub fn longitude(&self) -> f64 {
        self.longitude
    }
    /// Metres above sea level.
    pub fn elevation(&self) -> f64 {
        self.elevation
    }
    /// The IANA time zone.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// UTC offset in seconds in force at local noon of `date`.
    pub fn noon_offset_seconds(&self, date: NaiveDate) -> i32 {
        let noon = date.and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or(NaiveTime::MIN));
        match self.tz.from_local_datetime(&noon).earliest() {
            Some(dt) => dt.offset().fix().local_minus_utc(),
            None => self.tz.from_utc_datetime(&noon).offset().fix().local_minus_utc(),
        }
    }

    /// The UTC instant of local `time` on `date`; in a DST gap the first valid instant after it,
    /// in a DST overlap the earlier one.
    pub fn local_to_utc(&self, date: NaiveDate, time: NaiveTime) -> Result<DateTime<Utc>, Error> {
        let naive = date.and_time(time);
        if let Some(dt) = self.tz.from_local_datetime(&naive).earliest() {
            return Ok(dt.with_timezone(&Utc));
        }
        // Skipped by a DST gap: walk forward minute by minute (gaps are at most a few hours).
        for minutes in 1..=240 {
            let later = naive + chrono::Duration::minutes(minutes);
            if let Some(dt) = self.tz.from_local_datetime(&later).earliest() {
                return Ok(dt.with_timezone(&Utc));
            }
        }
        Err(Error::InvalidTime(format!(
            "{naive} does not exist in {}",
            self.tz.name()
        )))
    }

    /// The local civil date of a UTC instant.
    pub fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.tz).date_naive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates() {
        assert!(Location::new(31.77, 35.23, 754.0, "Asia/Jerusalem").is_ok());
        assert_eq!(Location::new(91.0, 0.0, 0.0, "UTC"), Err(Error::InvalidLatitude(91.0)));
        assert!(matches!(
            Location::new(1.0, 0.0, 0.0, "Mars/Olympus"),
            Err(Error::UnknownTimeZone(_))
        ));
        assert!(matches!(
            Location::new(f64::NAN, 0.0, 0.0, "UTC"),
            Err(Error::InvalidLatitude(_))
        ));
    }

    #[test]
    fn json_round_trip_validates() {
        let bad = serde_json::from_str::<Location>(r#"{"latitude":100,"longitude":0,"tz":"UTC"}"#);
        assert!(bad.is_err());
        let ok: Result<Location, _> =
            serde_json::from_str(r#"{"latitude":40.7,"longitude":-74,"tz":"America/New_York"}"#);
        assert!(ok.is_ok());
    }
}
