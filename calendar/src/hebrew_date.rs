//! Hebrew dates: months, names, and conversion to and from civil (Gregorian) dates.
//!
//! Date arithmetic is delegated to ICU4X's `icu_calendar::cal::Hebrew` (the molad /
//! dechiyot rules, year lengths); this module adds hebcal-style month numbering, names and the
//! "day number" (`abs`, Rata Die: 0001-01-01 = 1) used everywhere else in the crate.

use chrono::{Datelike, NaiveDate};
use icu_calendar::cal::Hebrew;
use icu_calendar::types::Month;
use icu_calendar::{Date, Iso};
use serde::{Deserialize, Serialize};

use crate::Error;

/// A Hebrew month, numbered as hebcal does: Nisan = 1 … Elul = 6, Tishrei = 7 … Sh'vat = 11,
/// Adar (Adar I in a leap year) = 12, Adar II = 13 (leap years only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HebrewMonth {
    /// ניסן
    Nisan = 1,
    /// אייר
    Iyyar = 2,
    /// סיון
    Sivan = 3,
    /// תמוז
    Tamuz = 4,
    /// אב
    Av = 5,
    /// אלול
    Elul = 6,
    /// תשרי
    Tishrei = 7,
    /// חשון
    Cheshvan = 8,
    /// כסלו
    Kislev = 9,
    /// טבת
    Tevet = 10,
    /// שבט
    Shvat = 11,
    /// Adar in a common year, Adar I in a leap year.
    Adar1 = 12,
    /// Adar II (leap years only).
    Adar2 = 13,
}

impl HebrewMonth {
    /// All months in hebcal numbering order.
    pub const ALL: [HebrewMonth; 13] = [
        Self::Nisan,
        Self::Iyyar,
        Self::Sivan,
        Self::Tamuz,
        Self::Av,
        Self::Elul,
        Self::Tishrei,
        Self::Cheshvan,
        Self::Kislev,
        Self::Tevet,
        Self::Shvat,
        Self::Adar1,
        Self::Adar2,
    ];

    /// The hebcal month number (Nisan = 1, Adar II = 13).
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The month with the given hebcal number.
    pub fn from_number(n: u8) -> Option<Self> {
        Self::ALL.get(usize::from(n).checked_sub(1)?).copied()
    }

    /// English name as @hebcal/core spells it ("Adar" in a common year, "Adar I" in a leap year).
    pub fn name(self, year: i32) -> &'static str {
        match self {
            Self::Nisan => "Nisan",
            Self::Iyyar => "Iyyar",
            Self::Sivan => "Sivan",
            Self::Tamuz => "Tamuz",
            Self::Av => "Av",
            Self::Elul => "Elul",
            Self::Tishrei => "Tishrei",
            Self::Cheshvan => "Cheshvan",
            Self::Kislev => "Kislev",
            Self::Tevet => "Tevet",
            Self::Shvat => "Sh'vat",
            Self::Adar1 if is_leap_year(year) => "Adar I",
            Self::Adar1 => "Adar",
            Self::Adar2 => "Adar II",
        }
    }

    /// Hebrew name (without niqqud).
    pub fn hebrew_name(self, year: i32) -> &'static str {
        match self {
            Self::Nisan => "ניסן",
            Self::Iyyar => "אייר",
            Self::Sivan => "סיון",
            Self::Tamuz => "תמוז",
            Self::Av => "אב",
            Self::Elul => "אלול",
            Self::Tishrei => "תשרי",
            Self::Cheshvan => "חשון",
            Self::Kislev => "כסלו",
            Self::Tevet => "טבת",
            Self::Shvat => "שבט",
            Self::Adar1 if is_leap_year(year) => "אדר א׳",
            Self::Adar1 => "אדר",
            Self::Adar2 => "אדר ב׳",
        }
    }

    /// ICU4X month code for this month in `year`.
    fn to_icu(self, year: i32) -> Month {
        match self {
            Self::Tishrei => Month::new(1),
            Self::Cheshvan => Month::new(2),
            Self::Kislev => Month::new(3),
            Self::Tevet => Month::new(4),
            Self::Shvat => Month::new(5),
            Self::Adar1 if is_leap_year(year) => Month::leap(5),
            Self::Adar1 | Self::Adar2 => Month::new(6),
            Self::Nisan => Month::new(7),
            Self::Iyyar => Month::new(8),
            Self::Sivan => Month::new(9),
            Self::Tamuz => Month::new(10),
            Self::Av => Month::new(11),
            Self::Elul => Month::new(12),
        }
    }

    fn from_icu(number: u8, leap: bool, year: i32) -> Option<Self> {
        Some(match (number, leap) {
            (1, _) => Self::Tishrei,
            (2, _) => Self::Cheshvan,
            (3, _) => Self::Kislev,
            (4, _) => Self::Tevet,
            (5, false) => Self::Shvat,
            (5, true) => Self::Adar1,
            (6, _) if is_leap_year(year) => Self::Adar2,
            (6, _) => Self::Adar1,
            (7, _) => Self::Nisan,
            (8, _) => Self::Iyyar,
            (9, _) => Self::Sivan,
            (10, _) => Self::Tamuz,
            (11, _) => Self::Av,
            (12, _) => Self::Elul,
            _ => return None,
        })
    }
}

