//! Devices on MongoDB: collection `devices`, `_id` = device id; operator fields change by
//! compare-and-set on `revision`.

use async_trait::async_trait;
use bson::{Document, doc};
use futures::TryStreamExt;
use luach_schemas::messages::Metrics;
use luach_schemas::{DeviceId, TenantId};
use mongodb::Collection;
use mongodb::options::FindOptions;
use serde::{Deserialize, Serialize};

use super::{MongoStore, corrupt, is_duplicate_key, retrying};
use crate::chain::Entry;
use crate::store::backend::DeviceBackend;
use crate::store::{Device, DeviceFilter, DeviceStatus, Page, PageRequest, StoreError, StoreResult};
use luach_content::BoardSettings;

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct DeviceDoc {
    #[serde(rename = "_id")]
    id: String,
    tenant_id: String,
    name: String,
    tags: Vec<String>,
    group: Option<String>,
    notes: String,
    #[serde(default)]
    board: BoardSettings,
    status: String,
    last_seen: Option<bson::DateTime>,
    agent_version: Option<String>,
    platform: Option<String>,
    ip: Option<String>,
    metrics: Option<Metrics>,
    metrics_at: Option<bson::DateTime>,
    #[serde(default)]
    drops: i64,
    #[serde(default)]
    bundle_sha256: Option<String>,
    #[serde(default)]
    bundle_fetched_at: Option<bson::DateTime>,
    created_at: bson::DateTime,
    updated_at: bson::DateTime,
    #[serde(default = "first_revision")]
    revision: i64,
    /// Absent (not null) when the device has none, so the sparse unique index skips it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
}

fn first_revision() -> i64 {
    1
}

impl DeviceDoc {
    fn from_device(d: &Device) -> Self {
        Self {
            id: d.id.to_string(),
            tenant_id: d.tenant_id.to_string(),
            name: d.name.clone(),
            tags: d.tags.clone(),
            group: d.group.clone(),
            notes: d.notes.clone(),
            board: d.board.clone(),
            status: d.status.as_str().to_owned(),
            last_seen: d.last_seen.map(bson::DateTime::from_chrono),
            agent_version: d.agent_version.clone(),
            platform: d.platform.clone(),
            ip: d.ip.clone(),
            metrics: d.metrics.clone(),
            metrics_at: d.metrics_at.map(bson::DateTime::from_chrono),
            drops: i64::try_from(d.drops).unwrap_or(i64::MAX),
            bundle_sha256: d.bundle_sha256.clone(),
            bundle_fetched_at: d.bundle_fetched_at.map(bson::DateTime::from_chrono),
            created_at: bson::DateTime::from_chrono(d.created_at),
            updated_at: bson::DateTime::from_chrono(d.updated_at),
            revision: d.revision,
            // Until it is enrolled, a device's topics are named by its id.
            prefix: Some(d.id.to_string()),
        }
    }

    fn into_device(self) -> StoreResult<Device> {
        Ok(Device {
            id: DeviceId::parse(&self.id).map_err(|e| corrupt("device id", e))?,
            tenant_id: TenantId::parse(&self.tenant_id).map_err(|e| corrupt("tenant id", e))?,
            name: self.name,
            tags: self.tags,
            group: self.group,
            notes: self.notes,
            board: self.board,
            status: DeviceStatus::parse(&self.status).ok_or_else(|| corrupt("status", &self.status))?,
            last_seen: self.last_seen.map(bson::DateTime::to_chrono),
            agent_version: self.agent_version,
            platform: self.platform,
            ip: self.ip,
            metrics: self.metrics,
            metrics_at: self.metrics_at.map(bson::DateTime::to_chrono),
            drops: u64::try_from(self.drops).unwrap_or(0),
            bundle_sha256: self.bundle_sha256,
            bundle_fetched_at: self.bundle_fetched_at.map(bson::DateTime::to_chrono),
            created_at: self.created_at.to_chrono(),
            updated_at: self.updated_at.to_chrono(),
            revision: self.revision,
        })
    }
}

impl MongoStore {
    pub(super) fn devices(&self) -> Collection<DeviceDoc> {
        self.db.collection("devices")
    }
}

fn scoped(tenant: &TenantId, id: &DeviceId) -> Document {
    doc! {"tenant_id": tenant.as_str(), "_id": id.as_str()}
}

