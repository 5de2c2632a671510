//! The new version's half: the health check, the commit, and telling the control plane how
//! the last update ended.
//!
//! A version on trial is healthy when it is connected to the broker, has drawn the board, and
//! the control plane has stored its telemetry (a full round trip through the server). Then it
//! commits: the anti-rollback counter moves to its version, the trial ends, its binary becomes
//! the supervisor's, and older slots go. A version that never gets there is rolled back by the
//! supervisor.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use luach_ota::Version;
use luach_schemas::messages::AckStatus;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::journal::{Ending, Journal, Outcome};
use super::layout::Layout;
use super::{JournalFile, kill_point};
use crate::screen::LatestFrame;
use crate::session::SessionStats;

const POLL: Duration = Duration::from_millis(250);

/// A command's final answer that the session publishes when it is connected (and records in
/// its seen set, so a repeat of the command gets the same answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub command_id: String,
    pub status: AckStatus,
    pub detail: Option<String>,
}

/// What tells the health check that the agent works.
#[derive(Debug, Clone)]
pub struct Health {
    pub stats: Arc<SessionStats>,
    pub latest: LatestFrame,
}

impl Health {
    fn healthy(&self) -> bool {
        let drawn = self
            .latest
            .lock()
            .map(|frame| frame.is_some())
            .unwrap_or_else(|p| p.into_inner().is_some());
        self.stats.connected.load(Ordering::Relaxed) > 0
            && self.stats.telemetry_stored.load(Ordering::Relaxed) > 0
            && drawn
    }
}

/// The answer an outcome gives its command.
pub fn report_of(outcome: &Outcome) -> Report {
    let (status, detail) = match outcome.ending {
        Ending::Committed => (AckStatus::Ok, format!("updated to {}", outcome.version)),
        Ending::RolledBack | Ending::Refused => {
            let (code, reason) = outcome.why.as_ref().map_or(("failed", "no reason recorded"), |w| {
                (w.code.as_str(), w.reason.as_str())
            });
            let what = if outcome.ending == Ending::RolledBack {
                "rolled back"
            } else {
                "not installed"
            };
            (
                AckStatus::Error,
                format!("{code}: {} {what}: {reason}", outcome.version),
            )
        }
    };
    Report {
        command_id: outcome.command_id.clone(),
        status,
        detail: Some(detail),
    }
}

/// Runs for the life of the agent under a supervisor: reports an unreported outcome, and if
/// `running` is on trial, waits for health, commits, and reports that.
pub async fn watch(
    layout: Layout,
    running: Version,
    health: Health,
    reports: mpsc::UnboundedSender<Report>,
    shutdown: CancellationToken,
) {
    let journal = JournalFile::new(&layout.update_dir());
    let on_trial = match journal.load() {
        Ok(j) => j.trial.is_some_and(|t| t.version == running),
        Err(e) => {
            tracing::error!(error = %e, "update journal unreadable; no health check");
            return;
        }
    };
    report_last(&journal, &reports);
    if !on_trial {
        return;
    }
    tracing::info!(%running, "on trial: waiting to be connected, to draw the board and to be heard");
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
        if health.healthy() {
            break;
        }
    }
    kill_point("health");
    match commit(&journal, &running) {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::error!(error = %e, "the commit could not be recorded; the supervisor will roll back");
            return;
        }
    }
    kill_point("commit");
    tracing::info!(%running, "update committed");
    if let Err(e) = layout.refresh_supervisor(&running) {
        tracing::warn!(error = %e, "the supervisor's copy was not refreshed");
    }
    if let Err(e) = layout.clean(&[]) {
        tracing::warn!(error = %e, "old versions were not removed");
    }
    remove_partial_downloads(&layout);
    report_last(&journal, &reports);
}

/// Records the commit of `running` if it is still the trial; false when it is not.
fn commit(journal: &JournalFile, running: &Version) -> Result<bool, super::journal::JournalError> {
    let mut committed = false;
    journal.update(|j: &mut Journal| {
        let Some(trial) = j.trial.take_if(|t| t.version == *running) else {
            return;
        };
        j.installed(running);
        j.last = Some(Outcome {
            command_id: trial.command_id,
            version: running.clone(),
            ending: Ending::Committed,
            why: None,
            at: Utc::now(),
            reported: false,
        });
        committed = true;
    })?;
    Ok(committed)
}

/// Hands the last outcome to the session once, and marks it reported.
fn report_last(journal: &JournalFile, reports: &mpsc::UnboundedSender<Report>) {
    let Ok(j) = journal.load() else { return };
    let Some(last) = j.last.filter(|l| !l.reported) else {
        return;
    };
    if reports.send(report_of(&last)).is_ok()
        && let Err(e) = journal.update(|j| {
            if let Some(l) = j.last.as_mut() {
                l.reported = true;
            }
        })
    {
        tracing::warn!(error = %e, "the update outcome may be reported again");
    }
}

fn remove_partial_downloads(layout: &Layout) {
    if let Ok(entries) = std::fs::read_dir(layout.update_dir()) {
        for entry in entries.filter_map(Result::ok) {
            if entry.file_name().to_string_lossy().ends_with(".part") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}
