//! Jobs over REST: `POST /jobs` (with `Idempotency-Key`), `GET /jobs`, `GET /jobs/{id}`,
//! `GET /jobs/{id}/executions`, `POST /jobs/{id}/pause|resume|cancel`; and the helpers the
//! single-screen shortcuts (`POST /devices/{id}/commands`, screenshots) share.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::devices::{DataBody, data};
use super::extract::{ValidJson, ValidQuery};
use super::reply::{Created, Either};
use super::tenant::{Caller, Scope};
use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::jobs::{self, CreateError, JobRequest, JobSpec, JobView, MAX_IDEMPOTENCY_KEY};
use crate::state::AppState;
use crate::store::{ExecFilter, ExecState, Execution, JobFilter, JobRecord, JobState, Page, TenantScope};

/// The request header that makes job creation safe to repeat.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

fn create_error(e: CreateError) -> ApiError {
    match e {
        CreateError::Invalid(fields) => ApiError::validation(fields),
        CreateError::NoDevices => ApiError::validation(vec![FieldError::new("target", "names no screen")]),
        CreateError::KeyReused => {
            ApiError::conflict("this Idempotency-Key was used within 24 hours for a different request")
        }
        CreateError::Store(e) => e.into(),
    }
}

/// Checks who may send `spec`: an emergency (through Shabbat and Yom Tov) needs
/// `commands:emergency`.
fn check_emergency(caller: &Principal, spec: &JobSpec) -> Result<(), ApiError> {
    if spec.emergency && !caller.may(Permission::CommandsEmergency) {
        return Err(ApiError::forbidden("only tenant admins may send an emergency command"));
    }
    Ok(())
}

async fn view(state: &AppState, scope: &TenantScope, job: JobRecord) -> Result<JobView, ApiError> {
    let (counts, _) = state.store.tenant(scope).jobs().counts(&job.id).await?;
    Ok(JobView::new(job, counts)?)
}

/// Creates a job for the caller's tenant.
pub(super) async fn create_job(
    state: &AppState,
    caller: &Principal,
    scope: &TenantScope,
    spec: JobSpec,
    key: Option<String>,
) -> Result<(JobView, bool), ApiError> {
    let mut spec = spec;
    check_emergency(caller, &spec)?;
    super::releases::resolve(state, &mut spec).await?;
    let idempotency = key.map(|k| {
        let digest = jobs::body_digest(&serde_json::to_vec(&spec).unwrap_or_default());
        (k, digest)
    });
    let store = state.store.tenant(scope);
    let (job, created) = jobs::create(&store, &state.jobs, spec, idempotency)
        .await
        .map_err(create_error)?;
    Ok((view(state, scope, job).await?, created))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY && k.chars().all(|c| c.is_ascii_graphic()) => {
            Ok(Some(k.to_owned()))
        }
        _ => Err(ApiError::validation(vec![FieldError::new(
            "Idempotency-Key",
            format!("1–{MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
        )])),
    }
}

/// `POST /jobs`: 201 with the new job, or 200 with the job an earlier request with the same
/// `Idempotency-Key` and body made.
pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Scope(scope): Scope,
    headers: HeaderMap,
    ValidJson(body): ValidJson<JobRequest>,
) -> Result<Either<Created<JobView>, Json<DataBody<JobView>>>, ApiError> {
    let key = idempotency_key(&headers)?;
    let spec = body.check().map_err(ApiError::validation)?;
    let (job, created) = create_job(&state, &caller, &scope, spec, key).await?;
    Ok(if created {
        Either::A(Created(job))
    } else {
        Either::B(data(job))
    })
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobsQuery {
    /// Only jobs in this state.
    state: Option<JobState>,
    /// Page size (1–1000; default 50).
    limit: Option<u32>,
    /// The last id of the previous page.
    after: Option<String>,
}

/// `GET /jobs`: newest first, each with its counts.
pub async fn list(
    State(state): State<AppState>,
    Scope(scope): Scope,
    ValidQuery(q): ValidQuery<JobsQuery>,
) -> Result<Json<DataBody<Page<JobView>>>, ApiError> {
    let tj = state.store.tenant(&scope).jobs();
    let page = tj
        .list(&JobFilter { state: q.state }, q.limit.unwrap_or(50), q.after.as_deref())
        .await?;
    let mut items = Vec::with_capacity(page.items.len());
    for job in page.items {
        items.push(view(&state, &scope, job).await?);
    }
    Ok(data(Page {
        items,
        next_after: page.next_after,
        total: page.total,
    }))
}

async fn existing(state: &AppState, scope: &TenantScope, id: &str) -> Result<JobRecord, ApiError> {
    state
        .store
        .tenant(scope)
        .jobs()
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found("job"))
}

