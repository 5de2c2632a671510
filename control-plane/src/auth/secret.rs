//! Opaque secrets (refresh tokens, personal access tokens, claim codes): random text shown
//! once, stored only as a SHA-256 digest.
//!
//! The secrets carry 256 bits of entropy, so a plain digest (no salt, no slow hash) is the
//! right storage: nobody can brute-force it, and a lookup by digest is an index hit.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of refresh tokens.
pub const REFRESH_PREFIX: &str = "lr_";
/// Prefix of personal access tokens (lets secret scanners and the bearer parser spot them).
pub const PERSONAL_PREFIX: &str = "lp_";

/// `bytes` random bytes as lower-case unpadded base32.
pub fn random_text(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    data_encoding::BASE32_NOPAD.encode(&buf).to_ascii_lowercase()
}

/// A new secret with `prefix`, and its digest.
pub fn generate(prefix: &str) -> (String, String) {
    let text = format!("{prefix}{}", random_text(32));
    let digest = digest(&text);
    (text, digest)
}

/// Hex SHA-256 of `text`.
pub fn digest(text: &str) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(text.as_bytes()))
}

/// Constant-time equality of two byte strings.
pub fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_unique_prefixed_and_digested() {
        let (a, da) = generate(PERSONAL_PREFIX);
        let (b, db) = generate(PERSONAL_PREFIX);
        assert_ne!(a, b);
        assert!(a.starts_with("lp_") && a.len() == 3 + 52);
        assert_eq!(digest(&a), da);
        assert_ne!(da, db);
        assert!(equal(b"abc", b"abc") && !equal(b"abc", b"abd") && !equal(b"ab", b"abc"));
    }
}
