//! Jobs and executions on SQLite: one row each; executions change by compare-and-set on
//! (state, attempt), many in one transaction.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use luach_schemas::{DeviceId, TenantId, TopicPrefix};
use rusqlite::{Connection, Row, params, params_from_iter, types::Value};

use super::{SqliteStore, append_audit, corrupt, device_id, from_ms, ms, tenant_id, time};
use crate::chain::Entry;
use crate::store::backend::JobBackend;
use crate::store::{
    Counts, ExecFilter, ExecState, ExecUpdate, Execution, JobFilter, JobMove, JobRecord, JobState, StoreError,
    StoreResult, Tally,
};

const JOB_COLUMNS: &str = "tenant_id, id, spec, state, reason, created_by, created_at, updated_at, expires_at, total, idem_key, idem_digest, \
     phase, phase_at";
const EXEC_COLUMNS: &str =
    "job_id, seq, device_id, state, attempt, command_id, detail, not_before, sent_at, deadline, updated_at";

fn job_from_row(row: &Row<'_>) -> StoreResult<JobRecord> {
    let state: String = row.get(3)?;
    let spec: String = row.get(2)?;
    let key: Option<String> = row.get(10)?;
    let digest: Option<String> = row.get(11)?;
    Ok(JobRecord {
        tenant_id: tenant_id(&row.get::<_, String>(0)?)?,
        id: row.get(1)?,
        spec: serde_json::from_str(&spec).map_err(|e| corrupt("job spec", e))?,
        state: JobState::parse(&state).ok_or_else(|| corrupt("job state", &state))?,
        reason: row.get(4)?,
        created_by: row.get(5)?,
        created_at: time(row, 6, "created_at")?,
        updated_at: time(row, 7, "updated_at")?,
        expires_at: time(row, 8, "expires_at")?,
        total: u64::try_from(row.get::<_, i64>(9)?).unwrap_or(0),
        idempotency: key.zip(digest),
        phase: row.get(12)?,
        phase_at: from_ms(row.get(13)?),
    })
}

fn exec_from_row(row: &Row<'_>) -> StoreResult<Execution> {
    let state: String = row.get(3)?;
    Ok(Execution {
        job_id: row.get(0)?,
        seq: row.get(1)?,
        device_id: device_id(&row.get::<_, String>(2)?)?,
        state: ExecState::parse(&state).ok_or_else(|| corrupt("execution state", &state))?,
        attempt: row.get(4)?,
        command_id: row.get(5)?,
        detail: row.get(6)?,
        not_before: from_ms(row.get(7)?),
        sent_at: from_ms(row.get(8)?),
        deadline: from_ms(row.get(9)?),
        updated_at: time(row, 10, "updated_at")?,
    })
}

fn get_job(conn: &Connection, tenant: &str, id: &str) -> StoreResult<Option<JobRecord>> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = ?1 AND id = ?2");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![tenant, id])?;
    rows.next()?.map(job_from_row).transpose()
}

fn insert_exec(conn: &Connection, tenant: &str, e: &Execution) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO executions (tenant_id, job_id, seq, device_id, state, attempt, command_id, detail, \
         not_before, sent_at, deadline, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        tenant,
        e.job_id,
        e.seq,
        e.device_id.as_str(),
        e.state.as_str(),
        e.attempt,
        e.command_id,
        e.detail,
        e.not_before.map(ms),
        e.sent_at.map(ms),
        e.deadline.map(ms),
        ms(e.updated_at),
    ])?;
    Ok(())
}

