//! `luach-bench`: fleet benchmark (a measurement, not a test).
//!
//! The default fleet mode (`restart.rs`) enrols N simulated screens (`luach-agent sim`, its own
//! process) once, restarts `luach-server` on the same data, and times every screen connecting
//! at once over mutual TLS through the connection edge until the REST API shows all N online;
//! then it measures stored messages per second, the server's RSS and CPU. Then the same
//! screens, with the same certificates, connect to a private Mosquitto with mutual TLS on the
//! same machine, and the same broker-level figures are reported (all N connected, messages per
//! second delivered to one QoS 1 subscriber, RSS and CPU), with Luach/Mosquitto ratios.
//! `--plain` measures the plain development listeners instead (no TLS, no restart).
//!
//! With `--plain --rest`, REST latency is measured while the screens report and again after
//! they stopped. `--quota` measures instead whether one tenant driving ten times its API quota
//! slows another tenant down (`quota.rs`); `--board` measures the board on a screen against
//! Chromium showing an HTML board (`board.rs`).
//!
//! ```text
//! cargo build --release --bins && target/release/luach-bench --count 1000
//! target/release/luach-bench --count 10000 --json
//! target/release/luach-bench --count 10000 --json --broker external
//! target/release/luach-bench --plain --count 1000 --rest
//! target/release/luach-bench --quota
//! target/release/luach-bench --jobs --count 1000
//! target/release/luach-bench --telemetry --count 10000 --metrics-secs 1 --window-secs 120
//! target/release/luach-bench --rollout --count 1000 --artifact-mb 20
//! target/release/luach-bench --notify --messages 10000 --count 10000 --window-secs 60
//! ```

mod board;
mod jobs;
mod notify;
mod quota;
mod restart;
mod rollout;
mod telemetry;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use luach_tests::{Api, free_port};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

