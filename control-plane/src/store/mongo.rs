//! MongoDB backend (production; a replica set in deployment).
//!
//! Queries are built from typed values only: no request body or query string is ever turned
//! into a filter document, so operator injection (`{"$ne": …}`) has nowhere to enter.
//! Presence writes are idempotent (`$max` on `last_seen`, plain `$set` of the rest) and are
//! sent concurrently; a batch that fails half-way is safe to apply again.

use std::collections::HashMap;
use std::future::IntoFuture;

use async_trait::async_trait;
use bson::{Document, doc};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use luach_schemas::messages::Metrics;
use luach_schemas::{DeviceId, TenantId};
use mongodb::options::{FindOptions, IndexOptions};
use mongodb::{Client, Collection, IndexModel};
use serde::{Deserialize, Serialize};

use super::{
    Device, DeviceFilter, DevicePatch, DeviceRepo, DeviceStatus, DocKind, DocRepo, IngestRepo, NewDevice, Page,
    PageRequest, PresenceWrite, Store, StoreError, StoreResult, StoredDoc, TenantScope,
};

/// How many presence updates are in flight at once.
const PRESENCE_CONCURRENCY: usize = 32;

#[derive(Debug, Serialize, Deserialize)]
struct DeviceDoc {
    #[serde(rename = "_id")]
    id: String,
    tenant_id: String,
    name: String,
    tags: Vec<String>,
    group: Option<String>,
    notes: String,
    status: String,
    last_seen: Option<bson::DateTime>,
    agent_version: Option<String>,
    platform: Option<String>,
    ip: Option<String>,
    metrics: Option<Metrics>,
    metrics_at: Option<bson::DateTime>,
    created_at: bson::DateTime,
    updated_at: bson::DateTime,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

impl DeviceDoc {
    fn into_device(self) -> StoreResult<Device> {
        Ok(Device {
            id: DeviceId::parse(&self.id).map_err(|e| corrupt("device id", e))?,
            tenant_id: TenantId::parse(&self.tenant_id).map_err(|e| corrupt("tenant id", e))?,
            name: self.name,
            tags: self.tags,
            group: self.group,
            notes: self.notes,
            status: DeviceStatus::parse(&self.status).ok_or_else(|| corrupt("status", &self.status))?,
            last_seen: self.last_seen.map(bson::DateTime::to_chrono),
            agent_version: self.agent_version,
            platform: self.platform,
            ip: self.ip,
            metrics: self.metrics,
            metrics_at: self.metrics_at.map(bson::DateTime::to_chrono),
            created_at: self.created_at.to_chrono(),
            updated_at: self.updated_at.to_chrono(),
        })
    }
}

/// MongoDB-backed [`Store`].
#[derive(Debug, Clone)]
pub struct MongoStore {
    client: Client,
    db: mongodb::Database,
    devices: Collection<DeviceDoc>,
}

impl MongoStore {
    /// Connects, and creates the indexes the queries rely on.
    pub async fn connect(url: &str, database: &str) -> StoreResult<Self> {
        let client = Client::with_uri_str(url).await?;
        let db = client.database(database);
        let devices = db.collection::<DeviceDoc>("devices");
        let indexes = [
            doc! {"tenant_id": 1, "_id": 1},
            doc! {"tenant_id": 1, "status": 1, "_id": 1},
            doc! {"tenant_id": 1, "tags": 1, "_id": 1},
            doc! {"tenant_id": 1, "group": 1, "_id": 1},
        ];
        for keys in indexes {
            devices
                .create_index(
                    IndexModel::builder()
                        .keys(keys)
                        .options(IndexOptions::builder().build())
                        .build(),
                )
                .await?;
        }
        Ok(Self { client, db, devices })
    }

    fn scoped(scope: &TenantScope, id: &DeviceId) -> Document {
        doc! {"tenant_id": scope.tenant().as_str(), "_id": id.as_str()}
    }
}

fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == 11000,
        ErrorKind::Command(c) => c.code == 11000,
        _ => false,
    }
}

#[async_trait]
impl DeviceRepo for MongoStore {
    async fn list(&self, scope: &TenantScope, filter: &DeviceFilter, page: &PageRequest) -> StoreResult<Page<Device>> {
        let mut query = doc! {"tenant_id": scope.tenant().as_str()};
        if let Some(status) = filter.status {
            query.insert("status", status.as_str());
        }
        if let Some(tag) = &filter.tag {
            query.insert("tags", tag.as_str());
        }
        if let Some(group) = &filter.group {
            query.insert("group", group.as_str());
        }
        let total = self.devices.count_documents(query.clone()).await?;
        if let Some(after) = &page.after {
            query.insert("_id", doc! {"$gt": after.as_str()});
        }
        let options = FindOptions::builder()
            .sort(doc! {"_id": 1})
            .limit(i64::from(page.limit) + 1)
            .build();
        let docs: Vec<DeviceDoc> = self
            .devices
            .find(query)
            .with_options(options)
            .await?
            .try_collect()
            .await?;
        let mut items = docs
            .into_iter()
            .map(DeviceDoc::into_device)
            .collect::<StoreResult<Vec<_>>>()?;
        let next_after = if items.len() > page.limit as usize {
            items.truncate(page.limit as usize);
            items.last().map(|d| d.id.to_string())
        } else {
            None
        };
        Ok(Page {
            items,
            next_after,
            total,
        })
    }

