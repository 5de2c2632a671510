//! Atomic file writes with the right permissions.

use std::path::Path;

use crate::PkiError;

/// Who may read a file written by [`write_atomic`].
pub use luach_files::Mode;

/// Writes `contents` to `path` so that readers see either the old or the new file, never a
/// partial one (see [`luach_files::write_atomic`]).
pub fn write_atomic(path: &Path, contents: &[u8], mode: Mode) -> Result<(), PkiError> {
    luach_files::write_atomic(path, contents, mode).map_err(|e| PkiError::io("write", path, e))
}

pub(crate) fn read_to_string(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|e| PkiError::io("read", path, e))
}

/// Reads a private key file, refusing one that group or others can access (like ssh does).
pub(crate) fn read_private(path: &Path) -> Result<zeroize::Zeroizing<String>, PkiError> {
    luach_files::read_private(path).map_err(|e| match e {
        luach_files::PrivateReadError::Io(e) => PkiError::io("read", path, e),
        luach_files::PrivateReadError::Insecure { mode } => PkiError::InsecureKeyFile {
            path: path.to_owned(),
            mode,
        },
    })
}