#[derive(Debug, Clone, Parser)]
#[command(about = "Luach fleet benchmark, with Mosquitto on the same machine as the yardstick")]
struct Args {
    /// Simulated screens.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Heartbeat interval of each screen, seconds.
    #[arg(long, default_value_t = 5)]
    heartbeat_secs: u64,
    /// Metrics interval of each screen, seconds.
    #[arg(long, default_value_t = 10)]
    metrics_secs: u64,
    /// Steady-state measurement window, seconds.
    #[arg(long, default_value_t = 30)]
    window_secs: u64,
    /// Connections opened per second by the simulator.
    #[arg(long, default_value_t = 2000)]
    connect_rate: u32,
    /// Directory holding luach-server and luach-agent (default: beside this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Skip the Mosquitto half.
    #[arg(long)]
    no_mosquitto: bool,
    /// Fleet mode over the plain development listeners (no TLS, no enrolment, no restart), as
    /// measured before the connection edge. Without it the fleet enrols, the server restarts,
    /// and every screen connects over mutual TLS (against Mosquitto with mutual TLS).
    #[arg(long)]
    plain: bool,
    /// The broker measured in the mutual-TLS fleet mode: the embedded one behind the
    /// connection edge, or an external Mosquitto configured by `luach-server broker-config`.
    #[arg(long, value_enum, default_value_t = BrokerKind::Embedded)]
    broker: BrokerKind,
    /// Also print the fleet figures as one JSON object on the last line.
    #[arg(long)]
    json: bool,
    /// Keep the server and simulator logs (their directory is printed).
    #[arg(long)]
    keep_logs: bool,
    /// Also measure REST latency (`luach-load`, its own process) while the screens report,
    /// and again on the same server and data after they stopped (the peer of the same run).
    #[arg(long)]
    rest: bool,
    /// REST requests per second offered by `luach-load` with `--rest` (and by the quiet
    /// tenant with `--quota`).
    #[arg(long, default_value_t = 100.0)]
    rest_rate: f64,
    /// Instead of the fleet: one tenant driving ten times its API quota beside another
    /// (see `quota.rs`); no screens.
    #[arg(long)]
    quota: bool,
    /// The noisy tenant's quota with `--quota`, API requests per minute.
    #[arg(long, default_value_t = 600)]
    quota_rpm: u64,
    /// Instead of the fleet: the board on a screen (render times; `luach-agent run` on a
    /// private Xvfb against Chromium showing an HTML board; see `board.rs`).
    #[arg(long)]
    board: bool,
    /// Instead of the fleet: batch commands to every screen as jobs, against Mosquitto plus a
    /// bare controller (see `jobs.rs`).
    #[arg(long)]
    jobs: bool,
    /// Batches measured with `--jobs`.
    #[arg(long, default_value_t = 5)]
    rounds: u64,
    /// With `--jobs`: then restart the server (and Mosquitto) under the connected screens and
    /// time their reconnection and the first batch after it.
    #[arg(long)]
    storm: bool,
    /// Internal: run as the bare controller against Mosquitto on this port (`--jobs` starts it).
    #[arg(long, hide = true)]
    bare_controller: Option<u16>,
    /// Instead of the fleet: telemetry stored end to end, against Mosquitto plus a bare
    /// controller (see `telemetry.rs`).
    #[arg(long)]
    telemetry: bool,
    /// Internal: run as the bare telemetry controller against Mosquitto on this port.
    #[arg(long, hide = true)]
    bare_telemetry: Option<u16>,
    /// Instead of the fleet: a signed release rolled out to every screen as an update job,
    /// against nginx plus a bare downloader (see `rollout.rs`).
    #[arg(long)]
    rollout: bool,
    /// Size of the release's artifact with `--rollout`, MB.
    #[arg(long, default_value_t = 20)]
    artifact_mb: u64,
    /// Screens downloading at once with `--rollout` (the job's concurrency).
    #[arg(long, default_value_t = 100)]
    rollout_concurrency: u64,
    /// Screens started per minute at most with `--rollout` (0: no limit).
    #[arg(long, default_value_t = 0)]
    rollout_rate: u64,
    /// Internal: download this URL `--count` times (`--rollout` starts it).
    #[arg(long, hide = true)]
    bare_downloads: Option<String>,
    /// Instead of the fleet: webhook messages sent from the notification outbox against bare
    /// POSTs, and the alert evaluator's cost with 50 rules over `--count` screens (see
    /// `notify.rs`).
    #[arg(long)]
    notify: bool,
    /// Webhook messages queued with `--notify`.
    #[arg(long, default_value_t = 10_000)]
    messages: u64,
    /// Internal: run as the webhook receiver on this port (`--notify` starts it).
    #[arg(long, hide = true)]
    webhook_sink: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BrokerKind {
    Embedded,
    External,
}

/// CPU seconds (user + system) and RSS bytes of a process, from /proc.
fn proc_usage(pid: u32) -> anyhow::Result<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_comm = stat.rsplit_once(") ").map(|(_, s)| s).context("bad /proc stat")?;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = 100.0; // USER_HZ on Linux
    let utime: f64 = fields.get(11).context("utime")?.parse()?;
    let stime: f64 = fields.get(12).context("stime")?.parse()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .context("VmRSS")?
        .parse()?;
    Ok(((utime + stime) / ticks, rss_kb * 1024))
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Debug, Default, Clone)]
struct Figures {
    connect_secs: f64,
    msgs_per_sec: f64,
    cpu_percent: f64,
    rss_bytes: u64,
    rss_per_conn: f64,
    /// `luach-load` summaries: while the screens report, and after they stopped.
    rest: Option<(serde_json::Value, serde_json::Value)>,
}

/// The REST mix of `--rest`: listing and reading screens, editing one, listing plaques.
const REST_MIX: &str = "4:GET:/api/v1/devices?limit=50,4:GET:/api/v1/devices/{device},\
                        1:PATCH:/api/v1/devices/{device},1:GET:/api/v1/memorials";

