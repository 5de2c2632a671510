//! The application seam: [`Application::build`] → ports → [`Application::run_until_stopped`].

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use luach_broker::{BrokerMode, Devices, EmbeddedBroker, ExternalBroker, Revoked, TopicRules};
use luach_schemas::{Topic, UpKind};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::auth::{AuthService, Clock, SystemClock};
use crate::commands::Commands;
use crate::config::{Config, redact_url};
use crate::enrolment::{DevicePki, EnrolmentService};
use crate::external_broker::MosquittoFiles;
use crate::ingest::{self, IngestHandle, Writer};
use crate::lease::Lease;
use crate::live::{LiveIo, LiveSink, Rechecker};
use crate::metrics::Metrics;
use crate::relay::AckRelay;
use crate::state::{AppState, Mqtt};
use crate::store;

/// A fully started server: broker listening, store open, background tasks running.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    state: AppState,
    system: store::SystemStore,
    tasks: JoinSet<()>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").finish_non_exhaustive()
    }
}

impl Application {
    /// Opens the store and the device CA, starts the embedded broker and the ingest pipeline,
    /// binds HTTP.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`Application::build`] with a chosen clock for authentication (tests move time by hand).
    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        crate::keys::private_dir(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
        let metrics = Metrics::new();
        let options = config.store_options()?;
        let system = store::open(&options, metrics.clone())
            .await
            .with_context(|| format!("opening store {}", redact_url(&options.url)))?;
        // The embedded broker starts with no connections, so every screen is offline until it
        // says otherwise. Behind an external broker screens stay connected while this process
        // restarts (and other replicas may be serving them): there the sweep takes offline
        // only those that went silent.
        if config.mqtt.mode == BrokerMode::Embedded {
            let reset = system.mark_all_offline().await.context("resetting presence")?;
            tracing::info!(devices_reset = reset, "presence reset (embedded broker)");
        }
        tracing::info!(backend = system.backend(), "store ready");

        // File I/O and, on first start, key generation: off the async runtime.
        let pki_config = config.clone();
        let pki = tokio::task::spawn_blocking(move || DevicePki::open(&pki_config))
            .await
            .context("opening the device CA")?
            .context("opening the device CA (pki.ca_dir)")?;
        let pki = Arc::new(pki);
        let (broker, link) = start_broker(&config, &system, &pki).await?;
        let broker_files = match (&broker, &config.mqtt.external.config_dir) {
            (Mqtt::External(_), Some(dir)) => Some(Arc::new(MosquittoFiles::new(
                &config,
                dir.clone(),
                system.clone(),
                pki.clone(),
            )?)),
            _ => None,
        };
        let redis = config.redis.as_ref().map(|r| r.expose_secret().to_owned());
        let relay = match &redis {
            Some(url) => Some(
                AckRelay::connect(url, metrics.clone())
                    .await
                    .context("connecting to redis for relayed acknowledgements (check `redis`)")?,
            ),
            None => None,
        };
        let commands = Commands::new(
            link.publisher(),
            metrics.clone(),
            config.commands.max_pending_per_tenant,
        )
        .with_relay(relay.clone());
        let publisher = link.publisher();

        let limiter = crate::auth::limiter(&config).await?;
        let auth = AuthService::new(
            system.clone(),
            crate::auth::load_keys(&config)?,
            clock.clone(),
            limiter.clone(),
            config.auth.clone(),
            config.quotas.as_quota(),
        );
        let enrolment = EnrolmentService::new(system.clone(), pki, limiter, clock.clone(), config.enrolment.clone())
            .with_edge(broker.edge().cloned())
            .with_broker_files(broker_files.clone());
        let (live_layer, live) = LiveIo::build(redis.as_deref(), metrics.clone(), auth.clone())
            .await
            .context("starting socket.io (check `redis`)")?;
        let rechecker = Rechecker::new(
            live.clone(),
            auth.clone(),
            std::time::Duration::from_secs(config.live.recheck_secs),
        );

        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let replica = crate::lease::replica_id();
        tracing::info!(replica = %replica, "replica id (holder name of this process's leases)");
        if let Some(files) = broker_files {
            tasks.spawn(files.run(shutdown.clone()));
        }
        if let Some(relay) = relay {
            tasks.spawn(relay.run(commands.clone(), shutdown.clone()));
        }
        let (tx, rx) = mpsc::channel(config.ingest.queue_capacity);
        let log_interval = std::time::Duration::from_secs(config.ingest.bad_payload_log_interval_secs);
        tasks.spawn(ingest::read_link(
            link,
            tx.clone(),
            metrics.clone(),
            log_interval,
            shutdown.clone(),
        ));
        let (live, delivery) = LiveSink::spawn(live, metrics.clone());
        tasks.spawn(async move {
            let _ = delivery.await;
        });
        tasks.spawn(rechecker.run(shutdown.clone()));
        tasks.spawn(
            crate::alerts::AlertEngine::new(
                system.clone(),
                live.clone(),
                metrics.clone(),
                clock.clone(),
                Lease::new(system.clone(), metrics.clone(), "alerts", &replica),
                std::time::Duration::from_secs(config.alerts.eval_secs),
            )
            .run(shutdown.clone()),
        );
        if config.notify.dispatch {
            let senders = crate::notify::Senders::from_config(&config.notify).context("notify: the senders")?;
            tasks.spawn(
                crate::notify::Dispatcher::new(
                    system.clone(),
                    senders,
                    metrics.clone(),
                    clock.clone(),
                    Lease::new(system.clone(), metrics.clone(), "notify", &replica),
                    config.notify.clone(),
                )
                .run(shutdown.clone()),
            );
        }
        let (engine, jobs) = crate::jobs::JobEngine::new(
            system.clone(),
            publisher.clone(),
            auth.clone(),
            live.clone(),
            metrics.clone(),
            clock,
            Lease::new(system.clone(), metrics.clone(), "jobs", &replica),
        );
        tasks.spawn(engine.run(shutdown.clone()));
        let mut writer = Writer::new(
            system.clone(),
            live.clone(),
            commands.clone(),
            metrics.clone(),
            config.offline_after(),
            config.presence.auto_register,
        );
        writer.batch_max = config.ingest.batch_max;
        let bundles = crate::bundle::BundleNotifier::default();
        writer.bundles = Some(bundles.clone());
        writer.jobs = Some(jobs.clone());
        writer.publisher = Some(publisher.clone());
        writer.retention = config.telemetry.retention();
        tasks.spawn(writer.run(rx, shutdown.clone()));
        let compact_every = std::time::Duration::from_secs(config.telemetry.compact_every_secs);
        tasks.spawn(crate::retention::run(
            system.clone(),
            crate::retention::Policy::from_config(&config),
            compact_every,
            Lease::with_term(
                system.clone(),
                metrics.clone(),
                "retention",
                &replica,
                compact_every * 2,
            ),
            shutdown.clone(),
        ));
        tasks.spawn(bundles.clone().run(
            system.clone(),
            publisher,
            auth.clone(),
            metrics.clone(),
            shutdown.clone(),
        ));

        tasks.spawn(crate::audit::checkpoint_task(
            system.clone(),
            options.chain_key.clone(),
            crate::audit::checkpoint_path(&config.data_dir),
            std::time::Duration::from_secs(config.audit.checkpoint_secs),
            metrics.clone(),
            shutdown.clone(),
        ));

        let releases = crate::releases::Releases::open(config.release_dir(), config.releases.trusted_root.as_deref())
            .context("releases.trusted_root")?;
        let listener = TcpListener::bind(config.http.addr)
            .await
            .with_context(|| format!("binding http address {}", config.http.addr))?;
        let state = AppState {
            releases,
            auth,
            proxies: Arc::new(config.trusted_proxies()),
            screenshots: crate::screenshots::Screenshots::new(
                config.screenshot_dir(),
                config.screenshots.keep_per_device,
            ),
            config: Arc::new(config),
            store: system.store(),
            metrics,
            commands,
            jobs,
            ingest: IngestHandle::new(tx),
            broker: Arc::new(broker),
            enrolment,
            bundles,
            live,
        };
        let router = live_layer.apply(crate::api::app(state.clone()));
        Ok(Self {
            listener,
            router,
            state,
            system,
            tasks,
            shutdown,
        })
    }

