//! Signed updates of the agent itself, with automatic rollback.
//!
//! A screen on a synagogue wall may be out of reach for weeks, so an update must never leave
//! it without a working agent, and only a release signed under the installation's root may
//! ever run. The pieces:
//!
//! - [`layout`]: the install directory, one slot per version, `current`/`previous` links
//!   switched atomically;
//! - [`journal`]: what survives crashes (anti-rollback counters, bad versions, the update in
//!   progress, the trial, the last outcome);
//! - [`install`]: the old version's half: verify the metadata (`luach-ota`: signature chain to
//!   the trusted root, expiry, target, anti-rollback, key-list floor) → fetch the artifact
//!   resumably ([`fetch`]), checked as it arrives and again from disk → stage the slot →
//!   switch `current` → exit for the supervisor;
//! - [`supervise`]: `luach-agent supervise`, the small process systemd runs: it starts
//!   `current`, counts the starts of a version on trial, and rolls back after
//!   [`supervise::MAX_STARTS`] failed starts or when the health window passes;
//! - [`trial`]: the new version's half: healthy means connected, the board drawn, and the
//!   control plane storing its telemetry; then it commits (the counter moves up, the supervisor
//!   copy is refreshed) and answers the command.
//!
//! Every step that changes files is ordered so that a power cut or `SIGKILL` at any moment
//! leaves `current` naming a complete slot of the old or the new version, and the journal
//! saying which (see `docs/ota.md`, "On the screen").

pub mod fetch;
pub mod install;
pub mod journal;
pub mod layout;
pub mod supervise;
pub mod trial;

use luach_ota::{OtaError, Version};

pub use install::Updater;
pub use journal::{Journal, JournalFile};
pub use layout::Layout;

/// The supervisor sets this to the install directory in the agent's environment; updates
/// are carried out only under a supervisor.
pub const INSTALL_DIR_ENV: &str = "LUACH_INSTALL_DIR";
/// The agent's exit status asking the supervisor to start `current` again at once (a new
/// version was switched in).
pub const EXIT_SWITCHED: i32 = 75;
/// Crash-consistency tests only: the agent or supervisor kills itself with `SIGKILL` when it
/// reaches the named point (`download`, `verify`, `stage`, `swap`, `first_start`, `health`,
/// `commit`, `rollback`).
pub const KILL_AT_ENV: &str = "LUACH_TEST_KILL_AT";
/// With [`KILL_AT_ENV`]: kill only once, the first process to create this file.
pub const KILL_ONCE_ENV: &str = "LUACH_TEST_KILL_ONCE";

/// Rollback tests only: makes this build behave as a broken release would when it runs as a
/// named version: `LUACH_TEST_FAULT=0.3.0:exit,0.4.0:hang,0.5.0:offline` (see [`Fault`]).
/// The supervisor passes its environment on, so one screen can be sent several broken
/// releases that are all real builds of the agent.
pub const FAULT_ENV: &str = "LUACH_TEST_FAULT";

/// How a build misbehaves under [`FAULT_ENV`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Exits with an error as soon as it starts.
    Exit,
    /// Runs but never connects, draws or reports.
    Hang,
    /// Runs, but every address of the control plane it tries is unreachable.
    Offline,
}

impl Fault {
    /// The fault `spec` (the value of [`FAULT_ENV`]) names for `version`. Malformed entries
    /// name nothing.
    pub fn parse(spec: &str, version: &str) -> Option<Self> {
        spec.split(',').find_map(|entry| {
            let (v, kind) = entry.trim().split_once(':')?;
            if v != version {
                return None;
            }
            match kind {
                "exit" => Some(Self::Exit),
                "hang" => Some(Self::Hang),
                "offline" => Some(Self::Offline),
                _ => None,
            }
        })
    }

    /// The fault this process was started with, for the version it runs as.
    pub fn injected() -> Option<Self> {
        let spec = std::env::var(FAULT_ENV).ok()?;
        Self::parse(&spec, crate::sampler::agent_version())
    }
}

/// Why an update did not happen.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(transparent)]
    Ota(#[from] OtaError),
    #[error("download failed: {0}")]
    Download(String),
    #[error("{0}")]
    Io(String),
    #[error("version {0} failed its health check on this screen before; it is not tried again")]
    KnownBad(Version),
    #[error("version {0} is on trial; the next update waits for its outcome")]
    Busy(Version),
    #[error("updates need the agent to run under `luach-agent supervise` (the screen's service)")]
    NotSupervised,
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
}

impl UpdateError {
    /// A stable code for the control plane: `luach-ota`'s for verification failures.
    pub fn code(&self) -> &'static str {
        match self {
            UpdateError::Ota(e) => e.code().as_str(),
            UpdateError::Download(_) => "download",
            UpdateError::Io(_) => "io",
            UpdateError::KnownBad(_) => "known_bad",
            UpdateError::Busy(_) => "busy",
            UpdateError::NotSupervised => "not_supervised",
            UpdateError::Journal(_) => "journal",
        }
    }
}

/// Crash-consistency tests: dies here with `SIGKILL` when [`KILL_AT_ENV`] names `point`.
pub fn kill_point(point: &str) {
    let once = || match std::env::var_os(KILL_ONCE_ENV) {
        Some(marker) => std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(marker)
            .is_ok(),
        None => true,
    };
    if std::env::var(KILL_AT_ENV).is_ok_and(|p| p == point) && once() {
        tracing::warn!(point, "killing myself for a crash test");
        let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        // The signal is delivered before this returns; never go on past the point.
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

#[cfg(test)]
mod tests {
    use super::Fault;

    #[test]
    fn faults_are_named_per_version() {
        let spec = "0.3.0:exit, 0.4.0:hang,0.5.0:offline,0.6.0:melt,junk";
        assert_eq!(Fault::parse(spec, "0.3.0"), Some(Fault::Exit));
        assert_eq!(Fault::parse(spec, "0.4.0"), Some(Fault::Hang));
        assert_eq!(Fault::parse(spec, "0.5.0"), Some(Fault::Offline));
        assert_eq!(Fault::parse(spec, "0.6.0"), None);
        assert_eq!(Fault::parse(spec, "0.2.0"), None);
    }
}
