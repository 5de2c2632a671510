//! The audit log: every change to tenant data, users and tenants, written by the store in the
//! same transaction as the change, hash-chained per tenant.
//!
//! Each record carries the previous record's hash, and its own hash covers every field, so
//! changing, deleting or reordering records breaks the chain. Deleting the newest records
//! (truncation) leaves a valid but shorter chain; that is caught by the **checkpoint**: the
//! chain heads (`seq`, `hash` per tenant), written outside the store to
//! `<data_dir>/audit/checkpoint.json` and to the log (`target: audit`) every
//! `audit.checkpoint_secs`. `luach-server audit verify` checks the chains and the checkpoint.
//!
//! Who made a change is taken from the request: the HTTP layer runs each authenticated request
//! inside [`with_actor`], and the stores read [`current_actor`] when they write the record, so
//! no handler can forget to pass it. Writes outside a request (CLI, start-up) are recorded as
//! `cli` or `system`.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The chain of changes that concern no tenant (tenants themselves, super admins).
pub const INSTALLATION: &str = "_installation";

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// `user`, `cli` or `system`.
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
    pub fn system() -> Self {
        Self {
            kind: "system".into(),
            user_id: None,
            email: None,
            acting_as_role: None,
            request_id: None,
        }
    }

    pub fn cli() -> Self {
        Self {
            kind: "cli".into(),
            ..Self::system()
        }
    }
}

tokio::task_local! {
    static ACTOR: Actor;
}

/// Runs `fut` with `actor` as the author of every change it makes.
pub async fn with_actor<F: Future>(actor: Actor, fut: F) -> F::Output {
    ACTOR.scope(actor, fut).await
}

/// The author of changes made by the current task (`system` outside [`with_actor`]).
pub fn current_actor() -> Actor {
    ACTOR.try_with(Clone::clone).unwrap_or_else(|_| Actor::system())
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
}

/// A chained record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Hex SHA-256 of the previous record (64 zeros for the first).
    pub prev_hash: String,
    /// Hex SHA-256 over every field above.
    pub hash: String,
}

/// The hash of the first record's predecessor.
pub fn genesis() -> String {
    "0".repeat(64)
}

#[derive(Serialize)]
struct Sealed<'a> {
    tenant: &'a str,
    seq: i64,
    at_ms: i64,
    actor: &'a Actor,
    action: &'a str,
    target: &'a str,
    detail: &'a Value,
    prev_hash: &'a str,
}

fn hash_of(r: &AuditRecord) -> String {
    let sealed = Sealed {
        tenant: &r.tenant,
        seq: r.seq,
        at_ms: r.at_ms,
        actor: &r.actor,
        action: &r.action,
        target: &r.target,
        detail: &r.detail,
        prev_hash: &r.prev_hash,
    };
    // Field order is fixed by the struct and object keys are sorted (serde_json's map), so the
    // bytes are canonical.
    let bytes = serde_json::to_vec(&sealed).unwrap_or_default();
    data_encoding::HEXLOWER.encode(&Sha256::digest(&bytes))
}

/// The record that follows `prev` (None: the first of the tenant).
pub fn seal(change: Change, actor: Actor, at: DateTime<Utc>, prev: Option<(i64, String)>) -> AuditRecord {
    let (prev_seq, prev_hash) = prev.unwrap_or((0, genesis()));
    let mut r = AuditRecord {
        tenant: change.tenant,
        seq: prev_seq + 1,
        at_ms: at.timestamp_millis(),
        actor,
        action: change.action,
        target: change.target,
        detail: change.detail,
        prev_hash,
        hash: String::new(),
    };
    r.hash = hash_of(&r);
    r
}

impl AuditRecord {
    pub fn at(&self) -> Option<DateTime<Utc>> {
        Utc.timestamp_millis_opt(self.at_ms).single()
    }
}

/// The newest record of each chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

/// Chain heads by tenant.
pub type Heads = BTreeMap<String, Head>;

/// What is wrong with a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A record's hash does not match its content (modified).
    Modified { tenant: String, seq: i64 },
    /// Sequence numbers skip or repeat (deleted or reordered).
    Gap { tenant: String, expected: i64, found: i64 },
    /// A record does not point at its predecessor (deleted, inserted or reordered).
    Broken { tenant: String, seq: i64 },
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
            } => {
                write!(
                    f,
                    "{tenant}: expected record {expected}, found {found} (deleted or reordered)"
                )
            }
            Self::Broken { tenant, seq } => write!(f, "{tenant}: record {seq} does not follow its predecessor"),
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

