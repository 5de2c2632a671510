//! The synagogue's programme (types in [`luach_content`]): Torah-reading honours (aliyot),
//! shiurim and countdown timers, each a tenant document ([`DocKind::Aliyot`],
//! [`DocKind::Shiur`], [`DocKind::Timer`]); validation is in `api::program`.

pub use luach_content::{AliyotInput, Honour, HonourKind, ShiurInput, TimerInput, TimerTarget};

use super::{DocKind, Document, Stored};

impl Document for AliyotInput {
    const KIND: DocKind = DocKind::Aliyot;
}

pub type Aliyot = Stored<AliyotInput>;

impl Document for ShiurInput {
    const KIND: DocKind = DocKind::Shiur;
}

pub type Shiur = Stored<ShiurInput>;

impl Document for TimerInput {
    const KIND: DocKind = DocKind::Timer;
}

pub type Timer = Stored<TimerInput>;
