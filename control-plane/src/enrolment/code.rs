//! Claim codes: what a screen shows and a person types.
//!
//! Eight characters from a 32-symbol alphabet without look-alikes (no `0`/`O`, `1`/`I`),
//! shown as `XXXX-XXXX`: 40 bits, enough because a code lives minutes, is stored only as a
//! digest, and claim attempts are rate limited per user. Typing is forgiving about case, spaces
//! and dashes; a character outside the alphabet makes the code malformed (look-alikes are not
//! guessed at).

use rand::Rng;

use crate::auth::secret;

/// The symbols a code is made of.
pub const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Symbols in a code.
pub const LENGTH: usize = 8;

/// A new code, formatted for display (`XXXX-XXXX`).
pub fn generate() -> String {
    let mut rng = rand::rng();
    let raw: String = (0..LENGTH)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("{}-{}", &raw[..LENGTH / 2], &raw[LENGTH / 2..])
}

/// The canonical form of a typed code (upper case, no separators), or `None` when it cannot
/// be a code.
pub fn normalise(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == LENGTH && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// What is stored for a code: the digest of its canonical form.
pub fn digest(code: &str) -> Option<String> {
    normalise(code).map(|c| secret::digest(&format!("claim:{c}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_displayed_grouped_and_typed_loosely() {
        let code = generate();
        assert_eq!(code.len(), LENGTH + 1);
        assert_eq!(code.as_bytes()[4], b'-');
        let canonical = normalise(&code).expect("valid");
        assert_eq!(normalise(&code.to_lowercase()).as_deref(), Some(canonical.as_str()));
        let spaced = format!(" {} {} ", &canonical[..4], &canonical[4..]);
        assert_eq!(digest(&spaced), digest(&code));
        assert_ne!(digest(&generate()), digest(&code));
    }

    #[test]
    fn malformed_codes_are_refused() {
        for bad in [
            "",
            "ABCD-EFG",
            "ABCD-EFGHJ",
            "ABCD-EF0H",
            "ABCD-EFIH",
            "ABCD-ÉFGH",
            "ABCD_EFGH",
        ] {
            assert_eq!(normalise(bad), None, "{bad}");
        }
    }
}
