//! The one error type of this crate and the stable codes screens report upstream.

use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use semver::Version;
use serde::{Deserialize, Serialize};

use crate::encoding::rfc3339_string;
use crate::names::{Channel, KeyId, Sha256Digest, Target};

/// Which envelope a signature was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signed {
    /// The root-signed key list.
    KeyList,
    /// The release, signed by release keys.
    Release,
}

impl fmt::Display for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::KeyList => "key list",
            Self::Release => "release",
        })
    }
}

/// Everything that can go wrong verifying, signing or storing release metadata and keys.
///
/// Each variant has a stable machine code ([`OtaError::code`]); the human message names the
/// values involved but never key material.
#[derive(Debug, thiserror::Error)]
pub enum OtaError {
    #[error("the metadata is {size} bytes; at most {limit} are accepted")]
    MetadataTooLarge { size: u64, limit: usize },
    #[error("malformed metadata: {0}")]
    Malformed(String),
    #[error(
        "the key list is not signed by the trusted root {trusted} (signatures name {})",
        key_ids(.signers)
    )]
    UntrustedRoot { trusted: KeyId, signers: Vec<KeyId> },
    #[error("the {what} signature by key {key_id} does not verify")]
    BadSignature { what: Signed, key_id: KeyId },
    #[error("the release is signed by key {key_id}, which is not in key list version {keys_version}")]
    UnknownKey { key_id: KeyId, keys_version: u64 },
    #[error("the release is signed by key {key_id}, which key list version {keys_version} revokes")]
    RevokedKey { key_id: KeyId, keys_version: u64 },
    #[error(
        "the release carries {valid} valid signature(s) by authorised keys; key list version {keys_version} \
         requires {threshold}"
    )]
    BelowThreshold {
        valid: usize,
        threshold: u8,
        keys_version: u64,
    },
    #[error("key list version {version} is older than version {floor}, which this screen has already accepted")]
    KeyListRollback { version: u64, floor: u64 },
    #[error("the release is for target {release}, not {expected}")]
    WrongTarget { release: Target, expected: Target },
    #[error("the release is on channel {release}, not {expected}")]
    WrongChannel { release: Channel, expected: Channel },
    #[error("the release expired at {}; it is now {}", rfc3339_string(.expires), rfc3339_string(.now))]
    Expired { expires: DateTime<Utc>, now: DateTime<Utc> },
    #[error("{}", not_newer(.version, .highest))]
    NotNewer { version: Version, highest: Version },
    /// (`installed` is boxed to keep every `Result` of this crate small.)
    #[error("{}", update_path(.version, .min_from, .installed.as_deref()))]
    UpdatePath {
        version: Version,
        min_from: Version,
        installed: Option<Box<Version>>,
    },
    #[error("the artifact is longer than the {declared} bytes the release declares")]
    ArtifactTooLong { declared: u64 },
    #[error("the artifact ended after {received} of the {declared} bytes the release declares")]
    ArtifactTruncated { received: u64, declared: u64 },
    #[error("the artifact's SHA-256 is {actual}; the release declares {expected}")]
    ArtifactHashMismatch {
        expected: Sha256Digest,
        actual: Sha256Digest,
    },
    #[error("{what} is not a usable Ed25519 key: {reason}")]
    InvalidKey { what: String, reason: String },
    #[error("private key file {} is accessible by other users (mode {mode:o}); it must be 0600", .path.display())]
    InsecureKeyFile { path: PathBuf, mode: u32 },
    #[error("{} already exists; refusing to overwrite it", .path.display())]
    FileExists { path: PathBuf },
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: &'static str, reason: String },
    #[error("{action} needs {threshold} authorised release key(s) but {available} would be available")]
    NotEnoughKeys {
        action: &'static str,
        available: usize,
        threshold: u8,
    },
    #[error("the root key {root_key} is not the root {trusted} that signed the key list")]
    RootKeyMismatch { root_key: KeyId, trusted: KeyId },
    /// The I/O error is part of the message rather than a `source`, so a cause chain does not
    /// print it twice.
    #[error("could not {action} {}: {cause}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },
}

