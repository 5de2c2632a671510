//! `luach-agent`: the screen agent (`run`), a fleet simulator (`sim`), offline zmanim
//! (`zmanim`), the day a screen draws from its stored content (`show`), and one frame of the
//! board as a PNG (`render`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use luach_agent::actions::{Actions, ActionsSetup, Exit, Lifecycle};
use luach_agent::bundle::{BundleStore, Fetcher, RefreshRequests, Refresher, keep_current};
use luach_agent::credentials::{CredentialStore, TlsIdentity};
use luach_agent::enrol::{EnrolError, Enroller};
use luach_agent::identity;
use luach_agent::renew::{RenewalEnd, keep_renewed};
use luach_agent::session::{DeviceSession, SessionConfig, SessionStats};
use luach_agent::sim::{self, SimConfig};
use luach_schemas::DeviceId;
use luach_schemas::messages::BundleNotice;
use tokio::sync::watch;
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
    Zmanim(luach_agent::zmanim::ZmanimArgs),
    /// Print what this screen shows on a day, from its last good content bundle (offline).
    Show(ShowArgs),
    /// Draw one frame of the board as a PNG (offline); without --bundle, a demo synagogue.
    Render(luach_agent::render::RenderArgs),
    /// The screen's service: start DIR/current/luach-agent with the arguments after `--`,
    /// start it again when it ends, and roll a new version back when it fails its health check.
    Supervise(SuperviseArgs),
    /// Make an install directory from this executable (a screen's first install).
    Install(InstallArgs),
}

#[derive(Debug, Args)]
struct SuperviseArgs {
    /// The install directory (made by `luach-agent install`).
    #[arg(long, default_value = "/opt/luach")]
    install_dir: PathBuf,
    /// Seconds a new version has, from its first start, to connect, draw the board and be
    /// heard by the control plane before it is rolled back.
    #[arg(long, default_value_t = luach_agent::update::supervise::DEFAULT_HEALTH_WINDOW.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    health_window_secs: u64,
    /// The agent's arguments, e.g. `-- run --server https://luach.example`.
    #[arg(last = true, required = true)]
    agent: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
struct InstallArgs {
    /// The install directory to make.
    #[arg(long, default_value = "/opt/luach")]
    install_dir: PathBuf,
    /// The release root this screen trusts (`root.pub` from `luach-ota keygen`).
    #[arg(long)]
    trust: PathBuf,
    /// The version this executable is installed as (default: the version it was built as).
    #[arg(long)]
    version: Option<luach_ota::Version>,
}

#[derive(Debug, Args)]
struct ShowArgs {
    /// The agent's state directory (as given to `run`).
    #[arg(long, env = "LUACH_STATE_DIR", default_value = "/var/lib/luach-agent")]
    state_dir: PathBuf,
    /// Civil date, YYYY-MM-DD; default: today at the screen's synagogue.
    #[arg(long)]
    date: Option<chrono::NaiveDate>,
}

/// How to reach the control plane.
#[derive(Debug, Args)]
struct Link {
    /// Control-plane URL, e.g. http://server:8080: enrolment, renewal, and where the broker is.
    #[arg(long, env = "LUACH_SERVER")]
    server: Option<String>,
    /// MQTT broker HOST:PORT (its mutual-TLS listener; the plain one with --plain-mqtt);
    /// overrides what the server says. With TLS the host must be a name in the broker's
    /// certificate (localhost, 127.0.0.1, or one of the server's `mqtt.tls_hostnames`).
    #[arg(long, env = "LUACH_MQTT")]
    mqtt: Option<String>,
    /// Development only: connect to the broker's plain, unauthenticated listener instead of
    /// enrolling and using mutual TLS.
    #[arg(long, env = "LUACH_PLAIN_MQTT")]
    plain_mqtt: bool,
    /// Seconds between heartbeats.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    heartbeat_secs: u64,
    /// Seconds between metrics reports.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86400))]
    metrics_secs: u64,
    /// MQTT keep-alive in seconds; the broker declares the link dead after 1.5× this.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(5..=600))]
    keep_alive_secs: u64,
    /// Bytes of telemetry kept per screen while the control plane cannot be reached; beyond
    /// it the oldest records are dropped (and counted).
    #[arg(long, env = "LUACH_TELEMETRY_BUDGET_BYTES", default_value_t = luach_agent::outbox::DEFAULT_BUDGET_BYTES,
          value_parser = clap::value_parser!(u64).range(luach_agent::outbox::MIN_BUDGET_BYTES..))]
    telemetry_budget_bytes: u64,
}

