//! The tenant scope of a request.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use luach_schemas::TenantId;

use crate::error::ApiError;
use crate::store::TenantScope;

/// Extracts the caller's tenant scope. Until identity lands, every request acts in the
/// built-in tenant; handlers already take their scope only from here.
#[derive(Debug, Clone)]
pub struct Scope(pub TenantScope);

impl<S: Send + Sync> FromRequestParts<S> for Scope {
    type Rejection = ApiError;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(TenantScope::trusted(TenantId::builtin())))
    }
}
