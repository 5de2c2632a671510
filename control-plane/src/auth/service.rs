//! The authentication service: sign-ins, sessions, personal tokens, the second factor, and
//! turning a bearer token into a [`Principal`] with its scope.
//!
//! It holds the [`SystemStore`] (it must find users by email and tokens by digest before any
//! tenant is known) and is the one place that mints scopes for people: every scope a handler
//! uses was minted here from a verified credential.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use luach_schemas::{DeviceId, TenantId, TopicPrefix};
use serde::Serialize;
use totp_rs::{Algorithm, TOTP};

use super::client::ClientKey;
use super::clock::Clock;
use super::jwt::Keys;
use super::limiter::{Limiter, LimiterError};
use super::role::{Permission, Permissions, Role};
use super::{password, secret};
use crate::chain::Actor;
use crate::config::AuthConfig;
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::store::{
    InstallationScope, Quota, Revoke, StoreError, SystemStore, TenantScope, TokenKind, TokenRecord, User,
};

/// How long a device token is accepted. A screen gets a fresh one with every bundle notice
/// (on each connection and each change of its content).
pub const DEVICE_TOKEN_TTL: chrono::Duration = chrono::Duration::hours(24);
/// Size of the broadcast of credential changes (live sockets re-check on each).
const CREDENTIAL_EVENTS: usize = 1024;

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An access token of a login session, issued at `issued_at` (seconds since the epoch).
    Session { family: String, issued_at: i64 },
    /// A personal access token: its public id and the role it is capped at (`None`: the
    /// user's own role).
    Personal { id: String, cap: Option<Role> },
}

impl Credential {
    /// True for a signed-in session (credentials and the second factor change only in one).
    pub fn is_session(&self) -> bool {
        matches!(self, Self::Session { .. })
    }
}

/// A super admin acting inside a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActAs {
    pub tenant: TenantId,
    pub role: Role,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub credential: Credential,
    /// The role in effect (the user's own, or the one acted as).
    pub role: Role,
    /// The tenant in effect.
    pub tenant: Option<TenantId>,
    pub permissions: Permissions,
    /// Set when a super admin acts inside a tenant.
    pub acting_as: Option<ActAs>,
    scope: Option<TenantScope>,
    installation: Option<InstallationScope>,
}

impl Principal {
    /// The tenant scope this caller acts in, if any.
    pub fn scope(&self) -> Option<&TenantScope> {
        self.scope.as_ref()
    }

    /// The installation scope of a super admin who is not acting inside a tenant.
    pub fn installation(&self) -> Option<&InstallationScope> {
        self.installation.as_ref()
    }

    pub fn may(&self, p: Permission) -> bool {
        self.permissions.contains(p)
    }

    /// The author of this caller's changes.
    pub fn actor(&self) -> Actor {
        match (&self.scope, &self.installation) {
            (Some(s), _) => s.actor().clone(),
            (None, Some(i)) => i.actor().clone(),
            (None, None) => Actor::user(&self.user.id, &self.user.email),
        }
    }
}

/// A screen authenticated by its device token (see [`AuthService::device_token`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePrincipal {
    pub device: DeviceId,
    scope: TenantScope,
}

impl DevicePrincipal {
    /// The screen's own tenant, with the screen as actor.
    pub fn scope(&self) -> &TenantScope {
        &self.scope
    }
}

/// Why authentication failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required")]
    Unauthorized,
    #[error("wrong email, password or code")]
    InvalidCredentials,
    #[error("a second-factor code is required")]
    TotpRequired,
    #[error("too many attempts")]
    TooMany { retry_after_secs: u64 },
    #[error("{0}")]
    Forbidden(String),
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Limiter(#[from] LimiterError),
    #[error("password hashing: {0}")]
    Hash(String),
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthorized => ApiError::unauthorized("valid credentials are required"),
            AuthError::InvalidCredentials => {
                ApiError::new(ErrorCode::InvalidCredentials, "wrong email, password or code")
            }
            AuthError::TotpRequired => {
                ApiError::new(ErrorCode::TotpRequired, "this account needs its second-factor code")
            }
            AuthError::TooMany { retry_after_secs } => ApiError::too_many_requests(retry_after_secs),
            AuthError::Forbidden(m) => ApiError::forbidden(m),
            AuthError::Invalid(fields) => ApiError::validation(fields),
            AuthError::Store(e) => e.into(),
            AuthError::Limiter(e) => {
                tracing::error!(error = %e, "rate limiter unavailable");
                ApiError::unavailable("rate limiter unavailable")
            }
            e @ AuthError::Hash(_) => ApiError::internal(&e),
        }
    }
}

