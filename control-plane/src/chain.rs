//! The audit chain itself: records, their authors, sealing and checking. No I/O and no store:
//! the store seals records with it inside the transaction of each change, and
//! [`crate::audit`] (verification, checkpoint) sits above the store.
//!
//! Each record carries the previous record's hash, and its own hash covers every field, so
//! changing, deleting or reordering records breaks the chain. Records are sealed with
//! HMAC-SHA-256 under a [`ChainKey`] kept outside the database (`audit.chain_key`, or
//! `<data_dir>/audit/chain.key`): someone who can write the database but not read the key
//! cannot re-hash a rewritten chain. Records written before keyed chains existed carry
//! `alg: "sha256"` (plain SHA-256); they are accepted only before the first keyed record of
//! their chain, so a rewrite cannot fall back to the unkeyed form.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The chain of changes that concern no tenant (tenants themselves, super admins, sign-in
/// attempts for unknown emails).
pub const INSTALLATION: &str = "_installation";

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Actor {
    /// `user`, `device`, `cli` or `system`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Set when a super admin acted inside a tenant: the role acted with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acting_as_role: Option<String>,
    /// Request id of the HTTP request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Actor {
    /// The server itself (background tasks).
    pub fn system() -> Self {
        Self {
            kind: "system".into(),
            user_id: None,
            email: None,
            acting_as_role: None,
            request_id: None,
        }
    }

    /// `luach-server admin` on the command line.
    pub fn cli() -> Self {
        Self {
            kind: "cli".into(),
            ..Self::system()
        }
    }

    /// A screen acting for itself (enrolment, renewal), named by its device id.
    pub fn device(device: &str) -> Self {
        Self {
            kind: "device".into(),
            user_id: Some(device.to_owned()),
            ..Self::system()
        }
    }

    /// A signed-in user.
    pub fn user(id: &str, email: &str) -> Self {
        Self {
            kind: "user".into(),
            user_id: Some(id.to_owned()),
            email: Some(email.to_owned()),
            ..Self::system()
        }
    }

    /// A short name for lists: the user's email, the device id, or the kind.
    pub fn label(&self) -> String {
        self.email
            .clone()
            .or_else(|| self.user_id.clone())
            .unwrap_or_else(|| self.kind.clone())
    }

    /// The same author, for the HTTP request `request_id`.
    pub fn in_request(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }
}

/// One change, before it is chained.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The tenant whose chain records it ([`INSTALLATION`] for installation-wide changes).
    pub tenant: String,
    /// E.g. `device.create`, `memorial.put`, `user.update`.
    pub action: String,
    /// What changed, e.g. `devices/lobby1`.
    pub target: String,
    /// A summary of the new state (never secrets).
    pub detail: Value,
}

impl Change {
    pub fn new(tenant: &str, action: impl Into<String>, target: impl Into<String>, detail: Value) -> Self {
        Self {
            tenant: tenant.to_owned(),
            action: action.into(),
            target: target.into(),
            detail,
        }
    }

    /// This change by `actor` at `at`: what a store appends.
    pub fn by(self, actor: &Actor, at: DateTime<Utc>) -> Entry {
        Entry {
            change: self,
            actor: actor.clone(),
            at,
        }
    }
}

/// A change with its author and time: what a store appends to a chain, in the transaction of
/// the change it records.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub change: Change,
    pub actor: Actor,
    pub at: DateTime<Utc>,
}

/// How a record is sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Alg {
    /// Plain SHA-256: records written before keyed chains.
    #[default]
    Sha256,
    /// HMAC-SHA-256 under the installation's chain key.
    HmacSha256,
}

/// A chained record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditRecord {
    pub tenant: String,
    /// 1, 2, 3, … per tenant.
    pub seq: i64,
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    pub actor: Actor,
    pub action: String,
    pub target: String,
    pub detail: Value,
    /// Hex hash of the previous record (64 zeros for the first).
    pub prev_hash: String,
    /// How `hash` was made (absent in records written before keyed chains: SHA-256).
    #[serde(default)]
    pub alg: Alg,
    /// Hex hash over every field above.
    pub hash: String,
}

