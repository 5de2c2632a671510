//! The install directory: one slot per version, the `current` and `previous` links, and the
//! supervisor's own copy.
//!
//! ```text
//! DIR/
//!   bin/luach-agent            the supervisor (systemd starts this one); replaced only by a
//!                              version that has passed its health check
//!   versions/0.2.0/luach-agent one slot per version: the binary (0755) and
//!   versions/0.2.0/release.json  the verified metadata it was installed from
//!   current -> versions/0.2.0  what the supervisor runs
//!   previous -> versions/0.1.0 what a rollback returns to
//!   root.pub                   the release root the screen trusts
//!   update/                    the journal and the partial download
//! ```
//!
//! A slot appears whole or not at all (staged under a temporary name, flushed, then renamed),
//! and a link changes with one `rename` of a new link over the old, so a power cut at any
//! moment leaves `current` naming a complete slot: the old one or the new one.

use std::path::{Path, PathBuf};

use luach_files::{Mode, sync_dir};
use luach_ota::Version;

/// The agent's file name inside a slot and in `bin/`.
pub const BINARY: &str = "luach-agent";
/// The metadata file kept beside a slot's binary.
pub const RELEASE_FILE: &str = "release.json";
/// The trust anchor's default place.
pub const ROOT_FILE: &str = "root.pub";
const STAGING_PREFIX: &str = ".staging-";

/// The two links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Current,
    Previous,
}

impl Link {
    fn name(self) -> &'static str {
        match self {
            Link::Current => "current",
            Link::Previous => "previous",
        }
    }
}

