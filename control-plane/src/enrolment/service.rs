//! Enrolment decisions: who may get a certificate for which device id, in which tenant.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use luach_pki::PkiError;
use luach_schemas::{DeviceId, TopicPrefix};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::code;
use super::lifecycle::{self, Event};
use super::pki::{DeviceCertificatePem, DevicePki};
use crate::auth::limiter::{Limiter, LimiterError};
use crate::auth::{ClientKey, Clock, secret};
use crate::chain::Actor;
use crate::config::EnrolmentConfig;
use crate::error::{ApiError, ErrorCode, FieldError, check_text};
use crate::store::{
    Device, DeviceCertificate, DevicePatch, EnrolmentRequest, EnrolmentToken, NewDevice, RequestState, StoreError,
    SystemStore, TenantScope, TenantStore,
};

/// Prefix of bulk enrolment tokens.
pub const TOKEN_PREFIX: &str = "le_";
/// Prefix of poll secrets.
pub const POLL_PREFIX: &str = "lq_";
/// Prefix of renewal nonces.
pub const NONCE_PREFIX: &str = "ln_";
/// Largest CSR accepted, in bytes (a P-256 CSR is about 500).
pub const MAX_CSR_BYTES: usize = 16 * 1024;
/// Longest platform / agent version / name text.
pub const MAX_LABEL_CHARS: usize = 100;
/// How long an issued certificate stays fetchable by the polling device after the claim.
const FETCH_WINDOW: chrono::Duration = chrono::Duration::hours(1);
/// How long a renewal nonce may be used.
pub const NONCE_TTL: chrono::Duration = chrono::Duration::minutes(5);
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
    /// The device id is enrolled: in this tenant (needs an explicit re-key) or another one.
    #[error("{0}")]
    Enrolled(String),
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
        match e {
            EnrolmentError::Invalid(fields) => ApiError::validation(fields),
            EnrolmentError::NotFound(what) => ApiError::not_found(what),
            EnrolmentError::Conflict(m) => ApiError::conflict(m),
            EnrolmentError::Enrolled(m) => ApiError::new(ErrorCode::DeviceEnrolled, m),
            EnrolmentError::TokenInvalid => ApiError::new(
                ErrorCode::EnrolmentTokenInvalid,
                "the enrolment token is unknown, expired, revoked or used up",
            ),
            EnrolmentError::RenewalRefused => ApiError::new(
                ErrorCode::RenewalRefused,
                "renewal refused: the device has no current certificate for this key (revoked, deleted or re-keyed), \
                 or the request carries no unused nonce from POST /devices/{id}/certificate/nonce",
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

/// Hex SHA-256 of a DER public key.
fn fingerprint(public_key_der: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(public_key_der))
}

/// A CSR that verified, with the fingerprint of its key and the challenge it carries.
struct CheckedCsr<'a> {
    pem: &'a str,
    fingerprint: String,
    challenge: Option<String>,
}

fn check_csr(csr_pem: &str) -> Result<CheckedCsr<'_>> {
    if csr_pem.len() > MAX_CSR_BYTES {
        return Err(invalid("csr_pem", format!("at most {MAX_CSR_BYTES} bytes")));
    }
    let info = luach_pki::verify_csr(csr_pem).map_err(|e| invalid("csr_pem", e.to_string()))?;
    Ok(CheckedCsr {
        pem: csr_pem,
        fingerprint: fingerprint(&info.public_key_der),
        challenge: info.challenge,
    })
}

