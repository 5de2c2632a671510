//! The audit log above the store: the checkpoint that makes truncation detectable, and the
//! verification of every chain (`luach-server audit verify`).
//!
//! The chains themselves are [`crate::chain`]; the stores append to them in the transaction of
//! each change. Deleting the newest records of a chain leaves a valid but shorter chain, so
//! the chain heads are also kept **outside the database**: in `<data_dir>/audit/checkpoint.json`
//! and in the log (`target: audit`). The checkpoint only moves forward along the chain: at each
//! tick the records since the last checkpointed head are read and checked, and the new head is
//! written only if the chain still holds the old head and every record after it links and
//! verifies. A truncated, rewritten or re-hashed chain raises
//! `luach_audit_checkpoint_refusals_total`, logs an error and is not written.

use std::path::{Path, PathBuf};

use crate::chain::{AuditRecord, ChainKey, Head, Heads, Problem, verify_chain, verify_segment};
use crate::store::{StoreError, SystemStore};

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
    crate::keys::private_dir(dir)?;
    let bytes = serde_json::to_vec_pretty(heads).unwrap_or_default();
    luach_pki::write_atomic(path, &bytes, luach_pki::FileMode::Private)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    tracing::info!(target: "audit", heads = %serde_json::to_string(heads).unwrap_or_default(), "audit checkpoint");
    Ok(())
}

/// Checks that the chain of `tenant` moved forward from `old` (its checkpointed head; `None`:
/// never checkpointed). Returns the newest head that verifies, or what is wrong.
async fn advance(
    system: &SystemStore,
    key: &ChainKey,
    tenant: &str,
    old: Option<&Head>,
) -> Result<Option<Head>, Vec<Problem>> {
    let truncated = |last: i64| Problem::Truncated {
        tenant: tenant.to_owned(),
        checkpoint_seq: old.map_or(0, |h| h.seq),
        last_seq: last,
    };
    let store_failed = |e: StoreError| {
        tracing::warn!(error = %e, tenant, "reading the audit chain failed");
        Vec::new()
    };
    let records: Vec<AuditRecord> = match old {
        None => system.audit_records(tenant, 0, None).await.map_err(store_failed)?,
        Some(head) => system
            .audit_records(tenant, head.seq - 1, None)
            .await
            .map_err(store_failed)?,
    };
    let problems = match old {
        None => verify_segment(tenant, &records, None, key),
        Some(head) => match records.split_first() {
            Some((first, rest)) if first.seq == head.seq && first.hash == head.hash => {
                verify_segment(tenant, rest, Some(first), key)
            }
            _ => vec![truncated(records.last().map_or(0, |r| r.seq))],
        },
    };
    if problems.is_empty() {
        Ok(records.last().map(|r| Head {
            seq: r.seq,
            hash: r.hash.clone(),
        }))
    } else {
        Err(problems)
    }
}

/// Writes the checkpoint every `every` while chains move forward, and once more at shutdown.
pub async fn checkpoint_task(
    system: SystemStore,
    key: ChainKey,
    path: PathBuf,
    every: std::time::Duration,
    metrics: crate::metrics::Metrics,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut written: Heads = match read_checkpoint(&path) {
        Ok(heads) => heads.unwrap_or_default(),
        Err(e) => {
            tracing::error!(error = %e, path = %path.display(), "the audit checkpoint is unreadable; starting a new one");
            Heads::new()
        }
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            () = shutdown.cancelled() => true,
        };
        let heads = match system.audit_heads().await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "reading audit chain heads failed");
                if stopping {
                    return;
                }
                continue;
            }
        };
        let mut next = written.clone();
        for (tenant, head) in &heads {
            if written.get(tenant) == Some(head) {
                continue;
            }
            match advance(&system, &key, tenant, written.get(tenant)).await {
                Ok(Some(h)) => {
                    next.insert(tenant.clone(), h);
                }
                Ok(None) => {}
                Err(problems) if problems.is_empty() => {}
                Err(problems) => {
                    metrics.audit_checkpoint_refusals.inc();
                    for p in problems {
                        tracing::error!(target: "audit", tenant = %tenant, problem = %p, "audit chain does not extend the checkpoint; checkpoint kept");
                    }
                }
            }
        }
        for tenant in written.keys().filter(|t| !heads.contains_key(*t)) {
            metrics.audit_checkpoint_refusals.inc();
            tracing::error!(target: "audit", tenant = %tenant, "audit chain missing from the store; checkpoint kept");
        }
        if next != written {
            let (p, h) = (path.clone(), next.clone());
            match tokio::task::spawn_blocking(move || write_checkpoint(&p, &h)).await {
                Ok(Ok(())) => written = next,
                Ok(Err(e)) => tracing::error!(error = %e, "writing the audit checkpoint failed"),
                Err(e) => tracing::error!(error = %e, "audit checkpoint task failed"),
            }
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

/// Verifies every chain in the store (and every chain the checkpoint knows, so a chain deleted
/// whole is found too).
pub async fn verify_store(
    system: &SystemStore,
    key: &ChainKey,
    checkpoint: Option<&Heads>,
) -> Result<Verification, StoreError> {
    let mut tenants: std::collections::BTreeSet<String> = system.audit_heads().await?.into_keys().collect();
    if let Some(c) = checkpoint {
        tenants.extend(c.keys().cloned());
    }
    let mut out = Verification::default();
    for tenant in tenants {
        let records = system.audit_records(&tenant, 0, None).await?;
        out.chains += 1;
        out.records += records.len();
        out.problems.extend(verify_chain(
            &tenant,
            &records,
            checkpoint.and_then(|c| c.get(&tenant)),
            key,
        ));
    }
    Ok(out)
}
