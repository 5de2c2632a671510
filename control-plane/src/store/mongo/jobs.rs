//! Jobs and executions on MongoDB: collections `jobs` (`_id` = job id) and `executions`
//! (`_id` = `{job}:{seq}`), every filter carrying the tenant. A job and its executions are
//! inserted in one transaction; executions change by compare-and-set on (state, attempt).

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use async_trait::async_trait;
use bson::{Bson, Document, doc};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use luach_schemas::{DeviceId, TenantId, TopicPrefix};
use mongodb::Collection;

use super::{MongoStore, corrupt, is_duplicate_key, ms, optional_text, parsed, required_time, retrying, text, time};
use crate::chain::Entry;
use crate::store::backend::JobBackend;
use crate::store::{
    Counts, ExecFilter, ExecState, ExecUpdate, Execution, JobFilter, JobMove, JobRecord, JobState, StoreError,
    StoreResult, Tally,
};

/// Executions inserted or looked up per round trip.
const CHUNK: usize = 1_000;

fn job_doc(job: &JobRecord) -> StoreResult<Document> {
    let mut d = doc! {
        "_id": &job.id,
        "tenant_id": job.tenant_id.as_str(),
        "spec": bson::to_bson(&job.spec).map_err(|e| corrupt("job spec", e))?,
        "state": job.state.as_str(),
        "reason": job.reason.clone(),
        "created_by": &job.created_by,
        "created_at": ms(job.created_at),
        "updated_at": ms(job.updated_at),
        "expires_at": ms(job.expires_at),
        "total": i64::try_from(job.total).unwrap_or(i64::MAX),
        "phase": i64::from(job.phase),
        "phase_at": job.phase_at.map(ms),
    };
    if let Some((key, digest)) = &job.idempotency {
        d.insert("idem_key", key);
        d.insert("idem_digest", digest);
    }
    Ok(d)
}

fn job_from(d: &Document) -> StoreResult<JobRecord> {
    let state = text(d, "state")?;
    let spec = d.get("spec").cloned().unwrap_or(Bson::Null);
    Ok(JobRecord {
        id: text(d, "_id")?,
        tenant_id: parsed(d, "tenant_id", TenantId::parse)?,
        spec: serde_json::to_value(spec.into_relaxed_extjson()).map_err(|e| corrupt("job spec", e))?,
        state: JobState::parse(&state).ok_or_else(|| corrupt("job state", &state))?,
        reason: optional_text(d, "reason"),
        created_by: text(d, "created_by")?,
        created_at: required_time(d, "created_at")?,
        updated_at: required_time(d, "updated_at")?,
        expires_at: required_time(d, "expires_at")?,
        total: u64::try_from(d.get_i64("total").unwrap_or(0)).unwrap_or(0),
        idempotency: optional_text(d, "idem_key").zip(optional_text(d, "idem_digest")),
        phase: u32::try_from(d.get_i64("phase").unwrap_or(0)).unwrap_or(0),
        phase_at: time(d, "phase_at"),
    })
}

fn exec_fields(e: &Execution) -> Document {
    doc! {
        "state": e.state.as_str(),
        "attempt": i64::from(e.attempt),
        "command_id": e.command_id.clone(),
        "detail": e.detail.clone(),
        "not_before": e.not_before.map(ms),
        "sent_at": e.sent_at.map(ms),
        "deadline": e.deadline.map(ms),
        "updated_at": ms(e.updated_at),
    }
}

fn exec_doc(tenant: &TenantId, e: &Execution) -> Document {
    let mut d = doc! {
        "_id": format!("{}:{}", e.job_id, e.seq),
        "tenant_id": tenant.as_str(),
        "job_id": &e.job_id,
        "seq": i64::from(e.seq),
        "device_id": e.device_id.as_str(),
    };
    d.extend(exec_fields(e));
    d
}

fn small(d: &Document, key: &str) -> StoreResult<u32> {
    let v = d.get_i64(key).map_err(|e| corrupt(key, e))?;
    u32::try_from(v).map_err(|e| corrupt(key, e))
}

fn exec_from(d: &Document) -> StoreResult<Execution> {
    let state = text(d, "state")?;
    Ok(Execution {
        job_id: text(d, "job_id")?,
        device_id: parsed(d, "device_id", DeviceId::parse)?,
        seq: small(d, "seq")?,
        state: ExecState::parse(&state).ok_or_else(|| corrupt("execution state", &state))?,
        attempt: small(d, "attempt")?,
        command_id: optional_text(d, "command_id"),
        detail: optional_text(d, "detail"),
        not_before: time(d, "not_before"),
        sent_at: time(d, "sent_at"),
        deadline: time(d, "deadline"),
        updated_at: required_time(d, "updated_at")?,
    })
}

impl MongoStore {
    fn jobs(&self) -> Collection<Document> {
        self.collection("jobs")
    }

    fn executions(&self) -> Collection<Document> {
        self.collection("executions")
    }
}

