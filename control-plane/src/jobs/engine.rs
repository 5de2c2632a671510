//! The job engine: one task that moves every active job forward.
//!
//! ```text
//!   acks (ingest writer) ──▶ apply: CAS sent/received → outcome ──▶ broadcast, live progress
//!   tick / wake ──▶ pass over active jobs, oldest first:
//!        expiry → queued executions skipped
//!        in flight → time-outs (retry or timed_out); unanswered ones re-sent (same id)
//!        counts → completed / aborted
//!        queued → (online, not held, its turn, within concurrency and rate)
//!                 CAS queued → sent (stored first) ─▶ publish
//! ```
//! Everything it decides comes from [`super::rules`]; everything it knows comes from the
//! store, so a restarted engine picks up where the last one stopped, and of several replicas
//! the one holding the `jobs` [`Lease`] makes the passes (any replica applies the
//! acknowledgements it receives: those are compare-and-set): an execution stored as
//! sent is sent again with the same command id, and the screen, which remembers the ids it
//! ran, answers without acting twice. Per screen, an execution starts only when no earlier
//! job's execution for that screen is waiting or in flight, so a screen that was offline gets
//! its commands in the order they were made.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use luach_broker::Publisher;
use luach_schemas::messages::{Ack, Command};
use luach_schemas::{DeviceId, DownKind, TenantId, TopicPrefix};
use serde::Serialize;
use tokio::sync::{Notify, broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::rollout::{self, PhaseStatus, PhaseView, Step};
use super::rules;
use super::spec::JobSpec;
use crate::auth::AuthService;
use crate::auth::clock::Clock;
use crate::chain::Actor;
use crate::lease::Lease;
use crate::live::{LiveEvent, LiveSink};
use crate::metrics::Metrics;
use crate::store::{
    Counts, ExecFilter, ExecState, ExecUpdate, Execution, JobRecord, JobState, StoreResult, SystemStore, TenantJobs,
};

/// Acknowledgements waiting for the engine; when full, acks are dropped and recovered by the
/// re-send of unanswered executions (the screen answers a repeated id from memory).
const ACK_QUEUE: usize = 65_536;
/// An unanswered execution is published again after this long.
const RESEND_AFTER: Duration = Duration::from_secs(10);
/// How often the engine looks at every active job without being woken.
const TICK: Duration = Duration::from_millis(250);
/// Shortest gap between two passes woken by acknowledgements.
const MIN_PASS_GAP: Duration = Duration::from_millis(50);
/// Executions read per page.
const PAGE: u32 = 1_000;

/// A change of an execution, for those waiting on one (the single-screen shortcut).
#[derive(Debug, Clone, PartialEq)]
pub struct ExecEvent {
    pub tenant: TenantId,
    pub job_id: String,
    pub seq: u32,
    pub state: ExecState,
}

/// A job's progress, sent to its tenant's Socket.IO room as `job:progress`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    pub id: String,
    pub state: JobState,
    /// Why it is in its state (who paused it, which phase failed).
    pub reason: Option<String>,
    pub counts: Counts,
    /// A staged roll-out's phases and the open one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<PhaseStatus>,
    /// When the job's state or phase last changed. Events may reach a page after a newer
    /// answer from the API (a progress read just before an operator's pause, delivered just
    /// after the pause's answer); a page keeps the state with the later time.
    pub updated_at: DateTime<Utc>,
}

struct AckIn {
    tenant: TenantId,
    device: DeviceId,
    ack: Ack,
}

struct Shared {
    wake: Notify,
    acks: mpsc::Sender<AckIn>,
    updates: broadcast::Sender<ExecEvent>,
    clock: Arc<dyn Clock>,
    live: LiveSink,
}

/// The engine's handle: ingest hands it acknowledgements, the API wakes it and waits on it.
#[derive(Clone)]
pub struct Jobs {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs").finish_non_exhaustive()
    }
}

impl Jobs {
    /// Asks for a pass now (a job was created or changed, a screen came online).
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// Hands over an acknowledgement from `device` of `tenant`. False when it names no job
    /// execution (a direct command such as a ping) or the queue is full.
    pub fn ack(&self, tenant: &TenantId, device: &DeviceId, ack: &Ack) -> bool {
        if Execution::parse_command_id(&ack.command_id).is_none() {
            return false;
        }
        self.shared
            .acks
            .try_send(AckIn {
                tenant: tenant.clone(),
                device: device.clone(),
                ack: ack.clone(),
            })
            .is_ok()
    }

