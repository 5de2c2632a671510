//! NOAA solar position: the time the sun reaches a given zenith angle, and solar transit.
//!
//! Written from NOAA's published "General Solar Position Calculations" (the spreadsheet
//! equations of Meeus' *Astronomical Algorithms*), with the same two-pass refinement as the
//! reference implementations (KosherJava's `NOAACalculator`, @hebcal/noaa), so results agree
//! with them to about a second. All results are minutes after 00:00 UTC of an anchor day;
//! negative or > 1440 values are legitimate (the event falls on the neighbouring UTC day).

use crate::hebrew_date::Abs;

/// Zenith of the sun's centre at the geometric horizon.
pub const GEOMETRIC_ZENITH: f64 = 90.0;
/// Apparent radius of the sun, degrees.
const SOLAR_RADIUS: f64 = 16.0 / 60.0;
/// Atmospheric refraction at the horizon, degrees.
const REFRACTION: f64 = 34.0 / 60.0;
/// Earth radius used for the elevation dip, km (as KosherJava).
const EARTH_RADIUS_KM: f64 = 6356.9;

/// Whether the morning or evening crossing is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crossing {
    /// The sun rising through the zenith angle (dawn, sunrise).
    Morning,
    /// The sun setting through the zenith angle (sunset, nightfall).
    Evening,
}

/// Julian day at 00:00 UTC of a day number.
fn julian_day(abs: Abs) -> f64 {
    abs as f64 + 1_721_424.5
}

fn centuries(jd: f64) -> f64 {
    (jd - 2_451_545.0) / 36_525.0
}

/// Sun's geometric mean longitude, degrees, normalised to 0..360.
fn mean_longitude(t: f64) -> f64 {
    (280.466_46 + t * (36_000.769_83 + 0.000_303_2 * t)).rem_euclid(360.0)
}

/// Sun's mean anomaly, degrees.
fn mean_anomaly(t: f64) -> f64 {
    357.529_11 + t * (35_999.050_29 - 0.000_153_7 * t)
}

/// Eccentricity of Earth's orbit.
fn eccentricity(t: f64) -> f64 {
    0.016_708_634 - t * (0.000_042_037 + 0.000_000_126_7 * t)
}

fn equation_of_centre(t: f64) -> f64 {
    let m = mean_anomaly(t).to_radians();
    m.sin() * (1.914_602 - t * (0.004_817 + 0.000_014 * t))
        + (2.0 * m).sin() * (0.019_993 - 0.000_101 * t)
        + (3.0 * m).sin() * 0.000_289
}

fn apparent_longitude(t: f64) -> f64 {
    let true_long = mean_longitude(t) + equation_of_centre(t);
    let omega = 125.04 - 1934.136 * t;
    true_long - 0.005_69 - 0.004_78 * omega.to_radians().sin()
}

fn obliquity(t: f64) -> f64 {
    let seconds = 21.448 - t * (46.815 + t * (0.000_59 - t * 0.001_813));
    let mean = 23.0 + (26.0 + seconds / 60.0) / 60.0;
    let omega = 125.04 - 1934.136 * t;
    mean + 0.002_56 * omega.to_radians().cos()
}

/// Solar declination, degrees.
fn declination(t: f64) -> f64 {
    let e = obliquity(t).to_radians();
    let l = apparent_longitude(t).to_radians();
    (e.sin() * l.sin()).asin().to_degrees()
}

/// Equation of time, minutes (apparent minus mean solar time).
fn equation_of_time(t: f64) -> f64 {
    let eps = obliquity(t).to_radians();
    let l0 = mean_longitude(t).to_radians();
    let e = eccentricity(t);
    let m = mean_anomaly(t).to_radians();
    let y = (eps / 2.0).tan().powi(2);
    let v = y * (2.0 * l0).sin() - 2.0 * e * m.sin() + 4.0 * e * y * m.sin() * (2.0 * l0).cos()
        - 0.5 * y * y * (4.0 * l0).sin()
        - 1.25 * e * e * (2.0 * m).sin();
    4.0 * v.to_degrees()
}

/// Why the sun does not cross a zenith angle on a given day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoCrossing {
    /// The sun stays above the angle all day and night (e.g. midnight sun, white nights).
    AlwaysAbove,
    /// The sun stays below the angle all day (e.g. polar night).
    AlwaysBelow,
}

