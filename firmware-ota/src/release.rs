//! The release payload: what is shipped, for which screens, until when.

use std::io::Read;
use std::path::Path;

use chrono::{DateTime, Utc};
use semver::Version;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::OtaError;
use crate::envelope::Envelope;
use crate::keys::PrivateKey;
use crate::limits::MAX_ARTIFACT_BYTES;
use crate::names::{Channel, Sha256Digest, Target};

/// Payload type of the release envelope, signed by release keys.
pub const RELEASE_PAYLOAD_TYPE: &str = "application/vnd.luach.ota-release+json";

/// The release payload.
///
/// Invariants (checked by [`Release::validate`] whenever one is parsed or signed): versions
/// carry no build metadata (`+…`, which semver gives no order, so it could not order
/// anti-rollback); `min_from_version` is older than `version`; the artifact is 1 byte to
/// [`MAX_ARTIFACT_BYTES`]; `expires` is after `issued_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// The release's semantic version.
    pub version: Version,
    /// What it runs on.
    pub target: Target,
    /// The channel it is published on.
    pub channel: Channel,
    /// The file to install.
    pub artifact: Artifact,
    /// The oldest installed version this release may be installed over, if it has a floor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_from_version: Option<Version>,
    /// When it was signed.
    #[serde(with = "crate::encoding::rfc3339")]
    pub issued_at: DateTime<Utc>,
    /// The instant from which screens refuse it.
    #[serde(with = "crate::encoding::rfc3339")]
    pub expires: DateTime<Utc>,
}

/// The artifact a release ships: `{"sha256": "<64 lowercase hex>", "length": bytes}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// SHA-256 of the whole file.
    pub sha256: Sha256Digest,
    /// Its exact length in bytes.
    pub length: u64,
}

impl Artifact {
    /// Describes `bytes`.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self {
            sha256: Sha256Digest::of(bytes),
            length: bytes.len() as u64,
        }
    }

    /// Describes the file at `path`, reading it in chunks; refuses an empty file and one
    /// larger than [`MAX_ARTIFACT_BYTES`].
    pub fn of_file(path: &Path) -> Result<Self, OtaError> {
        let mut file = std::fs::File::open(path).map_err(|e| OtaError::io("open artifact", path, e))?;
        let mut hasher = Sha256::new();
        let mut length = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| OtaError::io("read artifact", path, e))?;
            if n == 0 {
                break;
            }
            length += n as u64;
            if length > MAX_ARTIFACT_BYTES {
                return Err(OtaError::input(
                    "artifact",
                    format!("{} is larger than {MAX_ARTIFACT_BYTES} bytes", path.display()),
                ));
            }
            hasher.update(&buf[..n]);
        }
        if length == 0 {
            return Err(OtaError::input("artifact", format!("{} is empty", path.display())));
        }
        Ok(Self {
            sha256: Sha256Digest(hasher.finalize().into()),
            length,
        })
    }
}

impl Release {
    /// Parses and validates a release payload.
    pub fn from_payload(payload: &[u8]) -> Result<Self, OtaError> {
        let release: Self = serde_json::from_slice(payload).map_err(|e| OtaError::malformed("release", e))?;
        release
            .validate()
            .map_err(|reason| OtaError::malformed("release", reason))?;
        Ok(release)
    }

    /// The exact payload bytes (compact JSON) after validating.
    pub fn to_payload(&self) -> Result<Vec<u8>, OtaError> {
        self.validate().map_err(|reason| OtaError::input("release", reason))?;
        serde_json::to_vec(self).map_err(|e| OtaError::input("release", e))
    }

    /// The release envelope, signed by every key in `keys`.
    pub fn sign(&self, keys: &[&PrivateKey]) -> Result<Envelope, OtaError> {
        Ok(Envelope::sign(RELEASE_PAYLOAD_TYPE, self.to_payload()?, keys))
    }

