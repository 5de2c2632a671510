//! Atomic file writes with the right permissions.

use std::io::Write;
use std::path::Path;

use crate::PkiError;

/// Who may read a file written by [`write_atomic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Owner read/write only (0600): private keys.
    Private,
    /// World-readable (0644): certificates.
    Public,
}

/// Writes `contents` to `path` so that readers see either the old or the new file, never a
/// partial one: a temporary file in the same directory (created with the final mode, so a key
/// is never briefly world-readable), flushed to disk, then renamed over `path`.
pub fn write_atomic(path: &Path, contents: &[u8], mode: Mode) -> Result<(), PkiError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{:016x}", rand::random::<u64>()));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(match mode {
                Mode::Private => 0o600,
                Mode::Public => 0o644,
            });
        }
        let mut file = options.open(&tmp).map_err(|e| PkiError::io("create", &tmp, e))?;
        file.write_all(contents).map_err(|e| PkiError::io("write", &tmp, e))?;
        file.sync_all().map_err(|e| PkiError::io("sync", &tmp, e))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(|e| PkiError::io("rename into place", path, e))?;
        // Make the rename itself durable.
        #[cfg(unix)]
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

pub(crate) fn read_to_string(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|e| PkiError::io("read", path, e))
}

/// Reads a private key file, refusing one that group or others can access (like ssh does).
pub(crate) fn read_private(path: &Path) -> Result<zeroize::Zeroizing<String>, PkiError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| PkiError::io("read", path, e))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(PkiError::InsecureKeyFile {
                path: path.to_owned(),
                mode,
            });
        }
    }
    read_to_string(path).map(zeroize::Zeroizing::new)
}
