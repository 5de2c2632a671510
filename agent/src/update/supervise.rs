//! `luach-agent supervise`: the small process the screen's service runs. It starts
//! `DIR/current/luach-agent` with the agent's arguments and starts it again when it ends, and
//! it is what makes a rollback work even when a new version cannot start at all:
//!
//! - before each start of a version on trial it counts the start in the journal; after
//!   [`MAX_STARTS`] starts without a commit it switches back;
//! - the first start of a trial sets the health window's end; when it passes without a commit
//!   (a version that hangs, or cannot reach the server) it stops the agent and switches back;
//! - a rollback is recorded before the switch (`rolling_back`), so a crash in the middle is
//!   finished at the next start; the version is marked bad and the outcome kept until the
//!   restored version reports it.
//!
//! Outside a trial it restarts the agent like systemd's `Restart=always`, with a growing
//! delay while the agent keeps failing. The supervisor itself is `DIR/bin/luach-agent`, a copy
//! refreshed only by a version that passed its health check, so the service never starts an
//! untried binary directly.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::journal::{Ending, Journal, Outcome, Trial, Why};
use super::layout::{Layout, Link};
use super::{EXIT_SWITCHED, INSTALL_DIR_ENV, JournalFile, UpdateError, kill_point};
use crate::backoff::Backoff;

/// Starts of a version on trial before it is rolled back.
pub const MAX_STARTS: u32 = 3;
/// Default time from a trial's first start to its health check.
pub const DEFAULT_HEALTH_WINDOW: Duration = Duration::from_secs(180);
/// How long the agent has to stop after `SIGTERM` before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// How often the journal is read during a trial (to see a commit).
const TRIAL_POLL: Duration = Duration::from_millis(250);
/// An agent that ran this long before ending is restarted without delay.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// What [`Supervisor::run`] needs.
#[derive(Debug, Clone)]
pub struct Supervisor {
    pub layout: Layout,
    /// The agent's arguments (`run …`).
    pub args: Vec<OsString>,
    pub health_window: Duration,
}

enum Ended {
    Exited(Option<i32>),
    DeadlinePassed,
    Stopped,
}

impl Supervisor {
    fn journal(&self) -> JournalFile {
        JournalFile::new(&self.layout.update_dir())
    }

