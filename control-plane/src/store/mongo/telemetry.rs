//! Telemetry history on MongoDB: collections `telemetry` (`_id` = tenant/device/stream/seq,
//! so a record sent twice is stored once), `telemetry_streams` (`_id` = tenant/device/stream)
//! and `metric_hours` (`_id` = tenant/device/metric/hour). Every filter carries the tenant.

use std::collections::HashSet;

use async_trait::async_trait;
use bson::{Bson, Document, doc};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use luach_schemas::{DeviceId, TenantId};
use mongodb::error::ErrorKind;
use mongodb::options::FindOptions;
use serde_json::Value;

use super::{MongoStore, corrupt, ms, parsed, required_time, text};
use crate::store::StoreResult;
use crate::store::backend::TelemetryBackend;
use crate::store::telemetry::{After, HourRow, StreamReport, TelemetryRow, metric_value};

/// Documents inserted per round trip.
const CHUNK: usize = 1_000;

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn unsigned(d: &Document, key: &str) -> u64 {
    d.get_i64(key).ok().and_then(|v| u64::try_from(v).ok()).unwrap_or(0)
}

fn number(d: &Document, key: &str) -> f64 {
    match d.get(key) {
        Some(Bson::Double(v)) => *v,
        Some(Bson::Int64(v)) => *v as f64,
        Some(Bson::Int32(v)) => f64::from(*v),
        _ => 0.0,
    }
}

fn json(b: Bson) -> StoreResult<Value> {
    serde_json::to_value(b.into_relaxed_extjson()).map_err(|e| corrupt("telemetry body", e))
}

fn row_doc(r: &TelemetryRow) -> StoreResult<Document> {
    Ok(doc! {
        "_id": format!("{}/{}/{}/{}", r.tenant_id, r.device_id, r.stream, r.seq),
        "tenant_id": r.tenant_id.as_str(),
        "device_id": r.device_id.as_str(),
        "stream": &r.stream,
        "seq": signed(r.seq),
        "at": ms(r.at),
        "received": ms(r.received),
        "kind": &r.kind,
        "body": bson::to_bson(&r.body).map_err(|e| corrupt("telemetry body", e))?,
    })
}

fn row_from(d: Document) -> StoreResult<TelemetryRow> {
    Ok(TelemetryRow {
        tenant_id: parsed(&d, "tenant_id", TenantId::parse)?,
        device_id: parsed(&d, "device_id", DeviceId::parse)?,
        stream: text(&d, "stream")?,
        seq: unsigned(&d, "seq"),
        at: required_time(&d, "at")?,
        received: required_time(&d, "received")?,
        kind: text(&d, "kind")?,
        body: json(d.get("body").cloned().unwrap_or(Bson::Null))?,
    })
}

fn scoped(tenant: &TenantId, device: &DeviceId) -> Document {
    doc! {"tenant_id": tenant.as_str(), "device_id": device.as_str()}
}

/// Inserts `docs` unordered; duplicate `_id`s are skipped. Returns how many were inserted.
async fn insert_new(collection: &mongodb::Collection<Document>, docs: Vec<Document>) -> StoreResult<u64> {
    let mut inserted = 0;
    for chunk in docs.chunks(CHUNK) {
        let n = chunk.len() as u64;
        match collection.insert_many(chunk.to_vec()).ordered(false).await {
            Ok(_) => inserted += n,
            Err(e) => match e.kind.as_ref() {
                ErrorKind::InsertMany(m)
                    if m.write_concern_error.is_none()
                        && m.write_errors
                            .as_ref()
                            .is_some_and(|w| w.iter().all(|w| w.code == 11000)) =>
                {
                    let duplicates = m.write_errors.as_ref().map_or(0, Vec::len) as u64;
                    inserted += n.saturating_sub(duplicates);
                }
                _ => return Err(e.into()),
            },
        }
    }
    Ok(inserted)
}

impl MongoStore {
    fn telemetry(&self) -> mongodb::Collection<Document> {
        self.collection("telemetry")
    }
}

#[async_trait]
impl TelemetryBackend for MongoStore {
    async fn insert_telemetry(&self, rows: &[TelemetryRow], streams: &[StreamReport]) -> StoreResult<u64> {
        let docs = rows.iter().map(row_doc).collect::<StoreResult<Vec<_>>>()?;
        let new = insert_new(&self.telemetry(), docs).await?;
        // `$max` keeps the highest report whatever order replicas write in.
        let reports = self.collection("telemetry_streams");
        for s in streams {
            reports
                .update_one(
                    doc! {"_id": format!("{}/{}/{}", s.tenant_id, s.device_id, s.stream)},
                    doc! {
                        "$set": {
                            "tenant_id": s.tenant_id.as_str(),
                            "device_id": s.device_id.as_str(),
                            "stream": &s.stream,
                            "updated_at": ms(s.updated_at),
                        },
                        "$max": {"dropped": signed(s.dropped), "highest_seq": signed(s.highest_seq)},
                    },
                )
                .upsert(true)
                .await?;
        }
        Ok(new)
    }

    async fn telemetry_records(
        &self,
        tenant: &TenantId,
        device: &DeviceId,
        kind: Option<&str>,
        after: Option<&After>,
        limit: u32,
    ) -> StoreResult<(Vec<TelemetryRow>, u64)> {
        let mut filter = scoped(tenant, device);
        if let Some(kind) = kind {
            filter.insert("kind", kind);
        }
        let total = self.telemetry().count_documents(filter.clone()).await?;
        if let Some(a) = after {
            filter.insert(
                "$or",
                vec![
                    doc! {"stream": {"$gt": &a.stream}},
                    doc! {"stream": &a.stream, "seq": {"$gt": signed(a.seq)}},
                ],
            );
        }
        let options = FindOptions::builder()
            .sort(doc! {"stream": 1, "seq": 1})
            .limit(i64::from(limit))
            .build();
        let docs: Vec<Document> = self
            .telemetry()
            .find(filter)
            .with_options(options)
            .await?
            .try_collect()
            .await?;
        Ok((docs.into_iter().map(row_from).collect::<StoreResult<_>>()?, total))
    }