impl Link {
    /// Settings received from the control plane win over the flags they name.
    fn apply(&mut self, kept: &luach_schemas::params::AgentSettings) {
        self.heartbeat_secs = kept.heartbeat_secs.unwrap_or(self.heartbeat_secs);
        self.metrics_secs = kept.metrics_secs.unwrap_or(self.metrics_secs);
        self.keep_alive_secs = kept.keep_alive_secs.unwrap_or(self.keep_alive_secs);
        self.telemetry_budget_bytes = kept.telemetry_budget_bytes.unwrap_or(self.telemetry_budget_bytes);
    }

    /// The broker address to use, retrying discovery until it answers (or shutdown).
    async fn broker(&self, shutdown: &CancellationToken) -> anyhow::Result<Option<(String, u16)>> {
        if let Some(mqtt) = &self.mqtt {
            return identity::parse_host_port(mqtt).context("--mqtt").map(Some);
        }
        let Some(server) = &self.server else {
            anyhow::bail!("give --server URL or --mqtt HOST:PORT");
        };
        loop {
            match identity::discover(server).await {
                Ok(found) => {
                    let address = if self.plain_mqtt { found.plain } else { found.tls };
                    return address.map(Some).with_context(|| {
                        if self.plain_mqtt {
                            "the server runs no plain MQTT listener (mqtt.plain_listener = false)"
                        } else {
                            "the server runs no mutual-TLS MQTT listener (mqtt.tls_listener = false)"
                        }
                    });
                }
                Err(e) => tracing::warn!(error = format!("{e:#}"), "broker discovery failed; retrying"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(None),
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }

    fn server(&self) -> anyhow::Result<&str> {
        self.server
            .as_deref()
            .context("--server URL is needed to enrol and renew the certificate (or use --plain-mqtt)")
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    link: Link,
    /// Where the agent keeps its identity, key (0600) and certificate.
    #[arg(long, env = "LUACH_STATE_DIR", default_value = "/var/lib/luach-agent")]
    state_dir: PathBuf,
    /// Use this device id instead of the stored one.
    #[arg(long)]
    device_id: Option<DeviceId>,
    /// Enrol with this bulk enrolment token (`le_…`) instead of showing a claim code.
    #[arg(long, env = "LUACH_ENROLMENT_TOKEN", hide_env_values = true)]
    enrolment_token: Option<String>,
    /// The release root updates must be signed under (default: the install directory's
    /// `root.pub`; updates need `luach-agent supervise`).
    #[arg(long, env = "LUACH_OTA_ROOT")]
    ota_root: Option<PathBuf>,
    /// Accept only releases of this channel (default: any).
    #[arg(long, env = "LUACH_OTA_CHANNEL", value_parser = parse_channel)]
    ota_channel: Option<luach_ota::Channel>,
    #[command(flatten)]
    screen: ScreenArgs,
}

fn parse_channel(s: &str) -> Result<luach_ota::Channel, String> {
    luach_ota::Channel::parse(s).map_err(|e| e.to_string())
}

/// How the board is drawn.
#[derive(Debug, Args)]
struct ScreenArgs {
    /// Where the board is drawn: an X11 window, the Linux framebuffer, or nowhere.
    #[arg(long, value_enum, env = "LUACH_DISPLAY_OUTPUT", default_value = "auto")]
    display: luach_agent::display::Output,
    /// X11 only: a window of WIDTHxHEIGHT at the top-left corner instead of the whole screen.
    #[arg(long, value_parser = luach_agent::render::parse_size)]
    window: Option<(u32, u32)>,
    /// Tests and demos only: the board's clock starts at this instant (RFC 3339)…
    #[arg(long, value_parser = luach_agent::render::parse_at)]
    clock_start: Option<chrono::DateTime<chrono::Utc>>,
    /// …and runs this many times as fast as real time (0 stops it).
    #[arg(long, default_value_t = 1.0, requires = "clock_start", value_parser = parse_speed)]
    clock_speed: f64,
    /// Sets the brightness instead of the backlight: run as `sh -c COMMAND luach-agent PERCENT`.
    #[arg(long, env = "LUACH_BRIGHTNESS_COMMAND")]
    brightness_command: Option<String>,
    /// Sets the volume instead of ALSA: `sh -c COMMAND luach-agent PERCENT`.
    #[arg(long, env = "LUACH_VOLUME_COMMAND")]
    volume_command: Option<String>,
    /// Turns the display on or off instead of HDMI-CEC, DPMS or the backlight:
    /// `sh -c COMMAND luach-agent on|off`.
    #[arg(long, env = "LUACH_DISPLAY_POWER_COMMAND")]
    display_power_command: Option<String>,
    /// Restarts the device instead of `systemctl reboot`: `sh -c COMMAND`.
    #[arg(long, env = "LUACH_REBOOT_COMMAND")]
    reboot_command: Option<String>,
    /// Installs a package instead of `apt-get install`: `sh -c COMMAND luach-agent PACKAGE`.
    #[arg(long, env = "LUACH_PACKAGE_COMMAND")]
    package_command: Option<String>,
    /// A package the control plane may have installed on this screen; repeatable (the
    /// environment variable takes a comma-separated list). Nothing else is ever installed.
    #[arg(
        long = "allow-package",
        value_name = "PACKAGE",
        env = "LUACH_ALLOW_PACKAGES",
        value_delimiter = ','
    )]
    allow_packages: Vec<String>,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| (0.0..=100_000.0).contains(v))
        .ok_or_else(|| format!("{s:?} is not a speed from 0 to 100000"))
}

/// The running screen: its thread, and what commands act on.
struct Screen {
    thread: std::thread::JoinHandle<()>,
    latest: luach_agent::screen::LatestFrame,
    platform: std::sync::Arc<dyn luach_agent::platform::Platform>,
    power: luach_agent::settings::PowerOverride,
}

/// Starts the screen thread: the board on the display (or headless), from the stored bundle;
/// finds what the platform can do.
fn start_screen(
    args: &ScreenArgs,
    state_dir: &std::path::Path,
    device_id: &DeviceId,
    stats: &std::sync::Arc<SessionStats>,
    claim_code: &std::sync::Arc<std::sync::Mutex<Option<String>>>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Screen> {
    let surface = luach_agent::display::open(args.display, args.window).context("--display")?;
    let configured = luach_agent::platform::Configured {
        brightness: args.brightness_command.clone(),
        volume: args.volume_command.clone(),
        display_power: args.display_power_command.clone(),
        reboot: args.reboot_command.clone(),
        package: args.package_command.clone(),
        allowed_packages: args.allow_packages.clone(),
    };
    for package in &args.allow_packages {
        if let Some(why) = luach_schemas::params::package_name_problem(package) {
            anyhow::bail!("--allow-package {package:?}: {why}");
        }
    }
    let host = luach_agent::platform::Host::real(surface.as_ref().and_then(|s| s.x_display()));
    let platform = luach_agent::platform::Linux::detect(&configured, &host);
    for line in luach_agent::platform::Platform::describe(&platform) {
        tracing::info!("platform {line}");
    }
    let latest = luach_agent::screen::LatestFrame::default();
    let power = luach_agent::settings::PowerOverride::open(state_dir);
    let platform: std::sync::Arc<dyn luach_agent::platform::Platform> = std::sync::Arc::new(platform);
    let clock = match args.clock_start {
        Some(start) => luach_agent::screen::Clock::simulated(start, args.clock_speed),
        None => luach_agent::screen::Clock::system(),
    };
    let inputs = luach_agent::screen::ScreenInputs {
        state_dir: state_dir.to_owned(),
        device_id: device_id.clone(),
        stats: stats.clone(),
        claim_code: claim_code.clone(),
        latest: latest.clone(),
        platform: platform.clone(),
        power: power.clone(),
    };
    Ok(Screen {
        thread: luach_agent::screen::spawn(surface, clock, inputs, shutdown.clone())?,
        latest,
        platform,
        power,
    })
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
    /// Enrol every screen with this bulk enrolment token and connect over mutual TLS
    /// (needs --server). Without it, --plain-mqtt is required.
    #[arg(long, env = "LUACH_ENROLMENT_TOKEN", hide_env_values = true)]
    enrolment_token: Option<String>,
    /// Enrolment requests in flight at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
    enrol_concurrency: u64,
    /// Keep each screen's key, certificate and telemetry queue under DIR/<device id>/ and
    /// reuse them next time.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Make this share (0–1) of commands of a kind fail, e.g. `--fail reboot=0.3`; repeatable.
    #[arg(long = "fail", value_name = "KIND=RATE")]
    fail: Vec<String>,
    /// Make commands of a kind take this long, e.g. `--delay-ms reboot=2000`; repeatable.
    #[arg(long = "delay-ms", value_name = "KIND=MS")]
    delay_ms: Vec<String>,
    /// Append every effect a simulated screen applies to FILE, one JSON line each
    /// (`{"device", "command_id", "action"}`).
    #[arg(long, value_name = "FILE")]
    effects_log: Option<PathBuf>,
    /// Carry out `update` commands for releases signed under this root (`root.pub`): check
    /// the metadata, download and check the artifact, then report the new version. Without
    /// it, updates are answered `unsupported`. Needs --server.
    #[arg(long, value_name = "ROOT.pub")]
    ota_root: Option<PathBuf>,
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use tracing_subscriber::layer::{Layer, SubscriberExt};
    use tracing_subscriber::util::SubscriberInitExt;
    // The console shows what the filter lets through; the `diagnostics` command's recent lines
    // keep INFO and above either way.
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter),
        )
        .with(luach_agent::diagnostics::RecentLog)
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
    // Pure computations: no runtime work, no logging noise on stdout.
    match &cli.command {
        Command::Zmanim(args) => {
            let out = luach_agent::zmanim::run(args).context("zmanim")?;
            println!("{out}");
            return Ok(());
        }
        Command::Show(args) => return show(args),
        Command::Render(args) => return luach_agent::render::run(args).context("render"),
        _ => {}
    }
    init_tracing();
    luach_agent::install_crypto_provider();
    match cli.command {
        Command::Zmanim(_) | Command::Show(_) | Command::Render(_) => Ok(()),
        Command::Install(args) => install(&args),
        Command::Supervise(args) => supervise(args).await,
        Command::Run(args) => run(args).await,
        Command::Sim(args) => run_sim(args).await,
    }
}