impl OtaError {
    /// The stable machine code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::MetadataTooLarge { .. } => ErrorCode::MetadataTooLarge,
            Self::Malformed(_) => ErrorCode::MalformedMetadata,
            Self::UntrustedRoot { .. } => ErrorCode::UntrustedRoot,
            Self::BadSignature { .. } => ErrorCode::BadSignature,
            Self::UnknownKey { .. } => ErrorCode::UnknownKey,
            Self::RevokedKey { .. } => ErrorCode::RevokedKey,
            Self::BelowThreshold { .. } => ErrorCode::BelowThreshold,
            Self::KeyListRollback { .. } => ErrorCode::KeyListRollback,
            Self::WrongTarget { .. } => ErrorCode::WrongTarget,
            Self::WrongChannel { .. } => ErrorCode::WrongChannel,
            Self::Expired { .. } => ErrorCode::Expired,
            Self::NotNewer { .. } => ErrorCode::NotNewer,
            Self::UpdatePath { .. } => ErrorCode::UpdatePath,
            Self::ArtifactTooLong { .. } => ErrorCode::ArtifactTooLong,
            Self::ArtifactTruncated { .. } => ErrorCode::ArtifactTruncated,
            Self::ArtifactHashMismatch { .. } => ErrorCode::ArtifactHashMismatch,
            Self::InvalidKey { .. } => ErrorCode::InvalidKey,
            Self::InsecureKeyFile { .. } => ErrorCode::InsecureKeyFile,
            Self::FileExists { .. } => ErrorCode::FileExists,
            Self::InvalidInput { .. } => ErrorCode::InvalidInput,
            Self::NotEnoughKeys { .. } => ErrorCode::NotEnoughKeys,
            Self::RootKeyMismatch { .. } => ErrorCode::RootKeyMismatch,
            Self::Io { .. } => ErrorCode::Io,
        }
    }

    pub(crate) fn malformed(what: impl fmt::Display, reason: impl fmt::Display) -> Self {
        Self::Malformed(format!("{what}: {reason}"))
    }

    pub(crate) fn io(action: &'static str, path: &std::path::Path, cause: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_owned(),
            cause,
        }
    }

    pub(crate) fn input(field: &'static str, reason: impl fmt::Display) -> Self {
        Self::InvalidInput {
            field,
            reason: reason.to_string(),
        }
    }
}

/// The stable machine code of an [`OtaError`]: what a screen reports upstream and what the
/// error table in `docs/ota.md` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    MetadataTooLarge,
    MalformedMetadata,
    UntrustedRoot,
    BadSignature,
    UnknownKey,
    RevokedKey,
    BelowThreshold,
    KeyListRollback,
    WrongTarget,
    WrongChannel,
    Expired,
    NotNewer,
    UpdatePath,
    ArtifactTooLong,
    ArtifactTruncated,
    ArtifactHashMismatch,
    InvalidKey,
    InsecureKeyFile,
    FileExists,
    InvalidInput,
    NotEnoughKeys,
    RootKeyMismatch,
    Io,
}

impl ErrorCode {
    /// Every code, in the order of the documentation table.
    pub const ALL: &[ErrorCode] = &[
        Self::MetadataTooLarge,
        Self::MalformedMetadata,
        Self::UntrustedRoot,
        Self::BadSignature,
        Self::UnknownKey,
        Self::RevokedKey,
        Self::BelowThreshold,
        Self::KeyListRollback,
        Self::WrongTarget,
        Self::WrongChannel,
        Self::Expired,
        Self::NotNewer,
        Self::UpdatePath,
        Self::ArtifactTooLong,
        Self::ArtifactTruncated,
        Self::ArtifactHashMismatch,
        Self::InvalidKey,
        Self::InsecureKeyFile,
        Self::FileExists,
        Self::InvalidInput,
        Self::NotEnoughKeys,
        Self::RootKeyMismatch,
        Self::Io,
    ];