    async fn telemetry_streams(&self, tenant: &TenantId, device: &DeviceId) -> StoreResult<Vec<StreamReport>> {
        let docs = self
            .find_sorted("telemetry_streams", scoped(tenant, device), doc! {"updated_at": -1})
            .await?;
        let mut out = Vec::with_capacity(docs.len());
        for d in docs {
            let stream = text(&d, "stream")?;
            let mut filter = scoped(tenant, device);
            filter.insert("stream", &stream);
            let stored = self.telemetry().count_documents(filter).await?;
            out.push(StreamReport {
                tenant_id: tenant.clone(),
                device_id: device.clone(),
                dropped: unsigned(&d, "dropped"),
                highest_seq: unsigned(&d, "highest_seq"),
                updated_at: required_time(&d, "updated_at")?,
                stored,
                missing: 0,
                stream,
            });
        }
        Ok(out)
    }

    async fn metric_samples(
        &self,
        tenant: &TenantId,
        device: &DeviceId,
        metric: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<(DateTime<Utc>, f64)>> {
        let mut filter = scoped(tenant, device);
        filter.insert("kind", "metrics");
        filter.insert("at", doc! {"$gte": ms(from), "$lt": ms(to)});
        let docs = self.find_sorted("telemetry", filter, doc! {"at": 1}).await?;
        let mut out = Vec::with_capacity(docs.len());
        for d in docs {
            let body = json(d.get("body").cloned().unwrap_or(Bson::Null))?;
            if let Some(v) = metric_value(&body, metric) {
                out.push((required_time(&d, "at")?, v));
            }
        }
        Ok(out)
    }

    async fn metric_hours(
        &self,
        tenant: &TenantId,
        device: &DeviceId,
        metric: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<HourRow>> {
        let mut filter = scoped(tenant, device);
        filter.insert("metric", metric);
        filter.insert("hour", doc! {"$gte": ms(from), "$lt": ms(to)});
        let docs = self.find_sorted("metric_hours", filter, doc! {"hour": 1}).await?;
        docs.into_iter()
            .map(|d| {
                Ok(HourRow {
                    tenant_id: tenant.clone(),
                    device_id: device.clone(),
                    metric: metric.to_owned(),
                    hour: required_time(&d, "hour")?,
                    count: unsigned(&d, "count"),
                    sum: number(&d, "sum"),
                    min: number(&d, "min"),
                    max: number(&d, "max"),
                })
            })
            .collect()
    }

    async fn telemetry_devices_before(&self, cutoff: DateTime<Utc>) -> StoreResult<Vec<(TenantId, DeviceId)>> {
        let options = FindOptions::builder()
            .projection(doc! {"tenant_id": 1, "device_id": 1})
            .build();
        let mut cursor = self
            .telemetry()
            .find(doc! {"at": {"$lt": ms(cutoff)}})
            .with_options(options)
            .await?;
        let mut seen = HashSet::new();
        while let Some(d) = cursor.try_next().await? {
            seen.insert((
                parsed(&d, "tenant_id", TenantId::parse)?,
                parsed(&d, "device_id", DeviceId::parse)?,
            ));
        }
        Ok(seen.into_iter().collect())
    }

    async fn metrics_before(
        &self,
        tenant: &TenantId,
        device: &DeviceId,
        cutoff: DateTime<Utc>,
    ) -> StoreResult<Vec<(DateTime<Utc>, Value)>> {
        let mut filter = scoped(tenant, device);
        filter.insert("kind", "metrics");
        filter.insert("at", doc! {"$lt": ms(cutoff)});
        let docs = self.find_sorted("telemetry", filter, doc! {"at": 1}).await?;
        docs.into_iter()
            .map(|d| {
                let at = required_time(&d, "at")?;
                Ok((at, json(d.get("body").cloned().unwrap_or(Bson::Null))?))
            })
            .collect()
    }

    async fn insert_hours_absent(&self, rows: &[HourRow]) -> StoreResult<()> {
        let docs = rows
            .iter()
            .map(|h| {
                doc! {
                    "_id": format!("{}/{}/{}/{}", h.tenant_id, h.device_id, h.metric, ms(h.hour)),
                    "tenant_id": h.tenant_id.as_str(),
                    "device_id": h.device_id.as_str(),
                    "metric": &h.metric,
                    "hour": ms(h.hour),
                    "count": signed(h.count),
                    "sum": h.sum,
                    "min": h.min,
                    "max": h.max,
                }
            })
            .collect();
        insert_new(&self.collection("metric_hours"), docs).await.map(drop)
    }

    async fn delete_telemetry_before(
        &self,
        tenant: &TenantId,
        device: &DeviceId,
        cutoff: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let mut filter = scoped(tenant, device);
        filter.insert("at", doc! {"$lt": ms(cutoff)});
        Ok(self.telemetry().delete_many(filter).await?.deleted_count)
    }

    async fn delete_hours_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        Ok(self
            .collection("metric_hours")
            .delete_many(doc! {"hour": {"$lt": ms(cutoff)}})
            .await?
            .deleted_count)
    }
}
