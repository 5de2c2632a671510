//! PEM framing and the key types this crate accepts.

use rcgen::SignatureAlgorithm;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_SIG_ED25519};
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::PkiError;

pub(crate) const CERTIFICATE: &str = "CERTIFICATE";
pub(crate) const CERTIFICATE_REQUEST: &str = "CERTIFICATE REQUEST";
/// Label some older tools (Netscape, early OpenSSL) write for a CSR.
pub(crate) const NEW_CERTIFICATE_REQUEST: &str = "NEW CERTIFICATE REQUEST";
pub(crate) const PRIVATE_KEY: &str = "PRIVATE KEY";

/// The contents of the single PEM block in `input`, which must carry one of `labels`
/// (the first is the one named in errors).
pub(crate) fn single_block(input: &str, what: &'static str, labels: &[&'static str]) -> Result<Vec<u8>, PkiError> {
    let mut blocks = all_blocks(input, what)?;
    if blocks.len() != 1 {
        return Err(PkiError::PemCount {
            what,
            count: blocks.len(),
        });
    }
    let block = blocks.remove(0);
    check_label(&block, what, labels)?;
    Ok(block.into_contents())
}

/// Every PEM block in `input` (at least one).
pub(crate) fn all_blocks(input: &str, what: &'static str) -> Result<Vec<pem::Pem>, PkiError> {
    let blocks = pem::parse_many(input).map_err(|e| PkiError::Pem {
        what,
        reason: e.to_string(),
    })?;
    if blocks.is_empty() {
        return Err(PkiError::NoPem { what });
    }
    Ok(blocks)
}

pub(crate) fn check_label(block: &pem::Pem, what: &'static str, labels: &[&'static str]) -> Result<(), PkiError> {
    if labels.contains(&block.tag()) {
        Ok(())
    } else {
        Err(PkiError::WrongPemLabel {
            what,
            expected: labels.first().copied().unwrap_or_default(),
            found: block.tag().to_owned(),
        })
    }
}

pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(label, der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// Public key algorithms accepted for device keys (and the CA's own key).
///
/// All three are verified by rustls/webpki (the broker), OpenSSL (mosquitto, paho) and
/// this crate's signature checks; RSA is refused to keep one small, fast family of keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// ECDSA on NIST P-256 (secp256r1): what [`crate::DeviceKey::generate`] creates.
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
}

impl KeyType {
    /// The key type of a SubjectPublicKeyInfo, or why it is refused.
    pub(crate) fn of_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<Self, PkiError> {
        let alg = &spki.algorithm.algorithm;
        if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok());
            return match curve {
                Some(c) if c == OID_EC_P256 => Ok(Self::EcdsaP256),
                Some(c) if c == OID_NIST_EC_P384 => Ok(Self::EcdsaP384),
                Some(c) => Err(PkiError::UnsupportedKeyType {
                    found: format!("elliptic curve {c}"),
                }),
                None => Err(PkiError::UnsupportedKeyType {
                    found: "elliptic curve without a named curve".into(),
                }),
            };
        }
        if *alg == OID_SIG_ED25519 {
            return Ok(Self::Ed25519);
        }
        Err(PkiError::UnsupportedKeyType {
            found: format!("algorithm {alg}"),
        })
    }

    pub(crate) fn of_algorithm(alg: &'static SignatureAlgorithm) -> Result<Self, PkiError> {
        if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
            Ok(Self::EcdsaP256)
        } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
            Ok(Self::EcdsaP384)
        } else if alg == &rcgen::PKCS_ED25519 {
            Ok(Self::Ed25519)
        } else {
            Err(PkiError::UnsupportedKeyType {
                found: format!("{alg:?}"),
            })
        }
    }

    pub(crate) fn signature_algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            Self::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Self::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Self::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }
}

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::EcdsaP256 => "ECDSA P-256",
            Self::EcdsaP384 => "ECDSA P-384",
            Self::Ed25519 => "Ed25519",
        })
    }
}

