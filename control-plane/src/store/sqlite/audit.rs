//! Audit chains on SQLite: one row per record, keyed by (tenant, seq); the record as JSON.

use async_trait::async_trait;
use rusqlite::params;

use super::{SqliteStore, append_audit, from_json};
use crate::chain::{AuditRecord, Entry, Head, Heads};
use crate::store::StoreResult;
use crate::store::backend::AuditBackend;

#[async_trait]
impl AuditBackend for SqliteStore {
    async fn append_audit(&self, audit: Entry) -> StoreResult<()> {
        self.transaction(move |tx, key| append_audit(tx, audit, key)).await
    }

    async fn audit_records(&self, tenant: &str, after: i64, limit: Option<u32>) -> StoreResult<Vec<AuditRecord>> {
        let tenant = tenant.to_owned();
        let limit = limit.map_or(-1, i64::from);
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT body FROM audit WHERE tenant = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3")?;
            let mut rows = stmt.query(params![tenant, after, limit])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(from_json("audit record", &row.get::<_, String>(0)?)?);
            }
            Ok(out)
        })
        .await
    }

    async fn audit_heads(&self) -> StoreResult<Heads> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT a.tenant, a.body FROM audit a JOIN (SELECT tenant, MAX(seq) AS seq FROM audit GROUP BY tenant) m \
                 ON a.tenant = m.tenant AND a.seq = m.seq",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Heads::new();
            while let Some(row) = rows.next()? {
                let tenant: String = row.get(0)?;
                let r: AuditRecord = from_json("audit record", &row.get::<_, String>(1)?)?;
                out.insert(tenant, Head { seq: r.seq, hash: r.hash });
            }
            Ok(out)
        })
        .await
    }
}
