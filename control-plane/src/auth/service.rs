//! The authentication service: logins, sessions, personal tokens, second factor, and turning a
//! bearer token into a [`Principal`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use luach_schemas::{DeviceId, TenantId};
use serde::Serialize;
use totp_rs::{Algorithm, TOTP};

use super::clock::Clock;
use super::jwt::Keys;
use super::limiter::{Limiter, LimiterError};
use super::role::{Permission, Permissions, Role};
use super::{password, secret};
use crate::config::AuthConfig;
use crate::error::{ApiError, FieldError};
use crate::store::{DynStore, Revoke, StoreError, TenantScope, TokenKind, TokenRecord, User};

/// How long a device token is accepted. A screen gets a fresh one with every bundle notice
/// (on each connection and each change of its content).
pub const DEVICE_TOKEN_TTL: chrono::Duration = chrono::Duration::hours(24);

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An access token of a login session.
    Session { family: String },
    /// A personal access token (its public id).
    Personal { id: String },
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
}

/// A screen authenticated by its device token (see [`AuthService::device_token`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePrincipal {
    pub device: DeviceId,
    pub tenant: TenantId,
}

impl DevicePrincipal {
    /// The screen's own tenant.
    pub fn scope(&self) -> TenantScope {
        TenantScope::trusted(self.tenant.clone())
    }
}

impl Principal {
    /// The tenant scope this caller may act in, if any.
    pub fn scope(&self) -> Option<TenantScope> {
        self.tenant.clone().map(TenantScope::trusted)
    }

    pub fn may(&self, p: Permission) -> bool {
        self.permissions.contains(p)
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
        use axum::http::StatusCode;
        match e {
            AuthError::Unauthorized => ApiError::unauthorized("valid credentials are required"),
            AuthError::InvalidCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "wrong email, password or code",
            ),
            AuthError::TotpRequired => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "totp_required",
                "this account needs its second-factor code",
            ),
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
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
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
    store: DynStore,
    keys: Keys,
    clock: Arc<dyn Clock>,
    limiter: Arc<dyn Limiter>,
    config: AuthConfig,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").finish_non_exhaustive()
    }
}

impl AuthService {
    pub fn new(
        store: DynStore,
        keys: Keys,
        clock: Arc<dyn Clock>,
        limiter: Arc<dyn Limiter>,
        config: AuthConfig,
    ) -> Self {
        Self {
            store,
            keys,
            clock,
            limiter,
            config,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// A token that lets `device` fetch its own content, and when it expires.
    pub fn device_token(&self, device: &DeviceId, tenant: &TenantId) -> (String, DateTime<Utc>) {
        let now = self.clock.now();
        let exp = now + DEVICE_TOKEN_TTL;
        (self.keys.issue_device(device.as_str(), tenant.as_str(), now, exp), exp)
    }

    /// Checks a device token, and that the device still exists in its tenant with an
    /// unrevoked certificate.
    pub async fn authenticate_device(&self, token: &str) -> AuthResult<DevicePrincipal> {
        let claims = self
            .keys
            .verify_device(token, self.clock.now())
            .ok_or(AuthError::Unauthorized)?;
        let device = DeviceId::parse(&claims.sub).map_err(|_| AuthError::Unauthorized)?;
        let tenant = TenantId::parse(&claims.tid).map_err(|_| AuthError::Unauthorized)?;
        match self.store.tenants_of(std::slice::from_ref(&device)).await?.get(&device) {
            Some(t) if *t == tenant => Ok(DevicePrincipal { device, tenant }),
            _ => Err(AuthError::Unauthorized),
        }
    }

    /// Creates a user after checking the fields (email form, password policy, tenant role).
    pub async fn create_user(&self, new: NewUser) -> AuthResult<User> {
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
        if let Some(tenant) = &new.tenant_id
            && self.store.get_tenant(tenant).await?.is_none()
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
            created_at: now,
            updated_at: now,
        };
        self.store.create_user(&user).await?;
        Ok(user)
    }

    /// Checks a login. Unknown emails, wrong passwords and wrong codes get one answer; every
    /// email (known or not) is locked the same way after repeated failures.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        totp: Option<&str>,
        ip: IpAddr,
    ) -> AuthResult<(Issued, User)> {
        let now = self.now();
        let minute = Duration::from_secs(60);
        let per_ip = self.limiter.hit(&format!("login-ip:{ip}"), minute, now).await?;
        if per_ip.count > self.config.login_attempts_per_ip_per_minute {
            return Err(AuthError::TooMany {
                retry_after_secs: per_ip.resets_in_secs,
            });
        }
        let email = email.trim().to_lowercase();
        let lockout = Duration::from_secs(self.config.lockout_secs);
        let fail_key = format!("login-fail:{}", secret::digest(&email));
        let failures = self.limiter.peek(&fail_key, lockout, now).await?;
        if failures.count >= self.config.max_failed_logins {
            return Err(AuthError::TooMany {
                retry_after_secs: failures.resets_in_secs,
            });
        }

        let user = self.store.user_by_email(&email).await?;
        let hash = user
            .as_ref()
            .map_or_else(|| password::dummy_hash().to_owned(), |u| u.password_hash.clone());
        let pw = password.to_owned();
        let password_ok = blocking(move || password::verify(&hash, &pw)).await?;
        let user = match user {
            Some(u) if password_ok && !u.disabled => u,
            _ => {
                self.limiter.hit(&fail_key, lockout, now).await?;
                return Err(AuthError::InvalidCredentials);
            }
        };
        if user.totp_enabled {
            let Some(code) = totp else {
                return Err(AuthError::TotpRequired);
            };
            if !self.totp_matches(&user, code, now) {
                self.limiter.hit(&fail_key, lockout, now).await?;
                return Err(AuthError::InvalidCredentials);
            }
        }
        self.limiter.clear(&fail_key, lockout, now).await?;
        let family = secret::random_text(16);
        let issued = self.issue_session(&user, &family, now).await?;
        tracing::info!(user = %user.id, "login");
        Ok((issued, user))
    }

