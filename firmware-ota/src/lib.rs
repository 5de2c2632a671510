//! Signed over-the-air release metadata for Luach screens, in the manner of TUF and Uptane but
//! small: one library for the release engineer's CLI (`luach-ota`), the control plane
//! (checking uploads with [`verify_signatures`]) and the screen agent (checking before it
//! installs with [`verify_metadata`] and [`ArtifactCheck`]).
//!
//! # Trust model
//!
//! ```text
//! root key (offline) ──signs──▶ key list (version, threshold, release keys, revoked)
//!                                   │ authorises
//!                                   ▼
//!                      release keys ──sign──▶ release (version, target, channel, artifact, expiry)
//!                                                          │ pins
//!                                                          ▼
//!                                                 artifact (SHA-256, length)
//! ```
//!
//! A screen trusts exactly one thing: the root public key (`root.pub`, a [`TrustedRoot`]).
//! The root private key signs only key lists and lives offline; it comes out for a rotation
//! or revocation ([`KeyDir::rotate`], [`KeyDir::revoke`]). Release keys sign releases day to
//! day; losing one is repaired by a new key list, without touching any screen. A release is
//! accepted when at least `threshold` *distinct* release keys that the key list authorises and
//! does not revoke have signed it. A release ships as one metadata file ([`Metadata`]) holding
//! both envelopes, so a screen needs nothing else to verify it.
//!
//! All keys are Ed25519; signatures are checked with `verify_strict` (no malleable
//! signatures, no small-order keys). A key's id is the lowercase hex of the first 16 bytes of
//! SHA-256 over its 32 raw public-key bytes ([`KeyId`]).
//!
//! # Why DSSE-style envelopes
//!
//! An [`Envelope`] carries the payload as the exact bytes that were signed (base64 in JSON),
//! with its type, and each signature covers a pre-authentication encoding ([`pae`]) of both:
//! `"LUACH-OTA-v1" SP LEN(type) SP type SP LEN(payload) SP payload`. Nothing is re-serialised
//! before verifying, so there is no JSON canonicalisation to get wrong, and a payload of one
//! type can never be passed off as another (the key list and the release have distinct
//! types). The payloads refuse unknown fields: a field a screen does not understand cannot
//! silently change what a signature meant.
//!
//! # Anti-rollback and the key list floor
//!
//! Signatures prove who made a release, not that it is the one to install now: a genuine old
//! release, replayed, verifies. So a screen persists two counters and passes them in its
//! [`Policy`]:
//!
//! - `highest_installed`: the highest version it has ever installed. A release must be
//!   strictly newer ([`ErrorCode::NotNewer`]), which refuses downgrades and replays alike.
//!   (Versions are compared by semver precedence; releases carry no build metadata.)
//! - `keys_version_floor`: the highest key list version it has accepted. An older key list is
//!   refused ([`ErrorCode::KeyListRollback`]); without this, an attacker holding a revoked
//!   release key would simply ship the key list from before the revocation.
//!
//! Both only ever grow. The agent raises `keys_version_floor` to
//! [`VerifiedRelease::keys_version`] once a release has verified (the key list is authentic
//! even if the install then fails) and sets `highest_installed` to the release's version once
//! it is installed. Each release also has an `expires` instant, so a screen cut off from
//! updates is not kept on a withdrawn release forever, and an optional `min_from_version`
//! (the oldest installed version it can update from). Nothing here reads a clock: the caller
//! passes `now`.
//!
//! # Order of checks
//!
//! [`verify_metadata`]: size limit → parse → key list type and root signature → key list
//! validity → key list version ≥ floor → release signatures (threshold) → release payload →
//! target → channel → expiry → anti-rollback → `min_from_version`. Then the artifact, streamed
//! through [`ArtifactCheck`] (or [`verify_artifact_file`]), which refuses it the moment it
//! passes the declared length.
//!
//! # Limits
//!
//! Metadata files over [`MAX_METADATA_BYTES`] (64 KiB) are refused before parsing; an
//! envelope carries at most [`MAX_SIGNATURES`] (16) signatures; a key list authorises at most
//! [`MAX_RELEASE_KEYS`] (32) release keys; an artifact is at most [`MAX_ARTIFACT_BYTES`]
//! (2 GiB). Target and channel names are 1–64 characters of `[a-z0-9._-]`.
//!
//! # Formats
//!
//! - Private keys: PKCS#8 `PRIVATE KEY` PEM, mode 0600, never overwritten; public keys:
//!   SubjectPublicKeyInfo `PUBLIC KEY` PEM.
//! - Envelope: `{"payload_type", "payload": base64, "signatures": [{"key_id", "sig": base64}]}`.
//! - Key list ([`KeyList`], type [`KEYS_PAYLOAD_TYPE`]): `{"version", "issued_at",
//!   "threshold", "release_keys": [{"key_id", "public_key": base64 raw 32 bytes}], "revoked"}`.
//! - Release ([`Release`], type [`RELEASE_PAYLOAD_TYPE`]): `{"version", "target", "channel",
//!   "artifact": {"sha256", "length"}, "min_from_version"?, "issued_at", "expires"}`.
//! - Metadata file: `{"keys": <key list envelope>, "release": <release envelope>}`.
//!
//! Times are RFC 3339; `docs/ota.md` has the release engineer's guide and the error code table.
//!
//! # Errors
//!
//! Every failure is an [`OtaError`] with a stable [`ErrorCode`] the agent reports upstream; no
//! input makes this crate panic. With the `testing` feature, the `testing` module builds a
//! valid release and every tampered variant of it from in-memory keys.

mod artifact;
mod encoding;
mod envelope;
mod error;
mod fs;
mod keydir;
mod keylist;
mod keys;
mod limits;
mod metadata;
mod names;
mod release;
mod verify;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use artifact::{ArtifactCheck, verify_artifact_file};
pub use encoding::{parse_rfc3339, rfc3339_string};
pub use envelope::{Envelope, EnvelopeSignature, PAE_TAG, pae};
pub use error::{ErrorCode, OtaError, Signed};
pub use keydir::{KEYS_FILE, KeyDir, ROOT_KEY_FILE, ROOT_PUB_FILE, Rotation, load_private, load_public};
pub use keylist::{KEYS_PAYLOAD_TYPE, KeyList, ReleaseKeyEntry};
pub use keys::{PrivateKey, PublicKey};
pub use limits::{MAX_ARTIFACT_BYTES, MAX_METADATA_BYTES, MAX_RELEASE_KEYS, MAX_SIGNATURES};
pub use metadata::{Metadata, inspect, read_metadata_file, write_metadata_file};
pub use names::{Channel, KeyId, MAX_NAME_LEN, Sha256Digest, Target};
pub use release::{Artifact, RELEASE_PAYLOAD_TYPE, Release};
pub use semver::Version;

/// The target triple this crate was built for: what releases for this build must name.
pub const BUILD_TARGET: &str = env!("LUACH_OTA_BUILD_TARGET");
pub use verify::{Policy, TrustedRoot, VerifiedRelease, verify_metadata, verify_signatures};
