//! [`EnrolmentRepo`] on MongoDB: collections `enrolment_requests` (keyed by device id, unique
//! claim digest), `device_certificates` (keyed by device id) and `enrolment_tokens` (keyed by
//! the token digest). State changes are single conditional updates; filters are built from
//! typed values only.

use async_trait::async_trait;
use bson::{Document, doc};
use chrono::{DateTime, TimeZone, Utc};
use futures::TryStreamExt;
use luach_schemas::{DeviceId, TenantId};
use mongodb::options::{FindOptions, IndexOptions, ReturnDocument};
use mongodb::{Collection, IndexModel};

use super::enrolment::{DeviceCertificate, EnrolmentRepo, EnrolmentRequest, EnrolmentToken, RequestState};
use super::mongo::is_duplicate_key;
use super::{MongoStore, StoreError, StoreResult, TenantScope};

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(d: &Document, key: &str) -> Option<DateTime<Utc>> {
    d.get_i64(key).ok().and_then(|m| Utc.timestamp_millis_opt(m).single())
}

fn required_time(d: &Document, key: &str) -> StoreResult<DateTime<Utc>> {
    time(d, key).ok_or_else(|| corrupt(key, "missing"))
}

fn text(d: &Document, key: &str) -> StoreResult<String> {
    d.get_str(key).map(str::to_owned).map_err(|e| corrupt(key, e))
}

fn optional_text(d: &Document, key: &str) -> Option<String> {
    d.get_str(key).ok().map(str::to_owned)
}

fn device_id(d: &Document) -> StoreResult<DeviceId> {
    DeviceId::parse(&text(d, "_id")?).map_err(|e| corrupt("device id", e))
}

fn tenant_id(value: &str) -> StoreResult<TenantId> {
    TenantId::parse(value).map_err(|e| corrupt("tenant id", e))
}

fn count(d: &Document, key: &str) -> StoreResult<u32> {
    let v = d
        .get_i64(key)
        .or_else(|_| d.get_i32(key).map(i64::from))
        .map_err(|e| corrupt(key, e))?;
    u32::try_from(v).map_err(|e| corrupt(key, e))
}

fn request_doc(r: &EnrolmentRequest) -> Document {
    let (status, tenant, certificate) = match &r.state {
        RequestState::Pending => ("pending", None, None),
        RequestState::Issued {
            tenant_id,
            certificate_pem,
        } => ("issued", Some(tenant_id.to_string()), Some(certificate_pem.clone())),
    };
    doc! {
        "_id": r.device_id.as_str(),
        "claim_digest": &r.claim_digest,
        "poll_digest": &r.poll_digest,
        "csr_pem": &r.csr_pem,
        "key_fingerprint": &r.key_fingerprint,
        "platform": r.platform.clone(),
        "agent_version": r.agent_version.clone(),
        "created_at": ms(r.created_at),
        "expires_at": ms(r.expires_at),
        "status": status,
        "tenant_id": tenant,
        "certificate_pem": certificate,
    }
}

fn request_from_doc(d: &Document) -> StoreResult<EnrolmentRequest> {
    let status = text(d, "status")?;
    let state = match status.as_str() {
        "pending" => RequestState::Pending,
        "issued" => RequestState::Issued {
            tenant_id: tenant_id(&text(d, "tenant_id")?)?,
            certificate_pem: text(d, "certificate_pem")?,
        },
        other => return Err(corrupt("enrolment request status", other)),
    };
    Ok(EnrolmentRequest {
        device_id: device_id(d)?,
        claim_digest: text(d, "claim_digest")?,
        poll_digest: text(d, "poll_digest")?,
        csr_pem: text(d, "csr_pem")?,
        key_fingerprint: text(d, "key_fingerprint")?,
        platform: optional_text(d, "platform"),
        agent_version: optional_text(d, "agent_version"),
        created_at: required_time(d, "created_at")?,
        expires_at: required_time(d, "expires_at")?,
        state,
    })
}

