//! Content bundles: everything one screen needs to draw itself offline, as one JSON document
//! versioned by its SHA-256.
//!
//! The control plane builds a screen's bundle from its tenant's documents (see
//! `luach_control_plane::bundle`); the agent keeps the last one whose hash and format check
//! out, and computes every time itself with `luach-calendar` through [`Bundle::screen_day`].
//! A bundle holds no timestamps of storage, so the same content always gives the same bytes
//! and the hash changes only when what the screen shows changes.

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::day::{self, Programme, YAHRZEIT_DAYS};
use crate::model::{
    AliyotInput, AnnouncementInput, BoardSettings, MemorialInput, ShiurInput, SynagogueProfile, TimerInput,
};
use crate::{Error, Item};

/// The bundle format this build writes and reads. A screen refuses other formats and keeps
/// the bundle it has.
pub const FORMAT: u32 = 1;
/// HTTP header carrying a served bundle's hex SHA-256 (its `ETag` is the same, quoted).
pub const SHA256_HEADER: &str = "x-luach-bundle-sha256";
/// Where screens fetch their bundle on the control plane (a notice or a `refresh_content`
/// names it; a screen fetches from nowhere else).
pub const FETCH_PATH: &str = "/api/v1/agent/bundle";
/// HTTP header carrying a screen's device token when it fetches its bundle.
pub const DEVICE_TOKEN_HEADER: &str = "x-luach-device-token";
/// Largest bundle, in bytes, that is built or accepted.
pub const MAX_BUNDLE_BYTES: usize = 8 * 1024 * 1024;
/// Most documents of each kind in a bundle.
pub const MAX_PER_KIND: u32 = 500;
/// Honours are included from the day before the bundle is built up to this many days ahead.
pub const ALIYOT_DAYS: i64 = 60;

/// One screen's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Bundle {
    pub format: u32,
    pub device_id: String,
    pub tenant_id: String,
    /// The synagogue the screen shows (none: the screen has nothing to show yet).
    pub synagogue: Option<Item<SynagogueProfile>>,
    /// Announcements targeting this screen.
    pub announcements: Vec<Item<AnnouncementInput>>,
    /// Timers targeting this screen.
    pub timers: Vec<Item<TimerInput>>,
    pub memorials: Vec<Item<MemorialInput>>,
    pub shiurim: Vec<Item<ShiurInput>>,
    /// Honours of the synagogue (or of every synagogue) from yesterday on.
    pub aliyot: Vec<Item<AliyotInput>>,
    /// How the screen draws its board (absent in bundles built before boards were drawn).
    #[serde(default)]
    pub board: BoardSettings,
}

/// Why bundle bytes were refused.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("bundle of {0} bytes exceeds the limit of {MAX_BUNDLE_BYTES} bytes")]
    TooLarge(usize),
    #[error("bundle SHA-256 is {actual}, expected {expected}")]
    Hash { expected: String, actual: String },
    #[error("bundle is not valid: {0}")]
    Json(String),
    #[error("bundle format {0} is not supported (this build reads format {FORMAT})")]
    Format(u32),
    #[error("bundle is for device {found}, not {expected}")]
    Device { expected: String, found: String },
}

/// Hex SHA-256 of `bytes` (a bundle's version).
pub fn sha256_hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(bytes))
}

