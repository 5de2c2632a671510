//! The weekly Torah portion (parashat hashavua), Israel and diaspora schedules.
//!
//! Derived from the rules rather than from year-type tables: the Shabbatot of a year are split
//! at the fixed anchors of the cycle — Bereshit after Simchat Torah; Tzav (common year) or
//! Metzora (leap year) before Pesach; Bamidbar before Shavuot; Devarim on the Shabbat before
//! Tish'a B'Av; Nitzavim before Rosh Hashana, with Vayeilech read alone only when the next
//! Rosh Hashana falls on Monday or Tuesday (it is then read on Shabbat Shuva). Within each
//! segment the portions that do not fit are combined in the traditional order of preference;
//! where Israel has a Shabbat the diaspora spends on the eighth day of Pesach or the second
//! day of Shavuot, Israel runs a week ahead until the segment's combinations absorb it.

use serde::Serialize;

use crate::Error;
use crate::hebrew_date::{Abs, HebrewDate, HebrewMonth, day_on_or_before, is_leap_year};

/// The 54 portions, hebcal spelling.
pub const PARSHIYOT: [&str; 54] = [
    "Bereshit",
    "Noach",
    "Lech-Lecha",
    "Vayera",
    "Chayei Sara",
    "Toldot",
    "Vayetzei",
    "Vayishlach",
    "Vayeshev",
    "Miketz",
    "Vayigash",
    "Vayechi",
    "Shemot",
    "Vaera",
    "Bo",
    "Beshalach",
    "Yitro",
    "Mishpatim",
    "Terumah",
    "Tetzaveh",
    "Ki Tisa",
    "Vayakhel",
    "Pekudei",
    "Vayikra",
    "Tzav",
    "Shmini",
    "Tazria",
    "Metzora",
    "Achrei Mot",
    "Kedoshim",
    "Emor",
    "Behar",
    "Bechukotai",
    "Bamidbar",
    "Nasso",
    "Beha'alotcha",
    "Sh'lach",
    "Korach",
    "Chukat",
    "Balak",
    "Pinchas",
    "Matot",
    "Masei",
    "Devarim",
    "Vaetchanan",
    "Eikev",
    "Re'eh",
    "Shoftim",
    "Ki Teitzei",
    "Ki Tavo",
    "Nitzavim",
    "Vayeilech",
    "Ha'azinu",
    "Vezot Haberakhah",
];

/// Index of Beshalach (Shabbat Shirah).
pub const BESHALACH: u8 = 15;

/// What is read on a Shabbat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Reading {
    /// One portion or two combined (indices into [`PARSHIYOT`]).
    Parsha(Vec<u8>),
    /// A holiday reading replaces the weekly portion (hebcal's name for it).
    Holiday(&'static str),
}

impl Reading {
    /// Names as hebcal spells them: one or two portions, or the holiday.
    pub fn names(&self) -> Vec<String> {
        match self {
            Reading::Parsha(ix) => ix
                .iter()
                .filter_map(|i| PARSHIYOT.get(usize::from(*i)))
                .map(|s| (*s).to_owned())
                .collect(),
            Reading::Holiday(name) => vec![(*name).to_owned()],
        }
    }
}

/// The holiday read on Shabbat `abs` of year `year`, if it is one.
fn holiday_reading(year: i32, abs: Abs, il: bool, rh: Abs, pesach: Abs, shavuot: Abs) -> Option<&'static str> {
    match abs - rh {
        0 => return Some("Rosh Hashana"),
        9 => return Some("Yom Kippur"),
        14 => return Some("Sukkot"),
        15..=20 => return Some("Sukkot Shabbat Chol ha-Moed"),
        21 => return Some("Shmini Atzeret"),
        22 if !il => return Some("Simchat Torah"),
        _ => {}
    }
    let _ = year;
    match abs - pesach {
        0 if il => Some("Pesach"),
        0 => Some("Pesach I"),
        1..=5 => Some("Pesach Shabbat Chol ha-Moed"),
        6 => Some("Pesach VII"),
        7 if !il => Some("Pesach VIII"),
        _ if abs == shavuot || (!il && abs == shavuot + 1) => Some("Shavuot"),
        _ => None,
    }
}

