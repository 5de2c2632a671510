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
use mongodb::{Client, ClientSession, Collection, IndexModel};

use super::changes;
use crate::audit::{Actor, AuditRecord, Change, Head, Heads, current_actor};
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
    pub(super) db: mongodb::Database,
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
        let store = Self { client, db, devices };
        store.create_identity_indexes().await?;
        store
            .audit()
            .create_index(IndexModel::builder().keys(doc! {"tenant": 1, "seq": -1}).build())
            .await?;
        store.create_enrolment_indexes().await?;
        Ok(store)
    }

    fn scoped(scope: &TenantScope, id: &DeviceId) -> Document {
        doc! {"tenant_id": scope.tenant().as_str(), "_id": id.as_str()}
    }
}

pub(super) fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
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
        let actor = current_actor();
        retrying(|| self.create_once(scope, &device, now, &actor)).await
    }

    async fn update(
        &self,
        scope: &TenantScope,
        id: &DeviceId,
        patch: DevicePatch,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Device>> {
        let actor = current_actor();
        retrying(|| self.update_once(scope, id, &patch, now, &actor)).await
    }

    async fn delete(&self, scope: &TenantScope, id: &DeviceId) -> StoreResult<bool> {
        let actor = current_actor();
        retrying(|| async {
            let mut session = self.begin().await?;
            let deleted = self
                .devices
                .delete_one(Self::scoped(scope, id))
                .session(&mut session)
                .await?
                .deleted_count
                > 0;
            if deleted {
                let change = changes::device_deleted(scope.tenant().as_str(), id.as_str());
                self.append_audit(&mut session, change, actor.clone(), Utc::now())
                    .await?;
            }
            session.commit_transaction().await?;
            Ok(deleted)
        })
        .await
    }
}

impl MongoStore {
    async fn create_once(
        &self,
        scope: &TenantScope,
        device: &NewDevice,
        now: DateTime<Utc>,
        actor: &Actor,
    ) -> StoreResult<Device> {
        let device = device.clone();
        let at = now;
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
        let mut session = self.begin().await?;
        match self.devices.insert_one(&doc).session(&mut session).await {
            Ok(_) => {}
            Err(e) if is_duplicate_key(&e) => {
                return Err(StoreError::Conflict {
                    what: format!("device {}", device.id),
                });
            }
            Err(e) => return Err(e.into()),
        }
        let change = changes::device_created(
            scope.tenant().as_str(),
            &doc.id,
            &doc.name,
            &doc.tags,
            doc.group.as_deref(),
        );
        self.append_audit(&mut session, change, actor.clone(), at).await?;
        session.commit_transaction().await?;
        doc.into_device()
    }

    async fn update_once(
        &self,
        scope: &TenantScope,
        id: &DeviceId,
        patch: &DevicePatch,
        now: DateTime<Utc>,
        actor: &Actor,
    ) -> StoreResult<Option<Device>> {
        let change = changes::device_updated(scope.tenant().as_str(), id.as_str(), patch);
        let patch = patch.clone();
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
        let mut session = self.begin().await?;
        let updated = self
            .devices
            .find_one_and_update(Self::scoped(scope, id), doc! {"$set": set})
            .return_document(mongodb::options::ReturnDocument::After)
            .session(&mut session)
            .await?;
        if updated.is_some() {
            self.append_audit(&mut session, change, actor.clone(), now).await?;
        }
        session.commit_transaction().await?;
        updated.map(DeviceDoc::into_device).transpose()
    }

    /// A session with a started transaction.
    pub(super) async fn begin(&self) -> StoreResult<ClientSession> {
        let mut session = self.client.start_session().await?;
        session.start_transaction().await?;
        Ok(session)
    }

    fn audit(&self) -> Collection<Document> {
        self.db.collection("audit")
    }

    /// Chains `change` onto its tenant's audit log inside `session`'s transaction. A
    /// concurrent append to the same chain makes the commit fail with [`StoreError::Contention`].
    pub(super) async fn append_audit(
        &self,
        session: &mut ClientSession,
        change: Change,
        actor: Actor,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let last = self
            .audit()
            .find_one(doc! {"tenant": &change.tenant})
            .sort(doc! {"seq": -1})
            .session(&mut *session)
            .await?;
        let prev = match last {
            Some(d) => Some((
                d.get_i64("seq").map_err(|e| corrupt("audit seq", e))?,
                d.get_str("hash").map_err(|e| corrupt("audit hash", e))?.to_owned(),
            )),
            None => None,
        };
        let record = crate::audit::seal(change, actor, at, prev);
        let mut d = bson::to_document(&record).map_err(|e| corrupt("audit record", e))?;
        d.insert("_id", format!("{}:{}", record.tenant, record.seq));
        match self.audit().insert_one(d).session(&mut *session).await {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate_key(&e) => Err(StoreError::Contention),
            Err(e) => Err(e.into()),
        }
    }
}

