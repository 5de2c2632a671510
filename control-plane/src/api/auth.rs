//! `/auth/*`: login, session refresh and logout, the caller's own account, personal access
//! tokens and the second factor.
//!
//! The refresh token is returned in the body (API clients) and as an `HttpOnly`,
//! `SameSite=Strict` cookie scoped to `/api/v1/auth` (the dashboard keeps no token in storage).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderValue};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::devices::{DataBody, data};
use super::reply::{Created, NoContent, NoStore, WithCookie};
use super::tenant::{Caller, Client};
use super::{OptionalJson, ValidJson};
use crate::auth::service::Issued;
use crate::auth::{Credential, Principal, Role};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{TokenRecord, User};

const REFRESH_COOKIE: &str = "luach_refresh";

/// A user as the API shows it (never the password hash or second-factor secret).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub tenant_id: Option<String>,
    pub totp_enabled: bool,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            role: u.role,
            tenant_id: u.tenant_id.as_ref().map(ToString::to_string),
            totp_enabled: u.totp_enabled,
            disabled: u.disabled,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
    #[serde(default)]
    totp: Option<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SessionResponse {
    #[serde(flatten)]
    tokens: Issued,
    user: UserView,
}

fn refresh_cookie(state: &AppState, value: &str, max_age: u64) -> HeaderValue {
    let secure = if state.auth.config().secure_cookie {
        "; Secure"
    } else {
        ""
    };
    let cookie =
        format!("{REFRESH_COOKIE}={value}; Path=/api/v1/auth; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A new session: the tokens in the body (never cached) and the refresh token as a cookie.
type SessionReply = NoStore<WithCookie<Json<DataBody<SessionResponse>>>>;

fn session_response(state: &AppState, issued: Issued, user: &User) -> SessionReply {
    let cookie = refresh_cookie(state, &issued.refresh_token, issued.refresh_expires_in);
    NoStore(WithCookie {
        cookie,
        answer: data(SessionResponse {
            tokens: issued,
            user: user.into(),
        }),
    })
}

pub async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    ValidJson(req): ValidJson<LoginRequest>,
) -> Result<SessionReply, ApiError> {
    let (issued, user) = state
        .auth
        .login(&req.email, &req.password, req.totp.as_deref(), &client)
        .await?;
    Ok(session_response(&state, issued, &user))
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[serde(default)]
    refresh_token: Option<String>,
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == REFRESH_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

/// The refresh token from the body, else from the cookie.
fn presented_refresh(headers: &HeaderMap, body: Option<RefreshRequest>) -> Option<String> {
    body.and_then(|b| b.refresh_token).or_else(|| cookie_token(headers))
}

pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<RefreshRequest>,
) -> Result<SessionReply, ApiError> {
    let token = presented_refresh(&headers, body).ok_or_else(|| ApiError::unauthorized("no refresh token"))?;
    let (issued, user) = state.auth.refresh(&token).await?;
    Ok(session_response(&state, issued, &user))
}

/// Ends the session named by the bearer token, or by the refresh token (body or cookie).
pub async fn logout(
    State(state): State<AppState>,
    principal: Option<axum::Extension<Principal>>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<RefreshRequest>,
) -> Result<WithCookie<NoContent>, ApiError> {
    if let Some(axum::Extension(p)) = principal {
        state.auth.logout(&p).await?;
    }
    if let Some(token) = presented_refresh(&headers, body) {
        state.auth.logout_refresh(&token).await?;
    }
    Ok(WithCookie {
        cookie: refresh_cookie(&state, "", 0),
        answer: NoContent,
    })
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Me {
    user: UserView,
    /// The role and tenant in effect for this request.
    role: Role,
    tenant_id: Option<String>,
    permissions: Vec<&'static str>,
    /// Present while a super admin acts inside a tenant.
    acting_as: Option<ActingView>,
    credential: &'static str,
    /// The role a personal access token is capped at.
    #[serde(skip_serializing_if = "Option::is_none")]
    token_cap: Option<Role>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct ActingView {
    tenant_id: String,
    role: Role,
}

pub async fn me(Caller(p): Caller) -> Json<DataBody<Me>> {
    data(me_view(&p))
}

fn me_view(p: &Principal) -> Me {
    Me {
        user: (&p.user).into(),
        role: p.role,
        tenant_id: p.tenant.as_ref().map(ToString::to_string),
        permissions: p.permissions.iter().map(|x| x.as_str()).collect(),
        acting_as: p.acting_as.as_ref().map(|a| ActingView {
            tenant_id: a.tenant.to_string(),
            role: a.role,
        }),
        credential: match p.credential {
            Credential::Session { .. } => "session",
            Credential::Personal { .. } => "personal_token",
        },
        token_cap: match p.credential {
            Credential::Personal { cap, .. } => cap,
            Credential::Session { .. } => None,
        },
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    Caller(p): Caller,
    ValidJson(req): ValidJson<PasswordChange>,
) -> Result<WithCookie<NoContent>, ApiError> {
    state
        .auth
        .change_password(&p, &req.current_password, &req.new_password)
        .await?;
    Ok(WithCookie {
        cookie: refresh_cookie(&state, "", 0),
        answer: NoContent,
    })
}

/// A personal access token as listed (never its secret).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct TokenView {
    id: String,
    name: String,
    role: Option<Role>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked: bool,
}

impl From<&TokenRecord> for TokenView {
    fn from(t: &TokenRecord) -> Self {
        Self {
            id: t.family.clone(),
            name: t.name.clone(),
            role: t.role,
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            revoked: t.revoked_at.is_some(),
        }
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    name: String,
    #[serde(default)]
    role: Option<Role>,
    #[serde(default = "default_token_days")]
    expires_in_days: u32,
}

fn default_token_days() -> u32 {
    90
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    token: TokenView,
    /// Shown once.
    secret: String,
}

pub async fn list_tokens(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<DataBody<Vec<TokenView>>>, ApiError> {
    let tokens = state.auth.list_personal_tokens(&p.user).await?;
    Ok(data(tokens.iter().map(TokenView::from).collect()))
}

pub async fn create_token(
    State(state): State<AppState>,
    Caller(p): Caller,
    ValidJson(req): ValidJson<NewToken>,
) -> Result<NoStore<Created<CreatedToken>>, ApiError> {
    let created = state
        .auth
        .create_personal_token(&p, &req.name, req.role, req.expires_in_days)
        .await?;
    Ok(NoStore(Created(CreatedToken {
        token: (&created.record).into(),
        secret: created.secret,
    })))
}

pub async fn revoke_token(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<NoContent, ApiError> {
    if state.auth.revoke_personal_token(&p, &id).await? {
        Ok(NoContent)
    } else {
        Err(ApiError::not_found("token"))
    }
}

pub async fn totp_setup(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> Result<NoStore<Json<DataBody<crate::auth::service::TotpSetup>>>, ApiError> {
    Ok(NoStore(data(state.auth.totp_setup(&p).await?)))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    code: String,
}

pub async fn totp_confirm(
    State(state): State<AppState>,
    Caller(p): Caller,
    ValidJson(req): ValidJson<TotpCode>,
) -> Result<NoContent, ApiError> {
    state.auth.totp_confirm(&p, &req.code).await?;
    Ok(NoContent)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpDisable {
    password: String,
    code: String,
}

pub async fn totp_disable(
    State(state): State<AppState>,
    Caller(p): Caller,
    ValidJson(req): ValidJson<TotpDisable>,
) -> Result<NoContent, ApiError> {
    state.auth.totp_disable(&p, &req.password, &req.code).await?;
    Ok(NoContent)
}
