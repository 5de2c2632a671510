//! The signed envelope: exact payload bytes, their type, and signatures over both.
//!
//! The signature input is a pre-authentication encoding (PAE) of the payload type and the
//! payload, so the bytes signed are the bytes shipped and no JSON canonicalisation is needed.

use serde::{Deserialize, Serialize};

use crate::encoding::{base64, from_base64};
use crate::keys::{PrivateKey, PublicKey};
use crate::limits::MAX_SIGNATURES;
use crate::names::KeyId;

/// The first field of every signature input; a new format gets a new tag.
pub const PAE_TAG: &str = "LUACH-OTA-v1";

/// The bytes a signature covers:
/// `"LUACH-OTA-v1" SP LEN(type) SP type SP LEN(payload) SP payload`, LEN in ASCII decimal bytes.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let type_len = payload_type.len().to_string();
    let payload_len = payload.len().to_string();
    let mut out =
        Vec::with_capacity(PAE_TAG.len() + type_len.len() + payload_type.len() + payload_len.len() + payload.len() + 4);
    for part in [
        PAE_TAG.as_bytes(),
        type_len.as_bytes(),
        payload_type.as_bytes(),
        payload_len.as_bytes(),
    ] {
        out.extend_from_slice(part);
        out.push(b' ');
    }
    out.extend_from_slice(payload);
    out
}

/// One signature in an envelope: who claims to have signed, and the 64-byte Ed25519 signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeSignature {
    /// The id of the key that (claims to have) signed.
    pub key_id: KeyId,
    /// The signature over [`pae`] of the envelope's type and payload.
    pub sig: [u8; 64],
}

/// A payload with its type and signatures. JSON:
/// `{"payload_type": "…", "payload": "<base64>", "signatures": [{"key_id": "…", "sig": "<base64>"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "EnvelopeJson", into = "EnvelopeJson")]
pub struct Envelope {
    payload_type: String,
    payload: Vec<u8>,
    signatures: Vec<EnvelopeSignature>,
}

impl Envelope {
    /// Signs `payload` as `payload_type` with every key in `keys`.
    pub fn sign(payload_type: &str, payload: Vec<u8>, keys: &[&PrivateKey]) -> Self {
        let message = pae(payload_type, &payload);
        let signatures = keys
            .iter()
            .map(|key| EnvelopeSignature {
                key_id: key.key_id(),
                sig: key.sign(&message).to_bytes(),
            })
            .collect();
        Self {
            payload_type: payload_type.to_owned(),
            payload,
            signatures,
        }
    }

    /// The declared payload type.
    pub fn payload_type(&self) -> &str {
        &self.payload_type
    }

    /// The exact payload bytes the signatures cover.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The signatures as carried (unverified).
    pub fn signatures(&self) -> &[EnvelopeSignature] {
        &self.signatures
    }

    /// Whether `signature` is a valid signature by `key` over this envelope.
    pub(crate) fn verifies(&self, key: &PublicKey, signature: &EnvelopeSignature) -> bool {
        signature.key_id == key.key_id() && key.verify(&pae(&self.payload_type, &self.payload), &signature.sig)
    }

    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn parts_mut(&mut self) -> (&mut String, &mut Vec<u8>, &mut Vec<EnvelopeSignature>) {
        (&mut self.payload_type, &mut self.payload, &mut self.signatures)
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeJson {
    payload_type: String,
    payload: String,
    signatures: Vec<SignatureJson>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureJson {
    key_id: KeyId,
    sig: String,
}

impl TryFrom<EnvelopeJson> for Envelope {
    type Error = String;

    fn try_from(json: EnvelopeJson) -> Result<Self, Self::Error> {
        if json.signatures.len() > MAX_SIGNATURES {
            return Err(format!(
                "the envelope carries {} signatures; at most {MAX_SIGNATURES} are accepted",
                json.signatures.len()
            ));
        }
        let payload = from_base64(&json.payload).map_err(|e| format!("payload: {e}"))?;
        let signatures = json
            .signatures
            .into_iter()
            .map(|s| {
                let bytes = from_base64(&s.sig).map_err(|e| format!("signature by {}: {e}", s.key_id))?;
                let sig = <[u8; 64]>::try_from(bytes.as_slice())
                    .map_err(|_| format!("signature by {} is {} bytes; expected 64", s.key_id, bytes.len()))?;
                Ok(EnvelopeSignature { key_id: s.key_id, sig })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            payload_type: json.payload_type,
            payload,
            signatures,
        })
    }
}

impl From<Envelope> for EnvelopeJson {
    fn from(e: Envelope) -> Self {
        Self {
            payload_type: e.payload_type,
            payload: base64(&e.payload),
            signatures: e
                .signatures
                .into_iter()
                .map(|s| SignatureJson {
                    key_id: s.key_id,
                    sig: base64(&s.sig),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_the_documented_bytes() {
        assert_eq!(pae("t/x", b"{}"), b"LUACH-OTA-v1 3 t/x 2 {}");
        assert_eq!(pae("", b""), b"LUACH-OTA-v1 0  0 ");
        // Lengths are bytes, not characters.
        assert_eq!(pae("é", b"\xff"), b"LUACH-OTA-v1 2 \xc3\xa9 1 \xff");
        // Moving bytes between type and payload changes the input.
        assert_ne!(pae("ab", b"c"), pae("a", b"bc"));
    }

    #[test]
    fn json_round_trips_and_signatures_verify() {
        let key = PrivateKey::from_seed(&[9; 32]);
        let env = Envelope::sign("application/x", b"payload".to_vec(), &[&key]);
        let json = serde_json::to_string(&env).expect("json");
        assert!(json.contains("\"payload\":\"cGF5bG9hZA==\""), "{json}");
        let back: Envelope = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, env);
        assert!(back.verifies(&key.public_key(), &back.signatures()[0]));
        let other = PrivateKey::from_seed(&[10; 32]);
        assert!(!back.verifies(&other.public_key(), &back.signatures()[0]));
    }

    #[test]
    fn malformed_envelopes_are_refused() {
        let key = PrivateKey::from_seed(&[9; 32]);
        let env = Envelope::sign("application/x", b"payload".to_vec(), &[&key]);
        let value = serde_json::to_value(&env).expect("json");
        let mutate = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = value.clone();
            f(&mut v);
            serde_json::from_value::<Envelope>(v)
        };
        assert!(mutate(&|v| v["extra"] = 1.into()).is_err());
        assert!(mutate(&|v| v["signatures"][0]["extra"] = 1.into()).is_err());
        assert!(mutate(&|v| v["payload"] = "not base64!".into()).is_err());
        assert!(mutate(&|v| v["signatures"][0]["sig"] = "AAAA".into()).is_err());
        assert!(mutate(&|v| v["signatures"][0]["key_id"] = "ABC".into()).is_err());
        let too_many = mutate(&|v| {
            let one = v["signatures"][0].clone();
            v["signatures"] = serde_json::Value::Array(vec![one; MAX_SIGNATURES + 1]);
        });
        assert!(too_many.expect_err("17").to_string().contains("at most 16"));
        let sixteen = mutate(&|v| {
            let one = v["signatures"][0].clone();
            v["signatures"] = serde_json::Value::Array(vec![one; MAX_SIGNATURES]);
        });
        assert!(sixteen.is_ok());
    }
}