/// A fresh topic prefix for an enrolment.
fn fresh_prefix() -> TopicPrefix {
    TopicPrefix::from_random_bytes(rand::random())
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

/// What a claimer sees before claiming a code: which screen it is, and whether its id is
/// enrolled already (claiming it then replaces the enrolled screen's key).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ClaimPreview {
    pub device_id: DeviceId,
    pub platform: Option<String>,
    pub agent_version: Option<String>,
    /// Hex SHA-256 of the requesting key.
    pub key_fingerprint: String,
    pub requested_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// `new` (never enrolled here), `enrolled` (a current certificate in your tenant: claiming
    /// needs `rekey: true`), `enrolled_elsewhere` (in another tenant: cannot be claimed),
    /// `revoked` (was enrolled here and revoked), `same_key` (enrolled here with this key).
    pub status: &'static str,
    /// The enrolled screen's key, when there is one.
    pub enrolled_key_fingerprint: Option<String>,
    pub enrolled_since: Option<DateTime<Utc>>,
}

/// A claim's outcome.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub device: Device,
    /// An enrolled screen's key was replaced.
    pub rekeyed: bool,
}

/// How a device is being enrolled: a tenant user saw its claim code, or it presented the
/// tenant's bulk token (its public id).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Via {
    Claim { rekey: bool },
    Token(String),
}

impl Via {
    /// How the audit record names it.
    fn describe(&self) -> String {
        match self {
            Self::Claim { .. } => "claim".into(),
            Self::Token(id) => format!("token {id}"),
        }
    }
}

/// A new bulk token and its secret (shown once).
#[derive(Debug, Clone)]
pub struct NewToken {
    pub token: EnrolmentToken,
    pub secret: String,
}

/// A renewal nonce for a device (shown once).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Nonce {
    pub nonce: String,
    pub expires_at: DateTime<Utc>,
}

/// Enrolment, renewal and revocation of device certificates.
#[derive(Clone)]
pub struct EnrolmentService {
    system: SystemStore,
    pki: Arc<DevicePki>,
    limiter: Arc<dyn Limiter>,
    clock: Arc<dyn Clock>,
    config: EnrolmentConfig,
    /// The broker's connection edge, told when an enrolment's certificates stop counting.
    edge: Option<luach_broker::Edge>,
    /// An external broker's files, rewritten when who may connect changes.
    broker_files: Option<Arc<crate::external_broker::MosquittoFiles>>,
}

impl std::fmt::Debug for EnrolmentService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolmentService").finish_non_exhaustive()
    }
}

impl EnrolmentService {
    pub fn new(
        system: SystemStore,
        pki: Arc<DevicePki>,
        limiter: Arc<dyn Limiter>,
        clock: Arc<dyn Clock>,
        config: EnrolmentConfig,
    ) -> Self {
        Self {
            system,
            pki,
            limiter,
            clock,
            config,
            edge: None,
            broker_files: None,
        }
    }

    /// Refuses ended enrolments at the broker's connection edge from now on.
    pub fn with_edge(mut self, edge: Option<luach_broker::Edge>) -> Self {
        self.edge = edge;
        self
    }

    /// Keeps an external broker's ACL and CRL in step with enrolments.
    pub fn with_broker_files(mut self, files: Option<Arc<crate::external_broker::MosquittoFiles>>) -> Self {
        self.broker_files = files;
        self
    }

    /// The enrolment with topic prefix `prefix` was revoked or superseded: its certificates
    /// may no longer connect, and a screen connected with one is disconnected now (on an
    /// external broker: its ACL entry is gone once the broker re-read its files, and its
    /// certificate is refused at connect once the broker restarted).
    pub async fn refuse_prefix(&self, prefix: &TopicPrefix) {
        if let Some(edge) = &self.edge {
            edge.refuse_prefix(prefix.as_str());
        }
        self.admitted_changed().await;
    }

