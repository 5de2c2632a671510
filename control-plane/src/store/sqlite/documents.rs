//! Documents on SQLite: one table, keyed by kind, tenant and id; bodies as JSON text.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use luach_schemas::TenantId;
use rusqlite::{Connection, Row, params};
use serde_json::Value;

use super::{SqliteStore, append_audit, corrupt, ms, tenant_id, time};
use crate::chain::Entry;
use crate::store::backend::DocBackend;
use crate::store::{DocKind, StoreResult, StoredDoc};

const COLUMNS: &str = "tenant_id, id, body, created_at, updated_at";

fn doc_from_row(row: &Row<'_>) -> StoreResult<StoredDoc> {
    let body: String = row.get(2)?;
    Ok(StoredDoc {
        tenant_id: tenant_id(&row.get::<_, String>(0)?)?,
        id: row.get(1)?,
        body: serde_json::from_str(&body).map_err(|e| corrupt("document body", e))?,
        created_at: time(row, 3, "created_at")?,
        updated_at: time(row, 4, "updated_at")?,
    })
}

fn get(conn: &Connection, kind: DocKind, tenant: &str, id: &str) -> StoreResult<Option<StoredDoc>> {
    let sql = format!("SELECT {COLUMNS} FROM documents WHERE kind = ?1 AND tenant_id = ?2 AND id = ?3");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![kind.as_str(), tenant, id])?;
    rows.next()?.map(doc_from_row).transpose()
}

#[async_trait]
impl DocBackend for SqliteStore {
    async fn list_docs(
        &self,
        tenant: &TenantId,
        kind: DocKind,
        limit: u32,
        after: Option<&str>,
    ) -> StoreResult<Vec<StoredDoc>> {
        let (tenant, after) = (tenant.to_string(), after.unwrap_or("").to_owned());
        self.read(move |conn| {
            let sql = format!(
                "SELECT {COLUMNS} FROM documents WHERE kind = ?1 AND tenant_id = ?2 AND id > ?3 ORDER BY id LIMIT ?4"
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

    async fn get_doc(&self, tenant: &TenantId, kind: DocKind, id: &str) -> StoreResult<Option<StoredDoc>> {
        let (tenant, id) = (tenant.to_string(), id.to_owned());
        self.read(move |conn| get(conn, kind, &tenant, &id)).await
    }

    async fn put_doc(
        &self,
        tenant: &TenantId,
        kind: DocKind,
        id: &str,
        body: &Value,
        now: DateTime<Utc>,
        audit: Entry,
    ) -> StoreResult<(StoredDoc, bool)> {
        let (tenant, id, body) = (tenant.clone(), id.to_owned(), body.clone());
        self.transaction(move |tx, key| {
            let existing = get(tx, kind, tenant.as_str(), &id)?;
            let created_at = existing.as_ref().map_or(now, |d| d.created_at);
            tx.execute(
                "INSERT INTO documents (kind, tenant_id, id, body, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (kind, tenant_id, id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
                params![kind.as_str(), tenant.as_str(), id, body.to_string(), ms(created_at), ms(now)],
            )?;
            append_audit(tx, audit, key)?;
            let stored = StoredDoc {
                tenant_id: tenant,
                id,
                body,
                created_at,
                updated_at: now,
            };
            Ok((stored, existing.is_none()))
        })
        .await
    }

    async fn delete_doc(&self, tenant: &TenantId, kind: DocKind, id: &str, audit: Entry) -> StoreResult<bool> {
        let (tenant, id) = (tenant.to_string(), id.to_owned());
        self.transaction(move |tx, key| {
            let n = tx.execute(
                "DELETE FROM documents WHERE kind = ?1 AND tenant_id = ?2 AND id = ?3",
                params![kind.as_str(), tenant, id],
            )?;
            if n > 0 {
                append_audit(tx, audit, key)?;
            }
            Ok(n > 0)
        })
        .await
    }

    async fn content_bytes(&self, tenant: &TenantId) -> StoreResult<u64> {
        let tenant = tenant.to_string();
        self.read(move |conn| {
            let n: i64 = conn
                .prepare_cached(
                    "SELECT COALESCE(SUM(LENGTH(CAST(body AS BLOB))), 0) FROM documents WHERE tenant_id = ?1",
                )?
                .query_row(params![tenant], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }
}