    /// The code as reported: lower snake case, never changed once released.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MetadataTooLarge => "metadata_too_large",
            Self::MalformedMetadata => "malformed_metadata",
            Self::UntrustedRoot => "untrusted_root",
            Self::BadSignature => "bad_signature",
            Self::UnknownKey => "unknown_key",
            Self::RevokedKey => "revoked_key",
            Self::BelowThreshold => "below_threshold",
            Self::KeyListRollback => "key_list_rollback",
            Self::WrongTarget => "wrong_target",
            Self::WrongChannel => "wrong_channel",
            Self::Expired => "expired",
            Self::NotNewer => "not_newer",
            Self::UpdatePath => "update_path",
            Self::ArtifactTooLong => "artifact_too_long",
            Self::ArtifactTruncated => "artifact_truncated",
            Self::ArtifactHashMismatch => "artifact_hash_mismatch",
            Self::InvalidKey => "invalid_key",
            Self::InsecureKeyFile => "insecure_key_file",
            Self::FileExists => "file_exists",
            Self::InvalidInput => "invalid_input",
            Self::NotEnoughKeys => "not_enough_keys",
            Self::RootKeyMismatch => "root_key_mismatch",
            Self::Io => "io",
        }
    }

    /// One line on what the code means, for the documentation table.
    pub const fn description(self) -> &'static str {
        match self {
            Self::MetadataTooLarge => "the metadata file is larger than 64 KiB; refused unread",
            Self::MalformedMetadata => {
                "not the expected JSON, base64 or hex; unknown field; wrong payload type; a limit passed; \
                 an invalid key list or release"
            }
            Self::UntrustedRoot => "the key list carries no signature by the root the screen trusts",
            Self::BadSignature => "a signature by the root or an authorised release key does not verify",
            Self::UnknownKey => "the release is signed by a key that is not in the key list",
            Self::RevokedKey => "the release is signed by a key the key list revokes",
            Self::BelowThreshold => "fewer valid signatures by distinct authorised keys than the threshold",
            Self::KeyListRollback => "the key list is older than the newest one this screen has accepted",
            Self::WrongTarget => "the release is for another target (CPU triple or hardware class)",
            Self::WrongChannel => "the release is on another channel than the screen follows",
            Self::Expired => "the release's `expires` has passed",
            Self::NotNewer => "the release is not newer than the highest version this screen has installed",
            Self::UpdatePath => "the installed version is older than the release's `min_from_version`",
            Self::ArtifactTooLong => "the artifact went past the declared length (the download can stop)",
            Self::ArtifactTruncated => "the artifact ended before the declared length",
            Self::ArtifactHashMismatch => "the artifact's SHA-256 differs from the declared one",
            Self::InvalidKey => "a key file or trusted root is not a usable Ed25519 PEM key",
            Self::InsecureKeyFile => "a private key file is readable by group or others",
            Self::FileExists => "key generation would overwrite an existing file",
            Self::InvalidInput => "a release field or command argument is invalid",
            Self::NotEnoughKeys => "signing or revoking would leave fewer keys than the threshold",
            Self::RootKeyMismatch => "the root key given is not the root that signed the key list",
            Self::Io => "a file could not be read or written",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn key_ids(ids: &[KeyId]) -> String {
    if ids.is_empty() {
        "no key".to_owned()
    } else {
        ids.iter().map(KeyId::to_string).collect::<Vec<_>>().join(", ")
    }
}

fn not_newer(version: &Version, highest: &Version) -> String {
    if version.cmp_precedence(highest).is_eq() {
        format!("version {version} is already the highest this screen has installed; a release must be newer")
    } else {
        format!("version {version} is not newer than {highest}, the highest this screen has installed")
    }
}

fn update_path(version: &Version, min_from: &Version, installed: Option<&Version>) -> String {
    match installed {
        Some(installed) => {
            format!("version {version} updates only from {min_from} or later; this screen has {installed} installed")
        }
        None => format!(
            "version {version} updates only from {min_from} or later; this screen has no installed version recorded"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_serialise_as_their_string() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
            let json = serde_json::to_string(code).expect("serialise");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: ErrorCode = serde_json::from_str(&json).expect("parse");
            assert_eq!(back, *code);
            assert!(!code.description().is_empty());
        }
    }

    #[test]
    fn the_documentation_lists_every_code() {
        let doc = include_str!("../../docs/ota.md");
        let rows: Vec<String> = ErrorCode::ALL
            .iter()
            .map(|code| format!("| `{}` | {} |", code.as_str(), code.description()))
            .collect();
        let table = format!("| code | meaning |\n|---|---|\n{}\n", rows.join("\n"));
        assert!(
            doc.contains(&table),
            "docs/ota.md's error table differs from ErrorCode; it should read:\n{table}"
        );
    }

    #[test]
    fn messages_name_the_values() {
        let older = OtaError::NotNewer {
            version: Version::new(1, 2, 0),
            highest: Version::new(1, 3, 0),
        };
        assert_eq!(
            older.to_string(),
            "version 1.2.0 is not newer than 1.3.0, the highest this screen has installed"
        );
        let same = OtaError::NotNewer {
            version: Version::new(1, 3, 0),
            highest: Version::new(1, 3, 0),
        };
        assert!(same.to_string().contains("already the highest"), "{same}");
        let path = OtaError::UpdatePath {
            version: Version::new(2, 0, 0),
            min_from: Version::new(1, 5, 0),
            installed: Some(Box::new(Version::new(1, 4, 9))),
        };
        assert!(
            path.to_string().contains("from 1.5.0 or later; this screen has 1.4.9"),
            "{path}"
        );
        assert_eq!(path.code().as_str(), "update_path");
    }
}
