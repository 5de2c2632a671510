//! What an operator asks for: a command, a target and the roll-out settings, checked with
//! field paths before anything is stored. The checked [`JobSpec`] is what the store keeps.

use chrono::Duration;
use luach_schemas::messages::{CommandAction, MAX_PERCENT};
use luach_schemas::params::{AgentSettings, package_name_problem};
use serde::{Deserialize, Serialize};

use crate::error::{FieldError, exactly_one};

/// Most screens one job may target.
pub const MAX_JOB_DEVICES: usize = 50_000;
/// Most executions in flight at once for one job.
pub const MAX_CONCURRENCY: u32 = 10_000;
/// Most retries of one execution.
pub const MAX_RETRIES: u32 = 10;
/// Longest per-execution time-out (a day).
pub const MAX_TIMEOUT_S: u32 = 86_400;
/// Longest job life (30 days): a screen away longer than that gets a new job, not this one.
pub const MAX_EXPIRES_IN_S: u64 = 30 * 86_400;
/// Default time a screen has to carry out an `update` (see [`JobCommand::default_timeout_s`]).
pub const UPDATE_TIMEOUT_S: u32 = 3_600;
/// Longest pause between retries (an hour; it doubles from `retry_backoff_s` up to this).
pub const MAX_BACKOFF_S: u32 = 3_600;
/// Most phases of a staged roll-out.
pub const MAX_PHASES: usize = 10;
/// Longest wait after a healthy phase before the next opens (a week).
pub const MAX_SOAK_S: u32 = 7 * 86_400;
/// Most maintenance windows of one job.
pub const MAX_WINDOWS: usize = 14;
/// A phase pauses its job when more than this share of its finished executions failed,
/// unless the roll-out says otherwise.
pub const DEFAULT_PAUSE_PERCENT: f64 = 20.0;

/// A command for screens. Commands without parameters are written as empty struct variants
/// so that `deny_unknown_fields` refuses stray fields on them too (serde ignores it for unit
/// variants of an internally tagged enum).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum JobCommand {
    /// Only an acknowledgement: is the screen there and does it take commands?
    Ping {},
    /// Upload the frame the screen shows; the execution's detail is the screenshot id.
    Screenshot {},
    /// Backlight or picture brightness, 0–100 %.
    Brightness {
        #[schemars(range(max = 100))]
        percent: u8,
    },
    /// Audio output volume, 0–100 %.
    Volume {
        #[schemars(range(max = 100))]
        percent: u8,
    },
    /// Display on or off (the agent keeps running and drawing).
    DisplayPower { on: bool },
    /// Fetch the screen's content bundle again now.
    RefreshContent {},
    /// Restart the agent process.
    RestartAgent {},
    /// Restart the device (where the platform allows it).
    Reboot {},
    /// The screen's versions, addresses, memory, disks, telemetry queue and recent log lines;
    /// the execution's detail is that report as JSON.
    Diagnostics {},
    /// Switch the display off and on by this schedule (as in the board settings: fixed
    /// times, zmanim or the first prayer) instead of the one the screen's content gives, until
    /// changed; `null` goes back to the content's schedule.
    PowerSchedule {
        schedule: Option<luach_content::PowerSchedule>,
    },
    /// Change agent settings (at least one); the agent keeps them and restarts to apply them.
    SetSettings { settings: AgentSettings },
    /// Install a package through the screen's package manager; each screen installs only
    /// what its own allow-list (`--allow-package`) names, and says so otherwise.
    InstallPackage {
        #[schemars(length(min = 1, max = 128))]
        package: String,
    },
    /// Update the agent to a release of the installation's registry (`GET /releases`): each
    /// screen verifies it against its own trusted root and counters, installs it, and answers
    /// once the new version passed its health check or was rolled back.
    Update {
        /// The release's id.
        #[schemars(length(min = 16, max = 16))]
        release: String,
        /// The release's signed metadata, filled in from the registry when the job is made
        /// (anything sent here is replaced).
        #[serde(default)]
        #[schemars(skip)]
        metadata: String,
    },
}

