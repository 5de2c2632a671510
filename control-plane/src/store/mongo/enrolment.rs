//! Enrolment on MongoDB: collections `enrolment_requests` (`_id` = device id, unique claim
//! digest), `device_certificates` (the current one, `_id` = device id), `certificates` (every
//! issued one, `_id` = serial), `renewal_nonces` and `enrolment_tokens` (`_id` = digest).

use async_trait::async_trait;
use bson::{Document, doc};
use chrono::{DateTime, Utc};
use luach_schemas::{DeviceId, TenantId, TopicPrefix};
use mongodb::ClientSession;
use mongodb::options::ReturnDocument;

use super::{MongoStore, conflict, corrupt, ms, optional_text, parsed, required_time, retrying, text, time};
use crate::chain::Entry;
use crate::store::backend::EnrolmentBackend;
use crate::store::{
    BrokerCertificate, CertificateEnd, CertificateRecord, DeviceCertificate, EnrolmentRequest, EnrolmentToken,
    RequestState, StoreError, StoreResult,
};

/// Renewal nonces kept per device (older ones are dropped).
const NONCES_PER_DEVICE: usize = 4;

fn count(d: &Document, key: &str) -> StoreResult<u32> {
    let v = d
        .get_i64(key)
        .or_else(|_| d.get_i32(key).map(i64::from))
        .map_err(|e| corrupt(key, e))?;
    u32::try_from(v).map_err(|e| corrupt(key, e))
}

fn request_doc(r: &EnrolmentRequest) -> Document {
    let (status, tenant, certificate) = r.state.stored();
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
        "source": &r.source,
    }
}