fn certificate_doc(c: &DeviceCertificate) -> Document {
    doc! {
        "_id": c.device_id.as_str(),
        "tenant_id": c.tenant_id.as_str(),
        "serial": &c.serial,
        "key_fingerprint": &c.key_fingerprint,
        "not_before": ms(c.not_before),
        "not_after": ms(c.not_after),
        "issued_at": ms(c.issued_at),
        "revoked_at": c.revoked_at.map(ms),
    }
}

fn certificate_from_doc(d: &Document) -> StoreResult<DeviceCertificate> {
    Ok(DeviceCertificate {
        device_id: device_id(d)?,
        tenant_id: tenant_id(&text(d, "tenant_id")?)?,
        serial: text(d, "serial")?,
        key_fingerprint: text(d, "key_fingerprint")?,
        not_before: required_time(d, "not_before")?,
        not_after: required_time(d, "not_after")?,
        issued_at: required_time(d, "issued_at")?,
        revoked_at: time(d, "revoked_at"),
    })
}

fn token_doc(t: &EnrolmentToken) -> Document {
    doc! {
        "_id": &t.digest,
        "id": &t.id,
        "tenant_id": t.tenant_id.as_str(),
        "name": &t.name,
        "max_uses": i64::from(t.max_uses),
        "uses": i64::from(t.uses),
        // Uses left, so that taking one is a single conditional `$inc`.
        "remaining": i64::from(t.max_uses.saturating_sub(t.uses)),
        "created_by": &t.created_by,
        "created_at": ms(t.created_at),
        "expires_at": ms(t.expires_at),
        "revoked_at": t.revoked_at.map(ms),
    }
}

fn token_from_doc(d: &Document) -> StoreResult<EnrolmentToken> {
    Ok(EnrolmentToken {
        digest: text(d, "_id")?,
        id: text(d, "id")?,
        tenant_id: tenant_id(&text(d, "tenant_id")?)?,
        name: text(d, "name")?,
        max_uses: count(d, "max_uses")?,
        uses: count(d, "uses")?,
        created_by: text(d, "created_by")?,
        created_at: required_time(d, "created_at")?,
        expires_at: required_time(d, "expires_at")?,
        revoked_at: time(d, "revoked_at"),
    })
}

impl MongoStore {
    fn requests(&self) -> Collection<Document> {
        self.db.collection("enrolment_requests")
    }

    fn certificates(&self) -> Collection<Document> {
        self.db.collection("device_certificates")
    }

    fn enrolment_tokens(&self) -> Collection<Document> {
        self.db.collection("enrolment_tokens")
    }

    /// Indexes the enrolment queries rely on (called from `connect`).
    pub(super) async fn create_enrolment_indexes(&self) -> StoreResult<()> {
        let unique = || IndexOptions::builder().unique(true).build();
        self.requests()
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"claim_digest": 1})
                    .options(unique())
                    .build(),
            )
            .await?;
        self.requests()
            .create_index(IndexModel::builder().keys(doc! {"status": 1, "expires_at": 1}).build())
            .await?;
        self.requests()
            .create_index(IndexModel::builder().keys(doc! {"expires_at": 1}).build())
            .await?;
        self.certificates()
            .create_index(IndexModel::builder().keys(doc! {"revoked_at": 1}).build())
            .await?;
        self.enrolment_tokens()
            .create_index(IndexModel::builder().keys(doc! {"id": 1}).options(unique()).build())
            .await?;
        self.enrolment_tokens()
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"tenant_id": 1, "created_at": -1})
                    .build(),
            )
            .await?;
        Ok(())
    }

    /// Of `ids`, those whose certificate is revoked (ingest treats them as unregistered).
    pub(super) async fn revoked_among(&self, ids: &[&str]) -> StoreResult<std::collections::HashSet<String>> {
        let mut cursor = self
            .certificates()
            .find(doc! {"_id": {"$in": ids}, "revoked_at": {"$ne": null}})
            .projection(doc! {"_id": 1})
            .await?;
        let mut out = std::collections::HashSet::new();
        while let Some(d) = cursor.try_next().await? {
            out.insert(text(&d, "_id")?);
        }
        Ok(out)
    }

    /// Of `ids`, those with any certificate record (never auto-registered).
    pub(super) async fn enrolled_among(&self, ids: &[&str]) -> StoreResult<std::collections::HashSet<String>> {
        let mut cursor = self
            .certificates()
            .find(doc! {"_id": {"$in": ids}})
            .projection(doc! {"_id": 1})
            .await?;
        let mut out = std::collections::HashSet::new();
        while let Some(d) = cursor.try_next().await? {
            out.insert(text(&d, "_id")?);
        }
        Ok(out)
    }
}