impl AuditRecord {
    pub fn at(&self) -> Option<DateTime<Utc>> {
        Utc.timestamp_millis_opt(self.at_ms).single()
    }
}

/// The installation's key for sealing audit records (at least 32 bytes).
#[derive(Clone)]
pub struct ChainKey(Vec<u8>);

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(***)")
    }
}

impl ChainKey {
    /// Shortest key accepted, in bytes.
    pub const MIN_LEN: usize = 32;

    /// A key from its bytes; `None` when shorter than [`ChainKey::MIN_LEN`].
    pub fn new(bytes: &[u8]) -> Option<Self> {
        (bytes.len() >= Self::MIN_LEN).then(|| Self(bytes.to_vec()))
    }

    /// Names the key without revealing it: the HMAC of a fixed label under it (hex, 16
    /// bytes). Two installations seal chains the same way exactly when these are equal.
    pub fn fingerprint(&self) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return String::new();
        };
        mac.update(b"luach audit chain key fingerprint");
        mac.finalize().into_bytes()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// The hash of the first record's predecessor.
pub fn genesis() -> String {
    "0".repeat(64)
}

#[derive(Serialize, schemars::JsonSchema)]
struct Sealed<'a> {
    tenant: &'a str,
    seq: i64,
    at_ms: i64,
    actor: &'a Actor,
    action: &'a str,
    target: &'a str,
    detail: &'a Value,
    prev_hash: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    alg: Option<Alg>,
}

/// The canonical bytes of a record: fields in struct order, object keys sorted (serde_json's
/// map). Keyed records also cover their `alg`.
fn sealed_bytes(r: &AuditRecord) -> Vec<u8> {
    let sealed = Sealed {
        tenant: &r.tenant,
        seq: r.seq,
        at_ms: r.at_ms,
        actor: &r.actor,
        action: &r.action,
        target: &r.target,
        detail: &r.detail,
        prev_hash: &r.prev_hash,
        alg: (r.alg != Alg::Sha256).then_some(r.alg),
    };
    serde_json::to_vec(&sealed).unwrap_or_default()
}

fn hash_of(r: &AuditRecord, key: &ChainKey) -> String {
    let bytes = sealed_bytes(r);
    match r.alg {
        Alg::Sha256 => data_encoding::HEXLOWER.encode(&Sha256::digest(&bytes)),
        Alg::HmacSha256 => {
            // Any key length is valid for HMAC; `new_from_slice` cannot fail.
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key.0) else {
                return String::new();
            };
            mac.update(&bytes);
            data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
        }
    }
}

/// The record that follows `prev` (None: the first of the tenant), sealed with `key`.
pub fn seal(entry: Entry, key: &ChainKey, prev: Option<(i64, String)>) -> AuditRecord {
    let (prev_seq, prev_hash) = prev.unwrap_or((0, genesis()));
    let Entry { change, actor, at } = entry;
    let mut r = AuditRecord {
        tenant: change.tenant,
        seq: prev_seq + 1,
        at_ms: at.timestamp_millis(),
        actor,
        action: change.action,
        target: change.target,
        detail: change.detail,
        prev_hash,
        alg: Alg::HmacSha256,
        hash: String::new(),
    };
    r.hash = hash_of(&r, key);
    r
}

/// The newest record of each chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

/// Chain heads by tenant.
pub type Heads = BTreeMap<String, Head>;

