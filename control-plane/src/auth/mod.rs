//! Identity: who is calling, and what they may do.
//!
//! - [`password`]: argon2id hashes; [`secret`]: opaque tokens stored as digests;
//!   [`jwt`]: short-lived access tokens; [`limiter`]: rate limits and lockout;
//! - [`service::AuthService`]: logins, refresh-token rotation with reuse detection, logout,
//!   personal access tokens, TOTP, and bearer → [`Principal`];
//! - [`role`]: roles and the permissions routes declare (`api::routes` checks them in one layer).

pub mod clock;
pub mod jwt;
pub mod limiter;
pub mod password;
pub mod role;
pub mod secret;
pub mod service;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use secrecy::ExposeSecret;

pub use clock::{Clock, ManualClock, SystemClock};
pub use role::{Permission, Permissions, Role};
pub use service::{ActAs, AuthError, AuthService, Credential, DEVICE_TOKEN_TTL, DevicePrincipal, NewUser, Principal};

use crate::config::Config;

/// The access-token key: configured, or created once in `<data_dir>/auth/jwt.key`.
pub fn load_keys(config: &Config) -> anyhow::Result<jwt::Keys> {
    if let Some(secret) = &config.auth.jwt_secret {
        return Ok(jwt::Keys::new(secret.expose_secret().as_bytes()));
    }
    let path = config.data_dir.join("auth").join("jwt.key");
    let key = read_or_create_key(&path).with_context(|| format!("access-token key {}", path.display()))?;
    Ok(jwt::Keys::new(key.as_bytes()))
}

fn read_or_create_key(path: &Path) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(k) if k.trim().len() >= 32 => return Ok(k.trim().to_owned()),
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "key file is shorter than 32 bytes",
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let key = secret::random_text(32);
    luach_pki::write_atomic(path, key.as_bytes(), luach_pki::FileMode::Private)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(key)
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