fn session_config(
    link: &Link,
    device_id: DeviceId,
    host: String,
    port: u16,
    tls: Option<TlsIdentity>,
) -> SessionConfig {
    SessionConfig {
        device_id,
        host,
        port,
        heartbeat_every: Duration::from_secs(link.heartbeat_secs),
        metrics_every: Duration::from_secs(link.metrics_secs),
        keep_alive: Duration::from_secs(link.keep_alive_secs),
        tls,
    }
}

/// `luach-agent show`: the day this screen draws, from its stored bundle.
fn show(args: &ShowArgs) -> anyhow::Result<()> {
    let device_id = identity::load(&args.state_dir)?;
    let stored = BundleStore::new(&args.state_dir, device_id)
        .load()
        .context("this screen has no content bundle yet")?;
    let date = args.date.unwrap_or_else(|| stored.bundle.today(chrono::Utc::now()));
    /// The day as shown, with the bundle it was computed from.
    #[derive(serde::Serialize)]
    struct Shown {
        #[serde(flatten)]
        day: luach_content::bundle::ScreenDay,
        bundle: String,
    }
    let day = stored.bundle.screen_day(date).context("computing the day")?;
    let shown = Shown {
        day,
        bundle: stored.sha256,
    };
    println!("{}", serde_json::to_string_pretty(&shown)?);
    Ok(())
}

