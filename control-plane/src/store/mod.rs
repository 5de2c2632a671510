//! Storage: one seam through which every record is reached, over SQLite or MongoDB.
//!
//! ```text
//!  HTTP handlers ── Store::tenant(&scope) ──▶ TenantStore ─┐
//!                └─ Store::installation(&scope) ─▶ InstallationStore ─┤   metered, audited,
//!  services (auth, enrolment, ingest, CLI) ── SystemStore ─┘   domain rules here
//!                                                                │
//!                                        backend traits (crate-private): store + compare-and-set
//!                                        sqlite/ (one writer, pooled readers) | mongo/
//! ```
//!
//! - **Scopes are the keys.** A [`TenantScope`] names a tenant and the actor in it; only the
//!   [`SystemStore`] mints one. Handlers receive theirs from the authentication layer and can
//!   reach tenant data only through [`Store::tenant`], whose [`TenantStore`] methods take no
//!   tenant argument. Installation data (tenants, quotas) needs an [`InstallationScope`],
//!   minted for super admins.
//! - **Cross-tenant lookups live apart.** Authentication, enrolment, ingest and the admin CLI
//!   hold the [`SystemStore`]; it is never part of the handlers' state.
//! - **Rules above, storage below.** Handles apply patches and check quotas, compute the audit
//!   record of each change ([`changes`]) and time every operation under its name; backends
//!   store, look up and compare-and-set, appending the audit entry in the change's
//!   transaction.
//! - **Schema versions** are numbered migrations recorded in the database ([`migrate`]).
//!
//! What handler code cannot do is checked by the compiler (`control-plane/tests/seam.rs`, with
//! the snippets in `control-plane/tests/seam/`): call a cross-tenant method on [`Store`], forge
//! a scope, or reach the system store through the application state.

mod alerts;
mod backend;
pub mod backup;
mod changes;
mod docs;
mod enrolment;
mod handle;
mod identity;
mod jobs;
pub mod migrate;
mod model;
mod mongo;
mod outbox;
mod scope;
mod sqlite;
mod synagogue;
mod system;
mod telemetry;
mod tenant;

mod announcement;
mod memorial;
mod program;
mod query;

use std::sync::Arc;

pub use alerts::{AlertFilter, AlertRecord, AlertState, MAX_ALERT_PAGE, Severity, TenantAlerts};
pub use announcement::{Announcement, AnnouncementInput, Targets};
pub use docs::{DocKind, Document, Stored, StoredDoc};
pub use enrolment::{
    BrokerCertificate, CertificateEnd, CertificateRecord, DeviceCertificate, EnrolmentRequest, EnrolmentToken,
    RequestState,
};
pub use handle::{InstallationStore, Store};
pub use identity::{Quota, Revoke, Tenant, TokenKind, TokenRecord, User};
pub use jobs::{
    Counts, ExecFilter, ExecState, ExecUpdate, Execution, JobFilter, JobMove, JobRecord, JobState, MAX_JOB_PAGE, Tally,
    TenantJobs,
};
pub use memorial::{Memorial, MemorialInput, PassingDate};
pub use migrate::Applied;
pub use model::{
    Device, DeviceFilter, DevicePatch, DeviceStatus, HelloInfo, NewDevice, Page, PageRequest, PresenceWrite,
};
pub use outbox::{Delivery, DeliveryState, MAX_DELIVERY_PAGE, TenantDeliveries};
pub use program::{Aliyot, AliyotInput, Honour, HonourKind, Shiur, ShiurInput, Timer, TimerInput, TimerTarget};
pub use query::{FleetQuery, MAX_QUERY_FIELD, MAX_QUERY_NAME, SavedQuery, SavedQueryInput};
pub use scope::{InstallationScope, TenantScope};
pub use synagogue::{DailyContent, DisplayPreferences, Language, Nusach, Synagogue, SynagogueId, SynagogueProfile};
pub use system::SystemStore;
pub use telemetry::{After, HourRow, METRICS, Point, Retention, Series, StreamReport, TelemetryRow, TenantTelemetry};
pub use tenant::{TenantStore, Usage};

use crate::chain::ChainKey;
use crate::metrics::Metrics;

/// Largest page a listing returns; larger requests are clamped.
pub const MAX_PAGE_SIZE: u32 = 500;
/// Page size when the caller gives none.
pub const DEFAULT_PAGE_SIZE: u32 = 50;

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} already exists")]
    Conflict { what: String },
    /// A tenant limit would be exceeded.
    #[error("the {resource} quota ({limit}) is used up")]
    QuotaExceeded { resource: &'static str, limit: u64 },
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("mongodb: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error("storage task failed: {0}")]
    Task(String),
    /// Another change to the same record or audit chain committed first; nothing was applied.
    #[error("concurrent change; try again")]
    Contention,
    #[error(
        "the database has schema version {found}, newer than this release knows ({known}); run a newer luach-server"
    )]
    SchemaTooNew { found: u32, known: u32 },
    #[error("the database lacks schema version {first} and later; run `luach-server migrate`")]
    MigrationsPending { first: u32 },
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

/// Whether a store URL names MongoDB (`mongodb://…`, `mongodb+srv://…`); anything else is
/// SQLite.
pub fn is_mongodb_url(url: &str) -> bool {
    url.starts_with("mongodb://") || url.starts_with("mongodb+srv://")
}

/// How to open the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `mongodb://…`/`mongodb+srv://…` selects MongoDB, `sqlite:PATH` or a plain path SQLite.
    pub url: String,
    /// MongoDB database name.
    pub database: String,
    /// Seals audit records (see [`crate::chain`]).
    pub chain_key: ChainKey,
    /// Tenant limits where a tenant's own quota sets none.
    pub quota_defaults: Quota,
    /// SQLite: connections that serve reads beside the one writer.
    pub sqlite_readers: usize,
    /// Apply pending migrations on open (`false`: refuse to open a database that lacks some).
    pub migrate: bool,
}

/// Opens the store named by `options.url`, applying pending migrations when
/// `options.migrate` (otherwise refusing a database that lacks some), and returns the system
/// handle (hand [`SystemStore::store`] to HTTP handlers).
pub async fn open(options: &StoreOptions, metrics: Metrics) -> StoreResult<SystemStore> {
    let system = connect(options, metrics).await?;
    if options.migrate {
        system.migrate(false).await?;
    } else if let Some(first) = system.migrate(true).await?.first() {
        return Err(StoreError::MigrationsPending { first: first.version });
    }
    Ok(system)
}

/// Connects to the store without looking at its schema (for `luach-server migrate`).
pub async fn connect(options: &StoreOptions, metrics: Metrics) -> StoreResult<SystemStore> {
    let url = options.url.as_str();
    let backend: Arc<dyn backend::Backend> = if is_mongodb_url(url) {
        Arc::new(mongo::MongoStore::connect(url, &options.database, options.chain_key.clone()).await?)
    } else {
        let path = url.strip_prefix("sqlite:").unwrap_or(url);
        Arc::new(
            sqlite::SqliteStore::open(
                std::path::Path::new(path),
                options.chain_key.clone(),
                options.sqlite_readers,
            )
            .await?,
        )
    };
    Ok(SystemStore::new(handle::Inner::new(
        backend,
        metrics,
        options.quota_defaults,
    )))
}

/// Clamps a requested page size into `1..=MAX_PAGE_SIZE`.
pub fn clamp_limit(limit: Option<u32>) -> u32 {
    limit.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, MAX_PAGE_SIZE)
}