/// Runs `luach-load` (a separate process) against `base` with `args`'s REST mix and rate, the
/// first 100 simulated screens as `{device}`, and returns its JSON summary.
fn rest_load(bin: &Path, args: &Args, base: &str, token: &str, label: &str) -> anyhow::Result<serde_json::Value> {
    let devices: Vec<String> = (0..args.count.min(100)).map(|i| format!("bench{i:05}")).collect();
    load(
        bin,
        &Load {
            base,
            token,
            rate: args.rest_rate,
            secs: args.window_secs,
            mix: REST_MIX,
            devices: &devices,
            label,
        },
    )
}

/// One `luach-load` run.
struct Load<'a> {
    base: &'a str,
    token: &'a str,
    rate: f64,
    secs: u64,
    mix: &'a str,
    devices: &'a [String],
    label: &'a str,
}

/// Runs `luach-load` (its own process) and returns its JSON summary.
fn load(bin: &Path, run: &Load<'_>) -> anyhow::Result<serde_json::Value> {
    let out = Command::new(bin.join("luach-load"))
        .args(["--base", run.base, "--rate", &run.rate.to_string()])
        .args(["--secs", &run.secs.to_string(), "--concurrency", "32"])
        .args([
            "--mix",
            run.mix,
            "--devices",
            &run.devices.join(","),
            "--label",
            run.label,
        ])
        .env("LUACH_LOAD_TOKEN", run.token)
        .stderr(Stdio::inherit())
        .output()
        .context("running luach-load")?;
    if !out.status.success() {
        bail!("luach-load failed");
    }
    serde_json::from_slice(&out.stdout).context("luach-load summary")
}

