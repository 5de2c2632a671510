//! The notification outbox on SQLite: table `deliveries`, the fields the sender selects on
//! (state, attempts, due time) in columns and the whole record as JSON beside them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use luach_schemas::TenantId;
use rusqlite::{Connection, params};

use super::{SqliteStore, from_json, ms, to_json};
use crate::store::backend::OutboxBackend;
use crate::store::{Delivery, DeliveryState, StoreResult};

/// Inserts `deliveries` (inside the caller's transaction).
pub(super) fn insert(conn: &Connection, deliveries: &[Delivery]) -> StoreResult<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO deliveries (tenant_id, id, state, attempts, next_at, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT DO NOTHING",
    )?;
    for d in deliveries {
        stmt.execute(params![
            d.tenant_id.as_str(),
            d.id,
            d.state.as_str(),
            d.attempts,
            ms(d.next_at),
            to_json(d)?
        ])?;
    }
    Ok(())
}

fn rows(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> StoreResult<Vec<Delivery>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(args)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(from_json("delivery", &row.get::<_, String>(0)?)?);
    }
    Ok(out)
}

#[async_trait]
impl OutboxBackend for SqliteStore {
    async fn insert_deliveries(&self, deliveries: &[Delivery]) -> StoreResult<()> {
        let deliveries = deliveries.to_vec();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            insert(&tx, &deliveries)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn due_deliveries(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Delivery>> {
        self.read(move |conn| {
            rows(
                conn,
                "SELECT body FROM deliveries WHERE state = ?1 AND next_at <= ?2 ORDER BY next_at, id LIMIT ?3",
                params![DeliveryState::Pending.as_str(), ms(now), limit],
            )
        })
        .await
    }

    async fn delete_deliveries_settled_below(&self, id_below: &str) -> StoreResult<u64> {
        let id_below = id_below.to_owned();
        self.write(move |conn| {
            let n = conn.execute(
                "DELETE FROM deliveries WHERE state != ?1 AND id < ?2",
                params![DeliveryState::Pending.as_str(), id_below],
            )?;
            Ok(n as u64)
        })
        .await
    }

    async fn settle_delivery(&self, next: &Delivery, attempts: u32) -> StoreResult<bool> {
        let next = next.clone();
        self.write(move |conn| {
            let n = conn.execute(
                "UPDATE deliveries SET state = ?1, attempts = ?2, next_at = ?3, body = ?4 \
                 WHERE tenant_id = ?5 AND id = ?6 AND state = ?7 AND attempts = ?8",
                params![
                    next.state.as_str(),
                    next.attempts,
                    ms(next.next_at),
                    to_json(&next)?,
                    next.tenant_id.as_str(),
                    next.id,
                    DeliveryState::Pending.as_str(),
                    attempts
                ],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn list_deliveries(
        &self,
        tenant: &TenantId,
        limit: u32,
        after: Option<&str>,
    ) -> StoreResult<(Vec<Delivery>, u64)> {
        let (tenant, after) = (tenant.to_string(), after.map(str::to_owned));
        self.read(move |conn| {
            let total: i64 = conn.query_row(
                "SELECT COUNT(*) FROM deliveries WHERE tenant_id = ?1",
                params![tenant],
                |r| r.get(0),
            )?;
            let items = rows(
                conn,
                "SELECT body FROM deliveries WHERE tenant_id = ?1 AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3",
                params![tenant, after, limit],
            )?;
            Ok((items, u64::try_from(total).unwrap_or(0)))
        })
        .await
    }
}