    /// Every execution change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ExecEvent> {
        self.shared.updates.subscribe()
    }

    /// The engine's time (injectable for tests and demonstrations).
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    /// Tells the job's tenant room where `job` stands (`job:progress`): the engine after each
    /// change it makes, the API after an operator's pause, resume or cancel.
    pub fn announce(&self, job: &JobRecord, counts: Counts) {
        let phase = JobSpec::of(job).ok().and_then(|spec| PhaseStatus::of(job, &spec));
        self.shared.live.send(LiveEvent::Job {
            tenant_id: job.tenant_id.clone(),
            progress: Progress {
                id: job.id.clone(),
                state: job.state,
                reason: job.reason.clone(),
                counts,
                phase,
                updated_at: job.updated_at,
            },
        });
    }
}

/// The engine task's state.
pub struct JobEngine {
    system: SystemStore,
    publisher: Publisher,
    auth: AuthService,
    live: LiveSink,
    metrics: Metrics,
    jobs: Jobs,
    acks: mpsc::Receiver<AckIn>,
    /// When each command id was last published by this process.
    published: HashMap<String, Instant>,
    /// Passes run only while this replica holds it.
    lease: Lease,
}

impl std::fmt::Debug for JobEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobEngine").finish_non_exhaustive()
    }
}

/// Screens that cannot start a new execution in this pass.
#[derive(Default)]
struct Busy {
    /// An execution is sent or received.
    in_flight: HashSet<(TenantId, DeviceId)>,
    /// An earlier job's execution waits (queued, perhaps held).
    waiting: HashSet<(TenantId, DeviceId)>,
}

/// Why each of `devices` may not start now, and until when: Shabbat or Yom Tov at the
/// synagogue it shows (not for emergencies), or the job's maintenance windows in that
/// synagogue's time zone (UTC for a screen of no synagogue).
async fn holds(
    store: &crate::store::TenantStore<'_>,
    spec: &JobSpec,
    devices: &[DeviceId],
    now: DateTime<Utc>,
) -> StoreResult<HashMap<DeviceId, (DateTime<Utc>, String)>> {
    let mut out = HashMap::new();
    if spec.emergency && spec.windows.is_empty() {
        return Ok(out);
    }
    let synagogues = store.synagogues(luach_content::bundle::MAX_PER_KIND).await?;
    if synagogues.is_empty() && spec.windows.is_empty() {
        return Ok(out);
    }
    for id in devices {
        let Some(device) = store.device(id).await? else {
            continue;
        };
        let synagogue = crate::bundle::synagogue_of(&device, &synagogues);
        if !spec.emergency
            && let Some(s) = synagogue
        {
            match luach_content::rest::rest_until(&s.profile, now) {
                Ok(Some(end)) => {
                    let why = format!("held for Shabbat or Yom Tov at the screen's synagogue until havdalah ({end})");
                    out.insert(id.clone(), (end, why));
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(device_id = %id, error = %e, "no Shabbat times for the screen's synagogue"),
            }
        }
        let zone = synagogue.and_then(|s| s.profile.timezone.parse::<chrono_tz::Tz>().ok());
        let opens = match zone {
            Some(tz) => rollout::window_wait(&spec.windows, &tz, now),
            None => rollout::window_wait(&spec.windows, &Utc, now),
        };
        if let Some(opens) = opens {
            let why = format!("outside the job's maintenance windows; the next opens at {opens}");
            out.insert(id.clone(), (opens, why));
        }
    }
    Ok(out)
}

/// Every execution of `job` in `state`, in roll-out order.
async fn all_in(tj: &TenantJobs<'_>, job: &str, state: ExecState) -> StoreResult<Vec<Execution>> {
    let filter = ExecFilter {
        state: Some(state),
        device: None,
    };
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = tj.executions(job, &filter, PAGE, after).await?;
        after = page.items.last().map(|e| e.seq);
        out.extend(page.items);
        if page.next_after.is_none() {
            return Ok(out);
        }
    }
}

impl JobEngine {
    pub fn new(
        system: SystemStore,
        publisher: Publisher,
        auth: AuthService,
        live: LiveSink,
        metrics: Metrics,
        clock: Arc<dyn Clock>,
        lease: Lease,
    ) -> (Self, Jobs) {
        let (tx, rx) = mpsc::channel(ACK_QUEUE);
        let jobs = Jobs {
            shared: Arc::new(Shared {
                wake: Notify::new(),
                acks: tx,
                updates: broadcast::channel(4_096).0,
                clock,
                live: live.clone(),
            }),
        };
        (
            Self {
                system,
                publisher,
                auth,
                live,
                metrics,
                jobs: jobs.clone(),
                acks: rx,
                published: HashMap::new(),
                lease,
            },
            jobs,
        )
    }