    /// Runs the agent until `shutdown` (which stops it with `SIGTERM` first).
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), UpdateError> {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        while !shutdown.is_cancelled() {
            let deadline = self.prepare(Utc::now())?;
            if deadline.is_some() {
                kill_point("first_start");
            }
            let binary = self.layout.current_binary();
            let started = Instant::now();
            let spawned = tokio::process::Command::new(&binary)
                .args(&self.args)
                .env(INSTALL_DIR_ENV, self.layout.root())
                .kill_on_drop(true)
                .spawn();
            let ended = match spawned {
                Ok(mut child) => self.wait(&mut child, deadline, &shutdown).await,
                Err(e) => {
                    tracing::error!(binary = %binary.display(), error = %e, "the agent could not be started");
                    Ended::Exited(None)
                }
            };
            match ended {
                Ended::Stopped => break,
                Ended::DeadlinePassed => continue,
                Ended::Exited(Some(EXIT_SWITCHED)) => {
                    backoff.reset();
                    continue;
                }
                Ended::Exited(code) => {
                    if self.journal().load().is_ok_and(|j| j.trial.is_some()) {
                        tracing::warn!(?code, "the version on trial ended");
                        continue;
                    }
                    if started.elapsed() >= HEALTHY_RUN {
                        backoff.reset();
                    }
                    let delay = backoff.next_delay(&mut rand::rng());
                    tracing::warn!(
                        ?code,
                        retry_in_ms = delay.as_millis() as u64,
                        "the agent ended; starting it again"
                    );
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        Ok(())
    }

    /// Settles the journal before a start: reports a stale pending update, finishes or makes
    /// a rollback that is due, and counts the start of a version on trial. Returns the
    /// health window's end when the next start is a trial.
    pub fn prepare(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, UpdateError> {
        let journal = self.journal();
        let mut j = journal.load()?;
        let current = self
            .layout
            .version(Link::Current)
            .map_err(|e| UpdateError::Io(format!("reading the current version: {e}")))?;
        if let Some(p) = j.pending.take() {
            let why = Why::new(
                "interrupted",
                format!("the agent stopped during the update's {:?} step", p.phase).to_lowercase(),
            );
            j.last = Some(outcome(&p.command_id, &p.version, Ending::Refused, Some(why), now));
        }
        let Some(mut trial) = j.trial.clone() else {
            journal.save(&j)?;
            return Ok(None);
        };
        if let Some(why) = trial.rolling_back.clone() {
            self.finish_rollback(&mut j, &trial, why, now)?;
            return Ok(None);
        }
        if current.as_ref() != Some(&trial.version) {
            // Stopped between recording the trial and switching: the old version never left.
            let why = Why::new("interrupted", "the agent stopped before switching to the new version");
            j.trial = None;
            j.last = Some(outcome(
                &trial.command_id,
                &trial.version,
                Ending::Refused,
                Some(why),
                now,
            ));
            journal.save(&j)?;
            return Ok(None);
        }
        if trial.starts >= MAX_STARTS {
            let why = Why::new(
                "crashed_at_start",
                format!("{MAX_STARTS} starts of {} ended without a health check", trial.version),
            );
            self.rollback(&mut j, &trial, why, now)?;
            return Ok(None);
        }
        if let Some(deadline) = trial.deadline
            && now >= deadline
        {
            let why = Why::new(
                "health_timeout",
                format!(
                    "{} did not connect, draw the board and report within {} s",
                    trial.version,
                    self.health_window.as_secs()
                ),
            );
            self.rollback(&mut j, &trial, why, now)?;
            return Ok(None);
        }
        trial.starts += 1;
        let deadline = *trial.deadline.get_or_insert(now + self.health_window);
        tracing::info!(version = %trial.version, start = trial.starts, %deadline, "starting the version on trial");
        j.trial = Some(trial);
        journal.save(&j)?;
        Ok(Some(deadline))
    }

    fn rollback(&self, j: &mut Journal, trial: &Trial, why: Why, now: DateTime<Utc>) -> Result<(), UpdateError> {
        let mut marked = trial.clone();
        marked.rolling_back = Some(why.clone());
        j.trial = Some(marked);
        self.journal().save(j)?;
        kill_point("rollback");
        self.finish_rollback(j, trial, why, now)
    }

    fn finish_rollback(&self, j: &mut Journal, trial: &Trial, why: Why, now: DateTime<Utc>) -> Result<(), UpdateError> {
        if self.layout.has_slot(&trial.previous) {
            self.layout
                .point(Link::Current, &trial.previous)
                .map_err(|e| UpdateError::Io(format!("switching back to {}: {e}", trial.previous)))?;
        } else {
            tracing::error!(previous = %trial.previous, "the previous version's slot is gone; keeping the current one");
        }
        tracing::warn!(version = %trial.version, previous = %trial.previous, code = %why.code, reason = %why.reason, "rolled back");
        j.mark_bad(trial.version.clone());
        j.trial = None;
        j.last = Some(outcome(
            &trial.command_id,
            &trial.version,
            Ending::RolledBack,
            Some(why),
            now,
        ));
        self.journal().save(j)?;
        Ok(())
    }

    async fn wait(
        &self,
        child: &mut tokio::process::Child,
        mut deadline: Option<DateTime<Utc>>,
        shutdown: &CancellationToken,
    ) -> Ended {
        loop {
            tokio::select! {
                status = child.wait() => return Ended::Exited(status.ok().and_then(|s| s.code())),
                _ = shutdown.cancelled() => {
                    stop(child).await;
                    return Ended::Stopped;
                }
                _ = tokio::time::sleep(TRIAL_POLL), if deadline.is_some() => {
                    if self.journal().load().is_ok_and(|j| j.trial.is_none()) {
                        deadline = None;
                    } else if deadline.is_some_and(|d| Utc::now() >= d) {
                        tracing::warn!("the health window passed; stopping the version on trial");
                        stop(child).await;
                        return Ended::DeadlinePassed;
                    }
                }
            }
        }
    }
}

fn outcome(
    command_id: &str,
    version: &luach_ota::Version,
    ending: Ending,
    why: Option<Why>,
    at: DateTime<Utc>,
) -> Outcome {
    Outcome {
        command_id: command_id.to_owned(),
        version: version.clone(),
        ending,
        why,
        at,
        reported: false,
    }
}

/// `SIGTERM`, then `SIGKILL` after [`STOP_GRACE`].
async fn stop(child: &mut tokio::process::Child) {
    if let Some(pid) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.kill().await;
}