fn conflict(e: mongodb::error::Error, what: &str) -> StoreError {
    if is_duplicate_key(&e) {
        StoreError::Conflict { what: what.to_owned() }
    } else {
        e.into()
    }
}

#[async_trait]
impl EnrolmentRepo for MongoStore {
    async fn put_request(&self, request: &EnrolmentRequest) -> StoreResult<()> {
        self.requests()
            .replace_one(doc! {"_id": request.device_id.as_str()}, request_doc(request))
            .upsert(true)
            .await
            .map_err(|e| conflict(e, "an enrolment request with this claim code"))?;
        Ok(())
    }

    async fn request(&self, device: &DeviceId) -> StoreResult<Option<EnrolmentRequest>> {
        self.requests()
            .find_one(doc! {"_id": device.as_str()})
            .await?
            .as_ref()
            .map(request_from_doc)
            .transpose()
    }

    async fn pending_by_claim(&self, claim_digest: &str, now: DateTime<Utc>) -> StoreResult<Option<EnrolmentRequest>> {
        self.requests()
            .find_one(doc! {"claim_digest": claim_digest, "status": "pending", "expires_at": {"$gt": ms(now)}})
            .await?
            .as_ref()
            .map(request_from_doc)
            .transpose()
    }

    async fn issue_request(
        &self,
        scope: &TenantScope,
        device: &DeviceId,
        claim_digest: &str,
        certificate_pem: &str,
        now: DateTime<Utc>,
        keep_until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let r = self
            .requests()
            .update_one(
                doc! {
                    "_id": device.as_str(), "claim_digest": claim_digest, "status": "pending",
                    "expires_at": {"$gt": ms(now)},
                },
                doc! {
                    "$set": {"status": "issued", "tenant_id": scope.tenant().as_str(), "certificate_pem": certificate_pem},
                    "$max": {"expires_at": ms(keep_until)},
                },
            )
            .await?;
        Ok(r.matched_count == 1)
    }

    async fn count_pending(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        Ok(self
            .requests()
            .count_documents(doc! {"status": "pending", "expires_at": {"$gt": ms(now)}})
            .await?)
    }

    async fn delete_expired_requests(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        Ok(self
            .requests()
            .delete_many(doc! {"expires_at": {"$lte": ms(now)}})
            .await?
            .deleted_count)
    }

    async fn put_certificate(&self, scope: &TenantScope, certificate: &DeviceCertificate) -> StoreResult<()> {
        if certificate.tenant_id != *scope.tenant() {
            return Err(StoreError::Corrupt("certificate outside the scope's tenant".into()));
        }
        self.certificates()
            .replace_one(
                doc! {"_id": certificate.device_id.as_str()},
                certificate_doc(certificate),
            )
            .upsert(true)
            .await?;
        Ok(())
    }

    async fn replace_certificate(
        &self,
        scope: &TenantScope,
        previous_serial: &str,
        renewed: &DeviceCertificate,
    ) -> StoreResult<bool> {
        let r = self
            .certificates()
            .update_one(
                doc! {
                    "_id": renewed.device_id.as_str(), "tenant_id": scope.tenant().as_str(),
                    "serial": previous_serial, "revoked_at": null,
                },
                doc! {"$set": {
                    "serial": &renewed.serial,
                    "key_fingerprint": &renewed.key_fingerprint,
                    "not_before": ms(renewed.not_before),
                    "not_after": ms(renewed.not_after),
                    "issued_at": ms(renewed.issued_at),
                }},
            )
            .await?;
        Ok(r.matched_count == 1)
    }

