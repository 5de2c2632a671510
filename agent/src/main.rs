//! `luach-agent`: the screen agent (`run`), a fleet simulator (`sim`), offline zmanim (`zmanim`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use luach_agent::identity;
use luach_agent::session::{DeviceSession, SessionConfig, SessionStats};
use luach_agent::sim::{self, SimConfig};
use luach_schemas::DeviceId;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(name = "luach-agent", version, about = "Luach screen agent")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent for this screen.
    Run(RunArgs),
    /// Run N simulated screens, each with its own connection and identity.
    Sim(SimArgs),
    /// Print one civil day's Hebrew date, holidays, parsha, daf yomi and zmanim (offline).
    Zmanim(luach_calendar::ZmanimArgs),
}

/// How to reach the control plane.
#[derive(Debug, Args)]
struct Link {
    /// Control-plane URL, e.g. http://server:8080; the broker address is asked from it.
    #[arg(long, env = "LUACH_SERVER")]
    server: Option<String>,
    /// MQTT broker HOST:PORT; overrides what the server says.
    #[arg(long, env = "LUACH_MQTT")]
    mqtt: Option<String>,
    /// Seconds between heartbeats.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    heartbeat_secs: u64,
    /// Seconds between metrics reports.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86400))]
    metrics_secs: u64,
    /// MQTT keep-alive in seconds; the broker declares the link dead after 1.5× this.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(5..=600))]
    keep_alive_secs: u64,
}

impl Link {
    async fn broker(&self) -> anyhow::Result<(String, u16)> {
        match (&self.mqtt, &self.server) {
            (Some(mqtt), _) => identity::parse_host_port(mqtt).context("--mqtt"),
            (None, Some(server)) => identity::discover_mqtt(server).await,
            (None, None) => anyhow::bail!("give --server URL or --mqtt HOST:PORT"),
        }
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    link: Link,
    /// Where the agent keeps its identity and state.
    #[arg(long, env = "LUACH_STATE_DIR", default_value = "/var/lib/luach-agent")]
    state_dir: PathBuf,
    /// Use this device id instead of the stored one.
    #[arg(long)]
    device_id: Option<DeviceId>,
}

#[derive(Debug, Args)]
struct SimArgs {
    #[command(flatten)]
    link: Link,
    /// Number of simulated screens.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    count: u64,
    /// Device ids are PREFIX00000, PREFIX00001, …; lower-case letters and digits. Random if absent.
    #[arg(long)]
    id_prefix: Option<String>,
    /// New connections per second while ramping up.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..))]
    connect_rate: u32,
    /// Seconds between status lines.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    report_secs: u64,
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn stop_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
            } else {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        t.cancel();
    });
    token
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Zmanim(args) = &cli.command {
        // Pure computation: no runtime work, no logging noise on stdout.
        let out = luach_calendar::run_zmanim_cli(args).context("zmanim")?;
        println!("{out}");
        return Ok(());
    }
    init_tracing();
    match cli.command {
        Command::Zmanim(_) => Ok(()),
        Command::Run(args) => {
            let device_id = match args.device_id {
                Some(id) => id,
                None => identity::load_or_create(&args.state_dir)?,
            };
            let (host, port) = args.link.broker().await?;
            println!("luach-agent: device {device_id}, broker {host}:{port}");
            let shutdown = stop_on_signal();
            let metrics =
                luach_agent::sampler::spawn(Duration::from_secs(args.link.metrics_secs.min(30)), shutdown.clone());
            let session = DeviceSession::new(
                SessionConfig {
                    device_id,
                    host,
                    port,
                    heartbeat_every: Duration::from_secs(args.link.heartbeat_secs),
                    metrics_every: Duration::from_secs(args.link.metrics_secs),
                    keep_alive: Duration::from_secs(args.link.keep_alive_secs),
                },
                std::sync::Arc::new(SessionStats::default()),
            );
            session.run(metrics, shutdown).await;
            Ok(())
        }
        Command::Sim(args) => {
            let (host, port) = args.link.broker().await?;
            let id_prefix = args.id_prefix.unwrap_or_else(sim::random_prefix);
            // Validate the prefix with the longest id it will produce.
            sim::device_id(&id_prefix, args.count as usize).context("--id-prefix")?;
            println!("sim: {} screens as {id_prefix}00000…, broker {host}:{port}", args.count);
            let config = SimConfig {
                count: args.count as usize,
                id_prefix,
                host,
                port,
                heartbeat_every: Duration::from_secs(args.link.heartbeat_secs),
                metrics_every: Duration::from_secs(args.link.metrics_secs),
                keep_alive: Duration::from_secs(args.link.keep_alive_secs),
                connect_rate: args.connect_rate,
                report_every: Duration::from_secs(args.report_secs),
            };
            sim::run(config, stop_on_signal()).await
        }
    }
}