impl JobCommand {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ping {} => "ping",
            Self::Screenshot {} => "screenshot",
            Self::Brightness { .. } => "brightness",
            Self::Volume { .. } => "volume",
            Self::DisplayPower { .. } => "display_power",
            Self::RefreshContent {} => "refresh_content",
            Self::RestartAgent {} => "restart_agent",
            Self::Reboot {} => "reboot",
            Self::Diagnostics {} => "diagnostics",
            Self::PowerSchedule { .. } => "power_schedule",
            Self::SetSettings { .. } => "set_settings",
            Self::InstallPackage { .. } => "install_package",
            Self::Update { .. } => "update",
        }
    }

    /// How long a screen has to answer one attempt unless the job says: a minute, and for an
    /// update an hour (the download, the restart and the new version's health window).
    pub fn default_timeout_s(&self) -> u32 {
        match self {
            Self::Update { .. } => UPDATE_TIMEOUT_S,
            _ => 60,
        }
    }

    fn check(&self, errors: &mut Vec<FieldError>) {
        match self {
            Self::Brightness { percent } | Self::Volume { percent } if *percent > MAX_PERCENT => {
                errors.push(FieldError::new("command.percent", format!("must be 0–{MAX_PERCENT}")));
            }
            Self::PowerSchedule {
                schedule: Some(schedule),
            } => {
                if let Err(invalid) = schedule.validate() {
                    errors.push(FieldError::new(
                        format!("command.schedule.{}", invalid.path),
                        invalid.message,
                    ));
                }
            }
            Self::SetSettings { settings } => errors.extend(settings.problems().into_iter().map(|p| {
                let path = if p.path.is_empty() {
                    "command.settings".to_owned()
                } else {
                    format!("command.settings.{}", p.path)
                };
                FieldError::new(path, p.message)
            })),
            Self::InstallPackage { package } => {
                if let Some(why) = package_name_problem(package) {
                    errors.push(FieldError::new("command.package", why));
                }
            }
            _ => {}
        }
    }

    /// The message for the screen; `token` makes a device token for this send, for the
    /// commands that call the control plane back (screenshot upload, bundle fetch).
    pub fn action(&self, token: impl FnOnce() -> String) -> CommandAction {
        match self.clone() {
            Self::Ping {} => CommandAction::Ping,
            Self::Screenshot {} => CommandAction::Screenshot {
                path: format!(
                    "{}{}",
                    crate::api::SCREENSHOT_UPLOADS,
                    uuid::Uuid::now_v7().hyphenated()
                ),
                token: token(),
            },
            Self::Brightness { percent } => CommandAction::Brightness { percent },
            Self::Volume { percent } => CommandAction::Volume { percent },
            Self::DisplayPower { on } => CommandAction::DisplayPower { on },
            Self::RefreshContent {} => CommandAction::RefreshContent {
                path: crate::bundle::notify::FETCH_PATH.to_owned(),
                token: token(),
            },
            Self::RestartAgent {} => CommandAction::RestartAgent,
            Self::Reboot {} => CommandAction::Reboot,
            Self::Diagnostics {} => CommandAction::Diagnostics,
            Self::PowerSchedule { schedule } => CommandAction::PowerSchedule { schedule },
            Self::SetSettings { settings } => CommandAction::SetSettings { settings },
            Self::InstallPackage { package } => CommandAction::InstallPackage { package },
            Self::Update { release, metadata } => CommandAction::Update {
                metadata,
                path: format!("{}{release}/artifact", luach_schemas::messages::RELEASE_DOWNLOADS),
                token: token(),
            },
        }
    }
}

/// Which screens: exactly one of the five.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// These device ids, in this order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<String>>,
    /// Every screen carrying any of these tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Every screen of this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Every screen of the tenant (`true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<bool>,
    /// Every screen matching this saved fleet query (`/queries/{id}`) when the job is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// With any of the above: only this share of those screens (0–100 %, at least one
    /// screen), a stable sample chosen by the job's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
}

/// How far one phase of a staged roll-out reaches, counted over all the job's screens and
/// including the earlier phases: a number of screens or a percentage (exactly one).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub screens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub percent: Option<f64>,
}