    /// Checks the invariants listed on [`Release`].
    pub fn validate(&self) -> Result<(), String> {
        if !self.version.build.is_empty() {
            return Err(format!(
                "version {} carries build metadata, which has no order",
                self.version
            ));
        }
        if let Some(min_from) = &self.min_from_version {
            if !min_from.build.is_empty() {
                return Err(format!(
                    "min_from_version {min_from} carries build metadata, which has no order"
                ));
            }
            if min_from.cmp_precedence(&self.version).is_ge() {
                return Err(format!(
                    "min_from_version {min_from} is not older than version {}",
                    self.version
                ));
            }
        }
        if self.artifact.length == 0 {
            return Err("artifact length must be at least 1 byte".to_owned());
        }
        if self.artifact.length > MAX_ARTIFACT_BYTES {
            return Err(format!(
                "artifact length {} is larger than {MAX_ARTIFACT_BYTES} bytes",
                self.artifact.length
            ));
        }
        if self.expires <= self.issued_at {
            return Err("expires must be after issued_at".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn release() -> Release {
        let now = Utc.with_ymd_and_hms(2030, 3, 1, 12, 0, 0).single().expect("time");
        Release {
            version: Version::new(1, 3, 0),
            target: Target::parse("x86_64-unknown-linux-gnu").expect("target"),
            channel: Channel::parse("stable").expect("channel"),
            artifact: Artifact::of_bytes(b"firmware"),
            min_from_version: None,
            issued_at: now,
            expires: now + Duration::days(30),
        }
    }

    #[test]
    fn payload_is_the_documented_json() {
        let r = release();
        let payload = r.to_payload().expect("payload");
        let json: serde_json::Value = serde_json::from_slice(&payload).expect("json");
        assert_eq!(json["version"], "1.3.0");
        assert_eq!(json["target"], "x86_64-unknown-linux-gnu");
        assert_eq!(json["channel"], "stable");
        assert_eq!(json["artifact"]["length"], 8);
        assert_eq!(json["artifact"]["sha256"], Sha256Digest::of(b"firmware").to_string());
        assert_eq!(json["issued_at"], "2030-03-01T12:00:00Z");
        assert_eq!(json["expires"], "2030-03-31T12:00:00Z");
        assert!(json.get("min_from_version").is_none());
        assert_eq!(Release::from_payload(&payload).expect("parse"), r);
        let with_floor = Release {
            min_from_version: Some(Version::new(1, 0, 0)),
            ..r
        };
        let back = Release::from_payload(&with_floor.to_payload().expect("payload")).expect("parse");
        assert_eq!(back.min_from_version, Some(Version::new(1, 0, 0)));
    }

    #[test]
    fn invalid_releases_are_refused() {
        let check = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = serde_json::to_value(release()).expect("json");
            f(&mut v);
            let e = Release::from_payload(&serde_json::to_vec(&v).expect("bytes")).expect_err("invalid");
            assert_eq!(e.code().as_str(), "malformed_metadata");
            e.to_string()
        };
        assert!(check(&|v| v["rollout"] = 5.into()).contains("unknown field"));
        assert!(check(&|v| v["artifact"]["url"] = "x".into()).contains("unknown field"));
        check(&|v| v["version"] = "1.3".into());
        check(&|v| v["version"] = "v1.3.0".into());
        assert!(check(&|v| v["version"] = "1.3.0+build5".into()).contains("build metadata"));
        assert!(check(&|v| v["min_from_version"] = "1.3.0".into()).contains("not older"));
        check(&|v| v["min_from_version"] = "one".into());
        assert!(check(&|v| v["target"] = "X86".into()).contains("target"));
        assert!(check(&|v| v["channel"] = "".into()).contains("channel"));
        assert!(check(&|v| v["artifact"]["length"] = 0.into()).contains("at least 1"));
        assert!(check(&|v| v["artifact"]["length"] = (MAX_ARTIFACT_BYTES + 1).into()).contains("larger"));
        check(&|v| v["artifact"]["length"] = (-1).into());
        check(&|v| v["artifact"]["sha256"] = "abc".into());
        assert!(check(&|v| v["expires"] = v["issued_at"].clone()).contains("after issued_at"));
        check(&|v| v["expires"] = "2030-03-31".into());
        check(&|v| {
            if let Some(o) = v.as_object_mut() {
                o.remove("expires");
            }
        });
        let mut max = release();
        max.artifact.length = MAX_ARTIFACT_BYTES;
        assert!(Release::from_payload(&max.to_payload().expect("2 GiB is allowed")).is_ok());
    }

    #[test]
    fn artifacts_are_described_from_files() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("fw.bin");
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).expect("write");
        assert_eq!(Artifact::of_file(&path).expect("describe"), Artifact::of_bytes(&bytes));
        std::fs::write(&path, b"").expect("write");
        assert_eq!(
            Artifact::of_file(&path).expect_err("empty").code().as_str(),
            "invalid_input"
        );
        assert_eq!(
            Artifact::of_file(&dir.path().join("missing"))
                .expect_err("missing")
                .code()
                .as_str(),
            "io"
        );
    }
}
