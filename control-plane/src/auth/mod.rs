//! Identity: who is calling, and what they may do.
//!
//! - [`password`]: argon2id hashes; [`secret`]: opaque tokens stored as digests;
//!   [`jwt`]: short-lived access tokens; [`limiter`]: rate limits and lockout;
//!   [`client`]: the client's address behind trusted proxies, and its rate-limit key;
//! - [`service::AuthService`]: logins, refresh-token rotation with reuse detection, logout,
//!   personal access tokens, TOTP, and bearer → [`Principal`] (with its scope);
//! - [`role`]: roles and the permissions routes declare (`api::routes` checks them in one layer).

pub mod client;
pub mod clock;
pub mod jwt;
pub mod limiter;
pub mod password;
pub mod role;
pub mod secret;
pub mod service;

use std::sync::Arc;

use anyhow::Context;
use secrecy::ExposeSecret;

pub use client::{ClientKey, TrustedProxies};
pub use clock::{Clock, ManualClock, SystemClock};
pub use role::{Permission, Permissions, Role};
pub use service::{
    ActAs, AuthError, AuthService, Authority, Credential, DEVICE_TOKEN_TTL, DevicePrincipal, NewUser, Principal,
};

use crate::config::Config;

/// The access-token key: configured, or created once in `<data_dir>/auth/jwt.key` (`0600`; a
/// key file others can read is refused).
pub fn load_keys(config: &Config) -> anyhow::Result<jwt::Keys> {
    if let Some(secret) = &config.auth.jwt_secret {
        return Ok(jwt::Keys::new(secret.expose_secret().as_bytes()));
    }
    let path = config.data_dir.join("auth").join("jwt.key");
    let key = crate::keys::load_or_create(&path, 32, || secret::random_text(32))
        .with_context(|| format!("access-token key {}", path.display()))?;
    Ok(jwt::Keys::new(key.as_bytes()))
}

/// The configured limiter: Redis when `redis` is set (shared by replicas), else in-process.
pub async fn limiter(config: &Config) -> anyhow::Result<Arc<dyn limiter::Limiter>> {
    Ok(match &config.redis {
        Some(url) => Arc::new(
            limiter::RedisLimiter::connect(url.expose_secret())
                .await
                .context("connecting the rate limiter to redis")?,
        ),
        None => Arc::new(limiter::MemoryLimiter::default()),
    })
}
