//! Synagogue profiles (the type is [`luach_content::SynagogueProfile`]): one document per
//! synagogue, validated at the API.

use chrono::{DateTime, Utc};
pub use luach_content::{DailyContent, DisplayPreferences, Language, Nusach, SynagogueProfile};
use luach_schemas::TenantId;
use serde::{Deserialize, Serialize};

use super::{DocKind, Document, StoreError, StoreResult, Stored};

/// A synagogue's id within its tenant: 1–64 lower-case letters, digits and '-'.
pub type SynagogueId = TenantId;

/// A stored synagogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    pub(super) fn from_stored(doc: Stored<SynagogueProfile>) -> StoreResult<Self> {
        Ok(Self {
            id: SynagogueId::parse(&doc.id).map_err(|e| StoreError::Corrupt(format!("synagogue id: {e}")))?,
            tenant_id: doc.tenant_id,
            profile: doc.input,
            created_at: doc.created_at,
            updated_at: doc.updated_at,
        })
    }
}
