//! Files: keys written once with the right mode, replacements written atomically, bounded reads.

use std::io::Read;
use std::path::Path;

use zeroize::Zeroizing;

use crate::OtaError;

pub(crate) use luach_files::Mode;

/// Creates `path` with `contents`, refusing to replace an existing file (`O_EXCL`). The file is
/// created with its final mode, so a private key is never briefly readable by others.
pub(crate) fn write_new(path: &Path, contents: &[u8], mode: Mode) -> Result<(), OtaError> {
    luach_files::write_new(path, contents, mode).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            OtaError::FileExists { path: path.to_owned() }
        } else {
            OtaError::io("create", path, e)
        }
    })
}

/// Replaces `path` so that readers see the old or the new file, never a partial one.
pub(crate) fn write_replace(path: &Path, contents: &[u8], mode: Mode) -> Result<(), OtaError> {
    luach_files::write_atomic(path, contents, mode).map_err(|e| OtaError::io("replace", path, e))
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
    luach_files::read_private(path).map_err(|e| match e {
        luach_files::PrivateReadError::Io(e) => OtaError::io("read private key", path, e),
        luach_files::PrivateReadError::Insecure { mode } => OtaError::InsecureKeyFile {
            path: path.to_owned(),
            mode,
        },
    })
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