    async fn certificate(&self, device: &DeviceId) -> StoreResult<Option<DeviceCertificate>> {
        self.certificates()
            .find_one(doc! {"_id": device.as_str()})
            .await?
            .as_ref()
            .map(certificate_from_doc)
            .transpose()
    }

    async fn certificate_in(&self, scope: &TenantScope, device: &DeviceId) -> StoreResult<Option<DeviceCertificate>> {
        self.certificates()
            .find_one(doc! {"_id": device.as_str(), "tenant_id": scope.tenant().as_str()})
            .await?
            .as_ref()
            .map(certificate_from_doc)
            .transpose()
    }

    async fn revoke_certificate(&self, scope: &TenantScope, device: &DeviceId, at: DateTime<Utc>) -> StoreResult<bool> {
        let filter = doc! {"_id": device.as_str(), "tenant_id": scope.tenant().as_str()};
        let found = self.certificates().count_documents(filter.clone()).await?;
        if found == 0 {
            return Ok(false);
        }
        // Only the first revocation sets the time.
        self.certificates()
            .update_one(
                doc! {"_id": device.as_str(), "tenant_id": scope.tenant().as_str(), "revoked_at": null},
                doc! {"$set": {"revoked_at": ms(at)}},
            )
            .await?;
        Ok(true)
    }

    async fn insert_enrolment_token(&self, scope: &TenantScope, token: &EnrolmentToken) -> StoreResult<()> {
        if token.tenant_id != *scope.tenant() {
            return Err(StoreError::Corrupt("token outside the scope's tenant".into()));
        }
        self.enrolment_tokens()
            .insert_one(token_doc(token))
            .await
            .map_err(|e| conflict(e, "enrolment token"))?;
        Ok(())
    }

    async fn list_enrolment_tokens(&self, scope: &TenantScope) -> StoreResult<Vec<EnrolmentToken>> {
        let options = FindOptions::builder().sort(doc! {"created_at": -1, "id": 1}).build();
        let docs: Vec<Document> = self
            .enrolment_tokens()
            .find(doc! {"tenant_id": scope.tenant().as_str()})
            .with_options(options)
            .await?
            .try_collect()
            .await?;
        docs.iter().map(token_from_doc).collect()
    }

    async fn revoke_enrolment_token(&self, scope: &TenantScope, id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        let filter = doc! {"id": id, "tenant_id": scope.tenant().as_str()};
        if self.enrolment_tokens().count_documents(filter).await? == 0 {
            return Ok(false);
        }
        self.enrolment_tokens()
            .update_one(
                doc! {"id": id, "tenant_id": scope.tenant().as_str(), "revoked_at": null},
                doc! {"$set": {"revoked_at": ms(at)}},
            )
            .await?;
        Ok(true)
    }

    async fn use_enrolment_token(&self, digest: &str, now: DateTime<Utc>) -> StoreResult<Option<EnrolmentToken>> {
        let updated = self
            .enrolment_tokens()
            .find_one_and_update(
                doc! {
                    "_id": digest, "revoked_at": null, "expires_at": {"$gt": ms(now)}, "remaining": {"$gt": 0_i64},
                },
                doc! {"$inc": {"remaining": -1_i64, "uses": 1_i64}},
            )
            .return_document(ReturnDocument::After)
            .await?;
        updated.as_ref().map(token_from_doc).transpose()
    }

    async fn release_enrolment_token(&self, digest: &str) -> StoreResult<()> {
        self.enrolment_tokens()
            .update_one(
                doc! {"_id": digest, "uses": {"$gt": 0_i64}},
                doc! {"$inc": {"remaining": 1_i64, "uses": -1_i64}},
            )
            .await?;
        Ok(())
    }
}
