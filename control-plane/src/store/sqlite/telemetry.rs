//! Telemetry history on SQLite: tables `telemetry` (keyed by tenant, device, stream and seq,
//! so a record sent twice is stored once), `telemetry_streams` and `metric_hours`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use luach_schemas::{DeviceId, TenantId};
use rusqlite::{Row, params};
use serde_json::Value;

use super::{SqliteStore, corrupt, device_id, ms, tenant_id, time};
use crate::store::StoreResult;
use crate::store::backend::TelemetryBackend;
use crate::store::telemetry::{After, HourRow, StreamReport, TelemetryRow};

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn row_from(tenant: &TenantId, device: &DeviceId, row: &Row<'_>) -> StoreResult<TelemetryRow> {
    let body: String = row.get(5)?;
    Ok(TelemetryRow {
        tenant_id: tenant.clone(),
        device_id: device.clone(),
        stream: row.get(0)?,
        seq: count(row.get(1)?),
        at: time(row, 2, "at")?,
        received: time(row, 3, "received")?,
        kind: row.get(4)?,
        body: serde_json::from_str(&body).map_err(|e| corrupt("telemetry body", e))?,
    })
}

#[async_trait]
impl TelemetryBackend for SqliteStore {
    async fn insert_telemetry(&self, rows: &[TelemetryRow], streams: &[StreamReport]) -> StoreResult<u64> {
        let (rows, streams) = (rows.to_vec(), streams.to_vec());
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut new = 0;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO telemetry (tenant_id, device_id, stream, seq, at, received, kind, body) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for r in &rows {
                    let body = serde_json::to_string(&r.body).map_err(|e| corrupt("telemetry body", e))?;
                    new += insert.execute(params![
                        r.tenant_id.as_str(),
                        r.device_id.as_str(),
                        r.stream,
                        signed(r.seq),
                        ms(r.at),
                        ms(r.received),
                        r.kind,
                        body,
                    ])? as u64;
                }
                let mut report = tx.prepare_cached(
                    "INSERT INTO telemetry_streams (tenant_id, device_id, stream, dropped, highest_seq, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (tenant_id, device_id, stream) DO UPDATE SET \
                     dropped = max(dropped, excluded.dropped), highest_seq = max(highest_seq, excluded.highest_seq), \
                     updated_at = excluded.updated_at",
                )?;
                for s in &streams {
                    report.execute(params![
                        s.tenant_id.as_str(),
                        s.device_id.as_str(),
                        s.stream,
                        signed(s.dropped),
                        signed(s.highest_seq),
                        ms(s.updated_at),
                    ])?;
                }
            }
            tx.commit()?;
            Ok(new)
        })
        .await
    }

    async fn telemetry_records(
        &self,
        tenant: &TenantId,
        device: &DeviceId,
        kind: Option<&str>,
        after: Option<&After>,
        limit: u32,
    ) -> StoreResult<(Vec<TelemetryRow>, u64)> {
        let (tenant, device) = (tenant.clone(), device.clone());
        let kind = kind.map(str::to_owned);
        let (stream, seq) = after.map_or((String::new(), 0), |a| (a.stream.clone(), signed(a.seq)));
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT stream, seq, at, received, kind, body FROM telemetry \
                 WHERE tenant_id = ?1 AND device_id = ?2 AND (?3 IS NULL OR kind = ?3) \
                 AND (stream > ?4 OR (stream = ?4 AND seq > ?5)) ORDER BY stream, seq LIMIT ?6",
            )?;
            let mut rows = stmt.query(params![
                tenant.as_str(),
                device.as_str(),
                kind,
                stream,
                seq,
                i64::from(limit)
            ])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(row_from(&tenant, &device, row)?);
            }
            let total: i64 = conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM telemetry WHERE tenant_id = ?1 AND device_id = ?2 AND (?3 IS NULL OR kind = ?3)",
                )?
                .query_row(params![tenant.as_str(), device.as_str(), kind], |r| r.get(0))?;
            Ok((out, count(total)))
        })
        .await
    }

    async fn telemetry_streams(&self, tenant: &TenantId, device: &DeviceId) -> StoreResult<Vec<StreamReport>> {
        let (tenant, device) = (tenant.clone(), device.clone());
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT s.stream, s.dropped, s.highest_seq, s.updated_at, \
                 (SELECT COUNT(*) FROM telemetry t WHERE t.tenant_id = s.tenant_id AND t.device_id = s.device_id \
                  AND t.stream = s.stream) \
                 FROM telemetry_streams s WHERE s.tenant_id = ?1 AND s.device_id = ?2 ORDER BY s.updated_at DESC",
            )?;
            let mut rows = stmt.query(params![tenant.as_str(), device.as_str()])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(StreamReport {
                    tenant_id: tenant.clone(),
                    device_id: device.clone(),
                    stream: row.get(0)?,
                    dropped: count(row.get(1)?),
                    highest_seq: count(row.get(2)?),
                    updated_at: time(row, 3, "updated_at")?,
                    stored: count(row.get(4)?),
                    missing: 0,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn metric_samples(
        &self,
        tenant: &TenantId,
        device: &DeviceId,
        metric: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<(DateTime<Utc>, f64)>> {
        let (tenant, device) = (tenant.to_string(), device.to_string());
        let path = format!("$.{metric}");
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT at, json_extract(body, ?3) FROM telemetry WHERE tenant_id = ?1 AND device_id = ?2 \
                 AND kind = 'metrics' AND at >= ?4 AND at < ?5 ORDER BY at",
            )?;
            let mut rows = stmt.query(params![tenant, device, path, ms(from), ms(to)])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                if let Some(v) = row.get::<_, Option<f64>>(1)?.filter(|v| v.is_finite()) {
                    out.push((time(row, 0, "at")?, v));
                }
            }
            Ok(out)
        })
        .await
    }

    async fn metric_hours(
        &self,
        tenant: &TenantId,
        device: &DeviceId,
        metric: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<HourRow>> {
        let (tenant, device, metric) = (tenant.clone(), device.clone(), metric.to_owned());
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT hour, count, sum, min, max FROM metric_hours WHERE tenant_id = ?1 AND device_id = ?2 \
                 AND metric = ?3 AND hour >= ?4 AND hour < ?5 ORDER BY hour",
            )?;
            let mut rows = stmt.query(params![tenant.as_str(), device.as_str(), metric, ms(from), ms(to)])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(HourRow {
                    tenant_id: tenant.clone(),
                    device_id: device.clone(),
                    metric: metric.clone(),
                    hour: time(row, 0, "hour")?,
                    count: count(row.get(1)?),
                    sum: row.get(2)?,
                    min: row.get(3)?,
                    max: row.get(4)?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn telemetry_devices_before(&self, cutoff: DateTime<Utc>) -> StoreResult<Vec<(TenantId, DeviceId)>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached("SELECT DISTINCT tenant_id, device_id FROM telemetry WHERE at < ?1")?;
            let mut rows = stmt.query(params![ms(cutoff)])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push((
                    tenant_id(&row.get::<_, String>(0)?)?,
                    device_id(&row.get::<_, String>(1)?)?,
                ));
            }
            Ok(out)
        })
        .await
    }

    async fn metrics_before(
        &self,
        tenant: &TenantId,
        device: &DeviceId,
        cutoff: DateTime<Utc>,
    ) -> StoreResult<Vec<(DateTime<Utc>, Value)>> {
        let (tenant, device) = (tenant.to_string(), device.to_string());
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT at, body FROM telemetry WHERE tenant_id = ?1 AND device_id = ?2 AND kind = 'metrics' \
                 AND at < ?3 ORDER BY at",
            )?;
            let mut rows = stmt.query(params![tenant, device, ms(cutoff)])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let body: String = row.get(1)?;
                let body: Value = serde_json::from_str(&body).map_err(|e| corrupt("telemetry body", e))?;
                out.push((time(row, 0, "at")?, body));
            }
            Ok(out)
        })
        .await
    }

    async fn insert_hours_absent(&self, rows: &[HourRow]) -> StoreResult<()> {
        let rows = rows.to_vec();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO metric_hours (tenant_id, device_id, metric, hour, count, sum, min, max) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for h in &rows {
                    insert.execute(params![
                        h.tenant_id.as_str(),
                        h.device_id.as_str(),
                        h.metric,
                        ms(h.hour),
                        signed(h.count),
                        h.sum,
                        h.min,
                        h.max,
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn delete_telemetry_before(
        &self,
        tenant: &TenantId,
        device: &DeviceId,
        cutoff: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let (tenant, device) = (tenant.to_string(), device.to_string());
        self.write(move |conn| {
            Ok(conn.execute(
                "DELETE FROM telemetry WHERE tenant_id = ?1 AND device_id = ?2 AND at < ?3",
                params![tenant, device, ms(cutoff)],
            )? as u64)
        })
        .await
    }

    async fn delete_hours_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        self.write(move |conn| {
            Ok(conn.execute("DELETE FROM metric_hours WHERE hour < ?1", params![ms(cutoff)])? as u64)
        })
        .await
    }
}
