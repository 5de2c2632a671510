//! The metadata file a release ships with: `{"keys": <key list envelope>, "release": <release envelope>}`.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::OtaError;
use crate::envelope::Envelope;
use crate::fs::{Mode, read_limited, write_replace};
use crate::limits::MAX_METADATA_BYTES;

/// The parsed (not yet verified) metadata file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// The root-signed key list.
    pub keys: Envelope,
    /// The release, signed by release keys.
    pub release: Envelope,
}

impl Metadata {
    /// Parses a metadata file, refusing one larger than [`MAX_METADATA_BYTES`] before parsing.
    pub fn parse(bytes: &[u8]) -> Result<Self, OtaError> {
        if bytes.len() > MAX_METADATA_BYTES {
            return Err(OtaError::MetadataTooLarge {
                size: bytes.len() as u64,
                limit: MAX_METADATA_BYTES,
            });
        }
        serde_json::from_slice(bytes).map_err(|e| OtaError::malformed("metadata file", e))
    }

    /// The file's bytes: indented JSON ending in a newline.
    pub fn to_bytes(&self) -> Result<Vec<u8>, OtaError> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|e| OtaError::input("metadata", e))?;
        bytes.push(b'\n');
        if bytes.len() > MAX_METADATA_BYTES {
            return Err(OtaError::MetadataTooLarge {
                size: bytes.len() as u64,
                limit: MAX_METADATA_BYTES,
            });
        }
        Ok(bytes)
    }
}

/// Reads a metadata file, refusing one larger than [`MAX_METADATA_BYTES`] without reading it.
pub fn read_metadata_file(path: &Path) -> Result<Vec<u8>, OtaError> {
    read_limited(path, MAX_METADATA_BYTES, "read metadata file")
}

/// Writes a metadata file (replacing any file there atomically).
pub fn write_metadata_file(path: &Path, bytes: &[u8]) -> Result<(), OtaError> {
    write_replace(path, bytes, Mode::Public)
}

/// Decodes a metadata file for display WITHOUT verifying anything: the payloads as JSON (or as
/// text when they are not JSON) and the key ids the signatures claim.
pub fn inspect(bytes: &[u8]) -> Result<Value, OtaError> {
    let metadata = Metadata::parse(bytes)?;
    let envelope = |e: &Envelope| {
        let payload = serde_json::from_slice::<Value>(e.payload())
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(e.payload()).into_owned()));
        let claimed: Vec<String> = e.signatures().iter().map(|s| s.key_id.to_string()).collect();
        json!({
            "payload_type": e.payload_type(),
            "signatures_claimed_by": claimed,
            "payload": payload,
        })
    };
    Ok(json!({
        "verified": false,
        "keys": envelope(&metadata.keys),
        "release": envelope(&metadata.release),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;

    fn metadata() -> Metadata {
        let key = PrivateKey::from_seed(&[4; 32]);
        Metadata {
            keys: Envelope::sign("k", b"{\"a\":1}".to_vec(), &[&key]),
            release: Envelope::sign("r", b"not json".to_vec(), &[]),
        }
    }

    #[test]
    fn round_trips_and_refuses_unknown_fields() {
        let m = metadata();
        let bytes = m.to_bytes().expect("bytes");
        assert_eq!(bytes.last(), Some(&b'\n'));
        assert_eq!(Metadata::parse(&bytes).expect("parse"), m);
        let mut v: Value = serde_json::from_slice(&bytes).expect("json");
        v["extra"] = 1.into();
        let e = Metadata::parse(&serde_json::to_vec(&v).expect("bytes")).expect_err("extra");
        assert_eq!(e.code().as_str(), "malformed_metadata");
        assert_eq!(
            Metadata::parse(b"[]").expect_err("array").code().as_str(),
            "malformed_metadata"
        );
        assert_eq!(
            Metadata::parse(b"").expect_err("empty").code().as_str(),
            "malformed_metadata"
        );
    }

    #[test]
    fn the_size_limit_comes_before_parsing() {
        let at_limit = vec![b' '; MAX_METADATA_BYTES];
        assert_eq!(
            Metadata::parse(&at_limit).expect_err("blank").code().as_str(),
            "malformed_metadata"
        );
        let over = vec![b' '; MAX_METADATA_BYTES + 1];
        let e = Metadata::parse(&over).expect_err("too large");
        assert_eq!(e.code().as_str(), "metadata_too_large");
        assert_eq!(e.to_string(), "the metadata is 65537 bytes; at most 65536 are accepted");
    }

    #[test]
    fn files_over_the_limit_are_refused_unread() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("m.json");
        std::fs::write(&path, vec![b' '; MAX_METADATA_BYTES + 1]).expect("write");
        assert_eq!(
            read_metadata_file(&path).expect_err("large").code().as_str(),
            "metadata_too_large"
        );
        std::fs::write(&path, b"{}").expect("write");
        assert_eq!(read_metadata_file(&path).expect("read"), b"{}");
        assert_eq!(
            read_metadata_file(&dir.path().join("no"))
                .expect_err("missing")
                .code()
                .as_str(),
            "io"
        );
    }

    #[test]
    fn inspect_shows_payloads_and_claims() {
        let v = inspect(&metadata().to_bytes().expect("bytes")).expect("inspect");
        assert_eq!(v["verified"], false);
        assert_eq!(v["keys"]["payload"]["a"], 1);
        assert_eq!(v["release"]["payload"], "not json");
        assert_eq!(
            v["keys"]["signatures_claimed_by"][0],
            PrivateKey::from_seed(&[4; 32]).key_id().to_string()
        );
    }
}
