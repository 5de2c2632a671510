//! Holidays, fasts and special days of a Hebrew year, for Israel or the diaspora.
//!
//! Names are @hebcal/core's English names so that screens, the dashboard and hebcal-based
//! tools agree. The rules (postponed fasts, special Shabbatot, Israeli national days with
//! their Knesset-set shifts) are the published ones; hebcal is used only as the test oracle.
//! Israel's minor national days (Sigd, Herzl Day, …) are deliberately not included.

use serde::Serialize;

use crate::hebrew_date::{
    Abs, HebrewDate, HebrewMonth, day_of_week, day_on_or_before, days_in_month, is_leap_year, months_in_year,
    short_kislev,
};
use crate::{Error, parsha};

/// What a holiday means for the screen (candles, fasts, …); several may apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
pub struct Flags(u32);

impl Flags {
    /// Yom tov (work forbidden).
    pub const CHAG: Flags = Flags(1);
    /// Candles are lit before sunset this evening (erev).
    pub const LIGHT_CANDLES: Flags = Flags(1 << 1);
    /// Candles for the second day are lit after nightfall this evening.
    pub const LIGHT_CANDLES_TZEIT: Flags = Flags(1 << 2);
    /// Yom tov ends at nightfall (havdalah).
    pub const YOM_TOV_ENDS: Flags = Flags(1 << 3);
    /// Chol hamoed.
    pub const CHOL_HAMOED: Flags = Flags(1 << 4);
    /// A minor (dawn-to-nightfall) fast.
    pub const MINOR_FAST: Flags = Flags(1 << 5);
    /// A major fast (Yom Kippur, Tish'a B'Av) or its eve.
    pub const MAJOR_FAST: Flags = Flags(1 << 6);
    /// Rosh Chodesh.
    pub const ROSH_CHODESH: Flags = Flags(1 << 7);
    /// A minor holiday (Tu BiShvat, Purim, Lag BaOmer, …).
    pub const MINOR_HOLIDAY: Flags = Flags(1 << 8);
    /// A special Shabbat (Shekalim, Zachor, …).
    pub const SPECIAL_SHABBAT: Flags = Flags(1 << 9);
    /// An Israeli national day.
    pub const MODERN: Flags = Flags(1 << 10);
    /// Chanukah candles tonight.
    pub const CHANUKAH: Flags = Flags(1 << 11);
    /// The eve of a holiday.
    pub const EREV: Flags = Flags(1 << 12);

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Whether any flag of `other` is set.
    pub fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

/// One holiday on one day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Holiday {
    /// Day number of the civil date.
    #[serde(skip)]
    pub abs: Abs,
    /// hebcal's English name, e.g. `Pesach II`, `Rosh Chodesh Adar I`, `Tish'a B'Av (observed)`.
    pub name: String,
    /// What the day means.
    #[serde(skip)]
    pub flags: Flags,
}

