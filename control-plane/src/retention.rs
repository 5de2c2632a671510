//! Retention: the sweep that keeps the installation's history to what the configuration says.
//!
//! A minute after start and then every `telemetry.compact_every_secs`, the holder of the
//! `retention` lease (one replica at a time)
//!
//! - rolls telemetry past `telemetry.raw_retention_days` up into hours and deletes hours past
//!   `telemetry.hourly_retention_days` ([`crate::store::SystemStore::compact_telemetry`]);
//! - deletes jobs that ended more than `commands.job_retention_days` ago, with their
//!   executions;
//! - deletes alerts resolved more than `alerts.keep_resolved_days` ago;
//! - deletes sent and failed notification messages queued more than `notify.keep_days` ago;
//! - deletes screenshots older than `screenshots.retention_days` (each screen also keeps only
//!   its newest `screenshots.keep_per_device`, as they arrive).
//!
//! Every step is idempotent, so a takeover mid-way repeats nothing harmful. The audit log is
//! never swept: its chains and checkpoint are the installation's record.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::lease::Lease;
use crate::store::{Retention, StoreError, SystemStore};

/// What is kept, and for how long.
#[derive(Debug, Clone)]
pub struct Policy {
    pub telemetry: Retention,
    pub jobs: chrono::Duration,
    pub alerts: chrono::Duration,
    pub messages: chrono::Duration,
    pub screenshots: chrono::Duration,
    pub screenshot_dir: PathBuf,
}

impl Policy {
    pub fn from_config(config: &Config) -> Self {
        Self {
            telemetry: config.telemetry.retention(),
            jobs: chrono::Duration::days(i64::from(config.commands.job_retention_days)),
            alerts: chrono::Duration::days(i64::from(config.alerts.keep_resolved_days)),
            messages: chrono::Duration::days(i64::from(config.notify.keep_days)),
            screenshots: chrono::Duration::days(i64::from(config.screenshots.retention_days)),
            screenshot_dir: config.screenshot_dir(),
        }
    }
}

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub telemetry_records: u64,
    pub telemetry_hours: u64,
    pub jobs: u64,
    pub alerts: u64,
    pub messages: u64,
    pub screenshots: u64,
}

/// One sweep as of `now`. Each step runs whatever the others did; the first failure is
/// returned after all have run (with what they removed).
pub async fn sweep(system: &SystemStore, policy: &Policy, now: DateTime<Utc>) -> (Swept, Option<StoreError>) {
    let mut swept = Swept::default();
    let mut failed = None;
    match system.compact_telemetry(policy.telemetry, now).await {
        Ok((records, hours)) => (swept.telemetry_records, swept.telemetry_hours) = (records, hours),
        Err(e) => failed = failed.or(Some(e)),
    }
    match system.delete_jobs_ended_before(now - policy.jobs).await {
        Ok(n) => swept.jobs = n,
        Err(e) => failed = failed.or(Some(e)),
    }
    match system.delete_alerts_resolved_before(now - policy.alerts).await {
        Ok(n) => swept.alerts = n,
        Err(e) => failed = failed.or(Some(e)),
    }
    match system.delete_deliveries_settled_before(now - policy.messages).await {
        Ok(n) => swept.messages = n,
        Err(e) => failed = failed.or(Some(e)),
    }
    let (dir, cutoff) = (policy.screenshot_dir.clone(), now - policy.screenshots);
    match tokio::task::spawn_blocking(move || crate::screenshots::prune_older_than(&dir, cutoff)).await {
        Ok(Ok(n)) => swept.screenshots = n,
        Ok(Err(e)) => failed = failed.or(Some(StoreError::Task(format!("pruning screenshots: {e}")))),
        Err(e) => failed = failed.or(Some(StoreError::Task(e.to_string()))),
    }
    (swept, failed)
}

/// Sweeps a minute after start and then every `every`, while holding `lease` (whose term
/// should outlast `every`).
pub async fn run(system: SystemStore, policy: Policy, every: Duration, mut lease: Lease, shutdown: CancellationToken) {
    let mut wait = Duration::from_secs(60).min(every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = every;
        if !lease.held().await {
            continue;
        }
        let (swept, failed) = sweep(&system, &policy, Utc::now()).await;
        if swept != Swept::default() {
            tracing::info!(
                telemetry_records = swept.telemetry_records,
                telemetry_hours = swept.telemetry_hours,
                jobs = swept.jobs,
                alerts = swept.alerts,
                messages = swept.messages,
                screenshots = swept.screenshots,
                "retention sweep deleted old history"
            );
        }
        if let Some(e) = failed {
            tracing::error!(error = %e, "a retention step failed; trying again next time");
        }
    }
    lease.release().await;
}
