//! Announcements for the screens: text in the synagogue's languages, a display window,
//! a priority, and which screens show them. Stored as [`DocKind::Announcement`] documents.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{DocKind, Document, Stored};

/// Which screens show an announcement.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// Screens by id; empty with `tags` empty means every screen of the tenant.
    #[serde(default)]
    pub devices: Vec<String>,
    /// Screens carrying any of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl Targets {
    /// Whether a screen with `device` id and `tags` shows the announcement.
    pub fn matches(&self, device: &str, tags: &[String]) -> bool {
        (self.devices.is_empty() && self.tags.is_empty())
            || self.devices.iter().any(|d| d == device)
            || self.tags.iter().any(|t| tags.contains(t))
    }
}

/// What a gabbai enters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnouncementInput {
    /// Hebrew text (at least one of `text_he`, `text_en`).
    #[serde(default)]
    pub text_he: String,
    #[serde(default)]
    pub text_en: String,
    /// Shown from this instant (absent: at once).
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// Not shown from this instant on (absent: until deleted).
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    /// Higher first; 0–100.
    #[serde(default)]
    pub priority: u8,
    #[serde(default)]
    pub targets: Targets,
}

impl AnnouncementInput {
    /// Whether it is shown at `at`.
    pub fn active_at(&self, at: DateTime<Utc>) -> bool {
        self.starts_at.is_none_or(|s| s <= at) && self.ends_at.is_none_or(|e| at < e)
    }
}

impl Document for AnnouncementInput {
    const KIND: DocKind = DocKind::Announcement;
}

/// A stored announcement.
pub type Announcement = Stored<AnnouncementInput>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targeting_and_windows() {
        let all = Targets::default();
        assert!(all.matches("any", &[]));
        let some = Targets {
            devices: vec!["lobby1".into()],
            tags: vec!["women".into()],
        };
        assert!(some.matches("lobby1", &[]));
        assert!(some.matches("hall2", &["women".into()]));
        assert!(!some.matches("hall2", &["men".into()]));
        let t0 = Utc::now();
        let a = AnnouncementInput {
            text_he: "x".into(),
            text_en: String::new(),
            starts_at: Some(t0),
            ends_at: Some(t0 + chrono::Duration::hours(1)),
            priority: 0,
            targets: all,
        };
        assert!(!a.active_at(t0 - chrono::Duration::seconds(1)));
        assert!(a.active_at(t0));
        assert!(!a.active_at(t0 + chrono::Duration::hours(1)));
    }
}
