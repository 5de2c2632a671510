//! Commands that act on the screen: screenshots (the latest frame, uploaded to the control
//! plane), the platform's effects (brightness, volume, display power, packages), the content
//! (`refresh_content`), what the screen keeps (`power_schedule`, `set_settings`, see
//! [`crate::settings`]) and the process itself (`restart_agent`, `reboot`).
//!
//! A command that ends the process is answered first: it records the [`Exit`] it asks for in
//! the [`Lifecycle`], the session publishes the acknowledgement and then calls
//! [`Executor::acknowledged`], which stops the agent; `main` restarts the process in place (or
//! restarts the device) once the session has said goodbye. The outcome is in the seen set
//! before the process ends, so the command is never carried out twice.
//!
//! They run off the MQTT loop: the session hands each one to [`Actions::run`] in a task of its
//! own and publishes the acknowledgement when it is done, so a slow upload or a hung platform
//! command never delays heartbeats or other commands.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use luach_content::bundle::DEVICE_TOKEN_HEADER;
use luach_schemas::messages::{AckStatus, CommandAction, MAX_PERCENT, RELEASE_DOWNLOADS};
use tokio_util::sync::CancellationToken;

use crate::bundle::Refresher;
use crate::platform::{Effect, Platform, PlatformError};
use crate::screen::LatestFrame;
use crate::settings::PowerOverride;
use crate::update::Updater;
use crate::update::install::Installed;

/// Where screenshots go on the control plane; a command naming any other path is refused, so
/// the device token it carries is never sent elsewhere.
pub const SCREENSHOT_PATH: &str = "/api/v1/agent/screenshots/";

/// How the agent ends after answering a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Start the agent again in the same process (`exec`), with the same arguments.
    Restart,
    /// Restart the device through the platform.
    Reboot,
    /// Exit with [`crate::update::EXIT_SWITCHED`]: the supervisor starts the version just
    /// switched in.
    Switched,
}

/// The exit a command asked for, and the stop it triggers once its answer is on its way.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    pending: Arc<Mutex<Option<(String, Exit)>>>,
    requested: Arc<Mutex<Option<Exit>>>,
    shutdown: CancellationToken,
}

