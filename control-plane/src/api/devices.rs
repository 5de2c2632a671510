//! `/api/v1/devices`: list, pre-register, get, update, delete (which revokes the device's
//! certificate), ping.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use chrono::Utc;
use luach_schemas::DeviceId;
use luach_schemas::messages::{AckStatus, CommandAction};
use serde::{Deserialize, Serialize};

use super::extract::{ValidJson, ValidQuery};
use super::reply::{Created, NoContent};
use super::tenant::Scope;
use crate::error::{ApiError, FieldError, check_text};
use crate::state::AppState;
use crate::store::{Device, DeviceFilter, DevicePatch, DeviceStatus, NewDevice, Page, PageRequest, clamp_limit};

/// Limits on operator-entered fields.
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_TAGS: usize = 20;
pub const MAX_TAG_CHARS: usize = 40;
pub const MAX_GROUP_CHARS: usize = 60;
pub const MAX_NOTES_CHARS: usize = 2_000;
/// Longest a ping waits for the device's acknowledgement.
pub const MAX_PING_TIMEOUT_MS: u64 = 30_000;

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DataBody<T> {
    pub data: T,
}

pub(super) fn data<T: Serialize>(data: T) -> Json<DataBody<T>> {
    Json(DataBody { data })
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<DeviceStatus>,
    tag: Option<String>,
    group: Option<String>,
    limit: Option<u32>,
    after: Option<DeviceId>,
}

pub async fn list(
    State(state): State<AppState>,
    scope: Scope,
    ValidQuery(q): ValidQuery<ListQuery>,
) -> Result<Json<DataBody<Page<Device>>>, ApiError> {
    let filter = DeviceFilter {
        status: q.status,
        tag: q.tag,
        group: q.group,
    };
    let page = PageRequest {
        limit: clamp_limit(q.limit),
        after: q.after,
    };
    Ok(data(state.store.tenant(&scope.0).devices(&filter, &page).await?))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    id: DeviceId,
    name: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    group: Option<String>,
    #[serde(default)]
    notes: String,
}

/// Checks operator-entered text fields, collecting every problem.
fn check_fields(
    name: Option<&str>,
    tags: Option<&[String]>,
    group: Option<&str>,
    notes: Option<&str>,
) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if let Some(name) = name {
        check_text(&mut errors, "name", name, true, MAX_NAME_CHARS);
    }
    if let Some(tags) = tags {
        if tags.len() > MAX_TAGS {
            errors.push(FieldError::new("tags", format!("at most {MAX_TAGS} tags")));
        }
        for (i, tag) in tags.iter().enumerate() {
            check_text(&mut errors, &format!("tags[{i}]"), tag, true, MAX_TAG_CHARS);
        }
    }
    if let Some(group) = group {
        check_text(&mut errors, "group", group, true, MAX_GROUP_CHARS);
    }
    if let Some(notes) = notes
        && notes.chars().count() > MAX_NOTES_CHARS
    {
        errors.push(FieldError::new(
            "notes",
            format!("at most {MAX_NOTES_CHARS} characters"),
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

fn dedup(mut tags: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    tags.retain(|t| seen.insert(t.clone()));
    tags
}

pub async fn create(
    State(state): State<AppState>,
    scope: Scope,
    ValidJson(body): ValidJson<CreateBody>,
) -> Result<Created<Device>, ApiError> {
    check_fields(
        body.name.as_deref(),
        Some(&body.tags),
        body.group.as_deref(),
        Some(&body.notes),
    )?;
    let new = NewDevice {
        name: body.name.unwrap_or_else(|| body.id.to_string()),
        id: body.id,
        tags: dedup(body.tags),
        group: body.group,
        notes: body.notes,
    };
    let device = state.store.tenant(&scope.0).create_device(new, Utc::now()).await?;
    Ok(Created(device))
}

/// A device of the caller's tenant by the id a path names: 404 alike when the id cannot exist,
/// belongs to another tenant or is gone.
pub(super) async fn find(state: &AppState, scope: &crate::store::TenantScope, raw: &str) -> Result<Device, ApiError> {
    let id = parse_id(raw)?;
    state
        .store
        .tenant(scope)
        .device(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("device"))
}

pub(super) fn parse_id(raw: &str) -> Result<DeviceId, ApiError> {
    // An id that cannot exist is simply not found: same answer as a foreign or missing id.
    DeviceId::parse(raw).map_err(|_| ApiError::not_found("device"))
}

pub async fn get(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<Json<DataBody<Device>>, ApiError> {
    Ok(data(find(&state, &scope.0, &id).await?))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    name: Option<String>,
    tags: Option<Vec<String>>,
    /// `null` clears the group; absent leaves it.
    #[serde(default, deserialize_with = "double_option")]
    group: Option<Option<String>>,
    notes: Option<String>,
    /// How the screen draws its board; the screen gets it with its next bundle.
    board: Option<luach_content::BoardSettings>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

pub async fn update(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
    ValidJson(body): ValidJson<UpdateBody>,
) -> Result<Json<DataBody<Device>>, ApiError> {
    let id = parse_id(&id)?;
    check_fields(
        body.name.as_deref(),
        body.tags.as_deref(),
        body.group.as_ref().and_then(|g| g.as_deref()),
        body.notes.as_deref(),
    )?;
    if let Some(Err(e)) = body.board.as_ref().and_then(|b| b.power.as_ref()).map(|p| p.validate()) {
        return Err(ApiError::validation(vec![FieldError::new(
            format!("board.power.{}", e.path),
            e.message,
        )]));
    }
    let patch = DevicePatch {
        name: body.name,
        tags: body.tags.map(dedup),
        group: body.group,
        notes: body.notes,
        board: body.board,
    };
    state
        .store
        .tenant(&scope.0)
        .update_device(&id, &patch, Utc::now())
        .await?
        .map(data)
        .ok_or_else(|| ApiError::not_found("device"))
}

pub async fn delete(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<NoContent, ApiError> {
    let id = parse_id(&id)?;
    // Deleting revokes the device's certificate: it can neither renew nor publish, nor stay
    // connected.
    let store = state.store.tenant(&scope.0);
    let certificate = store.certificate(&id).await?;
    if !store.delete_device(&id).await? {
        return Err(ApiError::not_found("device"));
    }
    if let Some(certificate) = certificate {
        state.enrolment.refuse_prefix(&certificate.prefix).await;
    }
    state.ingest.revoked(id.clone()).await;
    if let Err(e) = state.screenshots.tenant(&scope.0).forget_device(&id).await {
        tracing::warn!(device_id = %id, error = %e, "the deleted device's screenshots could not be removed");
    }
    Ok(NoContent)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PingQuery {
    timeout_ms: Option<u64>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct PingResult {
    command_id: String,
    status: AckStatus,
    detail: Option<String>,
    round_trip_ms: f64,
}

pub async fn ping(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
    ValidQuery(q): ValidQuery<PingQuery>,
) -> Result<Json<DataBody<PingResult>>, ApiError> {
    let id = parse_id(&id)?;
    let timeout = Duration::from_millis(q.timeout_ms.unwrap_or(10_000).clamp(1, MAX_PING_TIMEOUT_MS));
    let answered = super::screen::send(&state, &scope.0, &id, |_| CommandAction::Ping, timeout).await?;
    Ok(data(PingResult {
        command_id: answered.ack.command_id,
        status: answered.ack.status,
        detail: answered.ack.detail,
        round_trip_ms: answered.round_trip_ms,
    }))
}
