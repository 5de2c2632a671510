//! Times shown to the minute, rounded the halachically stringent way.
//!
//! The calendar computes every zman to the second; a screen, a preview and the holiday-times
//! page show `HH:MM`. Cutting the seconds off (what a clock does) moves every time earlier,
//! which is lenient for a time that *starts* something: a board that shows nightfall at
//! 17:21 when the sun reaches 8.5° at 17:21:40 tells the congregation that the day is over 40
//! seconds too soon. So each zman has a [`Role`]:
//!
//! - a **deadline** (the latest time for Shema, candle lighting, sunset) is rounded *down*:
//!   acting by the shown minute is acting in time;
//! - a **start** (nightfall, havdalah, the earliest tallit time, sunrise) is rounded *up*:
//!   waiting for the shown minute is waiting long enough.
//!
//! The table is [`Zman::role`]; docs/zmanim.md gives it with the reason for each key. A
//! synagogue may choose plain nearest-minute rounding, or truncation, or override single keys
//! ([`MinutePolicy`]); a community that shows dawn as the start of a fast day, for example,
//! treats it as a deadline.
//!
//! Rounding starts from the time to the nearest second, as the API's exact times give it, so
//! `16:05:00` is shown as `16:05` both ways and the exact and the shown time never disagree.
//! It happens on the local clock, so a historical zone offset with seconds (local mean time)
//! still gives whole local minutes.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::zmanim::Zman;

/// What a time marks, which decides the stringent direction to round it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Something must be done by then: shown rounded down.
    Deadline,
    /// Something may be done only from then: shown rounded up.
    Start,
}

/// Which way a time is rounded to a whole minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MinuteRounding {
    /// To the start of its minute (`16:05:59` → `16:05`).
    Down,
    /// To the next whole minute unless already whole (`16:05:01` → `16:06`).
    Up,
    /// To the closest minute, half a minute rounding up (`16:05:30` → `16:06`).
    Nearest,
}

/// A synagogue's general rule for showing minutes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoundingMode {
    /// Deadlines down, starts up (the default).
    #[default]
    Stringent,
    /// Every time to the closest minute.
    Nearest,
    /// Every time down (a clock's seconds cut off).
    Down,
}

/// How a synagogue's times are shown to the minute: a general mode and per-zman exceptions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MinutePolicy {
    /// The general rule.
    pub mode: RoundingMode,
    /// Exceptions by zman key, e.g. `{"alot_16_1": "down"}`.
    pub zmanim: BTreeMap<Zman, MinuteRounding>,
}

impl MinutePolicy {
    /// The rounding of a time with `role` under the general rule.
    pub fn for_role(&self, role: Role) -> MinuteRounding {
        match (self.mode, role) {
            (RoundingMode::Stringent, Role::Deadline) | (RoundingMode::Down, _) => MinuteRounding::Down,
            (RoundingMode::Stringent, Role::Start) => MinuteRounding::Up,
            (RoundingMode::Nearest, _) => MinuteRounding::Nearest,
        }
    }

    /// The rounding of `zman`: its exception, else the general rule for its role.
    pub fn for_zman(&self, zman: Zman) -> MinuteRounding {
        self.zmanim
            .get(&zman)
            .copied()
            .unwrap_or_else(|| self.for_role(zman.role()))
    }
}

impl Zman {
    /// Whether the zman is a deadline or a start (see the module docs and docs/zmanim.md).
    pub fn role(self) -> Role {
        match self {
            // The day's mitzvot begin; the earliest Amidah of vatikin.
            Zman::Sunrise | Zman::SeaLevelSunrise => Role::Start,
            // Daytime ends: Mincha, and Shabbat begins by then.
            Zman::Sunset | Zman::SeaLevelSunset => Role::Deadline,
            // The earliest time for the day's mitzvot.
            Zman::Alot16_1 | Zman::Alot72 => Role::Start,
            // The earliest tallit and tefillin.
            Zman::Misheyakir11_5 => Role::Start,
            Zman::SofZmanShmaGra | Zman::SofZmanShmaMga | Zman::SofZmanTefilaGra | Zman::SofZmanTefilaMga => {
                Role::Deadline
            }
            // The last moment for Shacharit's Amidah, even after the fact.
            Zman::Chatzot | Zman::ChatzotHalfDay => Role::Deadline,
            // Mincha may be said from then; plag is the earliest Maariv and early candle lighting.
            Zman::MinchaGedola | Zman::MinchaKetana | Zman::PlagHamincha => Role::Start,
            // Night, and the end of Shabbat and fasts.
            Zman::Tzeit8_5 | Zman::Tzeit72 | Zman::Havdalah => Role::Start,
            // Candles are lit by then.
            Zman::CandleLighting => Role::Deadline,
        }
    }
}

/// `t` to the nearest second (half a second rounds up): the precision every time is shown at.
pub fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp((t.timestamp_millis() + 500).div_euclid(1000), 0).unwrap_or(t)
}

/// `t` to the nearest second, then to a whole minute of the local clock in `tz` the way
/// `rounding` says.
pub fn round_to_minute<Z: TimeZone>(t: DateTime<Utc>, tz: &Z, rounding: MinuteRounding) -> DateTime<Z> {
    let local = whole_second(t).with_timezone(tz);
    let seconds = i64::from(local.second());
    let down = local.clone() - Duration::seconds(seconds);
    let up = seconds > 0 && matches!(rounding, MinuteRounding::Up)
        || seconds >= 30 && matches!(rounding, MinuteRounding::Nearest);
    if up { down + Duration::minutes(1) } else { down }
}

