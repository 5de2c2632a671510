//! The key list: which release keys the root authorises, how many must sign, which are revoked.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::OtaError;
use crate::envelope::Envelope;
use crate::keys::{PrivateKey, PublicKey};
use crate::limits::MAX_RELEASE_KEYS;
use crate::names::KeyId;

/// Payload type of the root-signed key list envelope.
pub const KEYS_PAYLOAD_TYPE: &str = "application/vnd.luach.ota-keys+json";

/// The key list payload, signed by the root key.
///
/// Invariants (checked by [`KeyList::validate`] whenever one is parsed or signed): version ≥ 1;
/// 1 ≤ threshold ≤ number of release keys ≤ [`MAX_RELEASE_KEYS`]; every entry's key id is the
/// id of its public key; no key id twice; no revoked key among the release keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyList {
    /// 1 at key generation, one more on every rotation or revocation.
    pub version: u64,
    /// When the root signed this list.
    #[serde(with = "crate::encoding::rfc3339")]
    pub issued_at: DateTime<Utc>,
    /// How many distinct authorised release keys must sign a release.
    pub threshold: u8,
    /// The authorised release keys.
    pub release_keys: Vec<ReleaseKeyEntry>,
    /// Ids of release keys that were authorised once and no longer are.
    pub revoked: Vec<KeyId>,
}

/// One authorised release key: `{"key_id": "…", "public_key": "<base64 of the 32 raw bytes>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseKeyEntry {
    /// The key's id (must match `public_key`).
    pub key_id: KeyId,
    /// The key.
    #[serde(with = "raw_public_key")]
    pub public_key: PublicKey,
}

impl ReleaseKeyEntry {
    /// The entry for `key`.
    pub fn new(key: PublicKey) -> Self {
        Self {
            key_id: key.key_id(),
            public_key: key,
        }
    }
}

impl KeyList {
    /// Version 1: `keys` authorised, `threshold` of them needed, nothing revoked.
    pub fn initial(keys: &[PublicKey], threshold: u8, now: DateTime<Utc>) -> Result<Self, OtaError> {
        check_threshold("key generation", keys.len(), threshold)?;
        let list = Self {
            version: 1,
            issued_at: now,
            threshold,
            release_keys: keys.iter().cloned().map(ReleaseKeyEntry::new).collect(),
            revoked: Vec::new(),
        };
        list.validate().map_err(|reason| OtaError::input("key list", reason))?;
        Ok(list)
    }

    /// Parses and validates a key list payload.
    pub fn from_payload(payload: &[u8]) -> Result<Self, OtaError> {
        let list: Self = serde_json::from_slice(payload).map_err(|e| OtaError::malformed("key list", e))?;
        list.validate()
            .map_err(|reason| OtaError::malformed("key list", reason))?;
        Ok(list)
    }

    /// The exact payload bytes (compact JSON) after validating.
    pub fn to_payload(&self) -> Result<Vec<u8>, OtaError> {
        self.validate().map_err(|reason| OtaError::input("key list", reason))?;
        serde_json::to_vec(self).map_err(|e| OtaError::input("key list", e))
    }

    /// The key list envelope, signed by `root`.
    pub fn sign(&self, root: &PrivateKey) -> Result<Envelope, OtaError> {
        if self.authorised(&root.key_id()).is_some() {
            return Err(OtaError::input(
                "key list",
                "the root key must not also be a release key",
            ));
        }
        Ok(Envelope::sign(KEYS_PAYLOAD_TYPE, self.to_payload()?, &[root]))
    }

    /// Checks the invariants listed on [`KeyList`].
    pub fn validate(&self) -> Result<(), String> {
        if self.version == 0 {
            return Err("version must be at least 1".to_owned());
        }
        if self.threshold == 0 {
            return Err("threshold must be at least 1".to_owned());
        }
        let count = self.release_keys.len();
        if count > MAX_RELEASE_KEYS {
            return Err(format!("{count} release keys; at most {MAX_RELEASE_KEYS} are accepted"));
        }
        if usize::from(self.threshold) > count {
            return Err(format!(
                "threshold {} but only {count} release key(s) are authorised",
                self.threshold
            ));
        }
        let mut seen = HashSet::new();
        for entry in &self.release_keys {
            if entry.key_id != entry.public_key.key_id() {
                return Err(format!(
                    "key id {} does not match its public key (whose id is {})",
                    entry.key_id,
                    entry.public_key.key_id()
                ));
            }
            if !seen.insert(entry.key_id) {
                return Err(format!("release key {} is listed twice", entry.key_id));
            }
        }
        let mut revoked = HashSet::new();
        for id in &self.revoked {
            if seen.contains(id) {
                return Err(format!("key {id} is both authorised and revoked"));
            }
            if !revoked.insert(id) {
                return Err(format!("revoked key {id} is listed twice"));
            }
        }
        Ok(())
    }

