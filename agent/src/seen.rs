//! The command ids a screen has seen, kept across restarts, so each command runs at most once.
//!
//! A command is recorded (and the record written to disk) before it runs, and its outcome when
//! it ends. When the same id comes again (the broker redelivers it, or the control plane sends it
//! again after its own restart):
//! - with an outcome: the same acknowledgement is sent again, the command is not run;
//! - still running in this process: nothing is sent, its acknowledgement will follow;
//! - recorded by an earlier run of the agent without an outcome (it stopped while the command
//!   ran): it is acknowledged as an error and not run again, since it may have taken effect.
//!
//! The file (`<state-dir>/commands-seen.jsonl`) is a log of JSON lines: one when a command is
//! received, one when it ends. It is appended with a sync per line and rewritten (to a temporary
//! file, then renamed) with the remembered ids only when it reaches four lines per id kept
//! ([`MAX_SEEN`]). Ids whose command has
//! expired are forgotten: an expired command is dropped before it is looked up.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use luach_schemas::messages::AckStatus;
use serde::{Deserialize, Serialize};

/// Most command ids remembered.
pub const MAX_SEEN: usize = 4096;
/// The file under the state directory.
pub const FILE: &str = "commands-seen.jsonl";

/// What is known of a command id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Never seen: it is recorded now and should run.
    New,
    /// Running in this process.
    Running,
    /// Ended with this outcome.
    Done(AckStatus, Option<String>),
    /// Received by an earlier run of the agent, which stopped before it ended.
    Interrupted,
}

#[derive(Debug, Clone)]
struct Entry {
    expires_at: Option<DateTime<Utc>>,
    outcome: Option<(AckStatus, Option<String>)>,
    /// Recorded by an earlier run (without an outcome, it was interrupted).
    earlier: bool,
}

/// One line of the file.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<AckStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    order: VecDeque<String>,
    entries: HashMap<String, Entry>,
    file: Option<PathBuf>,
    /// Lines in the file.
    lines: usize,
}

/// The seen set, shared by the session and the tasks that run its commands.
#[derive(Debug, Clone, Default)]
pub struct SeenCommands {
    inner: Arc<Mutex<Inner>>,
}

