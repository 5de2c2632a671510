//! Yahrzeit: the anniversary of a death, following the established rules (Reingold and
//! Dershowitz, *Calendrical Calculations*, as hebcal applies them):
//!
//! * 30 Cheshvan / 30 Kislev: if the first anniversary had no such day, the yahrzeit is the
//!   last day of that month every year; otherwise 30th, or 1 Kislev / 1 Tevet in years
//!   without a 30th.
//! * Adar II: the same day of the last Adar of the year (Adar in a common year).
//! * 30 Adar I: in a common year, 30 Sh'vat.
//! * Adar of a common year stays in the first Adar (Adar I) in a leap year.

use chrono::NaiveDate;

use crate::Error;
use crate::hebrew_date::{HebrewDate, HebrewMonth, is_leap_year, long_cheshvan, months_in_year, short_kislev};

/// The yahrzeit in Hebrew year `year` of a death on `death` (Hebrew date). `None` when `year`
/// is not after the year of death.
pub fn yahrzeit(death: HebrewDate, year: i32) -> Result<Option<HebrewDate>, Error> {
    use HebrewMonth::*;
    if year <= death.year() {
        return Ok(None);
    }
    let (mut month, mut day) = (death.month(), death.day());
    let first = death.year() + 1;
    if month == Cheshvan && day == 30 && !long_cheshvan(first) {
        let kislev1 = HebrewDate::new(year, Kislev, 1)?.to_abs()?;
        let d = HebrewDate::from_abs(kislev1 - 1)?;
        (month, day) = (d.month(), d.day());
    } else if month == Kislev && day == 30 && short_kislev(first) {
        let tevet1 = HebrewDate::new(year, Tevet, 1)?.to_abs()?;
        let d = HebrewDate::from_abs(tevet1 - 1)?;
        (month, day) = (d.month(), d.day());
    } else if month == Adar2 {
        month = if months_in_year(year) == 13 { Adar2 } else { Adar1 };
    } else if month == Adar1 && day == 30 && !is_leap_year(year) {
        month = Shvat;
    }
    if month == Cheshvan && day == 30 && !long_cheshvan(year) {
        (month, day) = (Kislev, 1);
    } else if month == Kislev && day == 30 && short_kislev(year) {
        (month, day) = (Tevet, 1);
    }
    HebrewDate::new(year, month, day).map(Some)
}

/// The yahrzeit in Hebrew year `year` of a death on civil `date`; `after_nightfall` when the
/// death was after nightfall (the Hebrew date had already advanced).
pub fn yahrzeit_from_civil(date: NaiveDate, after_nightfall: bool, year: i32) -> Result<Option<HebrewDate>, Error> {
    let abs = crate::hebrew_date::civil_to_abs(date) + i64::from(after_nightfall);
    yahrzeit(HebrewDate::from_abs(abs)?, year)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hd(y: i32, m: HebrewMonth, d: u8) -> HebrewDate {
        HebrewDate::new(y, m, d).unwrap_or_else(|e| panic!("{e}"))
    }

    proptest::proptest! {
        #[test]
        fn yahrzeit_is_a_real_date_in_the_target_year(days in 0i64..40_000, later in 1i32..60) {
            let abs = crate::hebrew_date::civil_to_abs(NaiveDate::from_ymd_opt(1950, 1, 1).unwrap_or_default()) + days;
            let death = HebrewDate::from_abs(abs).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            let y = yahrzeit(death, death.year() + later).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            let y = y.ok_or_else(|| proptest::test_runner::TestCaseError::fail("no yahrzeit"))?;
            proptest::prop_assert_eq!(y.year(), death.year() + later);
            // Never more than a day away from the same month/day when that exists.
            if let Ok(same) = HebrewDate::new(y.year(), death.month(), death.day()) {
                let gap = (same.to_abs().unwrap_or(0) - y.to_abs().unwrap_or(0)).abs();
                proptest::prop_assert!(gap <= 1 || death.month() == HebrewMonth::Adar1 || death.month() == HebrewMonth::Adar2);
            }
        }
    }

    #[test]
    fn adar_rules() {
        // 30 Adar I 5774 → 30 Sh'vat in common 5780 (hebcal's documented example).
        assert_eq!(
            yahrzeit(hd(5774, HebrewMonth::Adar1, 30), 5780),
            Ok(Some(hd(5780, HebrewMonth::Shvat, 30)))
        );
        // Adar II → Adar in a common year, Adar II in a leap year.
        assert_eq!(
            yahrzeit(hd(5784, HebrewMonth::Adar2, 10), 5785),
            Ok(Some(hd(5785, HebrewMonth::Adar1, 10)))
        );
        assert_eq!(
            yahrzeit(hd(5784, HebrewMonth::Adar2, 10), 5787),
            Ok(Some(hd(5787, HebrewMonth::Adar2, 10)))
        );
        assert_eq!(yahrzeit(hd(5784, HebrewMonth::Adar2, 10), 5784), Ok(None));
    }
}
