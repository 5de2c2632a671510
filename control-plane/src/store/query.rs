//! Saved fleet queries: a named filter over a tenant's screens (the fleet page's filters),
//! stored as [`DocKind::Query`] documents, and a job target (`{"query": id}`) that names the
//! screens matching it when the job is created.

use serde::{Deserialize, Serialize};

use super::{Device, DeviceFilter, DeviceStatus};
use super::{DocKind, Document, Stored};

/// Longest query name.
pub const MAX_QUERY_NAME: usize = 100;
/// Longest text, tag, group or version in a query.
pub const MAX_QUERY_FIELD: usize = 200;

/// Which screens: every field given must match; absent fields match any screen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetQuery {
    /// Part of the screen's name (any case) or id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DeviceStatus>,
    /// Screens carrying this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Screens reporting exactly this agent version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl FleetQuery {
    /// The part of the query the store filters on (status, tag, group).
    pub fn store_filter(&self) -> DeviceFilter {
        DeviceFilter {
            status: self.status,
            tag: self.tag.clone(),
            group: self.group.clone(),
        }
    }

    /// Whether `device` matches the whole query (the fleet page's rule).
    pub fn matches(&self, device: &Device) -> bool {
        let text = self.text.as_deref().map(str::trim).unwrap_or_default().to_lowercase();
        let text_ok =
            text.is_empty() || device.name.to_lowercase().contains(&text) || device.id.as_str().contains(&text);
        text_ok
            && self.status.is_none_or(|s| device.status == s)
            && self.tag.as_ref().is_none_or(|t| device.tags.contains(t))
            && self.group.as_ref().is_none_or(|g| device.group.as_ref() == Some(g))
            && self
                .version
                .as_ref()
                .is_none_or(|v| device.agent_version.as_ref() == Some(v))
    }
}

/// A named [`FleetQuery`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SavedQueryInput {
    /// 1–100 characters, shown in the fleet page.
    pub name: String,
    #[serde(default)]
    pub query: FleetQuery,
}

impl Document for SavedQueryInput {
    const KIND: DocKind = DocKind::Query;
}

/// A stored query.
pub type SavedQuery = Stored<SavedQueryInput>;