pub type AuthResult<T> = Result<T, AuthError>;

/// Tokens handed out by a login or a refresh.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Issued {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
    #[serde(skip)]
    pub refresh_expires_in: u64,
}

/// A newly created personal access token (the secret is shown only here).
#[derive(Debug, Clone)]
pub struct NewPersonalToken {
    pub record: TokenRecord,
    pub secret: String,
}

/// TOTP parameters for authenticator apps.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TotpSetup {
    pub secret: String,
    pub otpauth_url: String,
}

/// What a new user gets.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub tenant_id: Option<TenantId>,
    pub password: String,
}

/// Who may create a user: a tenant's administrator (in that tenant only) or the installation.
#[derive(Debug, Clone, Copy)]
pub enum Authority<'a> {
    Tenant(&'a TenantScope),
    Installation(&'a InstallationScope),
}

/// Normalises an email for lookup and uniqueness, or says what is wrong with it.
pub fn normalise_email(email: &str) -> Result<String, String> {
    let e = email.trim().to_lowercase();
    let valid = e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(e)
    } else {
        Err("must be an email address".into())
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> AuthResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Authentication and credential management.
#[derive(Clone)]
pub struct AuthService {
    system: SystemStore,
    keys: Keys,
    clock: Arc<dyn Clock>,
    limiter: Arc<dyn Limiter>,
    config: AuthConfig,
    /// Users whose credentials just changed (logout, password, disabled, deleted, token revoked).
    changed: tokio::sync::broadcast::Sender<String>,
    quota_defaults: Quota,
    /// Tenants' API quotas as last read, and when.
    quota_cache: Arc<std::sync::Mutex<QuotaCache>>,
}

/// Each tenant's API requests-per-minute limit (`None`: unlimited) and when it was read.
type QuotaCache = std::collections::HashMap<TenantId, (std::time::Instant, Option<u64>)>;

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").finish_non_exhaustive()
    }
}