/// An install directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn versions(&self) -> PathBuf {
        self.root.join("versions")
    }

    /// The slot of `version`.
    pub fn slot(&self, version: &Version) -> PathBuf {
        self.versions().join(version.to_string())
    }

    /// The binary `current` names (what the supervisor starts).
    pub fn current_binary(&self) -> PathBuf {
        self.root.join(Link::Current.name()).join(BINARY)
    }

    /// The supervisor's binary.
    pub fn supervisor_binary(&self) -> PathBuf {
        self.root.join("bin").join(BINARY)
    }

    /// Where the journal and the partial download live.
    pub fn update_dir(&self) -> PathBuf {
        self.root.join("update")
    }

    /// The trust anchor's default place.
    pub fn root_key(&self) -> PathBuf {
        self.root.join(ROOT_FILE)
    }

    /// The version a link names, `None` when the link is absent.
    pub fn version(&self, link: Link) -> std::io::Result<Option<Version>> {
        match std::fs::read_link(self.root.join(link.name())) {
            Ok(target) => {
                let name = target
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                Version::parse(&name)
                    .map(Some)
                    .map_err(|e| std::io::Error::other(format!("{} names {name:?}: {e}", link.name())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether the slot of `version` is complete (its binary is there).
    pub fn has_slot(&self, version: &Version) -> bool {
        self.slot(version).join(BINARY).is_file()
    }

    /// Points `link` at the slot of `version` atomically: a new link under a temporary name,
    /// renamed over the old one, and the directory flushed.
    pub fn point(&self, link: Link, version: &Version) -> std::io::Result<()> {
        if !self.has_slot(version) {
            return Err(std::io::Error::other(format!("no complete slot for {version}")));
        }
        let tmp = self
            .root
            .join(format!(".{}.{:016x}", link.name(), rand::random::<u64>()));
        let target = Path::new("versions").join(version.to_string());
        symlink(&target, &tmp)?;
        if let Err(e) = std::fs::rename(&tmp, self.root.join(link.name())) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(&self.root)
    }

    /// Makes the slot of `version` from the verified artifact at `artifact` and its metadata:
    /// written under a temporary name, flushed, then renamed into place. An existing complete
    /// slot of that version is replaced the same way.
    pub fn stage(&self, version: &Version, artifact: &Path, metadata: &[u8]) -> std::io::Result<PathBuf> {
        let versions = self.versions();
        std::fs::create_dir_all(&versions)?;
        let staging = versions.join(format!("{STAGING_PREFIX}{version}"));
        remove_dir_if_present(&staging)?;
        std::fs::create_dir(&staging)?;
        copy_executable(artifact, &staging.join(BINARY))?;
        luach_files::write_new(&staging.join(RELEASE_FILE), metadata, Mode::Public)?;
        sync_dir(&staging)?;
        let slot = self.slot(version);
        if slot.exists() {
            // Not the slot `current` names (the installer refuses that), so moving it away
            // is safe; a crash here leaves a staging directory that `clean` removes.
            let old = versions.join(format!("{STAGING_PREFIX}{version}.old"));
            remove_dir_if_present(&old)?;
            std::fs::rename(&slot, &old)?;
            remove_dir_if_present(&old)?;
        }
        std::fs::rename(&staging, &slot)?;
        sync_dir(&versions)?;
        Ok(slot)
    }

    /// Copies the binary of `version` to the supervisor's place (atomically; the running
    /// supervisor keeps its open file and takes the new one at its next start).
    pub fn refresh_supervisor(&self, version: &Version) -> std::io::Result<()> {
        let bin = self.root.join("bin");
        std::fs::create_dir_all(&bin)?;
        let tmp = bin.join(format!(".{BINARY}.{:016x}", rand::random::<u64>()));
        copy_executable(&self.slot(version).join(BINARY), &tmp)?;
        if let Err(e) = std::fs::rename(&tmp, bin.join(BINARY)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(&bin)
    }

    /// Removes half-staged slots, stray temporary links, and every slot that neither link
    /// names nor `keep` lists.
    pub fn clean(&self, keep: &[&Version]) -> std::io::Result<()> {
        let current = self.version(Link::Current)?;
        let previous = self.version(Link::Previous)?;
        let keep: Vec<String> = keep
            .iter()
            .map(|v| v.to_string())
            .chain(current.iter().chain(previous.iter()).map(ToString::to_string))
            .collect();
        if let Ok(entries) = std::fs::read_dir(self.versions()) {
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !keep.contains(&name) {
                    remove_dir_if_present(&entry.path())?;
                }
            }
        }
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(".current.") || name.starts_with(".previous.") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(())
    }

    /// First install: this executable becomes the slot of `version`, `current` names it, and
    /// it is the supervisor. Used by `luach-agent install` (packaging and tests).
    pub fn install_first(&self, executable: &Path, version: &Version, root_pub: Option<&Path>) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.root)?;
        if let Some(root_pub) = root_pub {
            let pem = std::fs::read(root_pub)?;
            luach_files::write_atomic(&self.root_key(), &pem, Mode::Public)?;
        }
        self.stage(version, executable, b"{}")?;
        self.point(Link::Current, version)?;
        self.refresh_supervisor(version)
    }
}

/// The version of the slot an executable runs from (`DIR/versions/X.Y.Z/luach-agent`, also
/// through the `current` link), if it runs from one.
pub fn slot_version_of(executable: &Path) -> Option<Version> {
    let resolved = std::fs::canonicalize(executable).ok()?;
    let slot = resolved.parent()?;
    if slot.parent()?.file_name()? != "versions" {
        return None;
    }
    Version::parse(&slot.file_name()?.to_string_lossy()).ok()
}

fn remove_dir_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Copies `from` to a new file `to` with mode 0755, flushed.
fn copy_executable(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut source = std::fs::File::open(from)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o755);
    }
    let mut file = options.open(to)?;
    std::io::copy(&mut source, &mut file)?;
    file.sync_all()
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(_target: &Path, _link: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "updates need a Unix file system (symbolic links)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn slots_links_and_cleaning() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let layout = Layout::new(dir.path().join("install"));
        let artifact = dir.path().join("artifact");
        std::fs::write(&artifact, b"#!/bin/sh\nexit 0\n").unwrap_or_else(|e| panic!("{e}"));
        layout
            .install_first(&artifact, &v("0.1.0"), None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(layout.version(Link::Current).ok().flatten(), Some(v("0.1.0")));
        assert_eq!(layout.version(Link::Previous).ok().flatten(), None);
        assert!(layout.supervisor_binary().is_file());
        assert_eq!(slot_version_of(&layout.current_binary()), Some(v("0.1.0")));

        layout
            .stage(&v("0.2.0"), &artifact, b"{\"m\":1}")
            .unwrap_or_else(|e| panic!("{e}"));
        layout
            .point(Link::Previous, &v("0.1.0"))
            .unwrap_or_else(|e| panic!("{e}"));
        layout
            .point(Link::Current, &v("0.2.0"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(slot_version_of(&layout.current_binary()), Some(v("0.2.0")));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(layout.current_binary())
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0);
            assert_eq!(mode, 0o755);
        }
        // A slot that does not exist is never linked.
        assert!(layout.point(Link::Current, &v("9.9.9")).is_err());

        // Leftovers of a crash and slots nobody names go; the linked ones stay.
        layout
            .stage(&v("0.0.9"), &artifact, b"{}")
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir_all(layout.versions().join(".staging-0.3.0")).unwrap_or_else(|e| panic!("{e}"));
        layout.clean(&[]).unwrap_or_else(|e| panic!("{e}"));
        let mut left: Vec<String> = std::fs::read_dir(layout.versions())
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        left.sort();
        assert_eq!(left, ["0.1.0", "0.2.0"]);
    }
}
