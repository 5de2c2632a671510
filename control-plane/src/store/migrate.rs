//! Versioned schema migrations, the same numbered list on every backend.
//!
//! Each backend records the versions it applied (SQLite: table `schema_migrations`; MongoDB:
//! collection `_migrations`) and applies the missing ones in order at start-up and on
//! `luach-server migrate`. Version 1 is the schema of the first release, written so that it
//! applies cleanly to a database that release created (which recorded no versions). A database
//! whose recorded version is newer than this binary knows is refused: an older binary must not
//! write into a schema it does not understand.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One schema change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
}

/// Every migration, in order. Backends implement each version; a test checks they agree.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "the first release's schema: devices, documents, identity, enrolment, audit",
    },
    Migration {
        version: 2,
        name: "device revisions and topic prefixes, certificate history by serial, renewal nonces, \
               enrolment request sources and delivery, document sizes",
    },
    Migration {
        version: 3,
        name: "per-screen board settings (layout, theme, language)",
    },
    Migration {
        version: 4,
        name: "jobs and their executions (the command outbox)",
    },
    Migration {
        version: 5,
        name: "telemetry history: records once per device stream and sequence, stream reports, hourly metrics",
    },
    Migration {
        version: 6,
        name: "saved fleet queries (a document kind)",
    },
    Migration {
        version: 7,
        name: "staged roll-outs: a job's open phase and when it opened",
    },
    Migration {
        version: 8,
        name: "replicas: leases for singleton tasks, online devices by last seen",
    },
    Migration {
        version: 9,
        name: "device certificates name the device as OU and the prefix as CN: the certificate history records which form",
    },
    Migration {
        version: 10,
        name: "alerts: rules as tenant documents, alerts from open to resolved",
    },
    Migration {
        version: 11,
        name: "the notification outbox: messages written with the change they tell of",
    },
    Migration {
        version: 12,
        name: "alert silences and notification channels (document kinds)",
    },
    Migration {
        version: 13,
        name: "devices count their drops and record the content bundle they last fetched; congregants (document kind)",
    },
];

/// The newest schema version this binary knows.
pub fn latest() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// A migration that ran (or, in a dry run, would run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub version: u32,
    pub name: &'static str,
    pub at: DateTime<Utc>,
}

/// The migrations after `current`, or an error when the database is newer than this binary.
pub fn pending(current: u32) -> Result<&'static [Migration], super::StoreError> {
    if current > latest() {
        return Err(super::StoreError::SchemaTooNew {
            found: current,
            known: latest(),
        });
    }
    let start = MIGRATIONS
        .iter()
        .position(|m| m.version > current)
        .unwrap_or(MIGRATIONS.len());
    Ok(&MIGRATIONS[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_consecutive_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{m:?}");
        }
    }

    #[test]
    fn pending_starts_after_the_current_version() {
        assert_eq!(pending(0).map(<[Migration]>::len).ok(), Some(MIGRATIONS.len()));
        assert_eq!(pending(latest()).map(<[Migration]>::len).ok(), Some(0));
        assert!(pending(latest() + 1).is_err());
    }
}
