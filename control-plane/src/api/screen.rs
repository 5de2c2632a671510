//! What operators do to a screen itself: display commands and screenshots.
//!
//! - `POST /devices/{id}/commands`: a one-screen job (see `crate::jobs`); the answer is the
//!   job and its execution, final when the screen answered within the wait (`succeeded`, or
//!   `failed` with the reason: a screen without a backlight says so, it never pretends).
//! - `POST /devices/{id}/screenshots`: a one-screen `screenshot` job; the screen uploads the
//!   frame it shows (`PUT /agent/screenshots/{shot}` with a device token minted for that send)
//!   and the answer is the stored screenshot.
//! - `send`: the direct, unrecorded round trip `POST /devices/{id}/ping` measures.
//! - `GET /devices/{id}/screenshots`, `GET|DELETE /devices/{id}/screenshots/{shot}`.

use std::time::{Duration, Instant};

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use chrono::Utc;
use luach_schemas::DeviceId;
use luach_schemas::messages::{Ack, CommandAction};
use serde::Deserialize;

use super::devices::{DataBody, data};
use super::extract::{PngBody, ValidJson, ValidQuery};
use super::jobs::{CommandOutcome, create_job, wait_for_single};
use super::reply::{Accepted, Created, Either, NoContent, Png};
use super::tenant::{Caller, Scope};
use crate::auth::DevicePrincipal;
use crate::commands::CommandError;
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::jobs::{JobCommand, JobRequest, Target};
use crate::screenshots::{Screenshot, ScreenshotError, id_time, parse_id};
use crate::state::AppState;
use crate::store::ExecState;
use crate::store::{DeviceStatus, TenantScope};

/// Longest a command waits for the device's acknowledgement.
pub const MAX_COMMAND_TIMEOUT_MS: u64 = 30_000;
/// How long after it was asked for a screenshot may still be uploaded.
const UPLOAD_WINDOW: chrono::Duration = chrono::Duration::minutes(5);

/// An answered command.
pub(super) struct Answered {
    pub ack: Ack,
    pub round_trip_ms: f64,
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

/// `POST /devices/{id}/commands`: one command for one screen.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceCommandRequest {
    pub command: JobCommand,
    /// Goes through during Shabbat and Yom Tov (tenant admins only; audited).
    #[serde(default)]
    pub emergency: bool,
    /// How long the screen has to answer once it has the command (1–86400 s; default 60).
    pub timeout_s: Option<u32>,
    /// How long the command waits for an offline screen (1 s–30 days; default 7 days).
    pub expires_in_s: Option<u64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    /// How long to wait for the outcome before answering 202 with the job, in milliseconds
    /// (0–30000; default 10000, 30000 for screenshots).
    wait_ms: Option<u64>,
}

impl WaitQuery {
    fn wait(&self, default_ms: u64) -> Duration {
        Duration::from_millis(self.wait_ms.unwrap_or(default_ms).min(MAX_COMMAND_TIMEOUT_MS))
    }
}

/// Makes a one-screen job (404 for a screen the tenant does not have) and waits for it.
async fn single(
    state: &AppState,
    caller: &crate::auth::Principal,
    scope: &TenantScope,
    device: &DeviceId,
    request: DeviceCommandRequest,
    wait: Duration,
) -> Result<CommandOutcome, ApiError> {
    let online = state
        .store
        .tenant(scope)
        .device(device)
        .await?
        .ok_or_else(|| ApiError::not_found("device"))?
        .status
        == crate::store::DeviceStatus::Online;
    // An offline screen gets the command when it returns; there is nothing to wait for now.
    let wait = if online { wait } else { Duration::ZERO };
    let spec = JobRequest {
        command: request.command,
        target: Target {
            devices: Some(vec![device.to_string()]),
            ..Target::default()
        },
        mode: Default::default(),
        concurrency: None,
        rate_per_minute: None,
        retries: 0,
        retry_backoff_s: None,
        timeout_s: request.timeout_s,
        expires_in_s: request.expires_in_s,
        abort: None,
        emergency: request.emergency,
        rollout: None,
        windows: Vec::new(),
    }
    .check()
    .map_err(ApiError::validation)?;
    let updates = state.jobs.subscribe();
    let (job, _) = create_job(state, caller, scope, spec, None).await?;
    wait_for_single(state, scope, job, updates, wait).await
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Most entries (1–200; default 50).
    limit: Option<u32>,
}

