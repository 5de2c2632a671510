//! The documented limits: anything larger is refused before it costs memory or time.

/// Largest metadata file accepted (64 KiB); a larger one is refused before it is parsed.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;

/// Most signatures one envelope may carry.
pub const MAX_SIGNATURES: usize = 16;

/// Most release keys one key list may authorise.
pub const MAX_RELEASE_KEYS: usize = 32;

/// Largest artifact a release may declare (2 GiB).
pub const MAX_ARTIFACT_BYTES: u64 = 2 * 1024 * 1024 * 1024;