/// Whether `year` (AM) has 13 months.
pub fn is_leap_year(year: i32) -> bool {
    (7 * i64::from(year) + 1).rem_euclid(19) < 7
}

/// Number of months in `year`: 12 or 13.
pub fn months_in_year(year: i32) -> u8 {
    if is_leap_year(year) { 13 } else { 12 }
}

/// Number of days in `year` (353–355 or 383–385).
pub fn days_in_year(year: i32) -> i64 {
    match (
        HebrewDate::new(year, HebrewMonth::Tishrei, 1).and_then(|d| d.to_abs()),
        HebrewDate::new(year + 1, HebrewMonth::Tishrei, 1).and_then(|d| d.to_abs()),
    ) {
        (Ok(a), Ok(b)) => b - a,
        _ => 354,
    }
}

/// Whether Cheshvan has 30 days in `year`.
pub fn long_cheshvan(year: i32) -> bool {
    days_in_year(year) % 10 == 5
}

/// Whether Kislev has 29 days in `year`.
pub fn short_kislev(year: i32) -> bool {
    days_in_year(year) % 10 == 3
}

/// Number of days in `month` of `year` (0 if the month does not exist that year).
pub fn days_in_month(month: HebrewMonth, year: i32) -> u8 {
    use HebrewMonth::*;
    match month {
        Iyyar | Tamuz | Elul | Tevet => 29,
        Cheshvan if !long_cheshvan(year) => 29,
        Kislev if short_kislev(year) => 29,
        Adar1 if !is_leap_year(year) => 29,
        Adar2 if !is_leap_year(year) => 0,
        Adar2 => 29,
        _ => 30,
    }
}

/// A day number: days since the proleptic Gregorian 0000-12-31 (Rata Die, 0001-01-01 = 1).
pub type Abs = i64;

/// The day number of a civil date.
pub fn civil_to_abs(date: NaiveDate) -> Abs {
    i64::from(date.num_days_from_ce())
}

/// The civil date of a day number.
pub fn abs_to_civil(abs: Abs) -> Result<NaiveDate, Error> {
    i32::try_from(abs)
        .ok()
        .and_then(NaiveDate::from_num_days_from_ce_opt)
        .ok_or_else(|| Error::InvalidCivilDate(format!("day number {abs} out of range")))
}

/// Day of week of a day number, 0 = Sunday … 6 = Shabbat.
pub fn day_of_week(abs: Abs) -> u8 {
    // Rata Die 1 (0001-01-01) was a Monday.
    abs.rem_euclid(7) as u8
}

/// Day number of the given weekday on or before `abs` (0 = Sunday … 6 = Shabbat).
pub fn day_on_or_before(weekday: u8, abs: Abs) -> Abs {
    abs - (abs - i64::from(weekday)).rem_euclid(7)
}

/// A date in the Hebrew calendar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HebrewDate {
    year: i32,
    month: HebrewMonth,
    day: u8,
}

impl HebrewDate {
    /// Build a date, checking that the month exists in `year` and the day in the month.
    pub fn new(year: i32, month: HebrewMonth, day: u8) -> Result<Self, Error> {
        if !(1..=9999).contains(&year) {
            return Err(Error::InvalidHebrewDate(format!("year {year} out of range 1..=9999")));
        }
        let dim = days_in_month_fast(month, year);
        if day == 0 || day > dim {
            return Err(Error::InvalidHebrewDate(format!(
                "{day} {} {year} does not exist",
                month.name(year)
            )));
        }
        Ok(Self { year, month, day })
    }

    /// The Hebrew date of a civil date (the daytime date; see [`crate::day_boundary`] for nightfall).
    pub fn from_civil(date: NaiveDate) -> Result<Self, Error> {
        let month = u8::try_from(date.month()).unwrap_or(1);
        let day = u8::try_from(date.day()).unwrap_or(1);
        let iso = Date::try_new_iso(date.year(), month, day)
            .map_err(|e| Error::InvalidCivilDate(format!("{date}: {e:?}")))?;
        let h = iso.to_calendar(Hebrew);
        let year = h.year().extended_year();
        let info = h.month();
        let m = HebrewMonth::from_icu(info.number(), info.to_input().is_leap(), year)
            .ok_or_else(|| Error::InvalidCivilDate(format!("{date}: no Hebrew month")))?;
        Ok(Self {
            year,
            month: m,
            day: h.day_of_month().0,
        })
    }

    /// The Hebrew date of a day number.
    pub fn from_abs(abs: Abs) -> Result<Self, Error> {
        Self::from_civil(abs_to_civil(abs)?)
    }

