//! MongoDB migrations: the numbered list of [`crate::store::migrate`], recorded in the
//! collection `_migrations` (`_id` = version). Replicas starting together take turns through a
//! lease document (`_id: "lock"`) so each migration runs once.

use std::time::Duration;

use bson::{Bson, Document, doc};
use chrono::Utc;
use futures::TryStreamExt;
use mongodb::IndexModel;
use mongodb::options::IndexOptions;

use super::documents::{body_size, collection_name};
use super::{MongoStore, is_duplicate_key, ms};
use crate::store::migrate::{Applied, Migration, pending};
use crate::store::{DocKind, StoreError, StoreResult};

/// How long a migration lease lasts if its holder dies.
const LEASE: chrono::Duration = chrono::Duration::minutes(10);
/// How long to wait for another replica's migrations.
const WAIT: Duration = Duration::from_secs(600);

fn index(keys: Document) -> IndexModel {
    IndexModel::builder().keys(keys).build()
}

fn unique(keys: Document) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(IndexOptions::builder().unique(true).build())
        .build()
}

impl MongoStore {
    async fn indexes(&self, collection: &str, models: Vec<IndexModel>) -> StoreResult<()> {
        for model in models {
            self.collection(collection).create_index(model).await?;
        }
        Ok(())
    }

    /// Version 4: jobs (newest first per tenant, active ones, idempotency keys) and their
    /// executions (per job in roll-out order and by state).
    async fn v4(&self) -> StoreResult<()> {
        self.indexes(
            "jobs",
            vec![
                index(doc! {"tenant_id": 1, "_id": -1}),
                index(doc! {"state": 1, "_id": 1}),
                IndexModel::builder()
                    .keys(doc! {"tenant_id": 1, "idem_key": 1})
                    .options(
                        IndexOptions::builder()
                            .unique(true)
                            .partial_filter_expression(doc! {"idem_key": {"$exists": true}})
                            .build(),
                    )
                    .build(),
            ],
        )
        .await?;
        self.indexes(
            "executions",
            vec![
                index(doc! {"tenant_id": 1, "job_id": 1, "seq": 1}),
                index(doc! {"tenant_id": 1, "job_id": 1, "state": 1, "seq": 1}),
            ],
        )
        .await
    }

    /// Version 5: telemetry history (and screens' command history). Not time-series collections: a record must be stored once
    /// per (device, stream, seq), and time-series collections take no unique index.
    async fn v5(&self) -> StoreResult<()> {
        self.indexes(
            "telemetry",
            vec![
                index(doc! {"tenant_id": 1, "device_id": 1, "stream": 1, "seq": 1}),
                index(doc! {"tenant_id": 1, "device_id": 1, "kind": 1, "at": 1}),
                index(doc! {"at": 1}),
            ],
        )
        .await?;
        self.indexes("telemetry_streams", vec![index(doc! {"tenant_id": 1, "device_id": 1})])
            .await?;
        self.indexes(
            "metric_hours",
            vec![
                index(doc! {"tenant_id": 1, "device_id": 1, "metric": 1, "hour": 1}),
                index(doc! {"hour": 1}),
            ],
        )
        .await
    }

    /// Version 1: the indexes of the first release.
    async fn v1(&self) -> StoreResult<()> {
        self.indexes(
            "devices",
            vec![
                index(doc! {"tenant_id": 1, "_id": 1}),
                index(doc! {"tenant_id": 1, "status": 1, "_id": 1}),
                index(doc! {"tenant_id": 1, "tags": 1, "_id": 1}),
                index(doc! {"tenant_id": 1, "group": 1, "_id": 1}),
            ],
        )
        .await?;
        self.indexes(
            "users",
            vec![unique(doc! {"email": 1}), index(doc! {"tenant_id": 1, "email": 1})],
        )
        .await?;
        self.indexes(
            "tokens",
            vec![
                index(doc! {"user_id": 1, "kind": 1, "created_at": -1}),
                index(doc! {"family": 1}),
            ],
        )
        .await?;
        self.indexes("audit", vec![index(doc! {"tenant": 1, "seq": -1})])
            .await?;
        self.indexes(
            "enrolment_requests",
            vec![
                unique(doc! {"claim_digest": 1}),
                index(doc! {"status": 1, "expires_at": 1}),
                index(doc! {"expires_at": 1}),
            ],
        )
        .await?;
        self.indexes("device_certificates", vec![index(doc! {"revoked_at": 1})])
            .await?;
        self.indexes(
            "enrolment_tokens",
            vec![unique(doc! {"id": 1}), index(doc! {"tenant_id": 1, "created_at": -1})],
        )
        .await
    }

