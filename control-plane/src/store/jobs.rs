//! Jobs and their executions: the durable record of every command sent to screens.
//!
//! A job is one command for a set of screens, with its roll-out settings. Each (job, screen)
//! pair is an [`Execution`] with its own state machine ([`ExecState`]). Both are written before
//! anything is sent, so the store is the outbox: a server that stops at any moment resumes
//! from what it wrote (see `crate::jobs`).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use luach_schemas::{DeviceId, TenantId, TopicPrefix};
use serde::{Deserialize, Serialize};

use super::backend::Backend;
use super::handle::Inner;
use super::model::Page;
use super::scope::TenantScope;
use super::{StoreError, StoreResult, changes};

/// Where a job's executions stand. Every execution ends in exactly one final state.
///
/// ```text
///   queued ──▶ sent ──▶ received ──▶ succeeded | failed | timed_out
///     │  ▲       │  │        │
///     │  └───────┴──┴────────┘   retry (a time-out re-sends the same command id,
///     │                          a failure sends a new attempt)
///     └──▶ cancelled | skipped
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExecState {
    /// Waiting: for its turn in the roll-out, for the screen to come online, or held (Shabbat).
    Queued,
    /// Published to the screen; no answer yet.
    Sent,
    /// The screen has it and is carrying it out.
    Received,
    Succeeded,
    /// The screen tried and failed, or cannot do it (`unsupported`).
    Failed,
    /// No outcome within the execution's time-out.
    TimedOut,
    /// The job was cancelled or aborted before this execution was sent.
    Cancelled,
    /// Never sent: the job expired first, or a sequential job stopped before it.
    Skipped,
}

impl ExecState {
    pub const ALL: [ExecState; 8] = [
        Self::Queued,
        Self::Sent,
        Self::Received,
        Self::Succeeded,
        Self::Failed,
        Self::TimedOut,
        Self::Cancelled,
        Self::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Received => "received",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
            Self::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// True once nothing more happens to the execution.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Sent | Self::Received)
    }

    /// True while the screen may be carrying it out.
    pub fn in_flight(self) -> bool {
        matches!(self, Self::Sent | Self::Received)
    }

    /// The transitions the state machine allows; the store refuses every other.
    pub fn can_move_to(self, to: Self) -> bool {
        use ExecState::*;
        match self {
            // Queued → queued: held longer (back-off, Shabbat), with the reason.
            Queued => matches!(to, Queued | Sent | Cancelled | Skipped),
            Sent => matches!(to, Received | Succeeded | Failed | TimedOut | Queued),
            Received => matches!(to, Succeeded | Failed | TimedOut | Queued),
            Succeeded | Failed | TimedOut | Cancelled | Skipped => false,
        }
    }
}

/// Where a job stands.
///
/// ```text
///   running ⇄ paused
///      │         │
///      ├─────────┴──▶ cancelled (by an operator; queued executions are cancelled)
///      ├──▶ aborted   (abort threshold, or a sequential job's first failure)
///      └──▶ completed (every execution ended, or the job expired)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Paused,
    Completed,
    Aborted,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        Self::Running,
        Self::Paused,
        Self::Completed,
        Self::Aborted,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Aborted => "aborted",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Aborted | Self::Cancelled)
    }

    pub fn can_move_to(self, to: Self) -> bool {
        use JobState::*;
        match self {
            Running => matches!(to, Paused | Cancelled | Aborted | Completed),
            Paused => matches!(to, Running | Cancelled | Aborted | Completed),
            Completed | Aborted | Cancelled => false,
        }
    }
}

/// How many executions are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Counts {
    pub queued: u64,
    pub sent: u64,
    pub received: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub timed_out: u64,
    pub cancelled: u64,
    pub skipped: u64,
}

impl Counts {
    pub fn from_map(map: &BTreeMap<ExecState, u64>) -> Self {
        let mut c = Self::default();
        for (state, n) in map {
            *c.slot(*state) += n;
        }
        c
    }

    fn slot(&mut self, state: ExecState) -> &mut u64 {
        match state {
            ExecState::Queued => &mut self.queued,
            ExecState::Sent => &mut self.sent,
            ExecState::Received => &mut self.received,
            ExecState::Succeeded => &mut self.succeeded,
            ExecState::Failed => &mut self.failed,
            ExecState::TimedOut => &mut self.timed_out,
            ExecState::Cancelled => &mut self.cancelled,
            ExecState::Skipped => &mut self.skipped,
        }
    }

    pub fn get(&self, state: ExecState) -> u64 {
        let mut copy = *self;
        *copy.slot(state)
    }

