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
    /// Fetch the content bundle again now, in full, whatever the screen holds: `GET` `path`
    /// (`/api/v1/agent/bundle`) with the device token `token`. The ack's detail names the
    /// bundle's SHA-256.
    RefreshContent { path: String, token: String },
    /// Restart the agent process (its supervisor starts it again).
    RestartAgent,
    /// Restart the device.
    Reboot,
    /// Answer with what the agent knows of itself and its device (versions, addresses, memory,
    /// disks, its telemetry queue, its recent log lines): JSON in the acknowledgement's detail.
    Diagnostics,
    /// Follow this display power schedule instead of the one in the bundle's board settings,
    /// until changed; `null` goes back to the bundle's.
    PowerSchedule {
        schedule: Option<luach_content::PowerSchedule>,
    },
    /// Change the agent's settings (kept across restarts; the agent restarts to apply them).
    SetSettings { settings: crate::params::AgentSettings },
    /// Install `package` through the platform's package manager, when it is on the screen's
    /// own allow-list.
    InstallPackage { package: String },
    /// Update the agent to a signed release: `metadata` is the release's metadata file (JSON,
    /// `luach-ota` format, at most 64 KiB), the artifact is fetched from `path` on the control
    /// plane with the device token `token`. The screen verifies both against its own trusted
    /// root and counters; the first answer is `received`, the outcome comes after the new
    /// version passed its health check (`ok`) or was rolled back (`error`, with the reason).
    Update {
        metadata: String,
        path: String,
        token: String,
    },
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
            Self::RefreshContent { .. } => "refresh_content",
            Self::RestartAgent => "restart_agent",
            Self::Reboot => "reboot",
            Self::Diagnostics => "diagnostics",
            Self::PowerSchedule { .. } => "power_schedule",
            Self::SetSettings { .. } => "set_settings",
            Self::InstallPackage { .. } => "install_package",
            Self::Update { .. } => "update",
        }
    }
}

/// Where release artifacts are downloaded from on the control plane (`{id}/artifact` below
/// it): the path an [`CommandAction::Update`] names, and the only one a screen sends its
/// device token to for one.
pub const RELEASE_DOWNLOADS: &str = "/api/v1/agent/releases/";

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

/// Most records in one telemetry message.
pub const MAX_TELEMETRY_RECORDS: usize = 100;

/// Records from a screen's on-disk telemetry queue, oldest first, sent on `up/telemetry`.
///
/// `stream` names the queue (a random id made when the queue was created, so a screen whose
/// state was wiped starts a new stream rather than reusing sequence numbers); `seq` numbers its
/// records from 1 without gaps. The control plane stores each (device, stream, seq) once and
/// answers on `down/stored`; the screen deletes records only then. Sequence numbers only grow;
/// a number is skipped where the screen dropped a record it could not keep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TelemetryBatch {
    /// The queue's id: 8 to 32 characters, lower-case letters and digits.
    pub stream: String,
    /// Records with increasing sequence numbers, oldest first; 1 to 100.
    pub records: Vec<TelemetryRecord>,
    /// Records this stream has dropped since it was created, because its disk budget was full.
    #[serde(default)]
    pub dropped: u64,
}

/// One telemetry record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TelemetryRecord {
    /// Position in the stream, from 1.
    pub seq: u64,
    /// When the screen made the record (its clock).
    pub at: DateTime<Utc>,
    pub data: TelemetryData,
}

/// What a telemetry record holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TelemetryData {
    /// A metrics sample.
    Metrics { metrics: Metrics },
    /// Something that happened on the screen (`name` is a short snake_case word).
    Event {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
}

impl TelemetryData {
    /// The record kind's name (`metrics`, `event`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Metrics { .. } => "metrics",
            Self::Event { .. } => "event",
        }
    }
}

impl TelemetryBatch {
    /// Checks what the schema cannot say: the stream id, the record count, increasing
    /// sequence numbers from at least 1, and short event texts.
    pub fn validate(&self) -> Result<(), String> {
        let id_ok = (8..=32).contains(&self.stream.len())
            && self
                .stream
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !id_ok {
            return Err("stream must be 8 to 32 lower-case letters and digits".into());
        }
        if self.records.is_empty() || self.records.len() > MAX_TELEMETRY_RECORDS {
            return Err(format!("records must hold 1 to {MAX_TELEMETRY_RECORDS} records"));
        }
        let mut previous = 0;
        for (i, r) in self.records.iter().enumerate() {
            if r.seq <= previous {
                return Err(format!(
                    "records/{i}/seq must be at least 1 and above the one before it"
                ));
            }
            previous = r.seq;
            if let TelemetryData::Event { name, detail } = &r.data {
                let name_ok = (1..=64).contains(&name.len())
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !name_ok {
                    return Err(format!("records/{i}/name must be 1 to 64 characters of a-z, 0-9 and _"));
                }
                if detail.as_ref().is_some_and(|d| d.len() > 1_024) {
                    return Err(format!("records/{i}/detail must be at most 1024 bytes"));
                }
            }
        }
        Ok(())
    }

    /// The first and last sequence numbers (a validated batch has at least one record).
    pub fn range(&self) -> (u64, u64) {
        let first = self.records.first().map_or(0, |r| r.seq);
        let last = self.records.last().map_or(0, |r| r.seq);
        (first, last)
    }
}

/// The control plane's answer to a telemetry batch on `down/stored`: records `first..=last`
/// of `stream` are in its store (or were already), so the screen may delete them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stored {
    pub stream: String,
    pub first: u64,
    pub last: u64,
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
