//! Content bundles over HTTP, with conditional requests.
//!
//! - `GET /api/v1/agent/bundle`: a screen fetches its own bundle with the device token from
//!   its last bundle notice (header `x-luach-device-token`).
//! - `GET /api/v1/devices/{id}/bundle`: a tenant user reads a screen's bundle.
//! - `GET /api/v1/devices/{id}/preview?date=`: what that screen shows on a date, computed
//!   from its bundle exactly as the agent computes it offline.
//!
//! Bundle bodies are the bundle's exact bytes (not wrapped in `{"data": …}`), so the receiver
//! can check their SHA-256; the `ETag` is that hash. `If-None-Match` with the current hash
//! answers 304 without a body.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::header::IF_NONE_MATCH;
use axum::{Extension, Json};
use chrono::{NaiveDate, Utc};
use luach_schemas::DeviceId;
use serde::Deserialize;

use super::devices::{DataBody, data};
use super::extract::ValidQuery;
use super::reply::BundleFile;
use super::tenant::Scope;
use crate::auth::DevicePrincipal;
use crate::bundle::{Built, TenantContent};
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::state::AppState;
use crate::store::{Device, TenantScope};

fn matches(headers: &HeaderMap, sha256: &str) -> bool {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|tag| tag == sha256 || tag == "*")
}

async fn device(state: &AppState, scope: &TenantScope, id: &DeviceId) -> Result<Device, ApiError> {
    state
        .store
        .tenant(scope)
        .device(id)
        .await?
        .ok_or_else(|| ApiError::not_found("device"))
}

async fn build(state: &AppState, scope: &TenantScope, device: &Device) -> Result<Built, ApiError> {
    let content = TenantContent::load(&state.store.tenant(scope), Utc::now().date_naive()).await?;
    Ok(content.build_for(device))
}

/// The bundle as a conditional response.
fn serve(bundle: Built, headers: &HeaderMap) -> BundleFile {
    let fresh = !matches(headers, &bundle.sha256);
    BundleFile {
        bytes: fresh.then_some(bundle.bytes),
        sha256: bundle.sha256,
    }
}

fn parse_id(id: &str) -> Result<DeviceId, ApiError> {
    DeviceId::parse(id).map_err(|_| ApiError::not_found("device"))
}

/// `GET /devices/{id}/bundle`.
pub async fn get(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<BundleFile, ApiError> {
    let device = device(&state, &scope, &parse_id(&id)?).await?;
    Ok(serve(build(&state, &scope, &device).await?, &headers))
}

/// `GET /agent/bundle`: the calling screen's own bundle.
pub async fn own(
    State(state): State<AppState>,
    Extension(caller): Extension<DevicePrincipal>,
    headers: HeaderMap,
) -> Result<BundleFile, ApiError> {
    let scope = caller.scope();
    let device = device(&state, scope, &caller.device).await?;
    Ok(serve(build(&state, scope, &device).await?, &headers))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewQuery {
    /// Civil date, YYYY-MM-DD; default: today at the screen's synagogue.
    date: Option<NaiveDate>,
}

/// `GET /devices/{id}/preview?date=`: the screen's day, from its bundle.
pub async fn preview(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
    ValidQuery(q): ValidQuery<PreviewQuery>,
) -> Result<Json<DataBody<luach_content::bundle::ScreenDay>>, ApiError> {
    let device = device(&state, &scope, &parse_id(&id)?).await?;
    let content = TenantContent::load(&state.store.tenant(&scope), Utc::now().date_naive()).await?;
    let bundle = content.bundle_for(&device);
    let date = q.date.unwrap_or_else(|| bundle.today(Utc::now()));
    match bundle.screen_day(date) {
        Ok(day) => Ok(data(day)),
        Err(luach_content::Error::NoSynagogue) => Err(ApiError::new(
            ErrorCode::NoSynagogue,
            "no synagogue profile is assigned to this screen",
        )),
        Err(e) => Err(ApiError::invalid_query(vec![FieldError::new("date", e.to_string())])),
    }
}
