//! Backup and restore at the storage layer: the records of the installation, or of one
//! tenant, as JSON rows per table, read in one consistent snapshot, and written back into a
//! store that does not hold them yet.
//!
//! Rows keep the backend's own shape (SQLite columns; MongoDB documents in canonical Extended
//! JSON, so every BSON type comes back as it was), so a backup restores into the backend that
//! made it. Which rows belong to a tenant is said once per table ([`Owner`]); runtime state
//! (leases, the migration log) is never backed up; the schema version goes into the archive's
//! manifest instead (`crate::backup`).

use async_trait::async_trait;
use luach_schemas::TenantId;

use super::StoreResult;

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupScope {
    /// Every tenant and the installation's own records.
    Installation,
    /// One tenant's records.
    Tenant(TenantId),
}

/// How a table's rows belong to a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// The row's field or column holds the tenant id (the tenants table: its key).
    Field(&'static str),
    /// Through the user it belongs to (`user_id`; tokens).
    User,
    /// The installation's, not a tenant's: in whole-installation backups only.
    Installation,
}

/// A table (SQLite) or collection (MongoDB) a backup holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Table {
    pub name: &'static str,
    pub owner: Owner,
}

impl Table {
    pub(crate) const fn new(name: &'static str, owner: Owner) -> Self {
        Self { name, owner }
    }

    /// Whether a backup of `scope` holds this table.
    pub(crate) fn in_scope(&self, scope: &BackupScope) -> bool {
        !matches!((scope, self.owner), (BackupScope::Tenant(_), Owner::Installation))
    }
}

/// Where exported rows go, one at a time.
pub trait RowSink: Send {
    /// One row of `table`; rows of a table arrive together, tables in restore order.
    fn row(&mut self, table: &str, row: serde_json::Value) -> std::io::Result<()>;
    /// After the last row: how many rows each table got.
    fn finish(&mut self) -> std::io::Result<std::collections::BTreeMap<String, u64>>;
}

/// Export and import of raw rows, implemented by each backend.
#[async_trait]
pub(crate) trait BackupBackend {
    /// The tables a backup holds, in the order a restore writes them.
    fn backup_tables(&self) -> Vec<Table>;
    /// Reads every row of `scope` in one consistent snapshot into `sink`; returns the sink.
    async fn export(&self, scope: &BackupScope, sink: Box<dyn RowSink>) -> StoreResult<Box<dyn RowSink>>;
    /// Inserts `rows` into `table` (one of [`BackupBackend::backup_tables`]) as they are.
    async fn import(&self, table: &'static str, rows: Vec<serde_json::Value>) -> StoreResult<()>;
    /// How many rows of `scope` the store holds in `table`.
    async fn count_rows(&self, table: &'static str, scope: &BackupScope) -> StoreResult<u64>;
    /// Deletes the rows of `scope` in `table` (undoing a restore that failed); returns how
    /// many.
    async fn delete_rows(&self, table: &'static str, scope: &BackupScope) -> StoreResult<u64>;
}

/// The one table named `name`, or `None` when the backend has none by that name.
pub(crate) fn table_named(tables: &[Table], name: &str) -> Option<Table> {
    tables.iter().find(|t| t.name == name).copied()
}

/// The tables both backends back up, in restore order: `tenant_key` is the tenants table's
/// key (`id` or `_id`) and `documents` the table or collections holding content documents.
/// Not here: leases (who runs what now) and the migration log (the manifest records the
/// schema version).
pub(crate) fn tables(tenant_key: &'static str, documents: &[&'static str]) -> Vec<Table> {
    let owned = |name| Table::new(name, Owner::Field("tenant_id"));
    let mut out = vec![
        Table::new("tenants", Owner::Field(tenant_key)),
        owned("users"),
        Table::new("tokens", Owner::User),
        owned("devices"),
    ];
    out.extend(documents.iter().map(|d| owned(d)));
    out.push(Table::new("audit", Owner::Field("tenant")));
    out.extend(
        [
            "enrolment_tokens",
            "enrolment_requests",
            "device_certificates",
            "certificates",
        ]
        .map(owned),
    );
    out.push(Table::new("renewal_nonces", Owner::Installation));
    out.extend(
        [
            "jobs",
            "executions",
            "telemetry_streams",
            "telemetry",
            "metric_hours",
            "alerts",
            "deliveries",
        ]
        .map(owned),
    );
    out
}