/// What is wrong with a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A record's hash does not match its content (modified, or sealed with another key).
    Modified { tenant: String, seq: i64 },
    /// Sequence numbers skip or repeat (deleted or reordered).
    Gap { tenant: String, expected: i64, found: i64 },
    /// A record does not point at its predecessor (deleted, inserted or reordered).
    Broken { tenant: String, seq: i64 },
    /// An unkeyed record after a keyed one: the chain was rewritten without the key.
    Downgraded { tenant: String, seq: i64 },
    /// The chain ends before the checkpoint, or differs from it (truncated or rewritten).
    Truncated {
        tenant: String,
        checkpoint_seq: i64,
        last_seq: i64,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Modified { tenant, seq } => write!(f, "{tenant}: record {seq} was modified"),
            Self::Gap {
                tenant,
                expected,
                found,
            } => write!(
                f,
                "{tenant}: expected record {expected}, found {found} (deleted or reordered)"
            ),
            Self::Broken { tenant, seq } => write!(f, "{tenant}: record {seq} does not follow its predecessor"),
            Self::Downgraded { tenant, seq } => write!(
                f,
                "{tenant}: record {seq} is unkeyed after keyed records (rewritten without the chain key)"
            ),
            Self::Truncated {
                tenant,
                checkpoint_seq,
                last_seq,
            } => write!(
                f,
                "{tenant}: the checkpoint records {checkpoint_seq} entries but the chain does not match it (last {last_seq}): truncated or rewritten"
            ),
        }
    }
}

/// Checks consecutive records of one tenant's chain that follow `prev` (a record the caller
/// already trusts, e.g. the checkpoint's head; `None`: from the start of the chain).
pub fn verify_segment(
    tenant: &str,
    records: &[AuditRecord],
    prev: Option<&AuditRecord>,
    key: &ChainKey,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let (mut expected_seq, mut prev_hash) = prev.map_or((1, genesis()), |p| (p.seq + 1, p.hash.clone()));
    let mut keyed = prev.is_some_and(|p| p.alg == Alg::HmacSha256);
    for r in records {
        if r.seq != expected_seq {
            problems.push(Problem::Gap {
                tenant: tenant.into(),
                expected: expected_seq,
                found: r.seq,
            });
            break;
        }
        if r.tenant != tenant || hash_of(r, key) != r.hash {
            problems.push(Problem::Modified {
                tenant: tenant.into(),
                seq: r.seq,
            });
        }
        if r.prev_hash != prev_hash {
            problems.push(Problem::Broken {
                tenant: tenant.into(),
                seq: r.seq,
            });
        }
        match r.alg {
            Alg::HmacSha256 => keyed = true,
            Alg::Sha256 if keyed => problems.push(Problem::Downgraded {
                tenant: tenant.into(),
                seq: r.seq,
            }),
            Alg::Sha256 => {}
        }
        prev_hash = r.hash.clone();
        expected_seq += 1;
    }
    problems
}

/// Checks one tenant's whole chain (records in stored `seq` order) and, when given, that it
/// still holds the checkpoint's head.
pub fn verify_chain(tenant: &str, records: &[AuditRecord], checkpoint: Option<&Head>, key: &ChainKey) -> Vec<Problem> {
    let mut problems = verify_segment(tenant, records, None, key);
    if let Some(head) = checkpoint
        && !holds(records, head)
    {
        problems.push(Problem::Truncated {
            tenant: tenant.into(),
            checkpoint_seq: head.seq,
            last_seq: records.last().map_or(0, |r| r.seq),
        });
    }
    problems
}

