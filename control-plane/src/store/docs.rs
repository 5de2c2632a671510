//! Tenant-owned documents: records read and written whole (synagogue profiles, memorial
//! plaques, announcements, the programme, saved fleet queries). One table or collection per backend serves every
//! kind; [`TenantStore`](super::TenantStore) gives typed access to each [`Document`] type.

use chrono::{DateTime, Utc};
use luach_schemas::TenantId;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{StoreError, StoreResult};

/// Which family of documents; each backend keeps kinds apart (table column / collection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocKind {
    Synagogue,
    Memorial,
    Announcement,
    Aliyot,
    Shiur,
    Timer,
    /// Saved fleet queries (not shown on screens).
    Query,
    /// Alert rules (not shown on screens).
    AlertRule,
    /// Silences: alerts they match notify no one until they end.
    AlertSilence,
    /// Notification channels: where alert messages go.
    NotifyChannel,
    /// People who asked for yahrzeit and aliyah reminders (not shown on screens).
    Congregant,
}

impl DocKind {
    pub const ALL: [DocKind; 11] = [
        Self::Synagogue,
        Self::Memorial,
        Self::Announcement,
        Self::Aliyot,
        Self::Shiur,
        Self::Timer,
        Self::Query,
        Self::AlertRule,
        Self::AlertSilence,
        Self::NotifyChannel,
        Self::Congregant,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Synagogue => "synagogue",
            Self::Memorial => "memorial",
            Self::Announcement => "announcement",
            Self::Aliyot => "aliyot",
            Self::Shiur => "shiur",
            Self::Timer => "timer",
            Self::Query => "query",
            Self::AlertRule => "alert_rule",
            Self::AlertSilence => "alert_silence",
            Self::NotifyChannel => "notify_channel",
            Self::Congregant => "congregant",
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

/// A document type stored whole under a server-chosen id.
pub trait Document: Serialize + DeserializeOwned + Send + Sync + 'static {
    const KIND: DocKind;
}

/// A stored document of type `T`: its fields flattened beside the id and timestamps.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[schemars(rename = "Stored{T}")]
pub struct Stored<T> {
    pub id: String,
    pub tenant_id: TenantId,
    #[serde(flatten)]
    pub input: T,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl<T: Document> Stored<T> {
    pub(super) fn from_doc(doc: StoredDoc) -> StoreResult<Self> {
        Ok(Self {
            id: doc.id,
            tenant_id: doc.tenant_id,
            input: serde_json::from_value(doc.body)
                .map_err(|e| StoreError::Corrupt(format!("{}: {e}", T::KIND.as_str())))?,
            created_at: doc.created_at,
            updated_at: doc.updated_at,
        })
    }
}

/// A stored document as screens receive it: id and content, without tenant or timestamps.
impl<T> From<Stored<T>> for luach_content::Item<T> {
    fn from(s: Stored<T>) -> Self {
        Self {
            id: s.id,
            input: s.input,
        }
    }
}
