//! `GET /api/v1/devices/{id}/bundle`: a screen's content bundle, with conditional requests.
//!
//! The body is the bundle's exact bytes (not wrapped in `{"data": …}`), so its SHA-256 can be
//! checked by the receiver; the `ETag` is that hash. `If-None-Match` with the current hash
//! answers 304 without a body.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use luach_schemas::DeviceId;

use super::tenant::Scope;
use crate::error::ApiError;
use crate::state::AppState;

/// Header carrying the bundle's hex SHA-256 (also the `ETag`, quoted).
pub const SHA256_HEADER: &str = "x-luach-bundle-sha256";

fn matches(headers: &HeaderMap, sha256: &str) -> bool {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|tag| tag == sha256 || tag == "*")
}

pub async fn get(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = DeviceId::parse(&id).map_err(|_| ApiError::not_found("device"))?;
    let device = state
        .store
        .get(&scope, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("device"))?;
    let today = Utc::now().date_naive();
    let bundle = state
        .metrics
        .time_store(
            "bundle.build",
            crate::bundle::build(state.store.as_ref(), &scope, &device, today),
        )
        .await?;
    let etag = HeaderValue::from_str(&format!("\"{}\"", bundle.sha256)).map_err(|e| ApiError::internal(&e))?;
    let sha = HeaderValue::from_str(&bundle.sha256).map_err(|e| ApiError::internal(&e))?;
    let mut response = if matches(&headers, &bundle.sha256) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Response::new(Body::from(bundle.bytes));
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r
    };
    let h = response.headers_mut();
    h.insert(ETAG, etag);
    h.insert(SHA256_HEADER, sha);
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}
