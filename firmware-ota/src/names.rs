//! Validating newtypes for the identifiers in the formats: key ids, targets, channels, digests.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::OtaError;
use crate::encoding::{from_hex, hex};

/// A key's id: lowercase hex of the first 16 bytes of SHA-256 over its 32 raw public-key bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; 16]);

impl KeyId {
    /// The id of a raw Ed25519 public key.
    pub fn of_raw(public_key: &[u8; 32]) -> Self {
        let digest = Sha256::digest(public_key);
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        Self(id)
    }

    /// Parses 32 lowercase hex digits.
    pub fn parse(text: &str) -> Result<Self, OtaError> {
        from_hex::<16>(text)
            .map(Self)
            .map_err(|reason| OtaError::input("key id", format!("{text:?}: {reason}")))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = OtaError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for KeyId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        from_hex::<16>(&text)
            .map(Self)
            .map_err(|reason| serde::de::Error::custom(format!("key id {text:?}: {reason}")))
    }
}

/// A SHA-256 digest, written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Parses 64 lowercase hex digits.
    pub fn parse(text: &str) -> Result<Self, OtaError> {
        from_hex::<32>(text)
            .map(Self)
            .map_err(|reason| OtaError::input("sha256", format!("{text:?}: {reason}")))
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({self})")
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        from_hex::<32>(&text)
            .map(Self)
            .map_err(|reason| serde::de::Error::custom(format!("sha256 {text:?}: {reason}")))
    }
}

/// Longest target or channel name.
pub const MAX_NAME_LEN: usize = 64;

/// Why `text` is not a valid target or channel name: 1–64 characters of `[a-z0-9._-]`.
fn name_problem(text: &str) -> Option<String> {
    if text.is_empty() {
        return Some("must not be empty".to_owned());
    }
    if text.len() > MAX_NAME_LEN {
        return Some(format!(
            "is {} characters long; at most {MAX_NAME_LEN} are allowed",
            text.len()
        ));
    }
    text.chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-'))
        .map(|c| format!("contains {c:?}; only a-z, 0-9, '.', '_' and '-' are allowed"))
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Checks `text`: 1–64 characters of `[a-z0-9._-]`.
            pub fn parse(text: &str) -> Result<Self, OtaError> {
                match name_problem(text) {
                    None => Ok(Self(text.to_owned())),
                    Some(reason) => Err(OtaError::input($field, format!("{text:?} {reason}"))),
                }
            }

            /// The name as written.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = OtaError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                match name_problem(&text) {
                    None => Ok(Self(text)),
                    Some(reason) => Err(serde::de::Error::custom(format!("{} {text:?} {reason}", $field))),
                }
            }
        }
    };
}

name_type!(
    /// What a release runs on: a Rust target triple such as `x86_64-unknown-linux-gnu` or a
    /// hardware class such as `pi4-kiosk`.
    Target,
    "target"
);

name_type!(
    /// A release channel such as `stable` or `beta`.
    Channel,
    "channel"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_is_the_first_16_bytes_of_sha256_over_the_raw_key() {
        // SHA-256 of 32 zero bytes is 66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925.
        let id = KeyId::of_raw(&[0u8; 32]);
        assert_eq!(id.to_string(), "66687aadf862bd776c8fc18b8e9f8e20");
        assert_eq!(KeyId::parse("66687aadf862bd776c8fc18b8e9f8e20").expect("parse"), id);
        assert!(KeyId::parse("66687AADF862BD776C8FC18B8E9F8E20").is_err());
        assert!(KeyId::parse("66687aadf862bd776c8fc18b8e9f8e").is_err());
        let json = serde_json::to_string(&id).expect("json");
        assert_eq!(json, "\"66687aadf862bd776c8fc18b8e9f8e20\"");
        assert!(serde_json::from_str::<KeyId>("\"66687aadf862bd776c8fc18b8e9f8e2g\"").is_err());
    }

    #[test]
    fn names_allow_only_the_documented_charset() {
        for good in [
            "x86_64-unknown-linux-gnu",
            "pi4-kiosk",
            "stable",
            "a",
            &"z".repeat(64),
            "v1.2_x-y",
        ] {
            Target::parse(good).expect(good);
            Channel::parse(good).expect(good);
        }
        for bad in ["", "Stable", "pi 4", "a/b", "é", &"z".repeat(65), "beta\n"] {
            let e = Target::parse(bad).expect_err(bad);
            assert_eq!(e.code().as_str(), "invalid_input");
            assert!(e.to_string().starts_with("invalid target"), "{e}");
            assert!(serde_json::from_value::<Channel>(serde_json::Value::String(bad.to_owned())).is_err());
        }
    }

    #[test]
    fn digest_round_trips() {
        let d = Sha256Digest::of(b"abc");
        assert_eq!(
            d.to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Sha256Digest::parse(&d.to_string()).expect("parse"), d);
        assert!(Sha256Digest::parse(&d.to_string().to_uppercase()).is_err());
    }
}