    /// Who may connect changed: an external broker's files are rewritten, and the broker told,
    /// before the caller answers.
    async fn admitted_changed(&self) {
        if let Some(files) = &self.broker_files {
            files.refresh_or_log().await;
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

    /// Refuses a client that has failed too often this minute, without counting.
    async fn check_failures(&self, client: &ClientKey) -> Result<()> {
        let w = self
            .limiter
            .peek(&format!("enrol-fail:{client}"), Duration::from_secs(60), self.now())
            .await?;
        if w.count >= self.config.requests_per_ip_per_minute {
            return Err(EnrolmentError::TooMany {
                retry_after_secs: w.resets_in_secs,
            });
        }
        Ok(())
    }

    async fn failed(&self, client: &ClientKey) -> Result<()> {
        self.limiter
            .hit(&format!("enrol-fail:{client}"), Duration::from_secs(60), self.now())
            .await?;
        Ok(())
    }

    /// A device asks to be enrolled. With a bulk token it is enrolled at once; without one it
    /// gets a claim code to show and a poll secret.
    pub async fn request(&self, client: &ClientKey, input: RequestInput) -> Result<RequestOutcome> {
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
            Some(token) => self.request_with_token(client, token, &input).await,
            None => {
                self.limit(
                    &format!("enrol-anon:{client}"),
                    self.config.requests_per_ip_per_minute,
                    Duration::from_secs(60),
                )
                .await?;
                let csr = check_csr(&input.csr_pem)?;
                self.request_claim_code(client, &input, &csr)
                    .await
                    .map(RequestOutcome::Pending)
            }
        }
    }

    async fn request_with_token(
        &self,
        client: &ClientKey,
        token: &str,
        input: &RequestInput,
    ) -> Result<RequestOutcome> {
        self.check_failures(client).await?;
        let csr = check_csr(&input.csr_pem)?;
        let now = self.now();
        let digest = secret::digest(token);
        let found = if token.starts_with(TOKEN_PREFIX) {
            self.system.use_enrolment_token(&digest, now).await?
        } else {
            None
        };
        let Some(token) = found else {
            self.failed(client).await?;
            return Err(EnrolmentError::TokenInvalid);
        };
        let scope = self
            .system
            .scope(token.tenant_id.clone(), Actor::device(input.device_id.as_str()));
        // A screen enrolled in this tenant with this very key is asking again (its answer was
        // lost on the way): it is enrolled afresh but admits no new screen, so it takes no use
        // of the token; otherwise retries would use a token up before the fleet is in.
        let again =
            self.system.certificate(&input.device_id).await?.is_some_and(|c| {
                c.tenant_id == token.tenant_id && !c.is_revoked() && c.key_fingerprint == csr.fingerprint
            });
        match self
            .enrol(&scope, &input.device_id, &csr, Via::Token(token.id.clone()), None)
            .await
        {
            Ok((_, issued, _)) => {
                tracing::info!(
                    device_id = %input.device_id,
                    tenant_id = %scope.tenant(),
                    token = %token.id,
                    serial = %issued.serial,
                    again,
                    "device enrolled with a bulk token"
                );
                if again && let Err(release) = self.system.release_enrolment_token(&digest).await {
                    tracing::warn!(error = %release, token = %token.id, "could not give back a token use");
                }
                Ok(RequestOutcome::Issued(issued))
            }
            Err(e) => {
                if let Err(release) = self.system.release_enrolment_token(&digest).await {
                    tracing::warn!(error = %release, token = %token.id, "could not give back a token use");
                }
                Err(e)
            }
        }
    }

    async fn request_claim_code(
        &self,
        client: &ClientKey,
        input: &RequestInput,
        csr: &CheckedCsr<'_>,
    ) -> Result<Pending> {
        let now = self.now();
        self.system.delete_expired_requests(now).await?;
        if let Some(existing) = self.system.request(&input.device_id).await?
            && existing.expires_at > now
            && !lifecycle::may_replace(&existing.state, existing.key_fingerprint == csr.fingerprint)
        {
            return Err(EnrolmentError::Conflict(
                "an enrolment request for this device id is pending with another key".into(),
            ));
        }
        if self.system.count_pending(now, Some(client.as_str())).await? >= self.config.max_pending_per_source {
            tracing::warn!(
                client = %client,
                max = self.config.max_pending_per_source,
                "enrolment requests refused: too many pending from one source"
            );
            return Err(EnrolmentError::TooMany { retry_after_secs: 60 });
        }
        if self.system.count_pending(now, None).await? >= self.config.max_pending {
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
                source: client.as_str().to_owned(),
            };
            match self.system.put_request(&request).await {
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
    /// certificate under a fresh topic prefix, after the checks that keep a device id from
    /// being taken over:
    /// - a device id registered in another tenant is never moved, and a screen enrolled
    ///   (with a current certificate) in another tenant is never claimed;
    /// - replacing the key of a screen enrolled in this tenant needs a claim with an explicit
    ///   re-key; a bulk token never replaces a key nor revives a revoked device.
    async fn enrol(
        &self,
        scope: &TenantScope,
        device_id: &DeviceId,
        csr: &CheckedCsr<'_>,
        via: Via,
        name: Option<&str>,
    ) -> Result<(Device, DeviceCertificatePem, bool)> {
        let now = self.now();
        let store = self.system.tenant(scope);
        let current = self.system.certificate(device_id).await?;
        let mut previous_tenant = None;
        let mut rekey = false;
        if let Some(current) = &current {
            let same_tenant = current.tenant_id == *scope.tenant();
            let same_key = current.key_fingerprint == csr.fingerprint;
            match (same_tenant, current.is_revoked(), &via) {
                (false, false, _) => {
                    return Err(EnrolmentError::Enrolled(
                        "this device id is enrolled in another tenant; it can be claimed only after that tenant \
                         deletes or revokes it"
                            .into(),
                    ));
                }
                (false, true, _) => previous_tenant = Some(current.tenant_id.to_string()),
                (true, true, Via::Token(_)) => {
                    return Err(EnrolmentError::Conflict(
                        "the device was revoked; claim it with a code to enrol it again".into(),
                    ));
                }
                (true, false, Via::Token(_)) if !same_key => {
                    return Err(EnrolmentError::Conflict(
                        "the device is already enrolled with another key; claim it with a code to enrol it again"
                            .into(),
                    ));
                }
                (true, false, Via::Claim { rekey: false }) if !same_key => {
                    return Err(EnrolmentError::Enrolled(
                        "this screen is enrolled in your tenant with another key: claiming the code replaces that \
                         key and cuts the enrolled screen off. Check that the code is on the screen you expect, \
                         then claim again with rekey: true"
                            .into(),
                    ));
                }
                (true, false, Via::Claim { rekey: true }) if !same_key => rekey = true,
                _ => {}
            }
        }
        let device = self.register(&store, device_id, name, now).await?;
        let prefix = fresh_prefix();
        let issued = self
            .pki
            .issue(csr.pem, device_id, &prefix, now)
            .map_err(EnrolmentError::Issue)?;
        let cert = DeviceCertificate {
            device_id: device_id.clone(),
            tenant_id: scope.tenant().clone(),
            prefix,
            serial: issued.serial.clone(),
            key_fingerprint: csr.fingerprint.clone(),
            not_before: issued.not_before,
            not_after: issued.not_after,
            issued_at: now,
            revoked_at: None,
        };
        store
            .issue_certificate(&cert, &via.describe(), rekey, previous_tenant.as_deref())
            .await?;
        // Superseded: the old enrolment's certificates no longer connect. A first enrolment
        // changes nothing a broker holds (an external broker's ACL admits it by pattern).
        if let Some(previous) = &current {
            self.refuse_prefix(&previous.prefix).await;
        }
        if rekey {
            tracing::warn!(target: "audit", device_id = %device_id, tenant_id = %scope.tenant(), "enrolled screen re-keyed by claim");
        }
        Ok((device, issued, rekey))
    }

    /// The device in the scope's tenant: created, or renamed when a name is given.
    async fn register(
        &self,
        store: &TenantStore<'_>,
        id: &DeviceId,
        name: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Device> {
        if let Some(device) = store.device(id).await? {
            return Ok(match name {
                Some(name) => {
                    let patch = DevicePatch {
                        name: Some(name.to_owned()),
                        ..DevicePatch::default()
                    };
                    store.update_device(id, &patch, now).await?.unwrap_or(device)
                }
                None => device,
            });
        }
        let new = NewDevice {
            id: id.clone(),
            name: name.map_or_else(|| id.to_string(), str::to_owned),
            tags: Vec::new(),
            group: None,
            notes: String::new(),
        };
        match store.create_device(new, now).await {
            Ok(device) => Ok(device),
            Err(StoreError::Conflict { .. }) => Err(EnrolmentError::Conflict(
                "this device id is registered in another tenant".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// The pending request behind a claim code, rate-limited per user like claims.
    async fn pending_for(&self, user_id: &str, claim_code: &str) -> Result<(String, EnrolmentRequest)> {
        let Some(digest) = code::digest(claim_code) else {
            return Err(invalid(
                "claim_code",
                format!("must be {} letters and digits, like ABCD-EF23", code::LENGTH),
            ));
        };
        self.limit(
            &format!("claim:{user_id}"),
            self.config.claims_per_user_per_minute,
            Duration::from_secs(60),
        )
        .await?;
        match self.system.pending_by_claim(&digest, self.now()).await? {
            Some(request) => Ok((digest, request)),
            None => Err(EnrolmentError::NotFound("claim code")),
        }
    }

    /// What claiming `claim_code` would enrol, and whether it would replace an enrolled key.
    pub async fn preview(&self, scope: &TenantScope, user_id: &str, claim_code: &str) -> Result<ClaimPreview> {
        let (_, request) = self.pending_for(user_id, claim_code).await?;
        let current = self.system.certificate(&request.device_id).await?;
        let (status, enrolled_key, since) = match &current {
            None => ("new", None, None),
            Some(c) if c.tenant_id != *scope.tenant() && !c.is_revoked() => ("enrolled_elsewhere", None, None),
            Some(c) if c.tenant_id != *scope.tenant() => ("new", None, None),
            Some(c) if c.is_revoked() => ("revoked", Some(c.key_fingerprint.clone()), Some(c.issued_at)),
            Some(c) if c.key_fingerprint == request.key_fingerprint => {
                ("same_key", Some(c.key_fingerprint.clone()), Some(c.issued_at))
            }
            Some(c) => ("enrolled", Some(c.key_fingerprint.clone()), Some(c.issued_at)),
        };
        Ok(ClaimPreview {
            device_id: request.device_id,
            platform: request.platform,
            agent_version: request.agent_version,
            key_fingerprint: request.key_fingerprint,
            requested_at: request.created_at,
            expires_at: request.expires_at,
            status,
            enrolled_key_fingerprint: enrolled_key,
            enrolled_since: since,
        })
    }

    /// A tenant user claims the screen showing `claim_code`: it is registered in their tenant
    /// (named `name` if given) and its certificate is issued for the device to fetch.
    pub async fn claim(
        &self,
        scope: &TenantScope,
        user_id: &str,
        claim_code: &str,
        name: Option<&str>,
        rekey: bool,
    ) -> Result<Claimed> {
        if let Some(name) = name {
            let mut errors = Vec::new();
            check_text(&mut errors, "name", name, true, MAX_LABEL_CHARS);
            if !errors.is_empty() {
                return Err(EnrolmentError::Invalid(errors));
            }
        }
        let (digest, request) = self.pending_for(user_id, claim_code).await?;
        let csr = CheckedCsr {
            pem: &request.csr_pem,
            fingerprint: request.key_fingerprint.clone(),
            challenge: None,
        };
        let now = self.now();
        let (device, issued, rekeyed) = self
            .enrol(scope, &request.device_id, &csr, Via::Claim { rekey }, name)
            .await?;
        // The transition the lifecycle allows, applied by compare-and-set.
        lifecycle::next(
            &request.state,
            Event::Claim {
                tenant_id: scope.tenant().clone(),
                certificate_pem: issued.chain_pem.clone(),
            },
        )
        .map_err(|_| EnrolmentError::NotFound("claim code"))?;
        let delivered = self
            .system
            .tenant(scope)
            .claim_request(&request.device_id, &digest, &issued.chain_pem, now, now + FETCH_WINDOW)
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
            rekeyed,
            "device claimed"
        );
        Ok(Claimed { device, rekeyed })
    }

    /// A device polls its request with the poll secret. Unknown device, wrong secret and
    /// expired request get the same answer.
    pub async fn poll(&self, client: &ClientKey, device_id: &str, poll_secret: Option<&str>) -> Result<PollOutcome> {
        self.check_failures(client).await?;
        let now = self.now();
        let request = match DeviceId::parse(device_id) {
            Ok(id) => self.system.request(&id).await?,
            Err(_) => None,
        };
        let presented = secret::digest(poll_secret.unwrap_or(""));
        // Compare even without a request, so both cases take the same time.
        let expected = request
            .as_ref()
            .map_or_else(|| secret::digest("no request"), |r| r.poll_digest.clone());
        let secret_ok = poll_secret.is_some() && secret::equal(presented.as_bytes(), expected.as_bytes());
        let Some(request) = request.filter(|r| secret_ok && r.expires_at > now) else {
            self.failed(client).await?;
            return Err(EnrolmentError::NotFound("enrolment request"));
        };
        match lifecycle::next(&request.state, Event::Fetch) {
            Err(_) => Ok(PollOutcome::Pending {
                expires_at: request.expires_at,
            }),
            Ok(delivered) => {
                if matches!(request.state, RequestState::Issued { .. }) {
                    // Recorded for the dashboard; a lost race (polled twice) changes nothing.
                    self.system.transition_request(&request, &delivered, now).await?;
                }
                let (RequestState::Delivered { certificate_pem, .. } | RequestState::Issued { certificate_pem, .. }) =
                    delivered
                else {
                    return Err(EnrolmentError::NotFound("enrolment request"));
                };
                Ok(PollOutcome::Issued { certificate_pem })
            }
        }
    }

    /// A nonce the device puts in its next renewal request (single use, [`NONCE_TTL`]). Every
    /// caller gets one; only a device with a current certificate gets one that works, so the
    /// answer does not tell which device ids exist.
    pub async fn renewal_nonce(&self, client: &ClientKey, device_id: &str) -> Result<Nonce> {
        self.check_failures(client).await?;
        self.limit(
            &format!("nonce:{client}"),
            self.config.requests_per_ip_per_minute,
            Duration::from_secs(60),
        )
        .await?;
        let now = self.now();
        let (nonce, digest) = secret::generate(NONCE_PREFIX);
        let expires_at = now + NONCE_TTL;
        if let Ok(device) = DeviceId::parse(device_id)
            && let Some(current) = self.system.certificate(&device).await?
            && !current.is_revoked()
        {
            self.system.put_nonce(&device, &digest, expires_at).await?;
        }
        Ok(Nonce { nonce, expires_at })
    }

    /// Renews a device's certificate for the same key: the CSR's self-signature proves
    /// possession, its key must be the one of the device's current, unrevoked certificate, and
    /// it must carry an unused nonce from [`EnrolmentService::renewal_nonce`].
    pub async fn renew(&self, client: &ClientKey, device_id: &str, csr_pem: &str) -> Result<DeviceCertificatePem> {
        self.check_failures(client).await?;
        let csr = match check_csr(csr_pem) {
            Ok(csr) => csr,
            Err(e) => {
                self.failed(client).await?;
                return Err(e);
            }
        };
        let device = DeviceId::parse(device_id).ok();
        let current = match &device {
            Some(id) => self.system.certificate(id).await?,
            None => None,
        };
        let (Some(device), Some(current)) = (device, current) else {
            self.failed(client).await?;
            return Err(EnrolmentError::RenewalRefused);
        };
        let now = self.now();
        let nonce_ok = match &csr.challenge {
            Some(challenge) => self.system.take_nonce(&device, &secret::digest(challenge), now).await?,
            None => false,
        };
        let scope = self
            .system
            .scope(current.tenant_id.clone(), Actor::device(device.as_str()));
        let refused = !nonce_ok
            || current.is_revoked()
            || current.key_fingerprint != csr.fingerprint
            || self.system.tenant(&scope).device(&device).await?.is_none();
        if refused {
            self.failed(client).await?;
            tracing::info!(device_id = %device, nonce_ok, "certificate renewal refused");
            return Err(EnrolmentError::RenewalRefused);
        }
        self.limit(
            &format!("renew:{device}"),
            self.config.renewals_per_device_per_hour,
            Duration::from_secs(3600),
        )
        .await?;
        let issued = self
            .pki
            .issue(csr.pem, &device, &current.prefix, now)
            .map_err(EnrolmentError::Issue)?;
        let renewed = DeviceCertificate {
            serial: issued.serial.clone(),
            not_before: issued.not_before,
            not_after: issued.not_after,
            issued_at: now,
            ..current.clone()
        };
        if !self.system.renew_certificate(&current.serial, &renewed).await? {
            // Revoked (or renewed) between the read and the write.
            return Err(EnrolmentError::RenewalRefused);
        }
        tracing::info!(device_id = %device, serial = %issued.serial, "device certificate renewed");
        Ok(issued)
    }

    /// Revokes the scope's tenant's certificate of a device: renewal is refused, its topic
    /// prefix stops resolving (ingest drops its messages, it gets no notices and its device
    /// tokens die). Returns the revoked certificate.
    pub async fn revoke(&self, scope: &TenantScope, device_id: &DeviceId) -> Result<DeviceCertificate> {
        let store = self.system.tenant(scope);
        if !store.revoke_certificate(device_id, self.now()).await? {
            return Err(match store.device(device_id).await? {
                Some(_) => EnrolmentError::Conflict(
                    "the device has no certificate to revoke (it was never enrolled); delete it instead".into(),
                ),
                None => EnrolmentError::NotFound("device"),
            });
        }
        tracing::info!(target: "audit", device_id = %device_id, tenant_id = %scope.tenant(), "device certificate revoked");
        let cert = store
            .certificate(device_id)
            .await?
            .ok_or(EnrolmentError::NotFound("device"))?;
        self.refuse_prefix(&cert.prefix).await;
        Ok(cert)
    }

    /// Issues a bulk enrolment token for the scope's tenant.
    pub async fn create_token(&self, scope: &TenantScope, name: &str, max_uses: u32, days: u32) -> Result<NewToken> {
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
        let created_by = scope
            .actor()
            .user_id
            .clone()
            .unwrap_or_else(|| scope.actor().kind.clone());
        let token = EnrolmentToken {
            id: secret::random_text(10),
            digest,
            tenant_id: scope.tenant().clone(),
            name: name.to_owned(),
            max_uses,
            uses: 0,
            created_by,
            created_at: now,
            expires_at: now + chrono::Duration::days(i64::from(days)),
            revoked_at: None,
        };
        self.system.tenant(scope).create_enrolment_token(&token).await?;
        Ok(NewToken { token, secret: text })
    }

    pub async fn list_tokens(&self, scope: &TenantScope) -> Result<Vec<EnrolmentToken>> {
        Ok(self.system.tenant(scope).enrolment_tokens().await?)
    }

    /// Revokes a token; false when the tenant has none with this id.
    pub async fn revoke_token(&self, scope: &TenantScope, id: &str) -> Result<bool> {
        Ok(self.system.tenant(scope).revoke_enrolment_token(id, self.now()).await?)
    }
}