impl AuthService {
    /// `quota_defaults`: the installation's tenant limits (a tenant's own quota overrides).
    pub fn new(
        system: SystemStore,
        keys: Keys,
        clock: Arc<dyn Clock>,
        limiter: Arc<dyn Limiter>,
        config: AuthConfig,
        quota_defaults: Quota,
    ) -> Self {
        let (changed, _) = tokio::sync::broadcast::channel(CREDENTIAL_EVENTS);
        Self {
            system,
            keys,
            clock,
            limiter,
            config,
            changed,
            quota_defaults,
            quota_cache: Arc::default(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// The ids of users whose credentials change, as they change (live sockets re-check).
    pub fn credential_changes(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.changed.subscribe()
    }

    /// Tells live connections that `user_id`'s credentials changed.
    pub fn credentials_changed(&self, user_id: &str) {
        // No receiver (no live sockets) is not an error.
        let _ = self.changed.send(user_id.to_owned());
    }

    /// A token that lets `device` (listening under `prefix`) fetch its own content, and when it
    /// expires.
    pub fn device_token(&self, device: &DeviceId, tenant: &TenantId, prefix: &TopicPrefix) -> (String, DateTime<Utc>) {
        let now = self.clock.now();
        let exp = now + DEVICE_TOKEN_TTL;
        (
            self.keys
                .issue_device(device.as_str(), tenant.as_str(), prefix.as_str(), now, exp),
            exp,
        )
    }

    /// Checks a device token, and that the device still listens under the token's prefix in
    /// its tenant: a revoked or re-enrolled device's tokens die with its certificate.
    pub async fn authenticate_device(&self, token: &str) -> AuthResult<DevicePrincipal> {
        let claims = self
            .keys
            .verify_device(token, self.clock.now())
            .ok_or(AuthError::Unauthorized)?;
        let prefix = TopicPrefix::parse(&claims.pfx).map_err(|_| AuthError::Unauthorized)?;
        let tenant = TenantId::parse(&claims.tid).map_err(|_| AuthError::Unauthorized)?;
        let resolved = self.system.resolve_prefixes(std::slice::from_ref(&prefix)).await?;
        match resolved.get(&prefix) {
            Some((device, t)) if *t == tenant && device.as_str() == claims.sub => Ok(DevicePrincipal {
                device: device.clone(),
                scope: self.system.scope(tenant, Actor::device(&claims.sub)),
            }),
            _ => Err(AuthError::Unauthorized),
        }
    }

    /// Creates a user after checking the fields (email form, password policy, tenant role),
    /// within `authority`: a tenant's administrator creates users of that tenant only.
    pub async fn create_user(&self, authority: Authority<'_>, new: NewUser) -> AuthResult<User> {
        let mut errors = Vec::new();
        let email = normalise_email(&new.email).unwrap_or_else(|m| {
            errors.push(FieldError::new("email", m));
            String::new()
        });
        crate::error::check_text(&mut errors, "name", &new.name, false, 200);
        if let Err(m) = password::check_policy(&new.password) {
            errors.push(FieldError::new("password", m));
        }
        match (new.role.is_tenant_role(), &new.tenant_id) {
            (true, None) => errors.push(FieldError::new("tenant", "a tenant role needs a tenant")),
            (false, Some(_)) => errors.push(FieldError::new("role", "super_admin belongs to no tenant")),
            _ => {}
        }
        let actor = match authority {
            Authority::Tenant(scope) => {
                if new.tenant_id.as_ref() != Some(scope.tenant()) || !new.role.is_tenant_role() {
                    return Err(AuthError::Forbidden("users are created in your own tenant only".into()));
                }
                scope.actor().clone()
            }
            Authority::Installation(scope) => scope.actor().clone(),
        };
        if let Some(tenant) = &new.tenant_id
            && self.system.get_tenant(tenant).await?.is_none()
        {
            errors.push(FieldError::new("tenant", "no such tenant"));
        }
        if !errors.is_empty() {
            return Err(AuthError::Invalid(errors));
        }
        let pw = new.password;
        let hash = blocking(move || password::hash(&pw))
            .await?
            .map_err(|e| AuthError::Hash(e.to_string()))?;
        let now = self.now();
        let user = User {
            id: uuid::Uuid::now_v7().to_string(),
            email,
            name: new.name,
            role: new.role,
            tenant_id: new.tenant_id,
            password_hash: hash,
            totp_secret: None,
            totp_enabled: false,
            disabled: false,
            credentials_changed_at: now,
            totp_last_step: None,
            created_at: now,
            updated_at: now,
        };
        self.system.create_user(&user, &actor).await?;
        Ok(user)
    }

    /// A user record by email, for the CLI.
    pub async fn user_by_email(&self, email: &str) -> AuthResult<Option<User>> {
        Ok(self.system.user_by_email(&email.trim().to_lowercase()).await?)
    }

    /// Counts one event against `key`; refuses once the window holds more than `limit`.
    async fn count(&self, key: &str, limit: u64, window: Duration) -> AuthResult<()> {
        let w = self.limiter.hit(key, window, self.now()).await?;
        if w.count > limit {
            return Err(AuthError::TooMany {
                retry_after_secs: w.resets_in_secs,
            });
        }
        Ok(())
    }

    /// Checks a sign-in. Unknown emails, wrong passwords and wrong codes get one answer.
    ///
    /// Every attempt counts against the email's lockout **before** the password is checked,
    /// so concurrent guesses cannot all pass a "no failures yet" check; a success clears the
    /// count. A second-factor code has its own counter per account, and each accepted code
    /// (its time step) is used once. Attempts are recorded in the audit chain.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        totp: Option<&str>,
        client: &ClientKey,
    ) -> AuthResult<(Issued, User)> {
        let now = self.now();
        let minute = Duration::from_secs(60);
        self.count(
            &format!("login-client:{client}"),
            self.config.login_attempts_per_ip_per_minute,
            minute,
        )
        .await?;
        let email = email.trim().to_lowercase();
        let email_digest = secret::digest(&email);
        let lockout = Duration::from_secs(self.config.lockout_secs);
        let fail_key = format!("login-fail:{email_digest}");
        let peer = Some(client.as_str());
        let user = self.system.user_by_email(&email).await?;
        if let Err(e) = self.count(&fail_key, self.config.max_failed_logins, lockout).await {
            self.system
                .record_login(user.as_ref(), &email_digest, false, "locked", peer, now)
                .await?;
            return Err(e);
        }

        let hash = user
            .as_ref()
            .map_or_else(|| password::dummy_hash().to_owned(), |u| u.password_hash.clone());
        let pw = password.to_owned();
        let password_ok = blocking(move || password::verify(&hash, &pw)).await?;
        let user = match user {
            Some(u) if password_ok && !u.disabled => u,
            other => {
                let reason = match &other {
                    None => "unknown_email",
                    Some(u) if u.disabled => "disabled",
                    Some(_) => "password",
                };
                self.system
                    .record_login(other.as_ref(), &email_digest, false, reason, peer, now)
                    .await?;
                return Err(AuthError::InvalidCredentials);
            }
        };
        if user.totp_enabled {
            let Some(code) = totp else {
                return Err(AuthError::TotpRequired);
            };
            let second = self.check_second_factor(&user, code).await;
            if let Err(e) = second {
                self.system
                    .record_login(Some(&user), &email_digest, false, "second_factor", peer, now)
                    .await?;
                return Err(e);
            }
        }
        self.limiter.clear(&fail_key, lockout, now).await?;
        let family = secret::random_text(16);
        let issued = self.issue_session(&user, &family, now).await?;
        self.system
            .record_login(Some(&user), &email_digest, true, "password", peer, now)
            .await?;
        tracing::info!(user = %user.id, "login");
        Ok((issued, user))
    }

    /// Checks a second-factor code of `user`: counted per account before it is checked, and
    /// accepted once (its time step must be later than every step accepted before).
    async fn check_second_factor(&self, user: &User, code: &str) -> AuthResult<()> {
        let lockout = Duration::from_secs(self.config.lockout_secs);
        let key = format!("totp-fail:{}", user.id);
        self.count(&key, self.config.max_failed_logins, lockout).await?;
        let now = self.now();
        let step = self.totp_step(user, code, now).ok_or(AuthError::InvalidCredentials)?;
        if !self.system.advance_totp_step(&user.id, step).await? {
            tracing::warn!(user = %user.id, "second-factor code presented again; refused");
            return Err(AuthError::InvalidCredentials);
        }
        self.limiter.clear(&key, lockout, now).await?;
        Ok(())
    }

    async fn issue_session(&self, user: &User, family: &str, now: DateTime<Utc>) -> AuthResult<Issued> {
        let (refresh, hash) = secret::generate(secret::REFRESH_PREFIX);
        let refresh_ttl = chrono::Duration::seconds(self.config.refresh_ttl_secs as i64);
        self.system
            .insert_refresh_token(&TokenRecord {
                hash,
                kind: TokenKind::Refresh,
                user_id: user.id.clone(),
                family: family.to_owned(),
                name: String::new(),
                role: None,
                created_at: now,
                expires_at: now + refresh_ttl,
                used_at: None,
                revoked_at: None,
                last_used_at: None,
            })
            .await?;
        let access_ttl = chrono::Duration::seconds(self.config.access_ttl_secs as i64);
        Ok(Issued {
            access_token: self.keys.issue(&user.id, family, now, now + access_ttl),
            token_type: "Bearer",
            expires_in: self.config.access_ttl_secs,
            refresh_token: refresh,
            refresh_expires_in: self.config.refresh_ttl_secs,
        })
    }

    /// Exchanges a refresh token for a new pair. A token presented twice means it was copied:
    /// the whole session is revoked.
    pub async fn refresh(&self, token: &str) -> AuthResult<(Issued, User)> {
        let now = self.now();
        let hash = secret::digest(token);
        let record = match self.system.token(&hash).await? {
            Some(r) if r.kind == TokenKind::Refresh && r.is_live(now) => r,
            _ => return Err(AuthError::Unauthorized),
        };
        if !self.system.consume_token(&hash, now).await? {
            let which = Revoke::Family {
                user: &record.user_id,
                family: &record.family,
            };
            let n = self.system.revoke_tokens(which, now, None).await?;
            self.credentials_changed(&record.user_id);
            tracing::warn!(user = %record.user_id, revoked = n, "refresh token reused; session revoked");
            return Err(AuthError::Unauthorized);
        }
        let user = self.live_user(&record.user_id).await?;
        let issued = self.issue_session(&user, &record.family, now).await?;
        Ok((issued, user))
    }

    /// Ends the session a refresh token belongs to (unknown tokens are ignored).
    pub async fn logout_refresh(&self, token: &str) -> AuthResult<()> {
        if let Some(record) = self.system.token(&secret::digest(token)).await?
            && record.kind == TokenKind::Refresh
        {
            let which = Revoke::Family {
                user: &record.user_id,
                family: &record.family,
            };
            self.system.revoke_tokens(which, self.now(), None).await?;
            self.credentials_changed(&record.user_id);
        }
        Ok(())
    }

    /// Ends the caller's own login session.
    pub async fn logout(&self, principal: &Principal) -> AuthResult<()> {
        if let Credential::Session { family, .. } = &principal.credential {
            let which = Revoke::Family {
                user: &principal.user.id,
                family,
            };
            self.system.revoke_tokens(which, self.now(), None).await?;
            self.credentials_changed(&principal.user.id);
        }
        Ok(())
    }

    /// Resolves a bearer token (access JWT or personal token) and the optional act-as request
    /// into a principal, and mints its scope (with `request_id` in its actor).
    pub async fn authenticate(
        &self,
        bearer: &str,
        act_as: Option<ActAs>,
        request_id: Option<String>,
    ) -> AuthResult<Principal> {
        let (user, credential) = self.verify_bearer(bearer, true).await?;
        let cap = match &credential {
            Credential::Personal { cap: Some(role), .. } => role.permissions(),
            _ => Permissions::of(&Permission::ALL),
        };
        let actor = Actor::user(&user.id, &user.email).in_request(request_id);
        let Some(act) = act_as else {
            let scope = user.tenant_id.clone().map(|t| self.system.scope(t, actor.clone()));
            let installation = (user.role == Role::SuperAdmin).then(|| self.system.installation_scope(actor));
            return Ok(Principal {
                role: user.role,
                tenant: user.tenant_id.clone(),
                permissions: user.role.permissions().intersect(cap),
                user,
                credential,
                acting_as: None,
                scope,
                installation,
            });
        };
        if user.role != Role::SuperAdmin {
            return Err(AuthError::Forbidden("only super admins may act inside a tenant".into()));
        }
        if !act.role.is_tenant_role() {
            return Err(AuthError::Forbidden(
                "a super admin acts inside a tenant with a tenant role".into(),
            ));
        }
        if self.system.get_tenant(&act.tenant).await?.is_none() {
            return Err(AuthError::Forbidden("no such tenant".into()));
        }
        // Acting never reaches credentials or accounts; everything else is capped by the role.
        let mut list: Vec<Permission> = act.role.permissions().iter().collect();
        list.retain(|p| *p != Permission::UsersManage);
        let mut actor = actor;
        actor.acting_as_role = Some(act.role.as_str().to_owned());
        Ok(Principal {
            role: act.role,
            tenant: Some(act.tenant.clone()),
            permissions: Permissions::of(&list).intersect(cap),
            scope: Some(self.system.scope(act.tenant.clone(), actor)),
            installation: None,
            user,
            credential,
            acting_as: Some(act),
        })
    }

    /// The user and credential behind a bearer token. `fresh`: the access token must not have
    /// expired (live sockets re-check a session after its first access token expired).
    async fn verify_bearer(&self, bearer: &str, fresh: bool) -> AuthResult<(User, Credential)> {
        let now = self.now();
        if bearer.starts_with(secret::PERSONAL_PREFIX) {
            let hash = secret::digest(bearer);
            let record = match self.system.token(&hash).await? {
                Some(r) if r.kind == TokenKind::Personal && r.is_live(now) => r,
                _ => return Err(AuthError::Unauthorized),
            };
            let user = self.live_user(&record.user_id).await?;
            if record
                .last_used_at
                .is_none_or(|t| now - t > chrono::Duration::minutes(1))
            {
                self.system.touch_token(&hash, now).await?;
            }
            return Ok((
                user,
                Credential::Personal {
                    id: record.family,
                    cap: record.role,
                },
            ));
        }
        let claims = if fresh {
            self.keys.verify(bearer, now)
        } else {
            self.keys.verify_ignoring_expiry(bearer)
        }
        .ok_or(AuthError::Unauthorized)?;
        let user = self.live_user(&claims.sub).await?;
        if claims.iat < user.credentials_changed_at.timestamp()
            || !self.system.session_live(&user.id, &claims.sid).await?
        {
            return Err(AuthError::Unauthorized);
        }
        Ok((
            user,
            Credential::Session {
                family: claims.sid,
                issued_at: claims.iat,
            },
        ))
    }

    /// Whether a live connection opened with `bearer` may stay open: its session (or personal
    /// token) is alive, the user is enabled and has not changed credentials since. The access
    /// token's own expiry does not end a connection; the session's end does.
    pub async fn still_valid(&self, bearer: &str) -> bool {
        self.verify_bearer(bearer, false).await.is_ok()
    }

    async fn live_user(&self, id: &str) -> AuthResult<User> {
        match self.system.user_by_id(id).await? {
            Some(u) if !u.disabled => Ok(u),
            _ => Err(AuthError::Unauthorized),
        }
    }

    /// Counts one API request of the caller's tenant against its quota (users and tokens of a
    /// tenant share it; installation administrators have none). 429 `api_quota_exceeded` once
    /// the minute's requests are used up.
    pub async fn admit(&self, principal: &Principal) -> Result<(), ApiError> {
        let Some(tenant) = &principal.tenant else {
            return Ok(());
        };
        let Some(limit) = self.api_quota(tenant).await.map_err(ApiError::from)? else {
            return Ok(());
        };
        let window = self
            .limiter
            .hit(&format!("api:{tenant}"), Duration::from_secs(60), self.now())
            .await
            .map_err(|e| ApiError::from(AuthError::from(e)))?;
        if window.count > limit {
            return Err(ApiError::new(
                ErrorCode::ApiQuotaExceeded,
                format!("your synagogue's API quota ({limit} requests a minute) is used up"),
            )
            .retry_after(window.resets_in_secs));
        }
        Ok(())
    }

    /// Forgets the cached quota of `tenant` (after a super admin changed it here; other
    /// replicas read it again within seconds).
    pub fn quota_changed(&self, tenant: &TenantId) {
        if let Ok(mut cache) = self.quota_cache.lock() {
            cache.remove(tenant);
        }
    }

    /// A tenant's API requests per minute (its own quota, else the installation default),
    /// cached for a few seconds so the quota costs no store read per request.
    async fn api_quota(&self, tenant: &TenantId) -> AuthResult<Option<u64>> {
        const FRESH: std::time::Duration = std::time::Duration::from_secs(10);
        if let Some((at, limit)) = self.quota_cache.lock().ok().and_then(|c| c.get(tenant).copied())
            && at.elapsed() < FRESH
        {
            return Ok(limit);
        }
        let own = self
            .system
            .get_tenant(tenant)
            .await?
            .map(|t| t.quota)
            .unwrap_or_default();
        let limit = own.or(self.quota_defaults).api_requests_per_minute;
        if let Ok(mut cache) = self.quota_cache.lock() {
            if cache.len() > 100_000 {
                cache.clear();
            }
            cache.insert(tenant.clone(), (std::time::Instant::now(), limit));
        }
        Ok(limit)
    }

    /// Changes the caller's password and ends all their sessions and personal tokens.
    pub async fn change_password(&self, principal: &Principal, current: &str, new: &str) -> AuthResult<()> {
        let mut user = self.live_user(&principal.user.id).await?;
        let (hash, cur) = (user.password_hash.clone(), current.to_owned());
        if !blocking(move || password::verify(&hash, &cur)).await? {
            return Err(AuthError::InvalidCredentials);
        }
        if let Err(m) = password::check_policy(new) {
            return Err(AuthError::Invalid(vec![FieldError::new("new_password", m)]));
        }
        let pw = new.to_owned();
        user.password_hash = blocking(move || password::hash(&pw))
            .await?
            .map_err(|e| AuthError::Hash(e.to_string()))?;
        self.end_credentials(user, "password_changed", &principal.actor()).await
    }

    /// Saves a user whose credentials changed, and ends every session and personal token.
    async fn end_credentials(&self, mut user: User, reason: &str, actor: &Actor) -> AuthResult<()> {
        let now = self.now();
        user.credentials_changed_at = now;
        user.updated_at = now;
        self.system.save_user(&user, actor).await?;
        self.system.end_credentials(&user, reason, now, actor).await?;
        self.credentials_changed(&user.id);
        Ok(())
    }

    /// Sets a user's password without the current one (the admin CLI).
    pub async fn set_password(&self, user: User, new: &str, actor: &Actor) -> AuthResult<()> {
        if let Err(m) = password::check_policy(new) {
            return Err(AuthError::Invalid(vec![FieldError::new("password", m)]));
        }
        let mut user = user;
        let pw = new.to_owned();
        user.password_hash = blocking(move || password::hash(&pw))
            .await?
            .map_err(|e| AuthError::Hash(e.to_string()))?;
        self.end_credentials(user, "password_set", actor).await
    }

    /// A tenant administrator disabled `user`: every session and token of theirs ends.
    pub async fn user_disabled(&self, user: &User, actor: &Actor) -> AuthResult<()> {
        self.system.end_credentials(user, "disabled", self.now(), actor).await?;
        self.credentials_changed(&user.id);
        Ok(())
    }

    /// Issues a personal access token for the caller, capped at `role`: never above their own
    /// role, nor above the cap of the credential they present (a capped token cannot mint a
    /// stronger one). Without a role, the new token takes the presenting credential's cap.
    pub async fn create_personal_token(
        &self,
        principal: &Principal,
        name: &str,
        role: Option<Role>,
        days: u32,
    ) -> AuthResult<NewPersonalToken> {
        let user = &principal.user;
        let presented_cap = match &principal.credential {
            Credential::Personal { cap, .. } => *cap,
            Credential::Session { .. } => None,
        };
        let mut errors = Vec::new();
        crate::error::check_text(&mut errors, "name", name, true, 100);
        if days == 0 || days > self.config.personal_token_max_days {
            errors.push(FieldError::new(
                "expires_in_days",
                format!("must be 1–{}", self.config.personal_token_max_days),
            ));
        }
        let role = role.or(presented_cap);
        if let Some(r) = role {
            let ceiling = presented_cap.map_or(user.role.permissions(), |c| {
                c.permissions().intersect(user.role.permissions())
            });
            if !ceiling.covers(r.permissions()) {
                errors.push(FieldError::new(
                    "role",
                    "cannot exceed your own role or the cap of the token you sign in with",
                ));
            }
        }
        if !errors.is_empty() {
            return Err(AuthError::Invalid(errors));
        }
        let now = self.now();
        let (text, hash) = secret::generate(secret::PERSONAL_PREFIX);
        let record = TokenRecord {
            hash,
            kind: TokenKind::Personal,
            user_id: user.id.clone(),
            family: secret::random_text(10),
            name: name.to_owned(),
            role,
            created_at: now,
            expires_at: now + chrono::Duration::days(i64::from(days)),
            used_at: None,
            revoked_at: None,
            last_used_at: None,
        };
        self.system
            .insert_personal_token(user, &record, &principal.actor())
            .await?;
        Ok(NewPersonalToken { record, secret: text })
    }

    /// Issues a personal token from the admin CLI (capped at `role` if given).
    pub async fn create_token_for(
        &self,
        user: &User,
        name: &str,
        role: Option<Role>,
        days: u32,
    ) -> AuthResult<NewPersonalToken> {
        let actor = Actor::cli();
        let installation = self.system.installation_scope(actor.clone());
        let principal = Principal {
            user: user.clone(),
            credential: Credential::Session {
                family: String::new(),
                issued_at: 0,
            },
            role: user.role,
            tenant: user.tenant_id.clone(),
            permissions: user.role.permissions(),
            acting_as: None,
            scope: user.tenant_id.clone().map(|t| self.system.scope(t, actor)),
            installation: Some(installation),
        };
        self.create_personal_token(&principal, name, role, days).await
    }

    pub async fn list_personal_tokens(&self, user: &User) -> AuthResult<Vec<TokenRecord>> {
        Ok(self.system.list_tokens(&user.id, TokenKind::Personal).await?)
    }

    /// Revokes one of the caller's personal tokens by public id; false when there is none.
    pub async fn revoke_personal_token(&self, principal: &Principal, id: &str) -> AuthResult<bool> {
        let user = &principal.user;
        let tokens = self.system.list_tokens(&user.id, TokenKind::Personal).await?;
        if !tokens.iter().any(|t| t.family == id) {
            return Ok(false);
        }
        self.system
            .revoke_personal_token(user, id, self.now(), &principal.actor())
            .await?;
        self.credentials_changed(&user.id);
        Ok(true)
    }

    fn totp_for(user: &User, secret: &str) -> Option<TOTP> {
        let bytes = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).ok()?;
        Some(TOTP::new_unchecked(
            Algorithm::SHA1,
            6,
            1,
            30,
            bytes,
            Some("Luach".into()),
            user.email.clone(),
        ))
    }

    /// The time step a code belongs to (the current one or a neighbour), if it is right.
    fn totp_step(&self, user: &User, code: &str, now: DateTime<Utc>) -> Option<i64> {
        let totp = user.totp_secret.as_deref().and_then(|s| Self::totp_for(user, s))?;
        if code.len() != 6 {
            return None;
        }
        let t = now.timestamp().max(0) as u64;
        [t.saturating_sub(30), t, t + 30].into_iter().find_map(|at| {
            let expected = totp.generate(at);
            secret::equal(expected.as_bytes(), code.as_bytes()).then_some((at / 30) as i64)
        })
    }

    /// Starts second-factor enrolment: a new secret, not yet required until confirmed.
    pub async fn totp_setup(&self, principal: &Principal) -> AuthResult<TotpSetup> {
        let mut user = self.live_user(&principal.user.id).await?;
        if user.totp_enabled {
            return Err(AuthError::Invalid(vec![FieldError::new(
                "totp",
                "already enabled; disable it first",
            )]));
        }
        let mut raw = [0u8; 20];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut raw);
        let secret = data_encoding::BASE32_NOPAD.encode(&raw);
        let url = Self::totp_for(&user, &secret).map(|t| t.get_url()).unwrap_or_default();
        user.totp_secret = Some(secret.clone());
        user.updated_at = self.now();
        self.system.save_user(&user, &principal.actor()).await?;
        Ok(TotpSetup {
            secret,
            otpauth_url: url,
        })
    }

    /// Confirms enrolment with a current code; from then on logins need a code.
    pub async fn totp_confirm(&self, principal: &Principal, code: &str) -> AuthResult<()> {
        let mut user = self.live_user(&principal.user.id).await?;
        if user.totp_enabled {
            return Err(AuthError::InvalidCredentials);
        }
        self.check_second_factor(&user, code).await?;
        user.totp_enabled = true;
        user.updated_at = self.now();
        self.system.save_user(&user, &principal.actor()).await?;
        Ok(())
    }

    /// Removes the second factor; needs the password and a current code. Every session and
    /// personal token ends.
    pub async fn totp_disable(&self, principal: &Principal, password: &str, code: &str) -> AuthResult<()> {
        let user = self.live_user(&principal.user.id).await?;
        let (hash, pw) = (user.password_hash.clone(), password.to_owned());
        let ok = blocking(move || password::verify(&hash, &pw)).await?;
        if !user.totp_enabled || !ok {
            return Err(AuthError::InvalidCredentials);
        }
        self.check_second_factor(&user, code).await?;
        let mut user = user;
        user.totp_secret = None;
        user.totp_enabled = false;
        self.end_credentials(user, "second_factor_removed", &principal.actor())
            .await
    }
}
