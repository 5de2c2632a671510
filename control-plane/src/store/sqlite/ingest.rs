//! The ingest pipeline's operations on SQLite: prefix resolution, development registration,
//! presence batches in one transaction of prepared statements.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use luach_schemas::{DeviceId, TenantId, TopicPrefix};
use rusqlite::{Connection, params, params_from_iter};

use super::{SqliteStore, device_id, ms, prefix, tenant_id, to_json};
use crate::store::backend::IngestBackend;
use crate::store::{DeviceStatus, PresenceWrite, StoreResult};

/// SQLite caps bound parameters; 500 per query stays far below every build's limit.
const CHUNK: usize = 500;

/// The topic prefix of each of `devices` that has one; with `online_in`, only of the devices
/// of that tenant that are online now.
pub(super) fn device_prefixes(
    conn: &Connection,
    devices: &[String],
    online_in: Option<&str>,
) -> StoreResult<HashMap<DeviceId, TopicPrefix>> {
    let scope = if online_in.is_some() {
        "tenant_id = ? AND status = 'online' AND"
    } else {
        ""
    };
    let mut found = HashMap::new();
    for chunk in devices.chunks(CHUNK) {
        let marks = vec!["?"; chunk.len()].join(",");
        let mut stmt = conn.prepare(&format!(
            "SELECT id, prefix FROM devices WHERE {scope} id IN ({marks}) AND prefix IS NOT NULL"
        ))?;
        let args = online_in.into_iter().chain(chunk.iter().map(String::as_str));
        let mut rows = stmt.query(params_from_iter(args))?;
        while let Some(row) = rows.next()? {
            found.insert(
                device_id(&row.get::<_, String>(0)?)?,
                prefix(&row.get::<_, String>(1)?)?,
            );
        }
    }
    Ok(found)
}

#[async_trait]
impl IngestBackend for SqliteStore {
    async fn resolve_prefixes(
        &self,
        prefixes: &[TopicPrefix],
    ) -> StoreResult<HashMap<TopicPrefix, (DeviceId, TenantId)>> {
        let wanted: Vec<String> = prefixes.iter().map(ToString::to_string).collect();
        self.read(move |conn| {
            let mut found = HashMap::new();
            for chunk in wanted.chunks(CHUNK) {
                let marks = vec!["?"; chunk.len()].join(",");
                let mut stmt = conn.prepare(&format!(
                    "SELECT prefix, id, tenant_id FROM devices WHERE prefix IN ({marks})"
                ))?;
                let mut rows = stmt.query(params_from_iter(chunk.iter()))?;
                while let Some(row) = rows.next()? {
                    found.insert(
                        prefix(&row.get::<_, String>(0)?)?,
                        (
                            device_id(&row.get::<_, String>(1)?)?,
                            tenant_id(&row.get::<_, String>(2)?)?,
                        ),
                    );
                }
            }
            Ok(found)
        })
        .await
    }

    async fn prefixes_of(&self, devices: &[DeviceId]) -> StoreResult<HashMap<DeviceId, TopicPrefix>> {
        let wanted: Vec<String> = devices.iter().map(ToString::to_string).collect();
        self.read(move |conn| device_prefixes(conn, &wanted, None)).await
    }

    async fn register_devices(&self, tenant: &TenantId, ids: &[DeviceId], now: DateTime<Utc>) -> StoreResult<()> {
        let tenant = tenant.to_string();
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            {
                // A device with any certificate history was enrolled: a revoked or deleted
                // device must not come back this way.
                let mut insert = tx.prepare_cached(
                    "INSERT INTO devices (id, tenant_id, name, created_at, updated_at, prefix) \
                     SELECT ?1, ?2, ?1, ?3, ?3, ?1 WHERE NOT EXISTS \
                     (SELECT 1 FROM certificates WHERE device_id = ?1) \
                     ON CONFLICT DO NOTHING",
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

    async fn apply_presence(&self, batch: &[PresenceWrite]) -> StoreResult<Vec<(DeviceId, DeviceStatus)>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let batch = batch.to_vec();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let mut moved = Vec::new();
            {
                let mut seen =
                    tx.prepare_cached("UPDATE devices SET last_seen = MAX(COALESCE(last_seen, 0), ?1) WHERE id = ?2")?;
                let mut status = tx.prepare_cached(
                    "UPDATE devices SET status = ?1, drops = drops + (?1 = 'offline') \
                     WHERE id = ?2 AND status IS NOT ?1",
                )?;
                let mut hello =
                    tx.prepare_cached("UPDATE devices SET agent_version = ?1, platform = ?2, ip = ?3 WHERE id = ?4")?;
                let mut metrics =
                    tx.prepare_cached("UPDATE devices SET metrics = ?1, metrics_at = ?2 WHERE id = ?3")?;
                for w in &batch {
                    let id = w.device.as_str();
                    if let Some(t) = w.last_seen {
                        seen.execute(params![ms(t), id])?;
                    }
                    if let Some(s) = w.status
                        && status.execute(params![s.as_str(), id])? > 0
                    {
                        moved.push((w.device.clone(), s));
                    }
                    if let Some(h) = &w.hello {
                        hello.execute(params![h.agent_version, h.platform, h.ip, id])?;
                    }
                    if let Some((m, at)) = &w.metrics {
                        metrics.execute(params![to_json(m)?, ms(*at), id])?;
                    }
                }
            }
            tx.commit()?;
            Ok(moved)
        })
        .await
    }

    async fn mark_all_offline(&self) -> StoreResult<u64> {
        self.write(|conn| {
            let n = conn.execute("UPDATE devices SET status = 'offline' WHERE status = 'online'", [])?;
            Ok(n as u64)
        })
        .await
    }

    async fn expire_presence(&self, cutoff: DateTime<Utc>) -> StoreResult<Vec<(DeviceId, TenantId)>> {
        self.write(move |conn| {
            let mut stmt = conn.prepare_cached(
                "UPDATE devices SET status = 'offline', drops = drops + 1
                 WHERE status = 'online' AND COALESCE(last_seen, 0) < ?1
                 RETURNING id, tenant_id",
            )?;
            let mut rows = stmt.query(params![ms(cutoff)])?;
            let mut moved = Vec::new();
            while let Some(row) = rows.next()? {
                moved.push((
                    device_id(&row.get::<_, String>(0)?)?,
                    tenant_id(&row.get::<_, String>(1)?)?,
                ));
            }
            Ok(moved)
        })
        .await
    }

    async fn count_online(&self) -> StoreResult<u64> {
        self.read(|conn| {
            let n: i64 = conn.query_row("SELECT COUNT(*) FROM devices WHERE status = 'online'", [], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }
}
