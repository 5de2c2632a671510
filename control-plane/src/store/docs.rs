//! Tenant-scoped documents: records that are read and written whole (synagogue profiles,
//! memorial plaques). One implementation per backend serves every kind; typed repositories
//! (`SynagogueRepo`, `MemorialRepo`) sit on top and own validation of their shape.

use chrono::{DateTime, Utc};
use luach_schemas::TenantId;
use serde_json::Value;

/// Which family of documents; each backend keeps kinds apart (table column / collection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocKind {
    Synagogue,
    Memorial,
    Announcement,
}

impl DocKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Synagogue => "synagogue",
            Self::Memorial => "memorial",
            Self::Announcement => "announcement",
        }
    }
}

/// A stored document.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDoc {
    pub tenant_id: TenantId,
    pub id: String,
    pub body: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
