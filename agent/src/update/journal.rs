//! The update journal: what the screen must remember across crashes, restarts and rollbacks
//! (`DIR/update/journal.json`, mode 0600, replaced atomically on every change).
//!
//! - the anti-rollback counters ([`Journal::highest_installed`], [`Journal::keys_floor`]),
//!   which only grow;
//! - versions that failed their health check ([`Journal::bad`]), never tried again;
//! - the update in progress before the swap ([`Journal::pending`]) and the trial of a
//!   swapped-in version ([`Journal::trial`]);
//! - the last outcome ([`Journal::last`]), until the control plane has been told.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use luach_ota::Version;
use serde::{Deserialize, Serialize};

/// Most versions remembered as bad (the oldest are forgotten first: they are older than
/// anything a roll-out would offer again).
pub const MAX_BAD: usize = 32;

/// Where an update stands before the swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Fetching the artifact (resumable).
    Download,
    /// The artifact is complete and being checked.
    Verify,
    /// Making the slot.
    Stage,
    /// The slot is complete; the links are being switched.
    Swap,
}

/// An update the old version is carrying out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The command that asked for it (answered when the update ends, whichever way).
    pub command_id: String,
    pub version: Version,
    pub phase: Phase,
    pub started_at: DateTime<Utc>,
}

/// A new version on trial: swapped in, not yet healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trial {
    pub command_id: String,
    pub version: Version,
    /// What a rollback returns to.
    pub previous: Version,
    /// Starts so far (the supervisor counts them before each start).
    pub starts: u32,
    /// When the health window of the first start ends; set at that start.
    #[serde(default)]
    pub deadline: Option<DateTime<Utc>>,
    /// Set (with why) just before the supervisor switches back, so a crash in the middle of
    /// a rollback finishes it at the next start.
    #[serde(default)]
    pub rolling_back: Option<Why>,
}

/// Why an update failed: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Why {
    pub code: String,
    pub reason: String,
}

impl Why {
    pub fn new(code: &str, reason: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            reason: reason.into(),
        }
    }
}

/// How an update ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// The new version passed its health check and stays.
    Committed,
    /// The new version failed; the previous one runs again.
    RolledBack,
    /// Refused before anything changed (verification, download, disk).
    Refused,
}

/// The last outcome, kept until the control plane has been told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub command_id: String,
    pub version: Version,
    pub ending: Ending,
    /// What went wrong (`health_timeout`, `crashed_at_start`, `interrupted`, …); `None` when
    /// committed.
    #[serde(default)]
    pub why: Option<Why>,
    pub at: DateTime<Utc>,
    /// The control plane has the answer.
    #[serde(default)]
    pub reported: bool,
}

/// Everything the journal holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    #[serde(default)]
    pub highest_installed: Option<Version>,
    #[serde(default)]
    pub keys_floor: u64,
    #[serde(default)]
    pub bad: BTreeSet<Version>,
    #[serde(default)]
    pub pending: Option<Pending>,
    #[serde(default)]
    pub trial: Option<Trial>,
    #[serde(default)]
    pub last: Option<Outcome>,
}

impl Journal {
    /// Marks `version` bad, forgetting the oldest beyond [`MAX_BAD`].
    pub fn mark_bad(&mut self, version: Version) {
        self.bad.insert(version);
        while self.bad.len() > MAX_BAD {
            self.bad.pop_first();
        }
    }

    /// Raises the anti-rollback counter (it never goes down).
    pub fn installed(&mut self, version: &Version) {
        if self.highest_installed.as_ref().is_none_or(|h| version > h) {
            self.highest_installed = Some(version.clone());
        }
    }
}

/// The journal file.
#[derive(Debug, Clone)]
pub struct JournalFile {
    path: PathBuf,
}

/// The journal cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[error("update journal {path}: {message}")]
pub struct JournalError {
    pub path: String,
    pub message: String,
}

impl JournalFile {
    pub fn new(update_dir: &Path) -> Self {
        Self {
            path: update_dir.join("journal.json"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, message: impl std::fmt::Display) -> JournalError {
        JournalError {
            path: self.path.display().to_string(),
            message: message.to_string(),
        }
    }

    /// The journal; an absent file is an empty journal. An unreadable one is an error: the
    /// counters in it must not silently reset.
    pub fn load(&self) -> Result<Journal, JournalError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| self.error(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Journal::default()),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Replaces the journal atomically and durably.
    pub fn save(&self, journal: &Journal) -> Result<(), JournalError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.error(e))?;
        }
        let bytes = serde_json::to_vec_pretty(journal).map_err(|e| self.error(e))?;
        luach_files::write_atomic(&self.path, &bytes, luach_files::Mode::Private).map_err(|e| self.error(e))
    }

    /// Loads, changes and saves; returns the saved journal.
    pub fn update(&self, change: impl FnOnce(&mut Journal)) -> Result<Journal, JournalError> {
        let mut journal = self.load()?;
        change(&mut journal);
        self.save(&journal)?;
        Ok(journal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn round_trips_and_counters_only_grow() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = JournalFile::new(dir.path());
        assert_eq!(file.load().unwrap_or_else(|e| panic!("{e}")), Journal::default());
        let saved = file
            .update(|j| {
                j.installed(&v("0.3.0"));
                j.installed(&v("0.2.0"));
                for minor in 0..40 {
                    j.mark_bad(v(&format!("1.{minor}.0")));
                }
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(saved.highest_installed, Some(v("0.3.0")));
        assert_eq!(saved.bad.len(), MAX_BAD);
        assert!(!saved.bad.contains(&v("1.0.0")) && saved.bad.contains(&v("1.39.0")));
        assert_eq!(file.load().unwrap_or_else(|e| panic!("{e}")), saved);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(file.path())
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0);
            assert_eq!(mode, 0o600);
        }
        std::fs::write(file.path(), b"{not json").unwrap_or_else(|e| panic!("{e}"));
        assert!(file.load().is_err(), "a damaged journal is an error, not a reset");
    }
}
