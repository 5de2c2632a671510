//! The old version's half of an update: from the `update` command to the switch.
//!
//! Order, each step recorded in the journal before it starts:
//!
//! 1. verify the metadata (signatures to the trusted root, key-list floor, target, expiry,
//!    anti-rollback) and refuse a version that failed here before;
//! 2. `download`: complete the partial file, checked as it arrives ([`super::fetch`]);
//! 3. `verify`: check the complete file from disk again;
//! 4. `stage`: make the slot (temporary name, flushed, renamed);
//! 5. `swap`: record the trial, point `previous` at the running version, then `current` at the
//!    new one (one atomic rename);
//! 6. exit with [`super::EXIT_SWITCHED`]; the supervisor starts the new version.
//!
//! A crash before step 5's switch leaves `current` on the old version and a stale
//! [`Pending`] that the next start reports as interrupted; a crash after it is the trial the
//! supervisor runs. Nothing executable comes from bytes that were not fully checked.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use luach_ota::{Channel, Policy, Target, TrustedRoot, VerifiedRelease, Version, verify_artifact_file};
use tokio_util::sync::CancellationToken;

use super::journal::{Pending, Phase, Trial};
use super::layout::{Layout, Link};
use super::{JournalFile, UpdateError, kill_point};

/// What an `update` command led to, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// The new version is `current`; the agent must exit for the supervisor to start it.
    Switched(Version),
    /// The screen already runs this version.
    AlreadyRunning(Version),
}

/// The target triple this agent was built for (what releases must name).
pub use luach_ota::BUILD_TARGET;

/// Carries out updates for the running agent.
#[derive(Debug, Clone)]
pub struct Updater {
    layout: Layout,
    journal: JournalFile,
    root: TrustedRoot,
    target: Target,
    channel: Option<Channel>,
    http: reqwest::Client,
    server: String,
    running: Version,
    fixed_now: Option<DateTime<Utc>>,
}

/// What an [`Updater`] is built from.
#[derive(Debug)]
pub struct UpdaterSetup {
    pub install_dir: PathBuf,
    /// The trusted root (`root.pub`); default: the install directory's.
    pub trust: Option<PathBuf>,
    /// Control-plane URL the artifact paths are relative to.
    pub server: String,
    /// The version this process is.
    pub running: Version,
    /// The channel this screen follows; `None` takes any.
    pub channel: Option<Channel>,
    /// Tests: the clock stands at this instant (releases expire by it).
    pub fixed_now: Option<DateTime<Utc>>,
}

