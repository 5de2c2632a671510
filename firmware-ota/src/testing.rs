//! Signed releases built from fixed in-memory keys, and every tampered variant of them
//! (feature `testing`), so this crate's tests and the agent's update path refuse the same
//! broken inputs.
//!
//! [`Fixture::valid`] is a release that verifies; [`Tamper::ALL`] lists the broken variants,
//! each with the [`ErrorCode`] a screen must report ([`Tamper::expected`]) and the [`Policy`]
//! to verify it under ([`Case::policy`]). The keys come from fixed seeds: never use them for
//! anything but tests.

use chrono::{DateTime, Duration, TimeZone, Utc};
use semver::Version;
use sha2::{Digest, Sha256};

use crate::{
    Artifact, ArtifactCheck, Channel, Envelope, ErrorCode, KeyList, Metadata, OtaError, Policy, PrivateKey, Release,
    Target, TrustedRoot, VerifiedRelease, limits::MAX_METADATA_BYTES, verify_metadata,
};

/// Length of the fixture's artifact (more than one read chunk).
pub const ARTIFACT_LEN: usize = 100_000;

/// The fixture's keys, clock and artifact.
#[derive(Debug)]
pub struct Fixture {
    root: PrivateKey,
    other_root: PrivateKey,
    key_a: PrivateKey,
    key_b: PrivateKey,
    key_c: PrivateKey,
    outsider: PrivateKey,
    artifact: Vec<u8>,
    other_artifact: Vec<u8>,
    now: DateTime<Utc>,
}

/// One input to verify: metadata, artifact, the root to trust and the screen's policy.
#[derive(Debug, Clone)]
pub struct Case {
    /// The metadata file's bytes.
    pub metadata: Vec<u8>,
    /// The artifact's bytes.
    pub artifact: Vec<u8>,
    /// The root public key to trust, as `root.pub` PEM.
    pub root_pem: String,
    /// The screen's policy.
    pub policy: Policy,
    root: TrustedRoot,
}

impl Case {
    /// The root to trust.
    pub fn root(&self) -> TrustedRoot {
        self.root.clone()
    }

    /// What a screen does: [`verify_metadata`], then the artifact through [`ArtifactCheck`].
    pub fn verify(&self) -> Result<VerifiedRelease, OtaError> {
        let verified = verify_metadata(&self.root, &self.metadata, &self.policy)?;
        let mut check = ArtifactCheck::new(&verified);
        check.update(&self.artifact)?;
        check.finish()?;
        Ok(verified)
    }
}

fn key(label: &str) -> PrivateKey {
    PrivateKey::from_seed(&Sha256::digest(format!("luach-ota testing {label}")).into())
}

fn pattern(len: usize, multiplier: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(multiplier) >> 24) as u8)
        .collect()
}