/// A staged roll-out: the job's screens in phases, each opening by itself once the one before
/// is healthy (every screen that is online has answered, and no more than
/// `pause_failure_percent` % failed), after `soak_s`; the screens a phase did not reach form a
/// last phase. A phase that fails more pauses the job; resuming it accepts that phase and opens
/// the next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// 1–10 phases, each reaching further than the one before (for example 1 screen, 10 %,
    /// 50 %).
    pub phases: Vec<Phase>,
    /// Seconds to wait after a phase is healthy before the next opens (0–604800; default 0).
    #[serde(default)]
    pub soak_s: u32,
    /// A phase whose failed share of its finished executions passes this pauses the job
    /// (0–100; default 20).
    #[serde(default = "default_pause_percent")]
    pub pause_failure_percent: f64,
}

fn default_pause_percent() -> f64 {
    DEFAULT_PAUSE_PERCENT
}

/// A maintenance window in the local time of each screen's synagogue (UTC for a screen of no
/// synagogue): from `start` to `end` (`HH:MM`; an `end` not after `start` is on the next day),
/// on the given days (0 = Sunday … 6 = Saturday; default every day). A screen outside every
/// window waits for the next one to open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<Vec<u8>>,
    #[schemars(regex(pattern = r"^\d{2}:\d{2}$"))]
    pub start: String,
    #[schemars(regex(pattern = r"^\d{2}:\d{2}$"))]
    pub end: String,
}

impl Window {
    /// The window's times; `None` when either does not read as `HH:MM`.
    pub fn times(&self) -> Option<(chrono::NaiveTime, chrono::NaiveTime)> {
        let parse = |t: &str| {
            (t.len() == 5)
                .then(|| chrono::NaiveTime::parse_from_str(t, "%H:%M").ok())
                .flatten()
        };
        Some((parse(&self.start)?, parse(&self.end)?))
    }
}

/// Parallel: up to `concurrency` at once. Sequential: one at a time, in order, stopping at the
/// first failure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Parallel,
    Sequential,
}

/// Stop the job when more than `failure_percent` % of at least `min_executions` finished
/// executions failed or timed out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AbortRule {
    #[schemars(range(min = 0, max = 100))]
    pub failure_percent: f64,
    #[schemars(range(min = 1))]
    pub min_executions: u32,
}

/// `POST /jobs`: a command, its target and how to roll it out.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    pub command: JobCommand,
    pub target: Target,
    /// `parallel` (default) or `sequential`.
    #[serde(default)]
    pub mode: Mode,
    /// Executions in flight at once (1–10000; default 100; sequential: 1).
    pub concurrency: Option<u32>,
    /// Screens started per minute at most (default: no limit).
    pub rate_per_minute: Option<u32>,
    /// Retries after a failure or time-out (0–10; default 0).
    #[serde(default)]
    pub retries: u32,
    /// Pause before the first retry, doubling for each further one (1–3600 s; default 30).
    pub retry_backoff_s: Option<u32>,
    /// How long a screen has to answer one attempt (1–86400 s; default 60).
    pub timeout_s: Option<u32>,
    /// When the job ends even if screens never came online (1 s–30 days; default 7 days).
    pub expires_in_s: Option<u64>,
    pub abort: Option<AbortRule>,
    /// Goes through during Shabbat and Yom Tov. Tenant admins only; audited.
    #[serde(default)]
    pub emergency: bool,
    /// Roll out in phases that open by themselves (see [`Rollout`]).
    pub rollout: Option<Rollout>,
    /// Start executions only inside these windows (0–14; none: at any time).
    #[serde(default)]
    pub windows: Vec<Window>,
}

/// A checked job request, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobSpec {
    pub command: JobCommand,
    pub target: Target,
    pub mode: Mode,
    pub concurrency: u32,
    pub rate_per_minute: Option<u32>,
    pub retries: u32,
    pub retry_backoff_s: u32,
    pub timeout_s: u32,
    pub expires_in_s: u64,
    pub abort: Option<AbortRule>,
    pub emergency: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<Window>,
}

fn within<T: PartialOrd + Copy + std::fmt::Display>(
    errors: &mut Vec<FieldError>,
    path: &str,
    value: Option<T>,
    min: T,
    max: T,
    default: T,
) -> T {
    match value {
        Some(v) if v < min || v > max => {
            errors.push(FieldError::new(path, format!("must be {min}–{max}")));
            default
        }
        Some(v) => v,
        None => default,
    }
}

