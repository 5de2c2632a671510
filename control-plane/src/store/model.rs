//! Records the store keeps and the requests it answers.

use chrono::{DateTime, Utc};
use luach_content::BoardSettings;
use luach_schemas::messages::Metrics;
use luach_schemas::{DeviceId, TenantId};
use serde::{Deserialize, Serialize};

/// Whether a device currently has a live session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    Online,
    Offline,
}

impl DeviceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Offline => "offline",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "online" => Some(Self::Online),
            "offline" => Some(Self::Offline),
            _ => None,
        }
    }
}

/// A screen as the control plane knows it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Device {
    pub id: DeviceId,
    pub tenant_id: TenantId,
    pub name: String,
    pub tags: Vec<String>,
    pub group: Option<String>,
    pub notes: String,
    /// How the screen draws its board (layout, theme, language); carried in its bundle.
    pub board: BoardSettings,
    pub status: DeviceStatus,
    /// Last time any message arrived from the device.
    pub last_seen: Option<DateTime<Utc>>,
    pub agent_version: Option<String>,
    pub platform: Option<String>,
    /// The device's address on its local network, as it reported it.
    pub ip: Option<String>,
    /// Latest metrics snapshot and when it arrived.
    pub metrics: Option<Metrics>,
    pub metrics_at: Option<DateTime<Utc>>,
    /// Times the screen went offline (a last will, a goodbye or silence), counted by the
    /// store at each transition; flapping rules watch it grow.
    pub drops: u64,
    /// The content bundle the screen last fetched or confirmed it holds (hex SHA-256), and
    /// when.
    pub bundle_sha256: Option<String>,
    pub bundle_fetched_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every change of the operator-owned fields; writes compare and set it.
    pub revision: i64,
}

impl Device {
    /// A device as an operator (or an enrolment) registers it: offline, never seen.
    pub fn new(tenant: TenantId, new: NewDevice, now: DateTime<Utc>) -> Self {
        Self {
            id: new.id,
            tenant_id: tenant,
            name: new.name,
            tags: new.tags,
            group: new.group,
            notes: new.notes,
            board: BoardSettings::default(),
            status: DeviceStatus::Offline,
            last_seen: None,
            agent_version: None,
            platform: None,
            ip: None,
            metrics: None,
            metrics_at: None,
            drops: 0,
            bundle_sha256: None,
            bundle_fetched_at: None,
            created_at: now,
            updated_at: now,
            revision: 1,
        }
    }

    /// The device after `patch`: the fields it names change, the revision moves on.
    pub fn patched(&self, patch: &DevicePatch, now: DateTime<Utc>) -> Self {
        let mut next = self.clone();
        if let Some(name) = &patch.name {
            next.name.clone_from(name);
        }
        if let Some(tags) = &patch.tags {
            next.tags.clone_from(tags);
        }
        if let Some(group) = &patch.group {
            next.group.clone_from(group);
        }
        if let Some(notes) = &patch.notes {
            next.notes.clone_from(notes);
        }
        if let Some(board) = &patch.board {
            next.board.clone_from(board);
        }
        next.updated_at = now;
        next.revision = self.revision + 1;
        next
    }
}

/// Fields an operator sets when pre-registering a device.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDevice {
    pub id: DeviceId,
    pub name: String,
    pub tags: Vec<String>,
    pub group: Option<String>,
    pub notes: String,
}

/// A partial update of operator-owned fields; `None` leaves a field unchanged.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, schemars::JsonSchema)]
pub struct DevicePatch {
    pub name: Option<String>,
    pub tags: Option<Vec<String>>,
    /// `Some(None)` clears the group.
    pub group: Option<Option<String>>,
    pub notes: Option<String>,
    pub board: Option<BoardSettings>,
}

/// Filter for device listings; all given conditions must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeviceFilter {
    pub status: Option<DeviceStatus>,
    pub tag: Option<String>,
    pub group: Option<String>,
}

/// Keyset paging: items are ordered by id; `after` is the last id of the previous page.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<DeviceId>,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[schemars(rename = "Page{T}")]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_after: Option<String>,
    /// Number of items matching the filter across all pages.
    pub total: u64,
}

impl<T> Page<T> {
    /// A page from up to `limit + 1` items read in page order: the extra one only shows that
    /// another page follows; `key` names the last kept item for `next_after`.
    pub(super) fn from_fetched(mut items: Vec<T>, limit: u32, total: u64, key: impl Fn(&T) -> String) -> Self {
        let next_after = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(key)
        } else {
            None
        };
        Page {
            items,
            next_after,
            total,
        }
    }

    /// The same page with each item turned into another.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_after: self.next_after,
            total: self.total,
        }
    }
}

/// Device data from a hello message.
#[derive(Debug, Clone, PartialEq)]
pub struct HelloInfo {
    pub agent_version: String,
    pub platform: String,
    pub ip: Option<String>,
}

/// A coalesced presence change for one device, written by the ingest pipeline.
///
/// Presence changes only the fields the device reports (status, last seen, hello, metrics),
/// never the operator-owned ones, and does not move the revision.
#[derive(Debug, Clone, PartialEq)]
pub struct PresenceWrite {
    pub device: DeviceId,
    pub last_seen: Option<DateTime<Utc>>,
    pub status: Option<DeviceStatus>,
    pub hello: Option<HelloInfo>,
    pub metrics: Option<(Metrics, DateTime<Utc>)>,
}

impl PresenceWrite {
    /// Only moves `last_seen` forward: the cheapest and by far the most common write.
    pub fn is_seen_only(&self) -> bool {
        self.status.is_none() && self.hello.is_none() && self.metrics.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_changes_what_it_names_and_moves_the_revision() {
        let t0 = Utc::now();
        let id = DeviceId::parse("dev1").unwrap_or_else(|e| panic!("{e}"));
        let new = NewDevice {
            id,
            name: "Lobby".into(),
            tags: vec!["a".into()],
            group: Some("main".into()),
            notes: String::new(),
        };
        let device = Device::new(TenantId::builtin(), new, t0);
        assert_eq!(device.revision, 1);
        let t1 = t0 + chrono::Duration::seconds(1);
        let patch = DevicePatch {
            group: Some(None),
            notes: Some("hello".into()),
            ..DevicePatch::default()
        };
        let next = device.patched(&patch, t1);
        assert_eq!(
            (next.name.as_str(), next.group.as_deref(), next.notes.as_str()),
            ("Lobby", None, "hello")
        );
        assert_eq!((next.revision, next.updated_at, next.created_at), (2, t1, t0));
        assert_eq!(next.tags, device.tags);
    }
}
