//! Jobs: commands for screens that are never lost and never carried out twice.
//!
//! - [`spec`]: what an operator asks for (command, target, roll-out), checked with field paths.
//! - [`rules`]: the decisions (acknowledgements, time-outs, retries, aborts, pace) as pure
//!   functions.
//! - [`engine`]: the task that applies them, with the store as its outbox.
//!
//! A job and one queued execution per screen are stored before anything is sent; an
//! execution is stored as sent before it is published; outcomes come back as
//! acknowledgements. The screen keeps the command ids it ran (on disk), so a command sent
//! again after a restart, a lost acknowledgement or a time-out is answered, not repeated.

pub mod engine;
pub mod rollout;
pub mod rules;
pub mod spec;

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use luach_schemas::DeviceId;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use engine::{ExecEvent, JobEngine, Jobs, Progress};
pub use spec::{JobCommand, JobRequest, JobSpec, Target};

use crate::error::FieldError;
use crate::store::{Counts, DeviceFilter, JobRecord, JobState, PageRequest, SavedQueryInput, StoreError, TenantStore};

/// How long an `Idempotency-Key` names its job.
pub const IDEMPOTENCY_TTL: chrono::Duration = chrono::Duration::hours(24);
/// Longest `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY: usize = 200;

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct JobView {
    pub id: String,
    pub state: JobState,
    /// Why it is in its state (what aborted it, that it expired…).
    pub reason: Option<String>,
    #[serde(flatten)]
    pub spec: JobSpec,
    /// Executions per state.
    pub counts: Counts,
    /// Executions in all.
    pub total: u64,
    /// A staged roll-out's phases and the open one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<rollout::PhaseStatus>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl JobView {
    pub fn new(job: JobRecord, counts: Counts) -> Result<Self, StoreError> {
        let spec = JobSpec::of(&job)?;
        let phase = rollout::PhaseStatus::of(&job, &spec);
        Ok(Self {
            phase,
            id: job.id,
            state: job.state,
            reason: job.reason,
            spec,
            counts,
            total: job.total,
            created_by: job.created_by,
            created_at: job.created_at,
            updated_at: job.updated_at,
            expires_at: job.expires_at,
        })
    }
}

/// Why a job could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("invalid job")]
    Invalid(Vec<FieldError>),
    #[error("the target names no screen")]
    NoDevices,
    #[error("this Idempotency-Key was used for a different request")]
    KeyReused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The SHA-256 of a request body, as stored beside its idempotency key.
pub fn body_digest(body: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(body))
}

/// The tenant's screens a target names, in order: the listed ids (each must exist), or every
/// screen with any of the tags, of the group, matching the saved query, or of the tenant, by
/// id.
pub async fn resolve_target(store: &TenantStore<'_>, target: &Target) -> Result<Vec<DeviceId>, CreateError> {
    if let Some(ids) = &target.devices {
        let mut out = Vec::with_capacity(ids.len());
        let mut errors = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            match DeviceId::parse(id) {
                Ok(d) if store.device(&d).await?.is_some() => out.push(d),
                _ => errors.push(FieldError::new(format!("target.devices[{i}]"), "no such device")),
            }
        }
        return if errors.is_empty() {
            Ok(out)
        } else {
            Err(CreateError::Invalid(errors))
        };
    }
    // A saved query: its store filter, then the rest of it on each screen.
    let query = match &target.query {
        Some(id) => match store.get::<SavedQueryInput>(id).await? {
            Some(saved) => Some(saved.input.query),
            None => {
                return Err(CreateError::Invalid(vec![FieldError::new(
                    "target.query",
                    "no such saved query",
                )]));
            }
        },
        None => None,
    };
    let filters: Vec<DeviceFilter> = match (&target.tags, &target.group, &query) {
        (_, _, Some(q)) => vec![q.store_filter()],
        (Some(tags), ..) => tags
            .iter()
            .map(|t| DeviceFilter {
                tag: Some(t.clone()),
                ..DeviceFilter::default()
            })
            .collect(),
        (_, Some(group), _) => vec![DeviceFilter {
            group: Some(group.clone()),
            ..DeviceFilter::default()
        }],
        _ => vec![DeviceFilter::default()],
    };
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for filter in filters {
        let mut after = None;
        loop {
            let page = store
                .devices(
                    &filter,
                    &PageRequest {
                        limit: crate::store::MAX_PAGE_SIZE,
                        after,
                    },
                )
                .await?;
            for d in page.items {
                if query.as_ref().is_some_and(|q| !q.matches(&d)) {
                    continue;
                }
                if seen.insert(d.id.clone()) {
                    out.push(d.id);
                }
            }
            match page.next_after.map(|a| DeviceId::parse(&a)) {
                Some(Ok(next)) => after = Some(next),
                _ => break,
            }
            if out.len() > spec::MAX_JOB_DEVICES {
                break;
            }
        }
    }
    out.sort();
    if out.len() > spec::MAX_JOB_DEVICES {
        return Err(CreateError::Invalid(vec![FieldError::new(
            "target",
            format!("names more than {} screens", spec::MAX_JOB_DEVICES),
        )]));
    }
    Ok(out)
}

/// Creates a job for `spec` (or, with an idempotency key already used for the same body within
/// [`IDEMPOTENCY_TTL`], returns that job; `created` says which).
pub async fn create(
    store: &TenantStore<'_>,
    jobs: &Jobs,
    spec: JobSpec,
    idempotency: Option<(String, String)>,
) -> Result<(JobRecord, bool), CreateError> {
    let now = jobs.now();
    let tj = store.jobs();
    if let Some((key, digest)) = &idempotency
        && let Some(existing) = tj.by_key(key).await?
    {
        if now - existing.created_at < IDEMPOTENCY_TTL {
            return match existing.idempotency.as_ref() {
                Some((_, d)) if d == digest => Ok((existing, false)),
                _ => Err(CreateError::KeyReused),
            };
        }
        tj.clear_key(&existing.id).await?;
    }
    let devices = resolve_target(store, &spec.target).await?;
    let id = uuid::Uuid::now_v7().to_string();
    // A roll-out over a fleet query starts with a different sample of it each time; a list
    // of screens is rolled out in the order given.
    let shuffle = spec.rollout.is_some() && spec.target.devices.is_none();
    let devices = rollout::order(&id, devices, shuffle, spec.target.percent);
    if devices.is_empty() {
        return Err(CreateError::NoDevices);
    }
    let record = JobRecord {
        id,
        tenant_id: store.scope().tenant().clone(),
        state: JobState::Running,
        reason: None,
        created_by: String::new(),
        created_at: now,
        updated_at: now,
        expires_at: now + spec.expires_in(),
        total: 0,
        idempotency: idempotency.clone(),
        phase: 0,
        phase_at: None,
        spec: serde_json::to_value(&spec).map_err(|e| StoreError::Corrupt(e.to_string()))?,
    };
    match tj.create(record, &devices, now).await {
        Ok(job) => {
            jobs.wake();
            Ok((job, true))
        }
        // Two requests with one key raced: the other one's job is the answer.
        Err(StoreError::Conflict { .. }) if idempotency.is_some() => {
            let (key, digest) = idempotency.unwrap_or_default();
            match tj.by_key(&key).await? {
                Some(existing) if existing.idempotency.as_ref().is_some_and(|(_, d)| *d == digest) => {
                    Ok((existing, false))
                }
                _ => Err(CreateError::KeyReused),
            }
        }
        Err(e) => Err(e.into()),
    }
}