/// One command a screen was sent: its job's command and when it was made, and how it went.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct SentCommand {
    pub job_id: String,
    /// The command as the job was created with it (`{"type": …, …}`).
    pub command: serde_json::Value,
    pub emergency: bool,
    pub created_by: String,
    pub created_at: chrono::DateTime<Utc>,
    pub execution: crate::store::Execution,
}

/// `GET /devices/{id}/commands`: the commands the screen was sent (one-screen and batch jobs),
/// newest first.
pub async fn history(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
    ValidQuery(q): ValidQuery<HistoryQuery>,
) -> Result<Json<DataBody<Vec<SentCommand>>>, ApiError> {
    if q.limit.is_some_and(|l| !(1..=200).contains(&l)) {
        return Err(ApiError::invalid_query(vec![FieldError::new("limit", "must be 1–200")]));
    }
    let id = super::devices::find(&state, &scope, &id).await?.id;
    let sent = state
        .store
        .tenant(&scope)
        .jobs()
        .for_device(&id, q.limit.unwrap_or(50))
        .await?;
    let items = sent
        .into_iter()
        .map(|(job, execution)| SentCommand {
            command: job.spec.get("command").cloned().unwrap_or_default(),
            emergency: job
                .spec
                .get("emergency")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
            job_id: job.id,
            created_by: job.created_by,
            created_at: job.created_at,
            execution,
        })
        .collect();
    Ok(data(items))
}

/// `POST /devices/{id}/commands`: a one-screen job. 200 with the job and its execution once
/// the screen answered within `wait_ms`; 202 with both while it has not (an offline screen
/// gets it when it returns).
pub async fn command(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Scope(scope): Scope,
    Path(id): Path<String>,
    ValidQuery(q): ValidQuery<WaitQuery>,
    ValidJson(body): ValidJson<DeviceCommandRequest>,
) -> Result<Either<Json<DataBody<CommandOutcome>>, Accepted<CommandOutcome>>, ApiError> {
    let id = super::devices::parse_id(&id)?;
    let outcome = single(&state, &caller, &scope, &id, body, q.wait(10_000)).await?;
    Ok(if outcome.execution.state.is_final() {
        Either::A(data(outcome))
    } else {
        Either::B(Accepted(outcome))
    })
}

fn io_error(e: &std::io::Error) -> ApiError {
    ApiError::internal(e)
}

/// `POST /devices/{id}/screenshots`: the screen uploads what it shows; answers the stored
/// screenshot (201), or the job (202) when the screen has not answered within `wait_ms` (an
/// offline screen takes it when it returns).
pub async fn take(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Scope(scope): Scope,
    Path(id): Path<String>,
    ValidQuery(q): ValidQuery<WaitQuery>,
) -> Result<Either<Created<Screenshot>, Accepted<CommandOutcome>>, ApiError> {
    let id = super::devices::parse_id(&id)?;
    let request = DeviceCommandRequest {
        command: JobCommand::Screenshot {},
        emergency: false,
        timeout_s: None,
        expires_in_s: None,
    };
    let outcome = single(&state, &caller, &scope, &id, request, q.wait(MAX_COMMAND_TIMEOUT_MS)).await?;
    let execution = &outcome.execution;
    match execution.state {
        ExecState::Succeeded => {}
        state if state.is_final() => {
            return Err(ApiError::new(
                ErrorCode::DeviceFailed,
                format!(
                    "the screen did not take the screenshot: {}",
                    execution.detail.as_deref().unwrap_or("no reason given")
                ),
            ));
        }
        _ => return Ok(Either::B(Accepted(outcome))),
    }
    let shot = execution
        .detail
        .as_deref()
        .and_then(parse_id)
        .ok_or_else(|| ApiError::new(ErrorCode::DeviceFailed, "the screen answered without a screenshot id"))?;
    match state.screenshots.tenant(&scope).get(&id, &shot).await {
        Ok(Some((record, _))) => Ok(Either::A(Created(record))),
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
    let id = super::devices::find(&state, &scope, &id).await?.id;
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
    let id = super::devices::find(&state, &scope, &id).await?.id;
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
    let id = super::devices::find(&state, &scope, &id).await?.id;
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