/// Fetches announced bundles in the background; the session passes notices to it, and
/// `refresh_content` asks through `refreshes`.
fn spawn_bundles(
    server: Option<&str>,
    state_dir: &std::path::Path,
    device_id: &DeviceId,
    refreshes: RefreshRequests,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<watch::Sender<Option<BundleNotice>>>> {
    let Some(server) = server else {
        tracing::warn!("no --server: content bundles are not fetched");
        return Ok(None);
    };
    let fetcher = Fetcher::new(server, BundleStore::new(state_dir, device_id.clone()))?;
    let (notices, rx) = watch::channel(None);
    let (current, _) = watch::channel(None);
    tokio::spawn(keep_current(fetcher, rx, current, refreshes, shutdown.clone()));
    Ok(Some(notices))
}

/// What a screen shows while it waits to be claimed (on stdout, one line a test can read).
fn show_claim_code(code: &str, expires_at: chrono::DateTime<chrono::Utc>) {
    println!("claim code: {code}");
    println!("luach-agent: claim this screen with the code before {expires_at} (POST /api/v1/enrolment/claims)");
}

async fn wait_or_stop(shutdown: &CancellationToken, delay: Duration) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(delay) => true,
    }
}

/// `luach-agent run`: enrol if needed, then keep one mutual-TLS session and the certificate
/// current; when renewal is refused, keep going until the certificate expires, then enrol again
/// with a new key.
async fn run(mut args: RunArgs) -> anyhow::Result<()> {
    use luach_agent::update::Fault;
    match Fault::injected() {
        Some(Fault::Exit) => anyhow::bail!("test fault: this version exits at start"),
        Some(Fault::Hang) => {
            tracing::warn!("test fault: this version hangs without connecting");
            stop_on_signal().cancelled().await;
            return Ok(());
        }
        Some(Fault::Offline) => {
            tracing::warn!("test fault: this version cannot reach the control plane");
            args.link.server = Some("http://127.0.0.1:9".into());
            args.link.mqtt = None;
        }
        None => {}
    }
    let device_id = match args.device_id.clone() {
        Some(id) => id,
        None => identity::load_or_create(&args.state_dir)?,
    };
    let kept = luach_agent::settings::load_settings(&args.state_dir);
    if kept != luach_schemas::params::AgentSettings::default() {
        println!(
            "luach-agent: settings from the control plane: {}",
            serde_json::to_string(&kept).unwrap_or_default()
        );
        args.link.apply(&kept);
    }
    let shutdown = stop_on_signal();
    let metrics = luach_agent::sampler::spawn(Duration::from_secs(args.link.metrics_secs.min(30)), shutdown.clone());
    let stats = std::sync::Arc::new(SessionStats::default());
    let claim_code = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let screen = start_screen(
        &args.screen,
        &args.state_dir,
        &device_id,
        &stats,
        &claim_code,
        &shutdown,
    )?;
    let lifecycle = Lifecycle::new(shutdown.clone());
    let updater = updater(&args);
    if let Err(why) = &updater {
        tracing::info!("{why}");
    }
    let (report_tx, reports) = tokio::sync::mpsc::unbounded_channel();
    if let Ok(updater) = &updater {
        let health = luach_agent::update::trial::Health {
            stats: stats.clone(),
            latest: screen.latest.clone(),
        };
        let running = luach_ota::Version::parse(luach_agent::sampler::agent_version())?;
        tokio::spawn(luach_agent::update::trial::watch(
            updater.layout().clone(),
            running,
            health,
            report_tx,
            shutdown.clone(),
        ));
    }
    let (refresher, refreshes) = Refresher::new();
    let has_server = args.link.server.is_some();
    let platform = screen.platform.clone();
    let actions = Actions::new(ActionsSetup {
        platform: screen.platform,
        latest: screen.latest,
        server: args.link.server.clone(),
        refresher: has_server.then_some(refresher),
        power: screen.power,
        state_dir: args.state_dir.clone(),
        lifecycle: lifecycle.clone(),
        updater,
    })?;
    let shared = Shared {
        stats,
        claim_code,
        metrics,
        actions,
        refreshes,
        reports: Some(reports),
    };
    let result = connect(args, device_id, shared, &shutdown).await;
    shutdown.cancel();
    let _ = screen.thread.join();
    match lifecycle.requested() {
        None => result,
        Some(Exit::Restart) => restart_in_place(),
        Some(Exit::Switched) => {
            println!("luach-agent: a new version is switched in; the supervisor starts it");
            std::process::exit(luach_agent::update::EXIT_SWITCHED)
        }
        Some(Exit::Reboot) => match tokio::task::spawn_blocking(move || platform.reboot()).await {
            Ok(Ok(())) => {
                println!("luach-agent: the device is restarting");
                Ok(())
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the device could not be restarted; restarting the agent instead");
                restart_in_place()
            }
            Err(e) => {
                tracing::error!(error = %e, "the reboot task failed; restarting the agent instead");
                restart_in_place()
            }
        },
    }
}

