//! Enrolment decisions: who may get a certificate for which device id, in which tenant.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use luach_pki::PkiError;
use luach_schemas::DeviceId;
use sha2::{Digest, Sha256};

use super::code;
use super::pki::{DeviceCertificatePem, DevicePki};
use crate::auth::limiter::{Limiter, LimiterError};
use crate::auth::{Clock, secret};
use crate::config::EnrolmentConfig;
use crate::error::{ApiError, FieldError, check_text};
use crate::store::{
    Device, DeviceCertificate, DevicePatch, DynStore, EnrolmentRequest, EnrolmentToken, NewDevice, RequestState,
    StoreError, TenantScope,
};

/// Prefix of bulk enrolment tokens.
pub const TOKEN_PREFIX: &str = "le_";
/// Prefix of poll secrets.
pub const POLL_PREFIX: &str = "lq_";
/// Largest CSR accepted, in bytes (a P-256 CSR is about 500).
pub const MAX_CSR_BYTES: usize = 16 * 1024;
/// Longest platform / agent version / name text.
pub const MAX_LABEL_CHARS: usize = 100;
/// How long an issued certificate stays fetchable by the polling device after the claim.
const FETCH_WINDOW: chrono::Duration = chrono::Duration::hours(1);
/// Attempts to draw a claim code that no stored request has.
const CODE_ATTEMPTS: usize = 5;

/// Why an enrolment operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum EnrolmentError {
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    /// Unknown, expired or already used claim code; unknown request or wrong poll secret.
    #[error("not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("the enrolment token is unknown, expired, revoked or used up")]
    TokenInvalid,
    #[error("renewal refused")]
    RenewalRefused,
    #[error("too many requests")]
    TooMany { retry_after_secs: u64 },
    /// The CA could not sign a request that was already checked (e.g. the CA has expired).
    #[error("issuing the certificate: {0}")]
    Issue(PkiError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Limiter(#[from] LimiterError),
}

impl From<EnrolmentError> for ApiError {
    fn from(e: EnrolmentError) -> Self {
        use axum::http::StatusCode;
        match e {
            EnrolmentError::Invalid(fields) => ApiError::validation(fields),
            EnrolmentError::NotFound(what) => ApiError::not_found(what),
            EnrolmentError::Conflict(m) => ApiError::conflict(m),
            EnrolmentError::TokenInvalid => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "enrolment_token_invalid",
                "the enrolment token is unknown, expired, revoked or used up",
            ),
            EnrolmentError::RenewalRefused => ApiError::new(
                StatusCode::FORBIDDEN,
                "renewal_refused",
                "renewal refused: the device has no current certificate for this key (revoked, deleted or re-keyed); \
                 enrol it again",
            ),
            EnrolmentError::TooMany { retry_after_secs } => ApiError::too_many_requests(retry_after_secs),
            e @ EnrolmentError::Issue(_) => ApiError::internal(&e),
            EnrolmentError::Store(e) => e.into(),
            EnrolmentError::Limiter(e) => {
                tracing::error!(error = %e, "rate limiter unavailable");
                ApiError::unavailable("rate limiter unavailable")
            }
        }
    }
}

type Result<T> = std::result::Result<T, EnrolmentError>;

fn invalid(path: &str, message: impl Into<String>) -> EnrolmentError {
    EnrolmentError::Invalid(vec![FieldError::new(path, message)])
}

fn csr_error(e: PkiError) -> EnrolmentError {
    invalid("csr_pem", e.to_string())
}

/// Hex SHA-256 of a DER public key.
fn fingerprint(public_key_der: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(public_key_der))
}

/// A CSR that verified, with the fingerprint of its key.
struct CheckedCsr<'a> {
    pem: &'a str,
    fingerprint: String,
}

fn check_csr(csr_pem: &str) -> Result<CheckedCsr<'_>> {
    if csr_pem.len() > MAX_CSR_BYTES {
        return Err(invalid("csr_pem", format!("at most {MAX_CSR_BYTES} bytes")));
    }
    let info = luach_pki::verify_csr(csr_pem).map_err(csr_error)?;
    Ok(CheckedCsr {
        pem: csr_pem,
        fingerprint: fingerprint(&info.public_key_der),
    })
}

/// A request from a device (`POST /enrolment/requests`).
#[derive(Debug, Clone)]
pub struct RequestInput {
    pub device_id: DeviceId,
    pub csr_pem: String,
    pub platform: Option<String>,
    pub agent_version: Option<String>,
    pub enrolment_token: Option<String>,
}

