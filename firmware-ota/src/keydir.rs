//! The release engineer's key directory: generating, loading and rotating keys, signing releases.
//!
//! Layout: `root.key` (PKCS#8, 0600; move it offline after key generation), `root.pub` (what
//! screens trust), `release-<key id>.key` / `.pub` per release key, and `keys.json` (the
//! current root-signed key list envelope).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::OtaError;
use crate::envelope::Envelope;
use crate::fs::{Mode, read_limited, read_private, read_text, write_new, write_replace};
use crate::keylist::KeyList;
use crate::keys::{PrivateKey, PublicKey};
use crate::limits::MAX_METADATA_BYTES;
use crate::metadata::Metadata;
use crate::names::KeyId;
use crate::release::Release;
use crate::verify::{TrustedRoot, verify_signatures};

/// The root private key's file name.
pub const ROOT_KEY_FILE: &str = "root.key";
/// The root public key's file name: the file screens trust.
pub const ROOT_PUB_FILE: &str = "root.pub";
/// The current key list envelope's file name.
pub const KEYS_FILE: &str = "keys.json";

/// A directory of keys (see the module layout above). Opening one touches no file.
#[derive(Debug, Clone)]
pub struct KeyDir {
    dir: PathBuf,
}

/// What [`KeyDir::rotate`] did.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The release keys generated.
    pub added: Vec<KeyId>,
    /// The new key list.
    pub keys: KeyList,
}

impl KeyDir {
    /// The key directory at `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `DIR/root.key`, the default place of the root key.
    pub fn root_key_path(&self) -> PathBuf {
        self.dir.join(ROOT_KEY_FILE)
    }

    /// `DIR/root.pub`.
    pub fn root_pub_path(&self) -> PathBuf {
        self.dir.join(ROOT_PUB_FILE)
    }

    /// `DIR/keys.json`.
    pub fn keys_path(&self) -> PathBuf {
        self.dir.join(KEYS_FILE)
    }

    /// `DIR/release-<id>.key`.
    pub fn release_key_path(&self, id: &KeyId) -> PathBuf {
        self.dir.join(format!("release-{id}.key"))
    }

    /// `DIR/release-<id>.pub`.
    pub fn release_pub_path(&self, id: &KeyId) -> PathBuf {
        self.dir.join(format!("release-{id}.pub"))
    }

    /// Generates a root key and `release_keys` release keys, and writes them with the root-signed
    /// key list version 1 into `dir` (created if missing). Refuses to overwrite any file.
    pub fn keygen(
        dir: impl Into<PathBuf>,
        release_keys: usize,
        threshold: u8,
        now: DateTime<Utc>,
    ) -> Result<(Self, KeyList), OtaError> {
        let keys = Self::open(dir);
        for path in [keys.root_key_path(), keys.root_pub_path(), keys.keys_path()] {
            if path.exists() {
                return Err(OtaError::FileExists { path });
            }
        }
        let root = PrivateKey::generate()?;
        let release = (0..release_keys)
            .map(|_| PrivateKey::generate())
            .collect::<Result<Vec<_>, _>>()?;
        let publics: Vec<PublicKey> = release.iter().map(PrivateKey::public_key).collect();
        let list = KeyList::initial(&publics, threshold, now)?;
        let envelope = list.sign(&root)?;
        std::fs::create_dir_all(&keys.dir).map_err(|e| OtaError::io("create directory", &keys.dir, e))?;
        write_new(&keys.root_key_path(), root.to_pem()?.as_bytes(), Mode::Private)?;
        write_new(
            &keys.root_pub_path(),
            root.public_key().to_pem()?.as_bytes(),
            Mode::Public,
        )?;
        for key in &release {
            keys.store_release_key(key)?;
        }
        write_new(&keys.keys_path(), &envelope_bytes(&envelope)?, Mode::Public)?;
        Ok((keys, list))
    }