fn sim(bin: &Path, args: &Args, link: &[&str], prefix: &str, log: &Path) -> anyhow::Result<Killed> {
    let child = Command::new(bin.join("luach-agent"))
        .arg("sim")
        .args(link)
        .args(["--count", &args.count.to_string(), "--id-prefix", prefix])
        .args(["--heartbeat-secs", &args.heartbeat_secs.to_string()])
        .args(["--metrics-secs", &args.metrics_secs.to_string()])
        .args([
            "--connect-rate",
            &args.connect_rate.to_string(),
            "--report-secs",
            "3600",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()
        .context("starting luach-agent sim")?;
    Ok(Killed(child))
}

/// The simulator as `mosq…` screens on the private Mosquitto at `port` (the peer of every mode).
fn mosquitto_sim(bin: &Path, args: &Args, port: u16, dir: &Path) -> anyhow::Result<Killed> {
    sim(
        bin,
        args,
        &["--mqtt", &format!("127.0.0.1:{port}"), "--plain-mqtt"],
        "mosq",
        &dir.join("sim-mosquitto.log"),
    )
}

async fn stored_total(api: &Api) -> anyhow::Result<f64> {
    api.counter("luach_ingest_messages_stored_total")
        .await
        .context("stored counter missing")
}

/// Starts `luach-server serve` on `dir` (plain listener on, logs to `dir/server.log`) with the
/// extra environment `env`, and waits until it is ready; returns it and its HTTP base URL.
async fn start_server(bin: &Path, dir: &Path, env: &[(&str, &str)]) -> anyhow::Result<(Killed, String)> {
    start_server_at(bin, dir, env, (free_port(), free_port())).await
}

/// [`start_server`] on given HTTP and plain MQTT ports (a restart where screens expect it);
/// the log is appended to.
async fn start_server_at(
    bin: &Path,
    dir: &Path,
    env: &[(&str, &str)],
    (http, mqtt): (u16, u16),
) -> anyhow::Result<(Killed, String)> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))?;
    let server = Command::new(bin.join("luach-server"))
        .args([
            "serve",
            "--http-addr",
            &format!("127.0.0.1:{http}"),
            "--mqtt-addr",
            &format!("127.0.0.1:{mqtt}"),
            "--mqtt-tls-addr",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .arg("--data-dir")
        .arg(dir)
        .args(["--offline-after", "600"])
        .env("LUACH_MQTT__PLAIN_LISTENER", "true")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting luach-server")?;
    let server = Killed(server);
    let base = format!("http://127.0.0.1:{http}");
    let probe = Api::new(base.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    while probe.get("/readyz").await.0 != 200 {
        if Instant::now() > deadline {
            bail!("luach-server not ready (log: {})", dir.join("server.log").display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((server, base))
}

/// `luach-server` (a tenant admin seeded, no API quota) and `luach-agent sim` screens
/// `bench…` on its plain listener, once all are online.
struct LuachFleet {
    server: Killed,
    sim: Killed,
    api: Api,
    token: String,
    /// RSS of the server before the screens connected.
    rss_idle: u64,
    /// From starting the simulator to every screen online (REST).
    online_secs: f64,
}

/// The environment of the fleet's server: latency is measured here, not the tenant's API
/// quota (see `--quota`).
const FLEET_ENV: [(&str, &str); 1] = [("LUACH_QUOTAS__API_REQUESTS_PER_MINUTE", "0")];

async fn luach_fleet(bin: &Path, args: &Args, dir: &Path) -> anyhow::Result<LuachFleet> {
    luach_fleet_at(bin, args, dir, (free_port(), free_port())).await
}

/// [`luach_fleet`] with the server on given HTTP and MQTT ports.
async fn luach_fleet_at(bin: &Path, args: &Args, dir: &Path, ports: (u16, u16)) -> anyhow::Result<LuachFleet> {
    let token = luach_tests::seed_tenant_admin(dir, &[]);
    let (server, base) = start_server_at(bin, dir, &FLEET_ENV, ports).await?;
    let api = Api::new(base).with_token(&token);
    let (_, rss_idle) = proc_usage(server.0.id())?;
    let started = Instant::now();
    // The plain listener, like mosquitto's: the comparisons are about the broker and ingest,
    // not TLS (enrolment over mutual TLS is measured in BENCHMARKS.md separately).
    let sim = sim(
        bin,
        args,
        &["--server", &api.base, "--plain-mqtt"],
        "bench",
        &dir.join("sim-luach.log"),
    )?;
    wait_online(&api, args.count, Duration::from_secs(900)).await?;
    Ok(LuachFleet {
        server,
        sim,
        api,
        token,
        rss_idle,
        online_secs: started.elapsed().as_secs_f64(),
    })
}

async fn bench_luach(bin: &Path, args: &Args, dir: &Path) -> anyhow::Result<Figures> {
    let LuachFleet {
        server,
        sim: sim_luach,
        api,
        token,
        rss_idle,
        online_secs: connect_secs,
    } = luach_fleet(bin, args, dir).await?;
    let mut figures = luach_window(server.0.id(), &api, args, connect_secs, rss_idle).await?;
    figures.rest = if args.rest {
        let loaded = rest_load(bin, args, &api.base, &token, "screens reporting")?;
        drop(sim_luach);
        // Same server, same data, no device traffic: wait until every screen is offline and
        // the last wills are stored.
        let deadline = Instant::now() + Duration::from_secs(300);
        while api.count("online").await != Some(0) {
            if Instant::now() > deadline {
                bail!("screens still online after the simulator stopped");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle = rest_load(bin, args, &api.base, &token, "no device traffic")?;
        Some((loaded, idle))
    } else {
        None
    };
    Ok(figures)
}

/// Luach's figures (server process `pid`): lets the first burst of hellos settle, then measures
/// a steady window of stored messages, CPU and RSS.
async fn luach_window(pid: u32, api: &Api, args: &Args, connect_secs: f64, rss_idle: u64) -> anyhow::Result<Figures> {
    tokio::time::sleep(Duration::from_secs(args.heartbeat_secs.max(args.metrics_secs))).await;
    let (cpu0, _) = proc_usage(pid)?;
    let stored0 = stored_total(api).await?;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.window_secs)).await;
    let (cpu1, rss) = proc_usage(pid)?;
    let stored1 = stored_total(api).await?;
    let secs = t0.elapsed().as_secs_f64();
    Ok(Figures {
        connect_secs,
        msgs_per_sec: (stored1 - stored0) / secs,
        cpu_percent: 100.0 * (cpu1 - cpu0) / secs,
        rss_bytes: rss,
        rss_per_conn: rss.saturating_sub(rss_idle) as f64 / args.count as f64,
        rest: None,
    })
}

/// Waits until the REST API shows `count` screens online; the seconds it took.
async fn wait_online(api: &Api, count: u64, limit: Duration) -> anyhow::Result<f64> {
    let started = Instant::now();
    while api.count("online").await != Some(count) {
        if started.elapsed() > limit {
            bail!("not all {count} screens online within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Starts a private Mosquitto (no persistence, no logs) on a free loopback port.
fn start_mosquitto(dir: &Path) -> anyhow::Result<(Killed, u16)> {
    start_mosquitto_at(dir, free_port())
}

/// [`start_mosquitto`] on a given port (a restart where screens expect it).
fn start_mosquitto_at(dir: &Path, port: u16) -> anyhow::Result<(Killed, u16)> {
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\nmax_queued_messages 10000\n"
        ),
    )?;
    let broker = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let broker = Killed(broker.context("starting mosquitto (Debian package `mosquitto`)")?);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("mosquitto did not listen");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((broker, port))
}

async fn bench_mosquitto(bin: &Path, args: &Args, dir: &Path) -> anyhow::Result<Figures> {
    let (broker, port) = start_mosquitto(dir)?;
    let pid = broker.0.id();
    let rx = mosquitto_listener(port).await?;
    let (_, rss_idle) = proc_usage(pid)?;
    let started = Instant::now();
    let _sim = mosquitto_sim(bin, args, port, dir)?;
    mosquitto_figures(pid, args, rx, rss_idle, started).await
}

/// The topic prefix of every device message seen on Mosquitto.
type Seen = tokio::sync::mpsc::UnboundedReceiver<String>;

/// One QoS 1 subscriber on Mosquitto at `port` plays the control plane's part: it sees every
/// device message.
async fn mosquitto_listener(port: u16) -> anyhow::Result<Seen> {
    let mut options = MqttOptions::new("bench-subscriber", "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_inflight(1000);
    let (client, mut eventloop) = AsyncClient::new(options, 100);
    client.subscribe("/tenants/+/up/#", QoS::AtLeastOnce).await?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = event {
                let device = p.topic.split('/').nth(2).unwrap_or("").to_owned();
                if tx.send(device).is_err() {
                    break;
                }
            }
        }
    });
    Ok(rx)
}

/// Mosquitto's figures (process `pid`): from `started` until every screen's hello arrived, then
/// a steady window of messages delivered, CPU and RSS.
async fn mosquitto_figures(
    pid: u32,
    args: &Args,
    mut rx: Seen,
    rss_idle: u64,
    started: Instant,
) -> anyhow::Result<Figures> {
    // A screen counts once anything it sent arrived (its hello first; its heartbeat, should
    // the subscriber's queue have dropped the hello in the burst).
    let mut seen = HashSet::new();
    let deadline = started + Duration::from_secs(900);
    while (seen.len() as u64) < args.count {
        match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
            Ok(Some(device)) => {
                seen.insert(device);
            }
            _ => bail!("{} of {} screens heard from on mosquitto", seen.len(), args.count),
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(args.heartbeat_secs.max(args.metrics_secs))).await;
    while rx.try_recv().is_ok() {}
    let (cpu0, _) = proc_usage(pid)?;
    let t0 = Instant::now();
    let mut received = 0u64;
    let window = Duration::from_secs(args.window_secs);
    while let Ok(Some(_)) = tokio::time::timeout(window.saturating_sub(t0.elapsed()), rx.recv()).await {
        received += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    let (cpu1, rss) = proc_usage(pid)?;
    Ok(Figures {
        connect_secs,
        msgs_per_sec: received as f64 / secs,
        cpu_percent: 100.0 * (cpu1 - cpu0) / secs,
        rss_bytes: rss,
        rss_per_conn: rss.saturating_sub(rss_idle) as f64 / args.count as f64,
        rest: None,
    })
}

fn mib(b: f64) -> String {
    format!("{:.1} MiB", b / 1024.0 / 1024.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(port) = args.bare_controller {
        return jobs::bare_controller(port, args.count, args.rounds, args.storm).await;
    }
    if let Some(port) = args.webhook_sink {
        return notify::webhook_sink(port).await;
    }
    if let Some(url) = &args.bare_downloads {
        return rollout::bare_downloads(url, args.count, args.rollout_concurrency).await;
    }
    if let Some(port) = args.bare_telemetry {
        return telemetry::bare_controller(port, args.count, args.window_secs, args.metrics_secs).await;
    }
    let bin = match &args.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("binary directory")?
            .to_owned(),
    };
    // Children inherit the raised open-file limit (each screen is a socket on both sides).
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let dir = tempfile::tempdir()?;
    if args.keep_logs {
        eprintln!("logs in {}", dir.path().display());
    }
    if args.board {
        let dir = dir.path().to_owned();
        let window = args.window_secs;
        tokio::task::spawn_blocking(move || board::run(&bin, window, &dir)).await??;
        return Ok(());
    }
    if args.telemetry {
        telemetry::run(&bin, &args, dir.path()).await?;
        if args.keep_logs {
            let _ = dir.keep();
        }
        return Ok(());
    }
    if args.jobs {
        jobs::run(&bin, &args, dir.path()).await?;
        if args.keep_logs {
            let _ = dir.keep();
        }
        return Ok(());
    }
    if args.rollout {
        rollout::run(&bin, &args, dir.path()).await?;
        if args.keep_logs {
            let _ = dir.keep();
        }
        return Ok(());
    }
    if args.notify {
        notify::run(&bin, &args, dir.path()).await?;
        if args.keep_logs {
            let _ = dir.keep();
        }
        return Ok(());
    }
    if args.quota {
        quota::run(&bin, &args, dir.path()).await?;
        if args.keep_logs {
            let _ = dir.keep();
        }
        return Ok(());
    }
    let expected = args.count as f64 / args.heartbeat_secs as f64 + args.count as f64 / args.metrics_secs as f64;
    eprintln!(
        "luach-bench: {} screens, heartbeat {} s, metrics {} s (≈{expected:.0} msg/s offered), window {} s",
        args.count, args.heartbeat_secs, args.metrics_secs, args.window_secs
    );
    if args.rest && !args.plain {
        bail!("--rest measures the plain-listener fleet: add --plain");
    }
    let external = args.broker == BrokerKind::External;
    if external && args.plain {
        bail!("--broker external measures the mutual-TLS fleet: drop --plain");
    }
    let (luach, mosq, failures, lost) = if args.plain {
        let luach = bench_luach(&bin, &args, dir.path()).await?;
        let mosq = if args.no_mosquitto {
            None
        } else {
            Some(bench_mosquitto(&bin, &args, dir.path()).await?)
        };
        (luach, mosq, None, None)
    } else {
        let (luach, bulk) = restart::luach(&bin, &args, dir.path(), external).await?;
        let mosq = if args.no_mosquitto {
            None
        } else {
            Some(restart::mosquitto(&bin, &args, dir.path(), &bulk).await?)
        };
        let failures = (luach.failures, mosq.as_ref().map(|m| m.failures));
        (luach.figures, mosq.map(|m| m.figures), Some(failures), luach.lost)
    };
    println!("| figure | luach-server | mosquitto | luach / mosquitto |");
    println!("|---|---|---|---|");
    let row = |name: &str, l: String, m: Option<String>, ratio: Option<f64>| {
        println!(
            "| {name} | {l} | {} | {} |",
            m.unwrap_or_else(|| "–".into()),
            ratio.map_or("–".into(), |r| format!("{r:.2}"))
        );
    };
    let ratio = |l: f64, m: Option<f64>| m.filter(|m| *m > 0.0).map(|m| l / m);
    row(
        "all screens online/connected",
        format!("{:.2} s", luach.connect_secs),
        mosq.as_ref().map(|m| format!("{:.2} s", m.connect_secs)),
        ratio(luach.connect_secs, mosq.as_ref().map(|m| m.connect_secs)),
    );
    if let Some((l, m)) = failures {
        row(
            "failed connection attempts",
            l.to_string(),
            m.map(|m| m.to_string()),
            None,
        );
    }
    if let Some(lost) = lost {
        row("telemetry records lost", lost.to_string(), None, None);
    }
    row(
        "device messages/s (stored / delivered)",
        format!("{:.0}", luach.msgs_per_sec),
        mosq.as_ref().map(|m| format!("{:.0}", m.msgs_per_sec)),
        ratio(luach.msgs_per_sec, mosq.as_ref().map(|m| m.msgs_per_sec)),
    );
    row(
        "CPU (one core = 100%)",
        format!("{:.1}%", luach.cpu_percent),
        mosq.as_ref().map(|m| format!("{:.1}%", m.cpu_percent)),
        ratio(luach.cpu_percent, mosq.as_ref().map(|m| m.cpu_percent)),
    );
    row(
        "RSS",
        mib(luach.rss_bytes as f64),
        mosq.as_ref().map(|m| mib(m.rss_bytes as f64)),
        ratio(luach.rss_bytes as f64, mosq.as_ref().map(|m| m.rss_bytes as f64)),
    );
    row(
        "RSS per connection",
        format!("{:.1} KiB", luach.rss_per_conn / 1024.0),
        mosq.as_ref().map(|m| format!("{:.1} KiB", m.rss_per_conn / 1024.0)),
        ratio(luach.rss_per_conn, mosq.as_ref().map(|m| m.rss_per_conn)),
    );
    if args.json {
        let kib = |b: f64| (b / 1024.0 * 10.0).round() / 10.0;
        println!(
            "{}",
            serde_json::json!({
                "mode": if args.plain { "plain" } else { "mtls_restart" },
                "broker": if external { "external" } else { "embedded" },
                "count": args.count,
                "luach_online_s": luach.connect_secs,
                "mosquitto_online_s": mosq.as_ref().map(|m| m.connect_secs),
                "luach_rss_per_conn_kib": kib(luach.rss_per_conn),
                "mosquitto_rss_per_conn_kib": mosq.as_ref().map(|m| kib(m.rss_per_conn)),
                "luach_rss_mib": luach.rss_bytes / 1024 / 1024,
                "luach_msgs_per_s": luach.msgs_per_sec,
                "mosquitto_msgs_per_s": mosq.as_ref().map(|m| m.msgs_per_sec),
                // Every failed connection attempt of the screens (time-outs, refusals, losses).
                "connect_timeouts": failures.map(|f| f.0),
                "mosquitto_connect_timeouts": failures.and_then(|f| f.1),
                // Telemetry records missing below each stream's highest stored sequence number
                // (the plain fleet does not count them; --telemetry does).
                "messages_lost": lost,
            })
        );
    }
    if let Some((loaded, idle)) = &luach.rest {
        let ms = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(0.0);
        println!();
        println!(
            "REST ({} req/s offered, open loop; mix: list 50 screens, get one, edit one, list plaques)",
            args.rest_rate
        );
        println!();
        println!(
            "| figure | {} screens reporting | no device traffic | ratio |",
            args.count
        );
        println!("|---|---|---|---|");
        for (name, key) in [
            ("p50", "p50_ms"),
            ("p90", "p90_ms"),
            ("p99", "p99_ms"),
            ("max", "max_ms"),
        ] {
            let (l, i) = (ms(loaded, key), ms(idle, key));
            let ratio = if i > 0.0 { format!("{:.2}", l / i) } else { "–".into() };
            println!("| {name} | {l:.1} ms | {i:.1} ms | {ratio} |");
        }
        println!(
            "| answered 2xx | {}/{} | {}/{} | |",
            loaded["ok"], loaded["requests"], idle["ok"], idle["requests"]
        );
        println!();
        println!("{}", serde_json::json!({"rest": {"loaded": loaded, "idle": idle}}));
    }
    if args.keep_logs {
        let _ = dir.keep();
    }
    Ok(())
}
