//! SQLite backend: one file in the data directory, WAL mode, one connection.
//!
//! A single connection serialises access; every call runs on tokio's blocking pool so the
//! async runtime never waits on the disk. Presence writes arrive in batches from the ingest
//! pipeline and are applied in one transaction, which is what makes thousands of heartbeats a
//! second cheap for SQLite.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use luach_schemas::messages::Metrics;
use luach_schemas::{DeviceId, TenantId};
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter, types::Value};

use super::changes;
use crate::audit::{Actor, AuditRecord, Change, Head, Heads, current_actor};

use super::{
    Device, DeviceFilter, DevicePatch, DeviceRepo, DeviceStatus, DocKind, DocRepo, IngestRepo, NewDevice, Page,
    PageRequest, PresenceWrite, Store, StoreError, StoreResult, StoredDoc, TenantScope,
};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS devices (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    name          TEXT NOT NULL,
    tags          TEXT NOT NULL DEFAULT '[]',
    grp           TEXT,
    notes         TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL DEFAULT 'offline',
    last_seen     INTEGER,
    agent_version TEXT,
    platform      TEXT,
    ip            TEXT,
    metrics       TEXT,
    metrics_at    INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS devices_tenant_id ON devices (tenant_id, id);
CREATE INDEX IF NOT EXISTS devices_tenant_status ON devices (tenant_id, status, id);
CREATE TABLE IF NOT EXISTS documents (
    kind       TEXT NOT NULL,
    tenant_id  TEXT NOT NULL,
    id         TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (kind, tenant_id, id)
) STRICT;
CREATE TABLE IF NOT EXISTS tenants (
    id         TEXT PRIMARY KEY,
    body       TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS users (
    id         TEXT PRIMARY KEY,
    email      TEXT NOT NULL UNIQUE,
    tenant_id  TEXT,
    body       TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS users_tenant ON users (tenant_id, email);
CREATE TABLE IF NOT EXISTS tokens (
    hash         TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    family       TEXT NOT NULL,
    name         TEXT NOT NULL,
    role         TEXT,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS tokens_user ON tokens (user_id, kind, created_at);
CREATE INDEX IF NOT EXISTS tokens_family ON tokens (family);
CREATE TABLE IF NOT EXISTS audit (
    tenant     TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    body       TEXT NOT NULL,
    PRIMARY KEY (tenant, seq)
) STRICT;
"#;

const COLUMNS: &str = "id, tenant_id, name, tags, grp, notes, status, last_seen, agent_version, \
                       platform, ip, metrics, metrics_at, created_at, updated_at";

/// SQLite-backed [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and applies the schema.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let path = path.to_owned();
        let conn = tokio::task::spawn_blocking(move || -> StoreResult<Connection> {
            let conn = Connection::open(&path)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.execute_batch(SCHEMA)?;
            conn.execute_batch(super::sqlite_enrolment::SCHEMA)?;
            Ok(conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    pub(super) async fn with<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Task("sqlite connection lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

/// Chains `change` onto its tenant's audit log inside the caller's transaction.
pub(super) fn append_audit(conn: &Connection, change: Change, actor: Actor, at: DateTime<Utc>) -> StoreResult<()> {
    let prev: Option<String> = conn
        .prepare_cached("SELECT body FROM audit WHERE tenant = ?1 ORDER BY seq DESC LIMIT 1")?
        .query_row(params![change.tenant], |r| r.get(0))
        .optional()?;
    let prev = prev
        .map(|b| serde_json::from_str::<AuditRecord>(&b).map_err(|e| corrupt("audit record", e)))
        .transpose()?
        .map(|r| (r.seq, r.hash));
    let record = crate::audit::seal(change, actor, at, prev);
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

pub(super) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn device_from_row(row: &Row<'_>) -> StoreResult<Device> {
    let id: String = row.get(0)?;
    let tenant: String = row.get(1)?;
    let tags: String = row.get(3)?;
    let status: String = row.get(6)?;
    let metrics: Option<String> = row.get(11)?;
    Ok(Device {
        id: DeviceId::parse(&id).map_err(|e| corrupt("device id", e))?,
        tenant_id: TenantId::parse(&tenant).map_err(|e| corrupt("tenant id", e))?,
        name: row.get(2)?,
        tags: serde_json::from_str(&tags).map_err(|e| corrupt("tags", e))?,
        group: row.get(4)?,
        notes: row.get(5)?,
        status: DeviceStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        last_seen: from_ms(row.get(7)?),
        agent_version: row.get(8)?,
        platform: row.get(9)?,
        ip: row.get(10)?,
        metrics: metrics
            .map(|m| serde_json::from_str::<Metrics>(&m))
            .transpose()
            .map_err(|e| corrupt("metrics", e))?,
        metrics_at: from_ms(row.get(12)?),
        created_at: from_ms(row.get(13)?).ok_or_else(|| corrupt("created_at", "missing"))?,
        updated_at: from_ms(row.get(14)?).ok_or_else(|| corrupt("updated_at", "missing"))?,
    })
}

fn get_device(conn: &Connection, tenant: &str, id: &str) -> StoreResult<Option<Device>> {
    let sql = format!("SELECT {COLUMNS} FROM devices WHERE tenant_id = ?1 AND id = ?2");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![tenant, id])?;
    match rows.next()? {
        Some(row) => Ok(Some(device_from_row(row)?)),
        None => Ok(None),
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

#[async_trait]
impl DeviceRepo for SqliteStore {
    async fn list(&self, scope: &TenantScope, filter: &DeviceFilter, page: &PageRequest) -> StoreResult<Page<Device>> {
        let tenant = scope.tenant().to_string();
        let filter = filter.clone();
        let page = page.clone();
        self.with(move |conn| {
            let mut where_sql = String::from("tenant_id = ?");
            let mut args: Vec<Value> = vec![Value::Text(tenant)];
            if let Some(status) = filter.status {
                where_sql.push_str(" AND status = ?");
                args.push(Value::Text(status.as_str().to_owned()));
            }
            if let Some(tag) = filter.tag {
                where_sql.push_str(" AND EXISTS (SELECT 1 FROM json_each(devices.tags) WHERE json_each.value = ?)");
                args.push(Value::Text(tag));
            }
            if let Some(group) = filter.group {
                where_sql.push_str(" AND grp = ?");
                args.push(Value::Text(group));
            }
            let total: i64 = conn.query_row(
                &format!("SELECT COUNT(*) FROM devices WHERE {where_sql}"),
                params_from_iter(args.iter()),
                |r| r.get(0),
            )?;
            if let Some(after) = &page.after {
                where_sql.push_str(" AND id > ?");
                args.push(Value::Text(after.to_string()));
            }
            // Fetch one extra row to learn whether another page follows.
            args.push(Value::Integer(i64::from(page.limit) + 1));
            let sql = format!("SELECT {COLUMNS} FROM devices WHERE {where_sql} ORDER BY id LIMIT ?");
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params_from_iter(args.iter()))?;
            let mut items = Vec::new();
            while let Some(row) = rows.next()? {
                items.push(device_from_row(row)?);
            }
            let next_after = if items.len() > page.limit as usize {
                items.truncate(page.limit as usize);
                items.last().map(|d| d.id.to_string())
            } else {
                None
            };
            Ok(Page {
                items,
                next_after,
                total: u64::try_from(total).unwrap_or(0),
            })
        })
        .await
    }

    async fn get(&self, scope: &TenantScope, id: &DeviceId) -> StoreResult<Option<Device>> {
        let (tenant, id) = (scope.tenant().to_string(), id.to_string());
        self.with(move |conn| get_device(conn, &tenant, &id)).await
    }

    async fn create(&self, scope: &TenantScope, device: NewDevice, now: DateTime<Utc>) -> StoreResult<Device> {
        let tenant = scope.tenant().to_string();
        let actor = current_actor();
        self.with(move |conn| {
            let conn = conn.transaction()?;
            let inserted = conn.execute(
                "INSERT INTO devices (id, tenant_id, name, tags, grp, notes, status, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'offline', ?7, ?7) ON CONFLICT (id) DO NOTHING",
                params![
                    device.id.as_str(),
                    tenant,
                    device.name,
                    to_json(&device.tags),
                    device.group,
                    device.notes,
                    ms(now)
                ],
            )?;
            if inserted == 0 {
                return Err(StoreError::Conflict {
                    what: format!("device {}", device.id),
                });
            }
            let created = get_device(&conn, &tenant, device.id.as_str())?
                .ok_or_else(|| StoreError::Corrupt("inserted device vanished".into()))?;
            let change = changes::device_created(
                &tenant,
                created.id.as_str(),
                &created.name,
                &created.tags,
                created.group.as_deref(),
            );
            append_audit(&conn, change, actor, now)?;
            conn.commit()?;
            Ok(created)
        })
        .await
    }

    async fn update(
        &self,
        scope: &TenantScope,
        id: &DeviceId,
        patch: DevicePatch,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Device>> {
        let (tenant, id) = (scope.tenant().to_string(), id.to_string());
        let actor = current_actor();
        self.with(move |conn| {
            let tx = conn.transaction()?;
            let change = changes::device_updated(&tenant, &id, &patch);
            let Some(mut device) = get_device(&tx, &tenant, &id)? else {
                return Ok(None);
            };
            if let Some(name) = patch.name {
                device.name = name;
            }
            if let Some(tags) = patch.tags {
                device.tags = tags;
            }
            if let Some(group) = patch.group {
                device.group = group;
            }
            if let Some(notes) = patch.notes {
                device.notes = notes;
            }
            device.updated_at = now;
            tx.execute(
                "UPDATE devices SET name = ?1, tags = ?2, grp = ?3, notes = ?4, updated_at = ?5 \
                 WHERE tenant_id = ?6 AND id = ?7",
                params![
                    device.name,
                    to_json(&device.tags),
                    device.group,
                    device.notes,
                    ms(now),
                    tenant,
                    id
                ],
            )?;
            append_audit(&tx, change, actor, now)?;
            tx.commit()?;
            Ok(Some(device))
        })
        .await
    }

    async fn delete(&self, scope: &TenantScope, id: &DeviceId) -> StoreResult<bool> {
        let (tenant, id) = (scope.tenant().to_string(), id.to_string());
        let actor = current_actor();
        self.with(move |conn| {
            let tx = conn.transaction()?;
            let deleted = tx.execute(
                "DELETE FROM devices WHERE tenant_id = ?1 AND id = ?2",
                params![tenant, id],
            )? > 0;
            if deleted {
                let change = changes::device_deleted(&tenant, &id);
                append_audit(&tx, change, actor, Utc::now())?;
            }
            tx.commit()?;
            Ok(deleted)
        })
        .await
    }
}

const DOC_COLUMNS: &str = "tenant_id, id, body, created_at, updated_at";

fn doc_from_row(row: &Row<'_>) -> StoreResult<StoredDoc> {
    let tenant: String = row.get(0)?;
    let body: String = row.get(2)?;
    Ok(StoredDoc {
        tenant_id: TenantId::parse(&tenant).map_err(|e| corrupt("tenant id", e))?,
        id: row.get(1)?,
        body: serde_json::from_str(&body).map_err(|e| corrupt("document body", e))?,
        created_at: from_ms(row.get(3)?).ok_or_else(|| corrupt("created_at", "missing"))?,
        updated_at: from_ms(row.get(4)?).ok_or_else(|| corrupt("updated_at", "missing"))?,
    })
}

fn get_doc(conn: &Connection, kind: DocKind, tenant: &str, id: &str) -> StoreResult<Option<StoredDoc>> {
    let sql = format!("SELECT {DOC_COLUMNS} FROM documents WHERE kind = ?1 AND tenant_id = ?2 AND id = ?3");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![kind.as_str(), tenant, id])?;
    rows.next()?.map(doc_from_row).transpose()
}

#[async_trait]
impl DocRepo for SqliteStore {
    async fn list_docs(
        &self,
        scope: &TenantScope,
        kind: DocKind,
        limit: u32,
        after: Option<&str>,
    ) -> StoreResult<Vec<StoredDoc>> {
        let (tenant, after) = (scope.tenant().to_string(), after.unwrap_or("").to_owned());
        self.with(move |conn| {
            let sql = format!(
                "SELECT {DOC_COLUMNS} FROM documents WHERE kind = ?1 AND tenant_id = ?2 AND id > ?3 ORDER BY id LIMIT ?4"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params![kind.as_str(), tenant, after, limit])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(doc_from_row(row)?);
            }
            Ok(out)
        })
        .await
    }

    async fn get_doc(&self, scope: &TenantScope, kind: DocKind, id: &str) -> StoreResult<Option<StoredDoc>> {
        let (tenant, id) = (scope.tenant().to_string(), id.to_owned());
        self.with(move |conn| get_doc(conn, kind, &tenant, &id)).await
    }

    async fn put_doc(
        &self,
        scope: &TenantScope,
        kind: DocKind,
        id: &str,
        body: serde_json::Value,
        now: DateTime<Utc>,
    ) -> StoreResult<(StoredDoc, bool)> {
        let (tenant, id) = (scope.tenant().clone(), id.to_owned());
        // Answer with what is stored: millisecond precision.
        let now = from_ms(Some(ms(now))).unwrap_or(now);
        let actor = current_actor();
        self.with(move |conn| {
            let tx = conn.transaction()?;
            let existing = get_doc(&tx, kind, tenant.as_str(), &id)?;
            let created_at = existing.as_ref().map_or(now, |d| d.created_at);
            tx.execute(
                "INSERT INTO documents (kind, tenant_id, id, body, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (kind, tenant_id, id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
                params![kind.as_str(), tenant.as_str(), id, body.to_string(), ms(created_at), ms(now)],
            )?;
            let change = changes::doc_put(tenant.as_str(), kind, &id, &body);
            append_audit(&tx, change, actor, now)?;
            tx.commit()?;
            let stored = StoredDoc { tenant_id: tenant, id, body, created_at, updated_at: now };
            Ok((stored, existing.is_none()))
        })
        .await
    }

    async fn delete_doc(&self, scope: &TenantScope, kind: DocKind, id: &str) -> StoreResult<bool> {
        let (tenant, id) = (scope.tenant().to_string(), id.to_owned());
        let actor = current_actor();
        self.with(move |conn| {
            let tx = conn.transaction()?;
            let n = tx.execute(
                "DELETE FROM documents WHERE kind = ?1 AND tenant_id = ?2 AND id = ?3",
                params![kind.as_str(), tenant, id],
            )?;
            if n > 0 {
                let change = changes::doc_deleted(&tenant, kind, &id);
                append_audit(&tx, change, actor, Utc::now())?;
            }
            tx.commit()?;
            Ok(n > 0)
        })
        .await
    }
}

#[async_trait]
impl IngestRepo for SqliteStore {
    async fn tenants_of(&self, ids: &[DeviceId]) -> StoreResult<HashMap<DeviceId, TenantId>> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        self.with(move |conn| {
            let mut found = HashMap::new();
            // SQLite caps bound parameters; 500 per query stays far below every build's limit.
            for chunk in ids.chunks(500) {
                let marks = vec!["?"; chunk.len()].join(",");
                // A device whose certificate is revoked counts as unregistered.
                let mut stmt = conn.prepare(&format!(
                    "SELECT id, tenant_id FROM devices WHERE id IN ({marks}) AND NOT EXISTS \
                     (SELECT 1 FROM device_certificates c WHERE c.device_id = devices.id AND c.revoked_at IS NOT NULL)"
                ))?;
                let mut rows = stmt.query(params_from_iter(chunk.iter()))?;
                while let Some(row) = rows.next()? {
                    let id: String = row.get(0)?;
                    let tenant: String = row.get(1)?;
                    found.insert(
                        DeviceId::parse(&id).map_err(|e| corrupt("device id", e))?,
                        TenantId::parse(&tenant).map_err(|e| corrupt("tenant id", e))?,
                    );
                }
            }
            Ok(found)
        })
        .await
    }

    async fn register_devices(&self, scope: &TenantScope, ids: &[DeviceId], now: DateTime<Utc>) -> StoreResult<()> {
        let tenant = scope.tenant().to_string();
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        self.with(move |conn| {
            let tx = conn.transaction()?;
            {
                // Enrolled devices (with a certificate record, even a revoked one) are never
                // registered this way: a revoked or deleted device must not come back.
                let mut insert = tx.prepare_cached(
                    "INSERT INTO devices (id, tenant_id, name, created_at, updated_at) \
                     SELECT ?1, ?2, ?1, ?3, ?3 WHERE NOT EXISTS \
                     (SELECT 1 FROM device_certificates WHERE device_id = ?1) \
                     ON CONFLICT (id) DO NOTHING",
                )?;
                for id in &ids {
                    insert.execute(params![id, tenant, ms(now)])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn apply_presence(&self, batch: &[PresenceWrite]) -> StoreResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let batch = batch.to_vec();
        self.with(move |conn| {
            let tx = conn.transaction()?;
            {
                let mut seen =
                    tx.prepare_cached("UPDATE devices SET last_seen = MAX(COALESCE(last_seen, 0), ?1) WHERE id = ?2")?;
                let mut status = tx.prepare_cached("UPDATE devices SET status = ?1 WHERE id = ?2")?;
                let mut hello =
                    tx.prepare_cached("UPDATE devices SET agent_version = ?1, platform = ?2, ip = ?3 WHERE id = ?4")?;
                let mut metrics =
                    tx.prepare_cached("UPDATE devices SET metrics = ?1, metrics_at = ?2 WHERE id = ?3")?;
                for w in &batch {
                    let id = w.device.as_str();
                    if let Some(t) = w.last_seen {
                        seen.execute(params![ms(t), id])?;
                    }
                    if let Some(s) = w.status {
                        status.execute(params![s.as_str(), id])?;
                    }
                    if let Some(h) = &w.hello {
                        hello.execute(params![h.agent_version, h.platform, h.ip, id])?;
                    }
                    if let Some((m, at)) = &w.metrics {
                        metrics.execute(params![to_json(m), ms(*at), id])?;
                    }
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn mark_all_offline(&self) -> StoreResult<u64> {
        self.with(|conn| {
            let n = conn.execute("UPDATE devices SET status = 'offline' WHERE status = 'online'", [])?;
            Ok(n as u64)
        })
        .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn audit_records(&self, tenant: &str, after: i64, limit: Option<u32>) -> StoreResult<Vec<AuditRecord>> {
        let tenant = tenant.to_owned();
        let limit = limit.map_or(-1, i64::from);
        self.with(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT body FROM audit WHERE tenant = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3")?;
            let mut rows = stmt.query(params![tenant, after, limit])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let body: String = row.get(0)?;
                out.push(serde_json::from_str(&body).map_err(|e| corrupt("audit record", e))?);
            }
            Ok(out)
        })
        .await
    }

    async fn audit_heads(&self) -> StoreResult<Heads> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT a.tenant, a.body FROM audit a JOIN (SELECT tenant, MAX(seq) AS seq FROM audit GROUP BY tenant) m \
                 ON a.tenant = m.tenant AND a.seq = m.seq",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Heads::new();
            while let Some(row) = rows.next()? {
                let tenant: String = row.get(0)?;
                let body: String = row.get(1)?;
                let r: AuditRecord = serde_json::from_str(&body).map_err(|e| corrupt("audit record", e))?;
                out.insert(tenant, Head { seq: r.seq, hash: r.hash });
            }
            Ok(out)
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.with(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}