    pub fn add(&mut self, state: ExecState, n: u64) {
        *self.slot(state) += n;
    }

    pub fn total(&self) -> u64 {
        ExecState::ALL.iter().map(|s| self.get(*s)).sum()
    }

    /// Executions that ended with an outcome from (or about) the screen.
    pub fn finished(&self) -> u64 {
        self.succeeded + self.failed + self.timed_out
    }

    /// Executions not yet final.
    pub fn open(&self) -> u64 {
        self.queued + self.sent + self.received
    }

    pub fn in_flight(&self) -> u64 {
        self.sent + self.received
    }
}

/// Executions of a range of a job's roll-out order, per state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub counts: Counts,
    /// How many were ever sent (`attempt` ≥ 1).
    pub ever_sent: u64,
    /// When the last of them reached a final state.
    pub last_final: Option<DateTime<Utc>>,
}

/// A job as stored. Its command, target and roll-out are kept as the JSON the API accepted
/// (`spec`), so the store never needs to know every command.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub id: String,
    pub tenant_id: TenantId,
    pub spec: serde_json::Value,
    pub state: JobState,
    /// Why it is in its state (who paused it, what aborted it).
    pub reason: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Executions made when it was created.
    pub total: u64,
    /// The `Idempotency-Key` it was created with and the SHA-256 of the request body.
    pub idempotency: Option<(String, String)>,
    /// A staged roll-out's open phase (0 for the first; see `crate::jobs::rollout`).
    pub phase: u32,
    /// When that phase opened (none for the first).
    pub phase_at: Option<DateTime<Utc>>,
}

/// One (job, screen) execution.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Execution {
    pub job_id: String,
    pub device_id: DeviceId,
    /// Position in the job's roll-out order.
    pub seq: u32,
    pub state: ExecState,
    /// Attempts sent so far (a retry after a failure is a new attempt with a new command id).
    pub attempt: u32,
    /// The command id of the current attempt once sent (`{job}.{seq}.{attempt}`).
    pub command_id: Option<String>,
    /// The screen's answer, or why the execution is where it is (held, expired, cancelled).
    pub detail: Option<String>,
    /// Not sent before this moment (retry back-off, Shabbat hold).
    pub not_before: Option<DateTime<Utc>>,
    /// When the current attempt was first sent.
    pub sent_at: Option<DateTime<Utc>>,
    /// When the current attempt times out.
    pub deadline: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl Execution {
    /// A queued execution of `device` at position `seq`.
    pub fn queued(job_id: &str, device_id: DeviceId, seq: u32, now: DateTime<Utc>) -> Self {
        Self {
            job_id: job_id.to_owned(),
            device_id,
            seq,
            state: ExecState::Queued,
            attempt: 0,
            command_id: None,
            detail: None,
            not_before: None,
            sent_at: None,
            deadline: None,
            updated_at: now,
        }
    }

    /// The command id of `attempt` of execution `seq` of `job`.
    pub fn command_id_of(job: &str, seq: u32, attempt: u32) -> String {
        format!("{job}.{seq}.{attempt}")
    }

    /// Reads a command id back into (job, seq, attempt).
    pub fn parse_command_id(id: &str) -> Option<(&str, u32, u32)> {
        let mut parts = id.rsplitn(3, '.');
        let attempt = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        let job = parts.next()?;
        (!job.is_empty()).then_some((job, seq, attempt))
    }
}

/// A compare-and-set of one execution: applied only while it is in `from` at `attempt`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecUpdate {
    pub seq: u32,
    pub from: ExecState,
    pub attempt: u32,
    /// The execution after the change (its `seq` equals `self.seq`).
    pub next: Execution,
}

/// A compare-and-set of a job's state: from `from` to `to`, saying why, at `at`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobMove {
    pub from: JobState,
    pub to: JobState,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// Which jobs to list.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub state: Option<JobState>,
}

/// Which executions to list.
#[derive(Debug, Clone, Default)]
pub struct ExecFilter {
    pub state: Option<ExecState>,
    pub device: Option<DeviceId>,
}

/// One tenant's jobs, for the scope's actor (from [`super::TenantStore::jobs`]). Every change
/// is checked against the state machines above before the backend compares and sets it.
pub struct TenantJobs<'a> {
    inner: &'a Inner,
    scope: &'a TenantScope,
}

/// Largest page of jobs or executions.
pub const MAX_JOB_PAGE: u32 = 1_000;

fn refused(what: String) -> StoreError {
    StoreError::Corrupt(format!("refused transition: {what}"))
}

impl<'a> TenantJobs<'a> {
    pub(super) fn new(inner: &'a Inner, scope: &'a TenantScope) -> Self {
        Self { inner, scope }
    }

