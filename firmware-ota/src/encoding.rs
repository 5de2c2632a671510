//! Byte and time encodings shared by the formats: standard base64, lowercase hex, RFC 3339.

use chrono::{DateTime, SecondsFormat, Utc};
use data_encoding::{BASE64, HEXLOWER};

/// Standard (RFC 4648, padded) base64.
pub(crate) fn base64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// Decodes standard padded base64, refusing any other spelling of the same bytes (missing
/// padding, non-zero trailing bits, whitespace), so that no two texts decode alike.
pub(crate) fn from_base64(text: &str) -> Result<Vec<u8>, String> {
    BASE64
        .decode(text.as_bytes())
        .map_err(|e| format!("not standard base64 ({e})"))
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    HEXLOWER.encode(bytes)
}

/// Decodes exactly `N` bytes of lowercase hex; uppercase is refused so one value has one text.
pub(crate) fn from_hex<const N: usize>(text: &str) -> Result<[u8; N], String> {
    if text.len() != 2 * N {
        return Err(format!(
            "expected {} lowercase hex digits, found {} characters",
            2 * N,
            text.len()
        ));
    }
    if let Some(c) = text.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(format!("{c:?} is not a lowercase hex digit"));
    }
    let bytes = HEXLOWER.decode(text.as_bytes()).map_err(|e| e.to_string())?;
    bytes.try_into().map_err(|_| format!("expected {N} bytes of hex"))
}

/// An instant as RFC 3339 in UTC with whole seconds, e.g. `2030-03-01T12:00:00Z`.
pub fn rfc3339_string(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parses an RFC 3339 instant (any offset), returning it in UTC.
pub fn parse_rfc3339(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{text:?} is not an RFC 3339 time such as 2030-03-01T12:00:00Z ({e})"))
}

/// Serde for `DateTime<Utc>` as a strict RFC 3339 string.
pub(crate) mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339_string(at))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_has_one_spelling() {
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(from_base64("YWI=").expect("decode"), b"ab");
        for other in ["YWI", "YWJ=", "YW I=", " YWI=", "YWI=\n"] {
            assert!(from_base64(other).is_err(), "{other:?} decoded");
        }
    }

    #[test]
    fn hex_is_lowercase_and_sized() {
        assert_eq!(from_hex::<2>("0aff").expect("decode"), [0x0a, 0xff]);
        assert!(from_hex::<2>("0AFF").is_err());
        assert!(from_hex::<2>("0af").is_err());
        assert!(from_hex::<2>("0aff00").is_err());
        assert!(from_hex::<2>("0agf").is_err());
        assert_eq!(hex(&[0xab, 0x01]), "ab01");
    }

    #[test]
    fn times_are_rfc3339_in_utc() {
        let t = parse_rfc3339("2030-03-01T14:00:00+02:00").expect("parse");
        assert_eq!(rfc3339_string(&t), "2030-03-01T12:00:00Z");
        assert!(parse_rfc3339("2030-03-01 12:00:00").is_err());
        assert!(parse_rfc3339("tomorrow").is_err());
    }
}
