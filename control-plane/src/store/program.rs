//! The synagogue's programme beside its prayer times: Torah-reading honours (aliyot) for a
//! date, shiurim with a time rule, and countdown timers. Each is a tenant document
//! ([`DocKind::Aliyot`], [`DocKind::Shiur`], [`DocKind::Timer`]); validation is in
//! `api::program`.

use chrono::{DateTime, NaiveDate, Utc};
use luach_calendar::Rule;
use luach_calendar::Zman;
use serde::{Deserialize, Serialize};

use super::{DocKind, Document, Stored, Targets};

/// An honour given at the Torah reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Honour {
    pub honour: HonourKind,
    /// The name as read out (often Hebrew: "ר׳ משה בן אברהם").
    pub name: String,
}

/// The honours of one reading (a Shabbat, a holiday, a Monday or Thursday).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

impl Document for AliyotInput {
    const KIND: DocKind = DocKind::Aliyot;
}

pub type Aliyot = Stored<AliyotInput>;

/// A regular lesson: who teaches, where, and when (a prayer-schedule rule; its `name` is the
/// lesson's title).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiurInput {
    pub teacher: String,
    #[serde(default)]
    pub location: String,
    pub schedule: Rule,
}

impl Document for ShiurInput {
    const KIND: DocKind = DocKind::Shiur;
}

pub type Shiur = Stored<ShiurInput>;

/// What a timer counts down to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

impl Document for TimerInput {
    const KIND: DocKind = DocKind::Timer;
}

pub type Timer = Stored<TimerInput>;
