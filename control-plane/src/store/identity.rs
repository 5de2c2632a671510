//! Identity records: tenants (with their quotas), users, and the tokens issued to them.
//!
//! The authentication layer reads them before any tenant scope exists (a login names an email,
//! a bearer token names itself), through the [`SystemStore`](super::SystemStore); tenant
//! administrators reach their own users through their [`TenantStore`](super::TenantStore).

use chrono::{DateTime, Utc};
use luach_schemas::TenantId;
use serde::{Deserialize, Serialize};

use crate::auth::Role;

/// A tenant: a synagogue or a network of synagogues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// Limits set by the installation's super admin; unset fields follow the installation's
    /// defaults (`quotas.*` in the configuration).
    #[serde(default)]
    pub quota: Quota,
}

/// A tenant's limits (the licence of a synagogue on a shared installation). `None` means the
/// installation default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Most screens registered in the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_devices: Option<u64>,
    /// Most API requests per minute by the tenant's users and tokens together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_requests_per_minute: Option<u64>,
    /// Most bytes of stored content (synagogues, announcements, plaques, programme).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_content_bytes: Option<u64>,
}

impl Quota {
    /// This quota's limits, with `defaults` where it sets none.
    pub fn or(self, defaults: Quota) -> Quota {
        Quota {
            max_devices: self.max_devices.or(defaults.max_devices),
            api_requests_per_minute: self.api_requests_per_minute.or(defaults.api_requests_per_minute),
            max_content_bytes: self.max_content_bytes.or(defaults.max_content_bytes),
        }
    }
}

/// A person who signs in to the dashboard or the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// The latest second-factor time step accepted: a code is accepted once, and never a code
    /// older than one already used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_last_step: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a stored token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Every token of a user of this kind (all sessions at logout-everywhere).
    User(&'a str, TokenKind),
    /// Every token of a user, sessions and personal tokens (password change, second factor
    /// removed, account disabled).
    AllOfUser(&'a str),
    /// One login session (refresh family) or one personal token (its public id), of `user`.
    Family { user: &'a str, family: &'a str },
}
