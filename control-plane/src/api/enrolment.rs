//! `/enrolment/*` and the device certificate routes: requests and polling (devices, public),
//! claims and bulk tokens (tenant users), renewal (devices, public), revocation.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use chrono::{DateTime, Utc};
use luach_schemas::DeviceId;
use serde::{Deserialize, Serialize};

use super::devices::{DataBody, data};
use super::extract::ValidJson;
use super::ops::mqtt_tls_endpoint;
use super::reply::{Accepted, Created, Either, NoContent, NoStore};
use super::tenant::{Caller, Client, Scope};
use crate::enrolment::{ClaimPreview, Nonce, PollOutcome, RequestInput, RequestOutcome};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{CertificateRecord, Device, DeviceCertificate, EnrolmentToken};

/// Lifetime of a bulk token when the request names none, in days.
const DEFAULT_TOKEN_DAYS: u32 = 30;

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Endpoint {
    host: String,
    port: u16,
}

/// A certificate handed to a device.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct IssuedView {
    status: &'static str,
    device_id: String,
    /// The device certificate, then (during a CA rotation) the cross-certificate.
    certificate_pem: String,
    /// The CAs the device trusts for the broker's certificate.
    ca_pem: String,
    serial: Option<String>,
    not_after: Option<DateTime<Utc>>,
    /// Where the broker's mutual-TLS listener is; `null` when it does not run.
    mqtt_tls: Option<Endpoint>,
}