    /// The root public key in `root.pub`.
    pub fn trusted_root(&self) -> Result<TrustedRoot, OtaError> {
        TrustedRoot::from_file(&self.root_pub_path())
    }

    /// The key list envelope in `keys.json`, unverified.
    pub fn key_list_envelope(&self) -> Result<Envelope, OtaError> {
        let path = self.keys_path();
        let bytes = read_limited(&path, MAX_METADATA_BYTES, "read key list")?;
        serde_json::from_slice(&bytes).map_err(|e| OtaError::malformed(path.display(), e))
    }

    /// The key list in `keys.json`, verified against `root.pub`.
    pub fn key_list(&self) -> Result<KeyList, OtaError> {
        self.trusted_root()?.verify_key_list(&self.key_list_envelope()?)
    }

    /// Signs `release` with every authorised release key whose private key is in this
    /// directory and returns the metadata file's bytes. Refused if fewer than the threshold
    /// are present. The result is verified against `root.pub` before it is returned.
    pub fn sign_release(&self, release: &Release) -> Result<Vec<u8>, OtaError> {
        let root = self.trusted_root()?;
        let keys_envelope = self.key_list_envelope()?;
        let keys = root.verify_key_list(&keys_envelope)?;
        let mut signers = Vec::new();
        for entry in &keys.release_keys {
            let path = self.release_key_path(&entry.key_id);
            if path.exists() {
                let key = load_private(&path)?;
                if key.key_id() != entry.key_id {
                    return Err(OtaError::InvalidKey {
                        what: path.display().to_string(),
                        reason: format!("holds key {}, not {}", key.key_id(), entry.key_id),
                    });
                }
                signers.push(key);
            }
        }
        if signers.len() < usize::from(keys.threshold) {
            return Err(OtaError::NotEnoughKeys {
                action: "signing",
                available: signers.len(),
                threshold: keys.threshold,
            });
        }
        let signers: Vec<&PrivateKey> = signers.iter().collect();
        let metadata = Metadata {
            keys: keys_envelope,
            release: release.sign(&signers)?,
        };
        let bytes = metadata.to_bytes()?;
        verify_signatures(&root, &bytes, keys.version)?;
        Ok(bytes)
    }

    /// Generates new release keys and publishes key list version + 1 signed by the root key
    /// (`root_key`, default `DIR/root.key`). With `keep_old`, one key is added and the current
    /// ones stay; otherwise as many keys as are authorised now replace them and they move to
    /// `revoked`.
    pub fn rotate(&self, root_key: Option<&Path>, keep_old: bool, now: DateTime<Utc>) -> Result<Rotation, OtaError> {
        let root = self.load_root(root_key)?;
        let current = self.key_list()?;
        let count = if keep_old { 1 } else { current.release_keys.len() };
        let new_keys = (0..count)
            .map(|_| PrivateKey::generate())
            .collect::<Result<Vec<_>, _>>()?;
        let publics: Vec<PublicKey> = new_keys.iter().map(PrivateKey::public_key).collect();
        let next = current.rotated(&publics, keep_old, now)?;
        let envelope = next.sign(&root)?;
        for key in &new_keys {
            self.store_release_key(key)?;
        }
        write_replace(&self.keys_path(), &envelope_bytes(&envelope)?, Mode::Public)?;
        Ok(Rotation {
            added: new_keys.iter().map(PrivateKey::key_id).collect(),
            keys: next,
        })
    }

    /// Moves release key `id` to `revoked` and publishes key list version + 1 signed by the root
    /// key (`root_key`, default `DIR/root.key`). Refused if fewer than the threshold would remain.
    pub fn revoke(&self, root_key: Option<&Path>, id: &KeyId, now: DateTime<Utc>) -> Result<KeyList, OtaError> {
        let root = self.load_root(root_key)?;
        let next = self.key_list()?.revoking(id, now)?;
        write_replace(&self.keys_path(), &envelope_bytes(&next.sign(&root)?)?, Mode::Public)?;
        Ok(next)
    }

