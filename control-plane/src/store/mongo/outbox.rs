//! The notification outbox on MongoDB: collection `deliveries` (`_id` = delivery id), the
//! fields the sender selects on at the top level and the whole record under `record`.

use async_trait::async_trait;
use bson::{Bson, Document, doc};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use luach_schemas::TenantId;

use super::{MongoStore, corrupt, ms};
use crate::store::backend::OutboxBackend;
use crate::store::{Delivery, DeliveryState, StoreResult};

fn fields(d: &Delivery) -> StoreResult<Document> {
    Ok(doc! {
        "tenant_id": d.tenant_id.as_str(),
        "state": d.state.as_str(),
        "attempts": i64::from(d.attempts),
        "next_at": ms(d.next_at),
        "record": bson::to_bson(d).map_err(|e| corrupt("delivery", e))?,
    })
}

/// The documents of `deliveries`, to insert with the change they tell of.
pub(super) fn documents(deliveries: &[Delivery]) -> StoreResult<Vec<Document>> {
    deliveries
        .iter()
        .map(|d| {
            let mut doc = fields(d)?;
            doc.insert("_id", &d.id);
            Ok(doc)
        })
        .collect()
}

/// Whether every write error of `e` is a duplicate key.
fn only_duplicates(e: &mongodb::error::Error) -> bool {
    use mongodb::error::ErrorKind;
    match e.kind.as_ref() {
        ErrorKind::InsertMany(m) => {
            m.write_concern_error.is_none()
                && m.write_errors
                    .as_ref()
                    .is_some_and(|errors| errors.iter().all(|w| w.code == 11000))
        }
        _ => false,
    }
}

fn delivery_from(d: &Document) -> StoreResult<Delivery> {
    bson::from_bson(d.get("record").cloned().unwrap_or(Bson::Null)).map_err(|e| corrupt("delivery", e))
}

impl MongoStore {
    pub(super) fn deliveries(&self) -> mongodb::Collection<Document> {
        self.collection("deliveries")
    }
}

#[async_trait]
impl OutboxBackend for MongoStore {
    async fn insert_deliveries(&self, deliveries: &[Delivery]) -> StoreResult<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        match self
            .deliveries()
            .insert_many(documents(deliveries)?)
            .ordered(false)
            .await
        {
            Ok(_) => Ok(()),
            // Messages queued before (a notice's id is drawn from what it tells of) stay as
            // they are; the others went in.
            Err(e) if only_duplicates(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn due_deliveries(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Delivery>> {
        let docs: Vec<Document> = self
            .deliveries()
            .find(doc! {"state": DeliveryState::Pending.as_str(), "next_at": {"$lte": ms(now)}})
            .sort(doc! {"next_at": 1, "_id": 1})
            .limit(i64::from(limit))
            .await?
            .try_collect()
            .await?;
        docs.iter().map(delivery_from).collect()
    }

    async fn delete_deliveries_settled_below(&self, id_below: &str) -> StoreResult<u64> {
        let r = self
            .deliveries()
            .delete_many(doc! {"state": {"$ne": DeliveryState::Pending.as_str()}, "_id": {"$lt": id_below}})
            .await?;
        Ok(r.deleted_count)
    }

    async fn settle_delivery(&self, next: &Delivery, attempts: u32) -> StoreResult<bool> {
        let filter = doc! {
            "tenant_id": next.tenant_id.as_str(), "_id": &next.id,
            "state": DeliveryState::Pending.as_str(), "attempts": i64::from(attempts),
        };
        let r = self
            .deliveries()
            .update_one(filter, doc! {"$set": fields(next)?})
            .await?;
        Ok(r.matched_count == 1)
    }

    async fn list_deliveries(
        &self,
        tenant: &TenantId,
        limit: u32,
        after: Option<&str>,
    ) -> StoreResult<(Vec<Delivery>, u64)> {
        let (docs, total) = self
            .newest_first("deliveries", doc! {"tenant_id": tenant.as_str()}, limit, after)
            .await?;
        Ok((docs.iter().map(delivery_from).collect::<StoreResult<_>>()?, total))
    }
}
