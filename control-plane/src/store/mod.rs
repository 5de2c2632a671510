//! Storage: repository traits and their SQLite and MongoDB implementations.
//!
//! [`Store`] is the one entry point. Tenant-owned operations ([`DeviceRepo`]) take a
//! [`TenantScope`]; the ingest pipeline's device-wide operations ([`IngestRepo`]) are keyed by
//! device ids that the broker has authenticated, and are named for that one purpose.
//! [`EnrolmentRepo`] keeps enrolment requests, device certificates and bulk enrolment tokens.
//! Both backends pass the same conformance suite (`tests/tests/store_conformance.rs`).

mod announcement;
mod changes;
mod docs;
mod enrolment;
mod identity;
mod memorial;
mod model;
mod mongo;
mod mongo_enrolment;
mod mongo_identity;
mod program;
mod scope;
mod sqlite;
mod sqlite_enrolment;
mod sqlite_identity;
mod synagogue;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use luach_schemas::{DeviceId, TenantId};

pub use announcement::{Announcement, AnnouncementInput, Targets};
pub use docs::{DocKind, Document, Stored, StoredDoc, TypedDocs};
pub use enrolment::{DeviceCertificate, EnrolmentRepo, EnrolmentRequest, EnrolmentToken, RequestState};
pub use identity::{IdentityRepo, Revoke, Tenant, TokenKind, TokenRecord, User};
pub use memorial::{Memorial, MemorialInput, PassingDate};
pub use model::{
    Device, DeviceFilter, DevicePatch, DeviceStatus, HelloInfo, NewDevice, Page, PageRequest, PresenceWrite,
};
pub use mongo::MongoStore;
pub use program::{Aliyot, AliyotInput, Honour, HonourKind, Shiur, ShiurInput, Timer, TimerInput, TimerTarget};
pub use scope::TenantScope;
pub use sqlite::SqliteStore;
pub use synagogue::{
    DailyContent, DisplayPreferences, Language, Nusach, Synagogue, SynagogueId, SynagogueProfile, SynagogueRepo,
};

/// Largest page a listing returns; larger requests are clamped.
pub const MAX_PAGE_SIZE: u32 = 500;
/// Page size when the caller gives none.
pub const DEFAULT_PAGE_SIZE: u32 = 50;

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} already exists")]
    Conflict { what: String },
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("mongodb: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error("storage task failed: {0}")]
    Task(String),
    /// Another change to the same audit chain committed first; the change was not applied.
    #[error("concurrent change; try again")]
    Contention,
}