/// `HH:MM` of `t` on the local clock in `tz`, rounded as `rounding` says.
pub fn shown_minute<Z: TimeZone>(t: DateTime<Utc>, tz: &Z, rounding: MinuteRounding) -> String
where
    Z::Offset: std::fmt::Display,
{
    round_to_minute(t, tz, rounding).format("%H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use chrono::FixedOffset;
    use chrono_tz::Tz;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .unwrap_or_else(|e| panic!("{e}"))
            .with_timezone(&Utc)
    }

    #[test]
    fn each_direction_at_its_boundaries() {
        let tz: Tz = "Asia/Jerusalem".parse().unwrap_or_else(|e| panic!("{e}"));
        let cases = [
            // (UTC instant, down, up, nearest)
            ("2026-12-04T14:05:00Z", "16:05", "16:05", "16:05"),
            ("2026-12-04T14:05:00.499Z", "16:05", "16:05", "16:05"),
            ("2026-12-04T14:05:00.5Z", "16:05", "16:06", "16:05"),
            ("2026-12-04T14:05:01Z", "16:05", "16:06", "16:05"),
            ("2026-12-04T14:05:29.4Z", "16:05", "16:06", "16:05"),
            ("2026-12-04T14:05:29.5Z", "16:05", "16:06", "16:06"),
            ("2026-12-04T14:05:59Z", "16:05", "16:06", "16:06"),
            ("2026-12-04T14:05:59.5Z", "16:06", "16:06", "16:06"),
            ("2026-12-04T21:59:30Z", "23:59", "00:00", "00:00"),
        ];
        for (t, down, up, nearest) in cases {
            assert_eq!(shown_minute(at(t), &tz, MinuteRounding::Down), down, "{t} down");
            assert_eq!(shown_minute(at(t), &tz, MinuteRounding::Up), up, "{t} up");
            assert_eq!(
                shown_minute(at(t), &tz, MinuteRounding::Nearest),
                nearest,
                "{t} nearest"
            );
        }
    }

    #[test]
    fn rounds_on_the_local_clock_when_the_offset_has_seconds() {
        // Jerusalem's mean time before 1918 was +02:20:40.
        let lmt = FixedOffset::east_opt(2 * 3600 + 20 * 60 + 40).unwrap_or_else(|| panic!("offset"));
        let t = at("1900-01-01T13:39:20Z"); // 16:00:00 local
        assert_eq!(shown_minute(t, &lmt, MinuteRounding::Up), "16:00");
        assert_eq!(
            shown_minute(t + Duration::seconds(1), &lmt, MinuteRounding::Up),
            "16:01"
        );
        let tz: Tz = "Asia/Jerusalem".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(round_to_minute(t, &tz, MinuteRounding::Down).second(), 0);
    }

    #[test]
    fn stringent_rounds_each_key_by_its_role() {
        let tz: Tz = "America/New_York".parse().unwrap_or_else(|e| panic!("{e}"));
        let policy = MinutePolicy::default();
        // One second past a whole minute: a deadline shows that minute, a start the next.
        let t = at("2026-06-12T20:31:01Z"); // 16:31:01 local
        for z in Zman::ALL {
            let expected = match z.role() {
                Role::Deadline => "16:31",
                Role::Start => "16:32",
            };
            assert_eq!(shown_minute(t, &tz, policy.for_zman(z)), expected, "{}", z.key());
            // On the minute itself both agree.
            assert_eq!(
                shown_minute(t - Duration::seconds(1), &tz, policy.for_zman(z)),
                "16:31",
                "{}",
                z.key()
            );
        }
    }

    #[test]
    fn the_role_table_is_the_documented_one() {
        let deadlines: Vec<&str> = Zman::ALL
            .into_iter()
            .filter(|z| z.role() == Role::Deadline)
            .map(Zman::key)
            .collect();
        assert_eq!(
            deadlines,
            [
                "sunset",
                "sea_level_sunset",
                "sof_zman_shma_gra",
                "sof_zman_shma_mga",
                "sof_zman_tefila_gra",
                "sof_zman_tefila_mga",
                "chatzot",
                "chatzot_half_day",
                "candle_lighting"
            ]
        );
    }

    #[test]
    fn modes_and_exceptions() {
        let mut policy = MinutePolicy {
            mode: RoundingMode::Nearest,
            ..MinutePolicy::default()
        };
        assert_eq!(policy.for_zman(Zman::Tzeit8_5), MinuteRounding::Nearest);
        policy.mode = RoundingMode::Down;
        assert_eq!(policy.for_zman(Zman::Tzeit8_5), MinuteRounding::Down);
        policy.mode = RoundingMode::Stringent;
        policy.zmanim.insert(Zman::Alot16_1, MinuteRounding::Down);
        assert_eq!(policy.for_zman(Zman::Alot16_1), MinuteRounding::Down);
        assert_eq!(policy.for_zman(Zman::Alot72), MinuteRounding::Up);
        let json = r#"{"mode":"stringent","zmanim":{"alot_16_1":"down"}}"#;
        assert_eq!(
            serde_json::from_str::<MinutePolicy>(json).unwrap_or_else(|e| panic!("{e}")),
            policy
        );
        assert_eq!(serde_json::to_string(&policy).unwrap_or_else(|e| panic!("{e}")), json);
        assert!(serde_json::from_str::<MinutePolicy>(r#"{"zmanim":{"noon":"up"}}"#).is_err());
        assert!(serde_json::from_str::<MinutePolicy>(r#"{"mode":"sideways"}"#).is_err());
    }
}