    fn b(&self) -> &dyn Backend {
        self.inner.backend.as_ref()
    }

    fn tenant(&self) -> &TenantId {
        self.scope.tenant()
    }

    /// Stores `job` (its tenant and author are the scope's) with one queued execution per
    /// device, in order. `Conflict` when its idempotency key is taken.
    pub async fn create(&self, mut job: JobRecord, devices: &[DeviceId], now: DateTime<Utc>) -> StoreResult<JobRecord> {
        job.tenant_id = self.tenant().clone();
        job.created_by = self.scope.actor().label();
        job.total = devices.len() as u64;
        let executions: Vec<Execution> = devices
            .iter()
            .enumerate()
            .map(|(i, d)| Execution::queued(&job.id, d.clone(), u32::try_from(i).unwrap_or(u32::MAX), now))
            .collect();
        let entry = changes::job_created(&job).by(self.scope.actor(), now);
        self.inner
            .timed("jobs.insert", self.b().insert_job(&job, &executions, entry))
            .await?;
        Ok(job)
    }

    pub async fn get(&self, id: &str) -> StoreResult<Option<JobRecord>> {
        self.inner.timed("jobs.get", self.b().get_job(self.tenant(), id)).await
    }

    pub async fn by_key(&self, key: &str) -> StoreResult<Option<JobRecord>> {
        self.inner
            .timed("jobs.by_key", self.b().job_by_key(self.tenant(), key))
            .await
    }

    pub async fn clear_key(&self, id: &str) -> StoreResult<()> {
        self.inner
            .timed("jobs.clear_key", self.b().clear_job_key(self.tenant(), id))
            .await
    }

    /// Newest first.
    pub async fn list(&self, filter: &JobFilter, limit: u32, after: Option<&str>) -> StoreResult<Page<JobRecord>> {
        let limit = limit.clamp(1, MAX_JOB_PAGE);
        let (items, total) = self
            .inner
            .timed("jobs.list", self.b().list_jobs(self.tenant(), filter, limit + 1, after))
            .await?;
        Ok(Page::from_fetched(items, limit, total, |j| j.id.clone()))
    }

    /// A screen's executions across the tenant's jobs, newest job first (at most `limit`,
    /// 1–200), each with its job.
    pub async fn for_device(&self, device: &DeviceId, limit: u32) -> StoreResult<Vec<(JobRecord, Execution)>> {
        let executions = self
            .inner
            .timed(
                "executions.by_device",
                self.b().device_executions(self.tenant(), device, limit.clamp(1, 200)),
            )
            .await?;
        let mut jobs: HashMap<String, JobRecord> = HashMap::new();
        let mut out = Vec::with_capacity(executions.len());
        for e in executions {
            if !jobs.contains_key(&e.job_id)
                && let Some(job) = self.get(&e.job_id).await?
            {
                jobs.insert(job.id.clone(), job);
            }
            if let Some(job) = jobs.get(&e.job_id) {
                out.push((job.clone(), e));
            }
        }
        Ok(out)
    }

    /// Executions per state, and how many were ever sent.
    pub async fn counts(&self, id: &str) -> StoreResult<(Counts, u64)> {
        let t = self.tally(id, 0..u32::MAX).await?;
        Ok((t.counts, t.ever_sent))
    }

    /// The executions at positions `seqs` of job `id`, per state.
    pub async fn tally(&self, id: &str, seqs: std::ops::Range<u32>) -> StoreResult<Tally> {
        self.inner
            .timed("jobs.counts", self.b().job_counts(self.tenant(), id, seqs))
            .await
    }

    /// Opens phase `to` of job `id` at `at`; false when its open phase was no longer `from`.
    pub async fn set_phase(&self, id: &str, from: u32, to: u32, at: DateTime<Utc>) -> StoreResult<bool> {
        if to <= from {
            return Err(refused(format!("job {id} phase {from} → {to}")));
        }
        self.inner
            .timed(
                "jobs.set_phase",
                self.b().set_job_phase(self.tenant(), id, from, to, at),
            )
            .await
    }

    pub async fn executions(
        &self,
        id: &str,
        filter: &ExecFilter,
        limit: u32,
        after: Option<u32>,
    ) -> StoreResult<Page<Execution>> {
        let limit = limit.clamp(1, MAX_JOB_PAGE);
        let (items, total) = self
            .inner
            .timed(
                "executions.list",
                self.b().list_executions(self.tenant(), id, filter, limit + 1, after),
            )
            .await?;
        Ok(Page::from_fetched(items, limit, total, |e| e.seq.to_string()))
    }

