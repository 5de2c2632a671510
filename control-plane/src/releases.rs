//! The release registry: signed agent builds this installation offers its screens.
//!
//! Releases are signed by the vendor's release keys (`luach-ota`), not by a tenant, so the
//! registry belongs to the installation: its administrators upload them, every tenant may
//! roll them out to its own screens. A release arrives in two steps: its metadata file, which
//! must verify against the installation's trusted root (`releases.trusted_root`, the same
//! `root.pub` the screens trust) and must not have expired; then its artifact, streamed to
//! disk and checked against the signed length and SHA-256 as it arrives (a byte past the
//! length, or a wrong hash, and nothing is kept). Screens verify everything again themselves;
//! the registry's checks only keep what cannot install out of the way.
//!
//! Files live under `<dir>/<id>/` (by default `<data_dir>/releases`): `metadata.json` (the
//! signed file, as uploaded), `release.json` (the record), and `artifact` once complete. The
//! id is the first 16 hex digits of the metadata's SHA-256, parsed before any path is built.
//! Replicas must share the directory.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use luach_ota::{ArtifactCheck, OtaError, TrustedRoot, VerifiedRelease};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// Where a release stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseStatus {
    /// The metadata is in; the artifact is not (yet).
    AwaitingArtifact,
    /// Complete and checked: it can be rolled out.
    Ready,
}

/// A release as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Release {
    /// 16 hex digits (of the metadata's SHA-256).
    pub id: String,
    pub version: String,
    /// Target triple or hardware class.
    pub target: String,
    pub channel: String,
    /// Hex SHA-256 and exact length of the artifact, as signed.
    pub sha256: String,
    pub length: u64,
    /// The oldest version it updates from, if it says.
    pub min_from_version: Option<String>,
    pub issued_at: DateTime<Utc>,
    /// Screens refuse it from then on.
    pub expires: DateTime<Utc>,
    /// The release keys that signed it, and the key-list version they were checked under.
    pub signed_by: Vec<String>,
    pub keys_version: u64,
    pub status: ReleaseStatus,
    pub uploaded_at: DateTime<Utc>,
    /// Who uploaded it (user id).
    pub uploaded_by: String,
}

impl Release {
    /// Whether screens still accept it at `now`.
    pub fn current(&self, now: DateTime<Utc>) -> bool {
        now < self.expires
    }
}

/// Why a release or its artifact was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("no trusted release root is configured (releases.trusted_root)")]
    NoTrustedRoot,
    #[error("{0}")]
    Refused(#[from] OtaError),
    #[error("the release expired at {0}")]
    Expired(DateTime<Utc>),
    #[error("this release is registered already")]
    Exists,
    #[error("no such release")]
    NotFound,
    #[error("the artifact of this release is stored already")]
    Complete,
    #[error("storing the release: {0}")]
    Io(#[from] std::io::Error),
}

/// The registry.
#[derive(Debug, Clone)]
pub struct Releases {
    root: PathBuf,
    trusted: Option<TrustedRoot>,
}

/// A release id: 16 lower-case hex digits.
fn parse_id(id: &str) -> Option<&str> {
    (id.len() == 16 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))).then_some(id)
}

impl Releases {
    /// The registry in `root`, trusting the root key at `trusted_root` (none: uploads are
    /// refused with [`ReleaseError::NoTrustedRoot`]).
    pub fn open(root: PathBuf, trusted_root: Option<&Path>) -> Result<Self, OtaError> {
        let trusted = trusted_root.map(TrustedRoot::from_file).transpose()?;
        Ok(Self { root, trusted })
    }

    fn dir(&self, id: &str) -> Option<PathBuf> {
        parse_id(id).map(|id| self.root.join(id))
    }

