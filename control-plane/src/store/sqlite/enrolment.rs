//! Enrolment on SQLite: plain columns; every state change is one conditional statement.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use luach_schemas::{DeviceId, TenantId, TopicPrefix};
use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::{SqliteStore, append_audit, conflict_on_unique, corrupt, device_id, from_ms, ms, prefix, tenant_id, time};
use crate::chain::Entry;
use crate::store::backend::EnrolmentBackend;
use crate::store::{
    BrokerCertificate, CertificateEnd, CertificateRecord, DeviceCertificate, EnrolmentRequest, EnrolmentToken,
    RequestState, StoreError, StoreResult,
};

/// Renewal nonces kept per device (older ones are dropped).
const NONCES_PER_DEVICE: i64 = 4;

const REQUEST_COLUMNS: &str = "device_id, claim_digest, poll_digest, csr_pem, key_fingerprint, platform, \
                               agent_version, created_at, expires_at, status, tenant_id, certificate_pem, source";
const CERT_COLUMNS: &str =
    "device_id, tenant_id, serial, key_fingerprint, not_before, not_after, issued_at, revoked_at, prefix";
const HISTORY_COLUMNS: &str = "serial, device_id, tenant_id, prefix, key_fingerprint, not_before, not_after, \
                               issued_at, ended_at, end_reason";
const TOKEN_COLUMNS: &str =
    "digest, id, tenant_id, name, max_uses, uses, created_by, created_at, expires_at, revoked_at";

fn request_from_row(row: &Row<'_>) -> StoreResult<EnrolmentRequest> {
    let status: String = row.get(9)?;
    let tenant: Option<String> = row.get(10)?;
    let certificate: Option<String> = row.get(11)?;
    let tenant = tenant.as_deref().map(tenant_id).transpose()?;
    let state = RequestState::from_stored(&status, tenant, certificate)
        .ok_or_else(|| corrupt("enrolment request status", &status))?;
    Ok(EnrolmentRequest {
        device_id: device_id(&row.get::<_, String>(0)?)?,
        claim_digest: row.get(1)?,
        poll_digest: row.get(2)?,
        csr_pem: row.get(3)?,
        key_fingerprint: row.get(4)?,
        platform: row.get(5)?,
        agent_version: row.get(6)?,
        created_at: time(row, 7, "created_at")?,
        expires_at: time(row, 8, "expires_at")?,
        state,
        source: row.get(12)?,
    })
}

fn certificate_from_row(row: &Row<'_>) -> StoreResult<DeviceCertificate> {
    Ok(DeviceCertificate {
        device_id: device_id(&row.get::<_, String>(0)?)?,
        tenant_id: tenant_id(&row.get::<_, String>(1)?)?,
        serial: row.get(2)?,
        key_fingerprint: row.get(3)?,
        not_before: time(row, 4, "not_before")?,
        not_after: time(row, 5, "not_after")?,
        issued_at: time(row, 6, "issued_at")?,
        revoked_at: from_ms(row.get(7)?),
        prefix: prefix(&row.get::<_, String>(8)?)?,
    })
}

fn history_from_row(row: &Row<'_>) -> StoreResult<CertificateRecord> {
    let end: Option<String> = row.get(9)?;
    Ok(CertificateRecord {
        serial: row.get(0)?,
        device_id: device_id(&row.get::<_, String>(1)?)?,
        tenant_id: tenant_id(&row.get::<_, String>(2)?)?,
        prefix: prefix(&row.get::<_, String>(3)?)?,
        key_fingerprint: row.get(4)?,
        not_before: time(row, 5, "not_before")?,
        not_after: time(row, 6, "not_after")?,
        issued_at: time(row, 7, "issued_at")?,
        ended_at: from_ms(row.get(8)?),
        end: end
            .map(|e| CertificateEnd::parse(&e).ok_or_else(|| corrupt("certificate end", &e)))
            .transpose()?,
    })
}