impl Updater {
    pub fn open(setup: UpdaterSetup) -> Result<Self, UpdateError> {
        let layout = Layout::new(setup.install_dir);
        let trust = setup.trust.unwrap_or_else(|| layout.root_key());
        let root = TrustedRoot::from_file(&trust)?;
        let target = Target::parse(BUILD_TARGET)?;
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| UpdateError::Download(e.to_string()))?;
        Ok(Self {
            journal: JournalFile::new(&layout.update_dir()),
            layout,
            root,
            target,
            channel: setup.channel,
            http,
            server: setup.server.trim_end_matches('/').to_owned(),
            running: setup.running,
            fixed_now: setup.fixed_now,
        })
    }

    fn now(&self) -> DateTime<Utc> {
        self.fixed_now.unwrap_or_else(Utc::now)
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Checks `metadata` as of `now` against this screen's counters and history.
    pub fn check(&self, metadata: &[u8], now: DateTime<Utc>) -> Result<Checked, UpdateError> {
        let journal = self.journal.load()?;
        // Authentic first: a repeated command for the running version is answered as done.
        let authentic = luach_ota::verify_signatures(&self.root, metadata, journal.keys_floor)?;
        if *authentic.version() == self.running {
            return Ok(Checked::AlreadyRunning(self.running.clone()));
        }
        let highest = journal.highest_installed.clone().max(Some(self.running.clone()));
        let policy = Policy {
            target: self.target.clone(),
            now,
            highest_installed: highest,
            installed: Some(self.running.clone()),
            keys_version_floor: journal.keys_floor,
            channel: self.channel.clone(),
        };
        // The rest of `verify_metadata`, on the release already found authentic.
        policy.check(&authentic)?;
        let release = authentic;
        if journal.bad.contains(release.version()) {
            return Err(UpdateError::KnownBad(release.version().clone()));
        }
        if let Some(trial) = &journal.trial {
            return Err(UpdateError::Busy(trial.version.clone()));
        }
        Ok(Checked::Install(Box::new(release)))
    }

    /// Steps 1–5 (see the module docs). `path` is the artifact's path on the control plane,
    /// fetched with the device `token`.
    pub async fn install(
        &self,
        command_id: &str,
        metadata: &[u8],
        path: &str,
        token: &str,
        shutdown: &CancellationToken,
    ) -> Result<Installed, UpdateError> {
        let release = match self.check(metadata, self.now())? {
            Checked::AlreadyRunning(v) => return Ok(Installed::AlreadyRunning(v)),
            Checked::Install(release) => release,
        };
        let version = release.version().clone();
        let result = self
            .switch_to(command_id, metadata, path, token, &release, shutdown)
            .await;
        if result.is_err() {
            // Nothing changed that matters; a later attempt resumes the download.
            let _ = self.journal.update(|j| j.pending = None);
        }
        result.map(|()| Installed::Switched(version))
    }

    async fn switch_to(
        &self,
        command_id: &str,
        metadata: &[u8],
        path: &str,
        token: &str,
        release: &VerifiedRelease,
        shutdown: &CancellationToken,
    ) -> Result<(), UpdateError> {
        let version = release.version().clone();
        let phase = |phase: Phase| {
            self.journal.update(|j| {
                j.keys_floor = j.keys_floor.max(release.keys_version());
                j.pending = Some(Pending {
                    command_id: command_id.to_owned(),
                    version: version.clone(),
                    phase,
                    started_at: Utc::now(),
                });
            })
        };
        phase(Phase::Download)?;
        kill_point("download");
        let dir = self.layout.update_dir();
        std::fs::create_dir_all(&dir).map_err(|e| UpdateError::Io(format!("creating {}: {e}", dir.display())))?;
        let part = dir.join(format!("{}.part", release.artifact().sha256));
        let url = format!("{}{path}", self.server);
        let received = super::fetch::fetch(&self.http, &url, token, &part, release, shutdown).await?;
        tracing::info!(%version, received, "artifact complete");

        phase(Phase::Verify)?;
        kill_point("verify");
        let checked = part.clone();
        let again = release.clone();
        tokio::task::spawn_blocking(move || verify_artifact_file(&checked, &again))
            .await
            .map_err(|e| UpdateError::Io(e.to_string()))??;

        phase(Phase::Stage)?;
        kill_point("stage");
        self.layout
            .stage(&version, &part, metadata)
            .map_err(|e| UpdateError::Io(format!("staging {version}: {e}")))?;

        self.journal.update(|j| {
            j.pending = None;
            j.trial = Some(Trial {
                command_id: command_id.to_owned(),
                version: version.clone(),
                previous: self.running.clone(),
                starts: 0,
                deadline: None,
                rolling_back: None,
            });
        })?;
        kill_point("swap");
        let switch = self
            .layout
            .point(Link::Previous, &self.running)
            .and_then(|()| self.layout.point(Link::Current, &version));
        if let Err(e) = switch {
            let _ = self.journal.update(|j| j.trial = None);
            return Err(UpdateError::Io(format!("switching to {version}: {e}")));
        }
        let _ = std::fs::remove_file(&part);
        tracing::info!(%version, previous = %self.running, "switched; restarting into the new version");
        Ok(())
    }
}

/// The result of [`Updater::check`].
#[derive(Debug)]
pub enum Checked {
    AlreadyRunning(Version),
    Install(Box<VerifiedRelease>),
}