/// Runs a transactional change again while it fails transiently (a concurrent change to the
/// same audit chain, a transaction write conflict), with a short growing pause.
pub(super) async fn retrying<T, F, Fut>(f: F) -> StoreResult<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    let mut attempt = 0u32;
    loop {
        match f().await {
            Err(e) if attempt < 8 && e.is_transient() => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(2u64 << attempt.min(6))).await;
            }
            other => return other,
        }
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
            DocKind::Aliyot => "aliyot",
            DocKind::Shiur => "shiurim",
            DocKind::Timer => "timers",
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
        let actor = current_actor();
        retrying(|| self.put_doc_once(scope, kind, id, &body, now, &actor)).await
    }

    async fn delete_doc(&self, scope: &TenantScope, kind: DocKind, id: &str) -> StoreResult<bool> {
        let actor = current_actor();
        retrying(|| async {
            let mut session = self.begin().await?;
            let deleted = self
                .docs(kind)
                .delete_one(Self::doc_key(scope, id))
                .session(&mut session)
                .await?
                .deleted_count
                > 0;
            if deleted {
                let change = changes::doc_deleted(scope.tenant().as_str(), kind, id);
                self.append_audit(&mut session, change, actor.clone(), Utc::now())
                    .await?;
            }
            session.commit_transaction().await?;
            Ok(deleted)
        })
        .await
    }
}

impl MongoStore {
    async fn put_doc_once(
        &self,
        scope: &TenantScope,
        kind: DocKind,
        id: &str,
        json: &serde_json::Value,
        now: DateTime<Utc>,
        actor: &Actor,
    ) -> StoreResult<(StoredDoc, bool)> {
        let at = now;
        let now = bson::DateTime::from_chrono(now);
        let body = bson::to_bson(json).map_err(|e| corrupt("document body", e))?;
        let update = doc! {
            "$set": {"body": body, "updated_at": now, "id": id},
            "$setOnInsert": {"created_at": now},
        };
        let mut session = self.begin().await?;
        let result = self
            .docs(kind)
            .update_one(Self::doc_key(scope, id), update)
            .upsert(true)
            .session(&mut session)
            .await?;
        let change = changes::doc_put(scope.tenant().as_str(), kind, id, json);
        self.append_audit(&mut session, change, actor.clone(), at).await?;
        session.commit_transaction().await?;
        let stored = self
            .get_doc(scope, kind, id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("stored document vanished".into()))?;
        Ok((stored, result.upserted_id.is_some()))
    }
}

#[async_trait]
impl IngestRepo for MongoStore {
    async fn tenants_of(&self, ids: &[DeviceId]) -> StoreResult<HashMap<DeviceId, TenantId>> {
        let raw = self.db.collection::<Document>("devices");
        let mut found = HashMap::new();
        for chunk in ids.chunks(1000) {
            let wanted: Vec<&str> = chunk.iter().map(DeviceId::as_str).collect();
            // A device whose certificate is revoked counts as unregistered.
            let revoked = self.revoked_among(&wanted).await?;
            let wanted: Vec<&str> = wanted.into_iter().filter(|id| !revoked.contains(*id)).collect();
            if wanted.is_empty() {
                continue;
            }
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
        // Enrolled devices (with a certificate record, even a revoked one) are never registered
        // this way: a revoked or deleted device must not come back.
        let mut enrolled = std::collections::HashSet::new();
        for chunk in ids.chunks(1000) {
            let wanted: Vec<&str> = chunk.iter().map(DeviceId::as_str).collect();
            enrolled.extend(self.enrolled_among(&wanted).await?);
        }
        let ids: Vec<String> = ids
            .iter()
            .map(ToString::to_string)
            .filter(|id| !enrolled.contains(id))
            .collect();
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
    async fn audit_records(&self, tenant: &str, after: i64, limit: Option<u32>) -> StoreResult<Vec<AuditRecord>> {
        let options = FindOptions::builder()
            .sort(doc! {"seq": 1})
            .limit(limit.map(i64::from))
            .build();
        let docs: Vec<Document> = self
            .audit()
            .find(doc! {"tenant": tenant, "seq": {"$gt": after}})
            .with_options(options)
            .await?
            .try_collect()
            .await?;
        docs.into_iter()
            .map(|mut d| {
                d.remove("_id");
                bson::from_document(d).map_err(|e| corrupt("audit record", e))
            })
            .collect()
    }

    async fn audit_heads(&self) -> StoreResult<Heads> {
        let pipeline = [
            doc! {"$sort": {"tenant": 1, "seq": -1}},
            doc! {"$group": {"_id": "$tenant", "seq": {"$first": "$seq"}, "hash": {"$first": "$hash"}}},
        ];
        let docs: Vec<Document> = self.audit().aggregate(pipeline).await?.try_collect().await?;
        let mut heads = Heads::new();
        for d in docs {
            let tenant = d.get_str("_id").map_err(|e| corrupt("audit tenant", e))?.to_owned();
            let seq = d.get_i64("seq").map_err(|e| corrupt("audit seq", e))?;
            let hash = d.get_str("hash").map_err(|e| corrupt("audit hash", e))?.to_owned();
            heads.insert(tenant, Head { seq, hash });
        }
        Ok(heads)
    }

    async fn ping(&self) -> StoreResult<()> {
        self.client.database("admin").run_command(doc! {"ping": 1}).await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "mongodb"
    }
}
