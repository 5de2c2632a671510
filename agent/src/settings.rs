//! What the control plane may change on a screen and the screen keeps across restarts:
//! agent settings (`set_settings`) and an operator's display power schedule
//! (`power_schedule`).
//!
//! - `<state-dir>/settings.json`: [`AgentSettings`]. At start these win over the command-line
//!   flags they name (the flags stay the defaults); delete the file to go back to the flags.
//! - `<state-dir>/power-schedule.json`: `{"schedule": …}`, followed by the screen instead of the
//!   bundle's schedule while present; the command with `null` removes it.
//!
//! Both are written atomically (a temporary file renamed into place), readable by the agent's
//! user only. A file that cannot be read or parsed is reported and ignored (the flags or the
//! bundle's schedule apply), never fatal.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use luach_content::PowerSchedule;
use luach_schemas::params::AgentSettings;
use serde::{Deserialize, Serialize};

/// The settings file under the state directory.
pub const SETTINGS_FILE: &str = "settings.json";
/// The power schedule file under the state directory.
pub const POWER_FILE: &str = "power-schedule.json";

/// Writes `bytes` to `path` atomically, readable by the agent's user only.
fn keep(path: &Path, bytes: &[u8]) -> Result<(), String> {
    luach_pki::write_atomic(path, bytes, luach_pki::FileMode::Private)
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read; ignored");
            return None;
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "not valid; ignored");
            None
        }
    }
}

/// Settings received from the control plane, as kept in `settings.json`.
pub fn load_settings(state_dir: &Path) -> AgentSettings {
    let settings: AgentSettings = read_json(&state_dir.join(SETTINGS_FILE)).unwrap_or_default();
    // An empty file is fine (nothing set); out-of-range values are not applied.
    if settings != AgentSettings::default()
        && let Err(problems) = settings.check()
    {
        tracing::warn!(%problems, "settings.json ignored");
        return AgentSettings::default();
    }
    settings
}

/// Checks `newer`, merges it over the kept settings and keeps the result; the merged
/// settings, or the problems as one line.
pub fn save_settings(state_dir: &Path, newer: &AgentSettings) -> Result<AgentSettings, String> {
    newer.check()?;
    let merged = load_settings(state_dir).merged(newer);
    let bytes = serde_json::to_vec_pretty(&merged).map_err(|e| e.to_string())?;
    keep(&state_dir.join(SETTINGS_FILE), &bytes)?;
    Ok(merged)
}

#[derive(Debug, Serialize, Deserialize)]
struct PowerFile {
    schedule: Option<PowerSchedule>,
}

/// Why `schedule` cannot be followed, as one line with its path (`schedule.off.fixed: …`).
pub fn check_schedule(schedule: &PowerSchedule) -> Result<(), String> {
    schedule
        .validate()
        .map_err(|e| format!("schedule.{}: {}", e.path, e.message))
}

/// The operator's power schedule, shared by the screen (which follows it) and the command
/// that changes it.
#[derive(Debug, Clone)]
pub struct PowerOverride {
    current: Arc<Mutex<Option<PowerSchedule>>>,
    file: PathBuf,
}

impl PowerOverride {
    /// Loads the kept schedule from `state_dir`, which later changes are written to.
    pub fn open(state_dir: &Path) -> Self {
        let file = state_dir.join(POWER_FILE);
        let schedule = read_json::<PowerFile>(&file)
            .and_then(|f| f.schedule)
            .filter(|s| match s.validate() {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(path = %e.path, error = %e.message, "kept power schedule ignored");
                    false
                }
            });
        Self {
            current: Arc::new(Mutex::new(schedule)),
            file,
        }
    }

    pub fn get(&self) -> Option<PowerSchedule> {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Checks and keeps `schedule` (`None` removes it); the screen follows it from its next
    /// frame.
    pub fn set(&self, schedule: Option<PowerSchedule>) -> Result<(), String> {
        match &schedule {
            Some(s) => {
                check_schedule(s)?;
                let bytes = serde_json::to_vec_pretty(&PowerFile {
                    schedule: schedule.clone(),
                })
                .map_err(|e| e.to_string())?;
                keep(&self.file, &bytes)?;
            }
            None => match std::fs::remove_file(&self.file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("removing {POWER_FILE}: {e}")),
            },
        }
        *self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = schedule;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_merge_and_survive_a_restart_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(load_settings(dir.path()), AgentSettings::default());
        let first = AgentSettings {
            heartbeat_secs: Some(10),
            ..AgentSettings::default()
        };
        save_settings(dir.path(), &first).unwrap_or_else(|e| panic!("{e}"));
        let second = AgentSettings {
            metrics_secs: Some(5),
            ..AgentSettings::default()
        };
        let merged = save_settings(dir.path(), &second).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((merged.heartbeat_secs, merged.metrics_secs), (Some(10), Some(5)));
        assert_eq!(load_settings(dir.path()), merged);
        let bad = AgentSettings {
            keep_alive_secs: Some(1),
            ..AgentSettings::default()
        };
        let err = save_settings(dir.path(), &bad).err().unwrap_or_default();
        assert!(err.contains("keep_alive_secs: must be 5–600"), "{err}");
        assert_eq!(load_settings(dir.path()), merged);
        // A damaged file is ignored, not fatal.
        std::fs::write(dir.path().join(SETTINGS_FILE), b"{not json").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(load_settings(dir.path()), AgentSettings::default());
    }

    #[test]
    fn the_power_override_is_kept_and_cleared() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let schedule: PowerSchedule =
            serde_json::from_value(serde_json::json!({"off": {"fixed": "23:00"}, "on": {"first_prayer": -30}}))
                .unwrap_or_else(|e| panic!("{e}"));
        let kept = PowerOverride::open(dir.path());
        assert_eq!(kept.get(), None);
        kept.set(Some(schedule.clone())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(PowerOverride::open(dir.path()).get(), Some(schedule));
        let bad: PowerSchedule =
            serde_json::from_value(serde_json::json!({"off": {"fixed": "25:00"}, "on": {"fixed": "06:00"}}))
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(kept.set(Some(bad)).is_err());
        kept.set(None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(PowerOverride::open(dir.path()).get(), None);
        assert!(!dir.path().join(POWER_FILE).exists());
    }
}