fn token_from_row(row: &Row<'_>) -> StoreResult<EnrolmentToken> {
    let count = |i: usize| -> StoreResult<u32> {
        let v: i64 = row.get(i)?;
        u32::try_from(v).map_err(|e| corrupt("token use count", e))
    };
    Ok(EnrolmentToken {
        digest: row.get(0)?,
        id: row.get(1)?,
        tenant_id: tenant_id(&row.get::<_, String>(2)?)?,
        name: row.get(3)?,
        max_uses: count(4)?,
        uses: count(5)?,
        created_by: row.get(6)?,
        created_at: time(row, 7, "created_at")?,
        expires_at: time(row, 8, "expires_at")?,
        revoked_at: from_ms(row.get(9)?),
    })
}

/// Ends the history record of `serial` (if it has not ended).
fn end_history(tx: &Transaction<'_>, serial: &str, at: DateTime<Utc>, end: CertificateEnd) -> StoreResult<()> {
    tx.execute(
        "UPDATE certificates SET ended_at = ?2, end_reason = ?3 WHERE serial = ?1 AND ended_at IS NULL",
        params![serial, ms(at), end.as_str()],
    )?;
    Ok(())
}

fn insert_history(tx: &Transaction<'_>, c: &DeviceCertificate) -> StoreResult<()> {
    tx.execute(
        &format!(
            "INSERT INTO certificates ({HISTORY_COLUMNS}, device_in_cn) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, NULL, 0)"
        ),
        params![
            c.serial,
            c.device_id.as_str(),
            c.tenant_id.as_str(),
            c.prefix.as_str(),
            c.key_fingerprint,
            ms(c.not_before),
            ms(c.not_after),
            ms(c.issued_at),
        ],
    )
    .map_err(conflict_on_unique("certificate serial"))?;
    Ok(())
}

#[async_trait]
impl EnrolmentBackend for SqliteStore {
    async fn put_request(&self, request: &EnrolmentRequest) -> StoreResult<()> {
        let r = request.clone();
        self.write(move |conn| {
            let (status, tenant, certificate) = r.state.stored();
            conn.execute(
                &format!(
                    "INSERT INTO enrolment_requests ({REQUEST_COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
                     ON CONFLICT (device_id) DO UPDATE SET claim_digest = excluded.claim_digest, \
                     poll_digest = excluded.poll_digest, csr_pem = excluded.csr_pem, \
                     key_fingerprint = excluded.key_fingerprint, platform = excluded.platform, \
                     agent_version = excluded.agent_version, created_at = excluded.created_at, \
                     expires_at = excluded.expires_at, status = excluded.status, \
                     tenant_id = excluded.tenant_id, certificate_pem = excluded.certificate_pem, \
                     source = excluded.source"
                ),
                params![
                    r.device_id.as_str(),
                    r.claim_digest,
                    r.poll_digest,
                    r.csr_pem,
                    r.key_fingerprint,
                    r.platform,
                    r.agent_version,
                    ms(r.created_at),
                    ms(r.expires_at),
                    status,
                    tenant,
                    certificate,
                    r.source,
                ],
            )
            .map_err(conflict_on_unique("an enrolment request with this claim code"))?;
            Ok(())
        })
        .await
    }

