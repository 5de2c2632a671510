//! `luach-content`: what a synagogue's screens show, shared by the control plane and the agent.
//!
//! - [`model`]: the documents gabbaim edit (synagogue profile with prayer-schedule rules and
//!   display preferences, announcements, memorial plaques, Torah-reading honours, shiurim,
//!   countdown timers). The control plane stores and validates them; this crate only defines
//!   them, so both ends read the same shapes.
//! - [`bundle`]: one screen's content as a hashed, versioned document, and how a screen reads
//!   it back safely.
//! - [`day`]: the day a synagogue and a screen show, computed with `luach-calendar`. The
//!   control plane's previews and the agent's offline view both call it, so a preview is
//!   exactly what the screen will draw.

pub mod bundle;
pub mod day;
pub mod limits;
pub mod model;
pub mod power;
pub mod rest;

use serde::{Deserialize, Serialize};

pub use bundle::{Bundle, BundleError};
pub use model::*;
pub use power::{PowerSchedule, PowerTime};

/// A document with its id, as screens receive it (no tenant or storage timestamps).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "Item{T}")]
pub struct Item<T> {
    pub id: String,
    #[serde(flatten)]
    pub input: T,
}

/// Why a day could not be composed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no synagogue profile is assigned to this screen")]
    NoSynagogue,
    #[error(transparent)]
    Calendar(#[from] luach_calendar::Error),
}
