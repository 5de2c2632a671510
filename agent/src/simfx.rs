//! What a simulated screen does with a command: every command kind has a simulated effect (a
//! brightness level kept, a reboot counted…), after an optional delay, failing at an optional
//! rate, so tests and benchmarks can drive the whole job path without hardware.
//!
//! With an effects log, every effect applied is appended as one JSON line
//! `{"device": …, "command_id": …, "action": …}` before the command is acknowledged, so a test
//! can count how often each command took effect (exactly once, whatever the control plane went
//! through). An injected failure has no effect and writes nothing.
//!
//! With [`SimUpdates`] (`luach-agent sim --ota-root ROOT.pub`), a simulated screen carries out
//! `update` the way a real one checks it: the metadata against the trusted root, its target,
//! expiry and the screen's own anti-rollback counter, then the whole artifact downloaded with
//! the device token and checked as it streams (length and SHA-256), without being written
//! anywhere. On success the screen reports the new version (a new hello, as after a restart).

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use luach_ota::{ArtifactCheck, Policy, Target, TrustedRoot, Version};
use luach_schemas::DeviceId;
use luach_schemas::messages::{AckStatus, CommandAction, MAX_PERCENT, RELEASE_DOWNLOADS};
use rand::Rng;

use crate::actions::{Executor, Outcome};

/// How simulated screens behave, shared by every screen of a simulator.
#[derive(Debug, Default)]
pub struct SimBehaviour {
    /// Share of commands of a kind that fail (0–1), by action name.
    pub failure_rate: HashMap<String, f64>,
    /// How long commands of a kind take, by action name.
    pub delay: HashMap<String, Duration>,
    log: Option<Mutex<File>>,
    updates: Option<SimUpdates>,
}

/// What simulated screens need to carry out updates.
#[derive(Debug)]
pub struct SimUpdates {
    root: TrustedRoot,
    server: String,
    http: reqwest::Client,
    target: Target,
}

impl SimUpdates {
    /// Screens trusting `root` (a `root.pub` file), downloading from the control plane at
    /// `server`, built for this agent's target.
    pub fn new(root: &Path, server: &str) -> anyhow::Result<Self> {
        let root = TrustedRoot::from_file(root).map_err(|e| anyhow::anyhow!("--ota-root {}: {e}", root.display()))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| anyhow::anyhow!("building the http client: {e}"))?;
        Ok(Self {
            root,
            server: server.trim_end_matches('/').to_owned(),
            http,
            target: Target::parse(luach_ota::BUILD_TARGET)?,
        })
    }

    /// Checks `metadata` for a screen running `running` that has installed up to `highest`,
    /// then streams the artifact through its check. The new version and the bytes received.
    async fn install(
        &self,
        metadata: &str,
        path: &str,
        token: &str,
        running: &Version,
        highest: &Version,
    ) -> Result<Option<(Version, u64)>, String> {
        if !path.starts_with(RELEASE_DOWNLOADS) {
            return Err(format!("path: artifacts come from {RELEASE_DOWNLOADS}"));
        }
        let release = luach_ota::verify_signatures(&self.root, metadata.as_bytes(), 0).map_err(|e| e.to_string())?;
        if release.version() == running {
            return Ok(None);
        }
        let policy = Policy {
            highest_installed: Some(highest.clone()),
            installed: Some(running.clone()),
            ..Policy::new(self.target.clone(), chrono::Utc::now())
        };
        policy
            .check(&release)
            .map_err(|e| format!("{}: {e}", e.code().as_str()))?;
        let url = format!("{}{path}", self.server);
        let mut response = self
            .http
            .get(&url)
            .header(luach_content::bundle::DEVICE_TOKEN_HEADER, token)
            .send()
            .await
            .map_err(|e| format!("download: GET {url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("download: GET {url}: HTTP {}", response.status()));
        }
        let mut check = ArtifactCheck::new(&release);
        let mut received = 0u64;
        loop {
            let chunk = tokio::time::timeout(crate::update::fetch::STALL_TIMEOUT, response.chunk())
                .await
                .map_err(|_| "download: the server stopped sending".to_owned())?
                .map_err(|e| format!("download: {e}"))?;
            let Some(chunk) = chunk else { break };
            check
                .update(&chunk)
                .map_err(|e| format!("{}: {e}", e.code().as_str()))?;
            received += chunk.len() as u64;
        }
        check.finish().map_err(|e| format!("{}: {e}", e.code().as_str()))?;
        Ok(Some((release.version().clone(), received)))
    }
}