#[async_trait]
impl JobBackend for SqliteStore {
    async fn insert_job(&self, job: &JobRecord, executions: &[Execution], audit: Entry) -> StoreResult<()> {
        let job = job.clone();
        let executions = executions.to_vec();
        self.transaction(move |tx, key| {
            let spec = serde_json::to_string(&job.spec).map_err(|e| corrupt("job spec", e))?;
            let (idem_key, idem_digest) = job.idempotency.clone().unzip();
            let inserted = tx.execute(
                "INSERT INTO jobs (tenant_id, id, spec, state, reason, created_by, created_at, updated_at, \
                 expires_at, total, idem_key, idem_digest, phase, phase_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    job.tenant_id.as_str(),
                    job.id,
                    spec,
                    job.state.as_str(),
                    job.reason,
                    job.created_by,
                    ms(job.created_at),
                    ms(job.updated_at),
                    ms(job.expires_at),
                    i64::try_from(job.total).unwrap_or(i64::MAX),
                    idem_key,
                    idem_digest,
                    job.phase,
                    job.phase_at.map(ms),
                ],
            );
            match inserted {
                Ok(_) => {}
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                    return Err(StoreError::Conflict {
                        what: "a job with this idempotency key".into(),
                    });
                }
                Err(e) => return Err(e.into()),
            }
            for e in &executions {
                insert_exec(tx, job.tenant_id.as_str(), e)?;
            }
            append_audit(tx, audit, key)
        })
        .await
    }

    async fn get_job(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<JobRecord>> {
        let (tenant, id) = (tenant.to_string(), id.to_owned());
        self.read(move |conn| get_job(conn, &tenant, &id)).await
    }

    async fn job_by_key(&self, tenant: &TenantId, key: &str) -> StoreResult<Option<JobRecord>> {
        let (tenant, key) = (tenant.to_string(), key.to_owned());
        self.read(move |conn| {
            let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = ?1 AND idem_key = ?2");
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params![tenant, key])?;
            rows.next()?.map(job_from_row).transpose()
        })
        .await
    }

    async fn clear_job_key(&self, tenant: &TenantId, id: &str) -> StoreResult<()> {
        let (tenant, id) = (tenant.to_string(), id.to_owned());
        self.write(move |conn| {
            conn.execute(
                "UPDATE jobs SET idem_key = NULL, idem_digest = NULL WHERE tenant_id = ?1 AND id = ?2",
                params![tenant, id],
            )?;
            Ok(())
        })
        .await
    }

    async fn list_jobs(
        &self,
        tenant: &TenantId,
        filter: &JobFilter,
        limit: u32,
        after: Option<&str>,
    ) -> StoreResult<(Vec<JobRecord>, u64)> {
        let (tenant, filter, after) = (tenant.to_string(), filter.clone(), after.map(str::to_owned));
        self.read(move |conn| {
            let mut where_sql = String::from("tenant_id = ?");
            let mut args: Vec<Value> = vec![Value::Text(tenant)];
            if let Some(state) = filter.state {
                where_sql.push_str(" AND state = ?");
                args.push(Value::Text(state.as_str().to_owned()));
            }
            let total: i64 = conn.query_row(
                &format!("SELECT COUNT(*) FROM jobs WHERE {where_sql}"),
                params_from_iter(args.iter()),
                |r| r.get(0),
            )?;
            if let Some(after) = after {
                where_sql.push_str(" AND id < ?");
                args.push(Value::Text(after));
            }
            args.push(Value::Integer(i64::from(limit)));
            let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE {where_sql} ORDER BY id DESC LIMIT ?");
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params_from_iter(args.iter()))?;
            let mut items = Vec::new();
            while let Some(row) = rows.next()? {
                items.push(job_from_row(row)?);
            }
            Ok((items, u64::try_from(total).unwrap_or(0)))
        })
        .await
    }

    async fn set_job_state(
        &self,
        tenant: &TenantId,
        id: &str,
        change: &JobMove,
        audit: Option<Entry>,
    ) -> StoreResult<bool> {
        let (from, to, reason, now) = (change.from, change.to, change.reason.as_deref(), change.at);
        let (tenant, id, reason) = (tenant.to_string(), id.to_owned(), reason.map(str::to_owned));
        self.transaction(move |tx, key| {
            let n = tx.execute(
                "UPDATE jobs SET state = ?1, reason = ?2, updated_at = ?3 WHERE tenant_id = ?4 AND id = ?5 AND state = ?6",
                params![to.as_str(), reason, ms(now), tenant, id, from.as_str()],
            )?;
            if n == 1
                && let Some(audit) = audit
            {
                append_audit(tx, audit, key)?;
            }
            Ok(n == 1)
        })
        .await
    }

    async fn job_counts(&self, tenant: &TenantId, id: &str, seqs: Range<u32>) -> StoreResult<Tally> {
        let (tenant, id) = (tenant.to_string(), id.to_owned());
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT state, COUNT(*), SUM(attempt > 0), MAX(updated_at) FROM executions \
                 WHERE tenant_id = ?1 AND job_id = ?2 AND seq >= ?3 AND seq < ?4 GROUP BY state",
            )?;
            let mut rows = stmt.query(params![tenant, id, seqs.start, seqs.end])?;
            let mut map = BTreeMap::new();
            let mut tally = Tally::default();
            while let Some(row) = rows.next()? {
                let state: String = row.get(0)?;
                let state = ExecState::parse(&state).ok_or_else(|| corrupt("execution state", &state))?;
                map.insert(state, u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0));
                tally.ever_sent += u64::try_from(row.get::<_, Option<i64>>(2)?.unwrap_or(0)).unwrap_or(0);
                if state.is_final() {
                    tally.last_final = tally.last_final.max(from_ms(row.get(3)?));
                }
            }
            tally.counts = Counts::from_map(&map);
            Ok(tally)
        })
        .await
    }

    async fn set_job_phase(
        &self,
        tenant: &TenantId,
        id: &str,
        from: u32,
        to: u32,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let (tenant, id) = (tenant.to_string(), id.to_owned());
        self.write(move |conn| {
            let n = conn.execute(
                "UPDATE jobs SET phase = ?1, phase_at = ?2, updated_at = ?2 WHERE tenant_id = ?3 AND id = ?4 AND phase = ?5",
                params![to, ms(at), tenant, id, from],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn list_executions(
        &self,
        tenant: &TenantId,
        job: &str,
        filter: &ExecFilter,
        limit: u32,
        after: Option<u32>,
    ) -> StoreResult<(Vec<Execution>, u64)> {
        let (tenant, job, filter) = (tenant.to_string(), job.to_owned(), filter.clone());
        self.read(move |conn| {
            let mut where_sql = String::from("tenant_id = ? AND job_id = ?");
            let mut args: Vec<Value> = vec![Value::Text(tenant), Value::Text(job)];
            if let Some(state) = filter.state {
                where_sql.push_str(" AND state = ?");
                args.push(Value::Text(state.as_str().to_owned()));
            }
            if let Some(device) = filter.device {
                where_sql.push_str(" AND device_id = ?");
                args.push(Value::Text(device.to_string()));
            }
            let total: i64 = conn.query_row(
                &format!("SELECT COUNT(*) FROM executions WHERE {where_sql}"),
                params_from_iter(args.iter()),
                |r| r.get(0),
            )?;
            if let Some(after) = after {
                where_sql.push_str(" AND seq > ?");
                args.push(Value::Integer(i64::from(after)));
            }
            args.push(Value::Integer(i64::from(limit)));
            let sql = format!("SELECT {EXEC_COLUMNS} FROM executions WHERE {where_sql} ORDER BY seq LIMIT ?");
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params_from_iter(args.iter()))?;
            let mut items = Vec::new();
            while let Some(row) = rows.next()? {
                items.push(exec_from_row(row)?);
            }
            Ok((items, u64::try_from(total).unwrap_or(0)))
        })
        .await
    }

    async fn device_executions(&self, tenant: &TenantId, device: &DeviceId, limit: u32) -> StoreResult<Vec<Execution>> {
        let (tenant, device) = (tenant.to_string(), device.to_string());
        self.read(move |conn| {
            let sql = format!(
                "SELECT {EXEC_COLUMNS} FROM executions WHERE tenant_id = ?1 AND device_id = ?2 \
                 ORDER BY job_id DESC LIMIT ?3"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params![tenant, device, i64::from(limit)])?;
            let mut items = Vec::new();
            while let Some(row) = rows.next()? {
                items.push(exec_from_row(row)?);
            }
            Ok(items)
        })
        .await
    }

    async fn get_execution(&self, tenant: &TenantId, job: &str, seq: u32) -> StoreResult<Option<Execution>> {
        let (tenant, job) = (tenant.to_string(), job.to_owned());
        self.read(move |conn| {
            let sql =
                format!("SELECT {EXEC_COLUMNS} FROM executions WHERE tenant_id = ?1 AND job_id = ?2 AND seq = ?3");
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params![tenant, job, seq])?;
            rows.next()?.map(exec_from_row).transpose()
        })
        .await
    }

    async fn update_executions(&self, tenant: &TenantId, job: &str, updates: &[ExecUpdate]) -> StoreResult<Vec<bool>> {
        let (tenant, job, updates) = (tenant.to_string(), job.to_owned(), updates.to_vec());
        self.transaction(move |tx, _| {
            let mut stmt = tx.prepare_cached(
                "UPDATE executions SET state = ?1, attempt = ?2, command_id = ?3, detail = ?4, not_before = ?5, \
                 sent_at = ?6, deadline = ?7, updated_at = ?8 \
                 WHERE tenant_id = ?9 AND job_id = ?10 AND seq = ?11 AND state = ?12 AND attempt = ?13",
            )?;
            let mut applied = Vec::with_capacity(updates.len());
            for u in &updates {
                let n = &u.next;
                let changed = stmt.execute(params![
                    n.state.as_str(),
                    n.attempt,
                    n.command_id,
                    n.detail,
                    n.not_before.map(ms),
                    n.sent_at.map(ms),
                    n.deadline.map(ms),
                    ms(n.updated_at),
                    tenant,
                    job,
                    u.seq,
                    u.from.as_str(),
                    u.attempt,
                ])?;
                applied.push(changed == 1);
            }
            Ok(applied)
        })
        .await
    }

    async fn move_executions(
        &self,
        tenant: &TenantId,
        job: &str,
        from: ExecState,
        to: ExecState,
        detail: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let (tenant, job, detail) = (tenant.to_string(), job.to_owned(), detail.to_owned());
        self.write(move |conn| {
            let n = conn.execute(
                "UPDATE executions SET state = ?1, detail = ?2, updated_at = ?3 \
                 WHERE tenant_id = ?4 AND job_id = ?5 AND state = ?6",
                params![to.as_str(), detail, ms(now), tenant, job, from.as_str()],
            )?;
            Ok(n as u64)
        })
        .await
    }

    async fn delete_jobs_ended_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        // A batch of jobs per transaction, so the one writer is never held for long.
        const BATCH: i64 = 200;
        const ENDED: &str = "SELECT tenant_id, id FROM jobs WHERE state IN ('completed', 'aborted', 'cancelled') \
                             AND updated_at < ?1 ORDER BY tenant_id, id LIMIT ?2";
        let cutoff = cutoff.timestamp_millis();
        let mut deleted = 0;
        loop {
            let n = self
                .transaction(move |tx, _| {
                    tx.execute(
                        &format!("DELETE FROM executions WHERE (tenant_id, job_id) IN ({ENDED})"),
                        params![cutoff, BATCH],
                    )?;
                    let jobs = tx.execute(
                        &format!("DELETE FROM jobs WHERE (tenant_id, id) IN ({ENDED})"),
                        params![cutoff, BATCH],
                    )?;
                    Ok(u64::try_from(jobs).unwrap_or(u64::MAX))
                })
                .await?;
            deleted += n;
            if n < BATCH.unsigned_abs() {
                return Ok(deleted);
            }
        }
    }

    async fn active_jobs(&self) -> StoreResult<Vec<JobRecord>> {
        self.read(move |conn| {
            let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE state IN ('running', 'paused') ORDER BY id");
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query([])?;
            let mut items = Vec::new();
            while let Some(row) = rows.next()? {
                items.push(job_from_row(row)?);
            }
            Ok(items)
        })
        .await
    }

    async fn online_prefixes(
        &self,
        tenant: &TenantId,
        devices: &[DeviceId],
    ) -> StoreResult<HashMap<DeviceId, TopicPrefix>> {
        let tenant = tenant.to_string();
        let wanted: Vec<String> = devices.iter().map(ToString::to_string).collect();
        self.read(move |conn| super::ingest::device_prefixes(conn, &wanted, Some(&tenant)))
            .await
    }
}
