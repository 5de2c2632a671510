//! Daf yomi: the page of Babylonian Talmud studied on a civil day.
//!
//! The cycle began on 11 September 1923 with 2,702 pages (Shekalim of 13 pages); from the
//! eighth cycle (24 June 1975) Shekalim has 22 pages, so a cycle is 2,711 days. Kinnim, Tamid
//! and Midot are printed on the pages after Meilah, so their numbering continues from it.

use chrono::NaiveDate;
use serde::Serialize;

use crate::Error;
use crate::hebrew_date::civil_to_abs;

/// (tractate, last page). Pages start at 2.
const TRACTATES: [(&str, u16); 40] = [
    ("Berachot", 64),
    ("Shabbat", 157),
    ("Eruvin", 105),
    ("Pesachim", 121),
    ("Shekalim", 22),
    ("Yoma", 88),
    ("Sukkah", 56),
    ("Beitzah", 40),
    ("Rosh Hashana", 35),
    ("Taanit", 31),
    ("Megillah", 32),
    ("Moed Katan", 29),
    ("Chagigah", 27),
    ("Yevamot", 122),
    ("Ketubot", 112),
    ("Nedarim", 91),
    ("Nazir", 66),
    ("Sotah", 49),
    ("Gitin", 90),
    ("Kiddushin", 82),
    ("Baba Kamma", 119),
    ("Baba Metzia", 119),
    ("Baba Batra", 176),
    ("Sanhedrin", 113),
    ("Makkot", 24),
    ("Shevuot", 49),
    ("Avodah Zarah", 76),
    ("Horayot", 14),
    ("Zevachim", 120),
    ("Menachot", 110),
    ("Chullin", 142),
    ("Bechorot", 61),
    ("Arachin", 34),
    ("Temurah", 34),
    ("Keritot", 28),
    ("Meilah", 22),
    ("Kinnim", 4),
    ("Tamid", 10),
    ("Midot", 4),
    ("Niddah", 73),
];

/// One day's page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Daf {
    /// Tractate name (hebcal spelling).
    pub tractate: &'static str,
    /// Page (daf) number.
    pub page: u16,
}

/// The daf yomi of `date`.
pub fn daf_yomi(date: NaiveDate) -> Result<Daf, Error> {
    let first = NaiveDate::from_ymd_opt(1923, 9, 11).map(civil_to_abs).unwrap_or(0);
    let new_shekalim = NaiveDate::from_ymd_opt(1975, 6, 24).map(civil_to_abs).unwrap_or(0);
    let abs = civil_to_abs(date);
    if abs < first {
        return Err(Error::BeforeDafYomi(date.to_string()));
    }
    let (shekalim, mut day) = if abs >= new_shekalim {
        (22, (abs - new_shekalim).rem_euclid(2711))
    } else {
        (13, (abs - first).rem_euclid(2702))
    };
    for (i, (name, last)) in TRACTATES.iter().enumerate() {
        let last = if *name == "Shekalim" { shekalim } else { *last };
        // Kinnim, Tamid and Midot: (first page, last page) continuing Meilah's numbering.
        let (start, end) = match i {
            36 => (23, 25),
            37 => (26, 33),
            38 => (34, 37),
            _ => (2, last),
        };
        let pages = i64::from(end - start + 1);
        if day < pages {
            let page = start + u16::try_from(day).unwrap_or(0);
            return Ok(Daf { tractate: name, page });
        }
        day -= pages;
    }
    Err(Error::InvalidCivilDate(format!("daf yomi cycle overflow for {date}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_pages() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default();
        assert_eq!(
            daf_yomi(d(2024, 1, 1)),
            Ok(Daf {
                tractate: "Baba Kamma",
                page: 60
            })
        );
        assert_eq!(
            daf_yomi(d(2020, 1, 5)),
            Ok(Daf {
                tractate: "Berachot",
                page: 2
            })
        );
        assert!(daf_yomi(d(1900, 1, 1)).is_err());
    }
}