fn request_from_doc(d: &Document) -> StoreResult<EnrolmentRequest> {
    let status = text(d, "status")?;
    let tenant = d
        .get_str("tenant_id")
        .ok()
        .map(|t| TenantId::parse(t).map_err(|e| corrupt("tenant_id", e)))
        .transpose()?;
    let state = RequestState::from_stored(&status, tenant, optional_text(d, "certificate_pem"))
        .ok_or_else(|| corrupt("enrolment request status", &status))?;
    Ok(EnrolmentRequest {
        device_id: parsed(d, "_id", DeviceId::parse)?,
        claim_digest: text(d, "claim_digest")?,
        poll_digest: text(d, "poll_digest")?,
        csr_pem: text(d, "csr_pem")?,
        key_fingerprint: text(d, "key_fingerprint")?,
        platform: optional_text(d, "platform"),
        agent_version: optional_text(d, "agent_version"),
        created_at: required_time(d, "created_at")?,
        expires_at: required_time(d, "expires_at")?,
        state,
        source: optional_text(d, "source").unwrap_or_default(),
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
        "prefix": c.prefix.as_str(),
    }
}

fn certificate_from_doc(d: &Document) -> StoreResult<DeviceCertificate> {
    Ok(DeviceCertificate {
        device_id: parsed(d, "_id", DeviceId::parse)?,
        tenant_id: parsed(d, "tenant_id", TenantId::parse)?,
        prefix: parsed(d, "prefix", TopicPrefix::parse)?,
        serial: text(d, "serial")?,
        key_fingerprint: text(d, "key_fingerprint")?,
        not_before: required_time(d, "not_before")?,
        not_after: required_time(d, "not_after")?,
        issued_at: required_time(d, "issued_at")?,
        revoked_at: time(d, "revoked_at"),
    })
}

fn history_doc(c: &DeviceCertificate) -> Document {
    doc! {
        "_id": &c.serial,
        "device_id": c.device_id.as_str(),
        "tenant_id": c.tenant_id.as_str(),
        "prefix": c.prefix.as_str(),
        "key_fingerprint": &c.key_fingerprint,
        "not_before": ms(c.not_before),
        "not_after": ms(c.not_after),
        "issued_at": ms(c.issued_at),
        "ended_at": null,
        "end_reason": null,
        "device_in_cn": false,
    }
}

fn history_from_doc(d: &Document) -> StoreResult<CertificateRecord> {
    let end = optional_text(d, "end_reason");
    Ok(CertificateRecord {
        serial: text(d, "_id")?,
        device_id: parsed(d, "device_id", DeviceId::parse)?,
        tenant_id: parsed(d, "tenant_id", TenantId::parse)?,
        prefix: parsed(d, "prefix", TopicPrefix::parse)?,
        key_fingerprint: text(d, "key_fingerprint")?,
        not_before: required_time(d, "not_before")?,
        not_after: required_time(d, "not_after")?,
        issued_at: required_time(d, "issued_at")?,
        ended_at: time(d, "ended_at"),
        end: end
            .map(|e| CertificateEnd::parse(&e).ok_or_else(|| corrupt("certificate end", &e)))
            .transpose()?,
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
        tenant_id: parsed(d, "tenant_id", TenantId::parse)?,
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
    /// Ends the history record of `serial` (if it has not ended).
    async fn end_history(
        &self,
        session: &mut ClientSession,
        serial: &str,
        at: DateTime<Utc>,
        end: CertificateEnd,
    ) -> StoreResult<()> {
        self.collection("certificates")
            .update_one(
                doc! {"_id": serial, "ended_at": null},
                doc! {"$set": {"ended_at": ms(at), "end_reason": end.as_str()}},
            )
            .session(session)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl EnrolmentBackend for MongoStore {
    async fn put_request(&self, request: &EnrolmentRequest) -> StoreResult<()> {
        self.collection("enrolment_requests")
            .replace_one(doc! {"_id": request.device_id.as_str()}, request_doc(request))
            .upsert(true)
            .await
            .map_err(|e| conflict(e, "an enrolment request with this claim code"))?;
        Ok(())
    }

    async fn request(&self, device: &DeviceId) -> StoreResult<Option<EnrolmentRequest>> {
        self.collection("enrolment_requests")
            .find_one(doc! {"_id": device.as_str()})
            .await?
            .as_ref()
            .map(request_from_doc)
            .transpose()
    }

    async fn pending_by_claim(&self, claim_digest: &str, now: DateTime<Utc>) -> StoreResult<Option<EnrolmentRequest>> {
        self.collection("enrolment_requests")
            .find_one(doc! {"claim_digest": claim_digest, "status": "pending", "expires_at": {"$gt": ms(now)}})
            .await?
            .as_ref()
            .map(request_from_doc)
            .transpose()
    }

    async fn transition_request(
        &self,
        device: &DeviceId,
        claim_digest: &str,
        from: &RequestState,
        to: &RequestState,
        now: DateTime<Utc>,
        keep_until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let (status, tenant, certificate) = to.stored();
        let r = self
            .collection("enrolment_requests")
            .update_one(
                doc! {
                    "_id": device.as_str(), "claim_digest": claim_digest, "status": from.as_str(),
                    "expires_at": {"$gt": ms(now)},
                },
                doc! {
                    "$set": {"status": status, "tenant_id": tenant, "certificate_pem": certificate},
                    "$max": {"expires_at": ms(keep_until)},
                },
            )
            .await?;
        Ok(r.matched_count == 1)
    }

    async fn count_pending(&self, now: DateTime<Utc>, source: Option<&str>) -> StoreResult<u64> {
        let mut filter = doc! {"status": "pending", "expires_at": {"$gt": ms(now)}};
        if let Some(s) = source {
            filter.insert("source", s);
        }
        Ok(self.collection("enrolment_requests").count_documents(filter).await?)
    }

    async fn delete_expired_requests(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let n = self
            .collection("enrolment_requests")
            .delete_many(doc! {"expires_at": {"$lte": ms(now)}})
            .await?
            .deleted_count;
        self.collection("renewal_nonces")
            .delete_many(doc! {"expires_at": {"$lte": ms(now)}})
            .await?;
        Ok(n)
    }

    async fn put_certificate(&self, certificate: &DeviceCertificate, audit: Entry) -> StoreResult<()> {
        let c = certificate;
        retrying(|| async {
            let mut session = self.begin().await?;
            // The device must be this tenant's: a certificate never moves a device.
            let moved = self
                .collection("devices")
                .update_one(
                    doc! {"_id": c.device_id.as_str(), "tenant_id": c.tenant_id.as_str()},
                    doc! {"$set": {"prefix": c.prefix.as_str()}},
                )
                .session(&mut session)
                .await
                .map_err(|e| conflict(e, "topic prefix"))?;
            if moved.matched_count != 1 {
                return Err(StoreError::Conflict {
                    what: format!("device {} in another tenant", c.device_id),
                });
            }
            let previous = self
                .collection("device_certificates")
                .find_one(doc! {"_id": c.device_id.as_str()})
                .session(&mut session)
                .await?;
            if let Some(p) = previous {
                let end = if time(&p, "revoked_at").is_some() {
                    CertificateEnd::Revoked
                } else {
                    CertificateEnd::Superseded
                };
                self.end_history(&mut session, &text(&p, "serial")?, c.issued_at, end)
                    .await?;
            }
            self.collection("device_certificates")
                .replace_one(doc! {"_id": c.device_id.as_str()}, certificate_doc(c))
                .upsert(true)
                .session(&mut session)
                .await?;
            self.collection("certificates")
                .insert_one(history_doc(c))
                .session(&mut session)
                .await
                .map_err(|e| conflict(e, "certificate serial"))?;
            self.append_audit(&mut session, audit.clone()).await?;
            session.commit_transaction().await?;
            Ok(())
        })
        .await
    }

    async fn renew_certificate(
        &self,
        previous_serial: &str,
        renewed: &DeviceCertificate,
        audit: Entry,
    ) -> StoreResult<bool> {
        let c = renewed;
        retrying(|| async {
            let mut session = self.begin().await?;
            let r = self
                .collection("device_certificates")
                .update_one(
                    doc! {
                        "_id": c.device_id.as_str(), "tenant_id": c.tenant_id.as_str(),
                        "serial": previous_serial, "prefix": c.prefix.as_str(), "revoked_at": null,
                    },
                    doc! {"$set": {
                        "serial": &c.serial,
                        "key_fingerprint": &c.key_fingerprint,
                        "not_before": ms(c.not_before),
                        "not_after": ms(c.not_after),
                        "issued_at": ms(c.issued_at),
                    }},
                )
                .session(&mut session)
                .await?;
            if r.matched_count != 1 {
                session.abort_transaction().await?;
                return Ok(false);
            }
            self.end_history(&mut session, previous_serial, c.issued_at, CertificateEnd::Renewed)
                .await?;
            self.collection("certificates")
                .insert_one(history_doc(c))
                .session(&mut session)
                .await
                .map_err(|e| conflict(e, "certificate serial"))?;
            self.append_audit(&mut session, audit.clone()).await?;
            session.commit_transaction().await?;
            Ok(true)
        })
        .await
    }

    async fn certificate(&self, device: &DeviceId) -> StoreResult<Option<DeviceCertificate>> {
        self.collection("device_certificates")
            .find_one(doc! {"_id": device.as_str()})
            .await?
            .as_ref()
            .map(certificate_from_doc)
            .transpose()
    }

    async fn certificate_history(&self, tenant: &TenantId, device: &DeviceId) -> StoreResult<Vec<CertificateRecord>> {
        let filter = doc! {"tenant_id": tenant.as_str(), "device_id": device.as_str()};
        let docs = self
            .find_sorted("certificates", filter, doc! {"issued_at": -1, "_id": 1})
            .await?;
        docs.iter().map(history_from_doc).collect()
    }

    async fn refused_certificates(&self, now: DateTime<Utc>) -> StoreResult<Vec<(String, TopicPrefix)>> {
        let ended = self
            .find_sorted(
                "certificates",
                doc! {"end_reason": {"$in": [CertificateEnd::Revoked.as_str(), CertificateEnd::Superseded.as_str()]}},
                doc! {"_id": 1},
            )
            .await?;
        let prefixes: Vec<String> = ended.iter().map(|d| text(d, "prefix")).collect::<StoreResult<_>>()?;
        if prefixes.is_empty() {
            return Ok(Vec::new());
        }
        let docs = self
            .find_sorted(
                "certificates",
                doc! {"prefix": {"$in": prefixes}, "not_after": {"$gt": ms(now)}},
                doc! {"_id": 1},
            )
            .await?;
        docs.iter()
            .map(|d| Ok((text(d, "_id")?, parsed(d, "prefix", TopicPrefix::parse)?)))
            .collect()
    }

    async fn broker_certificates(&self, now: DateTime<Utc>) -> StoreResult<Vec<BrokerCertificate>> {
        let refused: std::collections::HashSet<String> = self
            .refused_certificates(now)
            .await?
            .into_iter()
            .map(|(serial, _)| serial)
            .collect();
        let docs = self
            .find_sorted("certificates", doc! {"not_after": {"$gt": ms(now)}}, doc! {"_id": 1})
            .await?;
        docs.iter()
            .map(|d| {
                let serial = text(d, "_id")?;
                Ok(BrokerCertificate {
                    refused: refused.contains(&serial),
                    device_id: parsed(d, "device_id", DeviceId::parse)?,
                    prefix: parsed(d, "prefix", TopicPrefix::parse)?,
                    // Certificates recorded before the field existed are in the earlier form.
                    device_in_cn: d.get_bool("device_in_cn").unwrap_or(true),
                    serial,
                })
            })
            .collect()
    }

    async fn revoke_certificate(
        &self,
        tenant: &TenantId,
        device: &DeviceId,
        at: DateTime<Utc>,
        audit: Option<Entry>,
    ) -> StoreResult<bool> {
        retrying(|| async {
            let mut session = self.begin().await?;
            let current = self
                .collection("device_certificates")
                .find_one(doc! {"_id": device.as_str(), "tenant_id": tenant.as_str()})
                .session(&mut session)
                .await?;
            let Some(current) = current else {
                session.abort_transaction().await?;
                return Ok(false);
            };
            // Only the first revocation sets the time.
            self.collection("device_certificates")
                .update_one(
                    doc! {"_id": device.as_str(), "revoked_at": null},
                    doc! {"$set": {"revoked_at": ms(at)}},
                )
                .session(&mut session)
                .await?;
            self.collection("devices")
                .update_one(
                    doc! {"_id": device.as_str(), "tenant_id": tenant.as_str()},
                    doc! {"$unset": {"prefix": ""}},
                )
                .session(&mut session)
                .await?;
            self.end_history(&mut session, &text(&current, "serial")?, at, CertificateEnd::Revoked)
                .await?;
            if let Some(entry) = &audit {
                self.append_audit(&mut session, entry.clone()).await?;
            }
            session.commit_transaction().await?;
            Ok(true)
        })
        .await
    }

    async fn put_nonce(&self, device: &DeviceId, digest: &str, expires_at: DateTime<Utc>) -> StoreResult<()> {
        let nonces = self.collection("renewal_nonces");
        nonces
            .insert_one(doc! {"device_id": device.as_str(), "digest": digest, "expires_at": ms(expires_at)})
            .await?;
        let kept = self
            .find_sorted(
                "renewal_nonces",
                doc! {"device_id": device.as_str()},
                doc! {"expires_at": -1},
            )
            .await?;
        let old: Vec<bson::Bson> = kept
            .iter()
            .skip(NONCES_PER_DEVICE)
            .filter_map(|d| d.get("_id").cloned())
            .collect();
        if !old.is_empty() {
            nonces.delete_many(doc! {"_id": {"$in": old}}).await?;
        }
        Ok(())
    }

    async fn take_nonce(&self, device: &DeviceId, digest: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let r = self
            .collection("renewal_nonces")
            .delete_one(doc! {"device_id": device.as_str(), "digest": digest, "expires_at": {"$gt": ms(now)}})
            .await?;
        Ok(r.deleted_count == 1)
    }

    async fn insert_enrolment_token(&self, token: &EnrolmentToken, audit: Entry) -> StoreResult<()> {
        let d = token_doc(token);
        retrying(|| async {
            let mut session = self.begin().await?;
            self.collection("enrolment_tokens")
                .insert_one(d.clone())
                .session(&mut session)
                .await
                .map_err(|e| conflict(e, "enrolment token"))?;
            self.append_audit(&mut session, audit.clone()).await?;
            session.commit_transaction().await?;
            Ok(())
        })
        .await
    }

    async fn list_enrolment_tokens(&self, tenant: &TenantId) -> StoreResult<Vec<EnrolmentToken>> {
        let filter = doc! {"tenant_id": tenant.as_str()};
        let docs = self
            .find_sorted("enrolment_tokens", filter, doc! {"created_at": -1, "id": 1})
            .await?;
        docs.iter().map(token_from_doc).collect()
    }

    async fn revoke_enrolment_token(
        &self,
        tenant: &TenantId,
        id: &str,
        at: DateTime<Utc>,
        audit: Entry,
    ) -> StoreResult<bool> {
        retrying(|| async {
            let mut session = self.begin().await?;
            let tokens = self.collection("enrolment_tokens");
            let exists = tokens
                .find_one(doc! {"id": id, "tenant_id": tenant.as_str()})
                .session(&mut session)
                .await?
                .is_some();
            let n = tokens
                .update_one(
                    doc! {"id": id, "tenant_id": tenant.as_str(), "revoked_at": null},
                    doc! {"$set": {"revoked_at": ms(at)}},
                )
                .session(&mut session)
                .await?
                .modified_count;
            if n == 1 {
                self.append_audit(&mut session, audit.clone()).await?;
            }
            session.commit_transaction().await?;
            Ok(exists)
        })
        .await
    }

    async fn use_enrolment_token(&self, digest: &str, now: DateTime<Utc>) -> StoreResult<Option<EnrolmentToken>> {
        let updated = self
            .collection("enrolment_tokens")
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
        self.collection("enrolment_tokens")
            .update_one(
                doc! {"_id": digest, "uses": {"$gt": 0_i64}},
                doc! {"$inc": {"remaining": 1_i64, "uses": -1_i64}},
            )
            .await?;
        Ok(())
    }
}