impl JobRequest {
    /// Checks every field; the errors carry body paths.
    pub fn check(self) -> Result<JobSpec, Vec<FieldError>> {
        let mut errors = Vec::new();
        self.command.check(&mut errors);
        check_target(&self.target, &mut errors);
        let concurrency = within(&mut errors, "concurrency", self.concurrency, 1, MAX_CONCURRENCY, 100);
        let default_timeout_s = self.command.default_timeout_s();
        let spec = JobSpec {
            command: self.command,
            target: self.target,
            mode: self.mode,
            concurrency: if self.mode == Mode::Sequential { 1 } else { concurrency },
            rate_per_minute: self
                .rate_per_minute
                .map(|r| within(&mut errors, "rate_per_minute", Some(r), 1, 1_000_000, 1)),
            retries: within(&mut errors, "retries", Some(self.retries), 0, MAX_RETRIES, 0),
            retry_backoff_s: within(
                &mut errors,
                "retry_backoff_s",
                self.retry_backoff_s,
                1,
                MAX_BACKOFF_S,
                30,
            ),
            timeout_s: within(
                &mut errors,
                "timeout_s",
                self.timeout_s,
                1,
                MAX_TIMEOUT_S,
                default_timeout_s,
            ),
            expires_in_s: within(
                &mut errors,
                "expires_in_s",
                self.expires_in_s,
                1,
                MAX_EXPIRES_IN_S,
                7 * 86_400,
            ),
            abort: self.abort,
            emergency: self.emergency,
            rollout: self.rollout,
            windows: self.windows,
        };
        if let Some(rollout) = &spec.rollout {
            check_rollout(rollout, &mut errors);
        }
        check_windows(&spec.windows, &mut errors);
        if let Some(rule) = spec.abort {
            if !(0.0..=100.0).contains(&rule.failure_percent) {
                errors.push(FieldError::new("abort.failure_percent", "must be 0–100"));
            }
            if rule.min_executions == 0 {
                errors.push(FieldError::new("abort.min_executions", "must be at least 1"));
            }
        }
        if errors.is_empty() { Ok(spec) } else { Err(errors) }
    }
}

fn check_rollout(r: &Rollout, errors: &mut Vec<FieldError>) {
    if r.phases.is_empty() || r.phases.len() > MAX_PHASES {
        errors.push(FieldError::new("rollout.phases", format!("give 1–{MAX_PHASES} phases")));
    }
    // Each phase must reach further than the one before: screens counts and percentages are
    // each compared with their own kind (a count and a percentage compare only once the job
    // knows its screens).
    let (mut screens, mut percent) = (0u32, 0.0f64);
    for (i, p) in r.phases.iter().enumerate() {
        let path = format!("rollout.phases[{i}]");
        match (p.screens, p.percent) {
            (Some(0), None) => errors.push(FieldError::new(format!("{path}.screens"), "must be at least 1")),
            (Some(n), None) if n <= screens => errors.push(FieldError::new(
                format!("{path}.screens"),
                "must reach more screens than the phase before",
            )),
            (Some(n), None) => screens = n,
            (None, Some(x)) if !(x > 0.0 && x <= 100.0) => {
                errors.push(FieldError::new(
                    format!("{path}.percent"),
                    "must be more than 0 and at most 100",
                ));
            }
            (None, Some(x)) if x <= percent => errors.push(FieldError::new(
                format!("{path}.percent"),
                "must reach a larger share than the phase before",
            )),
            (None, Some(x)) => percent = x,
            _ => errors.push(FieldError::new(path, "give exactly one of screens or percent")),
        }
    }
    if r.soak_s > MAX_SOAK_S {
        errors.push(FieldError::new("rollout.soak_s", format!("must be 0–{MAX_SOAK_S}")));
    }
    if !(0.0..=100.0).contains(&r.pause_failure_percent) {
        errors.push(FieldError::new("rollout.pause_failure_percent", "must be 0–100"));
    }
}