/// `luach-agent install`: this executable becomes the first slot of a new install directory.
fn install(args: &InstallArgs) -> anyhow::Result<()> {
    let layout = luach_agent::update::Layout::new(&args.install_dir);
    if layout.version(luach_agent::update::layout::Link::Current)?.is_some() {
        anyhow::bail!(
            "{} is installed already; later versions come as signed updates",
            args.install_dir.display()
        );
    }
    luach_ota::TrustedRoot::from_file(&args.trust).context("--trust")?;
    let version = match &args.version {
        Some(v) => v.clone(),
        None => luach_ota::Version::parse(luach_agent::sampler::AGENT_VERSION)?,
    };
    let exe = std::env::current_exe().context("finding this executable")?;
    layout
        .install_first(&exe, &version, Some(&args.trust))
        .with_context(|| format!("installing into {}", args.install_dir.display()))?;
    println!(
        "luach-agent {version} installed in {}; run `{} supervise --install-dir {} -- run …`",
        args.install_dir.display(),
        layout.supervisor_binary().display(),
        args.install_dir.display()
    );
    Ok(())
}

/// `luach-agent supervise`: see [`luach_agent::update::supervise`].
async fn supervise(args: SuperviseArgs) -> anyhow::Result<()> {
    let supervisor = luach_agent::update::supervise::Supervisor {
        layout: luach_agent::update::Layout::new(&args.install_dir),
        args: args.agent,
        health_window: Duration::from_secs(args.health_window_secs),
    };
    if supervisor
        .layout
        .version(luach_agent::update::layout::Link::Current)?
        .is_none()
    {
        anyhow::bail!(
            "{} has no current version; make it with `luach-agent install`",
            args.install_dir.display()
        );
    }
    supervisor.run(stop_on_signal()).await.context("supervising the agent")
}

