//! Checking the downloaded artifact against a verified release, as it streams in.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::OtaError;
use crate::names::Sha256Digest;
use crate::release::Artifact;
use crate::verify::VerifiedRelease;

/// Size of the chunks [`verify_artifact_file`] reads.
const CHUNK: usize = 64 * 1024;

/// Hashes an artifact as it arrives and refuses it the moment it passes the declared length,
/// so a downloader can stop an endless stream.
#[derive(Debug, Clone)]
pub struct ArtifactCheck {
    expected: Artifact,
    hasher: Sha256,
    received: u64,
    overflowed: bool,
}

impl ArtifactCheck {
    /// Starts checking against the artifact `release` declares.
    pub fn new(release: &VerifiedRelease) -> Self {
        Self {
            expected: *release.artifact(),
            hasher: Sha256::new(),
            received: 0,
            overflowed: false,
        }
    }

    /// Feeds the next bytes. Fails (now and on every later call) once the total passes the
    /// declared length.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), OtaError> {
        let total = self.received.saturating_add(chunk.len() as u64);
        if self.overflowed || total > self.expected.length {
            self.overflowed = true;
            return Err(OtaError::ArtifactTooLong {
                declared: self.expected.length,
            });
        }
        self.hasher.update(chunk);
        self.received = total;
        Ok(())
    }

    /// Bytes still expected.
    pub fn remaining(&self) -> u64 {
        self.expected.length - self.received
    }

    /// Passes if exactly the declared bytes, with the declared SHA-256, were fed.
    pub fn finish(self) -> Result<(), OtaError> {
        if self.overflowed {
            return Err(OtaError::ArtifactTooLong {
                declared: self.expected.length,
            });
        }
        if self.received < self.expected.length {
            return Err(OtaError::ArtifactTruncated {
                received: self.received,
                declared: self.expected.length,
            });
        }
        let actual = Sha256Digest(self.hasher.finalize().into());
        if actual != self.expected.sha256 {
            return Err(OtaError::ArtifactHashMismatch {
                expected: self.expected.sha256,
                actual,
            });
        }
        Ok(())
    }
}

/// Checks the file at `path` against `release`, reading it in chunks.
pub fn verify_artifact_file(path: &Path, release: &VerifiedRelease) -> Result<(), OtaError> {
    let mut file = std::fs::File::open(path).map_err(|e| OtaError::io("open artifact", path, e))?;
    let mut check = ArtifactCheck::new(release);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| OtaError::io("read artifact", path, e))?;
        if n == 0 {
            return check.finish();
        }
        check.update(&buf[..n])?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fixture;

    fn verified(fx: &Fixture) -> VerifiedRelease {
        let case = fx.valid();
        crate::verify_metadata(&case.root(), &case.metadata, &case.policy).expect("valid")
    }

    #[test]
    fn streams_in_any_chunking() {
        let fx = Fixture::new();
        let release = verified(&fx);
        for size in [1, 7, 1000, fx.artifact().len()] {
            let mut check = ArtifactCheck::new(&release);
            for chunk in fx.artifact().chunks(size) {
                check.update(chunk).expect("within length");
            }
            assert_eq!(check.remaining(), 0);
            check.finish().expect("matches");
        }
    }

    #[test]
    fn stops_the_moment_the_stream_passes_the_length() {
        let fx = Fixture::new();
        let release = verified(&fx);
        let mut check = ArtifactCheck::new(&release);
        check.update(fx.artifact()).expect("exact length");
        let e = check.update(b"x").expect_err("one byte more");
        assert_eq!(e.code().as_str(), "artifact_too_long");
        assert!(check.update(b"").is_err(), "stays refused");
        assert_eq!(check.finish().expect_err("finish").code().as_str(), "artifact_too_long");
    }

    #[test]
    fn short_and_altered_artifacts_are_refused() {
        let fx = Fixture::new();
        let release = verified(&fx);
        let artifact = fx.artifact();
        let mut check = ArtifactCheck::new(&release);
        check.update(&artifact[..artifact.len() - 1]).expect("shorter");
        let e = check.finish().expect_err("truncated");
        assert_eq!(e.code().as_str(), "artifact_truncated");
        assert!(
            e.to_string()
                .contains(&format!("after {} of the {}", artifact.len() - 1, artifact.len()))
        );
        let mut altered = artifact.to_vec();
        altered[0] ^= 1;
        let mut check = ArtifactCheck::new(&release);
        check.update(&altered).expect("same length");
        assert_eq!(
            check.finish().expect_err("altered").code().as_str(),
            "artifact_hash_mismatch"
        );
    }

    #[test]
    fn files_are_checked_in_chunks() {
        let fx = Fixture::new();
        let release = verified(&fx);
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("fw.bin");
        std::fs::write(&path, fx.artifact()).expect("write");
        verify_artifact_file(&path, &release).expect("valid");
        let mut longer = fx.artifact().to_vec();
        longer.extend_from_slice(&[0; CHUNK]);
        std::fs::write(&path, &longer).expect("write");
        assert_eq!(
            verify_artifact_file(&path, &release).expect_err("long").code().as_str(),
            "artifact_too_long"
        );
        assert_eq!(
            verify_artifact_file(&dir.path().join("missing"), &release)
                .expect_err("missing")
                .code()
                .as_str(),
            "io"
        );
    }
}
