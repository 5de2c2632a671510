//! Documents on MongoDB: one collection per [`DocKind`], `_id` = `{tenant}:{id}` (unique
//! across tenants, while every query still filters by `tenant_id`). Each record keeps the
//! byte size of its body for the content quota.

use async_trait::async_trait;
use bson::{Document, doc};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use luach_schemas::TenantId;
use mongodb::Collection;
use mongodb::options::FindOptions;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{MongoStore, corrupt, is_duplicate_key, retrying};
use crate::chain::Entry;
use crate::store::backend::DocBackend;
use crate::store::{DocKind, StoreError, StoreResult, StoredDoc};

#[derive(Debug, Serialize, Deserialize)]
struct DocRecord {
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

/// The collection of each kind.
pub(super) fn collection_name(kind: DocKind) -> &'static str {
    match kind {
        DocKind::Synagogue => "synagogues",
        DocKind::Memorial => "memorials",
        DocKind::Announcement => "announcements",
        DocKind::Aliyot => "aliyot",
        DocKind::Shiur => "shiurim",
        DocKind::Timer => "timers",
        DocKind::Query => "fleet_queries",
        DocKind::AlertRule => "alert_rules",
        DocKind::AlertSilence => "alert_silences",
        DocKind::NotifyChannel => "notify_channels",
        DocKind::Congregant => "congregants",
    }
}

/// The size the quota counts: the body's JSON text, in bytes.
pub(super) fn body_size(body: &Value) -> i64 {
    i64::try_from(body.to_string().len()).unwrap_or(i64::MAX)
}

impl MongoStore {
    fn docs(&self, kind: DocKind) -> Collection<DocRecord> {
        self.db.collection(collection_name(kind))
    }
}

fn doc_key(tenant: &TenantId, id: &str) -> Document {
    doc! {"_id": format!("{tenant}:{id}"), "tenant_id": tenant.as_str()}
}

#[async_trait]
impl DocBackend for MongoStore {
    async fn list_docs(
        &self,
        tenant: &TenantId,
        kind: DocKind,
        limit: u32,
        after: Option<&str>,
    ) -> StoreResult<Vec<StoredDoc>> {
        let mut filter = doc! {"tenant_id": tenant.as_str()};
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

    async fn get_doc(&self, tenant: &TenantId, kind: DocKind, id: &str) -> StoreResult<Option<StoredDoc>> {
        self.docs(kind)
            .find_one(doc_key(tenant, id))
            .await?
            .map(DocRecord::into_doc)
            .transpose()
    }

    async fn put_doc(
        &self,
        tenant: &TenantId,
        kind: DocKind,
        id: &str,
        body: &Value,
        now: DateTime<Utc>,
        audit: Entry,
    ) -> StoreResult<(StoredDoc, bool)> {
        let stamp = bson::DateTime::from_chrono(now);
        let bson_body = bson::to_bson(body).map_err(|e| corrupt("document body", e))?;
        let update = doc! {
            "$set": {"body": bson_body, "updated_at": stamp, "id": id, "size": body_size(body)},
            "$setOnInsert": {"created_at": stamp},
        };
        let created = retrying(|| async {
            let mut session = self.begin().await?;
            // Two upserts of a new id at once: one inserts, the other meets its unique key
            // and goes round again (as an update).
            let result = self
                .docs(kind)
                .update_one(doc_key(tenant, id), update.clone())
                .upsert(true)
                .session(&mut session)
                .await
                .map_err(|e| {
                    if is_duplicate_key(&e) {
                        StoreError::Contention
                    } else {
                        e.into()
                    }
                })?;
            self.append_audit(&mut session, audit.clone()).await?;
            session.commit_transaction().await?;
            Ok(result.upserted_id.is_some())
        })
        .await?;
        let stored = self
            .get_doc(tenant, kind, id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("stored document vanished".into()))?;
        Ok((stored, created))
    }

    async fn delete_doc(&self, tenant: &TenantId, kind: DocKind, id: &str, audit: Entry) -> StoreResult<bool> {
        retrying(|| async {
            let mut session = self.begin().await?;
            let deleted = self
                .docs(kind)
                .delete_one(doc_key(tenant, id))
                .session(&mut session)
                .await?
                .deleted_count
                > 0;
            self.commit_audited(session, deleted, &audit).await
        })
        .await
    }

    async fn content_bytes(&self, tenant: &TenantId) -> StoreResult<u64> {
        let mut total: i64 = 0;
        for kind in DocKind::ALL {
            let pipeline = [
                doc! {"$match": {"tenant_id": tenant.as_str()}},
                doc! {"$group": {"_id": null, "bytes": {"$sum": "$size"}}},
            ];
            let rows: Vec<Document> = self
                .collection(collection_name(kind))
                .aggregate(pipeline)
                .await?
                .try_collect()
                .await?;
            for row in rows {
                let bytes = row
                    .get_i64("bytes")
                    .or_else(|_| row.get_i32("bytes").map(i64::from))
                    .or_else(|_| row.get_f64("bytes").map(|f| f as i64))
                    .map_err(|e| corrupt("document sizes", e))?;
                total = total.saturating_add(bytes);
            }
        }
        Ok(u64::try_from(total).unwrap_or(0))
    }
}