/// The updater of an agent started by its supervisor, or why there is none.
fn updater(args: &RunArgs) -> Result<luach_agent::update::Updater, String> {
    let Some(dir) = std::env::var_os(luach_agent::update::INSTALL_DIR_ENV) else {
        return Err(luach_agent::update::UpdateError::NotSupervised.to_string());
    };
    let server = args
        .link
        .server
        .clone()
        .ok_or_else(|| "updates need --server (artifacts come from the control plane)".to_owned())?;
    let running = luach_ota::Version::parse(luach_agent::sampler::agent_version()).map_err(|e| e.to_string())?;
    luach_agent::update::Updater::open(luach_agent::update::install::UpdaterSetup {
        install_dir: PathBuf::from(dir),
        trust: args.ota_root.clone(),
        server,
        running,
        channel: args.ota_channel.clone(),
        fixed_now: None,
    })
    .map_err(|e| format!("updates are off: {e}"))
}

/// Starts the agent again in this process, with the same arguments (`exec`); returns only
/// when that fails.
fn restart_in_place() -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding the agent's executable")?;
    println!("luach-agent: restarting");
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let err = std::process::Command::new(&exe)
            .args(std::env::args_os().skip(1))
            .exec();
        Err(anyhow::anyhow!("restarting {}: {err}", exe.display()))
    }
    #[cfg(not(unix))]
    {
        anyhow::bail!("restarting {} in place needs a Unix system", exe.display())
    }
}

