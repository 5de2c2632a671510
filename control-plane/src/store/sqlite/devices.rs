//! Devices on SQLite: one row each; operator fields change by compare-and-set on `revision`.

use async_trait::async_trait;
use luach_schemas::messages::Metrics;
use luach_schemas::{DeviceId, TenantId};
use rusqlite::{Connection, Row, params, params_from_iter, types::Value};

use super::{SqliteStore, append_audit, corrupt, device_id, from_ms, ms, tenant_id, time, to_json};
use crate::chain::Entry;
use crate::store::backend::DeviceBackend;
use crate::store::{Device, DeviceFilter, DeviceStatus, Page, PageRequest, StoreError, StoreResult};

pub(super) const COLUMNS: &str = "id, tenant_id, name, tags, grp, notes, status, last_seen, agent_version, \
                                  platform, ip, metrics, metrics_at, created_at, updated_at, revision, board, \
                                  drops, bundle_sha256, bundle_fetched_at";

pub(super) fn device_from_row(row: &Row<'_>) -> StoreResult<Device> {
    let tags: String = row.get(3)?;
    let status: String = row.get(6)?;
    let metrics: Option<String> = row.get(11)?;
    Ok(Device {
        id: device_id(&row.get::<_, String>(0)?)?,
        tenant_id: tenant_id(&row.get::<_, String>(1)?)?,
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
        created_at: time(row, 13, "created_at")?,
        updated_at: time(row, 14, "updated_at")?,
        revision: row.get(15)?,
        board: serde_json::from_str(&row.get::<_, String>(16)?).map_err(|e| corrupt("board", e))?,
        drops: u64::try_from(row.get::<_, i64>(17)?).unwrap_or(0),
        bundle_sha256: row.get(18)?,
        bundle_fetched_at: from_ms(row.get(19)?),
    })
}

fn get(conn: &Connection, tenant: &str, id: &str) -> StoreResult<Option<Device>> {
    let sql = format!("SELECT {COLUMNS} FROM devices WHERE tenant_id = ?1 AND id = ?2");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![tenant, id])?;
    rows.next()?.map(device_from_row).transpose()
}

#[async_trait]
impl DeviceBackend for SqliteStore {
    async fn list_devices(
        &self,
        tenant: &TenantId,
        filter: &DeviceFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Device>> {
        let (tenant, filter, page) = (tenant.to_string(), filter.clone(), page.clone());
        self.read(move |conn| {
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
            // One extra row tells whether another page follows.
            args.push(Value::Integer(i64::from(page.limit) + 1));
            let sql = format!("SELECT {COLUMNS} FROM devices WHERE {where_sql} ORDER BY id LIMIT ?");
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params_from_iter(args.iter()))?;
            let mut items = Vec::new();
            while let Some(row) = rows.next()? {
                items.push(device_from_row(row)?);
            }
            Ok(Page::from_fetched(
                items,
                page.limit,
                u64::try_from(total).unwrap_or(0),
                |d| d.id.to_string(),
            ))
        })
        .await
    }

    async fn get_device(&self, tenant: &TenantId, id: &DeviceId) -> StoreResult<Option<Device>> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.read(move |conn| get(conn, &tenant, &id)).await
    }

    async fn count_devices(&self, tenant: &TenantId) -> StoreResult<u64> {
        let tenant = tenant.to_string();
        self.read(move |conn| {
            let n: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM devices WHERE tenant_id = ?1")?
                .query_row(params![tenant], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn insert_device(&self, device: &Device, audit: Entry) -> StoreResult<()> {
        let d = device.clone();
        self.transaction(move |tx, key| {
            let inserted = tx.execute(
                "INSERT INTO devices (id, tenant_id, name, tags, grp, notes, status, created_at, updated_at, revision, prefix, board) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?1, ?11) ON CONFLICT DO NOTHING",
                params![
                    d.id.as_str(),
                    d.tenant_id.as_str(),
                    d.name,
                    to_json(&d.tags)?,
                    d.group,
                    d.notes,
                    d.status.as_str(),
                    ms(d.created_at),
                    ms(d.updated_at),
                    d.revision,
                    to_json(&d.board)?,
                ],
            )?;
            if inserted == 0 {
                return Err(StoreError::Conflict {
                    what: format!("device {}", d.id),
                });
            }
            append_audit(tx, audit, key)
        })
        .await
    }

    async fn replace_device(&self, device: &Device, expected: i64, audit: Entry) -> StoreResult<bool> {
        let d = device.clone();
        self.transaction(move |tx, key| {
            let n = tx.execute(
                "UPDATE devices SET name = ?1, tags = ?2, grp = ?3, notes = ?4, updated_at = ?5, revision = ?6, \
                 board = ?10 WHERE tenant_id = ?7 AND id = ?8 AND revision = ?9",
                params![
                    d.name,
                    to_json(&d.tags)?,
                    d.group,
                    d.notes,
                    ms(d.updated_at),
                    d.revision,
                    d.tenant_id.as_str(),
                    d.id.as_str(),
                    expected,
                    to_json(&d.board)?
                ],
            )?;
            if n == 1 {
                append_audit(tx, audit, key)?;
            }
            Ok(n == 1)
        })
        .await
    }

    async fn delete_device(&self, tenant: &TenantId, id: &DeviceId, audit: Entry) -> StoreResult<bool> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.transaction(move |tx, key| {
            let deleted = tx.execute(
                "DELETE FROM devices WHERE tenant_id = ?1 AND id = ?2",
                params![tenant, id],
            )? > 0;
            if deleted {
                // Its history goes with it.
                for table in ["telemetry", "telemetry_streams", "metric_hours"] {
                    tx.execute(
                        &format!("DELETE FROM {table} WHERE tenant_id = ?1 AND device_id = ?2"),
                        params![tenant, id],
                    )?;
                }
                append_audit(tx, audit, key)?;
            }
            Ok(deleted)
        })
        .await
    }

    async fn record_bundle_fetch(
        &self,
        tenant: &TenantId,
        id: &DeviceId,
        sha256: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<()> {
        let (tenant, id, sha256) = (tenant.to_string(), id.to_string(), sha256.to_owned());
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE devices SET bundle_sha256 = ?1, bundle_fetched_at = ?2 \
                 WHERE tenant_id = ?3 AND id = ?4 AND COALESCE(bundle_fetched_at, 0) <= ?2",
            )?
            .execute(params![sha256, ms(at), tenant, id])?;
            Ok(())
        })
        .await
    }
}
