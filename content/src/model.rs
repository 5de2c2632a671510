//! What gabbaim enter: synagogue profiles, announcements, memorial plaques, and the programme
//! (Torah-reading honours, shiurim, countdown timers). The control plane stores these as
//! tenant documents and validates them at its API; screens receive them in their bundle.

use chrono::{DateTime, NaiveDate, Utc};
use luach_calendar::{Havdalah, HebrewDate, HebrewMonth, MinutePolicy, Rule, RuleSet, Zman};
use serde::{Deserialize, Serialize};

/// Which screens show an announcement.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// Screens by id; empty with `tags` empty means every screen of the tenant.
    #[serde(default)]
    pub devices: Vec<String>,
    /// Screens carrying any of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl Targets {
    /// Whether a screen with `device` id and `tags` shows the announcement.
    pub fn matches(&self, device: &str, tags: &[String]) -> bool {
        (self.devices.is_empty() && self.tags.is_empty())
            || self.devices.iter().any(|d| d == device)
            || self.tags.iter().any(|t| tags.contains(t))
    }
}

/// What a gabbai enters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnnouncementInput {
    /// Hebrew text (at least one of `text_he`, `text_en`).
    #[serde(default)]
    pub text_he: String,
    #[serde(default)]
    pub text_en: String,
    /// Shown from this instant (absent: at once).
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// Not shown from this instant on (absent: until deleted).
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    /// Higher first; 0–100.
    #[serde(default)]
    pub priority: u8,
    #[serde(default)]
    pub targets: Targets,
}

impl AnnouncementInput {
    /// Whether it is shown at `at`.
    pub fn active_at(&self, at: DateTime<Utc>) -> bool {
        self.starts_at.is_none_or(|s| s <= at) && self.ends_at.is_none_or(|e| at < e)
    }
}

/// Prayer rite, which decides some texts and customs on the screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Nusach {
    Ashkenaz,
    Sefard,
    EdotHamizrach,
    Chabad,
    Other,
}

/// Language of the screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    He,
    En,
}

/// Everything a gabbai sets about the synagogue (the API's request and response body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SynagogueProfile {
    pub name: String,
    #[serde(default)]
    pub address: String,
    pub latitude: f64,
    pub longitude: f64,
    #[serde(default)]
    pub elevation_m: f64,
    /// IANA time zone, e.g. `Asia/Jerusalem`.
    pub timezone: String,
    /// Israeli holiday and Torah-reading schedule.
    #[serde(default)]
    pub israel: bool,
    pub nusach: Nusach,
    pub language: Language,
    /// Minutes before sunset (18 by default; 40 in Jerusalem).
    #[serde(default = "default_candle_minutes")]
    pub candle_lighting_minutes: u32,
    #[serde(default = "default_havdalah")]
    pub havdalah: Havdalah,
    /// Elevation-adjusted sunrise and sunset for every zman.
    #[serde(default)]
    pub use_elevation: bool,
    /// Prayer times as rules (fixed or relative to zmanim, rounded, clamped) with overrides.
    #[serde(default)]
    pub schedule: RuleSet,
    /// What the screens show and how.
    #[serde(default)]
    pub display: DisplayPreferences,
    /// The screens that show this synagogue (by id or tag); empty: every screen of the tenant.
    /// A screen matched by several synagogues shows the first by id.
    #[serde(default)]
    pub screens: Targets,
}

/// Daily content a screen can show beside the times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DailyContent {
    HebrewDate,
    Parsha,
    Holidays,
    DafYomi,
    Omer,
    Announcements,
    Yahrzeits,
    Aliyot,
    Shiurim,
    Timers,
}

/// A gabbai's choices for the screens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DisplayPreferences {
    /// Daily content, in the order shown.
    pub daily: Vec<DailyContent>,
    /// Zmanim in the times panel, in order (keys as in `luach-agent zmanim --json`).
    pub zmanim: Vec<Zman>,
    /// Seconds each rotating page stays on screen (5–300).
    pub page_seconds: u32,
    /// The Hebrew date turns at nightfall (tzeit) instead of midnight.
    pub hebrew_date_at_nightfall: bool,
    /// How times are rounded to the minute they are shown at (by default stringently: a
    /// deadline down, a start up; docs/zmanim.md lists each zman's direction).
    pub minutes: MinutePolicy,
}