    /// The bound HTTP address (useful when configured with port 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| self.state.config.http.addr)
    }

    /// The embedded broker's MQTT address (the plain listener's if it runs); `None` with an
    /// external broker.
    pub fn mqtt_addr(&self) -> Option<SocketAddr> {
        self.state.broker.listen_addr()
    }

    /// The embedded broker's mutual-TLS address, if that listener runs.
    pub fn mqtt_tls_addr(&self) -> Option<SocketAddr> {
        self.state.broker.tls_addr()
    }

    /// Cancel this token to stop the server gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The cross-tenant store, for whoever embeds the application (tests seed installations
    /// with it, as the admin CLI does). Request handlers never get it: their state holds only
    /// the scoped [`store::Store`].
    pub fn system(&self) -> &store::SystemStore {
        &self.system
    }

    /// Serves until the shutdown token is cancelled, then stops background tasks.
    pub async fn run_until_stopped(mut self) -> anyhow::Result<()> {
        let http = &self.state.config.http;
        let limits = crate::serve::Limits {
            max_connections: http.max_connections,
            header_read_timeout: std::time::Duration::from_secs(http.header_read_timeout_secs),
        };
        crate::serve::serve(
            self.listener,
            self.router,
            limits,
            self.state.metrics.clone(),
            self.shutdown.clone(),
        )
        .await
        .context("http server failed")?;
        self.shutdown.cancel();
        // Devices on the edge are let go with the rest (an in-process restart, as tests do,
        // then finds the port and the prefixes free).
        self.state.broker.stop();
        while self.tasks.join_next().await.is_some() {}
        Ok(())
    }
}