/// What a device learns from a request without a token.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Shown once, `XXXX-XXXX`.
    pub claim_code: String,
    /// Shown once; the device polls with it.
    pub poll_secret: String,
    pub expires_at: DateTime<Utc>,
}

/// The outcome of a request.
#[derive(Debug, Clone)]
pub enum RequestOutcome {
    Pending(Pending),
    Issued(DeviceCertificatePem),
}

/// Where a polled request stands.
#[derive(Debug, Clone)]
pub enum PollOutcome {
    Pending { expires_at: DateTime<Utc> },
    Issued { certificate_pem: String },
}

/// How a device is being enrolled: a tenant admin saw its claim code, or it presented the
/// tenant's bulk token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Claim,
    Token,
}

/// A new bulk token and its secret (shown once).
#[derive(Debug, Clone)]
pub struct NewToken {
    pub token: EnrolmentToken,
    pub secret: String,
}

/// Enrolment, renewal and revocation of device certificates.
#[derive(Clone)]
pub struct EnrolmentService {
    store: DynStore,
    pki: Arc<DevicePki>,
    limiter: Arc<dyn Limiter>,
    clock: Arc<dyn Clock>,
    config: EnrolmentConfig,
}

impl std::fmt::Debug for EnrolmentService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolmentService").finish_non_exhaustive()
    }
}

impl EnrolmentService {
    pub fn new(
        store: DynStore,
        pki: Arc<DevicePki>,
        limiter: Arc<dyn Limiter>,
        clock: Arc<dyn Clock>,
        config: EnrolmentConfig,
    ) -> Self {
        Self {
            store,
            pki,
            limiter,
            clock,
            config,
        }
    }

    pub fn config(&self) -> &EnrolmentConfig {
        &self.config
    }