    /// The civil (Gregorian) date.
    pub fn to_civil(self) -> Result<NaiveDate, Error> {
        let d = Date::try_new_hebrew_v2(self.year, self.month.to_icu(self.year), self.day)
            .map_err(|e| Error::InvalidHebrewDate(format!("{self}: {e:?}")))?;
        let iso: Date<Iso> = d.to_calendar(Iso);
        let y = iso.year().extended_year();
        NaiveDate::from_ymd_opt(y, u32::from(iso.month().number()), u32::from(iso.day_of_month().0))
            .ok_or_else(|| Error::InvalidHebrewDate(format!("{self}: out of civil range")))
    }

    /// The day number.
    pub fn to_abs(self) -> Result<Abs, Error> {
        self.to_civil().map(civil_to_abs)
    }

    /// Year (Anno Mundi).
    pub fn year(self) -> i32 {
        self.year
    }
    /// Month.
    pub fn month(self) -> HebrewMonth {
        self.month
    }
    /// Day of month, 1–30.
    pub fn day(self) -> u8 {
        self.day
    }
    /// English month name as hebcal spells it.
    pub fn month_name(self) -> &'static str {
        self.month.name(self.year)
    }
    /// Whether the date's year is a leap year.
    pub fn is_leap_year(self) -> bool {
        is_leap_year(self.year)
    }

    /// The date in Hebrew letters, e.g. `ט״ו שבט תשפ״ה`.
    pub fn to_hebrew_string(self) -> String {
        format!(
            "{} {} {}",
            crate::gematriya::gematriya(u32::from(self.day)),
            self.month.hebrew_name(self.year),
            crate::gematriya::gematriya(u32::try_from(self.year % 1000).unwrap_or(0))
        )
    }
}

/// Days in month without computing the year length when it is not needed.
fn days_in_month_fast(month: HebrewMonth, year: i32) -> u8 {
    days_in_month(month, year)
}

impl std::fmt::Display for HebrewDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.day, self.month_name(), self.year)
    }
}

/// JSON shape: `{"year": 5785, "month": "Sh'vat", "day": 15}` (hebcal month spelling).
impl Serialize for HebrewDate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("HebrewDate", 3)?;
        st.serialize_field("year", &self.year)?;
        st.serialize_field("month", self.month_name())?;
        st.serialize_field("day", &self.day)?;
        st.end()
    }
}

/// The JSON shape above; `month` is hebcal's spelling (`Tishrei` … `Adar I`, `Adar II`, `Elul`).
impl schemars::JsonSchema for HebrewDate {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "HebrewDate".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "required": ["year", "month", "day"],
            "properties": {
                "year": {"type": "integer"},
                "month": {"type": "string", "description": "hebcal's month name, e.g. Sh'vat, Adar II"},
                "day": {"type": "integer", "minimum": 1, "maximum": 30},
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn known_dates() {
        let h = HebrewDate::from_civil(d(2024, 10, 3)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((h.year(), h.month(), h.day()), (5785, HebrewMonth::Tishrei, 1));
        let h = HebrewDate::from_civil(d(2024, 3, 24)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (h.month(), h.day(), h.month_name()),
            (HebrewMonth::Adar2, 14, "Adar II")
        );
        let h = HebrewDate::from_civil(d(2025, 3, 14)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((h.month(), h.day(), h.month_name()), (HebrewMonth::Adar1, 14, "Adar"));
    }

    #[test]
    fn year_kinds() {
        assert!(is_leap_year(5784));
        assert!(!is_leap_year(5785));
        assert_eq!(days_in_year(5784), 383);
        assert_eq!(days_in_year(5785), 355);
        assert!(long_cheshvan(5785));
        assert!(HebrewDate::new(5785, HebrewMonth::Adar2, 1).is_err());
        assert!(HebrewDate::new(5785, HebrewMonth::Tevet, 30).is_err());
    }

    proptest::proptest! {
        #[test]
        fn civil_hebrew_round_trip(days in 0i64..150_000) {
            let abs = civil_to_abs(d(1800, 1, 1)) + days;
            let h = HebrewDate::from_abs(abs).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            proptest::prop_assert_eq!(h.to_abs().ok(), Some(abs));
            proptest::prop_assert!(h.day() >= 1 && h.day() <= days_in_month(h.month(), h.year()));
            proptest::prop_assert_eq!(HebrewDate::new(h.year(), h.month(), h.day()).ok(), Some(h));
        }

        #[test]
        fn year_lengths_are_legal(year in 5500i32..6200) {
            let n = days_in_year(year);
            let legal: &[i64] = if is_leap_year(year) { &[383, 384, 385] } else { &[353, 354, 355] };
            proptest::prop_assert!(legal.contains(&n), "{} has {} days", year, n);
        }
    }

    #[test]
    fn weekday() {
        assert_eq!(day_of_week(civil_to_abs(d(2024, 10, 5))), 6);
        assert_eq!(
            day_on_or_before(6, civil_to_abs(d(2024, 10, 4))),
            civil_to_abs(d(2024, 9, 28))
        );
    }
}