/// Hour angle (radians) at which the sun's centre is at `zenith`.
fn hour_angle(lat: f64, dec: f64, zenith: f64) -> Result<f64, NoCrossing> {
    let (lat, dec) = (lat.to_radians(), dec.to_radians());
    let cos_h = zenith.to_radians().cos() / (lat.cos() * dec.cos()) - lat.tan() * dec.tan();
    if cos_h.is_nan() || cos_h > 1.0 {
        Err(NoCrossing::AlwaysBelow)
    } else if cos_h < -1.0 {
        Err(NoCrossing::AlwaysAbove)
    } else {
        Ok(cos_h.acos())
    }
}

/// The sun's dip below the horizon seen from `elevation_m` metres up, degrees.
pub fn elevation_dip(elevation_m: f64) -> f64 {
    let e = elevation_m.max(0.0) / 1000.0;
    (EARTH_RADIUS_KM / (EARTH_RADIUS_KM + e)).acos().to_degrees()
}

/// The zenith used for sunrise/sunset: geometric + refraction + solar radius + elevation dip.
pub fn sunrise_zenith(elevation_m: f64) -> f64 {
    GEOMETRIC_ZENITH + SOLAR_RADIUS + REFRACTION + elevation_dip(elevation_m)
}

/// Minutes after 00:00 UTC of `abs` of apparent solar noon (the sun's transit) at `longitude`
/// (east +): the equation of time evaluated at the transit itself, iterated until it settles.
///
/// NOAA's published two-step procedure (`calcSolNoonUTC`, copied by KosherJava 2.5, python
/// `zmanim` and @hebcal/noaa) evaluates the second equation of time half a day before its first
/// estimate; that puts transit up to ~15 s off the sun's (against JPL's DE421 ephemeris), in a
/// pattern following the equation of time's rate of change. Evaluated at the transit, as here,
/// the result is within a few seconds of the ephemeris (`calendar/tests/reference_compare.rs`
/// checks 5 s), and the references are compared with a wider tolerance for this one time.
pub fn solar_noon_minutes(abs: Abs, longitude: f64) -> f64 {
    let jd = julian_day(abs);
    let mut noon = 720.0 - 4.0 * longitude;
    for _ in 0..3 {
        noon = 720.0 - 4.0 * longitude - equation_of_time(centuries(jd + noon / 1440.0));
    }
    noon
}

/// Minutes after 00:00 UTC of `abs` at which the sun's centre crosses `zenith` degrees,
/// for the solar day whose noon falls on `abs` (UTC).
pub fn crossing_minutes(
    abs: Abs,
    latitude: f64,
    longitude: f64,
    zenith: f64,
    which: Crossing,
) -> Result<f64, NoCrossing> {
    let jd = julian_day(abs);
    let sign = match which {
        Crossing::Morning => -1.0,
        Crossing::Evening => 1.0,
    };
    // First pass at solar noon, second at the first estimate (as NOAA / KosherJava).
    let mut time = solar_noon_minutes(abs, longitude);
    for _ in 0..2 {
        let t = centuries(jd + time / 1440.0);
        let ha = hour_angle(latitude, declination(t), zenith)?;
        time = 720.0 - 4.0 * longitude + sign * 4.0 * ha.to_degrees() - equation_of_time(t);
    }
    Ok(time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn abs(y: i32, m: u32, d: u32) -> Abs {
        crate::hebrew_date::civil_to_abs(NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default())
    }

    #[test]
    fn jerusalem_equinox_roughly_six_to_six() {
        let a = abs(2024, 3, 20);
        let rise = crossing_minutes(a, 31.778, 35.2354, sunrise_zenith(0.0), Crossing::Morning);
        let set = crossing_minutes(a, 31.778, 35.2354, sunrise_zenith(0.0), Crossing::Evening);
        // Sunrise ≈ 03:42 UTC (05:42 IST), sunset ≈ 15:52 UTC.
        let rise = rise.unwrap_or(f64::NAN);
        let set = set.unwrap_or(f64::NAN);
        assert!(rise.is_finite() && set.is_finite());
        assert!((rise - 222.5).abs() < 2.0, "{rise}");
        assert!((set - 952.0).abs() < 3.0, "{set}");
    }

    #[test]
    fn polar_night_has_no_sunrise() {
        let a = abs(2024, 12, 21);
        assert_eq!(
            crossing_minutes(a, 78.22, 15.65, sunrise_zenith(0.0), Crossing::Morning),
            Err(NoCrossing::AlwaysBelow)
        );
    }

    #[test]
    fn elevation_dip_grows() {
        assert!(elevation_dip(0.0).abs() < 1e-9);
        assert!(elevation_dip(800.0) > 0.8 && elevation_dip(800.0) < 1.0);
    }
}
