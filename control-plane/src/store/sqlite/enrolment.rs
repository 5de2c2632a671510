//! [`EnrolmentRepo`] on SQLite: plain columns; every state change is one conditional statement.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use luach_schemas::{DeviceId, TenantId};
use rusqlite::{OptionalExtension, Row, params};

use super::enrolment::{DeviceCertificate, EnrolmentRepo, EnrolmentRequest, EnrolmentToken, RequestState};
use super::sqlite::{corrupt, from_ms, ms};
use super::{SqliteStore, StoreError, StoreResult, TenantScope};

/// Tables of this module (applied by [`SqliteStore::open`]).
pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS enrolment_requests (
    device_id       TEXT PRIMARY KEY,
    claim_digest    TEXT NOT NULL UNIQUE,
    poll_digest     TEXT NOT NULL,
    csr_pem         TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    platform        TEXT,
    agent_version   TEXT,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    status          TEXT NOT NULL,
    tenant_id       TEXT,
    certificate_pem TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS enrolment_requests_pending ON enrolment_requests (status, expires_at);
CREATE INDEX IF NOT EXISTS enrolment_requests_expiry ON enrolment_requests (expires_at);
CREATE TABLE IF NOT EXISTS device_certificates (
    device_id       TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    serial          TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    not_before      INTEGER NOT NULL,
    not_after       INTEGER NOT NULL,
    issued_at       INTEGER NOT NULL,
    revoked_at      INTEGER
) STRICT;
CREATE TABLE IF NOT EXISTS enrolment_tokens (
    digest     TEXT PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    tenant_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    max_uses   INTEGER NOT NULL,
    uses       INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS enrolment_tokens_tenant ON enrolment_tokens (tenant_id, created_at);
"#;

const REQUEST_COLUMNS: &str = "device_id, claim_digest, poll_digest, csr_pem, key_fingerprint, platform, \
                               agent_version, created_at, expires_at, status, tenant_id, certificate_pem";
const CERT_COLUMNS: &str =
    "device_id, tenant_id, serial, key_fingerprint, not_before, not_after, issued_at, revoked_at";
const TOKEN_COLUMNS: &str =
    "digest, id, tenant_id, name, max_uses, uses, created_by, created_at, expires_at, revoked_at";

fn time(row: &Row<'_>, i: usize, what: &str) -> StoreResult<DateTime<Utc>> {
    from_ms(row.get(i)?).ok_or_else(|| corrupt(what, "missing"))
}

fn device_id(text: &str) -> StoreResult<DeviceId> {
    DeviceId::parse(text).map_err(|e| corrupt("device id", e))
}

fn tenant_id(text: &str) -> StoreResult<TenantId> {
    TenantId::parse(text).map_err(|e| corrupt("tenant id", e))
}

fn request_from_row(row: &Row<'_>) -> StoreResult<EnrolmentRequest> {
    let status: String = row.get(9)?;
    let tenant: Option<String> = row.get(10)?;
    let certificate: Option<String> = row.get(11)?;
    let state = match (status.as_str(), tenant, certificate) {
        ("pending", _, _) => RequestState::Pending,
        ("issued", Some(tenant), Some(certificate_pem)) => RequestState::Issued {
            tenant_id: tenant_id(&tenant)?,
            certificate_pem,
        },
        _ => return Err(corrupt("enrolment request status", &status)),
    };
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

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

#[async_trait]
impl EnrolmentRepo for SqliteStore {
    async fn put_request(&self, request: &EnrolmentRequest) -> StoreResult<()> {
        let r = request.clone();
        self.with(move |conn| {
            let (status, tenant, certificate) = match &r.state {
                RequestState::Pending => ("pending", None, None),
                RequestState::Issued {
                    tenant_id,
                    certificate_pem,
                } => ("issued", Some(tenant_id.to_string()), Some(certificate_pem.clone())),
            };
            conn.execute(
                &format!(
                    "INSERT INTO enrolment_requests ({REQUEST_COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
                     ON CONFLICT (device_id) DO UPDATE SET claim_digest = excluded.claim_digest, \
                     poll_digest = excluded.poll_digest, csr_pem = excluded.csr_pem, \
                     key_fingerprint = excluded.key_fingerprint, platform = excluded.platform, \
                     agent_version = excluded.agent_version, created_at = excluded.created_at, \
                     expires_at = excluded.expires_at, status = excluded.status, \
                     tenant_id = excluded.tenant_id, certificate_pem = excluded.certificate_pem"
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
                ],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict {
                        what: "an enrolment request with this claim code".into(),
                    }
                } else {
                    e.into()
                }
            })?;
            Ok(())
        })
        .await
    }

    async fn request(&self, device: &DeviceId) -> StoreResult<Option<EnrolmentRequest>> {
        let device = device.to_string();
        self.with(move |conn| {
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
        self.with(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {REQUEST_COLUMNS} FROM enrolment_requests \
                 WHERE claim_digest = ?1 AND status = 'pending' AND expires_at > ?2"
            ))?;
            let mut rows = stmt.query(params![digest, ms(now)])?;
            rows.next()?.map(request_from_row).transpose()
        })
        .await
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
        let (tenant, device, digest, pem) = (
            scope.tenant().to_string(),
            device.to_string(),
            claim_digest.to_owned(),
            certificate_pem.to_owned(),
        );
        self.with(move |conn| {
            let n = conn.execute(
                "UPDATE enrolment_requests SET status = 'issued', tenant_id = ?1, certificate_pem = ?2, \
                 expires_at = MAX(expires_at, ?3) \
                 WHERE device_id = ?4 AND claim_digest = ?5 AND status = 'pending' AND expires_at > ?6",
                params![tenant, pem, ms(keep_until), device, digest, ms(now)],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn count_pending(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.with(move |conn| {
            let n: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM enrolment_requests WHERE status = 'pending' AND expires_at > ?1")?
                .query_row(params![ms(now)], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn delete_expired_requests(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.with(move |conn| {
            let n = conn.execute(
                "DELETE FROM enrolment_requests WHERE expires_at <= ?1",
                params![ms(now)],
            )?;
            Ok(n as u64)
        })
        .await
    }

    async fn put_certificate(&self, scope: &TenantScope, certificate: &DeviceCertificate) -> StoreResult<()> {
        if certificate.tenant_id != *scope.tenant() {
            return Err(StoreError::Corrupt("certificate outside the scope's tenant".into()));
        }
        let c = certificate.clone();
        self.with(move |conn| {
            conn.execute(
                &format!(
                    "INSERT INTO device_certificates ({CERT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                     ON CONFLICT (device_id) DO UPDATE SET tenant_id = excluded.tenant_id, \
                     serial = excluded.serial, key_fingerprint = excluded.key_fingerprint, \
                     not_before = excluded.not_before, not_after = excluded.not_after, \
                     issued_at = excluded.issued_at, revoked_at = excluded.revoked_at"
                ),
                params![
                    c.device_id.as_str(),
                    c.tenant_id.as_str(),
                    c.serial,
                    c.key_fingerprint,
                    ms(c.not_before),
                    ms(c.not_after),
                    ms(c.issued_at),
                    c.revoked_at.map(ms),
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn replace_certificate(
        &self,
        scope: &TenantScope,
        previous_serial: &str,
        renewed: &DeviceCertificate,
    ) -> StoreResult<bool> {
        let (tenant, previous, c) = (scope.tenant().to_string(), previous_serial.to_owned(), renewed.clone());
        self.with(move |conn| {
            let n = conn.execute(
                "UPDATE device_certificates SET serial = ?1, key_fingerprint = ?2, not_before = ?3, not_after = ?4, \
                 issued_at = ?5 WHERE device_id = ?6 AND tenant_id = ?7 AND serial = ?8 AND revoked_at IS NULL",
                params![
                    c.serial,
                    c.key_fingerprint,
                    ms(c.not_before),
                    ms(c.not_after),
                    ms(c.issued_at),
                    c.device_id.as_str(),
                    tenant,
                    previous,
                ],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn certificate(&self, device: &DeviceId) -> StoreResult<Option<DeviceCertificate>> {
        let device = device.to_string();
        self.with(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {CERT_COLUMNS} FROM device_certificates WHERE device_id = ?1"
            ))?;
            let mut rows = stmt.query(params![device])?;
            rows.next()?.map(certificate_from_row).transpose()
        })
        .await
    }

    async fn certificate_in(&self, scope: &TenantScope, device: &DeviceId) -> StoreResult<Option<DeviceCertificate>> {
        let (tenant, device) = (scope.tenant().to_string(), device.to_string());
        self.with(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {CERT_COLUMNS} FROM device_certificates WHERE device_id = ?1 AND tenant_id = ?2"
            ))?;
            let mut rows = stmt.query(params![device, tenant])?;
            rows.next()?.map(certificate_from_row).transpose()
        })
        .await
    }

    async fn revoke_certificate(&self, scope: &TenantScope, device: &DeviceId, at: DateTime<Utc>) -> StoreResult<bool> {
        let (tenant, device) = (scope.tenant().to_string(), device.to_string());
        self.with(move |conn| {
            let n = conn.execute(
                "UPDATE device_certificates SET revoked_at = COALESCE(revoked_at, ?1) \
                 WHERE device_id = ?2 AND tenant_id = ?3",
                params![ms(at), device, tenant],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn insert_enrolment_token(&self, scope: &TenantScope, token: &EnrolmentToken) -> StoreResult<()> {
        if token.tenant_id != *scope.tenant() {
            return Err(StoreError::Corrupt("token outside the scope's tenant".into()));
        }
        let t = token.clone();
        self.with(move |conn| {
            conn.execute(
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
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict {
                        what: "enrolment token".into(),
                    }
                } else {
                    e.into()
                }
            })?;
            Ok(())
        })
        .await
    }

    async fn list_enrolment_tokens(&self, scope: &TenantScope) -> StoreResult<Vec<EnrolmentToken>> {
        let tenant = scope.tenant().to_string();
        self.with(move |conn| {
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

    async fn revoke_enrolment_token(&self, scope: &TenantScope, id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        let (tenant, id) = (scope.tenant().to_string(), id.to_owned());
        self.with(move |conn| {
            let n = conn.execute(
                "UPDATE enrolment_tokens SET revoked_at = COALESCE(revoked_at, ?1) WHERE id = ?2 AND tenant_id = ?3",
                params![ms(at), id, tenant],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn use_enrolment_token(&self, digest: &str, now: DateTime<Utc>) -> StoreResult<Option<EnrolmentToken>> {
        let digest = digest.to_owned();
        self.with(move |conn| {
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
        self.with(move |conn| {
            conn.execute(
                "UPDATE enrolment_tokens SET uses = uses - 1 WHERE digest = ?1 AND uses > 0",
                params![digest],
            )?;
            Ok(())
        })
        .await
    }
}
