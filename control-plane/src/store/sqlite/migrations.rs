//! SQLite migrations: the numbered list of [`crate::store::migrate`], each applied in one
//! transaction together with its row in `schema_migrations`.

use chrono::Utc;
use rusqlite::{Connection, params};

use super::ms;
use crate::store::migrate::{Applied, pending};
use crate::store::{StoreError, StoreResult};

/// Version 1: the first release's schema, exactly as it created it (`IF NOT EXISTS`, so a
/// database of that release, which recorded no version, takes it unchanged).
const V1: &str = r#"
CREATE TABLE IF NOT EXISTS devices (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    name          TEXT NOT NULL,
    tags          TEXT NOT NULL DEFAULT '[]',
    grp           TEXT,
    notes         TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL DEFAULT 'offline',
    last_seen     INTEGER,
    agent_version TEXT,
    platform      TEXT,
    ip            TEXT,
    metrics       TEXT,
    metrics_at    INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS devices_tenant_id ON devices (tenant_id, id);
CREATE INDEX IF NOT EXISTS devices_tenant_status ON devices (tenant_id, status, id);
CREATE TABLE IF NOT EXISTS documents (
    kind       TEXT NOT NULL,
    tenant_id  TEXT NOT NULL,
    id         TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (kind, tenant_id, id)
) STRICT;
CREATE TABLE IF NOT EXISTS tenants (
    id         TEXT PRIMARY KEY,
    body       TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS users (
    id         TEXT PRIMARY KEY,
    email      TEXT NOT NULL UNIQUE,
    tenant_id  TEXT,
    body       TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS users_tenant ON users (tenant_id, email);
CREATE TABLE IF NOT EXISTS tokens (
    hash         TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    family       TEXT NOT NULL,
    name         TEXT NOT NULL,
    role         TEXT,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS tokens_user ON tokens (user_id, kind, created_at);
CREATE INDEX IF NOT EXISTS tokens_family ON tokens (family);
CREATE TABLE IF NOT EXISTS audit (
    tenant     TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    body       TEXT NOT NULL,
    PRIMARY KEY (tenant, seq)
) STRICT;
CREATE TABLE IF NOT EXISTS enrolment_requests (
    device_id       TEXT PRIMARY KEY,
    claim_digest    TEXT NOT NULL UNIQUE,
    poll_digest     TEXT NOT NULL,
    csr_pem         TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    platform        TEXT,
    agent_version   TEXT,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    status          TEXT NOT NULL,
    tenant_id       TEXT,
    certificate_pem TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS enrolment_requests_pending ON enrolment_requests (status, expires_at);
CREATE INDEX IF NOT EXISTS enrolment_requests_expiry ON enrolment_requests (expires_at);
CREATE TABLE IF NOT EXISTS device_certificates (
    device_id       TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    serial          TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    not_before      INTEGER NOT NULL,
    not_after       INTEGER NOT NULL,
    issued_at       INTEGER NOT NULL,
    revoked_at      INTEGER
) STRICT;
CREATE TABLE IF NOT EXISTS enrolment_tokens (
    digest     TEXT PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    tenant_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    max_uses   INTEGER NOT NULL,
    uses       INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS enrolment_tokens_tenant ON enrolment_tokens (tenant_id, created_at);
"#;

/// Version 2: device revisions and topic prefixes (a revoked device has none), certificate
/// history by serial, renewal nonces, the source of enrolment requests.
const V2: &str = r#"
ALTER TABLE devices ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;
ALTER TABLE devices ADD COLUMN prefix TEXT;
UPDATE devices SET prefix = id WHERE NOT EXISTS
    (SELECT 1 FROM device_certificates c WHERE c.device_id = devices.id AND c.revoked_at IS NOT NULL);
CREATE UNIQUE INDEX devices_prefix ON devices (prefix) WHERE prefix IS NOT NULL;
ALTER TABLE device_certificates ADD COLUMN prefix TEXT NOT NULL DEFAULT '';
UPDATE device_certificates SET prefix = device_id;
CREATE TABLE certificates (
    serial          TEXT PRIMARY KEY,
    device_id       TEXT NOT NULL,
    tenant_id       TEXT NOT NULL,
    prefix          TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    not_before      INTEGER NOT NULL,
    not_after       INTEGER NOT NULL,
    issued_at       INTEGER NOT NULL,
    ended_at        INTEGER,
    end_reason      TEXT
) STRICT;
CREATE INDEX certificates_device ON certificates (tenant_id, device_id, issued_at);
INSERT INTO certificates (serial, device_id, tenant_id, prefix, key_fingerprint, not_before, not_after,
                          issued_at, ended_at, end_reason)
    SELECT serial, device_id, tenant_id, prefix, key_fingerprint, not_before, not_after, issued_at,
           revoked_at, CASE WHEN revoked_at IS NULL THEN NULL ELSE 'revoked' END
    FROM device_certificates;
CREATE TABLE renewal_nonces (
    device_id  TEXT NOT NULL,
    digest     TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, digest)
) STRICT;
ALTER TABLE enrolment_requests ADD COLUMN source TEXT NOT NULL DEFAULT '';
CREATE INDEX enrolment_requests_source ON enrolment_requests (source, status, expires_at);
"#;

/// Version 3: each screen's board settings (layout, theme, language), JSON.
const V3: &str = r#"
ALTER TABLE devices ADD COLUMN board TEXT NOT NULL DEFAULT '{}';
"#;

/// Version 4: jobs and their executions, the command outbox.
const V4: &str = r#"
CREATE TABLE jobs (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    spec        TEXT NOT NULL,
    state       TEXT NOT NULL,
    reason      TEXT,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    total       INTEGER NOT NULL,
    idem_key    TEXT,
    idem_digest TEXT,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE UNIQUE INDEX jobs_idem ON jobs (tenant_id, idem_key) WHERE idem_key IS NOT NULL;
CREATE INDEX jobs_state ON jobs (state, id);
CREATE TABLE executions (
    tenant_id  TEXT NOT NULL,
    job_id     TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    device_id  TEXT NOT NULL,
    state      TEXT NOT NULL,
    attempt    INTEGER NOT NULL,
    command_id TEXT,
    detail     TEXT,
    not_before INTEGER,
    sent_at    INTEGER,
    deadline   INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, job_id, seq)
) STRICT;
CREATE INDEX executions_state ON executions (tenant_id, job_id, state, seq);
CREATE INDEX executions_device ON executions (tenant_id, device_id, job_id);
"#;

/// Version 5: telemetry history (raw records once per device stream and sequence, reports per
/// stream, hourly metrics).
const V5: &str = r#"
CREATE TABLE telemetry (
    tenant_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    stream    TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    at        INTEGER NOT NULL,
    received  INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    body      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, device_id, stream, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX telemetry_time ON telemetry (tenant_id, device_id, kind, at);
CREATE INDEX telemetry_age ON telemetry (at);
CREATE TABLE telemetry_streams (
    tenant_id   TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    stream      TEXT NOT NULL,
    dropped     INTEGER NOT NULL,
    highest_seq INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, device_id, stream)
) STRICT;
CREATE TABLE metric_hours (
    tenant_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    metric    TEXT NOT NULL,
    hour      INTEGER NOT NULL,
    count     INTEGER NOT NULL,
    sum       REAL NOT NULL,
    min       REAL NOT NULL,
    max       REAL NOT NULL,
    PRIMARY KEY (tenant_id, device_id, metric, hour)
) STRICT;
CREATE INDEX metric_hours_age ON metric_hours (hour);
"#;

/// Saved fleet queries are `documents` rows of kind `query`: no table changes.
const V6: &str = "-- saved fleet queries: documents of kind 'query'\n";

/// Version 7: a staged roll-out's open phase and when it opened (0 and none for every
/// earlier job, which had one phase).
const V7: &str = r#"
ALTER TABLE jobs ADD COLUMN phase INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN phase_at INTEGER;
"#;

/// Version 8: leases (one replica runs each singleton task) and online devices by last
/// seen (the presence sweep).
const V8: &str = r#"
CREATE TABLE leases (
    name   TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until  INTEGER NOT NULL
) STRICT;
CREATE INDEX devices_status_seen ON devices (status, last_seen);
"#;

/// Version 9: device certificates name the device as OU and the prefix as CN; every
/// certificate issued before names the device as CN (an external broker's user name).
const V9: &str = r#"
ALTER TABLE certificates ADD COLUMN device_in_cn INTEGER NOT NULL DEFAULT 1;
"#;

/// Version 10: alerts (rules are documents of kind `alert_rule` in the existing table).
const V10: &str = r#"
CREATE TABLE alerts (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    rule_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    state       TEXT NOT NULL,
    resolved_at INTEGER,
    body        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX alerts_state ON alerts (tenant_id, state, id);
CREATE INDEX alerts_device ON alerts (tenant_id, device_id, id);
"#;

/// Version 11: the notification outbox.
const V11: &str = r#"
CREATE TABLE deliveries (
    tenant_id TEXT NOT NULL,
    id        TEXT NOT NULL,
    state     TEXT NOT NULL,
    attempts  INTEGER NOT NULL,
    next_at   INTEGER NOT NULL,
    body      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX deliveries_due ON deliveries (state, next_at);
"#;

/// Version 12: silences and notification channels, documents of two new kinds.
const V12: &str =
    "-- alert silences and notification channels: documents of kinds 'alert_silence' and 'notify_channel'\n";

/// Version 13: what flapping and content rules read off a device; congregants are documents
/// of kind 'congregant'.
const V13: &str = r#"
ALTER TABLE devices ADD COLUMN drops INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN bundle_sha256 TEXT;
ALTER TABLE devices ADD COLUMN bundle_fetched_at INTEGER;
"#;

fn script(version: u32) -> StoreResult<&'static str> {
    match version {
        1 => Ok(V1),
        2 => Ok(V2),
        3 => Ok(V3),
        4 => Ok(V4),
        5 => Ok(V5),
        6 => Ok(V6),
        7 => Ok(V7),
        8 => Ok(V8),
        9 => Ok(V9),
        10 => Ok(V10),
        11 => Ok(V11),
        12 => Ok(V12),
        13 => Ok(V13),
        v => Err(StoreError::Corrupt(format!(
            "no sqlite migration for schema version {v}"
        ))),
    }
}

/// The highest version recorded (0 for a database of the first release, or a new one).
fn current(conn: &Connection) -> StoreResult<u32> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at INTEGER NOT NULL
        ) STRICT;",
    )?;
    let v: Option<i64> = conn.query_row("SELECT MAX(version) FROM schema_migrations", [], |r| r.get(0))?;
    Ok(u32::try_from(v.unwrap_or(0)).unwrap_or(0))
}

/// Applies (or, with `dry_run`, lists) what the database lacks.
pub(super) fn run(conn: &mut Connection, dry_run: bool) -> StoreResult<Vec<Applied>> {
    let mut applied = Vec::new();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let todo = pending(current(&tx)?)?;
    for m in todo {
        let at = Utc::now();
        if !dry_run {
            tx.execute_batch(script(m.version)?)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                params![m.version, m.name, ms(at)],
            )?;
            tracing::info!(version = m.version, name = m.name, "sqlite schema migrated");
        }
        applied.push(Applied {
            version: m.version,
            name: m.name,
            at,
        });
    }
    tx.commit()?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrate::MIGRATIONS;

    #[test]
    fn every_version_has_a_script_and_applies_once() -> StoreResult<()> {
        for m in MIGRATIONS {
            script(m.version)?;
        }
        let mut conn = Connection::open_in_memory()?;
        let first = run(&mut conn, false)?;
        assert_eq!(first.len(), MIGRATIONS.len());
        assert!(run(&mut conn, false)?.is_empty());
        assert!(run(&mut conn, true)?.is_empty());
        Ok(())
    }
}