/// Checks the unsigned envelope of a signed X.509 structure (certificate or CSR) is strict DER:
/// `SEQUENCE { SEQUENCE {…signed part…}, SEQUENCE { OID, params? }, BIT STRING (0 unused bits) }`
/// and nothing after it; for a certificate, the outer signature algorithm must also be byte for
/// byte the one inside the signed part (RFC 5280 §4.1.1.2).
///
/// x509-parser (and the asn1-rs readers under it) read this envelope leniently: a wrong tag on
/// the outer SEQUENCE, the signature algorithm or the BIT STRING still parses. The signed part
/// is unaffected, so nothing can be forged that way, but such variants are different byte
/// strings for the same certificate; webpki (the broker) refuses them, and so does this crate.
pub(crate) fn check_signed_envelope(der: &[u8], what: &'static str, kind: Signed) -> Result<(), PkiError> {
    let bad = |reason: &str| PkiError::Der {
        what,
        reason: reason.to_owned(),
    };
    let (outer, rest) = tlv(der, SEQUENCE).ok_or_else(|| bad("not a DER SEQUENCE"))?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes after the structure"));
    }
    let (signed, rest) = tlv(outer.content, SEQUENCE).ok_or_else(|| bad("signed part is not a DER SEQUENCE"))?;
    let (alg, rest) = tlv(rest, SEQUENCE).ok_or_else(|| bad("signature algorithm is not a DER SEQUENCE"))?;
    let (_oid, params) = tlv(alg.content, OID).ok_or_else(|| bad("signature algorithm has no OID"))?;
    if !params.is_empty() {
        match any_tlv(params) {
            Some((_, [])) => {}
            _ => return Err(bad("signature algorithm parameters are malformed")),
        }
    }
    let (signature, rest) = tlv(rest, BIT_STRING).ok_or_else(|| bad("signature is not a DER BIT STRING"))?;
    if signature.content.first() != Some(&0) {
        return Err(bad("signature is not a whole number of bytes"));
    }
    if !rest.is_empty() {
        return Err(bad("extra fields after the signature"));
    }
    if kind == Signed::Certificate {
        // TBSCertificate: [0] version (optional), serialNumber, signature, …
        let mut fields = signed.content;
        if fields.first() == Some(&VERSION) {
            fields = tlv(fields, VERSION).ok_or_else(|| bad("malformed version"))?.1;
        }
        let (_, fields) = tlv(fields, INTEGER).ok_or_else(|| bad("malformed serial number"))?;
        let (inner_alg, _) = tlv(fields, SEQUENCE).ok_or_else(|| bad("malformed inner signature algorithm"))?;
        if inner_alg.whole != alg.whole {
            return Err(bad("the signature algorithm differs from the one in the signed part"));
        }
    }
    Ok(())
}

/// What [`check_signed_envelope`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signed {
    Certificate,
    Request,
}

const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
const BIT_STRING: u8 = 0x03;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0;

struct Tlv<'a> {
    /// Tag, length and content.
    whole: &'a [u8],
    content: &'a [u8],
}

/// One DER element with exactly the tag byte `tag` (single-byte tags only) and a minimal
/// definite length; returns it and what follows.
fn tlv(input: &[u8], tag: u8) -> Option<(Tlv<'_>, &[u8])> {
    if *input.first()? != tag {
        return None;
    }
    any_tlv(input)
}

fn any_tlv(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let tag = *input.first()?;
    if tag & 0x1f == 0x1f {
        return None; // multi-byte tags appear nowhere here
    }
    let first = *input.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None; // indefinite length (BER) or absurdly long
        }
        let bytes = input.get(2..2 + n)?;
        if bytes[0] == 0 {
            return None; // not minimal
        }
        let len = bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        if len < 0x80 {
            return None; // should have used the short form
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    let whole = input.get(..end)?;
    let content = input.get(header..end)?;
    Some((Tlv { whole, content }, input.get(end..)?))
}