/// All holidays of Hebrew year `year` (Tishrei to Elul) observed in Israel (`il`) or abroad,
/// sorted by date.
pub fn holidays_of_year(year: i32, il: bool) -> Result<Vec<Holiday>, Error> {
    use HebrewMonth::*;
    let mut out: Vec<Holiday> = Vec::with_capacity(140);
    let d = |m: HebrewMonth, day: u8| HebrewDate::new(year, m, day).and_then(HebrewDate::to_abs);
    let mut add = |abs: Abs, name: &str, flags: Flags| {
        out.push(Holiday {
            abs,
            name: name.to_owned(),
            flags,
        })
    };
    let (f_chag, f_lc, f_tz, f_ends) = (
        Flags::CHAG,
        Flags::LIGHT_CANDLES,
        Flags::LIGHT_CANDLES_TZEIT,
        Flags::YOM_TOV_ENDS,
    );
    let (f_chm, f_minor, f_erev) = (Flags::CHOL_HAMOED, Flags::MINOR_HOLIDAY, Flags::EREV);
    // Day-1 / day-2 flags differ between Israel (one day) and the diaspora (two days).
    let first_day = if il { f_chag | f_ends } else { f_chag | f_tz };

    let rh = d(Tishrei, 1)?;
    add(rh, &format!("Rosh Hashana {year}"), f_chag | f_tz);
    add(rh + 1, "Rosh Hashana II", f_chag | f_ends);
    let gedaliah = if day_of_week(rh) == 4 { 4 } else { 3 };
    add(d(Tishrei, gedaliah)?, "Tzom Gedaliah", Flags::MINOR_FAST);
    add(day_on_or_before(6, rh + 7), "Shabbat Shuva", Flags::SPECIAL_SHABBAT);
    add(rh + 8, "Erev Yom Kippur", f_lc | f_erev);
    add(rh + 9, "Yom Kippur", f_chag | f_ends | Flags::MAJOR_FAST);
    add(rh + 13, "Erev Sukkot", f_lc | f_erev);
    add(rh + 14, "Sukkot I", first_day);
    if il {
        add(rh + 15, "Sukkot II (CH''M)", f_chm);
    } else {
        add(rh + 15, "Sukkot II", f_chag | f_ends);
    }
    for (i, roman) in ["III", "IV", "V", "VI"].iter().enumerate() {
        add(rh + 16 + i as i64, &format!("Sukkot {roman} (CH''M)"), f_chm);
    }
    add(rh + 20, "Sukkot VII (Hoshana Raba)", f_lc | f_chm);
    add(rh + 21, "Shmini Atzeret", first_day);
    if !il {
        add(rh + 22, "Simchat Torah", f_chag | f_ends);
    }

    let kislev24 = d(Kislev, 24)?;
    add(kislev24, "Chanukah: 1 Candle", f_minor | Flags::CHANUKAH | f_erev);
    for candles in 2..=8 {
        add(
            kislev24 + candles - 1,
            &format!("Chanukah: {candles} Candles"),
            f_minor | Flags::CHANUKAH,
        );
    }
    add(kislev24 + 8, "Chanukah: 8th Day", f_minor);
    add(
        if short_kislev(year) {
            d(Tevet, 1)?
        } else {
            d(Kislev, 30)?
        },
        "Chag HaBanot",
        f_minor,
    );
    add(d(Tevet, 10)?, "Asara B'Tevet", Flags::MINOR_FAST);
    add(d(Shvat, 15)?, "Tu BiShvat", f_minor);

    let leap = is_leap_year(year);
    let adar = if leap { Adar2 } else { Adar1 };
    if leap {
        add(d(Adar1, 14)?, "Purim Katan", f_minor);
        add(d(Adar1, 15)?, "Shushan Purim Katan", f_minor);
    }
    let pesach = d(Nisan, 15)?;
    let pesach_dow = day_of_week(pesach);
    add(
        day_on_or_before(6, pesach - 43),
        "Shabbat Shekalim",
        Flags::SPECIAL_SHABBAT,
    );
    add(
        day_on_or_before(6, pesach - 30),
        "Shabbat Zachor",
        Flags::SPECIAL_SHABBAT,
    );
    add(
        pesach - if pesach_dow == 2 { 33 } else { 31 },
        "Ta'anit Esther",
        Flags::MINOR_FAST,
    );
    add(d(adar, 13)?, "Erev Purim", f_minor | f_erev);
    add(d(adar, 14)?, "Purim", f_minor);
    add(d(adar, 15)?, "Shushan Purim", f_minor);
    if pesach_dow == 0 {
        add(d(adar, 16)?, "Purim Meshulash", f_minor);
    }
    let hachodesh = day_on_or_before(6, pesach - 14);
    add(hachodesh - 7, "Shabbat Parah", Flags::SPECIAL_SHABBAT);
    add(hachodesh, "Shabbat HaChodesh", Flags::SPECIAL_SHABBAT);
    add(
        day_on_or_before(6, pesach - 1),
        "Shabbat HaGadol",
        Flags::SPECIAL_SHABBAT,
    );
    let bechorot = if day_of_week(pesach - 1) == 6 {
        day_on_or_before(4, pesach)
    } else {
        pesach - 1
    };
    add(bechorot, "Ta'anit Bechorot", Flags::MINOR_FAST);
    add(pesach - 1, "Erev Pesach", f_lc | f_erev);
    add(pesach, "Pesach I", first_day);
    if il {
        add(pesach + 1, "Pesach II (CH''M)", f_chm);
    } else {
        add(pesach + 1, "Pesach II", f_chag | f_ends);
    }
    for (i, roman) in ["III", "IV", "V"].iter().enumerate() {
        add(pesach + 2 + i as i64, &format!("Pesach {roman} (CH''M)"), f_chm);
    }
    add(pesach + 5, "Pesach VI (CH''M)", f_lc | f_chm);
    add(pesach + 6, "Pesach VII", first_day);
    if !il {
        add(pesach + 7, "Pesach VIII", f_chag | f_ends);
    }
    for (abs, name) in crate::modern::national_days(year)? {
        add(abs, name, Flags::MODERN);
    }
    add(d(Iyyar, 14)?, "Pesach Sheni", f_minor);
    add(d(Iyyar, 18)?, "Lag BaOmer", f_minor);
    let shavuot = d(Sivan, 6)?;
    add(shavuot - 1, "Erev Shavuot", f_lc | f_erev);
    if il {
        add(shavuot, "Shavuot", f_chag | f_ends);
    } else {
        add(shavuot, "Shavuot I", f_chag | f_tz);
        add(shavuot + 1, "Shavuot II", f_chag | f_ends);
    }
    let tamuz17 = d(Tamuz, 17)?;
    add(
        if day_of_week(tamuz17) == 6 {
            tamuz17 + 1
        } else {
            tamuz17
        },
        "Tzom Tammuz",
        Flags::MINOR_FAST,
    );
    let av9 = d(Av, 9)?;
    let (av9, av9_name) = if day_of_week(av9) == 6 {
        (av9 + 1, "Tish'a B'Av (observed)")
    } else {
        (av9, "Tish'a B'Av")
    };
    add(day_on_or_before(6, av9), "Shabbat Chazon", Flags::SPECIAL_SHABBAT);
    add(av9 - 1, "Erev Tish'a B'Av", f_erev | Flags::MAJOR_FAST);
    add(av9, av9_name, Flags::MAJOR_FAST);
    add(day_on_or_before(6, av9 + 7), "Shabbat Nachamu", Flags::SPECIAL_SHABBAT);
    add(d(Av, 15)?, "Tu B'Av", f_minor);
    add(d(Elul, 1)?, "Rosh Hashana LaBehemot", f_minor);
    let next_rh = HebrewDate::new(year + 1, Tishrei, 1).and_then(HebrewDate::to_abs)?;
    add(day_on_or_before(6, next_rh - 4), "Leil Selichot", f_minor);
    add(next_rh - 1, "Erev Rosh Hashana", f_lc | f_erev);

    // Rosh Chodesh: the 30th of a full month and the 1st of the next.
    for m in 1..=months_in_year(year) {
        let Some(month) = HebrewMonth::from_number(m) else {
            continue;
        };
        if month == Tishrei {
            continue;
        }
        let name = format!("Rosh Chodesh {}", month.name(year));
        let first = d(month, 1)?;
        if days_in_month(previous_month(month, year), year) == 30 {
            add(first - 1, &name, Flags::ROSH_CHODESH);
        }
        add(first, &name, Flags::ROSH_CHODESH);
    }

    if let Some(abs) = parsha::shabbat_of_parsha(year, false, parsha::BESHALACH)? {
        add(abs, "Shabbat Shirah", Flags::SPECIAL_SHABBAT);
    }
    if let Some(abs) = birkat_hachamah(year)? {
        add(abs, "Birkat Hachamah", f_minor);
    }
    out.sort_by_key(|h| h.abs);
    Ok(out)
}