fn version(text: &str) -> Version {
    Version::parse(text).expect("fixture versions are valid semver")
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

impl Fixture {
    /// The fixture: fixed keys, clock 2030-03-01T12:00:00Z, a 100 000-byte artifact.
    pub fn new() -> Self {
        Self {
            root: key("root"),
            other_root: key("other root"),
            key_a: key("release a"),
            key_b: key("release b"),
            key_c: key("release c"),
            outsider: key("outsider"),
            artifact: pattern(ARTIFACT_LEN, 2_654_435_761),
            other_artifact: pattern(ARTIFACT_LEN, 2_246_822_519),
            now: Utc
                .with_ymd_and_hms(2030, 3, 1, 12, 0, 0)
                .single()
                .expect("fixture time exists"),
        }
    }

    /// The artifact the valid release ships.
    pub fn artifact(&self) -> &[u8] {
        &self.artifact
    }

    /// The fixture's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// The screen: target `x86_64-unknown-linux-gnu`, channel `stable`, 1.2.0 installed (and
    /// the highest ever), key list floor 1.
    pub fn policy(&self) -> Policy {
        Policy {
            target: target("x86_64-unknown-linux-gnu"),
            now: self.now,
            highest_installed: Some(version("1.2.0")),
            installed: Some(version("1.2.0")),
            keys_version_floor: 1,
            channel: Some(channel("stable")),
        }
    }

    /// Release 1.3.0 of the artifact for that screen, from 1.0.0 on, issued a day ago,
    /// expiring in 30 days.
    pub fn release(&self) -> Release {
        Release {
            version: version("1.3.0"),
            target: target("x86_64-unknown-linux-gnu"),
            channel: channel("stable"),
            artifact: Artifact::of_bytes(&self.artifact),
            min_from_version: Some(version("1.0.0")),
            issued_at: self.now - Duration::days(1),
            expires: self.now + Duration::days(30),
        }
    }

    /// Key list version 1: release key A, threshold 1.
    pub fn keys_v1(&self) -> KeyList {
        KeyList::initial(&[self.key_a.public_key()], 1, self.now - Duration::days(60)).expect("fixture key list")
    }

    /// Key list version 2: A rotated out (revoked), B in.
    pub fn keys_v2(&self) -> KeyList {
        self.keys_v1()
            .rotated(&[self.key_b.public_key()], false, self.now - Duration::days(2))
            .expect("fixture rotation")
    }

    /// The release signed by key A under key list version 1, verified under [`Fixture::policy`].
    pub fn valid(&self) -> Case {
        self.case(self.signed(&self.keys_v1(), &self.release(), &[&self.key_a]))
    }

    /// The tampered variant `tamper` of [`Fixture::valid`].
    pub fn tampered(&self, tamper: Tamper) -> Case {
        let release = self.release();
        let v1 = self.keys_v1();
        let valid = || self.signed(&v1, &release, &[&self.key_a]);
        let with_release = |r: Release| self.case(self.signed(&v1, &r, &[&self.key_a]));
        match tamper {
            Tamper::ArtifactBitFlip => {
                let mut case = self.case(valid());
                case.artifact[ARTIFACT_LEN / 2] ^= 0x10;
                case
            }
            Tamper::ReleasePayloadBitFlip => {
                let mut m = valid();
                flip_middle(m.release.parts_mut().1);
                self.case(m)
            }
            Tamper::KeyListPayloadBitFlip => {
                let mut m = valid();
                flip_middle(m.keys.parts_mut().1);
                self.case(m)
            }
            Tamper::SignatureBitFlip => {
                let mut m = valid();
                if let Some(s) = m.release.parts_mut().2.first_mut() {
                    s.sig[40] ^= 0x04;
                }
                self.case(m)
            }
            Tamper::SignedByUnlistedKey => self.case(self.signed(&v1, &release, &[&self.outsider])),
            Tamper::OtherArtifactsMetadata => with_release(Release {
                artifact: Artifact::of_bytes(&self.other_artifact),
                ..release.clone()
            }),
            Tamper::Unsigned => {
                let mut m = valid();
                m.release.parts_mut().2.clear();
                self.case(m)
            }
            Tamper::TruncatedArtifact => {
                let mut case = self.case(valid());
                case.artifact.pop();
                case
            }
            Tamper::ExtendedArtifact => {
                let mut case = self.case(valid());
                case.artifact.push(0);
                case
            }
            Tamper::OlderVersion => with_release(Release {
                version: version("1.1.0"),
                ..release.clone()
            }),
            Tamper::SameVersion => with_release(Release {
                version: version("1.2.0"),
                ..release.clone()
            }),
            Tamper::Replay => {
                // The screen has moved on to 1.3.0 and is offered 1.2.0's genuine metadata again.
                let mut case = with_release(Release {
                    version: version("1.2.0"),
                    issued_at: self.now - Duration::days(40),
                    expires: self.now + Duration::days(300),
                    ..release.clone()
                });
                case.policy.highest_installed = Some(version("1.3.0"));
                case.policy.installed = Some(version("1.3.0"));
                case
            }
            Tamper::OtherTarget => with_release(Release {
                target: target("aarch64-unknown-linux-gnu"),
                ..release.clone()
            }),
            Tamper::OtherChannel => with_release(Release {
                channel: channel("beta"),
                ..release.clone()
            }),
            Tamper::Expired => {
                let mut case = self.case(valid());
                case.policy.now = release.expires + Duration::minutes(1);
                case
            }
            Tamper::RevokedKey => {
                let mut case = self.case(self.signed(&self.keys_v2(), &release, &[&self.key_a]));
                case.policy.keys_version_floor = 2;
                case
            }
            Tamper::KeyListRollback => {
                let mut case = self.case(valid());
                case.policy.keys_version_floor = 2;
                case
            }
            Tamper::UntrustedRoot => {
                let mut case = self.case(valid());
                case.root = TrustedRoot::new(self.other_root.public_key());
                case.root_pem = pem(&self.other_root);
                case
            }
            Tamper::KeyListByOtherRoot => {
                let keys = v1.sign(&self.other_root).expect("fixture key list signs");
                let m = Metadata {
                    keys,
                    release: release.sign(&[&self.key_a]).expect("fixture release signs"),
                };
                self.case(m)
            }
            Tamper::OversizedMetadata => {
                let mut case = self.case(valid());
                // Trailing whitespace: without the limit this file would verify.
                case.metadata.resize(MAX_METADATA_BYTES + 1, b' ');
                case
            }
            Tamper::BelowThreshold => {
                let keys = KeyList::initial(&[self.key_a.public_key(), self.key_c.public_key()], 2, self.now)
                    .expect("fixture key list");
                self.case(self.signed(&keys, &release, &[&self.key_a]))
            }
            Tamper::DuplicateSigner => {
                let keys = KeyList::initial(&[self.key_a.public_key(), self.key_c.public_key()], 2, self.now)
                    .expect("fixture key list");
                self.case(self.signed(&keys, &release, &[&self.key_a, &self.key_a]))
            }
            Tamper::UpdatePathNotMet => with_release(Release {
                min_from_version: Some(version("1.2.5")),
                ..release.clone()
            }),
            Tamper::UnknownField => {
                let mut payload = serde_json::to_value(&release).expect("fixture release is JSON");
                payload["rollout_percent"] = 50.into();
                let payload = serde_json::to_vec(&payload).expect("fixture release is JSON");
                let m = Metadata {
                    keys: v1.sign(&self.root).expect("fixture key list signs"),
                    release: Envelope::sign(crate::RELEASE_PAYLOAD_TYPE, payload, &[&self.key_a]),
                };
                self.case(m)
            }
            Tamper::PayloadTypeSwap => {
                let mut m = valid();
                m.keys = m.release.clone();
                self.case(m)
            }
        }
    }

    /// The root key.
    pub fn root_key(&self) -> &PrivateKey {
        &self.root
    }

    /// Release key A (authorised in key list version 1, revoked in version 2).
    pub fn key_a(&self) -> &PrivateKey {
        &self.key_a
    }

    /// Release key B (authorised in key list version 2).
    pub fn key_b(&self) -> &PrivateKey {
        &self.key_b
    }

    /// Release key C (authorised beside A in the threshold-2 cases).
    pub fn key_c(&self) -> &PrivateKey {
        &self.key_c
    }

    /// A key no key list names.
    pub fn outsider(&self) -> &PrivateKey {
        &self.outsider
    }

    /// Another installation's root.
    pub fn other_root(&self) -> &PrivateKey {
        &self.other_root
    }

    /// Metadata: `keys` signed by the root, `release` signed by `signers`.
    pub fn signed(&self, keys: &KeyList, release: &Release, signers: &[&PrivateKey]) -> Metadata {
        Metadata {
            keys: keys.sign(&self.root).expect("fixture key list signs"),
            release: release.sign(signers).expect("fixture release signs"),
        }
    }

    /// A case for `metadata` with the fixture's artifact, root and [`Fixture::policy`].
    pub fn case(&self, metadata: Metadata) -> Case {
        Case {
            metadata: metadata.to_bytes().expect("fixture metadata fits"),
            artifact: self.artifact.clone(),
            root_pem: pem(&self.root),
            policy: self.policy(),
            root: TrustedRoot::new(self.root.public_key()),
        }
    }
}

fn pem(key: &PrivateKey) -> String {
    key.public_key().to_pem().expect("fixture key encodes")
}

fn target(text: &str) -> Target {
    Target::parse(text).expect("fixture target is valid")
}

fn channel(text: &str) -> Channel {
    Channel::parse(text).expect("fixture channel is valid")
}

fn flip_middle(bytes: &mut [u8]) {
    let middle = bytes.len() / 2;
    if let Some(b) = bytes.get_mut(middle) {
        *b ^= 0x01;
    }
}

/// A way a release can be broken, forged, replayed or simply not meant for the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tamper {
    ArtifactBitFlip,
    ReleasePayloadBitFlip,
    KeyListPayloadBitFlip,
    SignatureBitFlip,
    SignedByUnlistedKey,
    OtherArtifactsMetadata,
    Unsigned,
    TruncatedArtifact,
    ExtendedArtifact,
    OlderVersion,
    SameVersion,
    Replay,
    OtherTarget,
    OtherChannel,
    Expired,
    RevokedKey,
    KeyListRollback,
    UntrustedRoot,
    KeyListByOtherRoot,
    OversizedMetadata,
    BelowThreshold,
    DuplicateSigner,
    UpdatePathNotMet,
    UnknownField,
    PayloadTypeSwap,
}

