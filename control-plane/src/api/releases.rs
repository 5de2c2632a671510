//! `/releases`: the installation's signed agent releases (see [`crate::releases`]), and the
//! artifact download for screens.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use chrono::Utc;
use serde::Deserialize;
use tower::ServiceExt;

use super::devices::{DataBody, data};
use super::extract::{ArtifactBody, ValidJson};
use super::reply::{ArtifactFile, Created, NoContent};
use super::tenant::Caller;
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::releases::{Release, ReleaseError};
use crate::state::AppState;

/// A release's signed metadata file.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRelease {
    /// The metadata file `luach-ota sign` wrote, as text (at most 64 KiB).
    #[schemars(length(max = 65536))]
    pub metadata: String,
}

fn refused(e: ReleaseError, field: &str) -> ApiError {
    match e {
        ReleaseError::Refused(ota) => {
            ApiError::validation(vec![FieldError::new(field, format!("{}: {ota}", ota.code().as_str()))])
        }
        ReleaseError::Expired(_) => ApiError::validation(vec![FieldError::new(field, e.to_string())]),
        ReleaseError::NoTrustedRoot | ReleaseError::Exists | ReleaseError::Complete => {
            ApiError::new(ErrorCode::Conflict, e.to_string())
        }
        ReleaseError::NotFound => ApiError::not_found("release"),
        ReleaseError::Io(e) => {
            tracing::error!(error = %e, "release storage failed");
            ApiError::new(ErrorCode::Internal, "the release could not be stored")
        }
    }
}

/// `POST /releases`: registers a release from its signed metadata (verified against the
/// installation's trusted root); its artifact follows with `PUT /releases/{id}/artifact`.
pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ValidJson(body): ValidJson<NewRelease>,
) -> Result<Created<Release>, ApiError> {
    let release = state
        .releases
        .add(body.metadata.as_bytes(), &caller.user.id, Utc::now())
        .await
        .map_err(|e| refused(e, "metadata"))?;
    tracing::info!(release = %release.id, version = %release.version, target = %release.target, user_id = %caller.user.id, "release registered");
    Ok(Created(release))
}

/// `PUT /releases/{id}/artifact`: the artifact's bytes (any media type), checked against the
/// signed length and hash as they arrive.
pub async fn put_artifact(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ArtifactBody(body): ArtifactBody,
) -> Result<Json<DataBody<Release>>, ApiError> {
    let release = state
        .releases
        .put_artifact(&id, body.into_data_stream())
        .await
        .map_err(|e| refused(e, "body"))?;
    tracing::info!(release = %release.id, bytes = release.length, "release artifact stored");
    Ok(data(release))
}

/// `GET /releases`: newest first.
pub async fn list(State(state): State<AppState>) -> Result<Json<DataBody<Vec<Release>>>, ApiError> {
    Ok(data(state.releases.list().await.map_err(|e| refused(e, ""))?))
}

/// `GET /releases/{id}`.
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<DataBody<Release>>, ApiError> {
    match state.releases.get(&id).await.map_err(|e| refused(e, ""))? {
        Some(release) => Ok(data(release)),
        None => Err(ApiError::not_found("release")),
    }
}

/// `DELETE /releases/{id}`.
pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Result<NoContent, ApiError> {
    match state.releases.delete(&id).await.map_err(|e| refused(e, ""))? {
        true => Ok(NoContent),
        false => Err(ApiError::not_found("release")),
    }
}

/// `GET /agent/releases/{id}/artifact`: a screen downloads a ready release's artifact (device
/// token); `Range` requests resume an interrupted download.
pub async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<ArtifactFile, ApiError> {
    let path = state
        .releases
        .artifact(&id)
        .await
        .map_err(|e| refused(e, ""))?
        .ok_or_else(|| ApiError::not_found("release"))?;
    // The file service answers ranges and conditional requests from the headers alone.
    let mut req = axum::http::Request::new(axum::body::Body::empty());
    *req.headers_mut() = headers;
    match tower_http::services::ServeFile::new(path).oneshot(req).await {
        Ok(response) => Ok(ArtifactFile(response.map(axum::body::Body::new).into_response())),
        Err(never) => match never {},
    }
}

/// The release a job's `update` command names, with its metadata filled in; refuses a release
/// that is unknown, incomplete or expired (field `command.release`).
pub(super) async fn resolve(state: &AppState, spec: &mut crate::jobs::JobSpec) -> Result<(), ApiError> {
    let crate::jobs::JobCommand::Update { release, metadata } = &mut spec.command else {
        return Ok(());
    };
    let field = |message: String| ApiError::validation(vec![FieldError::new("command.release", message)]);
    let found = state.releases.get(release).await.map_err(|e| refused(e, ""))?;
    let Some(found) = found else {
        return Err(field("no such release".into()));
    };
    if found.status != crate::releases::ReleaseStatus::Ready {
        return Err(field("the release's artifact is not uploaded yet".into()));
    }
    if !found.current(Utc::now()) {
        return Err(field(format!("the release expired at {}", found.expires)));
    }
    *metadata = state
        .releases
        .metadata(release)
        .await
        .map_err(|e| refused(e, ""))?
        .ok_or_else(|| field("no such release".into()))?;
    Ok(())
}