#[async_trait]
impl JobBackend for MongoStore {
    async fn insert_job(&self, job: &JobRecord, executions: &[Execution], audit: Entry) -> StoreResult<()> {
        let job_d = job_doc(job)?;
        let exec_docs: Vec<Document> = executions.iter().map(|e| exec_doc(&job.tenant_id, e)).collect();
        retrying(|| async {
            let mut session = self.begin().await?;
            match self.jobs().insert_one(job_d.clone()).session(&mut session).await {
                Ok(_) => {}
                Err(e) if is_duplicate_key(&e) => {
                    return Err(StoreError::Conflict {
                        what: "a job with this idempotency key".into(),
                    });
                }
                Err(e) => return Err(e.into()),
            }
            for chunk in exec_docs.chunks(CHUNK) {
                self.executions()
                    .insert_many(chunk.to_vec())
                    .session(&mut session)
                    .await?;
            }
            self.append_audit(&mut session, audit.clone()).await?;
            session.commit_transaction().await?;
            Ok(())
        })
        .await
    }

    async fn get_job(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<JobRecord>> {
        self.jobs()
            .find_one(doc! {"tenant_id": tenant.as_str(), "_id": id})
            .await?
            .as_ref()
            .map(job_from)
            .transpose()
    }

    async fn job_by_key(&self, tenant: &TenantId, key: &str) -> StoreResult<Option<JobRecord>> {
        self.jobs()
            .find_one(doc! {"tenant_id": tenant.as_str(), "idem_key": key})
            .await?
            .as_ref()
            .map(job_from)
            .transpose()
    }

    async fn clear_job_key(&self, tenant: &TenantId, id: &str) -> StoreResult<()> {
        self.jobs()
            .update_one(
                doc! {"tenant_id": tenant.as_str(), "_id": id},
                doc! {"$unset": {"idem_key": "", "idem_digest": ""}},
            )
            .await?;
        Ok(())
    }

    async fn list_jobs(
        &self,
        tenant: &TenantId,
        filter: &JobFilter,
        limit: u32,
        after: Option<&str>,
    ) -> StoreResult<(Vec<JobRecord>, u64)> {
        let mut query = doc! {"tenant_id": tenant.as_str()};
        if let Some(state) = filter.state {
            query.insert("state", state.as_str());
        }
        let (docs, total) = self.newest_first("jobs", query, limit, after).await?;
        Ok((docs.iter().map(job_from).collect::<StoreResult<_>>()?, total))
    }

    async fn set_job_state(
        &self,
        tenant: &TenantId,
        id: &str,
        change: &JobMove,
        audit: Option<Entry>,
    ) -> StoreResult<bool> {
        let (from, to, reason, now) = (change.from, change.to, change.reason.as_deref(), change.at);
        let filter = doc! {"tenant_id": tenant.as_str(), "_id": id, "state": from.as_str()};
        let update = doc! {"$set": {"state": to.as_str(), "reason": reason, "updated_at": ms(now)}};
        match audit {
            None => Ok(self.jobs().update_one(filter, update).await?.matched_count == 1),
            Some(audit) => {
                retrying(|| async {
                    let mut session = self.begin().await?;
                    let r = self
                        .jobs()
                        .update_one(filter.clone(), update.clone())
                        .session(&mut session)
                        .await?;
                    self.commit_audited(session, r.matched_count == 1, &audit).await
                })
                .await
            }
        }
    }

    async fn job_counts(&self, tenant: &TenantId, id: &str, seqs: Range<u32>) -> StoreResult<Tally> {
        let pipeline = vec![
            doc! {"$match": {
                "tenant_id": tenant.as_str(),
                "job_id": id,
                "seq": {"$gte": i64::from(seqs.start), "$lt": i64::from(seqs.end)},
            }},
            doc! {"$group": {
                "_id": "$state",
                "n": {"$sum": 1},
                "sent": {"$sum": {"$cond": [{"$gt": ["$attempt", 0]}, 1, 0]}},
                "last": {"$max": "$updated_at"},
            }},
        ];
        let mut cursor = self.executions().aggregate(pipeline).await?;
        let mut map = BTreeMap::new();
        let mut tally = Tally::default();
        let number = |d: &Document, key: &str| -> u64 {
            match d.get(key) {
                Some(Bson::Int32(n)) => u64::try_from(*n).unwrap_or(0),
                Some(Bson::Int64(n)) => u64::try_from(*n).unwrap_or(0),
                Some(Bson::Double(n)) => *n as u64,
                _ => 0,
            }
        };
        while let Some(d) = cursor.try_next().await? {
            let state = text(&d, "_id")?;
            let state = ExecState::parse(&state).ok_or_else(|| corrupt("execution state", &state))?;
            map.insert(state, number(&d, "n"));
            tally.ever_sent += number(&d, "sent");
            if state.is_final() {
                tally.last_final = tally.last_final.max(time(&d, "last"));
            }
        }
        tally.counts = Counts::from_map(&map);
        Ok(tally)
    }

    async fn set_job_phase(
        &self,
        tenant: &TenantId,
        id: &str,
        from: u32,
        to: u32,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        // A job stored before phases existed has no field: it is in phase 0.
        let at_phase = if from == 0 {
            doc! {"$in": [0_i64, Bson::Null]}
        } else {
            doc! {"$eq": i64::from(from)}
        };
        let filter = doc! {"tenant_id": tenant.as_str(), "_id": id, "phase": at_phase};
        let update = doc! {"$set": {"phase": i64::from(to), "phase_at": ms(at), "updated_at": ms(at)}};
        Ok(self.jobs().update_one(filter, update).await?.matched_count == 1)
    }

    async fn list_executions(
        &self,
        tenant: &TenantId,
        job: &str,
        filter: &ExecFilter,
        limit: u32,
        after: Option<u32>,
    ) -> StoreResult<(Vec<Execution>, u64)> {
        let mut query = doc! {"tenant_id": tenant.as_str(), "job_id": job};
        if let Some(state) = filter.state {
            query.insert("state", state.as_str());
        }
        if let Some(device) = &filter.device {
            query.insert("device_id", device.as_str());
        }
        let total = self.executions().count_documents(query.clone()).await?;
        if let Some(after) = after {
            query.insert("seq", doc! {"$gt": i64::from(after)});
        }
        let docs: Vec<Document> = self
            .executions()
            .find(query)
            .sort(doc! {"seq": 1})
            .limit(i64::from(limit))
            .await?
            .try_collect()
            .await?;
        Ok((docs.iter().map(exec_from).collect::<StoreResult<_>>()?, total))
    }

    async fn device_executions(&self, tenant: &TenantId, device: &DeviceId, limit: u32) -> StoreResult<Vec<Execution>> {
        let docs: Vec<Document> = self
            .executions()
            .find(doc! {"tenant_id": tenant.as_str(), "device_id": device.as_str()})
            .sort(doc! {"job_id": -1})
            .limit(i64::from(limit))
            .await?
            .try_collect()
            .await?;
        docs.iter().map(exec_from).collect()
    }

    async fn get_execution(&self, tenant: &TenantId, job: &str, seq: u32) -> StoreResult<Option<Execution>> {
        self.executions()
            .find_one(doc! {"tenant_id": tenant.as_str(), "_id": format!("{job}:{seq}")})
            .await?
            .as_ref()
            .map(exec_from)
            .transpose()
    }

    async fn update_executions(&self, tenant: &TenantId, job: &str, updates: &[ExecUpdate]) -> StoreResult<Vec<bool>> {
        // Each update is a compare-and-set of its own document, so they need no transaction:
        // a crash in between leaves each execution either moved or not, never half-moved.
        let mut applied = Vec::with_capacity(updates.len());
        for u in updates {
            let filter = doc! {
                "tenant_id": tenant.as_str(),
                "_id": format!("{job}:{}", u.seq),
                "state": u.from.as_str(),
                "attempt": i64::from(u.attempt),
            };
            let r = self
                .executions()
                .update_one(filter, doc! {"$set": exec_fields(&u.next)})
                .await?;
            applied.push(r.matched_count == 1);
        }
        Ok(applied)
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
        let r = self
            .executions()
            .update_many(
                doc! {"tenant_id": tenant.as_str(), "job_id": job, "state": from.as_str()},
                doc! {"$set": {"state": to.as_str(), "detail": detail, "updated_at": ms(now)}},
            )
            .await?;
        Ok(r.modified_count)
    }

    async fn delete_jobs_ended_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        let ended = doc! {
            "state": {"$in": ["completed", "aborted", "cancelled"]},
            "updated_at": {"$lt": ms(cutoff)},
        };
        // By tenant, so the executions' (tenant_id, job_id, …) index serves the deletes.
        let mut by_tenant: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for d in self.find_sorted("jobs", ended, doc! {"_id": 1}).await? {
            if let (Ok(tenant), Ok(id)) = (d.get_str("tenant_id"), d.get_str("_id")) {
                by_tenant.entry(tenant.to_owned()).or_default().push(id.to_owned());
            }
        }
        let mut deleted = 0;
        // Executions first: a sweep cut short leaves ended jobs, which the next one deletes.
        for (tenant, ids) in &by_tenant {
            for chunk in ids.chunks(CHUNK) {
                self.collection("executions")
                    .delete_many(doc! {"tenant_id": tenant, "job_id": {"$in": chunk}})
                    .await?;
                deleted += self
                    .collection("jobs")
                    .delete_many(doc! {"tenant_id": tenant, "_id": {"$in": chunk}})
                    .await?
                    .deleted_count;
            }
        }
        Ok(deleted)
    }

    async fn active_jobs(&self) -> StoreResult<Vec<JobRecord>> {
        let docs = self
            .find_sorted("jobs", doc! {"state": {"$in": ["running", "paused"]}}, doc! {"_id": 1})
            .await?;
        docs.iter().map(job_from).collect()
    }

    async fn online_prefixes(
        &self,
        tenant: &TenantId,
        devices: &[DeviceId],
    ) -> StoreResult<HashMap<DeviceId, TopicPrefix>> {
        self.device_prefixes(devices, Some(tenant)).await
    }
}