fn check_windows(windows: &[Window], errors: &mut Vec<FieldError>) {
    if windows.len() > MAX_WINDOWS {
        errors.push(FieldError::new("windows", format!("at most {MAX_WINDOWS} windows")));
    }
    for (i, w) in windows.iter().enumerate() {
        let path = format!("windows[{i}]");
        if w.times().is_none() {
            errors.push(FieldError::new(
                path.clone(),
                "start and end must be HH:MM (00:00–23:59)",
            ));
        }
        match &w.days {
            Some(days) if days.is_empty() => {
                errors.push(FieldError::new(format!("{path}.days"), "name at least one day"))
            }
            Some(days) => {
                for (j, d) in days.iter().enumerate() {
                    if *d > 6 {
                        errors.push(FieldError::new(
                            format!("{path}.days[{j}]"),
                            "must be 0 (Sunday)–6 (Saturday)",
                        ));
                    }
                }
            }
            None => {}
        }
    }
}

fn check_target(t: &Target, errors: &mut Vec<FieldError>) {
    let given = [
        t.devices.is_some(),
        t.tags.is_some(),
        t.group.is_some(),
        t.all.is_some(),
        t.query.is_some(),
    ];
    if !exactly_one(errors, "target", &given, "devices, tags, group, all or query") {
        return;
    }
    if t.percent.is_some_and(|p| !(p > 0.0 && p <= 100.0)) {
        errors.push(FieldError::new("target.percent", "must be more than 0 and at most 100"));
    }
    if t.query.as_ref().is_some_and(String::is_empty) {
        errors.push(FieldError::new("target.query", "must not be empty"));
        return;
    }
    match (&t.devices, &t.tags, &t.group, t.all) {
        (Some(devices), ..) => {
            if devices.is_empty() {
                errors.push(FieldError::new("target.devices", "name at least one device"));
            }
            if devices.len() > MAX_JOB_DEVICES {
                errors.push(FieldError::new(
                    "target.devices",
                    format!("at most {MAX_JOB_DEVICES} devices"),
                ));
            }
            let mut seen = std::collections::HashSet::new();
            for (i, d) in devices.iter().enumerate() {
                if !seen.insert(d) {
                    errors.push(FieldError::new(format!("target.devices[{i}]"), "named twice"));
                }
            }
        }
        (_, Some(tags), ..) if tags.is_empty() => {
            errors.push(FieldError::new("target.tags", "name at least one tag"));
        }
        (_, _, Some(group), _) if group.is_empty() => {
            errors.push(FieldError::new("target.group", "must not be empty"));
        }
        (.., Some(false)) => errors.push(FieldError::new("target.all", "must be true")),
        _ => {}
    }
}

impl JobSpec {
    /// The checked spec a stored job was created with.
    pub fn of(job: &crate::store::JobRecord) -> Result<Self, crate::store::StoreError> {
        serde_json::from_value(job.spec.clone())
            .map_err(|e| crate::store::StoreError::Corrupt(format!("job {} spec: {e}", job.id)))
    }

    pub fn timeout(&self) -> Duration {
        Duration::seconds(i64::from(self.timeout_s))
    }

    /// The pause before retry number `retry` (1 for the first).
    pub fn backoff(&self, retry: u32) -> Duration {
        let s = u64::from(self.retry_backoff_s) << retry.saturating_sub(1).min(16);
        Duration::seconds(i64::try_from(s.min(u64::from(MAX_BACKOFF_S))).unwrap_or(3_600))
    }