    /// Runs until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shared = self.jobs.shared.clone();
        let mut last_pass = Instant::now();
        loop {
            let due = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => true,
                _ = shared.wake.notified() => true,
                first = self.acks.recv() => {
                    let Some(first) = first else { break };
                    let mut batch = vec![first];
                    while let Ok(more) = self.acks.try_recv() {
                        batch.push(more);
                    }
                    self.apply_acks(batch).await;
                    last_pass.elapsed() >= MIN_PASS_GAP
                }
            };
            if due && self.lease.held().await {
                if let Err(e) = self.pass().await {
                    tracing::error!(error = %e, "job pass failed; retrying on the next tick");
                }
                last_pass = Instant::now();
            }
        }
        self.lease.release().await;
    }

    /// Applies acknowledgements, grouped by job, each group in one transaction.
    async fn apply_acks(&mut self, batch: Vec<AckIn>) {
        let mut groups: HashMap<(TenantId, String), Vec<AckIn>> = HashMap::new();
        for a in batch {
            if let Some((job, _, _)) = Execution::parse_command_id(&a.ack.command_id) {
                groups.entry((a.tenant.clone(), job.to_owned())).or_default().push(a);
            }
        }
        for ((tenant, job), acks) in groups {
            if let Err(e) = self.apply_job_acks(&tenant, &job, acks).await {
                tracing::error!(error = %e, job_id = %job, "acknowledgements not applied; the re-send recovers them");
            }
        }
    }

    async fn apply_job_acks(&mut self, tenant: &TenantId, job_id: &str, acks: Vec<AckIn>) -> StoreResult<()> {
        let system = self.system.clone();
        let scope = system.scope(tenant.clone(), Actor::system());
        let store = system.tenant(&scope);
        let tj = store.jobs();
        let Some(job) = tj.get(job_id).await? else {
            return Ok(());
        };
        let spec = JobSpec::of(&job)?;
        let now = self.jobs.now();
        // The latest known state of each execution in this batch, so a "received" and the
        // outcome arriving together chain instead of racing.
        let mut current: HashMap<u32, Execution> = HashMap::new();
        let mut updates = Vec::new();
        for a in acks {
            let Some((_, seq, _)) = Execution::parse_command_id(&a.ack.command_id) else {
                continue;
            };
            let e = match current.get(&seq) {
                Some(e) => e.clone(),
                None => match tj.execution(job_id, seq).await? {
                    Some(e) => e,
                    None => continue,
                },
            };
            if e.device_id != a.device {
                tracing::warn!(device_id = %a.device, command_id = %a.ack.command_id, "acknowledgement for another screen's command dropped");
                continue;
            }
            if let Some(u) = rules::on_ack(&e, &spec, &a.ack, now) {
                current.insert(seq, u.next.clone());
                updates.push(u);
            }
        }
        let applied = tj.update(job_id, &updates).await?;
        self.announce(tenant, &updates, &applied);
        if applied.iter().any(|a| *a) {
            self.progress(&tj, &job).await;
        }
        Ok(())
    }

    /// Tells waiters of every applied change.
    fn announce(&self, tenant: &TenantId, updates: &[ExecUpdate], applied: &[bool]) {
        for (u, ok) in updates.iter().zip(applied) {
            if *ok {
                let _ = self.jobs.shared.updates.send(ExecEvent {
                    tenant: tenant.clone(),
                    job_id: u.next.job_id.clone(),
                    seq: u.seq,
                    state: u.next.state,
                });
                self.live.send(LiveEvent::Execution {
                    tenant_id: tenant.clone(),
                    execution: u.next.clone(),
                });
                if u.next.state.is_final() {
                    self.metrics
                        .job_executions
                        .with_label_values(&[u.next.state.as_str()])
                        .inc();
                }
            }
        }
    }

    async fn progress(&self, tj: &TenantJobs<'_>, job: &JobRecord) {
        let Ok(Some(fresh)) = tj.get(&job.id).await else {
            return;
        };
        let Ok((counts, _)) = tj.counts(&job.id).await else {
            return;
        };
        self.jobs.announce(&fresh, counts);
    }

    /// One pass over every active job, oldest first.
    async fn pass(&mut self) -> StoreResult<()> {
        let jobs = self.system.active_jobs().await?;
        let mut busy = Busy::default();
        for job in &jobs {
            if let Err(e) = self.pass_job(job, &mut busy).await {
                tracing::error!(error = %e, job_id = %job.id, "job not advanced");
            }
        }
        // Forget publications no pass can still need.
        self.published.retain(|_, at| at.elapsed() < Duration::from_secs(3_600));
        Ok(())
    }

    async fn pass_job(&mut self, job: &JobRecord, busy: &mut Busy) -> StoreResult<()> {
        let spec = JobSpec::of(job)?;
        let tenant = &job.tenant_id;
        let system = self.system.clone();
        let scope = system.scope(tenant.clone(), Actor::system());
        let store = system.tenant(&scope);
        let tj = store.jobs();
        let now = self.jobs.now();
        let mut changed = false;

        if now >= job.expires_at {
            let n = tj
                .move_all(
                    &job.id,
                    ExecState::Queued,
                    ExecState::Skipped,
                    "the job expired before this screen's turn",
                    now,
                )
                .await?;
            changed |= n > 0;
        }

        // In flight: time-outs, and re-sends of unanswered executions.
        let mut in_flight = all_in(&tj, &job.id, ExecState::Sent).await?;
        in_flight.extend(all_in(&tj, &job.id, ExecState::Received).await?);
        let mut timeouts = Vec::new();
        let mut resend = Vec::new();
        for e in &in_flight {
            busy.in_flight.insert((tenant.clone(), e.device_id.clone()));
            if let Some(u) = rules::on_timeout(e, &spec, now) {
                timeouts.push(u);
            } else if e
                .command_id
                .as_ref()
                .is_some_and(|id| self.published.get(id).is_none_or(|at| at.elapsed() >= RESEND_AFTER))
            {
                resend.push(e);
            }
        }
        if !timeouts.is_empty() {
            let applied = tj.update(&job.id, &timeouts).await?;
            self.announce(tenant, &timeouts, &applied);
            changed = true;
        }
        if !resend.is_empty() {
            let devices: Vec<DeviceId> = resend.iter().map(|e| e.device_id.clone()).collect();
            let online = tj.online(&devices).await?;
            for e in resend {
                if let Some(prefix) = online.get(&e.device_id) {
                    self.publish(job, &spec, e, prefix).await;
                }
            }
        }

        let (counts, ever_sent) = tj.counts(&job.id).await?;
        if let Some((to, why)) = rules::next_state(&spec, job.state, &counts) {
            if tj.set_state(&job.id, job.state, to, Some(&why), now, false).await? {
                if to == JobState::Aborted {
                    let end = if spec.mode == super::spec::Mode::Sequential {
                        ExecState::Skipped
                    } else {
                        ExecState::Cancelled
                    };
                    tj.move_all(
                        &job.id,
                        ExecState::Queued,
                        end,
                        &format!("the job was aborted: {why}"),
                        now,
                    )
                    .await?;
                }
                tracing::info!(job_id = %job.id, tenant_id = %tenant, state = to.as_str(), reason = %why, "job ended");
                self.progress(&tj, job).await;
            }
            return Ok(());
        }

        // Queued executions, in order: each screen's earlier work goes first.
        let queued = all_in(&tj, &job.id, ExecState::Queued).await?;
        // A staged roll-out sends only within its open phase, which may open the next or
        // pause the job.
        let reach = match &spec.rollout {
            Some(r) if job.state == JobState::Running => match self.gate(&tj, job, r, &queued, now).await? {
                Some(reach) => reach,
                None => return Ok(()),
            },
            _ => u32::MAX,
        };
        let mut candidates = Vec::new();
        for (i, e) in queued.iter().enumerate() {
            let key = (tenant.clone(), e.device_id.clone());
            // A screen does one thing at a time, in the order jobs were made; an emergency
            // waits only for what the screen is doing now, not for earlier commands still
            // waiting (held over Shabbat, say).
            let free = !busy.in_flight.contains(&key) && (spec.emergency || !busy.waiting.contains(&key));
            busy.waiting.insert(key);
            if !free {
                continue;
            }
            let ready = job.state == JobState::Running
                && e.seq < reach
                && e.not_before.is_none_or(|t| t <= now)
                && (spec.mode == super::spec::Mode::Parallel || i == 0);
            if ready {
                candidates.push(e);
            }
        }
        let room =
            usize::try_from(rules::capacity(&spec, &counts, ever_sent, job.created_at, now)).unwrap_or(usize::MAX);
        if room > 0 && !candidates.is_empty() {
            let devices: Vec<DeviceId> = candidates.iter().map(|e| e.device_id.clone()).collect();
            let online = tj.online(&devices).await?;
            let picked: Vec<(&Execution, &TopicPrefix)> = candidates
                .into_iter()
                .filter_map(|e| online.get(&e.device_id).map(|p| (e, p)))
                .take(room)
                .collect();
            let devices: Vec<DeviceId> = picked.iter().map(|(e, _)| e.device_id.clone()).collect();
            let held = holds(&store, &spec, &devices, now).await?;
            let updates: Vec<ExecUpdate> = picked
                .iter()
                .map(|(e, _)| match held.get(&e.device_id) {
                    Some((until, why)) => rules::hold(e, *until, why.clone(), now),
                    None => rules::send(e, &spec, now),
                })
                .collect();
            let applied = tj.update(&job.id, &updates).await?;
            self.announce(tenant, &updates, &applied);
            for ((u, ok), (_, prefix)) in updates.iter().zip(&applied).zip(&picked) {
                if *ok && u.next.state == ExecState::Sent {
                    self.publish(job, &spec, &u.next, prefix).await;
                    changed = true;
                }
            }
        }
        if changed {
            self.progress(&tj, job).await;
        }
        Ok(())
    }

    /// Applies a running roll-out's phase gate: opens the next phase when the open one is
    /// healthy, or pauses the job when it failed. Returns how far executions may start
    /// (their `seq` below it), or `None` when the job was paused.
    async fn gate(
        &self,
        tj: &TenantJobs<'_>,
        job: &JobRecord,
        rollout: &super::spec::Rollout,
        queued: &[Execution],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<u32>> {
        let bounds = rollout::bounds(rollout, job.total);
        let mut phase = job.phase;
        // A phase just opened is judged at once: it may already pause (or, with every screen
        // of it offline, wait); each turn of the loop moves one phase forward or returns.
        loop {
            let range = rollout::range(&bounds, phase);
            let tally = tj.tally(&job.id, range.clone()).await?;
            let waiting: Vec<DeviceId> = queued
                .iter()
                .filter(|e| range.contains(&e.seq))
                .map(|e| e.device_id.clone())
                .collect();
            let online = if waiting.is_empty() {
                HashMap::new()
            } else {
                tj.online(&waiting).await?
            };
            let view = PhaseView {
                tally,
                waiting_offline: waiting.iter().filter(|d| !online.contains_key(*d)).count() as u64,
            };
            match rollout::step(rollout, &bounds, phase, &view, now) {
                Step::Stay(_) => return Ok(Some(rollout::reach(&bounds, phase))),
                Step::Open => {
                    if !tj.set_phase(&job.id, phase, phase + 1, now).await? {
                        // Moved on elsewhere (an operator's resume): the next pass reads it.
                        return Ok(None);
                    }
                    phase += 1;
                    tracing::info!(job_id = %job.id, tenant_id = %job.tenant_id, phase = phase + 1, "roll-out phase opened");
                    self.progress(tj, job).await;
                }
                Step::Pause(why) => {
                    if tj
                        .set_state(&job.id, JobState::Running, JobState::Paused, Some(&why), now, false)
                        .await?
                    {
                        tracing::warn!(job_id = %job.id, tenant_id = %job.tenant_id, reason = %why, "roll-out paused");
                        self.progress(tj, job).await;
                    }
                    return Ok(None);
                }
            }
        }
    }

    /// Publishes execution `e` (stored as sent) to its screen.
    async fn publish(&mut self, job: &JobRecord, spec: &JobSpec, e: &Execution, prefix: &TopicPrefix) {
        let Some(command_id) = e.command_id.clone() else {
            return;
        };
        let auth = &self.auth;
        let action = spec
            .command
            .action(|| auth.device_token(&e.device_id, &job.tenant_id, prefix).0);
        let now = Utc::now();
        let command = Command {
            command_id: command_id.clone(),
            expires_at: Some(job.expires_at),
            action,
        };
        let sent = crate::down::publish(
            &self.publisher,
            &self.metrics,
            prefix,
            DownKind::Command,
            command_id.clone(),
            now,
            command,
        );
        match sent.await {
            Ok(()) => {
                self.published.insert(command_id, Instant::now());
            }
            // Stored as sent: the next pass after RESEND_AFTER (or a restart) sends it again.
            Err(e) => tracing::warn!(error = %e, %command_id, "command not published; will retry"),
        }
    }
}
