//! Announcements for the screens (the type is [`luach_content::AnnouncementInput`]), stored as
//! [`DocKind::Announcement`] documents.

pub use luach_content::{AnnouncementInput, Targets};

use super::{DocKind, Document, Stored};

impl Document for AnnouncementInput {
    const KIND: DocKind = DocKind::Announcement;
}

/// A stored announcement.
pub type Announcement = Stored<AnnouncementInput>;
