//! Memorial plaques: who is remembered and when they passed, so the screens can show the
//! yahrzeits that are coming. Stored as [`DocKind::Memorial`] documents.

use chrono::NaiveDate;
use luach_calendar::{HebrewDate, HebrewMonth};
use serde::{Deserialize, Serialize};

use super::{DocKind, Document, Stored};

/// When the person passed: a Hebrew date, or a civil date with whether it was after nightfall
/// (which makes it the next Hebrew day).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PassingDate {
    /// Month numbers as in the Hebrew calendar's own order: 1 Nisan … 6 Elul, 7 Tishrei …
    /// 12 Adar (Adar I in a leap year), 13 Adar II.
    Hebrew { year: i32, month: u8, day: u8 },
    Civil {
        date: NaiveDate,
        #[serde(default)]
        after_nightfall: bool,
    },
}

impl PassingDate {
    /// The Hebrew date of passing, checking that it exists.
    pub fn hebrew(&self) -> Result<HebrewDate, String> {
        match *self {
            Self::Hebrew { year, month, day } => {
                let month = HebrewMonth::from_number(month).ok_or_else(|| format!("month {month} is not 1–13"))?;
                HebrewDate::new(year, month, day).map_err(|e| e.to_string())
            }
            Self::Civil { date, after_nightfall } => {
                let date = if after_nightfall {
                    date.succ_opt().ok_or("date out of range")?
                } else {
                    date
                };
                HebrewDate::from_civil(date).map_err(|e| e.to_string())
            }
        }
    }
}

/// What a gabbai enters for a plaque.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemorialInput {
    /// The name as on the plaque, e.g. "שרה בת אברהם".
    pub name: String,
    #[serde(default)]
    pub family: String,
    pub passed: PassingDate,
    #[serde(default)]
    pub notes: String,
}

impl Document for MemorialInput {
    const KIND: DocKind = DocKind::Memorial;
}

/// A stored plaque.
pub type Memorial = Stored<MemorialInput>;