impl Tamper {
    /// Every case.
    pub const ALL: &[Tamper] = &[
        Self::ArtifactBitFlip,
        Self::ReleasePayloadBitFlip,
        Self::KeyListPayloadBitFlip,
        Self::SignatureBitFlip,
        Self::SignedByUnlistedKey,
        Self::OtherArtifactsMetadata,
        Self::Unsigned,
        Self::TruncatedArtifact,
        Self::ExtendedArtifact,
        Self::OlderVersion,
        Self::SameVersion,
        Self::Replay,
        Self::OtherTarget,
        Self::OtherChannel,
        Self::Expired,
        Self::RevokedKey,
        Self::KeyListRollback,
        Self::UntrustedRoot,
        Self::KeyListByOtherRoot,
        Self::OversizedMetadata,
        Self::BelowThreshold,
        Self::DuplicateSigner,
        Self::UpdatePathNotMet,
        Self::UnknownField,
        Self::PayloadTypeSwap,
    ];

    /// The code a screen must report for this case.
    pub const fn expected(self) -> ErrorCode {
        match self {
            Self::ArtifactBitFlip | Self::OtherArtifactsMetadata => ErrorCode::ArtifactHashMismatch,
            Self::ReleasePayloadBitFlip | Self::KeyListPayloadBitFlip | Self::SignatureBitFlip => {
                ErrorCode::BadSignature
            }
            Self::SignedByUnlistedKey => ErrorCode::UnknownKey,
            Self::Unsigned | Self::BelowThreshold | Self::DuplicateSigner => ErrorCode::BelowThreshold,
            Self::TruncatedArtifact => ErrorCode::ArtifactTruncated,
            Self::ExtendedArtifact => ErrorCode::ArtifactTooLong,
            Self::OlderVersion | Self::SameVersion | Self::Replay => ErrorCode::NotNewer,
            Self::OtherTarget => ErrorCode::WrongTarget,
            Self::OtherChannel => ErrorCode::WrongChannel,
            Self::Expired => ErrorCode::Expired,
            Self::RevokedKey => ErrorCode::RevokedKey,
            Self::KeyListRollback => ErrorCode::KeyListRollback,
            Self::UntrustedRoot | Self::KeyListByOtherRoot => ErrorCode::UntrustedRoot,
            Self::OversizedMetadata => ErrorCode::MetadataTooLarge,
            Self::UpdatePathNotMet => ErrorCode::UpdatePath,
            Self::UnknownField | Self::PayloadTypeSwap => ErrorCode::MalformedMetadata,
        }
    }

