//! Alerts on MongoDB: collection `alerts` (`_id` = alert id), the filtered fields at the top
//! level and the whole record under `record`; every filter carries the tenant.

use async_trait::async_trait;
use bson::{Bson, Document, doc};
use chrono::{DateTime, Utc};
use luach_schemas::TenantId;

use super::{MongoStore, corrupt, ms, retrying};
use crate::chain::Entry;
use crate::store::backend::AlertBackend;
use crate::store::{AlertFilter, AlertRecord, AlertState, Delivery, StoreResult};

fn fields(a: &AlertRecord) -> StoreResult<Document> {
    Ok(doc! {
        "tenant_id": a.tenant_id.as_str(),
        "rule_id": &a.rule_id,
        "device_id": a.device_id.as_str(),
        "state": a.state.as_str(),
        "resolved_at": a.resolved_at.map(ms),
        "record": bson::to_bson(a).map_err(|e| corrupt("alert", e))?,
    })
}

fn alert_from(d: &Document) -> StoreResult<AlertRecord> {
    let record = d.get("record").cloned().unwrap_or(Bson::Null);
    bson::from_bson(record).map_err(|e| corrupt("alert", e))
}

fn query(tenant: &TenantId, filter: &AlertFilter) -> Document {
    let mut q = doc! {"tenant_id": tenant.as_str()};
    if let Some(state) = filter.state {
        q.insert("state", state.as_str());
    } else if filter.active {
        q.insert("state", doc! {"$ne": AlertState::Resolved.as_str()});
    }
    if let Some(device) = &filter.device {
        q.insert("device_id", device.as_str());
    }
    q
}

impl MongoStore {
    fn alerts(&self) -> mongodb::Collection<Document> {
        self.collection("alerts")
    }
}

#[async_trait]
impl AlertBackend for MongoStore {
    async fn insert_alert(&self, alert: &AlertRecord, deliveries: &[Delivery]) -> StoreResult<()> {
        let mut d = fields(alert)?;
        d.insert("_id", &alert.id);
        let messages = super::outbox::documents(deliveries)?;
        if messages.is_empty() {
            self.alerts().insert_one(d).await?;
            return Ok(());
        }
        retrying(|| async {
            let mut session = self.begin().await?;
            self.alerts().insert_one(d.clone()).session(&mut session).await?;
            self.deliveries()
                .insert_many(messages.clone())
                .session(&mut session)
                .await?;
            session.commit_transaction().await?;
            Ok(())
        })
        .await
    }

    async fn get_alert(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<AlertRecord>> {
        self.alerts()
            .find_one(doc! {"tenant_id": tenant.as_str(), "_id": id})
            .await?
            .as_ref()
            .map(alert_from)
            .transpose()
    }

    async fn list_alerts(
        &self,
        tenant: &TenantId,
        filter: &AlertFilter,
        limit: u32,
        after: Option<&str>,
    ) -> StoreResult<(Vec<AlertRecord>, u64)> {
        let (docs, total) = self.newest_first("alerts", query(tenant, filter), limit, after).await?;
        Ok((docs.iter().map(alert_from).collect::<StoreResult<_>>()?, total))
    }

    async fn move_alert(
        &self,
        next: &AlertRecord,
        from: AlertState,
        audit: Option<Entry>,
        deliveries: &[Delivery],
    ) -> StoreResult<bool> {
        let filter = doc! {"tenant_id": next.tenant_id.as_str(), "_id": &next.id, "state": from.as_str()};
        let update = doc! {"$set": fields(next)?};
        let messages = super::outbox::documents(deliveries)?;
        if audit.is_none() && messages.is_empty() {
            return Ok(self.alerts().update_one(filter, update).await?.matched_count == 1);
        }
        retrying(|| async {
            let mut session = self.begin().await?;
            let r = self
                .alerts()
                .update_one(filter.clone(), update.clone())
                .session(&mut session)
                .await?;
            let changed = r.matched_count == 1;
            if changed && !messages.is_empty() {
                self.deliveries()
                    .insert_many(messages.clone())
                    .session(&mut session)
                    .await?;
            }
            match &audit {
                Some(audit) => self.commit_audited(session, changed, audit).await,
                None => {
                    session.commit_transaction().await?;
                    Ok(changed)
                }
            }
        })
        .await
    }

    async fn delete_alerts_resolved_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        let r = self
            .alerts()
            .delete_many(doc! {
                "state": AlertState::Resolved.as_str(),
                "resolved_at": {"$lt": ms(cutoff)},
            })
            .await?;
        Ok(r.deleted_count)
    }
}
