//! Alerts on SQLite: table `alerts`, the filtered fields in columns and the whole record as
//! JSON beside them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use luach_schemas::TenantId;
use rusqlite::{Connection, params};

use super::{SqliteStore, append_audit, from_json, ms, to_json};
use crate::chain::Entry;
use crate::store::backend::AlertBackend;
use crate::store::{AlertFilter, AlertRecord, AlertState, Delivery, StoreResult};

fn alert_from(body: &str) -> StoreResult<AlertRecord> {
    from_json("alert", body)
}

fn write(conn: &Connection, a: &AlertRecord, insert: bool, from: Option<AlertState>) -> StoreResult<usize> {
    let body = to_json(a)?;
    Ok(if insert {
        conn.execute(
            "INSERT INTO alerts (tenant_id, id, rule_id, device_id, state, resolved_at, body) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                a.tenant_id.as_str(),
                a.id,
                a.rule_id,
                a.device_id.as_str(),
                a.state.as_str(),
                a.resolved_at.map(ms),
                body
            ],
        )?
    } else {
        conn.execute(
            "UPDATE alerts SET state = ?1, resolved_at = ?2, body = ?3 \
             WHERE tenant_id = ?4 AND id = ?5 AND state = ?6",
            params![
                a.state.as_str(),
                a.resolved_at.map(ms),
                body,
                a.tenant_id.as_str(),
                a.id,
                from.map(AlertState::as_str)
            ],
        )?
    })
}

#[async_trait]
impl AlertBackend for SqliteStore {
    async fn insert_alert(&self, alert: &AlertRecord, deliveries: &[Delivery]) -> StoreResult<()> {
        let (alert, deliveries) = (alert.clone(), deliveries.to_vec());
        self.transaction(move |tx, _| {
            write(tx, &alert, true, None)?;
            super::outbox::insert(tx, &deliveries)
        })
        .await
    }

    async fn get_alert(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<AlertRecord>> {
        let (tenant, id) = (tenant.to_string(), id.to_owned());
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached("SELECT body FROM alerts WHERE tenant_id = ?1 AND id = ?2")?;
            let mut rows = stmt.query(params![tenant, id])?;
            match rows.next()? {
                Some(row) => Ok(Some(alert_from(&row.get::<_, String>(0)?)?)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn list_alerts(
        &self,
        tenant: &TenantId,
        filter: &AlertFilter,
        limit: u32,
        after: Option<&str>,
    ) -> StoreResult<(Vec<AlertRecord>, u64)> {
        let tenant = tenant.to_string();
        let state = filter.state.map(AlertState::as_str);
        let device = filter.device.as_ref().map(ToString::to_string);
        let active = filter.active;
        let after = after.map(str::to_owned);
        self.read(move |conn| {
            let filter_sql = "tenant_id = ?1 AND (?2 IS NULL OR state = ?2) AND (?3 IS NULL OR device_id = ?3) \
                              AND (?4 = 0 OR state <> 'resolved')";
            let total: i64 = conn.query_row(
                &format!("SELECT COUNT(*) FROM alerts WHERE {filter_sql}"),
                params![tenant, state, device, active],
                |r| r.get(0),
            )?;
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT body FROM alerts WHERE {filter_sql} AND (?5 IS NULL OR id < ?5) ORDER BY id DESC LIMIT ?6"
            ))?;
            let mut rows = stmt.query(params![tenant, state, device, active, after, limit])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(alert_from(&row.get::<_, String>(0)?)?);
            }
            Ok((out, u64::try_from(total).unwrap_or(0)))
        })
        .await
    }

    async fn move_alert(
        &self,
        next: &AlertRecord,
        from: AlertState,
        audit: Option<Entry>,
        deliveries: &[Delivery],
    ) -> StoreResult<bool> {
        let (next, deliveries) = (next.clone(), deliveries.to_vec());
        self.transaction(move |tx, key| {
            let changed = write(tx, &next, false, Some(from))? == 1;
            if changed {
                if let Some(audit) = audit {
                    append_audit(tx, audit, key)?;
                }
                super::outbox::insert(tx, &deliveries)?;
            }
            Ok(changed)
        })
        .await
    }

    async fn delete_alerts_resolved_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        self.write(move |conn| {
            let n = conn.execute(
                "DELETE FROM alerts WHERE state = 'resolved' AND resolved_at < ?1",
                params![ms(cutoff)],
            )?;
            Ok(n as u64)
        })
        .await
    }
}