    async fn issue_session(&self, user: &User, family: &str, now: DateTime<Utc>) -> AuthResult<Issued> {
        let (refresh, hash) = secret::generate(secret::REFRESH_PREFIX);
        let refresh_ttl = chrono::Duration::seconds(self.config.refresh_ttl_secs as i64);
        self.store
            .insert_token(&TokenRecord {
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
        let record = match self.store.token(&hash).await? {
            Some(r) if r.kind == TokenKind::Refresh && r.is_live(now) => r,
            _ => return Err(AuthError::Unauthorized),
        };
        if !self.store.consume_token(&hash, now).await? {
            let n = self
                .store
                .revoke_tokens(
                    Revoke::Family {
                        user: &record.user_id,
                        family: &record.family,
                    },
                    now,
                )
                .await?;
            tracing::warn!(user = %record.user_id, revoked = n, "refresh token reused; session revoked");
            return Err(AuthError::Unauthorized);
        }
        let user = match self.store.user_by_id(&record.user_id).await? {
            Some(u) if !u.disabled => u,
            _ => return Err(AuthError::Unauthorized),
        };
        let issued = self.issue_session(&user, &record.family, now).await?;
        Ok((issued, user))
    }

    /// Ends the session a refresh token belongs to (unknown tokens are ignored).
    pub async fn logout_refresh(&self, token: &str) -> AuthResult<()> {
        if let Some(record) = self.store.token(&secret::digest(token)).await?
            && record.kind == TokenKind::Refresh
        {
            self.store
                .revoke_tokens(
                    Revoke::Family {
                        user: &record.user_id,
                        family: &record.family,
                    },
                    self.now(),
                )
                .await?;
        }
        Ok(())
    }

    /// Ends the caller's own login session.
    pub async fn logout(&self, principal: &Principal) -> AuthResult<()> {
        if let Credential::Session { family } = &principal.credential {
            self.store
                .revoke_tokens(
                    Revoke::Family {
                        user: &principal.user.id,
                        family,
                    },
                    self.now(),
                )
                .await?;
        }
        Ok(())
    }

    /// Resolves a bearer token (access JWT or personal token) and the optional act-as request.
    pub async fn authenticate(&self, bearer: &str, act_as: Option<ActAs>) -> AuthResult<Principal> {
        let now = self.now();
        let (user, credential, cap) = if bearer.starts_with(secret::PERSONAL_PREFIX) {
            let hash = secret::digest(bearer);
            let record = match self.store.token(&hash).await? {
                Some(r) if r.kind == TokenKind::Personal && r.is_live(now) => r,
                _ => return Err(AuthError::Unauthorized),
            };
            let user = self.live_user(&record.user_id).await?;
            if record
                .last_used_at
                .is_none_or(|t| now - t > chrono::Duration::minutes(1))
            {
                self.store.touch_token(&hash, now).await?;
            }
            let cap = record.role.map_or(Permissions::of(&Permission::ALL), Role::permissions);
            (user, Credential::Personal { id: record.family }, cap)
        } else {
            let claims = self.keys.verify(bearer, now).ok_or(AuthError::Unauthorized)?;
            let user = self.live_user(&claims.sub).await?;
            if claims.iat < user.credentials_changed_at.timestamp()
                || !self.store.session_live(&user.id, &claims.sid).await?
            {
                return Err(AuthError::Unauthorized);
            }
            (
                user,
                Credential::Session { family: claims.sid },
                Permissions::of(&Permission::ALL),
            )
        };

        let Some(act) = act_as else {
            return Ok(Principal {
                role: user.role,
                tenant: user.tenant_id.clone(),
                permissions: user.role.permissions().intersect(cap),
                user,
                credential,
                acting_as: None,
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
        if self.store.get_tenant(&act.tenant).await?.is_none() {
            return Err(AuthError::Forbidden("no such tenant".into()));
        }
        // Acting never reaches credentials or accounts; everything else is capped by the role.
        let mut list: Vec<Permission> = act.role.permissions().iter().collect();
        list.retain(|p| *p != Permission::UsersManage);
        Ok(Principal {
            role: act.role,
            tenant: Some(act.tenant.clone()),
            permissions: Permissions::of(&list).intersect(cap),
            user,
            credential,
            acting_as: Some(act),
        })
    }

    async fn live_user(&self, id: &str) -> AuthResult<User> {
        match self.store.user_by_id(id).await? {
            Some(u) if !u.disabled => Ok(u),
            _ => Err(AuthError::Unauthorized),
        }
    }

    /// Changes the caller's password and ends all their login sessions.
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
        self.credentials_changed(user).await
    }

    /// Saves a user whose credentials changed, and revokes every session of theirs.
    async fn credentials_changed(&self, mut user: User) -> AuthResult<()> {
        let now = self.now();
        user.credentials_changed_at = now;
        user.updated_at = now;
        self.store.save_user(&user).await?;
        self.store
            .revoke_tokens(Revoke::User(&user.id, TokenKind::Refresh), now)
            .await?;
        Ok(())
    }

    /// Sets a user's password without the current one (installation administrators, CLI).
    pub async fn set_password(&self, mut user: User, new: &str) -> AuthResult<()> {
        if let Err(m) = password::check_policy(new) {
            return Err(AuthError::Invalid(vec![FieldError::new("password", m)]));
        }
        let pw = new.to_owned();
        user.password_hash = blocking(move || password::hash(&pw))
            .await?
            .map_err(|e| AuthError::Hash(e.to_string()))?;
        self.credentials_changed(user).await
    }

    /// Issues a personal access token for `user`, capped at `role` (never above their own).
    pub async fn create_personal_token(
        &self,
        user: &User,
        name: &str,
        role: Option<Role>,
        days: u32,
    ) -> AuthResult<NewPersonalToken> {
        let mut errors = Vec::new();
        crate::error::check_text(&mut errors, "name", name, true, 100);
        if days == 0 || days > self.config.personal_token_max_days {
            errors.push(FieldError::new(
                "expires_in_days",
                format!("must be 1–{}", self.config.personal_token_max_days),
            ));
        }
        if let Some(r) = role
            && !user.role.permissions().covers(r.permissions())
        {
            errors.push(FieldError::new("role", "cannot exceed your own role"));
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
        self.store.insert_token(&record).await?;
        Ok(NewPersonalToken { record, secret: text })
    }

    pub async fn list_personal_tokens(&self, user: &User) -> AuthResult<Vec<TokenRecord>> {
        Ok(self.store.list_tokens(&user.id, TokenKind::Personal).await?)
    }

    /// Revokes one of `user`'s personal tokens by public id; false when there is none.
    pub async fn revoke_personal_token(&self, user: &User, id: &str) -> AuthResult<bool> {
        let tokens = self.store.list_tokens(&user.id, TokenKind::Personal).await?;
        if !tokens.iter().any(|t| t.family == id) {
            return Ok(false);
        }
        self.store
            .revoke_tokens(
                Revoke::Family {
                    user: &user.id,
                    family: id,
                },
                self.now(),
            )
            .await?;
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

    fn totp_matches(&self, user: &User, code: &str, now: DateTime<Utc>) -> bool {
        let Some(totp) = user.totp_secret.as_deref().and_then(|s| Self::totp_for(user, s)) else {
            return false;
        };
        code.len() == 6 && totp.check(code, now.timestamp().max(0) as u64)
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
        self.store.save_user(&user).await?;
        Ok(TotpSetup {
            secret,
            otpauth_url: url,
        })
    }

    /// Confirms enrolment with a current code; from then on logins need a code.
    pub async fn totp_confirm(&self, principal: &Principal, code: &str) -> AuthResult<()> {
        let mut user = self.live_user(&principal.user.id).await?;
        if user.totp_enabled || !self.totp_matches(&user, code, self.now()) {
            return Err(AuthError::InvalidCredentials);
        }
        user.totp_enabled = true;
        user.updated_at = self.now();
        self.store.save_user(&user).await?;
        Ok(())
    }

    /// Removes the second factor; needs the password and a current code.
    pub async fn totp_disable(&self, principal: &Principal, password: &str, code: &str) -> AuthResult<()> {
        let user = self.live_user(&principal.user.id).await?;
        let (hash, pw) = (user.password_hash.clone(), password.to_owned());
        let ok = blocking(move || password::verify(&hash, &pw)).await?;
        if !user.totp_enabled || !ok || !self.totp_matches(&user, code, self.now()) {
            return Err(AuthError::InvalidCredentials);
        }
        let mut user = user;
        user.totp_secret = None;
        user.totp_enabled = false;
        self.credentials_changed(user).await
    }
}
