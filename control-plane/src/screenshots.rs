//! Screenshots: PNGs of what a screen showed, uploaded by the screen itself, kept per device.
//!
//! Files live under `<root>/<tenant>/<device>/` (by default `<data_dir>/screenshots`): the
//! image as `<id>.png` and what is known about it as `<id>.json`. Ids are UUID v7, so their
//! order is the order they were taken in. Only the newest [`ScreenshotsConfig::keep_per_device`]
//! of a device are kept. Everything goes through [`Screenshots::tenant`] with a
//! [`TenantScope`], so a caller can only name its own tenant's directory; device ids and
//! screenshot ids are parsed types, so no path component comes from raw input.
//!
//! An upload is checked before it is stored: at most [`ScreenshotsConfig::max_bytes`], a PNG
//! that decodes completely (every chunk's CRC, the image data), with sides of at most
//! [`MAX_SIDE`] pixels.
//!
//! [`ScreenshotsConfig::keep_per_device`]: crate::config::ScreenshotsConfig::keep_per_device
//! [`ScreenshotsConfig::max_bytes`]: crate::config::ScreenshotsConfig::max_bytes

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use luach_schemas::DeviceId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::TenantScope;

/// Largest side of a stored screenshot, in pixels (an 8K screen).
pub const MAX_SIDE: u32 = 7680;

/// What is known about one stored screenshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Screenshot {
    /// UUID v7; newer screenshots have larger ids.
    pub id: String,
    pub device_id: DeviceId,
    /// When the control plane received it.
    pub taken_at: DateTime<Utc>,
    pub width: u32,
    pub height: u32,
    /// Size of the PNG in bytes.
    pub bytes: u64,
}

/// Why an upload was not stored.
#[derive(Debug, thiserror::Error)]
pub enum ScreenshotError {
    #[error("not a PNG image: {0}")]
    NotPng(String),
    #[error("the image is {width}×{height} pixels; at most {MAX_SIDE} on a side")]
    TooLarge { width: u32, height: u32 },
    #[error("a screenshot with this id exists already")]
    Exists,
    #[error("storing the screenshot: {0}")]
    Io(#[from] std::io::Error),
}

/// The screenshot directory of an installation.
#[derive(Debug, Clone)]
pub struct Screenshots {
    root: PathBuf,
    keep: usize,
}

/// One tenant's screenshots.
#[derive(Debug)]
pub struct TenantScreenshots<'a> {
    screenshots: &'a Screenshots,
    scope: &'a TenantScope,
}

/// Width and height of `png` once it decodes completely.
pub fn check_png(png: &[u8]) -> Result<(u32, u32), ScreenshotError> {
    let bad = |e: png::DecodingError| ScreenshotError::NotPng(e.to_string());
    if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err(ScreenshotError::NotPng("no PNG signature".into()));
    }
    let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().map_err(bad)?;
    let (width, height) = (reader.info().width, reader.info().height);
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(ScreenshotError::TooLarge { width, height });
    }
    // Row by row: checking an image never holds more than one row of its pixels.
    while reader.next_row().map_err(bad)?.is_some() {}
    reader.finish().map_err(bad)?;
    Ok((width, height))
}

impl Screenshots {
    /// Screenshots under `root`, keeping the newest `keep` per device (at least one).
    pub fn new(root: PathBuf, keep: usize) -> Self {
        Self {
            root,
            keep: keep.max(1),
        }
    }

    /// The screenshots of `scope`'s tenant.
    pub fn tenant<'a>(&'a self, scope: &'a TenantScope) -> TenantScreenshots<'a> {
        TenantScreenshots {
            screenshots: self,
            scope,
        }
    }
}

/// A screenshot id from a path segment: a UUID v7 in its hyphenated form, or `None`.
pub fn parse_id(id: &str) -> Option<Uuid> {
    let parsed = Uuid::try_parse(id).ok()?;
    (parsed.get_version_num() == 7 && parsed.hyphenated().to_string() == id).then_some(parsed)
}

/// When a UUID v7 was made.
pub fn id_time(id: &Uuid) -> Option<DateTime<Utc>> {
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    DateTime::from_timestamp(i64::try_from(secs).ok()?, nanos)
}