    pub async fn execution(&self, id: &str, seq: u32) -> StoreResult<Option<Execution>> {
        self.inner
            .timed("executions.get", self.b().get_execution(self.tenant(), id, seq))
            .await
    }

    /// Moves a job from `from` to `to`; false when it was no longer in `from`. `audited`
    /// records the change as the scope's actor (operators' pauses, resumes and cancels).
    pub async fn set_state(
        &self,
        id: &str,
        from: JobState,
        to: JobState,
        reason: Option<&str>,
        now: DateTime<Utc>,
        audited: bool,
    ) -> StoreResult<bool> {
        if !from.can_move_to(to) {
            return Err(refused(format!("job {} → {}", from.as_str(), to.as_str())));
        }
        let entry =
            audited.then(|| changes::job_state(self.tenant().as_str(), id, to, reason).by(self.scope.actor(), now));
        let change = JobMove {
            from,
            to,
            reason: reason.map(str::to_owned),
            at: now,
        };
        self.inner
            .timed(
                "jobs.set_state",
                self.b().set_job_state(self.tenant(), id, &change, entry),
            )
            .await
    }

    /// Applies compare-and-sets of executions of job `id` in one transaction.
    pub async fn update(&self, id: &str, updates: &[ExecUpdate]) -> StoreResult<Vec<bool>> {
        for u in updates {
            if u.next.seq != u.seq || u.next.job_id != id || !u.from.can_move_to(u.next.state) {
                return Err(refused(format!(
                    "execution {id}.{} {} → {}",
                    u.seq,
                    u.from.as_str(),
                    u.next.state.as_str()
                )));
            }
        }
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        self.inner
            .timed(
                "executions.update",
                self.b().update_executions(self.tenant(), id, updates),
            )
            .await
    }

    /// Moves every execution of job `id` in `from` to `to`.
    pub async fn move_all(
        &self,
        id: &str,
        from: ExecState,
        to: ExecState,
        detail: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        if !from.can_move_to(to) {
            return Err(refused(format!("executions {} → {}", from.as_str(), to.as_str())));
        }
        self.inner
            .timed(
                "executions.move_all",
                self.b().move_executions(self.tenant(), id, from, to, detail, now),
            )
            .await
    }

    /// Which of `devices` are online now, with their topic prefixes.
    pub async fn online(&self, devices: &[DeviceId]) -> StoreResult<HashMap<DeviceId, TopicPrefix>> {
        self.inner
            .timed("devices.online", self.b().online_prefixes(self.tenant(), devices))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_states_go_nowhere_and_open_states_reach_a_final_one() {
        for s in ExecState::ALL {
            if s.is_final() {
                assert!(ExecState::ALL.iter().all(|t| !s.can_move_to(*t)), "{s:?}");
            } else {
                assert!(
                    ExecState::ALL.iter().any(|t| t.is_final() && s.can_move_to(*t)),
                    "{s:?}"
                );
                assert_eq!(s.can_move_to(s), s == ExecState::Queued, "{s:?}");
            }
            assert_eq!(ExecState::parse(s.as_str()), Some(s));
        }
        // Once sent, an execution cannot be cancelled or skipped: the screen may already act.
        assert!(!ExecState::Sent.can_move_to(ExecState::Cancelled));
        assert!(!ExecState::Received.can_move_to(ExecState::Skipped));
        assert!(!ExecState::Queued.can_move_to(ExecState::Succeeded));
    }

    #[test]
    fn job_states() {
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
            assert_eq!(s.is_final(), JobState::ALL.iter().all(|t| !s.can_move_to(*t)));
        }
        assert!(JobState::Paused.can_move_to(JobState::Running));
        assert!(!JobState::Completed.can_move_to(JobState::Running));
    }

    #[test]
    fn command_ids_round_trip() {
        let id = Execution::command_id_of("0190a.b-c", 17, 2);
        assert_eq!(Execution::parse_command_id(&id), Some(("0190a.b-c", 17, 2)));
        assert_eq!(Execution::parse_command_id("x"), None);
        assert_eq!(Execution::parse_command_id(".1.2"), None);
        assert_eq!(Execution::parse_command_id("a.b.2"), None);
    }

    #[test]
    fn counts_by_state() {
        let mut c = Counts::default();
        for (i, s) in ExecState::ALL.into_iter().enumerate() {
            c.add(s, i as u64 + 1);
        }
        assert_eq!(c.total(), 36);
        assert_eq!(c.get(ExecState::TimedOut), 6);
        assert_eq!(c.open(), 1 + 2 + 3);
        assert_eq!(c.finished(), 4 + 5 + 6);
    }
}