    pub fn expires_in(&self) -> Duration {
        Duration::seconds(i64::try_from(self.expires_in_s).unwrap_or(i64::MAX / 1_000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(v: serde_json::Value) -> JobRequest {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_documented_shape_is_accepted_with_defaults() {
        let spec = request(serde_json::json!({"command": {"type": "ping"}, "target": {"devices": ["a1"]}}))
            .check()
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(spec.concurrency, 100);
        assert_eq!(spec.timeout_s, 60);
        assert_eq!(spec.retries, 0);
        assert_eq!(spec.expires_in_s, 7 * 86_400);
        assert!(!spec.emergency);
    }

    #[test]
    fn errors_name_their_fields() {
        let errors = request(serde_json::json!({
            "command": {"type": "brightness", "percent": 140},
            "target": {"devices": ["a", "a"], "all": true},
            "concurrency": 0, "timeout_s": 100000, "abort": {"failure_percent": 120.0, "min_executions": 0}
        }))
        .check()
        .err()
        .unwrap_or_default();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        for p in [
            "command.percent",
            "target",
            "concurrency",
            "timeout_s",
            "abort.failure_percent",
            "abort.min_executions",
        ] {
            assert!(paths.contains(&p), "{p} missing from {paths:?}");
        }
        let errors = request(serde_json::json!({"command": {"type": "ping"}, "target": {"devices": ["a", "b", "a"]}}))
            .check()
            .err()
            .unwrap_or_default();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "target.devices[2]");
    }

    #[test]
    fn sequential_runs_one_at_a_time_and_backoff_doubles() {
        let spec = request(serde_json::json!({
            "command": {"type": "reboot"}, "target": {"all": true}, "mode": "sequential",
            "concurrency": 50, "retries": 3, "retry_backoff_s": 10
        }))
        .check()
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(spec.concurrency, 1);
        assert_eq!(spec.backoff(1), Duration::seconds(10));
        assert_eq!(spec.backoff(3), Duration::seconds(40));
        assert_eq!(
            JobSpec {
                retry_backoff_s: 3_000,
                ..spec
            }
            .backoff(5),
            Duration::seconds(3_600)
        );
    }

    #[test]
    fn unknown_commands_and_fields_are_refused() {
        for bad in [
            serde_json::json!({"command": {"type": "format_disk"}, "target": {"all": true}}),
            serde_json::json!({"command": {"type": "ping", "x": 1}, "target": {"all": true}}),
            serde_json::json!({"command": {"type": "ping"}, "target": {"all": true}, "speed": 1}),
        ] {
            assert!(serde_json::from_value::<JobRequest>(bad).is_err());
        }
    }

    #[test]
    fn rollouts_and_windows_are_checked_with_field_paths() {
        let spec = request(serde_json::json!({
            "command": {"type": "ping"}, "target": {"tags": ["lobby"], "percent": 50},
            "rollout": {"phases": [{"screens": 1}, {"percent": 10}, {"percent": 50}]},
            "windows": [{"start": "02:00", "end": "05:00"}, {"days": [5], "start": "22:00", "end": "01:00"}]
        }))
        .check()
        .unwrap_or_else(|e| panic!("{e:?}"));
        let rollout = spec.rollout.clone().unwrap_or_else(|| panic!("rollout"));
        assert_eq!(
            (rollout.soak_s, rollout.pause_failure_percent),
            (0, DEFAULT_PAUSE_PERCENT)
        );
        assert_eq!(spec.windows.len(), 2);
        // Stored specs without the new fields still read.
        let mut old = serde_json::to_value(&spec).unwrap_or_default();
        if let Some(o) = old.as_object_mut() {
            o.remove("rollout");
            o.remove("windows");
        }
        let old: JobSpec = serde_json::from_value(old).unwrap_or_else(|e| panic!("{e}"));
        assert!(old.rollout.is_none() && old.windows.is_empty());

        let errors = request(serde_json::json!({
            "command": {"type": "ping"}, "target": {"all": true, "percent": 0},
            "rollout": {
                "phases": [{"screens": 5}, {"screens": 5}, {"percent": 120}, {"screens": 0}, {"screens": 1, "percent": 1.0}, {}],
                "soak_s": 10000000, "pause_failure_percent": -1
            },
            "windows": [{"start": "25:00", "end": "01:00"}, {"days": [], "start": "01:00", "end": "02:00"},
                        {"days": [7], "start": "1:00", "end": "02:00"}]
        }))
        .check()
        .err()
        .unwrap_or_default();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        for p in [
            "target.percent",
            "rollout.phases[1].screens",
            "rollout.phases[2].percent",
            "rollout.phases[3].screens",
            "rollout.phases[4]",
            "rollout.phases[5]",
            "rollout.soak_s",
            "rollout.pause_failure_percent",
            "windows[0]",
            "windows[1].days",
            "windows[2]",
            "windows[2].days[0]",
        ] {
            assert!(paths.contains(&p), "{p} missing from {paths:?}");
        }
        let none = request(
            serde_json::json!({"command": {"type": "ping"}, "target": {"all": true}, "rollout": {"phases": []}}),
        )
        .check()
        .err()
        .unwrap_or_default();
        assert_eq!(none.first().map(|e| e.path.as_str()), Some("rollout.phases"));
    }
}