impl Bundle {
    /// The exact bytes served and hashed.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Checks and reads bundle bytes: size, hash (when `sha256` is given), JSON shape, format,
    /// and that the bundle is for `device` (when given).
    pub fn parse(bytes: &[u8], sha256: Option<&str>, device: Option<&str>) -> Result<Self, BundleError> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(BundleError::TooLarge(bytes.len()));
        }
        if let Some(expected) = sha256 {
            let actual = sha256_hex(bytes);
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(BundleError::Hash {
                    expected: expected.to_owned(),
                    actual,
                });
            }
        }
        // The format is checked before the shape, so a newer format is named as such.
        let value: Value = serde_json::from_slice(bytes).map_err(|e| BundleError::Json(e.to_string()))?;
        match value.get("format").and_then(Value::as_u64) {
            Some(f) if f == u64::from(FORMAT) => {}
            Some(f) => return Err(BundleError::Format(u32::try_from(f).unwrap_or(u32::MAX))),
            None => return Err(BundleError::Json("no `format`".into())),
        }
        let bundle: Bundle = serde_json::from_value(value).map_err(|e| BundleError::Json(e.to_string()))?;
        if let Some(expected) = device.filter(|d| *d != bundle.device_id) {
            return Err(BundleError::Device {
                expected: expected.to_owned(),
                found: bundle.device_id,
            });
        }
        Ok(bundle)
    }

    /// The civil date at the screen's synagogue at `now` (UTC without a synagogue).
    pub fn today(&self, now: chrono::DateTime<chrono::Utc>) -> NaiveDate {
        self.synagogue
            .as_ref()
            .and_then(|s| day::location(&s.input).ok())
            .map_or_else(|| now.date_naive(), |l| l.local_date(now))
    }

    /// What the screen shows on `date`: the synagogue's day (see [`day::synagogue_day`]) with
    /// the screen's announcements of that day and the yahrzeits of the coming week.
    pub fn screen_day(&self, date: NaiveDate) -> Result<ScreenDay, Error> {
        let synagogue = self.synagogue.as_ref().ok_or(Error::NoSynagogue)?;
        let programme = Programme {
            aliyot: &self.aliyot,
            shiurim: &self.shiurim,
            timers: &self.timers,
        };
        let (day, synagogue_day) = day::synagogue_day(&synagogue.id, &synagogue.input, date, programme)?;
        let yahrzeits =
            day::yahrzeits_between(day::pairs(&self.memorials), date, date + Duration::days(YAHRZEIT_DAYS))?;
        Ok(ScreenDay {
            synagogue_day,
            device_id: self.device_id.clone(),
            announcements: day::announcements_on(&day, day::pairs(&self.announcements)),
            yahrzeits,
        })
    }
}

/// What one screen shows on one civil day: its synagogue's day, its announcements and the
/// coming week's yahrzeits.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ScreenDay {
    #[serde(flatten)]
    pub synagogue_day: day::SynagogueDay,
    pub device_id: String,
    /// Announcements shown at some moment of the day, highest priority first.
    pub announcements: Vec<day::AnnouncementShown>,
    /// Anniversaries from the day to a week later.
    pub yahrzeits: Vec<day::Yahrzeit>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> Bundle {
        Bundle {
            format: FORMAT,
            device_id: "lobby".into(),
            tenant_id: "t".into(),
            synagogue: None,
            announcements: Vec::new(),
            timers: Vec::new(),
            memorials: Vec::new(),
            shiurim: Vec::new(),
            aliyot: Vec::new(),
            board: BoardSettings::default(),
        }
    }

    #[test]
    fn bytes_round_trip_and_every_fault_is_named() {
        let bytes = empty().to_bytes();
        let sha = sha256_hex(&bytes);
        assert_eq!(Bundle::parse(&bytes, Some(&sha), Some("lobby")).ok(), Some(empty()));
        assert!(matches!(
            Bundle::parse(&bytes, Some(&"0".repeat(64)), None),
            Err(BundleError::Hash { .. })
        ));
        assert!(matches!(
            Bundle::parse(&bytes, None, Some("hall")),
            Err(BundleError::Device { .. })
        ));
        let newer = String::from_utf8_lossy(&bytes).replace("\"format\":1", "\"format\":2");
        assert!(matches!(
            Bundle::parse(newer.as_bytes(), None, None),
            Err(BundleError::Format(2))
        ));
        assert!(matches!(
            Bundle::parse(b"{\"format\":1}", None, None),
            Err(BundleError::Json(_))
        ));
        assert!(matches!(Bundle::parse(b"\xff", None, None), Err(BundleError::Json(_))));
        let huge = vec![b' '; MAX_BUNDLE_BYTES + 1];
        assert!(matches!(
            Bundle::parse(&huge, None, None),
            Err(BundleError::TooLarge(_))
        ));
    }

    #[test]
    fn a_screen_without_a_synagogue_says_so() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap_or_default();
        assert!(matches!(empty().screen_day(day), Err(Error::NoSynagogue)));
    }
}