/// Parses `KIND=VALUE` pairs (`reboot=0.3`) given on the command line.
pub fn parse_pairs<T: std::str::FromStr>(pairs: &[String], what: &str) -> anyhow::Result<HashMap<String, T>> {
    let mut out = HashMap::new();
    for pair in pairs {
        let Some((kind, value)) = pair.split_once('=') else {
            anyhow::bail!("{what} {pair:?}: expected KIND=VALUE, e.g. reboot=0.3");
        };
        let value = value
            .parse()
            .map_err(|_| anyhow::anyhow!("{what} {pair:?}: {value:?} is not a number"))?;
        out.insert(kind.to_owned(), value);
    }
    Ok(out)
}

impl SimBehaviour {
    /// Failure rates must lie in 0–1; the log file is created (or appended to).
    pub fn new(
        failure_rate: HashMap<String, f64>,
        delay: HashMap<String, Duration>,
        log: Option<&Path>,
    ) -> anyhow::Result<Self> {
        for (kind, rate) in &failure_rate {
            anyhow::ensure!((0.0..=1.0).contains(rate), "--fail {kind}={rate}: the rate must be 0–1");
        }
        let log = match log {
            Some(path) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| anyhow::anyhow!("opening the effects log {}: {e}", path.display()))?,
            )),
            None => None,
        };
        Ok(Self {
            failure_rate,
            delay,
            log,
            updates: None,
        })
    }

    /// Simulated screens carry out updates (otherwise they answer `unsupported`).
    pub fn with_updates(mut self, updates: SimUpdates) -> Self {
        self.updates = Some(updates);
        self
    }

    fn record(&self, device: &DeviceId, command_id: &str, action: &str) -> Result<(), String> {
        let Some(log) = &self.log else {
            return Ok(());
        };
        let line = serde_json::json!({"device": device.as_str(), "command_id": command_id, "action": action});
        let mut file = log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        writeln!(file, "{line}").map_err(|e| format!("writing the effects log: {e}"))
    }
}

/// One simulated screen's state and its executor.
#[derive(Debug)]
pub struct SimEffects {
    device: DeviceId,
    behaviour: Arc<SimBehaviour>,
    state: Mutex<SimState>,
}

#[derive(Debug)]
struct SimState {
    brightness: u8,
    volume: u8,
    display_on: bool,
    reboots: u64,
    restarts: u64,
    refreshes: u64,
    power: Option<luach_content::PowerSchedule>,
    settings: luach_schemas::params::AgentSettings,
    packages: Vec<String>,
    /// The version the screen runs and the highest it ever installed.
    version: Version,
    highest: Version,
}

