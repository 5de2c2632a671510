//! Verification: the trusted root, a screen's policy, and the checks in their documented order.

use std::path::Path;

use chrono::{DateTime, Utc};
use semver::Version;

use crate::OtaError;
use crate::envelope::Envelope;
use crate::error::Signed;
use crate::fs::read_text;
use crate::keylist::{KEYS_PAYLOAD_TYPE, KeyList};
use crate::keys::PublicKey;
use crate::metadata::Metadata;
use crate::names::{Channel, KeyId, Target};
use crate::release::{Artifact, RELEASE_PAYLOAD_TYPE, Release};

/// The one key a screen trusts: the offline root's public key (`root.pub`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedRoot {
    key: PublicKey,
}

impl TrustedRoot {
    /// Trusts `key`.
    pub fn new(key: PublicKey) -> Self {
        Self { key }
    }

    /// Reads a `PUBLIC KEY` PEM block; `what` names the source in errors.
    pub fn from_pem(pem: &str, what: &str) -> Result<Self, OtaError> {
        PublicKey::from_pem(pem, what).map(Self::new)
    }

    /// Reads `root.pub`.
    pub fn from_file(path: &Path) -> Result<Self, OtaError> {
        Self::from_pem(&read_text(path, "read trusted root")?, &path.display().to_string())
    }

    /// The root key's id.
    pub fn key_id(&self) -> KeyId {
        self.key.key_id()
    }

    /// The root public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.key
    }

    /// Checks a key list envelope's type and root signature, then parses and validates the list.
    /// Does not compare its version with any floor.
    pub fn verify_key_list(&self, envelope: &Envelope) -> Result<KeyList, OtaError> {
        if envelope.payload_type() != KEYS_PAYLOAD_TYPE {
            return Err(OtaError::malformed(
                "key list envelope",
                format!(
                    "payload type {:?}; expected {KEYS_PAYLOAD_TYPE:?}",
                    envelope.payload_type()
                ),
            ));
        }
        let root_id = self.key_id();
        let by_root: Vec<_> = envelope.signatures().iter().filter(|s| s.key_id == root_id).collect();
        if by_root.is_empty() {
            return Err(OtaError::UntrustedRoot {
                trusted: root_id,
                signers: envelope.signatures().iter().map(|s| s.key_id).collect(),
            });
        }
        if !by_root.iter().any(|s| envelope.verifies(&self.key, s)) {
            return Err(OtaError::BadSignature {
                what: Signed::KeyList,
                key_id: root_id,
            });
        }
        let keys = KeyList::from_payload(envelope.payload())?;
        if keys.authorised(&root_id).is_some() {
            return Err(OtaError::malformed(
                "key list",
                "the root key is also listed as a release key",
            ));
        }
        Ok(keys)
    }
}

/// What a screen accepts. Nothing here reads a clock or a disk: the caller supplies both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The screen's target; a release for any other is refused.
    pub target: Target,
    /// The current time (a release is accepted while `now < expires`).
    pub now: DateTime<Utc>,
    /// The screen's persistent anti-rollback counter: the highest version it has ever
    /// installed. A release must be strictly newer.
    pub highest_installed: Option<Version>,
    /// The version running now, checked against the release's `min_from_version`.
    pub installed: Option<Version>,
    /// The highest key list version the screen has accepted; an older key list is refused,
    /// which is what makes a revocation stick.
    pub keys_version_floor: u64,
    /// The channel the screen follows; `None` accepts any.
    pub channel: Option<Channel>,
}

impl Policy {
    /// A screen of `target` at `now` with no history: any version, any channel, any key list.
    pub fn new(target: Target, now: DateTime<Utc>) -> Self {
        Self {
            target,
            now,
            highest_installed: None,
            installed: None,
            keys_version_floor: 0,
            channel: None,
        }
    }

    /// Checks an authentic release against this policy: target, channel, expiry,
    /// anti-rollback, update path, in that order. (The key list floor is checked during
    /// signature verification, see [`verify_signatures`].)
    pub fn check(&self, verified: &VerifiedRelease) -> Result<(), OtaError> {
        let release = &verified.release;
        if release.target != self.target {
            return Err(OtaError::WrongTarget {
                release: release.target.clone(),
                expected: self.target.clone(),
            });
        }
        if let Some(channel) = &self.channel
            && release.channel != *channel
        {
            return Err(OtaError::WrongChannel {
                release: release.channel.clone(),
                expected: channel.clone(),
            });
        }
        if self.now >= release.expires {
            return Err(OtaError::Expired {
                expires: release.expires,
                now: self.now,
            });
        }
        if let Some(highest) = &self.highest_installed
            && release.version.cmp_precedence(highest).is_le()
        {
            return Err(OtaError::NotNewer {
                version: release.version.clone(),
                highest: highest.clone(),
            });
        }
        if let Some(min_from) = &release.min_from_version {
            let met = self
                .installed
                .as_ref()
                .is_some_and(|installed| min_from.cmp_precedence(installed).is_le());
            if !met {
                return Err(OtaError::UpdatePath {
                    version: release.version.clone(),
                    min_from: min_from.clone(),
                    installed: self.installed.clone().map(Box::new),
                });
            }
        }
        Ok(())
    }
}