impl Default for DisplayPreferences {
    fn default() -> Self {
        Self {
            daily: vec![
                DailyContent::HebrewDate,
                DailyContent::Parsha,
                DailyContent::Holidays,
                DailyContent::Omer,
                DailyContent::Announcements,
                DailyContent::Timers,
            ],
            zmanim: vec![
                Zman::Alot16_1,
                Zman::Sunrise,
                Zman::SofZmanShmaGra,
                Zman::SofZmanTefilaGra,
                Zman::Chatzot,
                Zman::MinchaGedola,
                Zman::PlagHamincha,
                Zman::Sunset,
                Zman::Tzeit8_5,
            ],
            page_seconds: 15,
            hebrew_date_at_nightfall: true,
            minutes: MinutePolicy::default(),
        }
    }
}

fn default_candle_minutes() -> u32 {
    18
}

fn default_havdalah() -> Havdalah {
    Havdalah::Degrees(8.5)
}

/// Which way up a screen's board is drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BoardLayout {
    /// From the display's shape: portrait when it is taller than wide.
    #[default]
    Auto,
    Landscape,
    Portrait,
}

/// A board's colour theme.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BoardTheme {
    /// Dark text on warm paper, for bright halls.
    #[default]
    Light,
    /// Light text on deep blue, for dim halls.
    Dark,
    /// White and yellow on black, for reading from the back of a hall.
    HighContrast,
}

/// The language a board is drawn in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BoardLanguage {
    /// The synagogue profile's language.
    #[default]
    Synagogue,
    Hebrew,
    English,
    /// Hebrew first, with English beside it.
    Both,
}

/// How one screen draws its board, chosen per screen by the tenant and carried in the
/// screen's bundle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BoardSettings {
    pub layout: BoardLayout,
    pub theme: BoardTheme,
    pub language: BoardLanguage,
    /// When the display goes off and on again every day; absent: always on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power: Option<crate::power::PowerSchedule>,
}

/// When the person passed: a Hebrew date, or a civil date with whether it was after nightfall
/// (which makes it the next Hebrew day).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// An honour given at the Torah reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HonourKind {
    Kohen,
    Levi,
    Shlishi,
    Revii,
    Chamishi,
    Shishi,
    Shevii,
    Acharon,
    Maftir,
    Hagbaha,
    Gelila,
    /// Additional aliyot (hosafot); may repeat.
    Extra,
}

/// One person honoured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Honour {
    pub honour: HonourKind,
    /// The name as read out (often Hebrew: "ר׳ משה בן אברהם").
    pub name: String,
}

/// The honours of one reading (a Shabbat, a holiday, a Monday or Thursday).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AliyotInput {
    /// The civil date of the reading.
    pub date: NaiveDate,
    /// Which synagogue profile (minyan) this is for; absent: every screen of the tenant.
    #[serde(default)]
    pub synagogue: Option<String>,
    /// E.g. "Shacharit, main minyan".
    #[serde(default)]
    pub note: String,
    pub honours: Vec<Honour>,
}

/// A regular lesson: who teaches, where, and when (a prayer-schedule rule; its `name` is the
/// lesson's title).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShiurInput {
    pub teacher: String,
    #[serde(default)]
    pub location: String,
    pub schedule: Rule,
}

/// What a timer counts down to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TimerTarget {
    /// Today's zman (e.g. `candle_lighting`, `sof_zman_shma_gra`).
    Zman(Zman),
    /// Today's time of a prayer in the synagogue's schedule, by name.
    Prayer(String),
    /// A fixed instant (an event).
    At(DateTime<Utc>),
}

/// A countdown shown on screens for a while before its target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimerInput {
    #[serde(default)]
    pub label_he: String,
    #[serde(default)]
    pub label_en: String,
    pub target: TimerTarget,
    /// The countdown appears this many minutes before the target (1–1440).
    pub show_before_minutes: u32,
    #[serde(default)]
    pub targets: Targets,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targeting_and_windows() {
        let all = Targets::default();
        assert!(all.matches("any", &[]));
        let some = Targets {
            devices: vec!["lobby1".into()],
            tags: vec!["women".into()],
        };
        assert!(some.matches("lobby1", &[]));
        assert!(some.matches("hall2", &["women".into()]));
        assert!(!some.matches("hall2", &["men".into()]));
        let t0 = Utc::now();
        let a = AnnouncementInput {
            text_he: "x".into(),
            text_en: String::new(),
            starts_at: Some(t0),
            ends_at: Some(t0 + chrono::Duration::hours(1)),
            priority: 0,
            targets: all,
        };
        assert!(!a.active_at(t0 - chrono::Duration::seconds(1)));
        assert!(a.active_at(t0));
        assert!(!a.active_at(t0 + chrono::Duration::hours(1)));
    }
}
