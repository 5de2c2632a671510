//! Ed25519 keys: PKCS#8 private keys, SubjectPublicKeyInfo public keys, key ids.

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::TryRngCore;
use zeroize::Zeroizing;

use crate::OtaError;
use crate::names::KeyId;

/// An Ed25519 private key (the root or a release key). Wiped from memory when dropped.
pub struct PrivateKey {
    key: SigningKey,
    id: KeyId,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("key_id", &self.id)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// A fresh key from 32 bytes of the operating system's random source.
    pub fn generate() -> Result<Self, OtaError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng
            .try_fill_bytes(seed.as_mut())
            .map_err(|e| OtaError::InvalidKey {
                what: "a new key".to_owned(),
                reason: format!("the operating system's random source failed: {e}"),
            })?;
        Ok(Self::from_seed(&seed))
    }

    /// The key whose 32-byte secret is `seed`.
    pub(crate) fn from_seed(seed: &[u8; 32]) -> Self {
        Self::from_signing_key(SigningKey::from_bytes(seed))
    }

    fn from_signing_key(key: SigningKey) -> Self {
        let id = KeyId::of_raw(key.verifying_key().as_bytes());
        Self { key, id }
    }

    /// Reads a PKCS#8 `PRIVATE KEY` PEM block; `what` names the source in errors.
    pub fn from_pem(pem: &str, what: &str) -> Result<Self, OtaError> {
        SigningKey::from_pkcs8_pem(pem)
            .map(Self::from_signing_key)
            .map_err(|e| OtaError::InvalidKey {
                what: what.to_owned(),
                reason: format!("not a PKCS#8 Ed25519 private key PEM ({e})"),
            })
    }

    /// The key as a PKCS#8 `PRIVATE KEY` PEM block, wiped from memory when dropped.
    pub fn to_pem(&self) -> Result<Zeroizing<String>, OtaError> {
        self.key.to_pkcs8_pem(LineEnding::LF).map_err(|e| OtaError::InvalidKey {
            what: format!("key {}", self.id),
            reason: format!("could not encode as PKCS#8 ({e})"),
        })
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            key: self.key.verifying_key(),
            id: self.id,
        }
    }

    /// The key's id.
    pub fn key_id(&self) -> KeyId {
        self.id
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        self.key.sign(message)
    }
}

/// An Ed25519 public key and its id.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    id: KeyId,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey").field("key_id", &self.id).finish()
    }
}

impl PublicKey {
    /// A key from its 32 raw bytes; refuses bytes that are no curve point and weak
    /// (small-order) keys, which could verify signatures nobody made.
    pub fn from_raw(bytes: &[u8; 32]) -> Result<Self, String> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| "not an Ed25519 public key".to_owned())?;
        Self::checked(key)
    }

    fn checked(key: VerifyingKey) -> Result<Self, String> {
        if key.is_weak() {
            return Err("a weak (small-order) Ed25519 public key".to_owned());
        }
        Ok(Self {
            id: KeyId::of_raw(key.as_bytes()),
            key,
        })
    }

    /// Reads a `PUBLIC KEY` (SubjectPublicKeyInfo) PEM block; `what` names the source in errors.
    pub fn from_pem(pem: &str, what: &str) -> Result<Self, OtaError> {
        let invalid = |reason: String| OtaError::InvalidKey {
            what: what.to_owned(),
            reason,
        };
        let key = VerifyingKey::from_public_key_pem(pem)
            .map_err(|e| invalid(format!("not an Ed25519 public key PEM ({e})")))?;
        Self::checked(key).map_err(invalid)
    }

    /// The key as a `PUBLIC KEY` (SubjectPublicKeyInfo) PEM block.
    pub fn to_pem(&self) -> Result<String, OtaError> {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| OtaError::InvalidKey {
                what: format!("key {}", self.id),
                reason: format!("could not encode as SubjectPublicKeyInfo ({e})"),
            })
    }

    /// The 32 raw bytes.
    pub fn to_raw(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The key's id.
    pub fn key_id(&self) -> KeyId {
        self.id
    }

    /// Strict Ed25519 verification (no malleable or small-order signatures).
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.key
            .verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trips_and_ids_agree() {
        let key = PrivateKey::generate().expect("generate");
        let pem = key.to_pem().expect("pem");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let back = PrivateKey::from_pem(&pem, "test").expect("parse");
        assert_eq!(back.key_id(), key.key_id());
        let public = key.public_key().to_pem().expect("public pem");
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let public = PublicKey::from_pem(&public, "test").expect("parse public");
        assert_eq!(public.key_id(), key.key_id());
        assert_eq!(public.key_id(), KeyId::of_raw(&public.to_raw()));
        assert_ne!(PrivateKey::generate().expect("other").key_id(), key.key_id());
    }

    #[test]
    fn signatures_verify_only_for_their_message_and_key() {
        let key = PrivateKey::from_seed(&[7; 32]);
        let sig = key.sign(b"hello").to_bytes();
        assert!(key.public_key().verify(b"hello", &sig));
        assert!(!key.public_key().verify(b"hellp", &sig));
        assert!(!PrivateKey::from_seed(&[8; 32]).public_key().verify(b"hello", &sig));
    }

    #[test]
    fn bad_pem_is_refused_with_the_source_named() {
        let key = PrivateKey::from_seed(&[1; 32]);
        let public_pem = key.public_key().to_pem().expect("pem");
        let e = PrivateKey::from_pem(&public_pem, "keys/root.key").expect_err("public as private");
        assert_eq!(e.code().as_str(), "invalid_key");
        assert!(e.to_string().starts_with("keys/root.key is not"), "{e}");
        let private_pem = key.to_pem().expect("pem");
        assert!(PublicKey::from_pem(&private_pem, "root.pub").is_err());
        assert!(PublicKey::from_pem("garbage", "root.pub").is_err());
        assert!(PrivateKey::from_pem("", "root.key").is_err());
    }

    #[test]
    fn weak_keys_are_refused() {
        // The identity point (y = 1) has small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(PublicKey::from_raw(&identity).expect_err("weak").contains("weak"));
        assert!(PublicKey::from_raw(&PrivateKey::from_seed(&[3; 32]).public_key().to_raw()).is_ok());
    }
}