/// A release whose signatures verified under a root-signed key list. Only this crate makes
/// one, so holding one proves the checks ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRelease {
    release: Release,
    keys_version: u64,
    signed_by: Vec<KeyId>,
}

impl VerifiedRelease {
    /// All checked release fields.
    pub fn release(&self) -> &Release {
        &self.release
    }

    /// The release's version.
    pub fn version(&self) -> &Version {
        &self.release.version
    }

    /// What it runs on.
    pub fn target(&self) -> &Target {
        &self.release.target
    }

    /// Its channel.
    pub fn channel(&self) -> &Channel {
        &self.release.channel
    }

    /// The artifact's declared digest and length.
    pub fn artifact(&self) -> &Artifact {
        &self.release.artifact
    }

    /// The version of the key list it verified under; a screen raises its floor to this.
    pub fn keys_version(&self) -> u64 {
        self.keys_version
    }

    /// The distinct authorised release keys whose signatures verified, in envelope order.
    pub fn signed_by(&self) -> &[KeyId] {
        &self.signed_by
    }
}

/// Everything a screen checks before downloading: [`verify_signatures`] then [`Policy::check`].
///
/// Order: size limit → parse → key list payload type and root signature → key list validity →
/// key list version ≥ floor → release signatures (threshold of distinct authorised,
/// non-revoked keys) → release payload → target → channel → expiry → anti-rollback →
/// `min_from_version`.
pub fn verify_metadata(root: &TrustedRoot, bytes: &[u8], policy: &Policy) -> Result<VerifiedRelease, OtaError> {
    let verified = verify_signatures(root, bytes, policy.keys_version_floor)?;
    policy.check(&verified)?;
    Ok(verified)
}

/// Checks that a metadata file is authentic (what the control plane does with an upload):
/// everything in [`verify_metadata`] up to and including parsing the release payload, but not
/// the screen-specific target, channel, expiry and version checks.
pub fn verify_signatures(
    root: &TrustedRoot,
    bytes: &[u8],
    keys_version_floor: u64,
) -> Result<VerifiedRelease, OtaError> {
    let metadata = Metadata::parse(bytes)?;
    let keys = root.verify_key_list(&metadata.keys)?;
    if keys.version < keys_version_floor {
        return Err(OtaError::KeyListRollback {
            version: keys.version,
            floor: keys_version_floor,
        });
    }
    let signed_by = release_signers(&keys, &metadata.release)?;
    let release = Release::from_payload(metadata.release.payload())?;
    Ok(VerifiedRelease {
        release,
        keys_version: keys.version,
        signed_by,
    })
}

