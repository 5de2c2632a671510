//! The ingest pipeline's operations on MongoDB: prefix resolution, development registration,
//! idempotent presence updates sent concurrently.

use std::collections::{HashMap, HashSet};
use std::future::IntoFuture;

use async_trait::async_trait;
use bson::{Document, doc};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use luach_schemas::{DeviceId, TenantId, TopicPrefix};

use super::{MongoStore, corrupt, parsed, text};
use crate::store::backend::IngestBackend;
use crate::store::{DeviceStatus, PresenceWrite, StoreError, StoreResult};

/// Presence updates in flight at once.
const CONCURRENCY: usize = 32;
/// Ids per `$in` query.
const CHUNK: usize = 1000;

/// The unconditional part of a presence write (last seen moves only forward); the status is
/// set apart, only where it differs, so the store can say whether it changed.
fn presence_update(w: &PresenceWrite) -> StoreResult<Document> {
    let mut update = Document::new();
    if let Some(t) = w.last_seen {
        update.insert("$max", doc! {"last_seen": bson::DateTime::from_chrono(t)});
    }
    let mut set = Document::new();
    if let Some(h) = &w.hello {
        set.insert("agent_version", h.agent_version.as_str());
        set.insert("platform", h.platform.as_str());
        set.insert("ip", h.ip.clone());
    }
    if let Some((m, at)) = &w.metrics {
        set.insert("metrics", bson::to_bson(m).map_err(|e| corrupt("metrics", e))?);
        set.insert("metrics_at", bson::DateTime::from_chrono(*at));
    }
    if !set.is_empty() {
        update.insert("$set", set);
    }
    Ok(update)
}

