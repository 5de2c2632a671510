//! Synagogue profiles: where a congregation is, how it counts its times, and its prayer
//! schedule rules. Stored whole (one document per synagogue), validated at the API.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use luach_calendar::{Havdalah, RuleSet, Zman};
use luach_schemas::TenantId;
use serde::{Deserialize, Serialize};

use super::{DocKind, DocRepo, Document, StoreError, StoreResult, Stored, TenantScope, TypedDocs};

/// A synagogue's id within its tenant: 1–64 lower-case letters, digits and '-'.
pub type SynagogueId = TenantId;

/// Prayer rite, which decides some texts and customs on the screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Nusach {
    Ashkenaz,
    Sefard,
    EdotHamizrach,
    Chabad,
    Other,
}

/// Language of the screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    He,
    En,
}

/// Everything a gabbai sets about the synagogue (the API's request and response body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub screens: super::Targets,
}

/// Daily content a screen can show beside the times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
        }
    }
}

fn default_candle_minutes() -> u32 {
    18
}

fn default_havdalah() -> Havdalah {
    Havdalah::Degrees(8.5)
}

/// A stored synagogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Synagogue {
    pub id: SynagogueId,
    pub tenant_id: TenantId,
    #[serde(flatten)]
    pub profile: SynagogueProfile,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Document for SynagogueProfile {
    const KIND: DocKind = DocKind::Synagogue;
}

impl Synagogue {
    fn from_stored(doc: Stored<SynagogueProfile>) -> StoreResult<Self> {
        Ok(Self {
            id: SynagogueId::parse(&doc.id).map_err(|e| StoreError::Corrupt(format!("synagogue id: {e}")))?,
            tenant_id: doc.tenant_id,
            profile: doc.input,
            created_at: doc.created_at,
            updated_at: doc.updated_at,
        })
    }
}

/// Tenant-scoped synagogue profiles, stored as [`DocKind::Synagogue`] documents.
#[async_trait]
pub trait SynagogueRepo {
    /// The scope's synagogues ordered by id, at most `limit`.
    async fn list_synagogues(&self, scope: &TenantScope, limit: u32) -> StoreResult<Vec<Synagogue>>;
    async fn get_synagogue(&self, scope: &TenantScope, id: &SynagogueId) -> StoreResult<Option<Synagogue>>;
    /// Creates or replaces the profile; returns it and whether it was created.
    async fn put_synagogue(
        &self,
        scope: &TenantScope,
        id: &SynagogueId,
        profile: SynagogueProfile,
        now: DateTime<Utc>,
    ) -> StoreResult<(Synagogue, bool)>;
    /// True when a synagogue was deleted.
    async fn delete_synagogue(&self, scope: &TenantScope, id: &SynagogueId) -> StoreResult<bool>;
}

#[async_trait]
impl<S: DocRepo + ?Sized> SynagogueRepo for S {
    async fn list_synagogues(&self, scope: &TenantScope, limit: u32) -> StoreResult<Vec<Synagogue>> {
        let docs = self.list_typed::<SynagogueProfile>(scope, limit, None).await?;
        docs.into_iter().map(Synagogue::from_stored).collect()
    }

    async fn get_synagogue(&self, scope: &TenantScope, id: &SynagogueId) -> StoreResult<Option<Synagogue>> {
        let doc = self.get_typed::<SynagogueProfile>(scope, id.as_str()).await?;
        doc.map(Synagogue::from_stored).transpose()
    }

    async fn put_synagogue(
        &self,
        scope: &TenantScope,
        id: &SynagogueId,
        profile: SynagogueProfile,
        now: DateTime<Utc>,
    ) -> StoreResult<(Synagogue, bool)> {
        let (doc, created) = self.put_typed(scope, id.as_str(), profile, now).await?;
        Ok((Synagogue::from_stored(doc)?, created))
    }

    async fn delete_synagogue(&self, scope: &TenantScope, id: &SynagogueId) -> StoreResult<bool> {
        self.delete_typed::<SynagogueProfile>(scope, id.as_str()).await
    }
}