impl SeenCommands {
    /// A set kept in memory only (simulated screens).
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// The set kept in `state_dir`, with what earlier runs recorded.
    pub fn open(state_dir: &Path) -> Self {
        let path = state_dir.join(FILE);
        let mut inner = Inner {
            file: Some(path.clone()),
            ..Inner::default()
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for line in text.lines() {
                    // A line cut short by a crash is skipped; the rest still count.
                    let Ok(line) = serde_json::from_str::<Line>(line) else {
                        continue;
                    };
                    inner.lines += 1;
                    match line.status {
                        Some(status) => {
                            if let Some(entry) = inner.entries.get_mut(&line.id) {
                                entry.outcome = Some((status, line.detail));
                            }
                        }
                        None => inner.insert(line.id, line.expires_at, true),
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "the seen commands could not be read"),
        }
        inner.forget_expired(Utc::now());
        Self {
            inner: Arc::new(Mutex::new(inner)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Looks `id` up; a new id is recorded (on disk first) and should run.
    pub fn receive(&self, id: &str, expires_at: Option<DateTime<Utc>>) -> Seen {
        let mut inner = self.lock();
        if let Some(entry) = inner.entries.get(id) {
            return match (&entry.outcome, entry.earlier) {
                (Some((status, detail)), _) => Seen::Done(*status, detail.clone()),
                (None, true) => Seen::Interrupted,
                (None, false) => Seen::Running,
            };
        }
        inner.insert(id.to_owned(), expires_at, false);
        inner.append(&Line {
            id: id.to_owned(),
            expires_at,
            status: None,
            detail: None,
        });
        Seen::New
    }

    /// Records how the command `id` ended.
    pub fn finish(&self, id: &str, status: AckStatus, detail: Option<String>) {
        let mut inner = self.lock();
        let Some(entry) = inner.entries.get_mut(id) else { return };
        entry.outcome = Some((status, detail.clone()));
        inner.append(&Line {
            id: id.to_owned(),
            expires_at: None,
            status: Some(status),
            detail,
        });
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    fn insert(&mut self, id: String, expires_at: Option<DateTime<Utc>>, earlier: bool) {
        if self.entries.contains_key(&id) {
            return;
        }
        while self.order.len() >= MAX_SEEN {
            if let Some(old) = self.order.pop_front() {
                self.entries.remove(&old);
            }
        }
        self.order.push_back(id.clone());
        self.entries.insert(
            id,
            Entry {
                expires_at,
                outcome: None,
                earlier,
            },
        );
    }

    fn forget_expired(&mut self, now: DateTime<Utc>) {
        let entries = &mut self.entries;
        self.order.retain(|id| {
            let keep = entries.get(id).is_some_and(|e| e.expires_at.is_none_or(|t| t >= now));
            if !keep {
                entries.remove(id);
            }
            keep
        });
    }

    fn append(&mut self, line: &Line) {
        let Some(path) = self.file.clone() else { return };
        if self.lines >= 4 * MAX_SEEN {
            self.forget_expired(Utc::now());
            if let Err(e) = self.rewrite(&path) {
                tracing::warn!(path = %path.display(), error = %e, "the seen commands could not be compacted");
            }
        }
        let written = (|| -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
            let mut text = serde_json::to_vec(line).map_err(std::io::Error::other)?;
            text.push(b'\n');
            file.write_all(&text)?;
            file.sync_data()
        })();
        match written {
            Ok(()) => self.lines += 1,
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "a seen command could not be recorded"),
        }
    }

    /// Writes the remembered ids alone to a new file and puts it in place.
    fn rewrite(&mut self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("jsonl.tmp");
        let mut out = Vec::new();
        let mut lines = 0;
        for id in &self.order {
            let Some(entry) = self.entries.get(id) else { continue };
            let mut push = |line: &Line| -> std::io::Result<()> {
                out.extend(serde_json::to_vec(line).map_err(std::io::Error::other)?);
                out.push(b'\n');
                lines += 1;
                Ok(())
            };
            push(&Line {
                id: id.clone(),
                expires_at: entry.expires_at,
                status: None,
                detail: None,
            })?;
            if let Some((status, detail)) = &entry.outcome {
                push(&Line {
                    id: id.clone(),
                    expires_at: None,
                    status: Some(*status),
                    detail: detail.clone(),
                })?;
            }
        }
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&out)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        self.lines = lines;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_runs_once_across_restarts() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let seen = SeenCommands::open(dir.path());
        assert_eq!(seen.receive("a", None), Seen::New);
        assert_eq!(seen.receive("a", None), Seen::Running);
        seen.finish("a", AckStatus::Ok, Some("pong".into()));
        assert_eq!(seen.receive("b", None), Seen::New);
        // The agent stops while `b` runs.
        let again = SeenCommands::open(dir.path());
        assert_eq!(again.receive("a", None), Seen::Done(AckStatus::Ok, Some("pong".into())));
        assert_eq!(again.receive("b", None), Seen::Interrupted);
        assert_eq!(again.receive("c", None), Seen::New);
    }

    #[test]
    fn expired_and_cut_lines_are_forgotten_and_the_file_stays_bounded() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let seen = SeenCommands::open(dir.path());
        let past = Utc::now() - chrono::Duration::minutes(1);
        assert_eq!(seen.receive("old", Some(past)), Seen::New);
        assert_eq!(seen.receive("kept", None), Seen::New);
        // A crash in the middle of a line.
        let path = dir.path().join(FILE);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{e}"));
        file.write_all(b"{\"id\":\"ha").unwrap_or_else(|e| panic!("{e}"));
        let again = SeenCommands::open(dir.path());
        assert_eq!(again.len(), 1);
        assert_eq!(again.receive("old", None), Seen::New);
        assert_eq!(again.receive("kept", None), Seen::Interrupted);

        let many = SeenCommands::open(&dir.path().join("many"));
        std::fs::create_dir_all(dir.path().join("many")).unwrap_or_else(|e| panic!("{e}"));
        for i in 0..3 * MAX_SEEN {
            let id = i.to_string();
            many.receive(&id, None);
            many.finish(&id, AckStatus::Ok, None);
        }
        assert_eq!(many.len(), MAX_SEEN);
        let lines = std::fs::read_to_string(dir.path().join("many").join(FILE))
            .unwrap_or_default()
            .lines()
            .count();
        assert!(lines <= 4 * MAX_SEEN, "{lines} lines");
        let reopened = SeenCommands::open(&dir.path().join("many"));
        assert_eq!(reopened.len(), MAX_SEEN);
        let last = (3 * MAX_SEEN - 1).to_string();
        assert_eq!(reopened.receive(&last, None), Seen::Done(AckStatus::Ok, None));
        assert_eq!(reopened.receive("0", None), Seen::New);
    }
}