/// The month before `month` within Hebrew year `year`.
fn previous_month(month: HebrewMonth, year: i32) -> HebrewMonth {
    use HebrewMonth::*;
    match month {
        Nisan => {
            if is_leap_year(year) {
                Adar2
            } else {
                Adar1
            }
        }
        Cheshvan => Tishrei,
        Tishrei => Elul,
        other => HebrewMonth::from_number(other.number() - 1).unwrap_or(Elul),
    }
}

/// Birkat Hachamah: the sun returns to its position at creation (Shmuel's 28-year cycle of
/// 10,227 days), in Nisan (or late Adar II).
fn birkat_hachamah(year: i32) -> Result<Option<Abs>, Error> {
    let start = if is_leap_year(year) {
        HebrewDate::new(year, HebrewMonth::Adar2, 20)?
    } else {
        HebrewDate::new(year, HebrewMonth::Nisan, 1)?
    }
    .to_abs()?;
    Ok((start..=start + 40).find(|abs| (abs + 1_373_429).rem_euclid(10_227) == 172))
}

/// Holidays on one civil day (day number `abs`).
pub fn holidays_on(abs: Abs, il: bool) -> Result<Vec<Holiday>, Error> {
    let year = HebrewDate::from_abs(abs)?.year();
    Ok(holidays_of_year(year, il)?
        .into_iter()
        .filter(|h| h.abs == abs)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hebrew_date::civil_to_abs;
    use chrono::NaiveDate;

    fn names(y: i32, m: u32, d: u32, il: bool) -> Vec<String> {
        let abs = civil_to_abs(NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default());
        holidays_on(abs, il)
            .unwrap_or_default()
            .into_iter()
            .map(|h| h.name)
            .collect()
    }

    #[test]
    fn some_known_days() {
        assert_eq!(names(2024, 10, 3, false), vec!["Rosh Hashana 5785"]);
        assert!(names(2025, 4, 13, false).contains(&"Pesach I".to_owned()));
        assert_eq!(names(2025, 4, 14, true), vec!["Pesach II (CH''M)"]);
        assert_eq!(names(2025, 4, 14, false), vec!["Pesach II"]);
        assert!(names(2022, 8, 7, false).contains(&"Tish'a B'Av (observed)".to_owned()));
        assert!(
            names(2024, 12, 31, false)
                .iter()
                .any(|n| n.starts_with("Rosh Chodesh Tevet"))
        );
        assert!(names(2009, 4, 8, false).contains(&"Birkat Hachamah".to_owned()));
    }
}
