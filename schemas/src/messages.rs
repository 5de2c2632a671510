//! Message bodies, one struct per message type.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Sent on every (re)connection: who the agent is and how it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    /// Agent build version (semver).
    pub agent_version: String,
    /// Random id of this MQTT session; the last will carries the same id so a stale will
    /// (from a connection that has already been replaced) can be recognised and ignored.
    pub session: String,
    /// Operating system and architecture, e.g. "linux-x86_64".
    pub platform: String,
    /// The address the device uses on its local network, when it can tell.
    #[serde(default)]
    pub ip: Option<String>,
    /// Seconds since the device booted.
    #[serde(default)]
    pub uptime_s: u64,
}

/// Periodic liveness signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    pub session: String,
    pub uptime_s: u64,
}

/// Periodic health metrics. Fields a system cannot provide are absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Whole-system CPU use, 0–100.
    pub cpu_percent: f32,
    pub mem_used_bytes: u64,
    pub mem_total_bytes: u64,
    pub disk_used_bytes: u64,
    pub disk_total_bytes: u64,
    /// Hottest sensor the system exposes, in °C.
    #[serde(default)]
    pub temperature_c: Option<f32>,
    pub uptime_s: u64,
    pub agent_version: String,
}

/// Outcome of a command, sent by the device on `up/ack`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    /// The `command_id` of the command being acknowledged.
    pub command_id: String,
    pub status: AckStatus,
    /// Human-readable detail (error message, result summary).
    #[serde(default)]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AckStatus {
    /// Received and started; the outcome follows in a second acknowledgement. Not an outcome:
    /// an agent that runs a command at once may skip it.
    Received,
    /// Carried out.
    Ok,
    /// Understood but failed.
    Error,
    /// Not understood by this agent version.
    Unsupported,
}

/// Device-side events on `up/event`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// The agent's MQTT last will: the session ended without a clean goodbye.
    Offline { session: String },
    /// The agent is shutting down on purpose.
    Goodbye { session: String },
}

/// A command for a device on `down/command`.
///
/// (No `deny_unknown_fields` here: serde cannot combine it with the flattened action.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Command {
    /// Unique id; the device acknowledges with it and ignores repeats.
    pub command_id: String,
    /// Latest moment the command is still meaningful; devices drop expired commands.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(flatten)]
    pub action: CommandAction,
}

/// What a command asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum CommandAction {
    /// Answer with an acknowledgement; proves the command path end to end.
    Ping,
    /// Upload the frame on the screen now as a PNG: `PUT` to `path` on the control plane with
    /// the device token `token` (header `x-luach-device-token`). The ack's detail is the
    /// screenshot's id once the upload is stored.
    Screenshot { path: String, token: String },
    /// Set the display's backlight or picture brightness, 0–100 %.
    Brightness { percent: u8 },
    /// Set the audio output volume, 0–100 %.
    Volume { percent: u8 },
    /// Turn the display on or off (the agent keeps running and drawing).
    DisplayPower { on: bool },
    /// Fetch the content bundle again now, whatever the last notice said.
    RefreshContent,
    /// Restart the agent process (its supervisor starts it again).
    RestartAgent,
    /// Restart the device.
    Reboot,
}

impl CommandAction {
    /// The action's name on the wire (`ping`, `screenshot`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ping => "ping",
            Self::Screenshot { .. } => "screenshot",
            Self::Brightness { .. } => "brightness",
            Self::Volume { .. } => "volume",
            Self::DisplayPower { .. } => "display_power",
            Self::RefreshContent => "refresh_content",
            Self::RestartAgent => "restart_agent",
            Self::Reboot => "reboot",
        }
    }
}

/// Largest percentage a [`CommandAction::Brightness`] or [`CommandAction::Volume`] carries.
pub const MAX_PERCENT: u8 = 100;

/// A screen's content bundle has (or may have) a new version, on `down/bundle`. Sent when the
/// screen connects and whenever its content changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BundleNotice {
    /// Hex SHA-256 of the current bundle; a screen that has it does nothing.
    pub sha256: String,
    /// Path on the control plane to fetch it from (`/api/v1/agent/bundle`).
    pub path: String,
    /// Credential for that fetch (header `x-luach-device-token`); names this device only.
    pub token: String,
    /// When `token` stops being accepted.
    pub token_expires_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_json_shape() {
        let c = Command {
            command_id: "c1".into(),
            expires_at: None,
            action: CommandAction::Ping,
        };
        let json = serde_json::to_value(&c).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({"command_id": "c1", "expires_at": null, "action": "ping"})
        );
    }

    #[test]
    fn display_commands_carry_their_parameters_flat() {
        let c = Command {
            command_id: "c2".into(),
            expires_at: None,
            action: CommandAction::DisplayPower { on: false },
        };
        let json = serde_json::to_value(&c).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({"command_id": "c2", "expires_at": null, "action": "display_power", "on": false})
        );
        let back: Command = serde_json::from_value(serde_json::json!(
            {"command_id": "c3", "action": "brightness", "percent": 40}
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.action, CommandAction::Brightness { percent: 40 });
        assert_eq!(back.action.name(), "brightness");
    }

    #[test]
    fn event_json_shape() {
        let e = Event::Offline { session: "s".into() };
        let json = serde_json::to_value(&e).unwrap_or_default();
        assert_eq!(json, serde_json::json!({"event": "offline", "session": "s"}));
    }
}
