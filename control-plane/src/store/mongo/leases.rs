//! Leases on MongoDB: collection `leases`, `_id` = name. Taking one is an upsert filtered on
//! "expired or mine": when another replica holds it, the filter matches nothing and the
//! insert collides with the existing `_id`, which is the answer "held elsewhere".

use async_trait::async_trait;
use bson::doc;
use chrono::{DateTime, Utc};

use super::{MongoStore, is_duplicate_key, ms};
use crate::store::StoreResult;
use crate::store::backend::LeaseBackend;

#[async_trait]
impl LeaseBackend for MongoStore {
    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let result = self
            .collection("leases")
            .update_one(
                doc! {"_id": name, "$or": [{"holder": holder}, {"until": {"$lt": ms(now)}}]},
                doc! {"$set": {"holder": holder, "until": ms(until)}},
            )
            .upsert(true)
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        self.collection("leases")
            .update_one(doc! {"_id": name, "holder": holder}, doc! {"$set": {"until": 0_i64}})
            .await?;
        Ok(())
    }
}
