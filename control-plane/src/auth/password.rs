//! Password hashing with argon2id (OWASP parameters: 19 MiB, 2 passes, 1 lane).
//!
//! Hashing and verifying cost tens of milliseconds of CPU on purpose; callers run them on the
//! blocking pool. A login for an unknown email verifies against [`dummy_hash`] so that known
//! and unknown accounts take the same time.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest accepted password, in bytes (bounds the work an attacker can ask for).
pub const MAX_PASSWORD_BYTES: usize = 1024;

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Why a new password is refused.
pub fn check_policy(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!("must be at least {MIN_PASSWORD_CHARS} characters"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("must be at most {MAX_PASSWORD_BYTES} bytes"));
    }
    Ok(())
}

/// An argon2id PHC string for `password` with a fresh salt.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2().hash_password(password.as_bytes(), &salt)?.to_string())
}

/// True when `password` matches `phc`. A malformed stored hash never matches.
pub fn verify(phc: &str, password: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A valid hash of a random password, computed once: the stand-in for unknown accounts.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random = super::secret::random_text(24);
        hash(&random).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_by_salt() -> Result<(), argon2::password_hash::Error> {
        let a = hash("correct horse battery")?;
        let b = hash("correct horse battery")?;
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify(&a, "correct horse battery"));
        assert!(!verify(&a, "correct horse batterY"));
        assert!(!verify("not a hash", "x"));
        assert!(!verify(dummy_hash(), "anything"));
        Ok(())
    }

    #[test]
    fn policy() {
        assert!(check_policy("short").is_err());
        assert!(check_policy("long enough!").is_ok());
        assert!(check_policy(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }
}