impl Lifecycle {
    /// `shutdown` stops the agent.
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            pending: Arc::default(),
            requested: Arc::default(),
            shutdown,
        }
    }

    fn ask(&self, command_id: &str, exit: Exit) {
        *self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((command_id.to_owned(), exit));
    }

    /// The answer to `command_id` is queued: if it asked for an exit, stop now.
    pub fn acknowledged(&self, command_id: &str) {
        let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((id, exit)) = pending.take() {
            if id == command_id {
                tracing::info!(?exit, %command_id, "stopping the agent as asked");
                *self.requested.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(exit);
                self.shutdown.cancel();
            } else {
                *pending = Some((id, exit));
            }
        }
    }

    /// The exit asked for, once the agent has stopped.
    pub fn requested(&self) -> Option<Exit> {
        *self.requested.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What a command's work needs.
#[derive(Debug, Clone)]
pub struct Actions {
    platform: Arc<dyn Platform>,
    latest: LatestFrame,
    http: reqwest::Client,
    /// Control-plane URL; without it screenshots cannot be uploaded.
    server: Option<String>,
    /// Fetches the bundle on `refresh_content` (absent without a control-plane URL).
    refresher: Option<Refresher>,
    power: PowerOverride,
    /// Where `set_settings` keeps the settings.
    state_dir: PathBuf,
    lifecycle: Lifecycle,
    /// Carries out `update`, or why updates are off (no supervisor, no trusted root).
    updater: Result<Updater, String>,
}

/// What [`Actions`] is built from.
#[derive(Debug)]
pub struct ActionsSetup {
    pub platform: Arc<dyn Platform>,
    pub latest: LatestFrame,
    pub server: Option<String>,
    pub refresher: Option<Refresher>,
    pub power: PowerOverride,
    pub state_dir: PathBuf,
    pub lifecycle: Lifecycle,
    pub updater: Result<Updater, String>,
}

/// A command's outcome, as acknowledged.
pub type Outcome = (AckStatus, Option<String>);

/// Carries out commands other than `ping` (which the session answers at once): the real
/// screen's [`Actions`], or a simulated screen's [`crate::simfx::SimEffects`].
#[async_trait::async_trait]
pub trait Executor: Send + Sync + std::fmt::Debug {
    async fn run(&self, command_id: &str, action: CommandAction) -> Outcome;
    /// The answer to `command_id` has been queued for the broker.
    fn acknowledged(&self, _command_id: &str) {}
    /// The version this screen reports, when it is not the running binary's (a simulated
    /// screen that carried out an update).
    fn agent_version(&self) -> Option<String> {
        None
    }
}

#[async_trait::async_trait]
impl Executor for Actions {
    async fn run(&self, command_id: &str, action: CommandAction) -> Outcome {
        if let CommandAction::Update { metadata, path, token } = &action {
            return self.update(command_id, metadata, path, token).await;
        }
        let exit = match &action {
            CommandAction::RestartAgent | CommandAction::SetSettings { .. } => Some(Exit::Restart),
            CommandAction::Reboot => Some(Exit::Reboot),
            _ => None,
        };
        let outcome = Actions::run(self, action).await;
        if let (Some(exit), AckStatus::Ok) = (exit, outcome.0) {
            self.lifecycle.ask(command_id, exit);
        }
        outcome
    }

    fn acknowledged(&self, command_id: &str) {
        self.lifecycle.acknowledged(command_id);
    }
}

impl Actions {
    pub fn new(setup: ActionsSetup) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            platform: setup.platform,
            latest: setup.latest,
            http,
            server: setup.server.map(|s| s.trim_end_matches('/').to_owned()),
            refresher: setup.refresher,
            power: setup.power,
            state_dir: setup.state_dir,
            lifecycle: setup.lifecycle,
            updater: setup.updater,
        })
    }

    /// `update`: verify, fetch, stage and switch (see [`crate::update::install`]); once
    /// switched, the answer is `received` and the outcome follows from the new version (or
    /// from this one after a rollback).
    async fn update(&self, command_id: &str, metadata: &str, path: &str, token: &str) -> Outcome {
        let updater = match &self.updater {
            Ok(updater) => updater,
            Err(why) => return (AckStatus::Unsupported, Some(why.clone())),
        };
        if !path.starts_with(RELEASE_DOWNLOADS) {
            return (
                AckStatus::Error,
                Some(format!("path: artifacts come from {}", RELEASE_DOWNLOADS)),
            );
        }
        let stop = CancellationToken::new();
        match updater
            .install(command_id, metadata.as_bytes(), path, token, &stop)
            .await
        {
            Ok(Installed::Switched(version)) => {
                self.lifecycle.ask(command_id, Exit::Switched);
                (
                    AckStatus::Received,
                    Some(format!("{version} installed; starting it for its health check")),
                )
            }
            Ok(Installed::AlreadyRunning(version)) => (AckStatus::Ok, Some(format!("already running {version}"))),
            Err(e) => {
                tracing::warn!(%command_id, code = e.code(), error = %e, "update refused");
                (AckStatus::Error, Some(format!("{}: {e}", e.code())))
            }
        }
    }

    /// Carries out `action` (anything but `ping` and `diagnostics`, which the session answers
    /// at once). An exit it asks for is left to the [`Executor`].
    pub async fn run(&self, action: CommandAction) -> Outcome {
        let effect = match action {
            CommandAction::Ping => return (AckStatus::Ok, Some("pong".into())),
            CommandAction::Diagnostics => {
                return (
                    AckStatus::Error,
                    Some("diagnostics are answered by the agent's session".into()),
                );
            }
            CommandAction::Screenshot { path, token } => return self.screenshot(&path, &token).await,
            CommandAction::Brightness { percent } | CommandAction::Volume { percent } if percent > MAX_PERCENT => {
                return (AckStatus::Error, Some(format!("percent must be 0–{MAX_PERCENT}")));
            }
            CommandAction::Brightness { percent } => Effect::Brightness(percent),
            CommandAction::Volume { percent } => Effect::Volume(percent),
            CommandAction::DisplayPower { on } => Effect::DisplayPower(on),
            CommandAction::RefreshContent { path, token } => return self.refresh(&path, &token).await,
            CommandAction::RestartAgent => return (AckStatus::Ok, Some("the agent restarts now".into())),
            CommandAction::Reboot => {
                return match self.platform.reboot_way() {
                    Ok(how) => (AckStatus::Ok, Some(format!("the device restarts now through {how}"))),
                    Err(e) => platform_error(e),
                };
            }
            CommandAction::PowerSchedule { schedule } => {
                let cleared = schedule.is_none();
                return match self.power.set(schedule) {
                    Ok(()) if cleared => (
                        AckStatus::Ok,
                        Some("the screen follows its content's power schedule again".into()),
                    ),
                    Ok(()) => (AckStatus::Ok, Some("the screen follows this power schedule".into())),
                    Err(e) => (AckStatus::Error, Some(e)),
                };
            }
            CommandAction::SetSettings { settings } => {
                return match crate::settings::save_settings(&self.state_dir, &settings) {
                    Ok(kept) => (
                        AckStatus::Ok,
                        Some(format!(
                            "settings kept: {}; the agent restarts to apply them",
                            serde_json::to_string(&kept).unwrap_or_default()
                        )),
                    ),
                    Err(e) => (AckStatus::Error, Some(e)),
                };
            }
            CommandAction::InstallPackage { package } => {
                if let Some(why) = luach_schemas::params::package_name_problem(&package) {
                    return (AckStatus::Error, Some(format!("package: {why}")));
                }
                let what = format!("install {package}");
                return self.on_platform(what, move |p| p.install(&package)).await;
            }
            CommandAction::Update { .. } => {
                return (
                    AckStatus::Error,
                    Some("updates are carried out with their command id".into()),
                );
            }
        };
        self.on_platform(format!("{effect:?}"), move |p| p.apply(effect)).await
    }

    /// Runs `work` on the platform off the async runtime's workers (it may run processes);
    /// its answer.
    async fn on_platform(
        &self,
        what: String,
        work: impl FnOnce(&dyn Platform) -> Result<String, PlatformError> + Send + 'static,
    ) -> Outcome {
        let platform = self.platform.clone();
        match tokio::task::spawn_blocking(move || work(platform.as_ref())).await {
            Ok(Ok(how)) => {
                tracing::info!(%what, how = %how, "done on the platform");
                (AckStatus::Ok, Some(how))
            }
            Ok(Err(e)) => {
                tracing::warn!(%what, error = %e, "not done on the platform");
                platform_error(e)
            }
            Err(e) => (AckStatus::Error, Some(format!("the platform task failed: {e}"))),
        }
    }

    /// Fetches the bundle again in full; the detail of success is its SHA-256.
    async fn refresh(&self, path: &str, token: &str) -> Outcome {
        let Some(refresher) = &self.refresher else {
            return (
                AckStatus::Unsupported,
                Some("this agent runs without --server, so it cannot fetch content".into()),
            );
        };
        match refresher.refresh(path, token).await {
            Ok(sha) => (AckStatus::Ok, Some(sha)),
            Err(e) => (AckStatus::Error, Some(e)),
        }
    }

    /// Encodes the frame on screen and uploads it; the detail of success is the screenshot id.
    async fn screenshot(&self, path: &str, token: &str) -> Outcome {
        let fail = |why: String| (AckStatus::Error, Some(why));
        let Some(server) = &self.server else {
            return (
                AckStatus::Unsupported,
                Some("this agent runs without --server, so it cannot upload".into()),
            );
        };
        let Some(id) = path
            .strip_prefix(SCREENSHOT_PATH)
            .filter(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
        else {
            return fail(format!("refusing to upload to {path:?}"));
        };
        let frame = self
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let Some(frame) = frame else {
            return fail("no frame has been drawn yet".into());
        };
        let png = match tokio::task::spawn_blocking(move || frame.png()).await {
            Ok(Ok(png)) => png,
            Ok(Err(e)) => return fail(format!("encoding the frame: {e}")),
            Err(e) => return fail(format!("encoding the frame: {e}")),
        };
        let sent = self
            .http
            .put(format!("{server}{path}"))
            .header(DEVICE_TOKEN_HEADER, token)
            .header(reqwest::header::CONTENT_TYPE, "image/png")
            .body(png)
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status().as_u16() == 201 => (AckStatus::Ok, Some(id.to_owned())),
            Ok(resp) => {
                let status = resp.status().as_u16();
                let body = resp.text().await.unwrap_or_default();
                let message = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.pointer("/error/message").and_then(|m| m.as_str()).map(str::to_owned))
                    .unwrap_or_default();
                fail(format!(
                    "the control plane refused the upload (HTTP {status}): {message}"
                ))
            }
            Err(e) => fail(format!("uploading: {e}")),
        }
    }
}

/// A platform refusal as an answer.
fn platform_error(e: PlatformError) -> Outcome {
    match e {
        PlatformError::Unsupported(why) => (AckStatus::Unsupported, Some(why)),
        PlatformError::Failed(why) => (AckStatus::Error, Some(why)),
    }
}
