//! The crate's error type.

use thiserror::Error;

/// Everything that can go wrong in `luach-calendar`.
///
/// Every variant describes bad input (a date out of range, an unknown zone, an invalid rule);
/// the library never panics on input.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// A Hebrew date that does not exist (e.g. 30 Tevet or Adar II in a common year).
    #[error("invalid Hebrew date: {0}")]
    InvalidHebrewDate(String),
    /// A civil date outside the supported range or not a real date.
    #[error("invalid civil date: {0}")]
    InvalidCivilDate(String),
    /// A latitude outside -90..=90 or not a finite number.
    #[error("latitude must be a number between -90 and 90, got {0}")]
    InvalidLatitude(f64),
    /// A longitude outside -180..=180 or not a finite number.
    #[error("longitude must be a number between -180 and 180, got {0}")]
    InvalidLongitude(f64),
    /// An elevation that is negative beyond the Dead Sea, absurdly high, or not finite.
    #[error("elevation must be between -500 and 9000 metres, got {0}")]
    InvalidElevation(f64),
    /// A time zone name that is not in the IANA database.
    #[error("unknown IANA time zone {0:?} (expected e.g. \"Asia/Jerusalem\", \"America/New_York\")")]
    UnknownTimeZone(String),
    /// A local time that does not exist or cannot be represented.
    #[error("invalid time: {0}")]
    InvalidTime(String),
    /// A date before the start of the daf yomi cycle (11 September 1923).
    #[error("daf yomi is defined only from 1923-09-11, got {0}")]
    BeforeDafYomi(String),
    /// A schedule rule set that failed validation; `path` names the offending field.
    #[error("invalid rule at {path}: {message}")]
    InvalidRule {
        /// JSON-path-like location of the bad field, e.g. `rules[2].offset_minutes`.
        path: String,
        /// Human explanation.
        message: String,
    },
    /// A rule set that could not be parsed as JSON.
    #[error("rule set is not valid JSON: {0}")]
    RuleJson(String),
    /// A command-line or API argument out of its allowed range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Serialising output failed (should not happen).
    #[error("could not serialise output: {0}")]
    Serialize(String),
}
