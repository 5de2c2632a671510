//! Synagogue profiles (the type is [`luach_content::SynagogueProfile`]): one document per
//! synagogue, validated at the API.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
pub use luach_content::{DailyContent, DisplayPreferences, Language, Nusach, SynagogueProfile};
use luach_schemas::TenantId;
use serde::{Deserialize, Serialize};

use super::{DocKind, DocRepo, Document, StoreError, StoreResult, Stored, TenantScope, TypedDocs};

/// A synagogue's id within its tenant: 1–64 lower-case letters, digits and '-'.
pub type SynagogueId = TenantId;

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
