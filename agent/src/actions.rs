//! Commands that act on the screen: screenshots (the latest frame, uploaded to the control
//! plane) and the platform's effects (brightness, volume, display power).
//!
//! They run off the MQTT loop: the session hands each one to [`Actions::run`] in a task of its
//! own and publishes the acknowledgement when it is done, so a slow upload or a hung platform
//! command never delays heartbeats or other commands.

use std::sync::Arc;
use std::time::Duration;

use luach_content::bundle::DEVICE_TOKEN_HEADER;
use luach_schemas::messages::{AckStatus, CommandAction, MAX_PERCENT};

use crate::platform::{Effect, Platform, PlatformError};
use crate::screen::LatestFrame;

/// Where screenshots go on the control plane; a command naming any other path is refused, so
/// the device token it carries is never sent elsewhere.
pub const SCREENSHOT_PATH: &str = "/api/v1/agent/screenshots/";

/// What a command's work needs.
#[derive(Debug, Clone)]
pub struct Actions {
    platform: Arc<dyn Platform>,
    latest: LatestFrame,
    http: reqwest::Client,
    /// Control-plane URL; without it screenshots cannot be uploaded.
    server: Option<String>,
}

/// A command's outcome, as acknowledged.
pub type Outcome = (AckStatus, Option<String>);

/// Carries out commands other than `ping` (which the session answers at once): the real
/// screen's [`Actions`], or a simulated screen's [`crate::simfx::SimEffects`].
#[async_trait::async_trait]
pub trait Executor: Send + Sync + std::fmt::Debug {
    async fn run(&self, command_id: &str, action: CommandAction) -> Outcome;
}

#[async_trait::async_trait]
impl Executor for Actions {
    async fn run(&self, _command_id: &str, action: CommandAction) -> Outcome {
        Actions::run(self, action).await
    }
}

impl Actions {
    pub fn new(platform: Arc<dyn Platform>, latest: LatestFrame, server: Option<&str>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            platform,
            latest,
            http,
            server: server.map(|s| s.trim_end_matches('/').to_owned()),
        })
    }

    /// Carries out `action` (anything but `ping` and `diagnostics`, which the session answers
    /// at once).
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
            CommandAction::RefreshContent | CommandAction::RestartAgent | CommandAction::Reboot => {
                return (
                    AckStatus::Unsupported,
                    Some(format!("this agent version does not carry out {}", action.name())),
                );
            }
        };
        let platform = self.platform.clone();
        match tokio::task::spawn_blocking(move || platform.apply(effect)).await {
            Ok(Ok(how)) => {
                tracing::info!(?effect, how = %how, "applied");
                (AckStatus::Ok, Some(how))
            }
            Ok(Err(PlatformError::Unsupported(why))) => (AckStatus::Unsupported, Some(why)),
            Ok(Err(PlatformError::Failed(why))) => {
                tracing::warn!(?effect, error = %why, "platform effect failed");
                (AckStatus::Error, Some(why))
            }
            Err(e) => (AckStatus::Error, Some(format!("the platform task failed: {e}"))),
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
