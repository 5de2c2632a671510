//! Israeli national days that synagogues mark: Yom HaShoah, Yom HaZikaron, Yom HaAtzma'ut and
//! Yom Yerushalayim, with the Knesset's rules for moving them away from Shabbat.

use crate::Error;
use crate::hebrew_date::{Abs, HebrewDate, HebrewMonth, day_of_week};

/// The national days of Hebrew year `year` (day number, hebcal name).
pub fn national_days(year: i32) -> Result<Vec<(Abs, &'static str)>, Error> {
    let d = |m: HebrewMonth, day: u8| HebrewDate::new(year, m, day).and_then(HebrewDate::to_abs);
    let mut out = Vec::with_capacity(4);
    // Yom HaShoah (from 5711 / 1951): 27 Nisan; Friday → Thursday, Sunday → Monday.
    if year >= 5711 {
        let n27 = d(HebrewMonth::Nisan, 27)?;
        let day = match day_of_week(n27) {
            5 => n27 - 1,
            0 => n27 + 1,
            _ => n27,
        };
        out.push((day, "Yom HaShoah"));
    }
    // Yom HaZikaron / Yom HaAtzma'ut (from 5708 / 1948): 4 / 5 Iyyar, moved so that neither
    // touches Shabbat; since 5764 also moved off Sunday night / Monday.
    if year >= 5708 {
        let pesach_dow = day_of_week(d(HebrewMonth::Nisan, 15)?);
        let zikaron_day = match pesach_dow {
            0 => 2,
            6 => 3,
            _ if year < 5764 => 4,
            2 => 5,
            _ => 4,
        };
        let zikaron = d(HebrewMonth::Iyyar, zikaron_day)?;
        out.push((zikaron, "Yom HaZikaron"));
        out.push((zikaron + 1, "Yom HaAtzma'ut"));
    }
    // Yom Yerushalayim (from 5727 / 1967): 28 Iyyar.
    if year >= 5727 {
        out.push((d(HebrewMonth::Iyyar, 28)?, "Yom Yerushalayim"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hebrew_date::civil_to_abs;
    use chrono::NaiveDate;

    #[test]
    fn atzmaut_2024_moved_to_tuesday() {
        let days = national_days(5784).unwrap_or_default();
        let atz = days.iter().find(|(_, n)| *n == "Yom HaAtzma'ut").map(|(a, _)| *a);
        assert_eq!(
            atz,
            Some(civil_to_abs(NaiveDate::from_ymd_opt(2024, 5, 14).unwrap_or_default()))
        );
    }
}
