//! Files that hold keys or must never be seen half-written, as the device CA (`luach-pki`),
//! the release tools (`luach-ota`) and the agent write them.
//!
//! - [`write_new`] creates a file that must not exist yet (`O_EXCL`);
//! - [`write_atomic`] replaces a file so that readers see the old or the new one, never a
//!   partial one (a temporary file beside it, flushed, renamed over it);
//! - both create the file with its final [`Mode`], so a private key is never briefly
//!   readable by others, and flush the directory entry;
//! - [`read_private`] reads a private file only when group and others cannot (as ssh does).
//!
//! Errors are `std::io::Error`s; callers wrap them with what they were doing.

use std::io::Write;
use std::path::Path;

use zeroize::Zeroizing;

/// Who may read a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Owner read/write only (0600): private keys, journals.
    Private,
    /// World-readable (0644): certificates, public keys, metadata.
    Public,
}

fn create(path: &Path, mode: Mode) -> std::io::Result<std::fs::File> {
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
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path)
}

/// Flushes the directory `dir`, so entries made or renamed in it survive a power cut.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Flushes the directory holding `path` (see [`sync_dir`]).
pub fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// Creates `path` with `contents`; an existing file is an `AlreadyExists` error and stays
/// untouched. A failed write leaves no file behind.
pub fn write_new(path: &Path, contents: &[u8], mode: Mode) -> std::io::Result<()> {
    let mut file = create(path, mode)?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    sync_parent(path)
}

/// Replaces (or creates) `path` with `contents` atomically.
pub fn write_atomic(path: &Path, contents: &[u8], mode: Mode) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{:016x}", rand::random::<u64>()));
    let result = write_new(&tmp, contents, mode).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    sync_parent(path)
}

/// Why a private file was not read.
#[derive(Debug)]
pub enum PrivateReadError {
    Io(std::io::Error),
    /// Group or others may access it (its permission bits).
    Insecure {
        mode: u32,
    },
}

/// Reads a private file, refusing one that group or others can access.
pub fn read_private(path: &Path) -> Result<Zeroizing<String>, PrivateReadError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(PrivateReadError::Io)?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(PrivateReadError::Insecure { mode });
        }
    }
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(PrivateReadError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_atomic_and_private() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let key = dir.path().join("key");
        write_new(&key, b"secret", Mode::Private).unwrap_or_else(|e| panic!("{e}"));
        let again = write_new(&key, b"other", Mode::Private).map_err(|e| e.kind());
        assert_eq!(again, Err(std::io::ErrorKind::AlreadyExists));
        assert_eq!(
            read_private(&key).map(|s| s.to_string()).ok().as_deref(),
            Some("secret")
        );
        write_atomic(&key, b"replaced", Mode::Private).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read(&key).unwrap_or_default(), b"replaced");
        let public = dir.path().join("cert");
        write_atomic(&public, b"pem", Mode::Public).unwrap_or_else(|e| panic!("{e}"));
        #[cfg(unix)]
        {
            assert!(matches!(
                read_private(&public),
                Err(PrivateReadError::Insecure { mode: 0o644 })
            ));
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0);
            assert_eq!(mode, 0o600);
        }
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(left.len(), 2, "no temporary file left: {left:?}");
    }
}
