//! Memorial plaques (the type is [`luach_content::MemorialInput`]), stored as
//! [`DocKind::Memorial`] documents.

pub use luach_content::{MemorialInput, PassingDate};

use super::{DocKind, Document, Stored};

impl Document for MemorialInput {
    const KIND: DocKind = DocKind::Memorial;
}

/// A stored plaque.
pub type Memorial = Stored<MemorialInput>;
