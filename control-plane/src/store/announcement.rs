//! Announcements for the screens: text in the synagogue's languages, a display window,
//! a priority, and which screens show them. Stored as [`DocKind::Announcement`] documents.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use luach_schemas::TenantId;
use serde::{Deserialize, Serialize};

use super::{DocKind, DocRepo, StoreError, StoreResult, StoredDoc, TenantScope};

/// Which screens show an announcement.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// A stored announcement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Announcement {
    pub id: String,
    pub tenant_id: TenantId,
    #[serde(flatten)]
    pub input: AnnouncementInput,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Announcement {
    fn from_doc(doc: StoredDoc) -> StoreResult<Self> {
        Ok(Self {
            id: doc.id,
            tenant_id: doc.tenant_id,
            input: serde_json::from_value(doc.body).map_err(|e| StoreError::Corrupt(format!("announcement: {e}")))?,
            created_at: doc.created_at,
            updated_at: doc.updated_at,
        })
    }
}

/// Tenant-scoped announcements.
#[async_trait]
pub trait AnnouncementRepo {
    async fn list_announcements(
        &self,
        scope: &TenantScope,
        limit: u32,
        after: Option<&str>,
    ) -> StoreResult<Vec<Announcement>>;
    async fn get_announcement(&self, scope: &TenantScope, id: &str) -> StoreResult<Option<Announcement>>;
    async fn put_announcement(
        &self,
        scope: &TenantScope,
        id: &str,
        input: AnnouncementInput,
        now: DateTime<Utc>,
    ) -> StoreResult<(Announcement, bool)>;
    async fn delete_announcement(&self, scope: &TenantScope, id: &str) -> StoreResult<bool>;
}

#[async_trait]
impl<S: DocRepo + ?Sized> AnnouncementRepo for S {
    async fn list_announcements(
        &self,
        scope: &TenantScope,
        limit: u32,
        after: Option<&str>,
    ) -> StoreResult<Vec<Announcement>> {
        let docs = self.list_docs(scope, DocKind::Announcement, limit, after).await?;
        docs.into_iter().map(Announcement::from_doc).collect()
    }

    async fn get_announcement(&self, scope: &TenantScope, id: &str) -> StoreResult<Option<Announcement>> {
        self.get_doc(scope, DocKind::Announcement, id)
            .await?
            .map(Announcement::from_doc)
            .transpose()
    }

    async fn put_announcement(
        &self,
        scope: &TenantScope,
        id: &str,
        input: AnnouncementInput,
        now: DateTime<Utc>,
    ) -> StoreResult<(Announcement, bool)> {
        let body = serde_json::to_value(&input).map_err(|e| StoreError::Corrupt(format!("announcement: {e}")))?;
        let (doc, created) = self.put_doc(scope, DocKind::Announcement, id, body, now).await?;
        Ok((Announcement::from_doc(doc)?, created))
    }

    async fn delete_announcement(&self, scope: &TenantScope, id: &str) -> StoreResult<bool> {
        self.delete_doc(scope, DocKind::Announcement, id).await
    }
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