impl TenantScreenshots<'_> {
    fn dir(&self, device: &DeviceId) -> PathBuf {
        self.screenshots
            .root
            .join(self.scope.tenant().as_str())
            .join(device.as_str())
    }

    /// Checks and stores `png` as screenshot `id` of `device`, then drops the oldest beyond the
    /// kept number. Never replaces a stored screenshot.
    pub async fn save(&self, device: &DeviceId, id: Uuid, png: Vec<u8>) -> Result<Screenshot, ScreenshotError> {
        let dir = self.dir(device);
        let keep = self.screenshots.keep;
        let device = device.clone();
        let taken_at = Utc::now();
        tokio::task::spawn_blocking(move || {
            let (width, height) = check_png(&png)?;
            std::fs::create_dir_all(&dir)?;
            let name = id.hyphenated().to_string();
            let shot = Screenshot {
                id: name.clone(),
                device_id: device,
                taken_at,
                width,
                height,
                bytes: png.len() as u64,
            };
            // The image first, created exclusively (an existing id is refused), then its
            // record; a listing shows only ids with both.
            write_new(&dir.join(format!("{name}.png")), &png)?;
            let record = serde_json::to_vec(&shot).map_err(std::io::Error::other)?;
            write_new(&dir.join(format!("{name}.json")), &record)?;
            prune(&dir, keep)?;
            Ok(shot)
        })
        .await
        .map_err(|e| ScreenshotError::Io(std::io::Error::other(e)))?
    }

    /// The device's screenshots, newest first.
    pub async fn list(&self, device: &DeviceId) -> std::io::Result<Vec<Screenshot>> {
        let dir = self.dir(device);
        tokio::task::spawn_blocking(move || {
            let mut out: Vec<Screenshot> = ids(&dir)?
                .into_iter()
                .rev()
                .filter_map(|id| read_record(&dir, &id).ok().flatten())
                .collect();
            out.sort_by(|a, b| b.id.cmp(&a.id));
            Ok(out)
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// The record and image of one screenshot, if the device has it.
    pub async fn get(&self, device: &DeviceId, id: &Uuid) -> std::io::Result<Option<(Screenshot, Vec<u8>)>> {
        let dir = self.dir(device);
        let name = id.hyphenated().to_string();
        let Some(record) = read_record(&dir, &name)? else {
            return Ok(None);
        };
        match tokio::fs::read(dir.join(format!("{name}.png"))).await {
            Ok(png) => Ok(Some((record, png))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes one screenshot; false when the device has no such screenshot.
    pub async fn delete(&self, device: &DeviceId, id: &Uuid) -> std::io::Result<bool> {
        let dir = self.dir(device);
        let name = id.hyphenated().to_string();
        let found = read_record(&dir, &name)?.is_some();
        remove(&dir, &name)?;
        Ok(found)
    }

    /// Deletes every screenshot of a device (when the device is deleted).
    pub async fn forget_device(&self, device: &DeviceId) -> std::io::Result<()> {
        match tokio::fs::remove_dir_all(self.dir(device)).await {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<(), ScreenshotError> {
    use std::io::Write;
    let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Err(ScreenshotError::Exists),
        Err(e) => return Err(e.into()),
    };
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

/// Ids with a record in `dir`, oldest first.
fn ids(dir: &Path) -> std::io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut ids: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter_map(|n| n.strip_suffix(".json").map(str::to_owned))
        .filter(|n| parse_id(n).is_some())
        .collect();
    ids.sort();
    Ok(ids)
}

fn read_record(dir: &Path, id: &str) -> std::io::Result<Option<Screenshot>> {
    match std::fs::read(dir.join(format!("{id}.json"))) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(std::io::Error::other),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn remove(dir: &Path, id: &str) -> std::io::Result<()> {
    for ext in ["json", "png"] {
        match std::fs::remove_file(dir.join(format!("{id}.{ext}"))) {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Deletes every screenshot under `root` (`<tenant>/<device>/<id>`) taken before `cutoff`, by
/// the time in its UUID v7 id; returns how many. Files that are not screenshots are left.
pub fn prune_older_than(root: &Path, cutoff: DateTime<Utc>) -> std::io::Result<u64> {
    let mut deleted = 0;
    let dirs = |dir: &Path| -> std::io::Result<Vec<PathBuf>> {
        match std::fs::read_dir(dir) {
            Ok(entries) => Ok(entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    };
    for tenant in dirs(root)? {
        for device in dirs(&tenant)? {
            for id in ids(&device)? {
                if parse_id(&id)
                    .and_then(|u| id_time(&u))
                    .is_some_and(|taken| taken < cutoff)
                {
                    remove(&device, &id)?;
                    deleted += 1;
                }
            }
        }
    }
    Ok(deleted)
}

/// Keeps the newest `keep` screenshots in `dir`.
fn prune(dir: &Path, keep: usize) -> std::io::Result<()> {
    let ids = ids(dir)?;
    let extra = ids.len().saturating_sub(keep);
    for id in &ids[..extra] {
        remove(dir, id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgba);
        let mut writer = encoder.write_header().unwrap_or_else(|e| panic!("{e}"));
        writer
            .write_image_data(&vec![200; (width * height * 4) as usize])
            .unwrap_or_else(|e| panic!("{e}"));
        drop(writer);
        out
    }

    #[test]
    fn screenshots_older_than_the_cutoff_are_deleted_by_the_time_in_their_id() {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = root.path().join("shul").join("dev01");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let taken = |days_ago: u64| {
            let ms = 1_800_000_000_000 - days_ago * 86_400_000;
            let ts = uuid::Timestamp::from_unix(uuid::NoContext, ms / 1_000, 0);
            let id = Uuid::new_v7(ts).to_string();
            for ext in ["json", "png"] {
                std::fs::write(dir.join(format!("{id}.{ext}")), b"{}").unwrap_or_else(|e| panic!("{e}"));
            }
            id
        };
        let (old, recent) = (taken(100), taken(10));
        std::fs::write(dir.join("notes.txt"), b"kept").unwrap_or_else(|e| panic!("{e}"));
        let now = DateTime::from_timestamp_millis(1_800_000_000_000).unwrap_or_default();
        let cutoff = now - chrono::Duration::days(90);
        assert_eq!(prune_older_than(root.path(), cutoff).ok(), Some(1));
        assert!(!dir.join(format!("{old}.png")).exists() && !dir.join(format!("{old}.json")).exists());
        assert!(dir.join(format!("{recent}.png")).exists());
        assert!(dir.join("notes.txt").exists());
        assert_eq!(prune_older_than(root.path(), cutoff).ok(), Some(0));
        assert_eq!(prune_older_than(&root.path().join("absent"), cutoff).ok(), Some(0));
    }

    #[test]
    fn only_whole_pngs_pass() {
        let good = png(32, 18);
        assert_eq!(check_png(&good).ok(), Some((32, 18)));
        assert!(matches!(check_png(b"GIF89a"), Err(ScreenshotError::NotPng(_))));
        // Cut short: the image data is missing.
        assert!(matches!(
            check_png(&good[..good.len() - 20]),
            Err(ScreenshotError::NotPng(_))
        ));
        // One flipped bit in the image data fails its CRC.
        let mut flipped = good.clone();
        let at = flipped.len() - 20;
        flipped[at] ^= 1;
        assert!(check_png(&flipped).is_err());
        let wide = png(MAX_SIDE + 1, 1);
        assert!(matches!(check_png(&wide), Err(ScreenshotError::TooLarge { .. })));
    }

    #[test]
    fn ids_are_hyphenated_uuid_v7_only() {
        let id = Uuid::now_v7();
        assert_eq!(parse_id(&id.hyphenated().to_string()), Some(id));
        assert_eq!(parse_id(&id.simple().to_string()), None);
        assert_eq!(parse_id(&Uuid::new_v4().to_string()), None);
        assert_eq!(parse_id("../../etc/passwd"), None);
        let made = id_time(&id).unwrap_or_default();
        assert!((Utc::now() - made).num_seconds().abs() < 5);
    }
}
