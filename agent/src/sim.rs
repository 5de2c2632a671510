//! Many simulated screens in one process, each with its own MQTT connection and identity.
//!
//! With [`Enrolment`], every screen enrols the way a real one does with a bulk token: it
//! generates its own P-256 key, sends a CSR with the token, connects over mutual TLS with the
//! certificate it gets, and renews it after 2/3 of its life. Enrolment runs `concurrency`
//! requests at a time (key generation is cheap; the control plane's store is the limit), and
//! screens connect as their certificates arrive, at most `connect_rate` per second.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use luach_pki::DeviceKey;
use luach_schemas::DeviceId;
use luach_schemas::messages::TelemetryData;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::credentials::{CredentialStore, TlsIdentity};
use crate::enrol::{EnrolError, Enroller};
use crate::outbox::{Outbox, OutboxConfig};
use crate::renew::keep_renewed;
use crate::sampler;
use crate::session::{DeviceSession, SessionConfig, SessionStats};
use crate::simfx::{SimBehaviour, SimEffects};

/// How simulated screens get their certificates.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// Control-plane URL.
    pub server: String,
    /// A bulk enrolment token of the tenant the screens join.
    pub token: String,
    /// Enrolment requests in flight at once.
    pub concurrency: usize,
    /// Keep each screen's key and certificate in `{state_dir}/{device id}/` and reuse them on
    /// the next run (a token never re-keys an enrolled device).
    pub state_dir: Option<PathBuf>,
}

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub count: usize,
    /// Device ids are `{prefix}{index:05}`.
    pub id_prefix: String,
    /// The broker: its mutual-TLS listener with `enrolment`, else the plain one.
    pub host: String,
    pub port: u16,
    /// Enrol every screen and connect over mutual TLS; `None` = plain TCP (development).
    pub enrolment: Option<Enrolment>,
    pub heartbeat_every: Duration,
    pub metrics_every: Duration,
    pub keep_alive: Duration,
    /// New connections opened per second while ramping up.
    pub connect_rate: u32,
    /// How often a status line is printed.
    pub report_every: Duration,
    /// What commands do on the simulated screens.
    pub behaviour: Arc<SimBehaviour>,
    /// Keep each screen's telemetry queue in `{state_dir}/{device id}/telemetry` across runs
    /// (in memory without it).
    pub state_dir: Option<PathBuf>,
    /// Bytes of telemetry each screen keeps.
    pub telemetry_budget: u64,
}

