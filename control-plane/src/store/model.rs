//! Records the store keeps and the requests it answers.

use chrono::{DateTime, Utc};
use luach_schemas::messages::Metrics;
use luach_schemas::{DeviceId, TenantId};
use serde::{Deserialize, Serialize};

/// Whether a device currently has a live session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Device {
    pub id: DeviceId,
    pub tenant_id: TenantId,
    pub name: String,
    pub tags: Vec<String>,
    pub group: Option<String>,
    pub notes: String,
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
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
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
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct DevicePatch {
    pub name: Option<String>,
    pub tags: Option<Vec<String>>,
    /// `Some(None)` clears the group.
    pub group: Option<Option<String>>,
    pub notes: Option<String>,
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_after: Option<String>,
    /// Number of items matching the filter across all pages.
    pub total: u64,
}

/// Device data from a hello message.
#[derive(Debug, Clone, PartialEq)]
pub struct HelloInfo {
    pub agent_version: String,
    pub platform: String,
    pub ip: Option<String>,
}

/// A coalesced presence change for one device, written by the ingest pipeline.
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