/// Checks one tenant's records (in stored `seq` order) against each other and the checkpoint.
pub fn verify_chain(tenant: &str, records: &[AuditRecord], checkpoint: Option<&Head>) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut prev_hash = genesis();
    for (i, r) in records.iter().enumerate() {
        let expected = i as i64 + 1;
        if r.seq != expected {
            problems.push(Problem::Gap {
                tenant: tenant.into(),
                expected,
                found: r.seq,
            });
            break;
        }
        if r.tenant != tenant || hash_of(r) != r.hash {
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
        prev_hash = r.hash.clone();
    }
    if let Some(head) = checkpoint {
        let at = records.get((head.seq - 1).max(0) as usize);
        let matches = head.seq == 0 || at.is_some_and(|r| r.seq == head.seq && r.hash == head.hash);
        if !matches {
            problems.push(Problem::Truncated {
                tenant: tenant.into(),
                checkpoint_seq: head.seq,
                last_seq: records.last().map_or(0, |r| r.seq),
            });
        }
    }
    problems
}

/// Where the checkpoint of `data_dir` lives.
pub fn checkpoint_path(data_dir: &Path) -> PathBuf {
    data_dir.join("audit").join("checkpoint.json")
}

/// Reads a checkpoint file (absent: no checkpoint yet).
pub fn read_checkpoint(path: &Path) -> std::io::Result<Option<Heads>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes the checkpoint atomically, and logs it for an external log store.
pub fn write_checkpoint(path: &Path, heads: &Heads) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let bytes = serde_json::to_vec_pretty(heads).unwrap_or_default();
    luach_pki::write_atomic(path, &bytes, luach_pki::FileMode::Public)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    tracing::info!(target: "audit", heads = %serde_json::to_string(heads).unwrap_or_default(), "audit checkpoint");
    Ok(())
}

/// Writes the checkpoint every `every` while the heads change, and once more at shutdown.
pub async fn checkpoint_task(
    store: crate::store::DynStore,
    path: PathBuf,
    every: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut written: Option<Heads> = read_checkpoint(&path).ok().flatten();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            () = shutdown.cancelled() => true,
        };
        match store.audit_heads().await {
            Ok(heads) if written.as_ref() != Some(&heads) => {
                let (path, h) = (path.clone(), heads.clone());
                match tokio::task::spawn_blocking(move || write_checkpoint(&path, &h)).await {
                    Ok(Ok(())) => written = Some(heads),
                    Ok(Err(e)) => tracing::error!(error = %e, "writing the audit checkpoint failed"),
                    Err(e) => tracing::error!(error = %e, "audit checkpoint task failed"),
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reading audit chain heads failed"),
        }
        if stopping {
            return;
        }
    }
}

/// The outcome of [`verify_store`].
#[derive(Debug, Default)]
pub struct Verification {
    pub chains: usize,
    pub records: usize,
    pub problems: Vec<Problem>,
}

/// Verifies every chain in `store` (and every chain the checkpoint knows, so a chain deleted
/// whole is found too).
pub async fn verify_store(
    store: &dyn crate::store::Store,
    checkpoint: Option<&Heads>,
) -> Result<Verification, crate::store::StoreError> {
    let mut tenants: std::collections::BTreeSet<String> = store.audit_heads().await?.into_keys().collect();
    if let Some(c) = checkpoint {
        tenants.extend(c.keys().cloned());
    }
    let mut out = Verification::default();
    for tenant in tenants {
        let records = store.audit_records(&tenant, 0, None).await?;
        out.chains += 1;
        out.records += records.len();
        out.problems
            .extend(verify_chain(&tenant, &records, checkpoint.and_then(|c| c.get(&tenant))));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(n: usize) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 0..n {
            let prev = out.last().map(|r| (r.seq, r.hash.clone()));
            out.push(seal(
                Change::new("t1", "device.create", format!("devices/d{i}"), json!({"i": i})),
                Actor::system(),
                Utc::now(),
                prev,
            ));
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
        assert!(verify_chain("t1", &good, Some(&head)).is_empty());

        let mut modified = good.clone();
        modified[2].detail = json!({"i": 99});
        assert!(matches!(
            verify_chain("t1", &modified, None)[..],
            [Problem::Modified { seq: 3, .. }]
        ));

        let mut deleted = good.clone();
        deleted.remove(1);
        assert!(!verify_chain("t1", &deleted, None).is_empty());

        let mut reordered = good.clone();
        reordered.swap(1, 2);
        assert!(!verify_chain("t1", &reordered, None).is_empty());

        let truncated = good[..3].to_vec();
        assert!(
            verify_chain("t1", &truncated, None).is_empty(),
            "a prefix is a valid chain"
        );
        assert!(matches!(
            verify_chain("t1", &truncated, Some(&head))[..],
            [Problem::Truncated { .. }]
        ));
    }
}
