//! SQLite backend: one file in the data directory, in WAL mode, with **one writer connection
//! and a small pool of reader connections**. Writers take turns (SQLite allows one at a time);
//! readers run beside the writer and beside each other, each seeing the last committed state,
//! so a long presence batch from the ingest pipeline never stalls an API read. Every call runs
//! on tokio's blocking pool.
//!
//! The file and its WAL are created `0600` inside the `0700` data directory: they hold
//! password hashes and second-factor secrets.

mod alerts;
mod audit;
mod backup;
mod devices;
mod documents;
mod enrolment;
mod identity;
mod ingest;
mod jobs;
mod leases;
mod migrations;
mod outbox;
mod pool;
mod telemetry;

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use luach_schemas::{DeviceId, TenantId, TopicPrefix};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::backend::Backend;
use super::migrate::Applied;
use super::{StoreError, StoreResult};
use crate::chain::{ChainKey, Entry};

pub(super) use pool::ReaderPool;

/// SQLite-backed store.
pub(crate) struct SqliteStore {
    writer: Arc<Mutex<Connection>>,
    readers: Arc<ReaderPool>,
    key: ChainKey,
}

/// Settings every connection gets.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Creates the database file readable by its owner only, before SQLite opens it (SQLite gives
/// its WAL and shared-memory files the database file's permissions).
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` with one writer and `readers` reader
    /// connections (at least one).
    pub(crate) async fn open(path: &Path, key: ChainKey, readers: usize) -> StoreResult<Self> {
        let path = path.to_owned();
        let readers = readers.max(1);
        tokio::task::spawn_blocking(move || -> StoreResult<Self> {
            create_private(&path).map_err(|e| StoreError::Task(format!("creating {}: {e}", path.display())))?;
            let writer = Connection::open(&path)?;
            writer.pragma_update(None, "journal_mode", "WAL")?;
            configure(&writer)?;
            let mut pool = Vec::with_capacity(readers);
            for _ in 0..readers {
                let conn = Connection::open_with_flags(
                    &path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure(&conn)?;
                conn.pragma_update(None, "query_only", "ON")?;
                pool.push(conn);
            }
            Ok(Self {
                writer: Arc::new(Mutex::new(writer)),
                readers: Arc::new(ReaderPool::new(pool)),
                key,
            })
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` with the writer connection on the blocking pool.
    pub(super) async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.writer);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Task("sqlite writer lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` with a reader connection on the blocking pool (waiting for a free one).
    pub(super) async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let pool = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || pool.with(f))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` in a write transaction and commits it.
    pub(super) async fn transaction<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>, &ChainKey) -> StoreResult<T> + Send + 'static,
    {
        let key = self.key.clone();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let out = f(&tx, &key)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl Backend for SqliteStore {
    async fn migrate(&self, dry_run: bool) -> StoreResult<Vec<Applied>> {
        self.write(move |conn| migrations::run(conn, dry_run)).await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    fn name(&self) -> &'static str {
        "sqlite"
    }
}

/// Chains `entry` onto its tenant's audit log inside the caller's transaction.
pub(super) fn append_audit(conn: &Connection, entry: Entry, key: &ChainKey) -> StoreResult<()> {
    let prev: Option<String> = conn
        .prepare_cached("SELECT body FROM audit WHERE tenant = ?1 ORDER BY seq DESC LIMIT 1")?
        .query_row(params![entry.change.tenant], |r| r.get(0))
        .optional()?;
    let prev = prev
        .map(|b| serde_json::from_str::<crate::chain::AuditRecord>(&b).map_err(|e| corrupt("audit record", e)))
        .transpose()?
        .map(|r| (r.seq, r.hash));
    let record = crate::chain::seal(entry, key, prev);
    let body = serde_json::to_string(&record).map_err(|e| corrupt("audit record", e))?;
    conn.execute(
        "INSERT INTO audit (tenant, seq, body) VALUES (?1, ?2, ?3)",
        params![record.tenant, record.seq, body],
    )?;
    Ok(())
}

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(super) fn from_ms(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.and_then(|m| Utc.timestamp_millis_opt(m).single())
}

/// A required timestamp column.
pub(super) fn time(row: &rusqlite::Row<'_>, i: usize, what: &str) -> StoreResult<DateTime<Utc>> {
    from_ms(row.get(i)?).ok_or_else(|| corrupt(what, "missing"))
}

pub(super) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

pub(super) fn device_id(text: &str) -> StoreResult<DeviceId> {
    DeviceId::parse(text).map_err(|e| corrupt("device id", e))
}

pub(super) fn tenant_id(text: &str) -> StoreResult<TenantId> {
    TenantId::parse(text).map_err(|e| corrupt("tenant id", e))
}

pub(super) fn prefix(text: &str) -> StoreResult<TopicPrefix> {
    TopicPrefix::parse(text).map_err(|e| corrupt("topic prefix", e))
}

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| corrupt("serialising record", e))
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

pub(super) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

/// `Conflict { what }` for a unique-constraint failure, the error itself otherwise.
pub(super) fn conflict_on_unique(what: &str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |e| {
        if is_unique_violation(&e) {
            StoreError::Conflict { what: what.to_owned() }
        } else {
            e.into()
        }
    }
}
