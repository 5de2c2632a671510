//! Files: keys written once with the right mode, replacements written atomically, bounded reads.

use std::io::{Read, Write};
use std::path::Path;

use zeroize::Zeroizing;

use crate::OtaError;

/// Who may read a file this crate writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Owner read/write only (0600): private keys.
    Private,
    /// World-readable (0644): public keys and metadata.
    Public,
}

fn options(mode: Mode) -> std::fs::OpenOptions {
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
    options
}

fn write_synced(file: &mut std::fs::File, path: &Path, contents: &[u8]) -> Result<(), OtaError> {
    file.write_all(contents).map_err(|e| OtaError::io("write", path, e))?;
    file.sync_all().map_err(|e| OtaError::io("sync", path, e))
}

fn sync_dir(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        // Best effort: makes the new directory entry durable.
        let _ = d.sync_all();
    }
}

/// Creates `path` with `contents`, refusing to replace an existing file (`O_EXCL`). The file is
/// created with its final mode, so a private key is never briefly readable by others.
pub(crate) fn write_new(path: &Path, contents: &[u8], mode: Mode) -> Result<(), OtaError> {
    let mut file = options(mode).open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            OtaError::FileExists { path: path.to_owned() }
        } else {
            OtaError::io("create", path, e)
        }
    })?;
    let written = write_synced(&mut file, path, contents);
    drop(file);
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    written?;
    sync_dir(path);
    Ok(())
}

/// Replaces `path` so that readers see the old or the new file, never a partial one: a
/// temporary file beside it, synced, then renamed over it.
pub(crate) fn write_replace(path: &Path, contents: &[u8], mode: Mode) -> Result<(), OtaError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{:016x}", rand::random::<u64>()));
    let result = (|| {
        let mut file = options(mode).open(&tmp).map_err(|e| OtaError::io("create", &tmp, e))?;
        write_synced(&mut file, &tmp, contents)?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(|e| OtaError::io("replace", path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    sync_dir(path);
    Ok(())
}

/// Reads at most `limit` bytes; a larger file is refused from its size (or, if it grows while
/// read, after `limit + 1` bytes) with [`OtaError::MetadataTooLarge`].
pub(crate) fn read_limited(path: &Path, limit: usize, action: &'static str) -> Result<Vec<u8>, OtaError> {
    let file = std::fs::File::open(path).map_err(|e| OtaError::io(action, path, e))?;
    let size = file.metadata().map_err(|e| OtaError::io(action, path, e))?.len();
    let too_large = |size| OtaError::MetadataTooLarge { size, limit };
    if size > limit as u64 {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| OtaError::io(action, path, e))?;
    if bytes.len() > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Reads a small text file (a key or key list).
pub(crate) fn read_text(path: &Path, action: &'static str) -> Result<String, OtaError> {
    std::fs::read_to_string(path).map_err(|e| OtaError::io(action, path, e))
}

/// Reads a private key file, refusing one that group or others can access (as ssh does).
pub(crate) fn read_private(path: &Path) -> Result<Zeroizing<String>, OtaError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| OtaError::io("read private key", path, e))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(OtaError::InsecureKeyFile {
                path: path.to_owned(),
                mode,
            });
        }
    }
    read_text(path, "read private key").map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_files_are_never_overwritten() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("a.key");
        write_new(&path, b"one", Mode::Private).expect("first");
        let e = write_new(&path, b"two", Mode::Private).expect_err("second");
        assert_eq!(e.code().as_str(), "file_exists");
        assert_eq!(std::fs::read(&path).expect("read"), b"one");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(read_private(&path).expect("private").as_str(), "one");
    }

    #[test]
    fn replacement_is_whole_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("keys.json");
        write_replace(&path, b"one", Mode::Public).expect("first");
        write_replace(&path, b"two", Mode::Public).expect("second");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn readable_private_keys_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("root.key");
        std::fs::write(&path, b"secret").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let e = read_private(&path).expect_err("group readable");
        assert_eq!(e.code().as_str(), "insecure_key_file");
        assert!(e.to_string().contains("mode 640"), "{e}");
    }
}