/// True when `records` (a whole chain from seq 1) contain `head` at its place.
fn holds(records: &[AuditRecord], head: &Head) -> bool {
    if head.seq == 0 {
        return true;
    }
    usize::try_from(head.seq - 1)
        .ok()
        .and_then(|i| records.get(i))
        .is_some_and(|r| r.seq == head.seq && r.hash == head.hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> ChainKey {
        ChainKey::new(&[7u8; 32]).unwrap_or_else(|| unreachable!())
    }

    fn chain(n: usize) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 0..n {
            let prev = out.last().map(|r| (r.seq, r.hash.clone()));
            let change = Change::new("t1", "device.create", format!("devices/d{i}"), json!({"i": i}));
            out.push(seal(change.by(&Actor::system(), Utc::now()), &key(), prev));
        }
        out
    }

    #[test]
    fn every_kind_of_tampering_is_found() {
        let good = chain(5);
        let head = Head {
            seq: 5,
            hash: good[4].hash.clone(),
        };
        assert!(verify_chain("t1", &good, Some(&head), &key()).is_empty());

        let mut modified = good.clone();
        modified[2].detail = json!({"i": 99});
        assert!(matches!(
            verify_chain("t1", &modified, None, &key())[..],
            [Problem::Modified { seq: 3, .. }]
        ));

        let mut deleted = good.clone();
        deleted.remove(1);
        assert!(!verify_chain("t1", &deleted, None, &key()).is_empty());

        let mut reordered = good.clone();
        reordered.swap(1, 2);
        assert!(!verify_chain("t1", &reordered, None, &key()).is_empty());

        let truncated = good[..3].to_vec();
        assert!(
            verify_chain("t1", &truncated, None, &key()).is_empty(),
            "a prefix is a valid chain"
        );
        assert!(matches!(
            verify_chain("t1", &truncated, Some(&head), &key())[..],
            [Problem::Truncated { .. }]
        ));
    }

    #[test]
    fn rehashing_needs_the_key() {
        let good = chain(3);
        let other = ChainKey::new(&[9u8; 32]).unwrap_or_else(|| unreachable!());
        assert!(!verify_chain("t1", &good, None, &other).is_empty());
        // Rewriting record 2 and re-hashing the rest without the key, as plain SHA-256.
        let mut forged = good.clone();
        forged[1].detail = json!({"i": "forged"});
        forged[1].alg = Alg::Sha256;
        forged[1].hash = hash_of(&forged[1], &other);
        forged[2].prev_hash = forged[1].hash.clone();
        forged[2].alg = Alg::Sha256;
        forged[2].hash = hash_of(&forged[2], &other);
        let problems = verify_chain("t1", &forged, None, &key());
        assert!(
            problems.iter().any(|p| matches!(p, Problem::Downgraded { seq: 2, .. })),
            "{problems:?}"
        );
    }

    #[test]
    fn unkeyed_records_before_keyed_ones_verify() {
        // A chain written before keyed chains, continued by this release.
        let mut legacy = AuditRecord {
            tenant: "t1".into(),
            seq: 1,
            at_ms: 1,
            actor: Actor::cli(),
            action: "tenant.create".into(),
            target: "tenants/t1".into(),
            detail: json!({}),
            prev_hash: genesis(),
            alg: Alg::Sha256,
            hash: String::new(),
        };
        legacy.hash = hash_of(&legacy, &key());
        // The legacy format had no `alg` field: it must parse as SHA-256.
        let mut text = serde_json::to_value(&legacy).unwrap_or_default();
        if let Some(o) = text.as_object_mut() {
            o.remove("alg");
        }
        let parsed: AuditRecord = serde_json::from_value(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed, legacy);
        let next = seal(
            Change::new("t1", "x", "y", json!(1)).by(&Actor::system(), Utc::now()),
            &key(),
            Some((1, legacy.hash.clone())),
        );
        assert!(verify_chain("t1", &[legacy, next], None, &key()).is_empty());
    }

    #[test]
    fn a_segment_continues_from_a_known_record() {
        let good = chain(6);
        assert!(verify_segment("t1", &good[3..], Some(&good[2]), &key()).is_empty());
        let mut bad = good[3..].to_vec();
        bad[0].prev_hash = genesis();
        assert!(!verify_segment("t1", &bad, Some(&good[2]), &key()).is_empty());
        // Unkeyed records appended after a keyed head are a downgrade.
        let mut appended = good[3..4].to_vec();
        appended[0].alg = Alg::Sha256;
        appended[0].hash = hash_of(&appended[0], &key());
        assert!(matches!(
            verify_segment("t1", &appended, Some(&good[2]), &key())[..],
            [Problem::Downgraded { .. }]
        ));
    }
}
