//! Secrets at rest: the data directory and key files the server creates for itself.
//!
//! Directories holding state are created `0700` and files holding secrets `0600`. A key file
//! that group or others may read is refused at start-up (the server does not fix it silently:
//! someone may already have copied it, so the key should be replaced, not hidden).

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};

/// Creates `dir` (and its parents) with mode `0700` if missing. An existing directory that
/// group or others can enter is reported, and left as it is.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(dir = %dir.display(), mode = format!("{mode:o}"), "state directory is open to group or others; chmod 700 it");
    }
    Ok(())
}

/// Refuses a key file that group or others may read or write.
pub fn check_private(path: &Path) -> anyhow::Result<()> {
    let mode = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{} has mode {mode:o}: key material must be readable by its owner only; replace the key \
             (it may have been copied) or chmod 600 it",
            path.display()
        );
    }
    Ok(())
}

/// A key of at least `min_len` bytes kept in `path`: read (after the permission check), or
/// created once with `generate` and written `0600`.
pub fn load_or_create(path: &Path, min_len: usize, generate: impl FnOnce() -> String) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            check_private(path)?;
            let key = text.trim().to_owned();
            if key.len() < min_len {
                bail!("{} is shorter than {min_len} bytes", path.display());
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            private_dir(path.parent().unwrap_or(Path::new(".")))?;
            let key = generate();
            luach_pki::write_atomic(path, key.as_bytes(), luach_pki::FileMode::Private)
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_private_and_loose_ones_refused() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("sub").join("k.key");
        let key = load_or_create(&path, 32, || "k".repeat(40))?;
        assert_eq!(key.len(), 40);
        assert_eq!(std::fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(path.parent().unwrap_or(dir.path()))?
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        assert_eq!(load_or_create(&path, 32, || unreachable!())?, key);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
        let refused = load_or_create(&path, 32, || unreachable!());
        assert!(refused.is_err_and(|e| e.to_string().contains("mode 644")));
        Ok(())
    }
}
