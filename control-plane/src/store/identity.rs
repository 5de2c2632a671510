//! Identity records: tenants, users, and the tokens issued to them.
//!
//! These are read by the authentication layer before any tenant scope exists (a login names an
//! email, a bearer token names itself), so [`IdentityRepo`] is keyed by ids, emails and token
//! hashes. Tenant administration of users goes through the scoped methods
//! ([`IdentityRepo::list_users`], [`IdentityRepo::delete_user`]), which filter by the scope's
//! tenant like every other tenant-owned read.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use luach_schemas::TenantId;
use serde::{Deserialize, Serialize};

use super::{StoreResult, TenantScope};
use crate::auth::Role;

/// A tenant: a synagogue or a network of synagogues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A person who signs in to the dashboard or the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Server-chosen (UUID v7).
    pub id: String,
    /// Lower-cased; unique across the installation.
    pub email: String,
    pub name: String,
    pub role: Role,
    /// `None` only for `super_admin`.
    pub tenant_id: Option<TenantId>,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Base32 TOTP secret; the second factor is required once `totp_enabled`.
    pub totp_secret: Option<String>,
    pub totp_enabled: bool,
    pub disabled: bool,
    /// Password or second-factor change; access tokens issued before it are refused.
    pub credentials_changed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a stored token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// A single-use refresh token; `family` is the login session it belongs to.
    Refresh,
    /// A personal access token for API clients; `family` is its public id.
    Personal,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refresh => "refresh",
            Self::Personal => "personal",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "refresh" => Some(Self::Refresh),
            "personal" => Some(Self::Personal),
            _ => None,
        }
    }
}

/// An issued token. Only its SHA-256 is stored; the secret is shown once.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    /// Hex SHA-256 of the token text.
    pub hash: String,
    pub kind: TokenKind,
    pub user_id: String,
    /// Refresh: the session family. Personal: the token's public id.
    pub family: String,
    /// Personal: a label chosen by the user. Refresh: empty.
    pub name: String,
    /// Personal: the most this token may do (never more than the user's own role).
    pub role: Option<Role>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Refresh: when it was exchanged. A second exchange means theft: the family is revoked.
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl TokenRecord {
    /// True when the token may still be presented at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

/// Which tokens to revoke.
#[derive(Debug, Clone, PartialEq)]
pub enum Revoke<'a> {
    /// Every token of a user of this kind (all sessions at logout-everywhere or password change).
    User(&'a str, TokenKind),
    /// One login session (refresh family) or one personal token (its public id), of `user`.
    Family { user: &'a str, family: &'a str },
}

/// Storage of identity records.
#[async_trait]
pub trait IdentityRepo: Send + Sync {
    /// Fails with `Conflict` when the id exists.
    async fn create_tenant(&self, tenant: &Tenant) -> StoreResult<()>;
    async fn get_tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>>;
    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>>;

    /// Fails with `Conflict` when the email is taken.
    async fn create_user(&self, user: &User) -> StoreResult<()>;
    /// For the authentication layer: the user a verified token names.
    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>>;
    /// For the authentication layer: the user a login names.
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    /// Users of the scope's tenant, ordered by email.
    async fn list_users(&self, scope: &TenantScope) -> StoreResult<Vec<User>>;
    /// Users without a tenant (super admins), ordered by email.
    async fn list_installation_users(&self) -> StoreResult<Vec<User>>;
    /// Replaces a user by id (email and tenant included). False when there is none.
    async fn save_user(&self, user: &User) -> StoreResult<bool>;
    /// Deletes a user of the scope's tenant and every token of theirs.
    async fn delete_user(&self, scope: &TenantScope, id: &str) -> StoreResult<bool>;

    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()>;
    async fn token(&self, hash: &str) -> StoreResult<Option<TokenRecord>>;
    /// Marks a refresh token used, atomically: true only for the first caller, and only while
    /// it is not revoked.
    async fn consume_token(&self, hash: &str, at: DateTime<Utc>) -> StoreResult<bool>;
    /// Revokes matching tokens that are not yet revoked; returns how many.
    async fn revoke_tokens(&self, which: Revoke<'_>, at: DateTime<Utc>) -> StoreResult<u64>;
    /// True while a login session (refresh family) of `user_id` has an unrevoked token.
    async fn session_live(&self, user_id: &str, family: &str) -> StoreResult<bool>;
    /// A user's tokens of `kind`, newest first.
    async fn list_tokens(&self, user_id: &str, kind: TokenKind) -> StoreResult<Vec<TokenRecord>>;
    /// Records that a personal token was used (best effort, for the token list).
    async fn touch_token(&self, hash: &str, at: DateTime<Utc>) -> StoreResult<()>;
}