    async fn get(&self, scope: &TenantScope, id: &DeviceId) -> StoreResult<Option<Device>> {
        self.devices
            .find_one(Self::scoped(scope, id))
            .await?
            .map(DeviceDoc::into_device)
            .transpose()
    }

    async fn create(&self, scope: &TenantScope, device: NewDevice, now: DateTime<Utc>) -> StoreResult<Device> {
        let now = bson::DateTime::from_chrono(now);
        let doc = DeviceDoc {
            id: device.id.to_string(),
            tenant_id: scope.tenant().to_string(),
            name: device.name,
            tags: device.tags,
            group: device.group,
            notes: device.notes,
            status: DeviceStatus::Offline.as_str().to_owned(),
            last_seen: None,
            agent_version: None,
            platform: None,
            ip: None,
            metrics: None,
            metrics_at: None,
            created_at: now,
            updated_at: now,
        };
        match self.devices.insert_one(&doc).await {
            Ok(_) => doc.into_device(),
            Err(e) if is_duplicate_key(&e) => Err(StoreError::Conflict {
                what: format!("device {}", device.id),
            }),
            Err(e) => Err(e.into()),
        }
    }

    async fn update(
        &self,
        scope: &TenantScope,
        id: &DeviceId,
        patch: DevicePatch,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Device>> {
        let mut set = doc! {"updated_at": bson::DateTime::from_chrono(now)};
        if let Some(name) = patch.name {
            set.insert("name", name);
        }
        if let Some(tags) = patch.tags {
            set.insert("tags", tags);
        }
        if let Some(group) = patch.group {
            set.insert("group", group);
        }
        if let Some(notes) = patch.notes {
            set.insert("notes", notes);
        }
        let updated = self
            .devices
            .find_one_and_update(Self::scoped(scope, id), doc! {"$set": set})
            .return_document(mongodb::options::ReturnDocument::After)
            .await?;
        updated.map(DeviceDoc::into_device).transpose()
    }

    async fn delete(&self, scope: &TenantScope, id: &DeviceId) -> StoreResult<bool> {
        Ok(self.devices.delete_one(Self::scoped(scope, id)).await?.deleted_count > 0)
    }
}

fn presence_update(w: &PresenceWrite) -> StoreResult<Document> {
    let mut update = Document::new();
    if let Some(t) = w.last_seen {
        update.insert("$max", doc! {"last_seen": bson::DateTime::from_chrono(t)});
    }
    let mut set = Document::new();
    if let Some(s) = w.status {
        set.insert("status", s.as_str());
    }
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

/// A tenant document; one collection per [`DocKind`] (`synagogues`, `memorials`, `announcements`).
#[derive(Debug, Serialize, Deserialize)]
struct DocRecord {
    /// `{tenant}:{id}`: unique across tenants, while queries still filter by `tenant_id`.
    #[serde(rename = "_id")]
    key: String,
    tenant_id: String,
    id: String,
    body: bson::Bson,
    created_at: bson::DateTime,
    updated_at: bson::DateTime,
}

impl DocRecord {
    fn into_doc(self) -> StoreResult<StoredDoc> {
        Ok(StoredDoc {
            tenant_id: TenantId::parse(&self.tenant_id).map_err(|e| corrupt("tenant id", e))?,
            id: self.id,
            body: bson::from_bson(self.body).map_err(|e| corrupt("document body", e))?,
            created_at: self.created_at.to_chrono(),
            updated_at: self.updated_at.to_chrono(),
        })
    }
}

impl MongoStore {
    fn docs(&self, kind: DocKind) -> Collection<DocRecord> {
        self.db.collection(match kind {
            DocKind::Synagogue => "synagogues",
            DocKind::Memorial => "memorials",
            DocKind::Announcement => "announcements",
        })
    }

    fn doc_key(scope: &TenantScope, id: &str) -> Document {
        doc! {"_id": format!("{}:{}", scope.tenant(), id), "tenant_id": scope.tenant().as_str()}
    }
}

#[async_trait]
impl DocRepo for MongoStore {
    async fn list_docs(
        &self,
        scope: &TenantScope,
        kind: DocKind,
        limit: u32,
        after: Option<&str>,
    ) -> StoreResult<Vec<StoredDoc>> {
        let mut filter = doc! {"tenant_id": scope.tenant().as_str()};
        if let Some(after) = after {
            filter.insert("id", doc! {"$gt": after});
        }
        let options = FindOptions::builder()
            .sort(doc! {"id": 1})
            .limit(i64::from(limit))
            .build();
        let records: Vec<DocRecord> = self
            .docs(kind)
            .find(filter)
            .with_options(options)
            .await?
            .try_collect()
            .await?;
        records.into_iter().map(DocRecord::into_doc).collect()
    }

    async fn get_doc(&self, scope: &TenantScope, kind: DocKind, id: &str) -> StoreResult<Option<StoredDoc>> {
        self.docs(kind)
            .find_one(Self::doc_key(scope, id))
            .await?
            .map(DocRecord::into_doc)
            .transpose()
    }

    async fn put_doc(
        &self,
        scope: &TenantScope,
        kind: DocKind,
        id: &str,
        body: serde_json::Value,
        now: DateTime<Utc>,
    ) -> StoreResult<(StoredDoc, bool)> {
        let now = bson::DateTime::from_chrono(now);
        let body = bson::to_bson(&body).map_err(|e| corrupt("document body", e))?;
        let update = doc! {
            "$set": {"body": body, "updated_at": now, "id": id},
            "$setOnInsert": {"created_at": now},
        };
        let result = self
            .docs(kind)
            .update_one(Self::doc_key(scope, id), update)
            .upsert(true)
            .await?;
        let stored = self
            .get_doc(scope, kind, id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("stored document vanished".into()))?;
        Ok((stored, result.upserted_id.is_some()))
    }

    async fn delete_doc(&self, scope: &TenantScope, kind: DocKind, id: &str) -> StoreResult<bool> {
        Ok(self
            .docs(kind)
            .delete_one(Self::doc_key(scope, id))
            .await?
            .deleted_count
            > 0)
    }
}

#[async_trait]
impl IngestRepo for MongoStore {
    async fn tenants_of(&self, ids: &[DeviceId]) -> StoreResult<HashMap<DeviceId, TenantId>> {
        let raw = self.db.collection::<Document>("devices");
        let mut found = HashMap::new();
        for chunk in ids.chunks(1000) {
            let wanted: Vec<&str> = chunk.iter().map(DeviceId::as_str).collect();
            let mut cursor = raw
                .find(doc! {"_id": {"$in": wanted}})
                .projection(doc! {"tenant_id": 1})
                .await?;
            while let Some(d) = cursor.try_next().await? {
                let id = d.get_str("_id").map_err(|e| corrupt("device id", e))?;
                let tenant = d.get_str("tenant_id").map_err(|e| corrupt("tenant id", e))?;
                found.insert(
                    DeviceId::parse(id).map_err(|e| corrupt("device id", e))?,
                    TenantId::parse(tenant).map_err(|e| corrupt("tenant id", e))?,
                );
            }
        }
        Ok(found)
    }

    async fn register_devices(&self, scope: &TenantScope, ids: &[DeviceId], now: DateTime<Utc>) -> StoreResult<()> {
        let now = bson::DateTime::from_chrono(now);
        let tenant = scope.tenant().to_string();
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        // Upserts with $setOnInsert: an id that exists (in any tenant) is left as it is.
        stream::iter(ids)
            .map(|id| {
                let fields = doc! {
                    "tenant_id": tenant.as_str(), "name": id.as_str(), "tags": [], "group": null, "notes": "",
                    "status": "offline", "created_at": now, "updated_at": now,
                };
                self.devices
                    .update_one(doc! {"_id": id}, doc! {"$setOnInsert": fields})
                    .upsert(true)
                    .into_future()
            })
            .buffer_unordered(PRESENCE_CONCURRENCY)
            .try_for_each(|_| async { Ok(()) })
            .await?;
        Ok(())
    }

    async fn apply_presence(&self, batch: &[PresenceWrite]) -> StoreResult<()> {
        let updates = batch
            .iter()
            .filter_map(|w| match presence_update(w) {
                Ok(u) if u.is_empty() => None,
                other => Some(other.map(|u| (w.device.to_string(), u))),
            })
            .collect::<StoreResult<Vec<_>>>()?;
        stream::iter(updates)
            .map(|(id, update)| async move { self.devices.update_one(doc! {"_id": id}, update).await })
            .buffer_unordered(PRESENCE_CONCURRENCY)
            .try_for_each(|_| async { Ok(()) })
            .await?;
        Ok(())
    }

    async fn mark_all_offline(&self) -> StoreResult<u64> {
        let r = self
            .devices
            .update_many(doc! {"status": "online"}, doc! {"$set": {"status": "offline"}})
            .await?;
        Ok(r.modified_count)
    }
}

#[async_trait]
impl Store for MongoStore {
    async fn ping(&self) -> StoreResult<()> {
        self.client.database("admin").run_command(doc! {"ping": 1}).await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "mongodb"
    }
}