/// The readings of every Shabbat of Hebrew year `year` (from Rosh Hashana to the end of Elul).
pub fn year_schedule(year: i32, il: bool) -> Result<Vec<(Abs, Reading)>, Error> {
    let d = |y: i32, m: HebrewMonth, day: u8| HebrewDate::new(y, m, day).and_then(HebrewDate::to_abs);
    let rh = d(year, HebrewMonth::Tishrei, 1)?;
    let next_rh = d(year + 1, HebrewMonth::Tishrei, 1)?;
    let pesach = d(year, HebrewMonth::Nisan, 15)?;
    let shavuot = d(year, HebrewMonth::Sivan, 6)?;
    let av9 = d(year, HebrewMonth::Av, 9)?;
    let leap = is_leap_year(year);

    let first = day_on_or_before(6, rh + 6);
    let shabbatot: Vec<Abs> = (0..).map(|i| first + 7 * i).take_while(|a| *a < next_rh).collect();
    let mut out: Vec<(Abs, Reading)> = Vec::with_capacity(shabbatot.len());
    let mut free: Vec<Abs> = Vec::new();
    for &s in &shabbatot {
        match holiday_reading(year, s, il, rh, pesach, shavuot) {
            Some(h) => out.push((s, Reading::Holiday(h))),
            None => free.push(s),
        }
    }
    // Before Bereshit: Ha'azinu, preceded by Vayeilech when there is a second Shabbat.
    let bereshit_from = rh + 22;
    let tishrei: Vec<Abs> = free.iter().copied().filter(|s| *s < bereshit_from).collect();
    let mut names = [51u8, 52u8].iter().rev();
    for s in tishrei.iter().rev() {
        let ix = names.next().copied().unwrap_or(52);
        out.push((*s, Reading::Parsha(vec![ix])));
    }

    let before_pesach = pesach;
    let bamidbar_shabbat = day_on_or_before(6, shavuot - 1);
    let devarim_shabbat = day_on_or_before(6, av9);
    let vayeilech_next_year = matches!(crate::hebrew_date::day_of_week(next_rh), 1 | 2);
    // (segment end date exclusive, last portion of the segment, pairs by preference)
    let segments: [(Abs, u8, &[u8]); 4] = [
        (
            before_pesach,
            if leap { 27 } else { 24 },
            if leap { &[21, 26] } else { &[21] },
        ),
        (bamidbar_shabbat, 32, if leap { &[28, 31] } else { &[26, 28, 31] }),
        (devarim_shabbat + 1, 43, &[41, 38]),
        (next_rh, if vayeilech_next_year { 50 } else { 51 }, &[50]),
    ];
    let mut pos: u8 = 0;
    let mut slots = free.iter().copied().filter(|s| *s >= bereshit_from).peekable();
    for (end, last, pairs) in segments {
        let seg: Vec<Abs> = std::iter::from_fn(|| slots.next_if(|s| *s < end)).collect();
        let units = i64::from(last) + 1 - i64::from(pos);
        let needed = usize::try_from(units - seg.len() as i64).unwrap_or(0);
        let combine: Vec<u8> = pairs
            .iter()
            .copied()
            .filter(|p| *p >= pos && *p < last)
            .take(needed)
            .collect();
        for s in seg {
            if usize::from(pos) >= 52 {
                // Nothing left before Ha'azinu: should not happen; repeat the last portion safely.
                out.push((s, Reading::Parsha(vec![51])));
                continue;
            }
            if combine.contains(&pos) {
                out.push((s, Reading::Parsha(vec![pos, pos + 1])));
                pos += 2;
            } else {
                out.push((s, Reading::Parsha(vec![pos])));
                pos += 1;
            }
        }
    }
    out.sort_by_key(|(a, _)| *a);
    Ok(out)
}

thread_local! {
    static SCHEDULE_SLOTS: crate::year_cache::Slots<Vec<(Abs, Reading)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}
static CACHE: crate::year_cache::YearCache<Vec<(Abs, Reading)>> = crate::year_cache::YearCache::new(&SCHEDULE_SLOTS);

/// The reading of the Shabbat on or after day `abs`.
pub fn coming_reading(abs: Abs, il: bool) -> Result<(Abs, Reading), Error> {
    let shabbat = day_on_or_before(6, abs + 6);
    let year = HebrewDate::from_abs(shabbat)?.year();
    CACHE
        .get((year, il), || year_schedule(year, il))?
        .iter()
        .find(|(a, _)| *a == shabbat)
        .cloned()
        .ok_or_else(|| Error::InvalidCivilDate(format!("no Shabbat reading found for day {shabbat}")))
}

/// The Shabbat of `year` on which portion `index` is read (alone or combined).
pub fn shabbat_of_parsha(year: i32, il: bool, index: u8) -> Result<Option<Abs>, Error> {
    Ok(year_schedule(year, il)?
        .into_iter()
        .find(|(_, r)| matches!(r, Reading::Parsha(ix) if ix.contains(&index)))
        .map(|(a, _)| a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hebrew_date::civil_to_abs;
    use chrono::NaiveDate;

    fn on(y: i32, m: u32, d: u32, il: bool) -> Vec<String> {
        let abs = civil_to_abs(NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default());
        coming_reading(abs, il).map(|(_, r)| r.names()).unwrap_or_default()
    }

    #[test]
    fn known_readings() {
        assert_eq!(on(2024, 5, 4, false), vec!["Achrei Mot"]);
        assert_eq!(on(2023, 10, 14, false), vec!["Bereshit"]);
        assert_eq!(on(2025, 6, 7, true), vec!["Nasso"]);
        assert_eq!(on(2024, 4, 27, false), vec!["Pesach Shabbat Chol ha-Moed"]);
        assert_eq!(on(2024, 8, 3, false), vec!["Matot", "Masei"]);
    }
}