/// `GET /jobs/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
) -> Result<Json<DataBody<JobView>>, ApiError> {
    let job = existing(&state, &scope, &id).await?;
    Ok(data(view(&state, &scope, job).await?))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecutionsQuery {
    /// Only executions in this state.
    state: Option<ExecState>,
    /// Only this screen's execution.
    device: Option<String>,
    /// Page size (1–1000; default 100).
    limit: Option<u32>,
    /// The last `seq` of the previous page.
    after: Option<u32>,
}

/// `GET /jobs/{id}/executions`: in roll-out order.
pub async fn executions(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
    ValidQuery(q): ValidQuery<ExecutionsQuery>,
) -> Result<Json<DataBody<Page<Execution>>>, ApiError> {
    let job = existing(&state, &scope, &id).await?;
    let device = match q.device.as_deref().map(luach_schemas::DeviceId::parse) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(_)) => {
            return Ok(data(Page {
                items: Vec::new(),
                next_after: None,
                total: 0,
            }));
        }
    };
    let page = state
        .store
        .tenant(&scope)
        .jobs()
        .executions(
            &job.id,
            &ExecFilter { state: q.state, device },
            q.limit.unwrap_or(100),
            q.after,
        )
        .await?;
    Ok(data(page))
}

/// Moves a job from one of `from` to `to` as the caller; 409 when it is in none of them.
async fn transition(
    state: &AppState,
    scope: &TenantScope,
    id: &str,
    from: &[JobState],
    to: JobState,
) -> Result<JobView, ApiError> {
    let job = existing(state, scope, id).await?;
    let tj = state.store.tenant(scope).jobs();
    let now = state.jobs.now();
    if !from.contains(&job.state) {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("the job is {}; it cannot be made {}", job.state.as_str(), to.as_str()),
        ));
    }
    let by = format!("{} by {}", to.as_str(), scope.actor().label());
    if !tj.set_state(&job.id, job.state, to, Some(&by), now, true).await? {
        return Err(ApiError::conflict("the job changed meanwhile; try again"));
    }
    if to == JobState::Cancelled {
        tj.move_all(&job.id, ExecState::Queued, ExecState::Cancelled, &by, now)
            .await?;
    }
    state.jobs.wake();
    let job = existing(state, scope, id).await?;
    // Every open page hears of it now, not at the engine's next change to the job.
    let (counts, _) = tj.counts(&job.id).await?;
    state.jobs.announce(&job, counts);
    Ok(JobView::new(job, counts)?)
}

/// `POST /jobs/{id}/pause`: no new executions start; those in flight finish.
pub async fn pause(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
) -> Result<Json<DataBody<JobView>>, ApiError> {
    Ok(data(
        transition(&state, &scope, &id, &[JobState::Running], JobState::Paused).await?,
    ))
}

/// `POST /jobs/{id}/resume`. A staged roll-out paused because its open phase failed too
/// often goes on with the next phase: resuming accepts the failed one.
pub async fn resume(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
) -> Result<Json<DataBody<JobView>>, ApiError> {
    let job = existing(&state, &scope, &id).await?;
    if job.state == JobState::Paused
        && let Some(rollout) = JobSpec::of(&job)?.rollout
    {
        let bounds = jobs::rollout::bounds(&rollout, job.total);
        // Once every phase was accepted there is no gate left to accept.
        if (job.phase as usize) < bounds.len() {
            let tj = state.store.tenant(&scope).jobs();
            let tally = tj.tally(&job.id, jobs::rollout::range(&bounds, job.phase)).await?;
            if jobs::rollout::failed_too_often(&rollout, &tally) {
                tj.set_phase(&job.id, job.phase, job.phase + 1, state.jobs.now())
                    .await?;
            }
        }
    }
    Ok(data(
        transition(&state, &scope, &id, &[JobState::Paused], JobState::Running).await?,
    ))
}

/// `POST /jobs/{id}/cancel`: queued executions are cancelled; those in flight finish.
pub async fn cancel(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path(id): Path<String>,
) -> Result<Json<DataBody<JobView>>, ApiError> {
    Ok(data(
        transition(
            &state,
            &scope,
            &id,
            &[JobState::Running, JobState::Paused],
            JobState::Cancelled,
        )
        .await?,
    ))
}

/// A one-screen job and its execution.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CommandOutcome {
    pub job: JobView,
    pub execution: Execution,
}

/// How often a caller waiting for a one-screen command re-reads its execution.
const REREAD: Duration = Duration::from_millis(500);

/// Waits up to `wait` for execution 0 of `job` to end; answers the job and the execution as
/// they are then.
pub(super) async fn wait_for_single(
    state: &AppState,
    scope: &TenantScope,
    job: JobView,
    mut updates: tokio::sync::broadcast::Receiver<crate::jobs::ExecEvent>,
    wait: Duration,
) -> Result<CommandOutcome, ApiError> {
    let tj = state.store.tenant(scope).jobs();
    let ended = |e: &Execution| e.state.is_final();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let execution = tj
            .execution(&job.id, 0)
            .await?
            .ok_or_else(|| ApiError::not_found("execution"))?;
        if ended(&execution) || tokio::time::Instant::now() >= deadline {
            let job = existing(state, scope, &job.id).await?;
            return Ok(CommandOutcome {
                job: view(state, scope, job).await?,
                execution,
            });
        }
        // Until this job's execution changes here, or the store is due to be read again
        // (another replica may have applied the screen's answer), or the wait ends.
        let step = deadline.min(tokio::time::Instant::now() + REREAD);
        loop {
            match tokio::time::timeout_at(step, updates.recv()).await {
                Ok(Ok(ev)) if ev.job_id == job.id && ev.tenant == *scope.tenant() => break,
                Ok(Ok(_)) => continue,
                Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) | Err(_) => break,
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => {
                    tokio::time::sleep_until(step).await;
                    break;
                }
            }
        }
    }
}
