//! What operators do to a screen itself: display commands and screenshots.
//!
//! - `POST /devices/{id}/commands`: `ping`, `brightness`, `volume` or `display_power`, sent over
//!   the device's command topic; the answer is the device's acknowledgement (`ok`, `error` or
//!   `unsupported` with its reason: a screen without a backlight says so, it never pretends).
//! - `POST /devices/{id}/screenshots`: asks the screen for the frame it shows; the screen
//!   uploads it (`PUT /agent/screenshots/{shot}` with a device token minted for the command)
//!   and the answer is the stored screenshot.
//! - `GET /devices/{id}/screenshots`, `GET|DELETE /devices/{id}/screenshots/{shot}`.

use std::time::{Duration, Instant};

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use chrono::Utc;
use luach_schemas::DeviceId;
use luach_schemas::messages::{Ack, AckStatus, CommandAction, MAX_PERCENT};
use serde::{Deserialize, Serialize};

use super::devices::{DataBody, data};
use super::extract::{PngBody, ValidJson, ValidQuery};
use super::reply::{Created, NoContent, Png};
use super::tenant::Scope;
use crate::auth::DevicePrincipal;
use crate::commands::CommandError;
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::screenshots::{Screenshot, ScreenshotError, id_time, parse_id};
use crate::state::AppState;
use crate::store::{DeviceStatus, TenantScope};

/// Longest a command waits for the device's acknowledgement.
pub const MAX_COMMAND_TIMEOUT_MS: u64 = 30_000;
/// How long after it was asked for a screenshot may still be uploaded.
const UPLOAD_WINDOW: chrono::Duration = chrono::Duration::minutes(5);

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeoutQuery {
    /// How long to wait for the device's answer, in milliseconds (1–30000; default 10000,
    /// 30000 for screenshots).
    timeout_ms: Option<u64>,
}

impl TimeoutQuery {
    fn timeout(&self, default_ms: u64) -> Duration {
        Duration::from_millis(self.timeout_ms.unwrap_or(default_ms).clamp(1, MAX_COMMAND_TIMEOUT_MS))
    }
}

/// An answered command.
pub(super) struct Answered {
    pub ack: Ack,
    pub round_trip_ms: f64,
}

fn parse_device(id: &str) -> Result<DeviceId, ApiError> {
    DeviceId::parse(id).map_err(|_| ApiError::not_found("device"))
}

/// Sends `action` (made from the device's tenant and topic prefix) to an online device of the
/// caller's tenant and waits for its acknowledgement.
pub(super) async fn send(
    state: &AppState,
    scope: &TenantScope,
    id: &DeviceId,
    action: impl FnOnce(&luach_schemas::TopicPrefix) -> CommandAction,
    timeout: Duration,
) -> Result<Answered, ApiError> {
    let store = state.store.tenant(scope);
    let device = store.device(id).await?.ok_or_else(|| ApiError::not_found("device"))?;
    let prefix = store.topic_prefix(id).await?;
    let (DeviceStatus::Online, Some(prefix)) = (device.status, prefix) else {
        return Err(ApiError::new(
            ErrorCode::DeviceOffline,
            "the device has no live session",
        ));
    };
    let started = Instant::now();
    let sent = state
        .commands
        .send_and_wait(scope.tenant(), id, &prefix, action(&prefix), timeout)
        .await;
    match sent {
        Ok(ack) => Ok(Answered {
            ack,
            round_trip_ms: started.elapsed().as_secs_f64() * 1000.0,
        }),
        Err(CommandError::Timeout(t)) => Err(ApiError::new(
            ErrorCode::DeviceTimeout,
            format!("no acknowledgement within {} ms", t.as_millis()),
        )),
        Err(CommandError::Busy) => Err(ApiError::unavailable("too many commands in flight")),
        Err(e @ CommandError::TenantBusy(_)) => {
            Err(ApiError::new(ErrorCode::TooManyRequests, e.to_string()).retry_after(1))
        }
        Err(CommandError::Link) => Err(ApiError::unavailable("the broker is not available")),
        Err(e @ CommandError::InFlight) => Err(ApiError::conflict(e.to_string())),
    }
}

/// A command an operator sends to one screen.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum DeviceCommand {
    /// Only an acknowledgement: is the screen there?
    Ping,
    /// Backlight or picture brightness.
    Brightness {
        #[schemars(range(max = 100))]
        percent: u8,
    },
    /// Audio output volume.
    Volume {
        #[schemars(range(max = 100))]
        percent: u8,
    },
    /// Display on or off.
    DisplayPower { on: bool },
}

impl DeviceCommand {
    fn action(self) -> Result<CommandAction, ApiError> {
        let percent = |p: u8| {
            if p > MAX_PERCENT {
                Err(ApiError::validation(vec![FieldError::new(
                    "percent",
                    format!("must be 0–{MAX_PERCENT}"),
                )]))
            } else {
                Ok(p)
            }
        };
        Ok(match self {
            Self::Ping => CommandAction::Ping,
            Self::Brightness { percent: p } => CommandAction::Brightness { percent: percent(p)? },
            Self::Volume { percent: p } => CommandAction::Volume { percent: percent(p)? },
            Self::DisplayPower { on } => CommandAction::DisplayPower { on },
        })
    }
}

/// The device's answer to a command.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CommandResult {
    pub command_id: String,
    /// `ping`, `brightness`, `volume` or `display_power`.
    pub action: &'static str,
    /// `ok`: done; `error`: tried and failed; `unsupported`: this screen cannot (its
    /// hardware or agent version), `detail` says why.
    pub status: AckStatus,
    pub detail: Option<String>,
    pub round_trip_ms: f64,
}