impl MongoStore {
    /// The topic prefix of each of `devices` that has one; with `online_in`, only of the
    /// devices of that tenant that are online now.
    pub(super) async fn device_prefixes(
        &self,
        devices: &[DeviceId],
        online_in: Option<&TenantId>,
    ) -> StoreResult<HashMap<DeviceId, TopicPrefix>> {
        let raw = self.collection("devices");
        let mut found = HashMap::new();
        for chunk in devices.chunks(CHUNK) {
            let wanted: Vec<&str> = chunk.iter().map(DeviceId::as_str).collect();
            let mut filter = doc! {"_id": {"$in": wanted}, "prefix": {"$exists": true}};
            if let Some(tenant) = online_in {
                filter.insert("tenant_id", tenant.as_str());
                filter.insert("status", "online");
            }
            let mut cursor = raw.find(filter).projection(doc! {"prefix": 1}).await?;
            while let Some(d) = cursor.try_next().await? {
                found.insert(
                    parsed(&d, "_id", DeviceId::parse)?,
                    parsed(&d, "prefix", TopicPrefix::parse)?,
                );
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl IngestBackend for MongoStore {
    async fn resolve_prefixes(
        &self,
        prefixes: &[TopicPrefix],
    ) -> StoreResult<HashMap<TopicPrefix, (DeviceId, TenantId)>> {
        let raw = self.collection("devices");
        let mut found = HashMap::new();
        for chunk in prefixes.chunks(CHUNK) {
            let wanted: Vec<&str> = chunk.iter().map(TopicPrefix::as_str).collect();
            let mut cursor = raw
                .find(doc! {"prefix": {"$in": wanted}})
                .projection(doc! {"tenant_id": 1, "prefix": 1})
                .await?;
            while let Some(d) = cursor.try_next().await? {
                found.insert(
                    parsed(&d, "prefix", TopicPrefix::parse)?,
                    (
                        parsed(&d, "_id", DeviceId::parse)?,
                        parsed(&d, "tenant_id", TenantId::parse)?,
                    ),
                );
            }
        }
        Ok(found)
    }

    async fn prefixes_of(&self, devices: &[DeviceId]) -> StoreResult<HashMap<DeviceId, TopicPrefix>> {
        self.device_prefixes(devices, None).await
    }

    async fn register_devices(&self, tenant: &TenantId, ids: &[DeviceId], now: DateTime<Utc>) -> StoreResult<()> {
        let now = bson::DateTime::from_chrono(now);
        // A device with any certificate history was enrolled: a revoked or deleted device must
        // not come back this way.
        let mut enrolled = HashSet::new();
        for chunk in ids.chunks(CHUNK) {
            let wanted: Vec<&str> = chunk.iter().map(DeviceId::as_str).collect();
            let mut cursor = self
                .collection("certificates")
                .find(doc! {"device_id": {"$in": wanted}})
                .projection(doc! {"device_id": 1})
                .await?;
            while let Some(d) = cursor.try_next().await? {
                enrolled.insert(text(&d, "device_id")?);
            }
        }
        let ids: Vec<String> = ids
            .iter()
            .map(ToString::to_string)
            .filter(|id| !enrolled.contains(id))
            .collect();
        // Upserts with $setOnInsert: an id that exists (in any tenant) is left as it is.
        let devices = self.devices();
        stream::iter(ids)
            .map(|id| {
                let fields = doc! {
                    "tenant_id": tenant.as_str(), "name": id.as_str(), "tags": [], "group": null, "notes": "",
                    "status": "offline", "created_at": now, "updated_at": now, "revision": 1_i64,
                    "prefix": id.as_str(),
                };
                devices
                    .update_one(doc! {"_id": id}, doc! {"$setOnInsert": fields})
                    .upsert(true)
                    .into_future()
            })
            .buffer_unordered(CONCURRENCY)
            .try_for_each(|_| async { Ok(()) })
            .await?;
        Ok(())
    }

    async fn apply_presence(&self, batch: &[PresenceWrite]) -> StoreResult<Vec<(DeviceId, DeviceStatus)>> {
        let updates = batch
            .iter()
            .map(|w| presence_update(w).map(|u| (w.device.clone(), w.status, u)))
            .collect::<StoreResult<Vec<_>>>()?;
        let moved = stream::iter(updates)
            .map(|(device, status, update)| async move {
                let id = device.as_str();
                if !update.is_empty() {
                    self.devices().update_one(doc! {"_id": id}, update).await?;
                }
                let Some(status) = status else {
                    return Ok::<_, StoreError>(None);
                };
                let mut update = doc! {"$set": {"status": status.as_str()}};
                if status == DeviceStatus::Offline {
                    update.insert("$inc", doc! {"drops": 1_i64});
                }
                let r = self
                    .devices()
                    .update_one(doc! {"_id": id, "status": {"$ne": status.as_str()}}, update)
                    .await?;
                Ok((r.modified_count > 0).then_some((device, status)))
            })
            .buffer_unordered(CONCURRENCY)
            .try_filter_map(|m: Option<(DeviceId, DeviceStatus)>| async move { Ok(m) })
            .try_collect()
            .await?;
        Ok(moved)
    }

    async fn mark_all_offline(&self) -> StoreResult<u64> {
        let r = self
            .devices()
            .update_many(doc! {"status": "online"}, doc! {"$set": {"status": "offline"}})
            .await?;
        Ok(r.modified_count)
    }

    async fn expire_presence(&self, cutoff: DateTime<Utc>) -> StoreResult<Vec<(DeviceId, TenantId)>> {
        let silent = |cutoff: DateTime<Utc>| {
            doc! {"status": "online", "$or": [
                {"last_seen": {"$lt": bson::DateTime::from_chrono(cutoff)}},
                {"last_seen": {"$exists": false}},
            ]}
        };
        let candidates: Vec<Document> = self
            .collection("devices")
            .find(silent(cutoff))
            .projection(doc! {"tenant_id": 1})
            .await?
            .try_collect()
            .await?;
        // Each is moved on its own condition, so of two replicas sweeping at once one moves it.
        let moved = stream::iter(candidates)
            .map(|d| async move {
                let id = text(&d, "_id")?;
                let mut filter = silent(cutoff);
                filter.insert("_id", id.as_str());
                let r = self
                    .devices()
                    .update_one(filter, doc! {"$set": {"status": "offline"}, "$inc": {"drops": 1_i64}})
                    .await?;
                if r.modified_count == 0 {
                    return Ok::<_, StoreError>(None);
                }
                Ok(Some((
                    parsed(&d, "_id", DeviceId::parse)?,
                    parsed(&d, "tenant_id", TenantId::parse)?,
                )))
            })
            .buffer_unordered(CONCURRENCY)
            .try_filter_map(|m: Option<(DeviceId, TenantId)>| async move { Ok(m) })
            .try_collect()
            .await?;
        Ok(moved)
    }

    async fn count_online(&self) -> StoreResult<u64> {
        Ok(self.devices().count_documents(doc! {"status": "online"}).await?)
    }
}
