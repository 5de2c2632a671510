//! Content bundles: everything a screen needs to draw itself offline, as one JSON document
//! per screen, versioned by its SHA-256.
//!
//! A bundle holds the screen's synagogue profile (location, time rules, display preferences),
//! and the announcements, timers (those targeting the screen), memorial plaques, shiurim and
//! the Torah-reading honours of the coming weeks. The agent computes every time itself with
//! `luach-calendar`; the bundle changes only when content changes, so its hash is its version:
//! the same content always gives the same bytes.

use chrono::{Duration, NaiveDate};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::store::{
    AliyotInput, AnnouncementInput, Device, MemorialInput, ShiurInput, StoreResult, Stored, Synagogue, SynagogueRepo,
    TenantScope, TimerInput, TypedDocs,
};

/// Bundle format version (a screen refuses formats it does not know).
pub const FORMAT: u32 = 1;
/// Most documents of each kind in a bundle.
pub const MAX_PER_KIND: u32 = 500;
/// Honours are included from yesterday up to this many days ahead.
pub const ALIYOT_DAYS: i64 = 60;

/// A built bundle: its exact bytes and their hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub bytes: Vec<u8>,
    /// Hex SHA-256 of `bytes`: the version.
    pub sha256: String,
}

/// The synagogue a screen shows: the first (by id) whose `screens` match it.
pub fn synagogue_of<'a>(device: &Device, synagogues: &'a [Synagogue]) -> Option<&'a Synagogue> {
    synagogues
        .iter()
        .find(|s| s.profile.screens.matches(device.id.as_str(), &device.tags))
}

/// Builds `device`'s bundle as of `today` (the screen's local date decides only which
/// honours are included).
pub async fn build<S>(store: &S, scope: &TenantScope, device: &Device, today: NaiveDate) -> StoreResult<Bundle>
where
    S: TypedDocs + SynagogueRepo + ?Sized + Sync,
{
    let synagogues = store.list_synagogues(scope, MAX_PER_KIND).await?;
    let synagogue = synagogue_of(device, &synagogues);
    let id = device.id.as_str();
    let announcements: Vec<Stored<AnnouncementInput>> = store
        .list_typed::<AnnouncementInput>(scope, MAX_PER_KIND, None)
        .await?
        .into_iter()
        .filter(|a| a.input.targets.matches(id, &device.tags))
        .collect();
    let timers: Vec<Stored<TimerInput>> = store
        .list_typed::<TimerInput>(scope, MAX_PER_KIND, None)
        .await?
        .into_iter()
        .filter(|t| t.input.targets.matches(id, &device.tags))
        .collect();
    let memorials = store.list_typed::<MemorialInput>(scope, MAX_PER_KIND, None).await?;
    let shiurim = store.list_typed::<ShiurInput>(scope, MAX_PER_KIND, None).await?;
    let (from, until) = (today - Duration::days(1), today + Duration::days(ALIYOT_DAYS));
    let aliyot: Vec<Stored<AliyotInput>> = store
        .list_typed::<AliyotInput>(scope, MAX_PER_KIND, None)
        .await?
        .into_iter()
        .filter(|a| a.input.date >= from && a.input.date <= until)
        .filter(|a| match (&a.input.synagogue, synagogue) {
            (None, _) => true,
            (Some(wanted), Some(s)) => wanted == s.id.as_str(),
            (Some(_), None) => false,
        })
        .collect();
    // Timestamps of storage are left out: they change without the content changing.
    let strip = |v: Value| match v {
        Value::Object(mut m) => {
            m.remove("created_at");
            m.remove("updated_at");
            m.remove("tenant_id");
            Value::Object(m)
        }
        other => other,
    };
    let list = |items: Vec<Value>| Value::Array(items.into_iter().map(strip).collect());
    let body = json!({
        "format": FORMAT,
        "device_id": id,
        "tenant_id": device.tenant_id,
        "synagogue": synagogue.map(|s| strip(serde_json::to_value(s).unwrap_or_default())),
        "announcements": list(announcements.iter().map(|a| serde_json::to_value(a).unwrap_or_default()).collect()),
        "timers": list(timers.iter().map(|t| serde_json::to_value(t).unwrap_or_default()).collect()),
        "memorials": list(memorials.iter().map(|m| serde_json::to_value(m).unwrap_or_default()).collect()),
        "shiurim": list(shiurim.iter().map(|s| serde_json::to_value(s).unwrap_or_default()).collect()),
        "aliyot": list(aliyot.iter().map(|a| serde_json::to_value(a).unwrap_or_default()).collect()),
    });
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let sha256 = data_encoding::HEXLOWER.encode(&Sha256::digest(&bytes));
    Ok(Bundle { bytes, sha256 })
}