/// `POST /devices/{id}/commands`.
pub async fn command(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
    ValidQuery(q): ValidQuery<TimeoutQuery>,
    ValidJson(body): ValidJson<DeviceCommand>,
) -> Result<Json<DataBody<CommandResult>>, ApiError> {
    let id = parse_device(&id)?;
    let action = body.action()?;
    let name = action.name();
    let answered = send(&state, &scope, &id, |_| action, q.timeout(10_000)).await?;
    Ok(data(CommandResult {
        command_id: answered.ack.command_id,
        action: name,
        status: answered.ack.status,
        detail: answered.ack.detail,
        round_trip_ms: answered.round_trip_ms,
    }))
}

async fn existing_device(state: &AppState, scope: &TenantScope, id: &str) -> Result<DeviceId, ApiError> {
    let id = parse_device(id)?;
    state
        .store
        .tenant(scope)
        .device(&id)
        .await?
        .map(|d| d.id)
        .ok_or_else(|| ApiError::not_found("device"))
}

fn io_error(e: &std::io::Error) -> ApiError {
    ApiError::internal(e)
}

/// `POST /devices/{id}/screenshots`: the screen uploads what it shows; answers the stored
/// screenshot.
pub async fn take(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
    ValidQuery(q): ValidQuery<TimeoutQuery>,
) -> Result<Created<Screenshot>, ApiError> {
    let id = parse_device(&id)?;
    let shot = uuid::Uuid::now_v7();
    let auth = &state.auth;
    let tenant = scope.tenant().clone();
    let device = id.clone();
    let answered = send(
        &state,
        &scope,
        &id,
        |prefix| CommandAction::Screenshot {
            path: format!("/api/v1/agent/screenshots/{}", shot.hyphenated()),
            token: auth.device_token(&device, &tenant, prefix).0,
        },
        q.timeout(MAX_COMMAND_TIMEOUT_MS),
    )
    .await?;
    if answered.ack.status != AckStatus::Ok {
        return Err(ApiError::new(
            ErrorCode::DeviceFailed,
            format!(
                "the screen did not take the screenshot: {}",
                answered.ack.detail.as_deref().unwrap_or("no reason given")
            ),
        ));
    }
    match state.screenshots.tenant(&scope).get(&id, &shot).await {
        Ok(Some((record, _))) => Ok(Created(record)),
        Ok(None) => Err(ApiError::new(
            ErrorCode::DeviceFailed,
            "the screen answered, but its screenshot did not arrive",
        )),
        Err(e) => Err(io_error(&e)),
    }
}

/// `GET /devices/{id}/screenshots`: newest first.
pub async fn list(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
) -> Result<Json<DataBody<Vec<Screenshot>>>, ApiError> {
    let id = existing_device(&state, &scope, &id).await?;
    let shots = state
        .screenshots
        .tenant(&scope)
        .list(&id)
        .await
        .map_err(|e| io_error(&e))?;
    Ok(data(shots))
}

/// `GET /devices/{id}/screenshots/{shot}`: the PNG.
pub async fn image(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path((id, shot)): Path<(String, String)>,
) -> Result<Png, ApiError> {
    let id = existing_device(&state, &scope, &id).await?;
    let shot = parse_id(&shot).ok_or_else(|| ApiError::not_found("screenshot"))?;
    match state.screenshots.tenant(&scope).get(&id, &shot).await {
        Ok(Some((_, png))) => Ok(Png(png)),
        Ok(None) => Err(ApiError::not_found("screenshot")),
        Err(e) => Err(io_error(&e)),
    }
}

/// `DELETE /devices/{id}/screenshots/{shot}`.
pub async fn delete(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path((id, shot)): Path<(String, String)>,
) -> Result<NoContent, ApiError> {
    let id = existing_device(&state, &scope, &id).await?;
    let shot = parse_id(&shot).ok_or_else(|| ApiError::not_found("screenshot"))?;
    match state.screenshots.tenant(&scope).delete(&id, &shot).await {
        Ok(true) => Ok(NoContent),
        Ok(false) => Err(ApiError::not_found("screenshot")),
        Err(e) => Err(io_error(&e)),
    }
}

/// `PUT /agent/screenshots/{shot}`: a screen uploads the screenshot it was asked for. The id
/// must be a recent UUID v7 (the control plane made it when asking); an id is stored once.
pub async fn upload(
    State(state): State<AppState>,
    Extension(caller): Extension<DevicePrincipal>,
    Path(shot): Path<String>,
    PngBody(png): PngBody,
) -> Result<Created<Screenshot>, ApiError> {
    let shot = parse_id(&shot).ok_or_else(|| ApiError::not_found("screenshot"))?;
    let made = id_time(&shot).unwrap_or_default();
    let now = Utc::now();
    if made > now + chrono::Duration::minutes(1) || now - made > UPLOAD_WINDOW {
        return Err(ApiError::not_found("screenshot"));
    }
    let scope = caller.scope();
    match state
        .screenshots
        .tenant(scope)
        .save(&caller.device, shot, png.to_vec())
        .await
    {
        Ok(record) => Ok(Created(record)),
        Err(e @ (ScreenshotError::NotPng(_) | ScreenshotError::TooLarge { .. })) => {
            Err(ApiError::validation(vec![FieldError::new("body", e.to_string())]))
        }
        Err(ScreenshotError::Exists) => Err(ApiError::new(
            ErrorCode::Conflict,
            "this screenshot was uploaded already",
        )),
        Err(ScreenshotError::Io(e)) => Err(io_error(&e)),
    }
}
