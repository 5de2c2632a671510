//! The caller and their tenant scope, as request extractors.
//!
//! [`routes::authenticate`](super::routes) puts the [`Principal`] into the request; these
//! extractors take it out. Handlers of tenant data take a [`Scope`], which exists only for a
//! caller with a tenant (a tenant user, or a super admin acting inside one tenant).

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::store::TenantScope;

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
        principal.scope().map(Self).ok_or_else(tenant_required)
    }
}

pub(super) fn tenant_required() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "tenant_required",
        "this endpoint acts inside a tenant; a super admin names one with the x-luach-tenant header",
    )
}