fn issued_view(state: &AppState, headers: &HeaderMap, device: &str, certificate_pem: String) -> IssuedView {
    let info = luach_pki::inspect_chain(&certificate_pem).ok();
    let leaf = info.as_ref().and_then(|chain| chain.first());
    IssuedView {
        status: "issued",
        device_id: device.to_owned(),
        certificate_pem,
        ca_pem: state.enrolment.trust_pem().to_owned(),
        serial: leaf.map(|l| l.serial.clone()),
        not_after: leaf.and_then(|l| DateTime::from_timestamp(l.not_after.unix_timestamp(), 0)),
        mqtt_tls: mqtt_tls_endpoint(state, headers).map(|(host, port)| Endpoint { host, port }),
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestBody {
    device_id: DeviceId,
    csr_pem: String,
    platform: Option<String>,
    agent_version: Option<String>,
    enrolment_token: Option<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct PendingView {
    status: &'static str,
    claim_code: String,
    poll_secret: String,
    expires_at: DateTime<Utc>,
    poll_after_secs: u64,
}

/// `POST /enrolment/requests`: a device asks for a certificate.
pub async fn request(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    ValidJson(body): ValidJson<RequestBody>,
) -> Result<NoStore<Either<Created<PendingView>, Created<IssuedView>>>, ApiError> {
    let device = body.device_id.clone();
    let input = RequestInput {
        device_id: body.device_id,
        csr_pem: body.csr_pem,
        platform: body.platform,
        agent_version: body.agent_version,
        enrolment_token: body.enrolment_token,
    };
    match state.enrolment.request(&client, input).await? {
        RequestOutcome::Pending(p) => {
            let view = PendingView {
                status: "pending",
                claim_code: p.claim_code,
                poll_secret: p.poll_secret,
                expires_at: p.expires_at,
                poll_after_secs: state.enrolment.config().poll_after_secs,
            };
            Ok(NoStore(Either::A(Created(view))))
        }
        RequestOutcome::Issued(issued) => {
            // A message the writer dropped before this device existed must not linger.
            state.ingest.forget(device.clone()).await;
            let view = issued_view(&state, &headers, device.as_str(), issued.chain_pem);
            Ok(NoStore(Either::B(Created(view))))
        }
    }
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct PollPendingView {
    status: &'static str,
    expires_at: DateTime<Utc>,
    poll_after_secs: u64,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
}

/// `GET /enrolment/requests/{device_id}` with `Authorization: Bearer <poll secret>`.
pub async fn poll(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Path(device_id): Path<String>,
) -> Result<Either<Accepted<PollPendingView>, NoStore<Json<DataBody<IssuedView>>>>, ApiError> {
    match state.enrolment.poll(&client, &device_id, bearer(&headers)).await? {
        PollOutcome::Pending { expires_at } => {
            let view = PollPendingView {
                status: "pending",
                expires_at,
                poll_after_secs: state.enrolment.config().poll_after_secs,
            };
            Ok(Either::A(Accepted(view)))
        }
        PollOutcome::Issued { certificate_pem } => {
            let view = issued_view(&state, &headers, &device_id, certificate_pem);
            Ok(Either::B(NoStore(data(view))))
        }
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimBody {
    claim_code: String,
    name: Option<String>,
    /// Replace the key of a screen enrolled in this tenant (see the preview).
    #[serde(default)]
    rekey: bool,
}

/// A claimed screen.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ClaimedView {
    #[serde(flatten)]
    device: Device,
    /// The enrolled screen's key was replaced.
    rekeyed: bool,
}

/// `POST /enrolment/claims`: a tenant user claims the screen showing a code.
pub async fn claim(
    State(state): State<AppState>,
    scope: Scope,
    Caller(caller): Caller,
    ValidJson(body): ValidJson<ClaimBody>,
) -> Result<Created<ClaimedView>, ApiError> {
    let claimed = state
        .enrolment
        .claim(
            &scope.0,
            &caller.user.id,
            &body.claim_code,
            body.name.as_deref(),
            body.rekey,
        )
        .await?;
    state.ingest.forget(claimed.device.id.clone()).await;
    Ok(Created(ClaimedView {
        device: claimed.device,
        rekeyed: claimed.rekeyed,
    }))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    claim_code: String,
}

/// `POST /enrolment/claims/preview`: what claiming a code would enrol (and whether it would
/// replace an enrolled screen's key), without claiming it.
pub async fn preview(
    State(state): State<AppState>,
    scope: Scope,
    Caller(caller): Caller,
    ValidJson(body): ValidJson<PreviewBody>,
) -> Result<Json<DataBody<ClaimPreview>>, ApiError> {
    let preview = state
        .enrolment
        .preview(&scope.0, &caller.user.id, &body.claim_code)
        .await?;
    Ok(data(preview))
}

/// `POST /devices/{id}/certificate/nonce`: a single-use nonce for the device's next renewal.
pub async fn nonce(
    State(state): State<AppState>,
    Client(client): Client,
    Path(device_id): Path<String>,
) -> Result<NoStore<Created<Nonce>>, ApiError> {
    let nonce: Nonce = state.enrolment.renewal_nonce(&client, &device_id).await?;
    Ok(NoStore(Created(nonce)))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewBody {
    csr_pem: String,
}

/// `POST /devices/{id}/certificate`: a device renews its certificate for the same key.
pub async fn renew(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Path(device_id): Path<String>,
    ValidJson(body): ValidJson<RenewBody>,
) -> Result<NoStore<Created<IssuedView>>, ApiError> {
    let issued = state.enrolment.renew(&client, &device_id, &body.csr_pem).await?;
    Ok(NoStore(Created(issued_view(
        &state,
        &headers,
        &device_id,
        issued.chain_pem,
    ))))
}

/// A device certificate as tenant users see it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CertificateView {
    device_id: DeviceId,
    serial: String,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    issued_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    /// `valid`, `expired` or `revoked`.
    status: &'static str,
}

impl CertificateView {
    fn new(c: DeviceCertificate, now: DateTime<Utc>) -> Self {
        let status = if c.revoked_at.is_some() {
            "revoked"
        } else if c.not_after <= now {
            "expired"
        } else {
            "valid"
        };
        Self {
            device_id: c.device_id,
            serial: c.serial,
            not_before: c.not_before,
            not_after: c.not_after,
            issued_at: c.issued_at,
            revoked_at: c.revoked_at,
            status,
        }
    }
}

fn parse_id(raw: &str) -> Result<DeviceId, ApiError> {
    DeviceId::parse(raw).map_err(|_| ApiError::not_found("device"))
}

/// `GET /devices/{id}/certificate`: the device's current certificate.
pub async fn certificate(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<Json<DataBody<CertificateView>>, ApiError> {
    let id = parse_id(&id)?;
    let found = state.store.tenant(&scope.0).certificate(&id).await?;
    let cert = found.ok_or_else(|| ApiError::not_found("certificate"))?;
    Ok(data(CertificateView::new(cert, state.auth.now())))
}

/// `GET /devices/{id}/certificates`: every certificate issued to the device in this tenant,
/// newest first, with how each one ended (renewed, superseded by a new enrolment, revoked).
pub async fn certificates(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<Json<DataBody<Vec<CertificateRecord>>>, ApiError> {
    let id = parse_id(&id)?;
    let store = state.store.tenant(&scope.0);
    if store.device(&id).await?.is_none() {
        return Err(ApiError::not_found("device"));
    }
    Ok(data(store.certificate_history(&id).await?))
}

/// `POST /devices/{id}/revoke`: revokes the device's certificate.
pub async fn revoke(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<Json<DataBody<CertificateView>>, ApiError> {
    let id = parse_id(&id)?;
    let cert = state.enrolment.revoke(&scope.0, &id).await?;
    state.ingest.revoked(id).await;
    Ok(data(CertificateView::new(cert, state.auth.now())))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    name: String,
    max_uses: u32,
    expires_in_days: Option<u32>,
}

/// A bulk token as listed (never its secret).
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(rename = "EnrolmentTokenView")]
pub struct TokenView {
    id: String,
    name: String,
    max_uses: u32,
    uses: u32,
    created_by: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    usable: bool,
    /// Only in the answer to its creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

impl TokenView {
    fn new(t: EnrolmentToken, now: DateTime<Utc>, secret: Option<String>) -> Self {
        Self {
            usable: t.is_usable(now),
            id: t.id,
            name: t.name,
            max_uses: t.max_uses,
            uses: t.uses,
            created_by: t.created_by,
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
            token: secret,
        }
    }
}

/// `POST /enrolment/tokens`: a bulk enrolment token; its secret is shown only here.
pub async fn create_token(
    State(state): State<AppState>,
    scope: Scope,
    ValidJson(body): ValidJson<TokenBody>,
) -> Result<NoStore<Created<TokenView>>, ApiError> {
    let days = body.expires_in_days.unwrap_or(DEFAULT_TOKEN_DAYS);
    let new = state
        .enrolment
        .create_token(&scope.0, &body.name, body.max_uses, days)
        .await?;
    let view = TokenView::new(new.token, state.auth.now(), Some(new.secret));
    Ok(NoStore(Created(view)))
}

/// `GET /enrolment/tokens`: the tenant's bulk tokens, newest first.
pub async fn list_tokens(
    State(state): State<AppState>,
    scope: Scope,
) -> Result<Json<DataBody<Vec<TokenView>>>, ApiError> {
    let now = state.auth.now();
    let tokens = state.enrolment.list_tokens(&scope.0).await?;
    Ok(data(tokens.into_iter().map(|t| TokenView::new(t, now, None)).collect()))
}

/// `DELETE /enrolment/tokens/{id}`: revokes a bulk token.
pub async fn revoke_token(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<NoContent, ApiError> {
    if state.enrolment.revoke_token(&scope.0, &id).await? {
        Ok(NoContent)
    } else {
        Err(ApiError::not_found("enrolment token"))
    }
}