    /// Version 2: device revisions and topic prefixes, certificate history, renewal nonces,
    /// request sources, document sizes.
    async fn v2(&self) -> StoreResult<()> {
        let devices = self.collection("devices");
        devices
            .update_many(
                doc! {"revision": {"$exists": false}},
                doc! {"$set": {"revision": 1_i64}},
            )
            .await?;
        let current: Vec<Document> = self
            .collection("device_certificates")
            .find(doc! {})
            .await?
            .try_collect()
            .await?;
        let revoked: Vec<Bson> = current
            .iter()
            .filter(|c| c.get_i64("revoked_at").is_ok())
            .filter_map(|c| c.get("_id").cloned())
            .collect();
        // A device's topics were named by its id until now; a revoked device has none.
        let unprefixed: Vec<Document> = devices
            .find(doc! {"prefix": {"$exists": false}, "_id": {"$nin": revoked}})
            .projection(doc! {"_id": 1})
            .await?
            .try_collect()
            .await?;
        for d in unprefixed {
            if let Some(id) = d.get("_id").cloned() {
                devices
                    .update_one(doc! {"_id": id.clone()}, doc! {"$set": {"prefix": id}})
                    .await?;
            }
        }
        self.indexes("devices", vec![index(doc! {"prefix": 1})]).await?;
        for c in &current {
            let Some(id) = c.get("_id").cloned() else { continue };
            self.collection("device_certificates")
                .update_one(
                    doc! {"_id": id.clone(), "prefix": {"$exists": false}},
                    doc! {"$set": {"prefix": id.clone()}},
                )
                .await?;
            let mut history = c.clone();
            history.insert("_id", c.get("serial").cloned().unwrap_or(Bson::Null));
            history.insert("device_id", id);
            history.insert("prefix", c.get("_id").cloned().unwrap_or(Bson::Null));
            let revoked_at = c.get("revoked_at").cloned().unwrap_or(Bson::Null);
            history.insert("ended_at", revoked_at.clone());
            history.insert(
                "end_reason",
                if revoked_at == Bson::Null {
                    Bson::Null
                } else {
                    Bson::String("revoked".into())
                },
            );
            history.remove("revoked_at");
            match self.collection("certificates").insert_one(history).await {
                Ok(_) => {}
                Err(e) if is_duplicate_key(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.indexes(
            "certificates",
            vec![
                index(doc! {"tenant_id": 1, "device_id": 1, "issued_at": -1}),
                index(doc! {"device_id": 1}),
            ],
        )
        .await?;
        self.indexes(
            "renewal_nonces",
            vec![index(doc! {"device_id": 1, "digest": 1}), index(doc! {"expires_at": 1})],
        )
        .await?;
        self.collection("enrolment_requests")
            .update_many(doc! {"source": {"$exists": false}}, doc! {"$set": {"source": ""}})
            .await?;
        self.indexes(
            "enrolment_requests",
            vec![index(doc! {"source": 1, "status": 1, "expires_at": 1})],
        )
        .await?;
        for kind in DocKind::ALL {
            let docs = self.collection(collection_name(kind));
            let unmeasured: Vec<Document> = docs
                .find(doc! {"size": {"$exists": false}})
                .await?
                .try_collect()
                .await?;
            for d in unmeasured {
                let body: serde_json::Value = d
                    .get("body")
                    .cloned()
                    .map(bson::from_bson)
                    .transpose()
                    .map_err(|e| StoreError::Corrupt(format!("document body: {e}")))?
                    .unwrap_or_default();
                if let Some(id) = d.get("_id").cloned() {
                    docs.update_one(doc! {"_id": id}, doc! {"$set": {"size": body_size(&body)}})
                        .await?;
                }
            }
            self.indexes(collection_name(kind), vec![index(doc! {"tenant_id": 1, "id": 1})])
                .await?;
        }
        Ok(())
    }

    async fn apply(&self, m: &Migration) -> StoreResult<()> {
        match m.version {
            1 => self.v1().await,
            2 => self.v2().await,
            // Board settings live in the device document; a document without them reads as
            // the defaults, so there is nothing to rewrite.
            3 => Ok(()),
            4 => self.v4().await,
            5 => self.v5().await,
            // A new document kind: its collection and index (v2 indexed the kinds it knew).
            6 => {
                self.indexes(
                    collection_name(DocKind::Query),
                    vec![index(doc! {"tenant_id": 1, "id": 1})],
                )
                .await
            }
            // A job without a phase reads as phase 0 opened at creation: nothing to rewrite.
            7 => Ok(()),
            // Leases live in their own collection, made by the first upsert; the presence sweep
            // finds online devices by last seen.
            8 => {
                self.indexes("devices", vec![index(doc! {"status": 1, "last_seen": 1})])
                    .await
            }
            // A certificate without `device_in_cn` reads as the earlier form: nothing to rewrite.
            9 => Ok(()),
            // Alert rules are documents of a new kind; alerts are found by state and device.
            10 => {
                self.indexes(
                    collection_name(DocKind::AlertRule),
                    vec![index(doc! {"tenant_id": 1, "id": 1})],
                )
                .await?;
                self.indexes(
                    "alerts",
                    vec![
                        index(doc! {"tenant_id": 1, "state": 1, "_id": -1}),
                        index(doc! {"tenant_id": 1, "device_id": 1, "_id": -1}),
                    ],
                )
                .await
            }
            // The notification outbox: due messages by state and time, a tenant's log by id.
            11 => {
                self.indexes(
                    "deliveries",
                    vec![
                        index(doc! {"state": 1, "next_at": 1}),
                        index(doc! {"tenant_id": 1, "_id": -1}),
                    ],
                )
                .await
            }
            // Two new document kinds: silences and notification channels.
            12 => {
                for kind in [DocKind::AlertSilence, DocKind::NotifyChannel] {
                    self.indexes(collection_name(kind), vec![index(doc! {"tenant_id": 1, "id": 1})])
                        .await?;
                }
                Ok(())
            }
            // Devices gain `drops` and `bundle_*` (absent reads as zero and none); congregants
            // are a new document kind.
            13 => {
                self.indexes(
                    collection_name(DocKind::Congregant),
                    vec![index(doc! {"tenant_id": 1, "id": 1})],
                )
                .await
            }
            v => Err(StoreError::Corrupt(format!(
                "no mongodb migration for schema version {v}"
            ))),
        }
    }

    async fn current_version(&self) -> StoreResult<u32> {
        let done: Vec<Document> = self
            .collection("_migrations")
            .find(doc! {})
            .await?
            .try_collect()
            .await?;
        Ok(done
            .iter()
            .filter_map(|d| d.get_i64("_id").ok().or_else(|| d.get_i32("_id").ok().map(i64::from)))
            .max()
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0))
    }

    /// Takes the migration lease; false while another replica holds it.
    async fn lease(&self, holder: &str) -> StoreResult<bool> {
        let now = Utc::now();
        let result = self
            .collection("_migrations")
            .update_one(
                doc! {"_id": "lock", "until": {"$lt": ms(now)}},
                doc! {"$set": {"holder": holder, "until": ms(now + LEASE)}},
            )
            .upsert(true)
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn release(&self, holder: &str) -> StoreResult<()> {
        self.collection("_migrations")
            .update_one(doc! {"_id": "lock", "holder": holder}, doc! {"$set": {"until": 0_i64}})
            .await?;
        Ok(())
    }
}

/// Applies (or, with `dry_run`, lists) what the database lacks.
pub(super) async fn run(store: &MongoStore, dry_run: bool) -> StoreResult<Vec<Applied>> {
    if dry_run {
        let todo = pending(store.current_version().await?)?;
        return Ok(todo
            .iter()
            .map(|m| Applied {
                version: m.version,
                name: m.name,
                at: Utc::now(),
            })
            .collect());
    }
    let holder = uuid::Uuid::new_v4().to_string();
    let started = std::time::Instant::now();
    while !store.lease(&holder).await? {
        if started.elapsed() > WAIT {
            return Err(StoreError::Task("another server holds the migration lease".into()));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let outcome = migrate_held(store).await;
    store.release(&holder).await?;
    outcome
}

async fn migrate_held(store: &MongoStore) -> StoreResult<Vec<Applied>> {
    let mut applied = Vec::new();
    for m in pending(store.current_version().await?)? {
        store.apply(m).await?;
        let at = Utc::now();
        store
            .collection("_migrations")
            .insert_one(doc! {"_id": i64::from(m.version), "name": m.name, "applied_at": ms(at)})
            .await?;
        tracing::info!(version = m.version, name = m.name, "mongodb schema migrated");
        applied.push(Applied {
            version: m.version,
            name: m.name,
            at,
        });
    }
    Ok(applied)
}
