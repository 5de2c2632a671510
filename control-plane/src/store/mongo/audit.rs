//! Audit chains on MongoDB: collection `audit`, `_id` = `{tenant}:{seq}` (so two appends of
//! the same position collide), the record's fields beside it.

use async_trait::async_trait;
use bson::{Document, doc};
use futures::TryStreamExt;
use mongodb::options::FindOptions;

use super::{MongoStore, corrupt, retrying};
use crate::chain::{AuditRecord, Entry, Head, Heads};
use crate::store::StoreResult;
use crate::store::backend::AuditBackend;

#[async_trait]
impl AuditBackend for MongoStore {
    async fn append_audit(&self, audit: Entry) -> StoreResult<()> {
        retrying(|| async {
            let mut session = self.begin().await?;
            MongoStore::append_audit(self, &mut session, audit.clone()).await?;
            session.commit_transaction().await?;
            Ok(())
        })
        .await
    }

    async fn audit_records(&self, tenant: &str, after: i64, limit: Option<u32>) -> StoreResult<Vec<AuditRecord>> {
        let options = FindOptions::builder()
            .sort(doc! {"seq": 1})
            .limit(limit.map(i64::from))
            .build();
        let docs: Vec<Document> = self
            .collection("audit")
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
        let docs: Vec<Document> = self
            .collection("audit")
            .aggregate(pipeline)
            .await?
            .try_collect()
            .await?;
        let mut heads = Heads::new();
        for d in docs {
            let tenant = d.get_str("_id").map_err(|e| corrupt("audit tenant", e))?.to_owned();
            let seq = d.get_i64("seq").map_err(|e| corrupt("audit seq", e))?;
            let hash = d.get_str("hash").map_err(|e| corrupt("audit hash", e))?.to_owned();
            heads.insert(tenant, Head { seq, hash });
        }
        Ok(heads)
    }
}
