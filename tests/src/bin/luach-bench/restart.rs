//! The fleet over mutual TLS after a server restart (the default fleet mode): every screen
//! enrolled once, then `luach-server` started again on the same data and all screens
//! connecting at once through the connection edge; against Mosquitto with mutual TLS, the same
//! certificates and the same simulator.
//!
//! Figures: time until every screen is online (Luach: stored as online, read over REST;
//! Mosquitto: its hello seen by one QoS 1 subscriber), failed connection attempts on the way
//! (the simulator's count: refused, timed out or lost), stored / delivered messages a second,
//! CPU, RSS and RSS per connection (RSS with the screens minus RSS before them), and telemetry
//! records lost (gaps in the stored sequence numbers after the window).
//!
//! `--broker external` measures external broker mode instead: `luach-server broker-config
//! mosquitto` writes Mosquitto's configuration, the screens enrol through the server (which
//! rewrites the ACL and signals Mosquitto), then Mosquitto and the server restart and every
//! screen connects to Mosquitto at once; the server consumes their messages as a client.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use luach_tests::{Api, free_port};

use crate::{
    Args, Figures, Killed, luach_window, mosquitto_figures, mosquitto_listener, proc_usage, start_server_at,
    wait_online,
};

/// The server's environment: no API quota (see `--quota`), and every simulated screen comes
/// from one address, so the edge's per-source cap is lifted.
const TLS_FLEET_ENV: [(&str, &str); 2] = [
    ("LUACH_QUOTAS__API_REQUESTS_PER_MINUTE", "0"),
    ("LUACH_MQTT__EDGE__MAX_CONNECTIONS_PER_SOURCE", "1000000"),
];

/// [`TLS_FLEET_ENV`], owned, for adding to.
fn fleet_env() -> Vec<(String, String)> {
    TLS_FLEET_ENV.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
}

/// A fleet run's figures, the simulator's failed connection attempts and the telemetry
/// records lost (Luach only).
pub struct Run {
    pub figures: Figures,
    pub failures: u64,
    pub lost: Option<i64>,
}

/// Telemetry records lost so far: gaps below each stream's highest stored sequence number
/// (records still queued on a screen come after it), once in-flight batches are written.
async fn lost(dir: &Path) -> anyhow::Result<i64> {
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (missing, stored) = crate::telemetry::gaps(&dir.join("luach.sqlite3"))?;
    eprintln!("luach-bench: {stored} telemetry records stored, {missing} missing");
    Ok(missing)
}

/// External broker mode: Mosquitto configured by `luach-server broker-config mosquitto`, its
/// files in `dir/mosquitto`, rewritten by the server after enrolments.
struct External {
    devices: u16,
    control: u16,
    files: PathBuf,
    /// The configuration Mosquitto runs with (the written one, without logging, and kept root
    /// when run as root so it reads the private key).
    conf: PathBuf,
}

impl External {
    fn new(dir: &Path) -> Self {
        Self {
            devices: free_port(),
            control: free_port(),
            files: dir.join("mosquitto"),
            conf: dir.join("mosquitto-external.conf"),
        }
    }

