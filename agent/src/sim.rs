//! Many simulated screens in one process, each with its own MQTT connection and identity.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use luach_schemas::DeviceId;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::sampler;
use crate::session::{DeviceSession, SessionConfig, SessionStats};

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub count: usize,
    /// Device ids are `{prefix}{index:05}`.
    pub id_prefix: String,
    pub host: String,
    pub port: u16,
    pub heartbeat_every: Duration,
    pub metrics_every: Duration,
    pub keep_alive: Duration,
    /// New connections opened per second while ramping up.
    pub connect_rate: u32,
    /// How often a status line is printed.
    pub report_every: Duration,
}

/// The id of simulated screen `index`.
pub fn device_id(prefix: &str, index: usize) -> anyhow::Result<DeviceId> {
    Ok(DeviceId::parse(&format!("{prefix}{index:05}"))?)
}

/// A prefix of 6 random lower-case letters, so two simulators never collide by accident.
pub fn random_prefix() -> String {
    let id = DeviceId::from_random_bytes(rand::random());
    format!("sim{}", &id.as_str()[..6])
}

/// Raises the open-file limit as far as the hard limit allows (each screen holds a socket).
fn raise_fd_limit(needed: u64) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < needed => {
            tracing::warn!(
                limit,
                needed,
                "open-file limit is below the number of simulated screens"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
}

/// Runs the simulated fleet until `shutdown`.
pub async fn run(config: SimConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    anyhow::ensure!(config.count > 0, "--count must be at least 1");
    anyhow::ensure!(config.connect_rate > 0, "--connect-rate must be at least 1");
    raise_fd_limit(config.count as u64 + 64);
    let ids = (0..config.count)
        .map(|i| device_id(&config.id_prefix, i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let metrics = sampler::spawn(config.metrics_every.min(Duration::from_secs(30)), shutdown.clone());
    let stats = Arc::new(SessionStats::default());
    let mut sessions = JoinSet::new();
    let gap = Duration::from_secs(1) / config.connect_rate;
    let mut ramp = tokio::time::interval(gap.max(Duration::from_micros(1)));
    for id in ids {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ramp.tick() => {}
        }
        let session = DeviceSession::new(
            SessionConfig {
                device_id: id,
                host: config.host.clone(),
                port: config.port,
                heartbeat_every: config.heartbeat_every,
                metrics_every: config.metrics_every,
                keep_alive: config.keep_alive,
            },
            stats.clone(),
        );
        sessions.spawn(session.run(metrics.clone(), shutdown.clone()));
    }
    let mut report = tokio::time::interval(config.report_every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = report.tick() => {
                println!(
                    "sim: {}/{} connected, {} connects, {} messages published, {} commands answered",
                    stats.connected.load(Ordering::Relaxed),
                    config.count,
                    stats.connects.load(Ordering::Relaxed),
                    stats.published.load(Ordering::Relaxed),
                    stats.commands.load(Ordering::Relaxed),
                );
            }
        }
    }
    while sessions.join_next().await.is_some() {}
    Ok(())
}