    async fn request(&self, device: &DeviceId) -> StoreResult<Option<EnrolmentRequest>> {
        let device = device.to_string();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {REQUEST_COLUMNS} FROM enrolment_requests WHERE device_id = ?1"
            ))?;
            let mut rows = stmt.query(params![device])?;
            rows.next()?.map(request_from_row).transpose()
        })
        .await
    }

    async fn pending_by_claim(&self, claim_digest: &str, now: DateTime<Utc>) -> StoreResult<Option<EnrolmentRequest>> {
        let digest = claim_digest.to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {REQUEST_COLUMNS} FROM enrolment_requests \
                 WHERE claim_digest = ?1 AND status = 'pending' AND expires_at > ?2"
            ))?;
            let mut rows = stmt.query(params![digest, ms(now)])?;
            rows.next()?.map(request_from_row).transpose()
        })
        .await
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
        let (device, digest) = (device.to_string(), claim_digest.to_owned());
        let from = from.as_str();
        let (status, tenant, certificate) = to.stored();
        self.write(move |conn| {
            let n = conn.execute(
                "UPDATE enrolment_requests SET status = ?1, tenant_id = ?2, certificate_pem = ?3, \
                 expires_at = MAX(expires_at, ?4) \
                 WHERE device_id = ?5 AND claim_digest = ?6 AND status = ?7 AND expires_at > ?8",
                params![
                    status,
                    tenant,
                    certificate,
                    ms(keep_until),
                    device,
                    digest,
                    from,
                    ms(now)
                ],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn count_pending(&self, now: DateTime<Utc>, source: Option<&str>) -> StoreResult<u64> {
        let source = source.map(str::to_owned);
        self.read(move |conn| {
            let n: i64 = match &source {
                None => conn
                    .prepare_cached("SELECT COUNT(*) FROM enrolment_requests WHERE status = 'pending' AND expires_at > ?1")?
                    .query_row(params![ms(now)], |r| r.get(0))?,
                Some(s) => conn
                    .prepare_cached(
                        "SELECT COUNT(*) FROM enrolment_requests WHERE source = ?2 AND status = 'pending' AND expires_at > ?1",
                    )?
                    .query_row(params![ms(now), s], |r| r.get(0))?,
            };
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn delete_expired_requests(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.write(move |conn| {
            let n = conn.execute(
                "DELETE FROM enrolment_requests WHERE expires_at <= ?1",
                params![ms(now)],
            )?;
            conn.execute("DELETE FROM renewal_nonces WHERE expires_at <= ?1", params![ms(now)])?;
            Ok(n as u64)
        })
        .await
    }

    async fn put_certificate(&self, certificate: &DeviceCertificate, audit: Entry) -> StoreResult<()> {
        let c = certificate.clone();
        self.transaction(move |tx, key| {
            // The device must be this tenant's: a certificate never moves a device.
            let n = tx
                .execute(
                    "UPDATE devices SET prefix = ?1 WHERE id = ?2 AND tenant_id = ?3",
                    params![c.prefix.as_str(), c.device_id.as_str(), c.tenant_id.as_str()],
                )
                .map_err(conflict_on_unique("topic prefix"))?;
            if n != 1 {
                return Err(StoreError::Conflict {
                    what: format!("device {} in another tenant", c.device_id),
                });
            }
            let previous: Option<(String, Option<i64>)> = tx
                .query_row(
                    "SELECT serial, revoked_at FROM device_certificates WHERE device_id = ?1",
                    params![c.device_id.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((serial, revoked)) = previous {
                let end = if revoked.is_some() {
                    CertificateEnd::Revoked
                } else {
                    CertificateEnd::Superseded
                };
                end_history(tx, &serial, c.issued_at, end)?;
            }
            tx.execute(
                &format!(
                    "INSERT INTO device_certificates ({CERT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8) \
                     ON CONFLICT (device_id) DO UPDATE SET tenant_id = excluded.tenant_id, \
                     serial = excluded.serial, key_fingerprint = excluded.key_fingerprint, \
                     not_before = excluded.not_before, not_after = excluded.not_after, \
                     issued_at = excluded.issued_at, revoked_at = NULL, prefix = excluded.prefix"
                ),
                params![
                    c.device_id.as_str(),
                    c.tenant_id.as_str(),
                    c.serial,
                    c.key_fingerprint,
                    ms(c.not_before),
                    ms(c.not_after),
                    ms(c.issued_at),
                    c.prefix.as_str(),
                ],
            )?;
            insert_history(tx, &c)?;
            append_audit(tx, audit, key)
        })
        .await
    }

    async fn renew_certificate(
        &self,
        previous_serial: &str,
        renewed: &DeviceCertificate,
        audit: Entry,
    ) -> StoreResult<bool> {
        let (previous, c) = (previous_serial.to_owned(), renewed.clone());
        self.transaction(move |tx, key| {
            let n = tx.execute(
                "UPDATE device_certificates SET serial = ?1, key_fingerprint = ?2, not_before = ?3, not_after = ?4, \
                 issued_at = ?5 WHERE device_id = ?6 AND tenant_id = ?7 AND serial = ?8 AND prefix = ?9 \
                 AND revoked_at IS NULL",
                params![
                    c.serial,
                    c.key_fingerprint,
                    ms(c.not_before),
                    ms(c.not_after),
                    ms(c.issued_at),
                    c.device_id.as_str(),
                    c.tenant_id.as_str(),
                    previous,
                    c.prefix.as_str(),
                ],
            )?;
            if n != 1 {
                return Ok(false);
            }
            end_history(tx, &previous, c.issued_at, CertificateEnd::Renewed)?;
            insert_history(tx, &c)?;
            append_audit(tx, audit, key)?;
            Ok(true)
        })
        .await
    }

    async fn certificate(&self, device: &DeviceId) -> StoreResult<Option<DeviceCertificate>> {
        let device = device.to_string();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {CERT_COLUMNS} FROM device_certificates WHERE device_id = ?1"
            ))?;
            let mut rows = stmt.query(params![device])?;
            rows.next()?.map(certificate_from_row).transpose()
        })
        .await
    }

    async fn certificate_history(&self, tenant: &TenantId, device: &DeviceId) -> StoreResult<Vec<CertificateRecord>> {
        let (tenant, device) = (tenant.to_string(), device.to_string());
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {HISTORY_COLUMNS} FROM certificates WHERE tenant_id = ?1 AND device_id = ?2 \
                 ORDER BY issued_at DESC, serial"
            ))?;
            let mut rows = stmt.query(params![tenant, device])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(history_from_row(row)?);
            }
            Ok(out)
        })
        .await
    }

    async fn refused_certificates(&self, now: DateTime<Utc>) -> StoreResult<Vec<(String, TopicPrefix)>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT serial, prefix FROM certificates WHERE not_after > ?1 AND prefix IN \
                 (SELECT prefix FROM certificates WHERE end_reason IN ('revoked', 'superseded'))",
            )?;
            let mut rows = stmt.query(params![ms(now)])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push((row.get(0)?, prefix(&row.get::<_, String>(1)?)?));
            }
            Ok(out)
        })
        .await
    }

    async fn broker_certificates(&self, now: DateTime<Utc>) -> StoreResult<Vec<BrokerCertificate>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT serial, device_id, prefix, device_in_cn, prefix IN \
                 (SELECT prefix FROM certificates WHERE end_reason IN ('revoked', 'superseded')) \
                 FROM certificates WHERE not_after > ?1 ORDER BY serial",
            )?;
            let mut rows = stmt.query(params![ms(now)])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(BrokerCertificate {
                    serial: row.get(0)?,
                    device_id: device_id(&row.get::<_, String>(1)?)?,
                    prefix: prefix(&row.get::<_, String>(2)?)?,
                    device_in_cn: row.get::<_, i64>(3)? != 0,
                    refused: row.get::<_, i64>(4)? != 0,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn revoke_certificate(
        &self,
        tenant: &TenantId,
        device: &DeviceId,
        at: DateTime<Utc>,
        audit: Option<Entry>,
    ) -> StoreResult<bool> {
        let (tenant, device) = (tenant.to_string(), device.to_string());
        self.transaction(move |tx, key| {
            let serial: Option<String> = tx
                .query_row(
                    "SELECT serial FROM device_certificates WHERE device_id = ?1 AND tenant_id = ?2",
                    params![device, tenant],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(serial) = serial else {
                return Ok(false);
            };
            tx.execute(
                "UPDATE device_certificates SET revoked_at = COALESCE(revoked_at, ?1) WHERE device_id = ?2",
                params![ms(at), device],
            )?;
            tx.execute(
                "UPDATE devices SET prefix = NULL WHERE id = ?1 AND tenant_id = ?2",
                params![device, tenant],
            )?;
            end_history(tx, &serial, at, CertificateEnd::Revoked)?;
            if let Some(entry) = audit {
                append_audit(tx, entry, key)?;
            }
            Ok(true)
        })
        .await
    }

    async fn put_nonce(&self, device: &DeviceId, digest: &str, expires_at: DateTime<Utc>) -> StoreResult<()> {
        let (device, digest) = (device.to_string(), digest.to_owned());
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO renewal_nonces (device_id, digest, expires_at) VALUES (?1, ?2, ?3)",
                params![device, digest, ms(expires_at)],
            )?;
            tx.execute(
                "DELETE FROM renewal_nonces WHERE device_id = ?1 AND digest NOT IN \
                 (SELECT digest FROM renewal_nonces WHERE device_id = ?1 ORDER BY expires_at DESC LIMIT ?2)",
                params![device, NONCES_PER_DEVICE],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn take_nonce(&self, device: &DeviceId, digest: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let (device, digest) = (device.to_string(), digest.to_owned());
        self.write(move |conn| {
            let n = conn.execute(
                "DELETE FROM renewal_nonces WHERE device_id = ?1 AND digest = ?2 AND expires_at > ?3",
                params![device, digest, ms(now)],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn insert_enrolment_token(&self, token: &EnrolmentToken, audit: Entry) -> StoreResult<()> {
        let t = token.clone();
        self.transaction(move |tx, key| {
            tx.execute(
                &format!(
                    "INSERT INTO enrolment_tokens ({TOKEN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                ),
                params![
                    t.digest,
                    t.id,
                    t.tenant_id.as_str(),
                    t.name,
                    i64::from(t.max_uses),
                    i64::from(t.uses),
                    t.created_by,
                    ms(t.created_at),
                    ms(t.expires_at),
                    t.revoked_at.map(ms),
                ],
            )
            .map_err(conflict_on_unique("enrolment token"))?;
            append_audit(tx, audit, key)
        })
        .await
    }

    async fn list_enrolment_tokens(&self, tenant: &TenantId) -> StoreResult<Vec<EnrolmentToken>> {
        let tenant = tenant.to_string();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM enrolment_tokens WHERE tenant_id = ?1 ORDER BY created_at DESC, id"
            ))?;
            let mut rows = stmt.query(params![tenant])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(token_from_row(row)?);
            }
            Ok(out)
        })
        .await
    }

    async fn revoke_enrolment_token(
        &self,
        tenant: &TenantId,
        id: &str,
        at: DateTime<Utc>,
        audit: Entry,
    ) -> StoreResult<bool> {
        let (tenant, id) = (tenant.to_string(), id.to_owned());
        self.transaction(move |tx, key| {
            let n = tx.execute(
                "UPDATE enrolment_tokens SET revoked_at = ?1 WHERE id = ?2 AND tenant_id = ?3 AND revoked_at IS NULL",
                params![ms(at), id, tenant],
            )?;
            let exists = n == 1
                || tx
                    .query_row(
                        "SELECT 1 FROM enrolment_tokens WHERE id = ?1 AND tenant_id = ?2",
                        params![id, tenant],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some();
            if n == 1 {
                append_audit(tx, audit, key)?;
            }
            Ok(exists)
        })
        .await
    }

    async fn use_enrolment_token(&self, digest: &str, now: DateTime<Utc>) -> StoreResult<Option<EnrolmentToken>> {
        let digest = digest.to_owned();
        self.write(move |conn| {
            let token = conn
                .prepare_cached(&format!(
                    "UPDATE enrolment_tokens SET uses = uses + 1 \
                     WHERE digest = ?1 AND revoked_at IS NULL AND expires_at > ?2 AND uses < max_uses \
                     RETURNING {TOKEN_COLUMNS}"
                ))?
                .query_row(params![digest, ms(now)], |row| Ok(token_from_row(row)))
                .optional()?;
            token.transpose()
        })
        .await
    }

    async fn release_enrolment_token(&self, digest: &str) -> StoreResult<()> {
        let digest = digest.to_owned();
        self.write(move |conn| {
            conn.execute(
                "UPDATE enrolment_tokens SET uses = uses - 1 WHERE digest = ?1 AND uses > 0",
                params![digest],
            )?;
            Ok(())
        })
        .await
    }
}