    /// The server's environment: the fleet's, in external mode.
    fn env(&self, args: &Args) -> Vec<(String, String)> {
        let mut env = fleet_env();
        env.extend(
            [
                ("LUACH_MQTT__MODE", "external".to_owned()),
                ("LUACH_MQTT__MAX_CONNECTIONS", (args.count + 1000).to_string()),
                ("LUACH_MQTT__EXTERNAL__HOST", "localhost".into()),
                ("LUACH_MQTT__EXTERNAL__PORT", self.control.to_string()),
                ("LUACH_MQTT__EXTERNAL__CONFIG_DIR", self.files.display().to_string()),
                (
                    "LUACH_MQTT__EXTERNAL__RELOAD_COMMAND",
                    format!("[\"pkill\", \"-HUP\", \"-f\", {:?}]", self.conf.display().to_string()),
                ),
                ("LUACH_HTTP__PUBLIC_MQTT_TLS", format!("127.0.0.1:{}", self.devices)),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        env
    }

    /// Runs `luach-server broker-config mosquitto` as an operator would.
    fn configure(&self, bin: &Path, args: &Args, dir: &Path) -> anyhow::Result<()> {
        let out = Command::new(bin.join("luach-server"))
            .args(["broker-config", "--data-dir"])
            .arg(dir)
            .args(["mosquitto", "--out"])
            .arg(&self.files)
            .args([
                "--devices-bind",
                "127.0.0.1",
                "--devices-port",
                &self.devices.to_string(),
            ])
            .args([
                "--control-bind",
                "127.0.0.1",
                "--control-port",
                &self.control.to_string(),
            ])
            .envs(self.env(args))
            .output()
            .context("running luach-server broker-config")?;
        if !out.status.success() {
            bail!(
                "luach-server broker-config mosquitto failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let written = std::fs::read_to_string(self.files.join("mosquitto.conf"))?;
        std::fs::write(&self.conf, format!("user root\nlog_dest none\n{written}"))?;
        Ok(())
    }

    fn start(&self, dir: &Path) -> anyhow::Result<Killed> {
        let broker = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("mosquitto-external.log"))?)
            .spawn();
        let broker = Killed(broker.context("starting mosquitto (Debian package `mosquitto`)")?);
        wait_listening(&[self.devices, self.control], &dir.join("mosquitto-external.log"))?;
        Ok(broker)
    }
}

/// Waits until something listens on every port in `ports` (loopback).
fn wait_listening(ports: &[u16], log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while ports
        .iter()
        .any(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_err())
    {
        if Instant::now() > deadline {
            bail!("mosquitto did not listen (log: {})", log.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The simulator over mutual TLS, printing its counters every second to `out`.
fn tls_sim(bin: &Path, args: &Args, link: &[&str], out: &Path, log: &Path) -> anyhow::Result<Killed> {
    let child = Command::new(bin.join("luach-agent"))
        .arg("sim")
        .args(link)
        .args(["--count", &args.count.to_string(), "--id-prefix", "bench"])
        .args(["--heartbeat-secs", &args.heartbeat_secs.to_string()])
        .args(["--metrics-secs", &args.metrics_secs.to_string()])
        .args(["--connect-rate", &args.connect_rate.to_string(), "--report-secs", "1"])
        .args(["--enrol-concurrency", "64"])
        .env("RUST_LOG", "warn")
        .stdout(std::fs::File::create(out)?)
        .stderr(std::fs::File::create(log)?)
        .spawn()
        .context("starting luach-agent sim")?;
    Ok(Killed(child))
}

/// The simulator's failed connection attempts, from its last status line in `out`.
fn failures(out: &Path) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(out)?;
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains("connection failures"))
        .context("no status line from the simulator")?;
    let before = line
        .split(" connection failures")
        .next()
        .and_then(|s| s.rsplit(", ").next())
        .context("status line")?;
    before.trim().parse().context("connection failures count")
}

/// Enrols the fleet on a first server, then measures it connecting to the restarted server
/// (with `external`, to the restarted Mosquitto the restarted server consumes from).
/// Returns the figures, and the bulk token and state directory the Mosquitto half reuses.
pub async fn luach(bin: &Path, args: &Args, dir: &Path, external: bool) -> anyhow::Result<(Run, String)> {
    let token = luach_tests::seed_tenant_admin(dir, &[]);
    let ports = (free_port(), free_port());
    // The fleet enrols through the embedded edge in both modes (the certificates are the
    // same; only where screens connect differs), so the measured restart starts from the
    // same fleet.
    let embedded = fleet_env();
    let embedded: Vec<(&str, &str)> = embedded.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (server, base) = start_server_at(bin, dir, &embedded, ports).await?;
    let api = Api::new(base.clone()).with_token(&token);
    let bulk = luach_tests::bulk_token(&api, u32::try_from(args.count).unwrap_or(u32::MAX)).await;
    let state = dir.join("sim-state");
    let state = state.to_str().context("state directory")?;
    let mut link = vec!["--server", &base, "--enrolment-token", &bulk, "--state-dir", state];
    eprintln!("luach-bench: enrolling {} screens (not measured)", args.count);
    {
        let _enrol = tls_sim(bin, args, &link, &dir.join("sim-enrol.out"), &dir.join("sim-enrol.log"))?;
        wait_online(&api, args.count, Duration::from_secs(3600)).await?;
    }
    drop(server);

    let external = external.then(|| External::new(dir));
    let env: Vec<(String, String)> = match &external {
        Some(e) => {
            e.configure(bin, args, dir)?;
            e.env(args)
        }
        None => fleet_env(),
    };
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let start_broker = || external.as_ref().map(|e| e.start(dir)).transpose();
    let devices = external.as_ref().map(|e| format!("127.0.0.1:{}", e.devices));
    if let Some(devices) = &devices {
        link.extend(["--mqtt", devices.as_str()]);
    }

    if external.is_some() {
        eprintln!("luach-bench: restarting mosquitto and luach-server; every screen connects at once");
    } else {
        eprintln!("luach-bench: restarting luach-server; every screen connects at once");
    }
    let _broker = start_broker()?;
    let (server, _) = start_server_at(bin, dir, &env, ports).await?;
    let pid = server.0.id();
    let (_, rss_idle) = proc_usage(pid)?;
    let out = dir.join("sim-luach.out");
    let sim = tls_sim(bin, args, &link, &out, &dir.join("sim-luach.log"))?;
    let connect_secs = wait_online(&api, args.count, Duration::from_secs(900)).await?;
    let figures = luach_window(pid, &api, args, connect_secs, rss_idle).await?;
    let failures = failures(&out)?;
    drop(sim);
    let lost = lost(dir).await?;
    drop(server);
    eprintln!("luach-bench: luach-server: all online in {connect_secs:.2} s, {failures} failed connection attempts");
    Ok((
        Run {
            figures,
            failures,
            lost: Some(lost),
        },
        bulk,
    ))
}

/// Mosquitto with mutual TLS on the server's own certificate and device CA, each client named
/// by its certificate; a plain loopback listener for the subscriber that plays the control
/// plane.
fn start_mosquitto_tls(dir: &Path) -> anyhow::Result<(Killed, u16, u16)> {
    let (tls, plain) = (free_port(), free_port());
    let pki = dir.join("pki");
    let conf = dir.join("mosquitto-tls.conf");
    std::fs::write(
        &conf,
        format!(
            "per_listener_settings true\n\
             listener {tls} 127.0.0.1\n\
             cafile {ca}\ncertfile {cert}\nkeyfile {key}\n\
             require_certificate true\nuse_identity_as_username true\n\
             listener {plain} 127.0.0.1\nallow_anonymous true\n\
             persistence false\nlog_dest none\nmax_queued_messages 100000\nuser root\n",
            ca = pki.join("broker-ca.pem").display(),
            cert = pki.join("broker.pem").display(),
            key = pki.join("broker.key").display(),
        ),
    )?;
    let broker = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("mosquitto-tls.log"))?)
        .spawn();
    let broker = Killed(broker.context("starting mosquitto (Debian package `mosquitto`)")?);
    wait_listening(&[tls, plain], &dir.join("mosquitto-tls.log"))?;
    Ok((broker, tls, plain))
}

/// The same screens, with the same certificates, on Mosquitto.
pub async fn mosquitto(bin: &Path, args: &Args, dir: &Path, bulk: &str) -> anyhow::Result<Run> {
    let (broker, tls, plain) = start_mosquitto_tls(dir)?;
    let pid = broker.0.id();
    let rx = mosquitto_listener(plain).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, rss_idle) = proc_usage(pid)?;
    let state = dir.join("sim-state");
    let state = state.to_str().context("state directory")?;
    let mqtt = format!("127.0.0.1:{tls}");
    // The server is not running: the screens have their certificates and need it for nothing.
    let link = [
        "--server",
        "http://127.0.0.1:9",
        "--mqtt",
        &mqtt,
        "--enrolment-token",
        bulk,
        "--state-dir",
        state,
    ];
    let out = dir.join("sim-mosquitto.out");
    let started = Instant::now();
    let sim = tls_sim(bin, args, &link, &out, &dir.join("sim-mosquitto.log"))?;
    let figures = mosquitto_figures(pid, args, rx, rss_idle, started).await?;
    let failures = failures(&out)?;
    drop(sim);
    Ok(Run {
        figures,
        failures,
        lost: None,
    })
}