impl SimEffects {
    pub fn new(device: DeviceId, behaviour: Arc<SimBehaviour>) -> Self {
        let version = Version::parse(crate::sampler::agent_version()).unwrap_or_else(|_| Version::new(0, 0, 0));
        Self {
            device,
            behaviour,
            state: Mutex::new(SimState {
                brightness: 80,
                volume: 50,
                display_on: true,
                reboots: 0,
                restarts: 0,
                refreshes: 0,
                power: None,
                settings: luach_schemas::params::AgentSettings::default(),
                packages: Vec::new(),
                highest: version.clone(),
                version,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn update(&self, updates: &SimUpdates, command_id: &str, metadata: &str, path: &str, token: &str) -> Outcome {
        let (running, highest) = {
            let s = self.state();
            (s.version.clone(), s.highest.clone())
        };
        match updates.install(metadata, path, token, &running, &highest).await {
            Ok(None) => (AckStatus::Ok, Some(format!("already running {running}"))),
            Ok(Some((version, received))) => {
                if let Err(e) = self.behaviour.record(&self.device, command_id, "update") {
                    return (AckStatus::Error, Some(e));
                }
                let mut s = self.state();
                s.highest = s.highest.clone().max(version.clone());
                s.version = version.clone();
                (
                    AckStatus::Ok,
                    Some(format!("simulated update to {version} ({received} bytes checked)")),
                )
            }
            Err(e) => (AckStatus::Error, Some(e)),
        }
    }
}

#[async_trait::async_trait]
impl Executor for SimEffects {
    async fn run(&self, command_id: &str, action: CommandAction) -> Outcome {
        let name = action.name();
        if let Some(delay) = self.behaviour.delay.get(name) {
            tokio::time::sleep(*delay).await;
        }
        let rate = self.behaviour.failure_rate.get(name).copied().unwrap_or(0.0);
        if rate > 0.0 && rand::rng().random_bool(rate) {
            return (AckStatus::Error, Some(format!("injected failure ({name})")));
        }
        if let (CommandAction::Update { metadata, path, token }, Some(updates)) = (&action, &self.behaviour.updates) {
            return self.update(updates, command_id, metadata, path, token).await;
        }
        let detail = {
            let mut s = self.state();
            match action {
                CommandAction::Ping => "pong".to_owned(),
                CommandAction::Diagnostics => {
                    return (
                        AckStatus::Error,
                        Some("diagnostics are answered by the agent's session".into()),
                    );
                }
                CommandAction::Brightness { percent } | CommandAction::Volume { percent } if percent > MAX_PERCENT => {
                    return (AckStatus::Error, Some(format!("percent must be 0–{MAX_PERCENT}")));
                }
                CommandAction::Brightness { percent } => {
                    s.brightness = percent;
                    format!("simulated brightness {percent}%")
                }
                CommandAction::Volume { percent } => {
                    s.volume = percent;
                    format!("simulated volume {percent}%")
                }
                CommandAction::DisplayPower { on } => {
                    s.display_on = on;
                    format!("simulated display {}", if on { "on" } else { "off" })
                }
                CommandAction::RefreshContent { .. } => {
                    s.refreshes += 1;
                    format!("simulated refresh {}", s.refreshes)
                }
                CommandAction::RestartAgent => {
                    s.restarts += 1;
                    format!("simulated restart {}", s.restarts)
                }
                CommandAction::Reboot => {
                    s.reboots += 1;
                    format!("simulated reboot {}", s.reboots)
                }
                CommandAction::PowerSchedule { schedule } => {
                    if let Some(Err(e)) = schedule.as_ref().map(crate::settings::check_schedule) {
                        return (AckStatus::Error, Some(e));
                    }
                    let detail = match &schedule {
                        Some(_) => "simulated power schedule kept",
                        None => "simulated power schedule cleared",
                    };
                    s.power = schedule;
                    detail.to_owned()
                }
                CommandAction::SetSettings { settings } => {
                    if let Err(problems) = settings.check() {
                        return (AckStatus::Error, Some(problems));
                    }
                    s.settings = s.settings.merged(&settings);
                    format!(
                        "simulated settings {}",
                        serde_json::to_string(&s.settings).unwrap_or_default()
                    )
                }
                CommandAction::InstallPackage { package } => {
                    if let Some(why) = luach_schemas::params::package_name_problem(&package) {
                        return (AckStatus::Error, Some(format!("package: {why}")));
                    }
                    let detail = format!("simulated install of {package}");
                    s.packages.push(package);
                    detail
                }
                CommandAction::Update { .. } => {
                    return (
                        AckStatus::Unsupported,
                        Some("this simulator trusts no release root (--ota-root)".into()),
                    );
                }
                CommandAction::Screenshot { .. } => {
                    return (
                        AckStatus::Unsupported,
                        Some("a simulated screen draws no frames to upload".into()),
                    );
                }
            }
        };
        match self.behaviour.record(&self.device, command_id, name) {
            Ok(()) => (AckStatus::Ok, Some(detail)),
            Err(e) => (AckStatus::Error, Some(e)),
        }
    }

    fn agent_version(&self) -> Option<String> {
        Some(self.state().version.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> DeviceId {
        DeviceId::parse("sim00001").unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn effects_are_logged_once_and_failures_not_at_all() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = dir.path().join("effects.jsonl");
        let mut fail = HashMap::new();
        fail.insert("reboot".to_owned(), 1.0);
        let behaviour = Arc::new(SimBehaviour::new(fail, HashMap::new(), Some(&log)).unwrap_or_else(|e| panic!("{e}")));
        let screen = SimEffects::new(device(), behaviour);
        let (status, detail) = screen.run("c1", CommandAction::Brightness { percent: 30 }).await;
        assert_eq!(
            (status, detail.as_deref()),
            (AckStatus::Ok, Some("simulated brightness 30%"))
        );
        let (status, _) = screen.run("c2", CommandAction::Reboot).await;
        assert_eq!(status, AckStatus::Error);
        let (status, _) = screen
            .run(
                "c3",
                CommandAction::Screenshot {
                    path: String::new(),
                    token: String::new(),
                },
            )
            .await;
        assert_eq!(status, AckStatus::Unsupported);
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        assert_eq!(
            lines,
            vec![serde_json::json!({"device": "sim00001", "command_id": "c1", "action": "brightness"})]
        );
    }

    #[test]
    fn pairs_are_checked() {
        let ok: HashMap<String, f64> = parse_pairs(&["reboot=0.3".to_owned()], "--fail").unwrap_or_default();
        assert_eq!(ok.get("reboot"), Some(&0.3));
        assert!(parse_pairs::<f64>(&["reboot".to_owned()], "--fail").is_err());
        assert!(parse_pairs::<f64>(&["reboot=x".to_owned()], "--fail").is_err());
        let mut bad = HashMap::new();
        bad.insert("ping".to_owned(), 1.5);
        assert!(SimBehaviour::new(bad, HashMap::new(), None).is_err());
    }
}