    /// The authorised release key with this id.
    pub fn authorised(&self, id: &KeyId) -> Option<&PublicKey> {
        self.release_keys
            .iter()
            .find(|e| e.key_id == *id)
            .map(|e| &e.public_key)
    }

    /// Whether this id is revoked.
    pub fn is_revoked(&self, id: &KeyId) -> bool {
        self.revoked.contains(id)
    }

    /// The next version with `new_keys` authorised. Unless `keep_old`, every key authorised now
    /// moves to `revoked`.
    pub fn rotated(&self, new_keys: &[PublicKey], keep_old: bool, now: DateTime<Utc>) -> Result<Self, OtaError> {
        let mut next = self.successor(now)?;
        if !keep_old {
            next.revoked.extend(next.release_keys.drain(..).map(|e| e.key_id));
        }
        for key in new_keys {
            if next.authorised(&key.key_id()).is_some() || next.is_revoked(&key.key_id()) {
                return Err(OtaError::input(
                    "new release key",
                    format!("key {} is already listed", key.key_id()),
                ));
            }
            next.release_keys.push(ReleaseKeyEntry::new(key.clone()));
        }
        check_threshold("rotation", next.release_keys.len(), next.threshold)?;
        next.validate().map_err(|reason| OtaError::input("key list", reason))?;
        Ok(next)
    }

    /// The next version with `id` moved from the release keys to `revoked`; refused if fewer
    /// than `threshold` keys would remain.
    pub fn revoking(&self, id: &KeyId, now: DateTime<Utc>) -> Result<Self, OtaError> {
        if self.is_revoked(id) {
            return Err(OtaError::input("key id", format!("key {id} is already revoked")));
        }
        if self.authorised(id).is_none() {
            return Err(OtaError::input(
                "key id",
                format!("key {id} is not a release key in key list version {}", self.version),
            ));
        }
        let mut next = self.successor(now)?;
        next.release_keys.retain(|e| e.key_id != *id);
        next.revoked.push(*id);
        check_threshold("revocation", next.release_keys.len(), next.threshold)?;
        next.validate().map_err(|reason| OtaError::input("key list", reason))?;
        Ok(next)
    }

    fn successor(&self, now: DateTime<Utc>) -> Result<Self, OtaError> {
        let version = self
            .version
            .checked_add(1)
            .ok_or_else(|| OtaError::input("key list", "the version cannot grow any further"))?;
        Ok(Self {
            version,
            issued_at: now,
            ..self.clone()
        })
    }
}

fn check_threshold(action: &'static str, available: usize, threshold: u8) -> Result<(), OtaError> {
    if threshold == 0 {
        return Err(OtaError::input("threshold", "must be at least 1"));
    }
    if available > MAX_RELEASE_KEYS {
        return Err(OtaError::input(
            "release keys",
            format!("{available}; at most {MAX_RELEASE_KEYS} are accepted"),
        ));
    }
    if available < usize::from(threshold) {
        return Err(OtaError::NotEnoughKeys {
            action,
            available,
            threshold,
        });
    }
    Ok(())
}

/// Serde for a public key as base64 of its 32 raw bytes.
mod raw_public_key {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::encoding::{base64, from_base64};
    use crate::keys::PublicKey;

