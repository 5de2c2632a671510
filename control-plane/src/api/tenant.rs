//! The caller, their scope and their address, as request extractors.
//!
//! [`routes::authenticate`](super::routes) puts the [`Principal`] into the request; these
//! extractors take it out. Handlers of tenant data take a [`Scope`], which exists only for a
//! caller with a tenant (a tenant user, or a super admin acting inside one tenant); handlers of
//! installation data take an [`Installation`], which exists only for a super admin who is not
//! acting inside a tenant. Both scopes were minted by the authentication service from the
//! verified credential: a handler has no way to make one.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::auth::{ClientKey, Principal};
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::store::{InstallationScope, TenantScope};

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Self)
            .ok_or_else(|| ApiError::unauthorized("valid credentials are required"))
    }
}

/// The tenant scope of the authenticated caller.
#[derive(Debug, Clone)]
pub struct Scope(pub TenantScope);

impl<S: Send + Sync> FromRequestParts<S> for Scope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        principal.scope().cloned().map(Self).ok_or_else(tenant_required)
    }
}

/// The installation scope of a super admin (not acting inside a tenant).
#[derive(Debug, Clone)]
pub struct Installation(pub InstallationScope);

impl<S: Send + Sync> FromRequestParts<S> for Installation {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        principal
            .installation()
            .cloned()
            .map(Self)
            .ok_or_else(|| ApiError::forbidden("installation administration is for super admins"))
    }
}

/// The client's rate-limit key: its address (behind `http.trusted_proxies`, the forwarded
/// one), an IPv6 address by its /64.
#[derive(Debug, Clone)]
pub struct Client(pub ClientKey);

impl FromRequestParts<AppState> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(client_key(parts, state)))
    }
}

/// The client key of a request (see [`Client`]).
pub fn client_key(parts: &Parts, state: &AppState) -> ClientKey {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    let values = |name: &str| -> Vec<&str> {
        parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    };
    let ip = state
        .proxies
        .client_ip(peer, &values("forwarded"), &values("x-forwarded-for"));
    ClientKey::of(ip)
}

pub(super) fn tenant_required() -> ApiError {
    ApiError::new(
        ErrorCode::TenantRequired,
        "this endpoint acts inside a tenant; a super admin names one with the x-luach-tenant header",
    )
}