impl StoreError {
    /// True when running the same change again may succeed (transaction conflicts).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Contention => true,
            Self::Mongo(e) => e.contains_label(mongodb::error::TRANSIENT_TRANSACTION_ERROR),
            _ => false,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Tenant-scoped device records.
#[async_trait]
pub trait DeviceRepo: Send + Sync {
    /// Devices of the scope's tenant matching `filter`, ordered by id.
    async fn list(&self, scope: &TenantScope, filter: &DeviceFilter, page: &PageRequest) -> StoreResult<Page<Device>>;
    async fn get(&self, scope: &TenantScope, id: &DeviceId) -> StoreResult<Option<Device>>;
    /// Fails with [`StoreError::Conflict`] when the id is taken (in any tenant: ids are global
    /// because they are the device's broker identity).
    async fn create(&self, scope: &TenantScope, device: NewDevice, now: DateTime<Utc>) -> StoreResult<Device>;
    async fn update(
        &self,
        scope: &TenantScope,
        id: &DeviceId,
        patch: DevicePatch,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Device>>;
    /// True when a device was deleted.
    async fn delete(&self, scope: &TenantScope, id: &DeviceId) -> StoreResult<bool>;
}

/// Tenant-scoped documents of every [`DocKind`].
#[async_trait]
pub trait DocRepo: Send + Sync {
    /// Documents of `kind` in the scope's tenant, ordered by id, after `after`, at most `limit`.
    async fn list_docs(
        &self,
        scope: &TenantScope,
        kind: DocKind,
        limit: u32,
        after: Option<&str>,
    ) -> StoreResult<Vec<StoredDoc>>;
    async fn get_doc(&self, scope: &TenantScope, kind: DocKind, id: &str) -> StoreResult<Option<StoredDoc>>;
    /// Creates or replaces; `created_at` survives replacement. Returns the stored document
    /// (timestamps at the store's millisecond precision) and whether it was created.
    async fn put_doc(
        &self,
        scope: &TenantScope,
        kind: DocKind,
        id: &str,
        body: serde_json::Value,
        now: DateTime<Utc>,
    ) -> StoreResult<(StoredDoc, bool)>;
    /// True when a document was deleted.
    async fn delete_doc(&self, scope: &TenantScope, kind: DocKind, id: &str) -> StoreResult<bool>;
}

/// Device-wide operations of the MQTT ingest pipeline.
///
/// The broker has already authenticated the device id (it is the topic prefix), and the
/// tenant is looked up from the device record; nothing here takes a tenant from a payload.
#[async_trait]
pub trait IngestRepo: Send + Sync {
    /// The tenants of those of `ids` that are registered and whose certificate (if they have
    /// one) is not revoked: a revoked device's messages are dropped like an unknown device's.
    async fn tenants_of(&self, ids: &[DeviceId]) -> StoreResult<HashMap<DeviceId, TenantId>>;
    /// Registers `ids` in the scope's tenant with default fields (name = id), leaving ids
    /// that already exist in any tenant, and ids with a certificate record (enrolled, even if
    /// since revoked or deleted), untouched.
    async fn register_devices(&self, scope: &TenantScope, ids: &[DeviceId], now: DateTime<Utc>) -> StoreResult<()>;
    /// Applies a batch of coalesced presence writes in one transaction where supported.
    async fn apply_presence(&self, batch: &[PresenceWrite]) -> StoreResult<()>;
    /// Marks every online device offline (used at start-up: no session survives a restart of
    /// the embedded broker). Returns how many changed.
    async fn mark_all_offline(&self) -> StoreResult<u64>;
}

/// A storage backend.
#[async_trait]
pub trait Store: DeviceRepo + DocRepo + IngestRepo + IdentityRepo + EnrolmentRepo {
    /// One tenant's audit records with `seq` > `after`, in `seq` order, at most `limit`
    /// (all when `None`; see [`crate::audit`]).
    async fn audit_records(
        &self,
        tenant: &str,
        after: i64,
        limit: Option<u32>,
    ) -> StoreResult<Vec<crate::audit::AuditRecord>>;
    /// The newest record of every chain.
    async fn audit_heads(&self) -> StoreResult<crate::audit::Heads>;
    /// Round trip to the backend, for readiness checks.
    async fn ping(&self) -> StoreResult<()>;
    /// "sqlite" or "mongodb".
    fn backend(&self) -> &'static str;
}

/// Shared handle to the configured backend.
pub type DynStore = Arc<dyn Store>;

/// Opens the store named by `url`: `mongodb://…`/`mongodb+srv://…` selects MongoDB, `sqlite:PATH`
/// or a plain path selects a SQLite file.
pub async fn open(url: &str, mongo_database: &str) -> StoreResult<DynStore> {
    if url.starts_with("mongodb://") || url.starts_with("mongodb+srv://") {
        Ok(Arc::new(MongoStore::connect(url, mongo_database).await?))
    } else {
        let path = url.strip_prefix("sqlite:").unwrap_or(url);
        Ok(Arc::new(SqliteStore::open(std::path::Path::new(path)).await?))
    }
}

/// Clamps a requested page size into `1..=MAX_PAGE_SIZE`.
pub fn clamp_limit(limit: Option<u32>) -> u32 {
    limit.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, MAX_PAGE_SIZE)
}