    fn load_root(&self, root_key: Option<&Path>) -> Result<PrivateKey, OtaError> {
        let trusted = self.trusted_root()?;
        let path = root_key.map_or_else(|| self.root_key_path(), Path::to_path_buf);
        let key = load_private(&path)?;
        if key.key_id() != trusted.key_id() {
            return Err(OtaError::RootKeyMismatch {
                root_key: key.key_id(),
                trusted: trusted.key_id(),
            });
        }
        Ok(key)
    }

    fn store_release_key(&self, key: &PrivateKey) -> Result<(), OtaError> {
        let id = key.key_id();
        write_new(&self.release_key_path(&id), key.to_pem()?.as_bytes(), Mode::Private)?;
        write_new(
            &self.release_pub_path(&id),
            key.public_key().to_pem()?.as_bytes(),
            Mode::Public,
        )
    }
}

/// Reads a private key file (refusing one readable by others).
pub fn load_private(path: &Path) -> Result<PrivateKey, OtaError> {
    PrivateKey::from_pem(&read_private(path)?, &path.display().to_string())
}

/// Reads a public key file.
pub fn load_public(path: &Path) -> Result<PublicKey, OtaError> {
    PublicKey::from_pem(&read_text(path, "read public key")?, &path.display().to_string())
}

fn envelope_bytes(envelope: &Envelope) -> Result<Vec<u8>, OtaError> {
    let mut bytes = serde_json::to_vec_pretty(envelope).map_err(|e| OtaError::input("key list", e))?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use semver::Version;

    use super::*;
    use crate::names::{Channel, Target};
    use crate::release::Artifact;
    use crate::verify::{Policy, verify_metadata};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 3, 1, 12, 0, 0).single().expect("time")
    }

    fn release(version: &str) -> Release {
        Release {
            version: Version::parse(version).expect("version"),
            target: Target::parse("pi4-kiosk").expect("target"),
            channel: Channel::parse("stable").expect("channel"),
            artifact: Artifact::of_bytes(b"firmware"),
            min_from_version: None,
            issued_at: now(),
            expires: now() + Duration::days(7),
        }
    }

    fn policy() -> Policy {
        Policy::new(Target::parse("pi4-kiosk").expect("target"), now())
    }

    #[test]
    fn keygen_writes_the_documented_files_and_refuses_to_overwrite() {
        let tmp = tempfile::tempdir().expect("dir");
        let dir = tmp.path().join("keys");
        let (keys, list) = KeyDir::keygen(&dir, 2, 1, now()).expect("keygen");
        assert_eq!(list.version, 1);
        assert_eq!(keys.key_list().expect("list"), list);
        for entry in &list.release_keys {
            assert!(keys.release_key_path(&entry.key_id).exists());
            let public = load_public(&keys.release_pub_path(&entry.key_id)).expect("pub");
            assert_eq!(public.key_id(), entry.key_id);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(&keys.root_key_path()), 0o600);
            assert_eq!(mode(&keys.release_key_path(&list.release_keys[0].key_id)), 0o600);
            assert_eq!(mode(&keys.root_pub_path()), 0o644);
        }
        let before = std::fs::read(keys.root_key_path()).expect("read");
        let e = KeyDir::keygen(&dir, 1, 1, now()).expect_err("second keygen");
        assert_eq!(e.code().as_str(), "file_exists");
        assert_eq!(std::fs::read(keys.root_key_path()).expect("read"), before);
        let e = KeyDir::keygen(tmp.path().join("other"), 1, 2, now()).expect_err("threshold");
        assert_eq!(e.code().as_str(), "not_enough_keys");
        assert!(!tmp.path().join("other").join(ROOT_KEY_FILE).exists());
    }

    #[test]
    fn signs_with_every_present_key_and_needs_the_threshold() {
        let tmp = tempfile::tempdir().expect("dir");
        let (keys, list) = KeyDir::keygen(tmp.path(), 3, 2, now()).expect("keygen");
        let bytes = keys.sign_release(&release("1.0.0")).expect("sign");
        let verified = verify_metadata(&keys.trusted_root().expect("root"), &bytes, &policy()).expect("verify");
        assert_eq!(verified.signed_by().len(), 3);
        std::fs::remove_file(keys.release_key_path(&list.release_keys[0].key_id)).expect("rm");
        let bytes = keys.sign_release(&release("1.0.0")).expect("two of three");
        let verified = verify_metadata(&keys.trusted_root().expect("root"), &bytes, &policy()).expect("verify");
        assert_eq!(verified.signed_by().len(), 2);
        std::fs::remove_file(keys.release_key_path(&list.release_keys[1].key_id)).expect("rm");
        let e = keys.sign_release(&release("1.0.0")).expect_err("one of three");
        assert_eq!(e.code().as_str(), "not_enough_keys");
        assert_eq!(
            e.to_string(),
            "signing needs 2 authorised release key(s) but 1 would be available"
        );
    }

    #[test]
    fn rotation_with_an_offline_root_revokes_the_old_key() {
        let tmp = tempfile::tempdir().expect("dir");
        let (keys, v1) = KeyDir::keygen(tmp.path().join("keys"), 1, 1, now()).expect("keygen");
        let offline = tmp.path().join("offline-root.key");
        std::fs::rename(keys.root_key_path(), &offline).expect("move root offline");
        assert_eq!(
            keys.rotate(None, false, now()).expect_err("no root").code().as_str(),
            "io"
        );
        let rotation = keys.rotate(Some(&offline), false, now()).expect("rotate");
        assert_eq!(rotation.keys.version, 2);
        assert_eq!(rotation.keys.revoked, vec![v1.release_keys[0].key_id]);
        assert_eq!(keys.key_list().expect("list"), rotation.keys);
        let bytes = keys.sign_release(&release("1.1.0")).expect("sign with new key");
        let verified = verify_metadata(&keys.trusted_root().expect("root"), &bytes, &policy()).expect("verify");
        assert_eq!(verified.signed_by(), rotation.added.as_slice());
        assert_eq!(verified.keys_version(), 2);

        let other = tempfile::tempdir().expect("dir");
        let (stranger, _) = KeyDir::keygen(other.path(), 1, 1, now()).expect("keygen");
        let e = keys
            .rotate(Some(&stranger.root_key_path()), false, now())
            .expect_err("wrong root");
        assert_eq!(e.code().as_str(), "root_key_mismatch");
    }

    #[test]
    fn revocation_keeps_the_threshold() {
        let tmp = tempfile::tempdir().expect("dir");
        let (keys, v1) = KeyDir::keygen(tmp.path(), 2, 1, now()).expect("keygen");
        let id = v1.release_keys[0].key_id;
        let v2 = keys.revoke(None, &id, now()).expect("revoke");
        assert_eq!((v2.version, v2.revoked.clone()), (2, vec![id]));
        let last = v2.release_keys[0].key_id;
        let e = keys.revoke(None, &last, now()).expect_err("last key");
        assert_eq!(e.code().as_str(), "not_enough_keys");
        assert_eq!(keys.key_list().expect("list").version, 2, "nothing written");
    }

    #[test]
    fn a_swapped_key_file_is_noticed() {
        let tmp = tempfile::tempdir().expect("dir");
        let (keys, v1) = KeyDir::keygen(tmp.path(), 1, 1, now()).expect("keygen");
        let path = keys.release_key_path(&v1.release_keys[0].key_id);
        std::fs::remove_file(&path).expect("rm");
        std::fs::copy(keys.root_key_path(), &path).expect("copy root over release key");
        let e = keys.sign_release(&release("1.0.0")).expect_err("swapped");
        assert_eq!(e.code().as_str(), "invalid_key");
    }
}