#[async_trait]
impl DeviceBackend for MongoStore {
    async fn list_devices(
        &self,
        tenant: &TenantId,
        filter: &DeviceFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Device>> {
        let mut query = doc! {"tenant_id": tenant.as_str()};
        if let Some(status) = filter.status {
            query.insert("status", status.as_str());
        }
        if let Some(tag) = &filter.tag {
            query.insert("tags", tag.as_str());
        }
        if let Some(group) = &filter.group {
            query.insert("group", group.as_str());
        }
        let total = self.devices().count_documents(query.clone()).await?;
        if let Some(after) = &page.after {
            query.insert("_id", doc! {"$gt": after.as_str()});
        }
        let options = FindOptions::builder()
            .sort(doc! {"_id": 1})
            .limit(i64::from(page.limit) + 1)
            .build();
        let docs: Vec<DeviceDoc> = self
            .devices()
            .find(query)
            .with_options(options)
            .await?
            .try_collect()
            .await?;
        let items = docs
            .into_iter()
            .map(DeviceDoc::into_device)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_fetched(items, page.limit, total, |d| d.id.to_string()))
    }

    async fn get_device(&self, tenant: &TenantId, id: &DeviceId) -> StoreResult<Option<Device>> {
        self.devices()
            .find_one(scoped(tenant, id))
            .await?
            .map(DeviceDoc::into_device)
            .transpose()
    }

    async fn count_devices(&self, tenant: &TenantId) -> StoreResult<u64> {
        Ok(self
            .devices()
            .count_documents(doc! {"tenant_id": tenant.as_str()})
            .await?)
    }

    async fn insert_device(&self, device: &Device, audit: Entry) -> StoreResult<()> {
        let doc = DeviceDoc::from_device(device);
        retrying(|| async {
            let mut session = self.begin().await?;
            match self.devices().insert_one(&doc).session(&mut session).await {
                Ok(_) => {}
                Err(e) if is_duplicate_key(&e) => {
                    return Err(StoreError::Conflict {
                        what: format!("device {}", device.id),
                    });
                }
                Err(e) => return Err(e.into()),
            }
            self.append_audit(&mut session, audit.clone()).await?;
            session.commit_transaction().await?;
            Ok(())
        })
        .await
    }

    async fn replace_device(&self, device: &Device, expected: i64, audit: Entry) -> StoreResult<bool> {
        let set = doc! {
            "name": &device.name,
            "tags": &device.tags,
            "group": device.group.clone(),
            "notes": &device.notes,
            "board": bson::to_bson(&device.board).map_err(|e| corrupt("board", e))?,
            "updated_at": bson::DateTime::from_chrono(device.updated_at),
            "revision": device.revision,
        };
        retrying(|| async {
            let mut session = self.begin().await?;
            let mut filter = scoped(&device.tenant_id, &device.id);
            filter.insert("revision", expected);
            let r = self
                .devices()
                .update_one(filter, doc! {"$set": set.clone()})
                .session(&mut session)
                .await?;
            self.commit_audited(session, r.matched_count == 1, &audit).await
        })
        .await
    }

    async fn delete_device(&self, tenant: &TenantId, id: &DeviceId, audit: Entry) -> StoreResult<bool> {
        retrying(|| async {
            let mut session = self.begin().await?;
            let deleted = self
                .devices()
                .delete_one(scoped(tenant, id))
                .session(&mut session)
                .await?
                .deleted_count
                > 0;
            if deleted {
                // Its history goes with it.
                for collection in ["telemetry", "telemetry_streams", "metric_hours"] {
                    self.collection(collection)
                        .delete_many(doc! {"tenant_id": tenant.as_str(), "device_id": id.as_str()})
                        .session(&mut session)
                        .await?;
                }
            }
            self.commit_audited(session, deleted, &audit).await
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
        let at = bson::DateTime::from_chrono(at);
        let mut filter = scoped(tenant, id);
        filter.insert(
            "$or",
            vec![
                doc! {"bundle_fetched_at": {"$lte": at}},
                doc! {"bundle_fetched_at": null},
            ],
        );
        self.devices()
            .update_one(
                filter,
                doc! {"$set": {"bundle_sha256": sha256, "bundle_fetched_at": at}},
            )
            .await?;
        Ok(())
    }
}