/// Screen `id`'s telemetry queue, with an event saying it started.
///
/// Simulated queues are not synced per record: a killed simulator loses nothing the kernel
/// has, and thousands of screens syncing on one disk would measure the disk.
fn outbox_of(config: &SimConfig, id: &DeviceId) -> anyhow::Result<Outbox> {
    let outbox = match &config.state_dir {
        Some(dir) => Outbox::open(
            &dir.join(id.as_str()).join("telemetry"),
            OutboxConfig {
                budget_bytes: config.telemetry_budget,
                sync: false,
            },
        )?,
        None => Outbox::in_memory(config.telemetry_budget),
    };
    outbox.push(
        chrono::Utc::now(),
        TelemetryData::Event {
            name: "agent_started".into(),
            detail: Some(sampler::AGENT_VERSION.into()),
        },
    );
    Ok(outbox)
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

/// Enrolment counters, printed with the session counters.
#[derive(Debug, Default)]
struct EnrolStats {
    enrolled: AtomicU64,
    failed: AtomicU64,
}

/// One screen ready to connect.
struct Ready {
    id: DeviceId,
    /// With mutual TLS: the key (for renewal) and the identity.
    tls: Option<(DeviceKey, TlsIdentity)>,
}

/// A screen's key and certificate: from its state directory, or enrolled now.
async fn enrol_one(
    enroller: &Enroller,
    enrolment: &Enrolment,
    id: DeviceId,
    shutdown: &CancellationToken,
) -> Result<(DeviceKey, TlsIdentity), EnrolError> {
    let store = enrolment
        .state_dir
        .as_ref()
        .map(|dir| CredentialStore::new(&dir.join(id.as_str())));
    let key = match &store {
        Some(store) => store.key()?,
        None => DeviceKey::generate().map_err(anyhow::Error::from)?,
    };
    if let Some(store) = &store
        && let Some(identity) = store.identity(&key)?
    {
        return Ok((key, identity));
    }
    let issued = enroller.enrol_with_token(&id, &key, &enrolment.token, shutdown).await?;
    if let Some(store) = &store {
        store.save_identity(&issued.identity)?;
    }
    Ok((key, issued.identity))
}

/// Enrols every id, `concurrency` at a time, and hands each ready screen to `ready`.
async fn enrol_all(
    enroller: Arc<Enroller>,
    enrolment: Enrolment,
    ids: Vec<DeviceId>,
    ready: mpsc::Sender<Ready>,
    stats: Arc<EnrolStats>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (enroller, enrolment, stats, shutdown) = (&*enroller, &enrolment, &stats, &shutdown);
    futures::stream::iter(ids)
        .map(|id| async move {
            let outcome = enrol_one(enroller, enrolment, id.clone(), shutdown).await;
            (id, outcome)
        })
        .buffer_unordered(enrolment.concurrency.max(1))
        .for_each(|(id, outcome)| {
            let ready = ready.clone();
            async move {
                match outcome {
                    Ok(tls) => {
                        stats.enrolled.fetch_add(1, Ordering::Relaxed);
                        let _ = ready.send(Ready { id, tls: Some(tls) }).await;
                    }
                    Err(EnrolError::Stopped) => {}
                    Err(e) => {
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(device_id = %id, error = %e, "enrolment failed");
                    }
                }
            }
        })
        .await;
    Ok(())
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
    let enrol_stats = Arc::new(EnrolStats::default());
    let mut sessions = JoinSet::new();

    // Screens become ready as their certificates arrive (at once without enrolment).
    let (ready_tx, mut ready_rx) = mpsc::channel::<Ready>(256);
    let mut producer = JoinSet::new();
    let renewer = match config.enrolment.clone() {
        Some(enrolment) => {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(enrolment.concurrency)
                .build()
                .map_err(|e| anyhow::anyhow!("building the http client: {e}"))?;
            let enroller = Arc::new(Enroller::with_client(http, &enrolment.server));
            producer.spawn(enrol_all(
                enroller.clone(),
                enrolment,
                ids,
                ready_tx,
                enrol_stats.clone(),
                shutdown.clone(),
            ));
            Some(enroller)
        }
        None => {
            producer.spawn(async move {
                for id in ids {
                    if ready_tx.send(Ready { id, tls: None }).await.is_err() {
                        break;
                    }
                }
                Ok(())
            });
            None
        }
    };

    let gap = Duration::from_secs(1) / config.connect_rate;
    let mut ramp = tokio::time::interval(gap.max(Duration::from_micros(1)));
    let mut report = tokio::time::interval(config.report_every);
    let mut accepting = true;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = report.tick() => {
                println!(
                    "sim: {}/{} connected, {} enrolled, {} enrolment failures, {} connects, {} connection failures, {} messages published, {} commands answered, {} telemetry batches stored",
                    stats.connected.load(Ordering::Relaxed),
                    config.count,
                    enrol_stats.enrolled.load(Ordering::Relaxed),
                    enrol_stats.failed.load(Ordering::Relaxed),
                    stats.connects.load(Ordering::Relaxed),
                    stats.failures.load(Ordering::Relaxed),
                    stats.published.load(Ordering::Relaxed),
                    stats.commands.load(Ordering::Relaxed),
                    stats.telemetry_stored.load(Ordering::Relaxed),
                );
            }
            next = ready_rx.recv(), if accepting => {
                let Some(ready) = next else {
                    accepting = false;
                    continue;
                };
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = ramp.tick() => {}
                }
                let (tls, renewal) = match ready.tls {
                    Some((key, identity)) => (Some(identity.clone()), Some((key, identity))),
                    None => (None, None),
                };
                let session = DeviceSession::new(
                    SessionConfig {
                        device_id: ready.id.clone(),
                        host: config.host.clone(),
                        port: config.port,
                        heartbeat_every: config.heartbeat_every,
                        metrics_every: config.metrics_every,
                        keep_alive: config.keep_alive,
                        tls,
                    },
                    stats.clone(),
                )
                .with_actions(SimEffects::new(ready.id.clone(), config.behaviour.clone()))
                .with_outbox(outbox_of(&config, &ready.id)?);
                match (renewal, &renewer) {
                    (Some((key, identity)), Some(renewer)) => {
                        let (updates, rx) = watch::channel(identity.clone());
                        let session = session.with_tls_updates(rx);
                        let (renewer, stop, metrics) = (renewer.clone(), shutdown.clone(), metrics.clone());
                        sessions.spawn(async move {
                            let run = session.run(metrics, stop.clone());
                            let renew = keep_renewed(&renewer, &ready.id, &key, identity, None, &updates, &stop);
                            // A refused renewal leaves the session running until the certificate expires.
                            let _ = tokio::join!(run, renew);
                        });
                    }
                    _ => {
                        sessions.spawn(session.run(metrics.clone(), shutdown.clone()));
                    }
                }
            }
        }
    }
    producer.shutdown().await;
    while sessions.join_next().await.is_some() {}
    Ok(())
}
