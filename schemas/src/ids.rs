//! Validating identifiers: parse once at the boundary, trust afterwards.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} must not be empty")]
    Empty { kind: &'static str },
    #[error("{kind} is longer than {max} characters")]
    TooLong { kind: &'static str, max: usize },
    #[error("{kind} may contain only {allowed}; found {found:?}")]
    BadChar {
        kind: &'static str,
        allowed: &'static str,
        found: char,
    },
}

fn check(
    s: &str,
    kind: &'static str,
    max: usize,
    allowed: &'static str,
    ok: impl Fn(char) -> bool,
) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if s.len() > max {
        return Err(IdError::TooLong { kind, max });
    }
    match s.chars().find(|c| !ok(*c)) {
        Some(found) => Err(IdError::BadChar { kind, allowed, found }),
        None => Ok(()),
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr, $allowed:literal, $pattern:literal, $ok:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Longest accepted identifier, in bytes.
            pub const MAX_LEN: usize = $max;

            /// Parses and validates an identifier.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                check(s, $kind, $max, $allowed, $ok)?;
                Ok(Self(s.to_owned()))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "minLength": 1,
                    "maxLength": $max,
                    "pattern": $pattern,
                    "description": concat!("A ", $kind, ": ", $allowed, ", at most ", stringify!($max), " characters."),
                })
            }
        }
    };
}

string_id!(
    /// A screen's identity: lower-case ASCII letters and digits, at most 64 characters.
    ///
    /// It is the common name (CN) of the device certificate and, on the development listener,
    /// the MQTT topic prefix, so it must stay free of separators and wildcards.
    DeviceId,
    "device id",
    64,
    "lower-case letters a-z and digits 0-9",
    "^[a-z0-9]+$",
    |c: char| c.is_ascii_lowercase() || c.is_ascii_digit()
);

string_id!(
    /// The prefix of a screen's MQTT topics, `/tenants/{prefix}/…`: lower-case ASCII letters
    /// and digits, at most 64 characters.
    ///
    /// For an enrolled screen it is the organisation (O) of its certificate, drawn afresh for
    /// every enrolment, so the broker's tenant-prefix rule jails the connection to it and a
    /// certificate that was revoked or superseded names a prefix the control plane no longer
    /// answers to. A development screen on the plain listener uses its device id.
    TopicPrefix,
    "topic prefix",
    64,
    "lower-case letters a-z and digits 0-9",
    "^[a-z0-9]+$",
    |c: char| c.is_ascii_lowercase() || c.is_ascii_digit()
);

string_id!(
    /// A tenant (a synagogue or a network of synagogues): lower-case letters, digits and '-'.
    TenantId,
    "tenant id",
    64,
    "lower-case letters a-z, digits 0-9 and '-'",
    "^[a-z0-9-]+$",
    |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
);

/// Lower-case base32 of 128 bits: 26 characters of `a-z2-7`.
fn base32_of(bytes: [u8; 16]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let value = u128::from_be_bytes(bytes);
    let mut out = String::with_capacity(26);
    for i in (0..26).rev() {
        let index = ((value >> (i * 5)) & 0x1f) as usize;
        out.push(char::from(ALPHABET[index]));
    }
    out
}

impl DeviceId {
    /// A fresh random device id: lower-case base32 of 128 random bits (26 characters).
    ///
    /// The caller supplies the randomness so this crate stays free of an RNG dependency.
    pub fn from_random_bytes(bytes: [u8; 16]) -> Self {
        Self(base32_of(bytes))
    }
}

impl TopicPrefix {
    /// A fresh random prefix for an enrolment: lower-case base32 of 128 random bits.
    pub fn from_random_bytes(bytes: [u8; 16]) -> Self {
        Self(base32_of(bytes))
    }
}

/// A development screen's topics are named by its device id.
impl From<&DeviceId> for TopicPrefix {
    fn from(id: &DeviceId) -> Self {
        Self(id.0.clone())
    }
}

impl TenantId {
    /// The tenant that owns everything until identity and tenancy are configured.
    pub fn builtin() -> Self {
        Self("default".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn device_ids_reject_separators_and_wildcards() {
        for bad in ["", "a/b", "a+b", "dev#", "Dev1", "dev 1", "dév"] {
            assert!(DeviceId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(DeviceId::parse(&"a".repeat(65)).is_err());
        assert_eq!(
            DeviceId::parse("screen01").map(|d| d.to_string()),
            Ok("screen01".into())
        );
    }

    #[test]
    fn random_ids_are_valid_and_26_chars() {
        let id = DeviceId::from_random_bytes([0xab; 16]);
        assert_eq!(id.as_str().len(), 26);
        assert!(DeviceId::parse(id.as_str()).is_ok());
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<DeviceId>("\"ok1\"").is_ok());
        assert!(serde_json::from_str::<DeviceId>("\"not/ok\"").is_err());
        assert!(serde_json::from_str::<TenantId>("\"beth-el\"").is_ok());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_roundtrips(s in ".{0,80}") {
            if let Ok(id) = DeviceId::parse(&s) {
                prop_assert_eq!(id.as_str(), s.as_str());
            }
        }

        #[test]
        fn random_bytes_always_give_valid_ids(bytes in any::<[u8; 16]>()) {
            let id = DeviceId::from_random_bytes(bytes);
            prop_assert!(DeviceId::parse(id.as_str()).is_ok());
        }
    }
}