    /// Registers a release from its signed metadata file.
    pub async fn add(&self, metadata: &[u8], by: &str, now: DateTime<Utc>) -> Result<Release, ReleaseError> {
        let trusted = self.trusted.as_ref().ok_or(ReleaseError::NoTrustedRoot)?;
        let verified = luach_ota::verify_signatures(trusted, metadata, 0)?;
        let r = verified.release();
        if now >= r.expires {
            return Err(ReleaseError::Expired(r.expires));
        }
        let id = data_encoding::HEXLOWER.encode(&Sha256::digest(metadata)[..8]);
        let release = record(&id, &verified, by, now);
        let dir = self.root.join(&id);
        tokio::fs::create_dir_all(&self.root).await?;
        match tokio::fs::create_dir(&dir).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(ReleaseError::Exists),
            Err(e) => return Err(e.into()),
        }
        write(dir.join("metadata.json"), metadata.to_vec()).await?;
        self.save(&release).await?;
        Ok(release)
    }

    /// Writes the record (replaced atomically: readers never see half of it).
    async fn save(&self, release: &Release) -> Result<(), ReleaseError> {
        let bytes = serde_json::to_vec_pretty(release).map_err(std::io::Error::other)?;
        write(self.root.join(&release.id).join("release.json"), bytes).await
    }

    /// Every release, newest upload first.
    pub async fn list(&self) -> Result<Vec<Release>, ReleaseError> {
        let mut out = Vec::new();
        let mut entries = match tokio::fs::read_dir(&self.root).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e.into()),
        };
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(release) = self.get(&name).await? {
                out.push(release);
            }
        }
        out.sort_by(|a, b| b.uploaded_at.cmp(&a.uploaded_at).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// One release.
    pub async fn get(&self, id: &str) -> Result<Option<Release>, ReleaseError> {
        let Some(dir) = self.dir(id) else { return Ok(None) };
        match tokio::fs::read(dir.join("release.json")).await {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The signed metadata file of a release.
    pub async fn metadata(&self, id: &str) -> Result<Option<String>, ReleaseError> {
        let Some(dir) = self.dir(id) else { return Ok(None) };
        match tokio::fs::read_to_string(dir.join("metadata.json")).await {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The artifact file of a ready release.
    pub async fn artifact(&self, id: &str) -> Result<Option<PathBuf>, ReleaseError> {
        match self.get(id).await? {
            Some(r) if r.status == ReleaseStatus::Ready => Ok(self.dir(id).map(|d| d.join("artifact"))),
            _ => Ok(None),
        }
    }

    /// Stores the artifact of release `id` from `body`, checked as it arrives against the
    /// signed length and hash; nothing is kept unless it matches.
    pub async fn put_artifact<S, E>(&self, id: &str, mut body: S) -> Result<Release, ReleaseError>
    where
        S: Stream<Item = Result<axum::body::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut release = self.get(id).await?.ok_or(ReleaseError::NotFound)?;
        if release.status == ReleaseStatus::Ready {
            return Err(ReleaseError::Complete);
        }
        let trusted = self.trusted.as_ref().ok_or(ReleaseError::NoTrustedRoot)?;
        let metadata = self.metadata(id).await?.ok_or(ReleaseError::NotFound)?;
        let verified = luach_ota::verify_signatures(trusted, metadata.as_bytes(), 0)?;
        let dir = self.root.join(&release.id);
        let tmp = dir.join(format!(".artifact.{:016x}", rand::random::<u64>()));
        let result = async {
            let mut check = ArtifactCheck::new(&verified);
            let mut file = tokio::fs::File::create(&tmp).await?;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| std::io::Error::other(format!("reading the upload: {e}")))?;
                check.update(&chunk)?;
                file.write_all(&chunk).await?;
            }
            check.finish()?;
            file.sync_all().await?;
            tokio::fs::rename(&tmp, dir.join("artifact")).await?;
            Ok::<(), ReleaseError>(())
        }
        .await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        release.status = ReleaseStatus::Ready;
        self.save(&release).await?;
        Ok(release)
    }

    /// Removes a release and its files.
    pub async fn delete(&self, id: &str) -> Result<bool, ReleaseError> {
        let Some(dir) = self.dir(id) else { return Ok(false) };
        match tokio::fs::remove_dir_all(dir).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// Replaces `path` with `bytes` atomically and durably, off the async workers.
async fn write(path: PathBuf, bytes: Vec<u8>) -> Result<(), ReleaseError> {
    tokio::task::spawn_blocking(move || luach_files::write_atomic(&path, &bytes, luach_files::Mode::Public))
        .await
        .map_err(std::io::Error::other)??;
    Ok(())
}

fn record(id: &str, verified: &VerifiedRelease, by: &str, now: DateTime<Utc>) -> Release {
    let r = verified.release();
    Release {
        id: id.to_owned(),
        version: r.version.to_string(),
        target: r.target.to_string(),
        channel: r.channel.to_string(),
        sha256: r.artifact.sha256.to_string(),
        length: r.artifact.length,
        min_from_version: r.min_from_version.as_ref().map(ToString::to_string),
        issued_at: r.issued_at,
        expires: r.expires,
        signed_by: verified.signed_by().iter().map(ToString::to_string).collect(),
        keys_version: verified.keys_version(),
        status: ReleaseStatus::AwaitingArtifact,
        uploaded_at: now,
        uploaded_by: by.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_and_never_paths() {
        assert_eq!(parse_id("0123456789abcdef"), Some("0123456789abcdef"));
        for bad in [
            "../../etc/passwd",
            "0123456789ABCDEF",
            "0123456789abcde",
            "0123456789abcdefa",
            "",
        ] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
    }
}