    /// The CA certificates devices trust (PEM).
    pub fn trust_pem(&self) -> &str {
        self.pki.trust_pem()
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Counts one event against `key` and refuses once the window holds more than `limit`.
    async fn limit(&self, key: &str, limit: u64, window: Duration) -> Result<()> {
        let w = self.limiter.hit(key, window, self.now()).await?;
        if w.count > limit {
            return Err(EnrolmentError::TooMany {
                retry_after_secs: w.resets_in_secs,
            });
        }
        Ok(())
    }

    /// Refuses an IP that has failed too often this minute, without counting.
    async fn check_failures(&self, ip: IpAddr) -> Result<()> {
        let w = self
            .limiter
            .peek(&format!("enrol-fail:{ip}"), Duration::from_secs(60), self.now())
            .await?;
        if w.count >= self.config.requests_per_ip_per_minute {
            return Err(EnrolmentError::TooMany {
                retry_after_secs: w.resets_in_secs,
            });
        }
        Ok(())
    }

    async fn failed(&self, ip: IpAddr) -> Result<()> {
        self.limiter
            .hit(&format!("enrol-fail:{ip}"), Duration::from_secs(60), self.now())
            .await?;
        Ok(())
    }

    /// A device asks to be enrolled. With a bulk token it is enrolled at once; without one it
    /// gets a claim code to show and a poll secret.
    pub async fn request(&self, ip: IpAddr, input: RequestInput) -> Result<RequestOutcome> {
        let mut errors = Vec::new();
        if let Some(p) = &input.platform {
            check_text(&mut errors, "platform", p, false, MAX_LABEL_CHARS);
        }
        if let Some(v) = &input.agent_version {
            check_text(&mut errors, "agent_version", v, false, MAX_LABEL_CHARS);
        }
        if !errors.is_empty() {
            return Err(EnrolmentError::Invalid(errors));
        }
        match &input.enrolment_token {
            Some(token) => self.request_with_token(ip, token, &input).await,
            None => {
                self.limit(
                    &format!("enrol-anon:{ip}"),
                    self.config.requests_per_ip_per_minute,
                    Duration::from_secs(60),
                )
                .await?;
                let csr = check_csr(&input.csr_pem)?;
                self.request_claim_code(&input, &csr).await.map(RequestOutcome::Pending)
            }
        }
    }

    async fn request_with_token(&self, ip: IpAddr, token: &str, input: &RequestInput) -> Result<RequestOutcome> {
        self.check_failures(ip).await?;
        let csr = check_csr(&input.csr_pem)?;
        let now = self.now();
        let digest = secret::digest(token);
        let found = if token.starts_with(TOKEN_PREFIX) {
            self.store.use_enrolment_token(&digest, now).await?
        } else {
            None
        };
        let Some(token) = found else {
            self.failed(ip).await?;
            return Err(EnrolmentError::TokenInvalid);
        };
        let scope = TenantScope::trusted(token.tenant_id.clone());
        match self.enrol(&scope, &input.device_id, &csr, Via::Token, None).await {
            Ok((_, issued)) => {
                tracing::info!(
                    target: "audit",
                    device_id = %input.device_id,
                    tenant_id = %scope.tenant(),
                    token = %token.id,
                    serial = %issued.serial,
                    "device enrolled with a bulk token"
                );
                Ok(RequestOutcome::Issued(issued))
            }
            Err(e) => {
                if let Err(release) = self.store.release_enrolment_token(&digest).await {
                    tracing::warn!(error = %release, token = %token.id, "could not give back a token use");
                }
                Err(e)
            }
        }
    }

    async fn request_claim_code(&self, input: &RequestInput, csr: &CheckedCsr<'_>) -> Result<Pending> {
        let now = self.now();
        self.store.delete_expired_requests(now).await?;
        if let Some(existing) = self.store.request(&input.device_id).await?
            && existing.expires_at > now
            && existing.state == RequestState::Pending
            && existing.key_fingerprint != csr.fingerprint
        {
            return Err(EnrolmentError::Conflict(
                "an enrolment request for this device id is pending with another key".into(),
            ));
        }
        if self.store.count_pending(now).await? >= self.config.max_pending {
            tracing::warn!(
                max = self.config.max_pending,
                "enrolment requests refused: too many pending"
            );
            return Err(EnrolmentError::TooMany { retry_after_secs: 60 });
        }
        let (poll_secret, poll_digest) = secret::generate(POLL_PREFIX);
        let expires_at = now + chrono::Duration::seconds(i64::try_from(self.config.claim_ttl_secs).unwrap_or(900));
        for _ in 0..CODE_ATTEMPTS {
            let claim_code = code::generate();
            let Some(claim_digest) = code::digest(&claim_code) else {
                continue;
            };
            let request = EnrolmentRequest {
                device_id: input.device_id.clone(),
                claim_digest,
                poll_digest: poll_digest.clone(),
                csr_pem: csr.pem.to_owned(),
                key_fingerprint: csr.fingerprint.clone(),
                platform: input.platform.clone(),
                agent_version: input.agent_version.clone(),
                created_at: now,
                expires_at,
                state: RequestState::Pending,
            };
            match self.store.put_request(&request).await {
                Ok(()) => {
                    tracing::info!(device_id = %input.device_id, "enrolment requested");
                    return Ok(Pending {
                        claim_code,
                        poll_secret,
                        expires_at,
                    });
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EnrolmentError::TooMany { retry_after_secs: 5 })
    }

    /// Registers the device in the scope's tenant (unless it is there) and issues its
    /// certificate, after the checks that keep a device id from being taken over:
    /// - a device id registered in another tenant is never moved;
    /// - a bulk token never replaces a current certificate's key, nor revives a revoked
    ///   device: both need a claim code, i.e. someone who sees the screen.
    async fn enrol(
        &self,
        scope: &TenantScope,
        device_id: &DeviceId,
        csr: &CheckedCsr<'_>,
        via: Via,
        name: Option<&str>,
    ) -> Result<(Device, DeviceCertificatePem)> {
        let now = self.now();
        if via == Via::Token
            && let Some(current) = self.store.certificate(device_id).await?
            && current.tenant_id == *scope.tenant()
        {
            if current.is_revoked() {
                return Err(EnrolmentError::Conflict(
                    "the device was revoked; claim it with a code to enrol it again".into(),
                ));
            }
            if current.key_fingerprint != csr.fingerprint {
                return Err(EnrolmentError::Conflict(
                    "the device is already enrolled with another key; claim it with a code to enrol it again".into(),
                ));
            }
        }
        let device = match self.store.get(scope, device_id).await? {
            Some(device) => match name {
                Some(name) => {
                    let patch = DevicePatch {
                        name: Some(name.to_owned()),
                        ..DevicePatch::default()
                    };
                    self.store.update(scope, device_id, patch, now).await?.unwrap_or(device)
                }
                None => device,
            },
            None => {
                let new = NewDevice {
                    id: device_id.clone(),
                    name: name.map_or_else(|| device_id.to_string(), str::to_owned),
                    tags: Vec::new(),
                    group: None,
                    notes: String::new(),
                };
                match self.store.create(scope, new, now).await {
                    Ok(device) => device,
                    Err(StoreError::Conflict { .. }) => {
                        return Err(EnrolmentError::Conflict(
                            "this device id is registered in another tenant".into(),
                        ));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let issued = self.pki.issue(csr.pem, device_id, now).map_err(EnrolmentError::Issue)?;
        self.store
            .put_certificate(
                scope,
                &DeviceCertificate {
                    device_id: device_id.clone(),
                    tenant_id: scope.tenant().clone(),
                    serial: issued.serial.clone(),
                    key_fingerprint: csr.fingerprint.clone(),
                    not_before: issued.not_before,
                    not_after: issued.not_after,
                    issued_at: now,
                    revoked_at: None,
                },
            )
            .await?;
        Ok((device, issued))
    }

    /// A tenant user claims the screen showing `claim_code`: it is registered in their tenant
    /// (named `name` if given) and its certificate is issued for the device to fetch.
    pub async fn claim(
        &self,
        scope: &TenantScope,
        user_id: &str,
        claim_code: &str,
        name: Option<&str>,
    ) -> Result<Device> {
        let mut errors = Vec::new();
        if let Some(name) = name {
            check_text(&mut errors, "name", name, true, MAX_LABEL_CHARS);
        }
        let digest = code::digest(claim_code);
        if digest.is_none() {
            errors.push(FieldError::new(
                "claim_code",
                format!("must be {} letters and digits, like ABCD-EF23", code::LENGTH),
            ));
        }
        if !errors.is_empty() {
            return Err(EnrolmentError::Invalid(errors));
        }
        self.limit(
            &format!("claim:{user_id}"),
            self.config.claims_per_user_per_minute,
            Duration::from_secs(60),
        )
        .await?;
        let digest = digest.unwrap_or_default();
        let now = self.now();
        let Some(request) = self.store.pending_by_claim(&digest, now).await? else {
            return Err(EnrolmentError::NotFound("claim code"));
        };
        let csr = CheckedCsr {
            pem: &request.csr_pem,
            fingerprint: request.key_fingerprint.clone(),
        };
        let (device, issued) = self.enrol(scope, &request.device_id, &csr, Via::Claim, name).await?;
        let delivered = self
            .store
            .issue_request(
                scope,
                &request.device_id,
                &digest,
                &issued.chain_pem,
                now,
                now + FETCH_WINDOW,
            )
            .await?;
        if !delivered {
            // Claimed or replaced at the same moment by someone else.
            return Err(EnrolmentError::NotFound("claim code"));
        }
        tracing::info!(
            target: "audit",
            device_id = %device.id,
            tenant_id = %scope.tenant(),
            actor = %user_id,
            serial = %issued.serial,
            "device claimed"
        );
        Ok(device)
    }

    /// A device polls its request with the poll secret. Unknown device, wrong secret and
    /// expired request get the same answer.
    pub async fn poll(&self, ip: IpAddr, device_id: &str, poll_secret: Option<&str>) -> Result<PollOutcome> {
        self.check_failures(ip).await?;
        let now = self.now();
        let request = match DeviceId::parse(device_id) {
            Ok(id) => self.store.request(&id).await?,
            Err(_) => None,
        };
        let presented = secret::digest(poll_secret.unwrap_or(""));
        // Compare even without a request, so both cases take the same time.
        let expected = request
            .as_ref()
            .map_or_else(|| secret::digest("no request"), |r| r.poll_digest.clone());
        let secret_ok = poll_secret.is_some() && secret::equal(presented.as_bytes(), expected.as_bytes());
        let Some(request) = request.filter(|r| secret_ok && r.expires_at > now) else {
            self.failed(ip).await?;
            return Err(EnrolmentError::NotFound("enrolment request"));
        };
        Ok(match request.state {
            RequestState::Pending => PollOutcome::Pending {
                expires_at: request.expires_at,
            },
            RequestState::Issued { certificate_pem, .. } => PollOutcome::Issued { certificate_pem },
        })
    }

    /// Renews a device's certificate for the same key: the CSR's self-signature proves
    /// possession, and its key must be the one of the device's current, unrevoked certificate.
    pub async fn renew(&self, ip: IpAddr, device_id: &str, csr_pem: &str) -> Result<DeviceCertificatePem> {
        self.check_failures(ip).await?;
        let csr = match check_csr(csr_pem) {
            Ok(csr) => csr,
            Err(e) => {
                self.failed(ip).await?;
                return Err(e);
            }
        };
        let device = DeviceId::parse(device_id).ok();
        let current = match &device {
            Some(id) => self.store.certificate(id).await?,
            None => None,
        };
        let (Some(device), Some(current)) = (device, current) else {
            self.failed(ip).await?;
            return Err(EnrolmentError::RenewalRefused);
        };
        let scope = TenantScope::trusted(current.tenant_id.clone());
        let refused = current.is_revoked()
            || current.key_fingerprint != csr.fingerprint
            || self.store.get(&scope, &device).await?.is_none();
        if refused {
            self.failed(ip).await?;
            tracing::info!(device_id = %device, "certificate renewal refused");
            return Err(EnrolmentError::RenewalRefused);
        }
        self.limit(
            &format!("renew:{device}"),
            self.config.renewals_per_device_per_hour,
            Duration::from_secs(3600),
        )
        .await?;
        let now = self.now();
        let issued = self.pki.issue(csr.pem, &device, now).map_err(EnrolmentError::Issue)?;
        let renewed = DeviceCertificate {
            serial: issued.serial.clone(),
            not_before: issued.not_before,
            not_after: issued.not_after,
            issued_at: now,
            ..current.clone()
        };
        if !self
            .store
            .replace_certificate(&scope, &current.serial, &renewed)
            .await?
        {
            // Revoked (or renewed) between the read and the write.
            return Err(EnrolmentError::RenewalRefused);
        }
        tracing::info!(device_id = %device, serial = %issued.serial, "device certificate renewed");
        Ok(issued)
    }

    /// Revokes the scope's tenant's certificate of a device: renewal is refused and ingest
    /// ignores the device from now on. Returns the revoked certificate.
    pub async fn revoke(&self, scope: &TenantScope, device_id: &DeviceId, actor: &str) -> Result<DeviceCertificate> {
        let now = self.now();
        if !self.store.revoke_certificate(scope, device_id, now).await? {
            return Err(match self.store.get(scope, device_id).await? {
                Some(_) => EnrolmentError::Conflict(
                    "the device has no certificate to revoke (it was never enrolled); delete it instead".into(),
                ),
                None => EnrolmentError::NotFound("device"),
            });
        }
        tracing::info!(target: "audit", device_id = %device_id, tenant_id = %scope.tenant(), actor, "device certificate revoked");
        self.store
            .certificate_in(scope, device_id)
            .await?
            .ok_or(EnrolmentError::NotFound("device"))
    }

    /// A device was deleted: its certificate (if any) is revoked so it cannot renew.
    pub async fn device_deleted(&self, scope: &TenantScope, device_id: &DeviceId) -> Result<()> {
        self.store.revoke_certificate(scope, device_id, self.now()).await?;
        Ok(())
    }

    /// Issues a bulk enrolment token for the scope's tenant.
    pub async fn create_token(
        &self,
        scope: &TenantScope,
        created_by: &str,
        name: &str,
        max_uses: u32,
        days: u32,
    ) -> Result<NewToken> {
        let mut errors = Vec::new();
        check_text(&mut errors, "name", name, true, MAX_LABEL_CHARS);
        if max_uses == 0 || max_uses > self.config.token_max_uses {
            errors.push(FieldError::new(
                "max_uses",
                format!("must be 1–{}", self.config.token_max_uses),
            ));
        }
        if days == 0 || days > self.config.token_max_days {
            errors.push(FieldError::new(
                "expires_in_days",
                format!("must be 1–{}", self.config.token_max_days),
            ));
        }
        if !errors.is_empty() {
            return Err(EnrolmentError::Invalid(errors));
        }
        let now = self.now();
        let (text, digest) = secret::generate(TOKEN_PREFIX);
        let token = EnrolmentToken {
            id: secret::random_text(10),
            digest,
            tenant_id: scope.tenant().clone(),
            name: name.to_owned(),
            max_uses,
            uses: 0,
            created_by: created_by.to_owned(),
            created_at: now,
            expires_at: now + chrono::Duration::days(i64::from(days)),
            revoked_at: None,
        };
        self.store.insert_enrolment_token(scope, &token).await?;
        tracing::info!(target: "audit", token = %token.id, tenant_id = %scope.tenant(), actor = %created_by, max_uses, "enrolment token created");
        Ok(NewToken { token, secret: text })
    }

    pub async fn list_tokens(&self, scope: &TenantScope) -> Result<Vec<EnrolmentToken>> {
        Ok(self.store.list_enrolment_tokens(scope).await?)
    }

    /// Revokes a token; false when the tenant has none with this id.
    pub async fn revoke_token(&self, scope: &TenantScope, id: &str, actor: &str) -> Result<bool> {
        let revoked = self.store.revoke_enrolment_token(scope, id, self.now()).await?;
        if revoked {
            tracing::info!(target: "audit", token = %id, tenant_id = %scope.tenant(), actor, "enrolment token revoked");
        }
        Ok(revoked)
    }
}