/// Starts the embedded broker, or connects to the external one (`mqtt.mode`), returning it and
/// the control plane's link to device traffic.
async fn start_broker(
    config: &Config,
    system: &store::SystemStore,
    pki: &Arc<DevicePki>,
) -> anyhow::Result<(Mqtt, luach_broker::LocalLink)> {
    if config.mqtt.mode == BrokerMode::External {
        let external = &config.mqtt.external;
        let identity_config = config.clone();
        let identity_pki = pki.clone();
        let identity = tokio::task::spawn_blocking(move || {
            crate::external_broker::control_plane_identity(&identity_config, &identity_pki)
        })
        .await
        .context("issuing the control plane's broker certificate")??;
        let (broker, link) = ExternalBroker::connect(external, &identity, Topic::ALL_UP_FILTER)
            .await
            .context("connecting to the external mqtt broker (mqtt.external)")?;
        return Ok((Mqtt::External(broker), link));
    }
    let mut mqtt = config.mqtt.clone();
    if mqtt.tls_listener {
        mqtt.tls = Some(pki.broker_files().clone());
    }
    // Enrolments that ended (revoked, superseded) are refused at the broker's edge from the
    // first connection on.
    let revoked = Revoked::default();
    for (serial, prefix) in system
        .refused_certificates(chrono::Utc::now())
        .await
        .context("reading refused device certificates")?
    {
        revoked.insert(&serial);
        revoked.insert_prefix(prefix.as_str());
    }
    let devices = Devices {
        rules: TopicRules::new(UpKind::ALL.map(UpKind::as_str)),
        revoked,
    };
    let (broker, link) = EmbeddedBroker::start(&mqtt, Topic::ALL_UP_FILTER, devices)
        .await
        .context("starting the embedded mqtt broker")?;
    Ok((Mqtt::Embedded(broker), link))
}