/// The distinct authorised keys with valid signatures on the release envelope, if they reach
/// the threshold. Otherwise the most telling reason: a revoked signer, a bad signature by an
/// authorised key, an unknown signer, or simply too few signatures.
fn release_signers(keys: &KeyList, envelope: &Envelope) -> Result<Vec<KeyId>, OtaError> {
    if envelope.payload_type() != RELEASE_PAYLOAD_TYPE {
        return Err(OtaError::malformed(
            "release envelope",
            format!(
                "payload type {:?}; expected {RELEASE_PAYLOAD_TYPE:?}",
                envelope.payload_type()
            ),
        ));
    }
    let mut valid: Vec<KeyId> = Vec::new();
    let (mut revoked, mut bad, mut unknown) = (None, None, None);
    for signature in envelope.signatures() {
        let id = signature.key_id;
        match keys.authorised(&id) {
            Some(key) if envelope.verifies(key, signature) => {
                if !valid.contains(&id) {
                    valid.push(id);
                }
            }
            Some(_) => bad = bad.or(Some(id)),
            // A revoked key's public key is no longer listed, so its signature cannot be
            // checked; naming the revocation is the useful diagnosis either way.
            None if keys.is_revoked(&id) => revoked = revoked.or(Some(id)),
            None => unknown = unknown.or(Some(id)),
        }
    }
    if valid.len() >= usize::from(keys.threshold) {
        return Ok(valid);
    }
    let keys_version = keys.version;
    Err(if let Some(key_id) = revoked {
        OtaError::RevokedKey { key_id, keys_version }
    } else if let Some(key_id) = bad {
        OtaError::BadSignature {
            what: Signed::Release,
            key_id,
        }
    } else if let Some(key_id) = unknown {
        OtaError::UnknownKey { key_id, keys_version }
    } else {
        OtaError::BelowThreshold {
            valid: valid.len(),
            threshold: keys.threshold,
            keys_version,
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use chrono::Duration;
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{Case, Fixture};
    use crate::{ErrorCode, KeyList, Metadata, PrivateKey};

    fn fixture() -> &'static Fixture {
        static FIXTURE: OnceLock<Fixture> = OnceLock::new();
        FIXTURE.get_or_init(Fixture::new)
    }

    fn valid() -> &'static Case {
        static VALID: OnceLock<Case> = OnceLock::new();
        VALID.get_or_init(|| fixture().valid())
    }

    fn code(case: &Case) -> ErrorCode {
        case.verify().expect_err("refused").code()
    }

    fn signed_by(keys: &KeyList, signers: &[&PrivateKey]) -> Case {
        let fx = fixture();
        fx.case(fx.signed(keys, &fx.release(), signers))
    }

    #[test]
    fn expiry_is_exclusive() {
        let mut case = valid().clone();
        let expires = fx_release_expires();
        case.policy.now = expires - Duration::seconds(1);
        case.verify().expect("a second before expiry");
        case.policy.now = expires;
        assert_eq!(code(&case), ErrorCode::Expired);
    }

    fn fx_release_expires() -> DateTime<Utc> {
        fixture().release().expires
    }

    #[test]
    fn signatures_by_unknown_or_revoked_keys_do_not_count_but_do_not_spoil() {
        let fx = fixture();
        let case = signed_by(&fx.keys_v1(), &[fx.outsider(), fx.key_a()]);
        assert_eq!(case.verify().expect("A signed").signed_by(), &[fx.key_a().key_id()]);
        let mut case = signed_by(&fx.keys_v2(), &[fx.key_a(), fx.key_b()]);
        case.policy.keys_version_floor = 2;
        let verified = case.verify().expect("B signed");
        assert_eq!(verified.signed_by(), &[fx.key_b().key_id()]);
        assert_eq!(verified.keys_version(), 2);
    }

    #[test]
    fn the_threshold_counts_distinct_valid_keys() {
        let fx = fixture();
        let two = KeyList::initial(&[fx.key_a().public_key(), fx.key_c().public_key()], 2, fx.now()).expect("list");
        let verified = signed_by(&two, &[fx.key_c(), fx.key_a()]).verify().expect("two keys");
        assert_eq!(verified.signed_by(), &[fx.key_c().key_id(), fx.key_a().key_id()]);
        let e = signed_by(&two, &[fx.key_a(), fx.key_a(), fx.outsider()])
            .verify()
            .expect_err("one key");
        // An unknown signer is the more telling reason than the count.
        assert_eq!(e.code(), ErrorCode::UnknownKey);
        let e = signed_by(&two, &[fx.key_a()]).verify().expect_err("one key");
        assert_eq!(
            e.to_string(),
            "the release carries 1 valid signature(s) by authorised keys; key list version 1 requires 2"
        );
    }

    #[test]
    fn anti_rollback_uses_semver_precedence() {
        let mut case = valid().clone();
        case.policy.highest_installed = Some(Version::parse("1.3.0-rc.1").expect("v"));
        case.verify().expect("1.3.0 is newer than its release candidate");
        case.policy.highest_installed = Some(Version::parse("1.3.0+other.build").expect("v"));
        let e = case.verify().expect_err("same precedence");
        assert_eq!(e.code(), ErrorCode::NotNewer);
        assert!(e.to_string().contains("already the highest"), "{e}");
        case.policy.highest_installed = Some(Version::parse("1.10.0").expect("v"));
        let e = case.verify().expect_err("older");
        assert_eq!(
            e.to_string(),
            "version 1.3.0 is not newer than 1.10.0, the highest this screen has installed"
        );
        case.policy.highest_installed = None;
        case.verify().expect("a screen with no history");
    }

    #[test]
    fn the_update_path_needs_a_known_installed_version() {
        let mut case = valid().clone();
        case.policy.installed = Some(Version::new(1, 0, 0));
        case.verify().expect("exactly min_from_version");
        case.policy.installed = None;
        let e = case.verify().expect_err("unknown installed version");
        assert_eq!(e.code(), ErrorCode::UpdatePath);
        assert!(e.to_string().contains("no installed version recorded"), "{e}");
        let fx = fixture();
        let release = Release {
            min_from_version: None,
            ..fx.release()
        };
        let mut case = fx.case(fx.signed(&fx.keys_v1(), &release, &[fx.key_a()]));
        case.policy.installed = None;
        case.verify().expect("no floor, nothing to check");
    }

    #[test]
    fn no_channel_in_the_policy_accepts_any() {
        let mut case = fixture().tampered(crate::testing::Tamper::OtherChannel);
        case.policy.channel = None;
        assert_eq!(case.verify().expect("any channel").channel().as_str(), "beta");
    }

    #[test]
    fn the_root_may_not_double_as_a_release_key() {
        let fx = fixture();
        let mut list = fx.keys_v1();
        list.release_keys
            .push(crate::ReleaseKeyEntry::new(fx.root_key().public_key()));
        assert!(list.sign(fx.root_key()).is_err(), "refused when signing");
        let payload = serde_json::to_vec(&list).expect("json");
        let m = Metadata {
            keys: Envelope::sign(KEYS_PAYLOAD_TYPE, payload, &[fx.root_key()]),
            release: fx.release().sign(&[fx.key_a()]).expect("sign"),
        };
        let e = fx.case(m).verify().expect_err("root as release key");
        assert_eq!(e.code(), ErrorCode::MalformedMetadata);
        assert!(e.to_string().contains("root key is also listed"), "{e}");
    }

    #[test]
    fn a_key_list_in_the_release_slot_is_refused() {
        let fx = fixture();
        let mut m = fx.signed(&fx.keys_v1(), &fx.release(), &[fx.key_a()]);
        m.release = m.keys.clone();
        let e = fx.case(m).verify().expect_err("type confusion");
        assert_eq!(e.code(), ErrorCode::MalformedMetadata);
        assert!(e.to_string().contains("release envelope: payload type"), "{e}");
    }

    #[test]
    fn the_key_list_may_carry_other_signatures_beside_the_root() {
        let fx = fixture();
        let mut m = fx.signed(&fx.keys_v1(), &fx.release(), &[fx.key_a()]);
        let extra = Envelope::sign(
            KEYS_PAYLOAD_TYPE,
            m.keys.payload().to_vec(),
            &[fx.other_root(), fx.root_key()],
        );
        m.keys = extra;
        fx.case(m).verify().expect("root signature found among others");
    }

    #[test]
    fn verify_signatures_ignores_the_screen_policy() {
        let case = fixture().tampered(crate::testing::Tamper::OtherTarget);
        let verified = verify_signatures(&case.root(), &case.metadata, 1).expect("authentic");
        assert_eq!(verified.target().as_str(), "aarch64-unknown-linux-gnu");
        let case = fixture().tampered(crate::testing::Tamper::SignatureBitFlip);
        assert_eq!(
            verify_signatures(&case.root(), &case.metadata, 0)
                .expect_err("forged")
                .code(),
            ErrorCode::BadSignature
        );
    }

    #[test]
    fn every_single_bit_flip_of_the_metadata_is_refused() {
        // Exhaustive: every bit of the file, not a sample.
        let case = valid();
        for bit in 0..case.metadata.len() * 8 {
            let mut broken = case.clone();
            broken.metadata[bit / 8] ^= 1 << (bit % 8);
            assert!(
                verify_metadata(&broken.root(), &broken.metadata, &broken.policy).is_err(),
                "flipping bit {bit} still verifies"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn flipping_any_bit_of_the_metadata_never_verifies(index in any::<prop::sample::Index>()) {
            let mut case = valid().clone();
            let bit = index.index(case.metadata.len() * 8);
            case.metadata[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(case.verify().is_err());
        }

        #[test]
        fn flipping_any_bit_of_the_artifact_never_verifies(index in any::<prop::sample::Index>()) {
            let mut case = valid().clone();
            let bit = index.index(case.artifact.len() * 8);
            case.artifact[bit / 8] ^= 1 << (bit % 8);
            let e = case.verify().expect_err("altered artifact");
            prop_assert_eq!(e.code(), ErrorCode::ArtifactHashMismatch);
        }

        #[test]
        fn arbitrary_bytes_never_panic_or_verify(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            prop_assert!(verify_metadata(&valid().root(), &bytes, &valid().policy).is_err());
        }
    }
}
