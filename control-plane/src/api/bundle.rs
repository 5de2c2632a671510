//! Content bundles over HTTP, with conditional requests.
//!
//! - `GET /api/v1/agent/bundle`: a screen fetches its own bundle with the device token from
//!   its last bundle notice (header `x-luach-device-token`); the device record keeps which
//!   bundle it holds and when it last fetched.
//! - `GET /api/v1/devices/{id}/bundle`: a tenant user reads a screen's bundle.
//! - `GET /api/v1/devices/{id}/preview?date=`: what that screen shows on a date, computed
//!   from its bundle exactly as the agent computes it offline.
//! - `GET /api/v1/devices/{id}/preview.png?at=`: the picture that screen draws at an instant,
//!   drawn by `luach-board` from the same bundle (the renderer the agent runs).
//!
//! Bundle bodies are the bundle's exact bytes (not wrapped in `{"data": …}`), so the receiver
//! can check their SHA-256; the `ETag` is that hash. `If-None-Match` with the current hash
//! answers 304 without a body.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::header::IF_NONE_MATCH;
use axum::{Extension, Json};
use chrono::{DateTime, NaiveDate, Utc};
use luach_schemas::DeviceId;
use serde::Deserialize;

use super::devices::{DataBody, data};
use super::extract::ValidQuery;
use super::reply::{BundleFile, Png};
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
    let content = TenantContent::load(&state.store.tenant(scope), state.auth.now().date_naive()).await?;
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
    let bundle = build(&state, scope, &device).await?;
    // Whether it is sent or the screen already holds it, the screen has this bundle now:
    // content rules read that (`bundle_sha256`, `bundle_fetched_at`).
    state
        .store
        .tenant(scope)
        .record_bundle_fetch(&device.id, &bundle.sha256, state.auth.now())
        .await?;
    Ok(serve(bundle, &headers))
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

/// Previews drawn at once; more wait (each takes a core for tens of milliseconds).
static RENDERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PicturePreviewQuery {
    /// The instant drawn, RFC 3339; default: now.
    at: Option<DateTime<Utc>>,
    /// `landscape` or `portrait`; default: the screen's setting (else from the size).
    layout: Option<luach_content::BoardLayout>,
    /// Default: the screen's setting.
    theme: Option<luach_content::BoardTheme>,
    /// Default: the screen's setting.
    language: Option<luach_content::BoardLanguage>,
    /// Pixels, 160–3840; default 1920 (1080 in portrait).
    width: Option<u32>,
    /// Pixels, 160–3840; default 1080 (1920 in portrait).
    height: Option<u32>,
}

/// Largest preview side: 4K is as large as a wall screen gets.
pub const MAX_PREVIEW_SIDE: u32 = 3840;

/// `GET /devices/{id}/preview.png?at=`: the screen's board at an instant, as a PNG.
pub async fn preview_png(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
    ValidQuery(q): ValidQuery<PicturePreviewQuery>,
) -> Result<Png, ApiError> {
    let device = device(&state, &scope, &parse_id(&id)?).await?;
    let at = q.check()?;
    let content = TenantContent::load(&state.store.tenant(&scope), at.date_naive()).await?;
    picture(content.bundle_for(&device), at, &q).await
}

/// `GET /synagogues/{id}/preview.png?at=`: the synagogue's board at an instant, as a screen
/// that nothing targets by id or tag draws it.
pub async fn synagogue_png(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
    ValidQuery(q): ValidQuery<PicturePreviewQuery>,
) -> Result<Png, ApiError> {
    let at = q.check()?;
    let content = TenantContent::load(&state.store.tenant(&scope), at.date_naive()).await?;
    let bundle = content
        .bundle_for_synagogue(scope.tenant().as_str(), &id, luach_content::BoardSettings::default())
        .ok_or_else(|| ApiError::not_found("synagogue"))?;
    picture(bundle, at, &q).await
}

impl PicturePreviewQuery {
    /// The instant drawn, once the sizes are checked.
    fn check(&self) -> Result<DateTime<Utc>, ApiError> {
        let mut errors = Vec::new();
        for (field, side) in [("width", self.width), ("height", self.height)] {
            if side.is_some_and(|s| !(luach_board::MIN_SIDE..=MAX_PREVIEW_SIDE).contains(&s)) {
                errors.push(FieldError::new(
                    field,
                    format!("must be {}–{MAX_PREVIEW_SIDE} pixels", luach_board::MIN_SIDE),
                ));
            }
        }
        if errors.is_empty() {
            Ok(self.at.unwrap_or_else(Utc::now))
        } else {
            Err(ApiError::invalid_query(errors))
        }
    }
}

/// Draws `bundle` at `at` with the query's overrides of the screen's settings.
async fn picture(
    mut bundle: luach_content::Bundle,
    at: DateTime<Utc>,
    q: &PicturePreviewQuery,
) -> Result<Png, ApiError> {
    if let Some(layout) = q.layout {
        bundle.board.layout = layout;
    }
    let portrait = match bundle.board.layout {
        luach_content::BoardLayout::Portrait => true,
        luach_content::BoardLayout::Landscape => false,
        luach_content::BoardLayout::Auto => q.height.unwrap_or(0) > q.width.unwrap_or(u32::MAX),
    };
    let (dw, dh) = if portrait { (1080, 1920) } else { (1920, 1080) };
    let mut options = luach_board::Options::size(q.width.unwrap_or(dw), q.height.unwrap_or(dh));
    options.theme = q.theme.map(Into::into);
    options.language = q.language;
    let _permit = RENDERS
        .acquire()
        .await
        .map_err(|_| ApiError::unavailable("the renderer is shutting down"))?;
    let drawn = tokio::task::spawn_blocking(move || {
        let frame = luach_board::Board::new().render(&bundle, at, options, luach_board::Status::default())?;
        frame.png()
    })
    .await
    .map_err(|e| ApiError::internal(&e))?;
    match drawn {
        Ok(png) => Ok(Png(png)),
        Err(e @ luach_board::BoardError::Size(..)) => {
            Err(ApiError::invalid_query(vec![FieldError::new("width", e.to_string())]))
        }
        Err(e) => Err(ApiError::invalid_query(vec![FieldError::new("at", e.to_string())])),
    }
}