/// The link half of `run`: enrolment, session, renewal.
/// What the link half of `run` shares with the screen.
struct Shared {
    stats: std::sync::Arc<SessionStats>,
    /// The claim code on screen while the screen waits to be enrolled.
    claim_code: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    metrics: watch::Receiver<luach_schemas::messages::Metrics>,
    actions: Actions,
    refreshes: RefreshRequests,
    /// Outcomes of updates, answered by the session.
    reports: Option<tokio::sync::mpsc::UnboundedReceiver<luach_agent::update::trial::Report>>,
}

async fn connect(
    args: RunArgs,
    device_id: DeviceId,
    shared: Shared,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let Shared {
        stats,
        claim_code,
        metrics,
        actions,
        refreshes,
        mut reports,
    } = shared;
    let shutdown = shutdown.clone();
    // Command ids seen by every session of this screen, kept across restarts.
    let seen = luach_agent::seen::SeenCommands::open(&args.state_dir);
    // Telemetry waiting to be stored, kept across restarts.
    let outbox = luach_agent::outbox::Outbox::open(
        &args.state_dir.join("telemetry"),
        luach_agent::outbox::OutboxConfig {
            budget_bytes: args.link.telemetry_budget_bytes,
            sync: true,
        },
    )
    .context("opening the telemetry queue")?;
    outbox.push(
        chrono::Utc::now(),
        luach_schemas::messages::TelemetryData::Event {
            name: "agent_started".into(),
            detail: Some(luach_agent::sampler::agent_version().into()),
        },
    );
    let show = |code: &str, expires_at: chrono::DateTime<chrono::Utc>| {
        show_claim_code(code, expires_at);
        if let Ok(mut shown) = claim_code.lock() {
            *shown = Some(code.to_owned());
        }
    };
    let notices = spawn_bundles(
        args.link.server.as_deref(),
        &args.state_dir,
        &device_id,
        refreshes,
        &shutdown,
    )?;
    if args.link.plain_mqtt {
        let Some((host, port)) = args.link.broker(&shutdown).await? else {
            return Ok(());
        };
        println!("luach-agent: device {device_id}, broker {host}:{port} (plain TCP, development)");
        let config = session_config(&args.link, device_id, host, port, None);
        let mut session = DeviceSession::new(config, stats)
            .with_actions(actions)
            .with_seen(seen)
            .with_outbox(outbox);
        if let Some(notices) = notices {
            session = session.with_bundle_notices(notices);
        }
        if let Some(reports) = reports {
            session = session.with_reports(reports);
        }
        session.run(metrics, shutdown).await;
        return Ok(());
    }
    let enroller = Enroller::new(args.link.server()?)?;
    let store = CredentialStore::new(&args.state_dir);
    loop {
        let key = store.key()?;
        let identity = match store.identity(&key)? {
            Some(identity) => identity,
            None => {
                println!("luach-agent: device {device_id} is not enrolled yet");
                let issued = match &args.enrolment_token {
                    Some(token) => enroller.enrol_with_token(&device_id, &key, token, &shutdown).await,
                    None => {
                        enroller
                            .enrol_with_claim_code(&device_id, &key, &store, &show, &shutdown)
                            .await
                    }
                };
                match issued {
                    Ok(issued) => {
                        store.save_identity(&issued.identity)?;
                        if let Ok(mut shown) = claim_code.lock() {
                            *shown = None;
                        }
                        println!("luach-agent: device {device_id} enrolled");
                        issued.identity
                    }
                    Err(EnrolError::Stopped) => return Ok(()),
                    Err(e) => {
                        tracing::error!(error = format!("{e:#}"), "enrolment failed; trying again in a minute");
                        if !wait_or_stop(&shutdown, Duration::from_secs(60)).await {
                            return Ok(());
                        }
                        continue;
                    }
                }
            }
        };
        let Some((host, port)) = args.link.broker(&shutdown).await? else {
            return Ok(());
        };
        println!("luach-agent: device {device_id}, broker {host}:{port} (mutual TLS)");
        let (updates, rx) = watch::channel(identity.clone());
        let session_stop = shutdown.child_token();
        let config = session_config(&args.link, device_id.clone(), host, port, Some(identity.clone()));
        let mut session = DeviceSession::new(config, stats.clone())
            .with_tls_updates(rx)
            .with_actions(actions.clone())
            .with_seen(seen.clone())
            .with_outbox(outbox.clone());
        if let Some(notices) = &notices {
            session = session.with_bundle_notices(notices.clone());
        }
        if let Some(reports) = reports.take() {
            session = session.with_reports(reports);
        }
        let running = tokio::spawn(session.run(metrics.clone(), session_stop.clone()));
        let end = keep_renewed(&enroller, &device_id, &key, identity, Some(&store), &updates, &shutdown).await;
        if let RenewalEnd::Refused { not_after } = end {
            let left = (not_after - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO);
            println!(
                "luach-agent: the control plane no longer renews this device's certificate; enrolling again at {not_after}"
            );
            if wait_or_stop(&shutdown, left).await {
                session_stop.cancel();
                let _ = running.await;
                store.discard_identity()?;
                continue;
            }
        }
        session_stop.cancel();
        let _ = running.await;
        return Ok(());
    }
}