    /// What the case does.
    pub const fn description(self) -> &'static str {
        match self {
            Self::ArtifactBitFlip => "one bit of the artifact flipped",
            Self::ReleasePayloadBitFlip => "one bit of the signed release payload flipped",
            Self::KeyListPayloadBitFlip => "one bit of the root-signed key list payload flipped",
            Self::SignatureBitFlip => "one bit of the release signature flipped",
            Self::SignedByUnlistedKey => "the release is signed by a key the key list does not name",
            Self::OtherArtifactsMetadata => "genuine metadata of another artifact of the same length",
            Self::Unsigned => "the release's signatures removed",
            Self::TruncatedArtifact => "the artifact is one byte short",
            Self::ExtendedArtifact => "the artifact has one byte more than declared",
            Self::OlderVersion => "a genuine release older than the installed version (downgrade)",
            Self::SameVersion => "a genuine release of the installed version",
            Self::Replay => "the genuine metadata of the previous release, offered after an update",
            Self::OtherTarget => "a genuine release for another target",
            Self::OtherChannel => "a genuine release on another channel",
            Self::Expired => "a genuine release after its expiry",
            Self::RevokedKey => "signed by a release key the current key list revokes",
            Self::KeyListRollback => "a genuine release under a key list older than the screen's floor",
            Self::UntrustedRoot => "the screen trusts another root",
            Self::KeyListByOtherRoot => "the key list is signed by another root",
            Self::OversizedMetadata => "otherwise valid metadata padded past the size limit",
            Self::BelowThreshold => "threshold 2 but only one signature",
            Self::DuplicateSigner => "threshold 2 met only by the same key signing twice",
            Self::UpdatePathNotMet => "the installed version is below the release's min_from_version",
            Self::UnknownField => "a genuinely signed release payload with an unknown field",
            Self::PayloadTypeSwap => "the release envelope placed where the key list belongs",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_valid_case_verifies() {
        let fx = Fixture::new();
        let verified = fx.valid().verify().expect("valid");
        assert_eq!(verified.version(), &version("1.3.0"));
        assert_eq!(verified.keys_version(), 1);
        assert_eq!(verified.signed_by(), &[fx.key_a.key_id()]);
    }

    #[test]
    fn every_tampered_case_is_refused_with_its_code() {
        let fx = Fixture::new();
        for tamper in Tamper::ALL {
            let case = fx.tampered(*tamper);
            let e = case.verify().expect_err(tamper.description());
            assert_eq!(e.code(), tamper.expected(), "{tamper:?}: {e}");
        }
    }

    #[test]
    fn each_case_differs_from_the_valid_one_in_one_way_only() {
        // A case that also broke something else could be refused for the wrong reason; the
        // policy-only cases, fixed back, must verify.
        let fx = Fixture::new();
        let mut expired = fx.tampered(Tamper::Expired);
        expired.policy.now = fx.now();
        expired.verify().expect("expired case with the fixture clock");
        let mut rollback = fx.tampered(Tamper::KeyListRollback);
        rollback.policy.keys_version_floor = 1;
        rollback.verify().expect("rollback case with floor 1");
        let mut untrusted = fx.tampered(Tamper::UntrustedRoot);
        untrusted.root = TrustedRoot::new(fx.root.public_key());
        untrusted.verify().expect("untrusted case with the right root");
        let mut oversized = fx.tampered(Tamper::OversizedMetadata);
        oversized.metadata.truncate(MAX_METADATA_BYTES);
        oversized.verify().expect("padding within the limit");
        let mut replay = fx.tampered(Tamper::Replay);
        replay.policy.highest_installed = Some(version("1.1.0"));
        replay.verify().expect("replayed release while it is still new");
    }
}