    pub(super) fn serialize<S: Serializer>(key: &PublicKey, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64(&key.to_raw()))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PublicKey, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = from_base64(&text).map_err(|e| serde::de::Error::custom(format!("public key: {e}")))?;
        let raw = <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| serde::de::Error::custom(format!("public key is {} bytes; expected 32", bytes.len())))?;
        PublicKey::from_raw(&raw).map_err(|e| serde::de::Error::custom(format!("public key: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 3, 1, 12, 0, 0).single().expect("time")
    }

    fn keys(n: u8) -> Vec<PublicKey> {
        (0..n)
            .map(|i| PrivateKey::from_seed(&[i + 1; 32]).public_key())
            .collect()
    }

    #[test]
    fn payload_is_the_documented_json() {
        let list = KeyList::initial(&keys(1), 1, now()).expect("list");
        let json: serde_json::Value = serde_json::from_slice(&list.to_payload().expect("payload")).expect("json");
        assert_eq!(json["version"], 1);
        assert_eq!(json["issued_at"], "2030-03-01T12:00:00Z");
        assert_eq!(json["threshold"], 1);
        assert_eq!(json["revoked"], serde_json::json!([]));
        let entry = &json["release_keys"][0];
        assert_eq!(entry["key_id"], keys(1)[0].key_id().to_string());
        assert_eq!(entry["public_key"].as_str().map(str::len), Some(44));
        assert_eq!(
            KeyList::from_payload(&list.to_payload().expect("payload")).expect("parse"),
            list
        );
    }

    #[test]
    fn invalid_lists_are_refused() {
        let list = KeyList::initial(&keys(2), 2, now()).expect("list");
        let check = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = serde_json::to_value(&list).expect("json");
            f(&mut v);
            let e = KeyList::from_payload(&serde_json::to_vec(&v).expect("bytes")).expect_err("invalid");
            assert_eq!(e.code().as_str(), "malformed_metadata");
            e.to_string()
        };
        assert!(check(&|v| v["version"] = 0.into()).contains("version"));
        assert!(check(&|v| v["threshold"] = 0.into()).contains("threshold"));
        assert!(check(&|v| v["threshold"] = 3.into()).contains("threshold 3"));
        assert!(check(&|v| v["threshold"] = 256.into()).contains("u8"));
        assert!(check(&|v| v["extra"] = true.into()).contains("unknown field"));
        assert!(check(&|v| v["release_keys"][0]["extra"] = true.into()).contains("unknown field"));
        assert!(
            check(&|v| v["release_keys"][0]["key_id"] = v["release_keys"][1]["key_id"].clone())
                .contains("does not match")
        );
        assert!(check(&|v| v["release_keys"][1] = v["release_keys"][0].clone()).contains("twice"));
        assert!(check(&|v| v["revoked"] = serde_json::json!([v["release_keys"][0]["key_id"]])).contains("both"));
        assert!(check(&|v| v["release_keys"][0]["public_key"] = "AAAA".into()).contains("expected 32"));
        assert!(check(&|v| v["issued_at"] = "yesterday".into()).contains("RFC 3339"));
    }

    #[test]
    fn the_release_key_limit_is_enforced() {
        let many = keys(MAX_RELEASE_KEYS as u8 + 1);
        assert!(KeyList::initial(&many[..MAX_RELEASE_KEYS], 1, now()).is_ok());
        let e = KeyList::initial(&many, 1, now()).expect_err("33 keys");
        assert!(e.to_string().contains("at most 32"), "{e}");
        let mut list = KeyList::initial(&many[..MAX_RELEASE_KEYS], 1, now()).expect("list");
        list.release_keys
            .push(ReleaseKeyEntry::new(many[MAX_RELEASE_KEYS].clone()));
        let payload = serde_json::to_vec(&list).expect("json");
        assert_eq!(
            KeyList::from_payload(&payload).expect_err("33").code().as_str(),
            "malformed_metadata"
        );
    }

    #[test]
    fn rotation_and_revocation_bump_the_version() {
        let k = keys(4);
        let v1 = KeyList::initial(&k[..2], 1, now()).expect("v1");
        let v2 = v1.rotated(&k[2..3], false, now()).expect("rotate");
        assert_eq!(v2.version, 2);
        assert_eq!(v2.revoked, vec![k[0].key_id(), k[1].key_id()]);
        assert!(v2.authorised(&k[2].key_id()).is_some() && v2.authorised(&k[0].key_id()).is_none());
        let v3 = v2.rotated(&k[3..4], true, now()).expect("keep old");
        assert_eq!(v3.version, 3);
        assert_eq!(v3.release_keys.len(), 2);
        let v4 = v3.revoking(&k[2].key_id(), now()).expect("revoke");
        assert_eq!(v4.version, 4);
        assert!(v4.is_revoked(&k[2].key_id()));
        let e = v4.revoking(&k[3].key_id(), now()).expect_err("last key");
        assert_eq!(e.code().as_str(), "not_enough_keys");
        assert!(
            v4.revoking(&k[2].key_id(), now())
                .expect_err("twice")
                .to_string()
                .contains("already revoked")
        );
        assert!(v4.revoking(&keys(9)[8].key_id(), now()).is_err());
        assert!(
            v4.rotated(&k[3..4], true, now())
                .expect_err("same key")
                .to_string()
                .contains("already listed")
        );
    }

    #[test]
    fn rotation_keeps_the_threshold_reachable() {
        let k = keys(4);
        let v1 = KeyList::initial(&k[..2], 2, now()).expect("v1");
        assert_eq!(
            v1.rotated(&k[2..3], false, now()).expect_err("one key").code().as_str(),
            "not_enough_keys"
        );
        assert!(v1.rotated(&k[2..4], false, now()).is_ok());
        assert_eq!(
            KeyList::initial(&k[..1], 2, now())
                .expect_err("threshold")
                .code()
                .as_str(),
            "not_enough_keys"
        );
    }
}