async fn run_sim(args: SimArgs) -> anyhow::Result<()> {
    let shutdown = stop_on_signal();
    let enrolment = match (&args.enrolment_token, args.link.plain_mqtt) {
        (Some(token), false) => Some(sim::Enrolment {
            server: args.link.server()?.to_owned(),
            token: token.clone(),
            concurrency: usize::try_from(args.enrol_concurrency).unwrap_or(16),
            state_dir: args.state_dir.clone(),
        }),
        (None, true) => None,
        (Some(_), true) => anyhow::bail!("--enrolment-token and --plain-mqtt exclude each other"),
        (None, false) => anyhow::bail!(
            "give --enrolment-token (screens enrol and use mutual TLS) or --plain-mqtt (development listener)"
        ),
    };
    let Some((host, port)) = args.link.broker(&shutdown).await? else {
        return Ok(());
    };
    let id_prefix = args.id_prefix.unwrap_or_else(sim::random_prefix);
    // Validate the prefix with the longest id it will produce.
    sim::device_id(&id_prefix, args.count as usize).context("--id-prefix")?;
    let mode = if enrolment.is_some() { "mutual TLS" } else { "plain TCP" };
    println!(
        "sim: {} screens as {id_prefix}00000…, broker {host}:{port} ({mode})",
        args.count
    );
    let mut behaviour = luach_agent::simfx::SimBehaviour::new(
        luach_agent::simfx::parse_pairs(&args.fail, "--fail")?,
        luach_agent::simfx::parse_pairs::<u64>(&args.delay_ms, "--delay-ms")?
            .into_iter()
            .map(|(k, ms)| (k, Duration::from_millis(ms)))
            .collect(),
        args.effects_log.as_deref(),
    )?;
    if let Some(root) = &args.ota_root {
        let server = (args.link.server.as_deref())
            .context("--ota-root needs --server URL (artifacts are downloaded from it)")?;
        behaviour = behaviour.with_updates(luach_agent::simfx::SimUpdates::new(root, server)?);
    }
    let config = SimConfig {
        count: args.count as usize,
        id_prefix,
        host,
        port,
        enrolment,
        heartbeat_every: Duration::from_secs(args.link.heartbeat_secs),
        metrics_every: Duration::from_secs(args.link.metrics_secs),
        keep_alive: Duration::from_secs(args.link.keep_alive_secs),
        connect_rate: args.connect_rate,
        report_every: Duration::from_secs(args.report_secs),
        state_dir: args.state_dir.clone(),
        telemetry_budget: args.link.telemetry_budget_bytes,
        behaviour: std::sync::Arc::new(behaviour),
    };
    sim::run(config, shutdown).await
}
