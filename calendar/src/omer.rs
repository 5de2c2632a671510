//! Sefirat ha-Omer: the 49 days counted from the second night of Pesach to Shavuot.

use crate::Error;
use crate::hebrew_date::{Abs, HebrewDate, HebrewMonth};

/// The omer count of the (daytime) Hebrew date of day `abs`: 1 on 16 Nisan … 49 on 5 Sivan.
/// The count is said the evening before; see [`crate::DayBoundary`] for "after nightfall" dates.
pub fn omer_day(abs: Abs) -> Result<Option<u8>, Error> {
    let year = HebrewDate::from_abs(abs)?.year();
    let start = HebrewDate::new(year, HebrewMonth::Nisan, 16)?.to_abs()?;
    let day = abs - start + 1;
    Ok(if (1..=49).contains(&day) {
        u8::try_from(day).ok()
    } else {
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hebrew_date::civil_to_abs;
    use chrono::NaiveDate;

    #[test]
    fn lag_baomer_is_33() {
        // 18 Iyyar 5785 = 16 May 2025.
        let abs = civil_to_abs(NaiveDate::from_ymd_opt(2025, 5, 16).unwrap_or_default());
        assert_eq!(omer_day(abs), Ok(Some(33)));
        assert_eq!(omer_day(abs + 40), Ok(None));
    }
}
